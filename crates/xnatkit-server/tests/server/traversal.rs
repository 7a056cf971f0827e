//! Path traversal: no request, however its path is encoded, reads, lists,
//! writes or deletes anything outside the archive and prearchive roots.
//!
//! A secret file and a victim file are planted in the data directory
//! (outside both roots, next to `xnatkit.sqlite`), then every file route is
//! sent traversal payloads byte-for-byte over a raw socket (reqwest would
//! normalise `..` and `%2e%2e` away): fixed encodings (`%2F`, `%252F`,
//! `%2e%2e`, `%5c`, `..\`, overlong UTF-8, NUL, double and triple encoding)
//! and proptest-generated mixtures of them. No answer may contain the
//! secret, the SQLite header or a server path, no answer may be a 5xx, and
//! nothing outside the roots may appear or disappear.

use std::io::Read;
use std::path::Path;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Auth, TestServer};

crate::on_both_backends!(
    prearchive_scan_traversal_regression,
    every_file_route_resists_encoded_traversal,
);

/// An answer read off a raw socket.
pub struct RawAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends `head` (request line and headers up to the blank line, as given)
/// and `body` over a fresh connection; use HTTP/1.0 so the answer is never
/// chunked and the server closes after it. Reads until the server closes.
pub async fn raw_http(s: &TestServer, head: &str, body: &[u8]) -> RawAnswer {
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    parse_answer(&answer)
}

fn parse_answer(answer: &[u8]) -> RawAnswer {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    let status = String::from_utf8_lossy(&answer[..split])
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    RawAnswer {
        status,
        body: answer[split..].to_vec(),
    }
}

/// The session cookie of `auth` (one argon2 check, not one per request).
pub async fn session_cookie(s: &TestServer, auth: &Auth) -> String {
    let r = s.get("/", auth).await;
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("JSESSIONID="))
        .expect("GET / with Basic sets JSESSIONID")
        .to_owned();
    cookie.split(';').next().unwrap().to_owned()
}

