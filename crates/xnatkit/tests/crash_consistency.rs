//! Crash consistency of `xnatkit serve` (issue 10): the real binary is
//! stopped dead — by its own `XNATKIT_CRASH_AT` hook (an abort at a named
//! point, as deterministic as a `kill -9` can be) and by SIGKILL after
//! acknowledgements and at increasing delays — in the middle of DICOM zip
//! imports (archive, prearchive, `overwrite=delete`), prearchive archiving,
//! file uploads, `extract=true` uploads and C-STORE, then started again on
//! the same data folder and database. After every restart: everything
//! acknowledged is there, every listed file's MD5 is its bytes, no
//! prearchive session is stuck in a transient status, no orphan, `.part-`,
//! in-flight or staging file is left, and a plain retry of the interrupted
//! operation succeeds.
//!
//! Runs on SQLite, and again on PostgreSQL when `XNATKIT_TEST_DATABASE_URL`
//! is set (a fresh database on that server).

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use md5::Digest;
use serde_json::Value;
use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_synthetic_instance};

const BIN: &str = env!("CARGO_BIN_EXE_xnatkit");
const PASSWORD: &str = "Crash-test-Adm1n";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(md5::Md5::digest(bytes))
}

fn basic_auth() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("admin:{PASSWORD}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One `xnatkit serve` process on a data folder that outlives it.
struct Server {
    child: Child,
    http: SocketAddr,
    dicom: SocketAddr,
    log: PathBuf,
}

/// The data folder and database shared by every run of one backend.
struct Site {
    data: PathBuf,
    database: Option<String>,
    http: SocketAddr,
    dicom: SocketAddr,
    runs: usize,
}

impl Site {
    fn start(&mut self, crash_at: Option<&str>) -> Server {
        self.runs += 1;
        let log = self
            .data
            .parent()
            .unwrap()
            .join(format!("server-{}.log", self.runs));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--data"])
            .arg(&self.data)
            .args(["--listen", &self.http.to_string()])
            .args(["--dicom-listen", &self.dicom.to_string()])
            // Studies are imported on shutdown or after an hour: a kill in
            // between is what the spool recovery must survive.
            .args(["--dicom-idle-secs", "3600"])
            .env("XNATKIT_ADMIN_PASSWORD", PASSWORD)
            .env_remove("XNATKIT_CRASH_AT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(url) = &self.database {
            command.args(["--database", url]);
        }
        if let Some(point) = crash_at {
            command.env("XNATKIT_CRASH_AT", point);
        }
        let mut child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "xnatkit serve exited during start-up ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if http_request(self.http, "GET", "/data/version", &[], "").0 == 200 {
                return Server {
                    child,
                    http: self.http,
                    dicom: self.dicom,
                    log,
                };
            }
            assert!(
                Instant::now() < deadline,
                "xnatkit serve did not become ready:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// HTTP/1.0 request as admin: (status, body); status 0 when the server died
/// before answering.
fn http_request(
    http: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> (u16, Vec<u8>) {
    let Ok(mut stream) = TcpStream::connect(http) else {
        return (0, Vec::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        basic_auth(),
        body.len()
    );
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(body).is_err() {
        return (0, Vec::new());
    }
    let mut answer = Vec::new();
    if stream.read_to_end(&mut answer).is_err() || answer.len() < 12 {
        return (0, Vec::new());
    }
    let status = std::str::from_utf8(&answer[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 4);
    (status, answer[split..].to_vec())
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn request(&self, method: &str, path: &str, body: &[u8], content_type: &str) -> (u16, Vec<u8>) {
        http_request(self.http, method, path, body, content_type)
    }

    fn ok(&self, method: &str, path: &str) -> Vec<u8> {
        let (status, body) = self.request(method, path, &[], "");
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {}\n{}",
            String::from_utf8_lossy(&body),
            self.log()
        );
        body
    }

    fn rows(&self, path: &str) -> Vec<Value> {
        let body = self.ok("GET", path);
        let doc: Value = serde_json::from_slice(&body).unwrap();
        doc["ResultSet"]["Result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits for the process to end by its own crash hook.
    fn wait_crashed(mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the crash point was not reached:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn str_of(row: &Value, key: &str) -> String {
    row[key].as_str().unwrap_or_default().to_owned()
}

/// Every listed file of the site, with its MD5 checked against the bytes
/// served; returns how many there are.
fn listed_files_are_true(server: &Server) -> usize {
    let mut count = 0;
    let mut resources = Vec::new();
    for project in server.rows("/data/projects?format=json") {
        let p = str_of(&project, "ID");
        for r in server.rows(&format!("/data/projects/{p}/resources?format=json")) {
            resources.push(format!(
                "/data/projects/{p}/resources/{}",
                str_of(&r, "label")
            ));
        }
        for e in server.rows(&format!("/data/projects/{p}/experiments?format=json")) {
            let id = str_of(&e, "ID");
            for scan in server.rows(&format!("/data/experiments/{id}/scans?format=json")) {
                let s = str_of(&scan, "ID");
                for r in server.rows(&format!(
                    "/data/experiments/{id}/scans/{s}/resources?format=json"
                )) {
                    resources.push(format!(
                        "/data/experiments/{id}/scans/{s}/resources/{}",
                        str_of(&r, "label")
                    ));
                }
            }
        }
    }
    for resource in resources {
        for file in server.rows(&format!("{resource}/files?format=json")) {
            let uri = str_of(&file, "URI");
            let body = server.ok("GET", &uri);
            assert_eq!(
                md5_hex(&body),
                str_of(&file, "digest"),
                "listed digest of {uri} is not its bytes"
            );
            count += 1;
        }
    }
    count
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The invariants that must hold after every restart.
fn consistent(site: &Site, server: &Server) {
    let listed = listed_files_are_true(server);
    let on_disk = files_below(&site.data.join("archive"));
    assert_eq!(
        on_disk.len(),
        listed,
        "files under the archive that are not listed (orphans, .part- or in-flight files): {on_disk:#?}"
    );
    let staging: Vec<PathBuf> = files_below(&site.data.join("staging"));
    assert!(staging.is_empty(), "staging leftovers: {staging:#?}");
    for session in server.rows("/data/prearchive/projects?format=json") {
        let status = str_of(&session, "status");
        assert!(
            matches!(
                status.as_str(),
                "READY" | "RECEIVING" | "CONFLICT" | "ERROR"
            ),
            "prearchive session stuck in {status}: {session}"
        );
    }
    let prearchived = files_below(&site.data.join("prearchive"));
    assert!(
        prearchived
            .iter()
            .all(|p| !p.to_string_lossy().contains(".xnk-")),
        "{prearchived:#?}"
    );
}

/// A study with fixed UIDs, so a second version replaces the first file by
/// file; `version` changes the bytes of every instance.
struct Study {
    study_uid: String,
    series: Vec<(String, Vec<String>)>,
}

impl Study {
    fn new(series: usize, per_series: usize) -> Self {
        Self {
            study_uid: new_uid(),
            series: (0..series)
                .map(|_| (new_uid(), (0..per_series).map(|_| new_uid()).collect()))
                .collect(),
        }
    }

    fn count(&self) -> usize {
        self.series.iter().map(|(_, i)| i.len()).sum()
    }

    fn files(&self, dir: &Path, patient: &str, version: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (n, (series_uid, instances)) in self.series.iter().enumerate() {
            for (i, sop) in instances.iter().enumerate() {
                let mut instance = SyntheticInstance::new(&self.study_uid, series_uid);
                instance.sop_instance_uid = sop.clone();
                instance.series_number = Some(n as i64 + 1);
                instance.instance_number = Some(i as i64 + 1);
                instance.patient_name = Some(patient.to_owned());
                instance.patient_id = Some(patient.to_owned());
                instance.patient_comments = Some(version.to_owned());
                let path = dir.join(format!("{version}-{n}-{i}.dcm"));
                write_synthetic_instance(&path, &instance).unwrap();
                out.push(path);
            }
        }
        out
    }

    fn zip(&self, dir: &Path, patient: &str, version: &str) -> Vec<u8> {
        let files = self.files(dir, patient, version);
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for file in files {
            zip.start_file(
                file.file_name().unwrap().to_string_lossy(),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(&std::fs::read(&file).unwrap()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Files of the session's DICOM resources: (count, MD5s sorted).
fn session_digests(server: &Server, project: &str, label: &str) -> Option<Vec<String>> {
    let (status, body) = server.request(
        "GET",
        &format!("/data/projects/{project}/experiments/{label}?format=json"),
        &[],
        "",
    );
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut digests = Vec::new();
    for scan in server.rows(&format!(
        "/data/projects/{project}/experiments/{label}/scans?format=json"
    )) {
        let s = str_of(&scan, "ID");
        for file in server.rows(&format!(
            "/data/projects/{project}/experiments/{label}/scans/{s}/resources/DICOM/files?format=json"
        )) {
            digests.push(str_of(&file, "digest"));
        }
    }
    digests.sort();
    Some(digests)
}

fn import(server: &Server, query: &str, zip: &[u8]) -> (u16, String) {
    let (status, body) = server.request(
        "POST",
        &format!("/data/services/import?{query}"),
        zip,
        "application/zip",
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Crash points every archive write passes.
const ARCHIVE_POINTS: [&str; 3] = ["files.staged", "files.committed", "files.renamed"];

fn archive_import(site: &mut Site, work: &Path) {
    let setup = site.start(None);
    setup.ok("PUT", "/data/projects/CRASHA");
    drop(setup);
    for (n, point) in ARCHIVE_POINTS.iter().enumerate() {
        let study = Study::new(2, 5);
        let zip = study.zip(work, &format!("PA{n}"), "v1");
        let label = format!("A{n}");
        let query = format!("project=CRASHA&subject=PA{n}&session={label}&dest=/archive");
        let server = site.start(Some(point));
        let (status, _) = import(&server, &query, &zip);
        assert_eq!(status, 0, "{point}: the import must not have been answered");
        server.wait_crashed();
        let server = site.start(None);
        consistent(site, &server);
        // All or nothing: the session is complete or absent.
        let found = session_digests(&server, "CRASHA", &label);
        if let Some(digests) = &found {
            assert_eq!(digests.len(), study.count(), "{point}: partial session");
        }
        let (status, text) = import(&server, &query, &zip);
        match found {
            None => assert_eq!(status, 200, "{point}: plain retry: {text}"),
            // Committed before the crash: XNAT's answer to importing an
            // existing session without overwrite.
            Some(_) => assert!(
                status == 409 && text.contains("already exists"),
                "{point}: {status} {text}"
            ),
        }
        assert_eq!(
            session_digests(&server, "CRASHA", &label).map(|d| d.len()),
            Some(study.count())
        );
        consistent(site, &server);
        server.kill9();
    }

    // overwrite=delete re-import: every file is replaced.
    let study = Study::new(2, 5);
    let query = "project=CRASHA&subject=PR&session=R1&dest=/archive";
    let server = site.start(None);
    assert_eq!(import(&server, query, &study.zip(work, "PR", "v1")).0, 200);
    let v1 = session_digests(&server, "CRASHA", "R1").unwrap();
    drop(server);
    let v2_zip = study.zip(work, "PR", "v2");
    for point in ARCHIVE_POINTS {
        let server = site.start(Some(point));
        let (status, _) = import(&server, &format!("{query}&overwrite=delete"), &v2_zip);
        assert_eq!(status, 0);
        server.wait_crashed();
        let server = site.start(None);
        consistent(site, &server);
        let now = session_digests(&server, "CRASHA", "R1").unwrap();
        assert_eq!(now.len(), study.count());
        let (status, text) = import(&server, &format!("{query}&overwrite=delete"), &v2_zip);
        assert_eq!(status, 200, "{point}: retry: {text}");
        let after = session_digests(&server, "CRASHA", "R1").unwrap();
        assert_ne!(after, v1, "the re-import replaced the bytes");
        consistent(site, &server);
        drop(server);
    }
}

fn prearchive_flow(site: &mut Site, work: &Path) {
    let setup = site.start(None);
    setup.ok("PUT", "/data/projects/CRASHP");
    drop(setup);
    // Import into the prearchive, killed after the files moved in.
    let study = Study::new(1, 4);
    let zip = study.zip(work, "PP", "v1");
    let query = "project=CRASHP&subject=PP&session=P1&dest=/prearchive";
    let server = site.start(Some("prearchive.placed"));
    assert_eq!(import(&server, query, &zip).0, 0);
    server.wait_crashed();
    let server = site.start(None);
    consistent(site, &server);
    let (status, text) = import(&server, query, &zip);
    assert_eq!(status, 200, "prearchive retry: {text}");
    drop(server);

    // Archive a prearchive session, killed at every step.
    for (n, point) in [
        "files.staged",
        "files.committed",
        "files.renamed",
        "prearchive.archived",
    ]
    .into_iter()
    .enumerate()
    {
        let label = format!("Q{n}");
        let study = Study::new(1, 4);
        let server = site.start(None);
        let (status, text) = import(
            &server,
            &format!("project=CRASHP&subject=PQ&session={label}&dest=/prearchive"),
            &study.zip(work, "PQ", "v1"),
        );
        assert_eq!(status, 200, "{text}");
        let src = text.trim().trim_start_matches("/data").to_owned();
        // Dropping kills it: the acknowledged prearchive session must stay.
        drop(server);
        let server = site.start(Some(point));
        let (status, _) = server.request(
            "POST",
            &format!("/data/services/archive?src={src}"),
            &[],
            "",
        );
        assert_eq!(
            status, 0,
            "{point}: the archive must not have been answered"
        );
        server.wait_crashed();
        let server = site.start(None);
        consistent(site, &server);
        let archived = session_digests(&server, "CRASHP", &label);
        let waiting = server
            .rows("/data/prearchive/projects/CRASHP?format=json")
            .into_iter()
            .any(|s| str_of(&s, "name") == label);
        match archived {
            Some(digests) => {
                assert_eq!(digests.len(), study.count(), "{point}: partial session");
                assert!(!waiting, "{point}: archived and still in the prearchive");
            }
            None => {
                assert!(waiting, "{point}: neither archived nor in the prearchive");
                server.ok("POST", &format!("/data/services/archive?src={src}"));
                assert_eq!(
                    session_digests(&server, "CRASHP", &label).map(|d| d.len()),
                    Some(study.count())
                );
            }
        }
        consistent(site, &server);
        drop(server);
    }
}

fn uploads(site: &mut Site) {
    let setup = site.start(None);
    setup.ok("PUT", "/data/projects/CRASHU");
    let base = "/data/projects/CRASHU/resources";
    let (status, _) = setup.request("PUT", &format!("{base}/X/files/c.txt"), b"old c", "");
    assert_eq!(status, 200);
    drop(setup);
    for point in ["files.committed", "files.renamed"] {
        let server = site.start(Some(point));
        let body = format!("new bytes at {point}");
        let path = format!("{base}/U/files/{point}.txt");
        assert_eq!(server.request("PUT", &path, body.as_bytes(), "").0, 0);
        server.wait_crashed();
        let server = site.start(None);
        consistent(site, &server);
        let (status, _) = server.request(
            "PUT",
            &format!("{path}?overwrite=true"),
            body.as_bytes(),
            "",
        );
        assert_eq!(status, 200, "{point}: retried upload");
        assert_eq!(server.ok("GET", &path), body.as_bytes());
        consistent(site, &server);
        drop(server);
    }
    // extract=true replacing c.txt: all old or all new, never mixed.
    let zip = zip_of(&[("c.txt", b"new c"), ("sub/d.txt", b"d")]);
    for point in ARCHIVE_POINTS {
        let server = site.start(Some(point));
        let path = format!("{base}/X/files/u.zip?extract=true&overwrite=true");
        assert_eq!(server.request("PUT", &path, &zip, "application/zip").0, 0);
        server.wait_crashed();
        let server = site.start(None);
        consistent(site, &server);
        let c = server.ok("GET", &format!("{base}/X/files/c.txt"));
        let d = server
            .request("GET", &format!("{base}/X/files/sub/d.txt"), &[], "")
            .0;
        assert!(
            (c == b"old c" && d == 404) || (c == b"new c" && d == 200),
            "{point}: c.txt {:?} with sub/d.txt {d}",
            String::from_utf8_lossy(&c)
        );
        assert_eq!(server.request("PUT", &path, &zip, "application/zip").0, 200);
        assert_eq!(server.ok("GET", &format!("{base}/X/files/c.txt")), b"new c");
        // Back to the old content for the next round.
        let (status, _) = server.request(
            "PUT",
            &format!("{base}/X/files/c.txt?overwrite=true"),
            b"old c",
            "",
        );
        assert_eq!(status, 200);
        server.ok("DELETE", &format!("{base}/X/files/sub/d.txt"));
        consistent(site, &server);
        drop(server);
    }
}

fn cstore(site: &mut Site, work: &Path) {
    if Command::new("storescu").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "dcmtk's storescu is required when CI is set"
        );
        // The skip must show in the test output, not only in a log.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED: install dcmtk (storescu) for the C-STORE crash case");
        }
        return;
    }
    let server = site.start(None);
    server.ok("PUT", "/data/projects/CRASHC");
    server.ok("PUT", "/data/projects/CRASHC/prearchive_code/4");
    let study = Study::new(2, 50);
    let files = study.files(work, "PC", "v1");
    let sent = Command::new("storescu")
        .args([
            "-aec",
            "CRASHC",
            "127.0.0.1",
            &server.dicom.port().to_string(),
        ])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // Every instance was acknowledged; the study waits for its idle time.
    server.kill9();
    let server = site.start(None);
    let subject_sessions = server.rows("/data/projects/CRASHC/experiments?format=json");
    assert_eq!(
        subject_sessions.len(),
        1,
        "{subject_sessions:?}\n{}",
        server.log()
    );
    let label = str_of(&subject_sessions[0], "label");
    assert_eq!(
        session_digests(&server, "CRASHC", &label).map(|d| d.len()),
        Some(study.count())
    );
    consistent(site, &server);
    drop(server);
}

/// SIGKILL at increasing delays into an archive import.
fn random_kills(site: &mut Site, work: &Path) {
    let setup = site.start(None);
    setup.ok("PUT", "/data/projects/CRASHK");
    drop(setup);
    for (n, delay_ms) in [0u64, 15, 40, 80, 160].into_iter().enumerate() {
        let study = Study::new(2, 30);
        let zip = study.zip(work, &format!("PK{n}"), "v1");
        let query = format!("project=CRASHK&subject=PK{n}&session=K{n}&dest=/archive");
        let server = site.start(None);
        let http = server.http;
        let sender = std::thread::spawn(move || {
            let (status, _) = http_request(
                http,
                "POST",
                &format!("/data/services/import?{query}"),
                &zip,
                "application/zip",
            );
            (status, query, zip)
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.kill9();
        let (answer, query, zip) = sender.join().unwrap();
        let server = site.start(None);
        consistent(site, &server);
        let found = session_digests(&server, "CRASHK", &format!("K{n}"));
        if answer == 200 {
            assert_eq!(
                found.as_ref().map(Vec::len),
                Some(study.count()),
                "acknowledged import lost"
            );
        }
        if found.is_none() {
            let (status, text) = import(&server, &query, &zip);
            assert_eq!(status, 200, "retry after a kill at {delay_ms} ms: {text}");
        }
        assert_eq!(
            session_digests(&server, "CRASHK", &format!("K{n}")).map(|d| d.len()),
            Some(study.count())
        );
        consistent(site, &server);
        drop(server);
    }
}

fn run_all(database: Option<String>) {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut site = Site {
        data: root.path().join("data"),
        database,
        http: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        dicom: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        runs: 0,
    };
    archive_import(&mut site, &work);
    prearchive_flow(&mut site, &work);
    uploads(&mut site);
    cstore(&mut site, &work);
    random_kills(&mut site, &work);
    // Recovery is idempotent: one more start on the recovered site.
    let server = site.start(None);
    consistent(&site, &server);
}

#[test]
fn crash_consistency_sqlite() {
    run_all(None);
}

#[test]
fn crash_consistency_postgres() {
    let Some(admin) = std::env::var("XNATKIT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "XNATKIT_TEST_DATABASE_URL is required when CI is set"
        );
        eprintln!("SKIPPED: set XNATKIT_TEST_DATABASE_URL to run the PostgreSQL variant");
        return;
    };
    let name = format!("xnatkit_crash_{}", std::process::id());
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .arg(&admin)
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql is needed for the PostgreSQL variant");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    psql(&format!("CREATE DATABASE \"{name}\""));
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    run_all(Some(format!("{base}/{name}")));
    psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
}