/// Everything a response says, archives unpacked: gzip is inflated and a
/// zip's entry names and contents are appended, so a secret inside an
/// archive is seen.
fn readable_text(body: &[u8]) -> String {
    let mut out = body.to_vec();
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut inflated = Vec::new();
        let _ = flate2::read::GzDecoder::new(body).read_to_end(&mut inflated);
        out.extend(inflated);
    }
    if body.starts_with(b"PK")
        && let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(body.to_vec()))
    {
        for i in 0..zip.len() {
            if let Ok(mut entry) = zip.by_index(i) {
                if let Ok(name) = entry.name() {
                    out.extend(name.as_bytes());
                }
                let _ = entry.read_to_end(&mut out);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What must stay outside every answer, and what must stay on disk.
struct Planted {
    secret_token: String,
    secret_path: std::path::PathBuf,
    victim_path: std::path::PathBuf,
    victim_name: String,
    escape_marker: String,
    data_dir: String,
}

fn plant(s: &TestServer) -> Planted {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let secret_path = s.data.path().join(format!("secret-{token}.txt"));
    std::fs::write(&secret_path, format!("TOPSECRET-{token}")).unwrap();
    let victim_name = format!("victim-{token}.txt");
    let victim_path = s.data.path().join(&victim_name);
    std::fs::write(&victim_path, b"must survive").unwrap();
    Planted {
        secret_token: format!("TOPSECRET-{token}"),
        secret_path,
        victim_path,
        victim_name,
        escape_marker: format!("escape-{token}"),
        data_dir: s.data.path().display().to_string(),
    }
}

impl Planted {
    /// One answer to the request `what`: never a 5xx, never the secret (by
    /// content, or by its file name in a listing), the database, or a
    /// server path.
    fn check(&self, what: &str, answer: &RawAnswer) {
        assert!(
            answer.status != 0 && answer.status < 500,
            "{what}: status {} ({})",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        let text = readable_text(&answer.body);
        let file_token = self.secret_token.trim_start_matches("TOPSECRET-");
        for leak in [
            self.secret_token.as_str(),
            file_token,
            "SQLite format 3",
            self.data_dir.as_str(),
        ] {
            // An error message may echo the name the request itself sent.
            if what.contains(leak) {
                continue;
            }
            assert!(!text.contains(leak), "{what}: answer leaks {leak:?}");
        }
    }

    /// Nothing outside the roots was changed: the planted files are intact
    /// and no file named with the escape marker exists anywhere near.
    fn check_disk(&self, s: &TestServer) {
        assert_eq!(
            std::fs::read_to_string(&self.secret_path).unwrap(),
            self.secret_token
        );
        assert_eq!(std::fs::read(&self.victim_path).unwrap(), b"must survive");
        let data = s.data.path();
        let outer = data.parent().unwrap();
        for dir in [outer, data] {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                assert!(
                    !name.contains(&self.escape_marker),
                    "{} was created outside the archive",
                    entry.path().display()
                );
            }
        }
        for file in s.data_files() {
            let inside = ["archive/", "prearchive/", "staging/"]
                .iter()
                .any(|root| file.starts_with(root));
            assert!(
                inside
                    || file.starts_with("xnatkit.sqlite")
                    || file == xnatkit_server::state::DATA_LOCK_FILE
                    || Path::new(&file) == self.secret_path.strip_prefix(data).unwrap()
                    || Path::new(&file) == self.victim_path.strip_prefix(data).unwrap(),
                "unexpected file {file} outside the roots"
            );
            if !inside {
                continue;
            }
            assert!(
                !file.contains(&self.escape_marker) || file.starts_with("archive/"),
                "{file}"
            );
        }
    }
}

/// A one-DICOM prearchive session in project `P9` readable by a member;
/// returns the member and the session's URI (`/data/prearchive/projects/P9/TS/FOLDER`).
async fn prearchive_session(s: &TestServer) -> (Auth, String) {
    s.create_project("P9").await;
    let member = s.create_user("pmember").await;
    let r = s
        .put("/data/projects/P9/users/member/pmember", &s.admin())
        .await;
    assert!(r.status().is_success(), "add member: {}", r.status());
    let dir = tempfile::tempdir().unwrap();
    let study = xnatkit_dicom::testdata::new_uid();
    let mut template = xnatkit_dicom::testdata::SyntheticInstance::new(
        &study,
        &xnatkit_dicom::testdata::new_uid(),
    );
    template.series_number = Some(1);
    let files = xnatkit_dicom::testdata::write_series(dir.path(), &template, 1).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, &std::fs::read(file).unwrap()).unwrap();
    }
    let body = zip.finish().unwrap().into_inner();
    let r = s
        .req(
            Method::POST,
            "/data/services/import?dest=/prearchive&project=P9&subject=S9&session=E9",
            Some(&member),
        )
        .header("Content-Type", "application/zip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let uri = r.text().await.unwrap().trim().to_owned();
    assert!(uri.starts_with("/data/prearchive/projects/P9/"), "{uri}");
    (member, uri)
}

/// An archive session `SESS1` of project `P1` (subject `SUBJ1`) with scan 1
/// holding `DICOM/files/a.txt`, a session resource `R` with `dir/b.txt`
/// and a project resource `PR` with `c.txt`; writable by `member`.
async fn archive_session(s: &TestServer, member: &Auth) -> String {
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "P1").await;
    let r = s
        .put(
            &format!("/data/projects/P1/users/member/{}", member.0),
            &admin,
        )
        .await;
    assert!(r.status().is_success());
    assert_eq!(
        s.put(
            &format!("/data/experiments/{session}/scans/1?xsiType=xnat:mrScanData&type=T1"),
            &admin
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    for path in [
        format!("/data/experiments/{session}/scans/1/resources/DICOM/files/a.txt"),
        format!("/data/experiments/{session}/resources/R/files/dir/b.txt"),
        "/data/projects/P1/resources/PR/files/c.txt".to_owned(),
    ] {
        let r = s
            .req(Method::PUT, &path, Some(&admin))
            .body("harmless")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "PUT {path}");
    }
    session
}

/// The exact request of the security review, and its relatives.
async fn prearchive_scan_traversal_regression(s: &TestServer) {
    let planted = plant(s);
    let (member, session) = prearchive_session(s).await;
    let cookie = session_cookie(s, &member).await;
    let up = "..%252F".repeat(9);
    let single = "..%2F".repeat(9);
    let secret = planted.secret_path.file_name().unwrap().to_string_lossy();
    for path in [
        format!("{session}/scans/{up}../resources/etc/files/hostname"),
        format!("{session}/scans/{up}../resources/etc/files"),
        format!("{session}/scans/{up}../resources"),
        format!("{session}/scans/..%252F..%252F..%252F../resources/{secret}/files"),
        format!("{session}/scans/{single}../resources/etc/files/hostname"),
        format!("{session}/scans/..%2F..%2F..%2F../resources/.%2F/files/{secret}"),
        format!("{session}/scans/1/resources/..%252F..%252F..%252F..%252F../files/{secret}"),
        format!(
            "{session}/scans/1/resources/DICOM/files/..%252F..%252F..%252F..%252F..%252F{secret}"
        ),
        format!(
            "{session}/scans/1/resources/DICOM/files/..%2F..%2F..%2F..%2F..%2F..%2Fxnatkit.sqlite"
        ),
        format!("{session}/scans/../../../../resources/../files/xnatkit.sqlite"),
    ] {
        let answer = raw_http(
            s,
            &format!("GET {path} HTTP/1.0\r\nHost: x\r\nCookie: {cookie}\r\n\r\n"),
            b"",
        )
        .await;
        planted.check(&format!("GET {path}"), &answer);
        assert!(
            matches!(answer.status, 400 | 404),
            "GET {path}: {}",
            answer.status
        );
    }
    // The legitimate routes still work after the fix.
    let rows = s
        .rows(
            &format!("{session}/scans/1/resources/DICOM/files?format=json"),
            &member,
        )
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let name = rows[0]["Name"].as_str().unwrap();
    let r = s
        .get(
            &format!("{session}/scans/1/resources/DICOM/files/{name}"),
            &member,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.unwrap()[128..132], b"DICM");
    let rows = s
        .rows(&format!("{session}/scans/1/resources?format=json"), &member)
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    planted.check_disk(s);
}

/// Separator and dot spellings the payloads are built from.
const ATOMS: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    "%2e.",
    ".%2E",
    "%252e%252e",
    "%25252e%25252e",
    "/",
    "%2F",
    "%2f",
    "%252F",
    "%25252F",
    "%5c",
    "%5C",
    "%255c",
    "\\",
    "..\\",
    "%c0%ae%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%00",
    "..%00",
    "%2e%2e%00",
    "etc",
    "hostname",
];

/// Fixed payloads: `..` climbs of every spelling, ending in the secret, the
/// database or the victim.
fn fixed_payloads(targets: &[String]) -> Vec<String> {
    let climbs = [
        "../",
        "..%2F",
        "..%2f",
        "..%252F",
        "..%25252F",
        "%2e%2e/",
        "%2e%2e%2f",
        "%2E%2E%2F",
        "%252e%252e%252f",
        "..%5c",
        "..%5C",
        "..\\",
        "%2e%2e%5c",
        "%c0%ae%c0%ae/",
        "%c0%ae%c0%ae%c0%af",
        "..%c0%af",
        "%e0%80%ae%e0%80%ae/",
        "..%00/",
        "..%2F%00",
        ".%2e/",
        "%2e./",
    ];
    let mut out = Vec::new();
    for climb in climbs {
        for depth in [1, 3, 6, 12] {
            for target in targets {
                out.push(format!("{}{target}", climb.repeat(depth)));
            }
        }
    }
    out
}

/// Random mixtures of the atoms, from a deterministic proptest runner so a
/// failure reproduces.
fn generated_payloads(count: usize, targets: &[String]) -> Vec<String> {
    let atom = proptest::sample::select(ATOMS);
    let target = proptest::sample::select(targets.to_vec());
    let strategy = (proptest::collection::vec(atom, 1..24), target)
        .prop_map(|(atoms, target)| format!("{}{target}", atoms.concat()));
    let mut runner = TestRunner::deterministic();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

async fn every_file_route_resists_encoded_traversal(s: &TestServer) {
    let planted = plant(s);
    let (member, pre) = prearchive_session(s).await;
    let session = archive_session(s, &member).await;
    let cookie = session_cookie(s, &member).await;
    let secret = planted
        .secret_path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let targets = vec![
        secret.clone(),
        "xnatkit.sqlite".to_owned(),
        planted.victim_name.clone(),
        format!("{}.txt", planted.escape_marker),
        String::new(),
    ];
    let mut payloads = fixed_payloads(&targets);
    payloads.extend(generated_payloads(96, &targets));
    let exp = format!("/data/experiments/{session}");
    let arc = "/data/archive/projects/P1/subjects/SUBJ1/experiments/SESS1";
    let reads = [
        format!("{pre}/scans/X/resources"),
        format!("{pre}/scans/X/resources/X/files"),
        format!("{pre}/scans/X/resources/DICOM/files/X"),
        format!("{pre}/scans/1/resources/X/files"),
        format!("{pre}/scans/1/resources/X/files/X"),
        format!("{pre}/scans/1/resources/DICOM/files/X"),
        format!("{pre}/X"),
        format!("{pre}/X?format=zip"),
        "/data/prearchive/projects/X".to_owned(),
        format!("{exp}/scans/1/resources/DICOM/files/X"),
        format!("{arc}/scans/1/resources/DICOM/files/X"),
        format!("{exp}/resources/R/files/X"),
        format!("{exp}/resources/R/files/dir/X"),
        format!("{exp}/resources/X/files"),
        format!("{exp}/resources/X/files?format=zip"),
        format!("{exp}/resources/X/files?format=tar.gz"),
        format!("{exp}/resources/X?format=zip"),
        format!("{exp}/scans/X/resources"),
        format!("{exp}/scans/X/resources/DICOM/files"),
        format!("{exp}/scans/X/files?format=zip"),
        "/data/experiments/X/scans/1/resources/DICOM/files/a.txt".to_owned(),
        "/data/projects/P1/resources/PR/files/X".to_owned(),
        "/data/projects/P1/resources/X/files?format=zip".to_owned(),
        "/data/projects/X/files?format=zip".to_owned(),
        "/data/projects/P1/subjects/X/files?format=zip".to_owned(),
    ];
    let writes = [
        format!("{exp}/resources/R/files/X"),
        format!("{exp}/resources/NEW/files/X"),
        format!("{exp}/scans/1/resources/DICOM/files/X"),
        format!("{exp}/resources/X/files/f.txt"),
        "/data/projects/P1/resources/PR/files/X".to_owned(),
    ];
    let mut sent = 0usize;
    for payload in &payloads {
        for template in &reads {
            let path = template.replace('X', payload);
            let head = format!("GET {path} HTTP/1.0\r\nHost: x\r\nCookie: {cookie}\r\n\r\n");
            planted.check(&format!("GET {path}"), &raw_http(s, &head, b"").await);
            sent += 1;
        }
        // dicomdump takes its paths from a query parameter.
        for src in [
            format!(
                "{}/scans/X/resources/X/files/X",
                pre.trim_start_matches("/data")
            ),
            "/archive/projects/P1/experiments/SESS1/scans/X/resources/DICOM/files/X".to_owned(),
        ] {
            let src = src.replace('X', payload);
            let path = format!("/data/services/dicomdump?src={src}");
            let head = format!("GET {path} HTTP/1.0\r\nHost: x\r\nCookie: {cookie}\r\n\r\n");
            planted.check(&format!("GET {path}"), &raw_http(s, &head, b"").await);
            sent += 1;
        }
        for template in &writes {
            let path = template.replace('X', payload);
            for (method, query) in [("PUT", "?overwrite=true"), ("DELETE", "")] {
                let head = format!(
                    "{method} {path}{query} HTTP/1.0\r\nHost: x\r\nCookie: {cookie}\r\nContent-Length: 8\r\n\r\n"
                );
                let answer = raw_http(s, &head, b"escaped!").await;
                planted.check(&format!("{method} {path}"), &answer);
                sent += 1;
            }
        }
    }
    // Names inside bodies: multipart file names and archive entries.
    for payload in payloads.iter().take(60) {
        let name = payload.replace("%2F", "/").replace("%5c", "\\");
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"escaped!".to_vec()).file_name(name.clone()),
        );
        let r = s
            .req(
                Method::POST,
                &format!("{exp}/resources/MP/files"),
                Some(&member),
            )
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().as_u16() < 500,
            "multipart {name:?}: {}",
            r.status()
        );
        let text = r.text().await.unwrap();
        assert!(!text.contains(&planted.data_dir), "{text}");
    }
    assert!(sent > 5000, "only {sent} requests sent");
    planted.check_disk(s);
    // The planted victim was never deleted and the legitimate files are intact.
    let r = s
        .get(&format!("{exp}/resources/R/files/dir/b.txt"), &member)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
