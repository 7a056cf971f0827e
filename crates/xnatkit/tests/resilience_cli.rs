//! The CLI against a real `xnatkit serve` behind a fault-injecting proxy
//! (`fault_proxy`): 503/429 with `Retry-After` on file downloads, a
//! `Retry-After` beyond the client's cap, a 503 on a non-idempotent import
//! (with and without the server having stored it), and connections dropped
//! in the middle of a file body.

// Test code: failures should panic with their error.
#![allow(clippy::unwrap_used)]

mod fault_proxy;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy, Rule, Seen};
use hyper::Method;
use support::{TestServer, cli, ct_subjects, files_below, md5_hex, runtime};
use xnatkit_client::archive::RemoteFile;
use xnatkit_client::retry::MAX_RETRY_AFTER;
use xnatkit_client::sample::write_sample_series;

const TYPE: &str = "Fl_Thorax INSP 3.0 Qr36";
const SUBJECTS: &[&str] = &["125586", "339193"];

struct Setup {
    server: TestServer,
    user: (String, String),
    project: String,
    home: tempfile::TempDir,
    /// Every exported file with its server digest, per subject.
    remote: Vec<(String, Vec<RemoteFile>)>,
}

/// A server with [`SUBJECTS`], 4 slices of 128x128 (≈32 KiB) each.
fn setup() -> Setup {
    let rt = runtime();
    let server = TestServer::start();
    let (user, project, remote) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &ct_subjects(SUBJECTS, TYPE, 4, 128))
            .await;
        let mut remote = Vec::new();
        for subject in SUBJECTS {
            let scan = format!(
                "/data/projects/{project}/subjects/{subject}/experiments/{subject}_CT1/scans/2"
            );
            remote.push(((*subject).to_owned(), server.files_of(&user, &scan).await));
        }
        (user, project, remote)
    });
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("list.csv"),
        format!("subject\n{}\n", SUBJECTS.join("\n")),
    )
    .unwrap();
    Setup {
        server,
        user,
        project,
        home,
        remote,
    }
}

impl Setup {
    fn export(&self, server_url: &str, out: &Path) -> Command {
        let mut cmd = cli(self.home.path());
        cmd.args(["export", "-f"])
            .arg(self.home.path().join("list.csv"))
            .arg("-o")
            .arg(out)
            .args(["-p", &self.project, "-t", TYPE, "--json"])
            .args(["--server", server_url, "-u", &self.user.0])
            .env("XNAT_PASS", &self.user.1);
        cmd
    }

    fn all_files(&self) -> impl Iterator<Item = (&str, &RemoteFile)> {
        self.remote
            .iter()
            .flat_map(|(s, files)| files.iter().map(move |f| (s.as_str(), f)))
    }

    fn local(&self, out: &Path, subject: &str, file: &RemoteFile) -> PathBuf {
        out.join(subject).join(TYPE).join(&file.path)
    }

    /// Every file of every subject is in place and matches the server's
    /// MD5; no `.part` is left.
    fn assert_all_verified(&self, out: &Path) {
        let mut count = 0;
        for (subject, file) in self.all_files() {
            let local = self.local(out, subject, file);
            assert!(local.is_file(), "missing {}", local.display());
            assert_eq!(Some(md5_hex(&local)), file.digest, "{}", local.display());
            count += 1;
        }
        assert_eq!(count, SUBJECTS.len() * 4);
        let parts: Vec<_> = files_below(out)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".part"))
            .collect();
        assert!(parts.is_empty(), "left-over partial files: {parts:?}");
    }
}

/// Path part of a file's URI, as the proxy sees it.
fn uri_path(file: &RemoteFile) -> String {
    file.uri.split('?').next().unwrap().to_owned()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `cmd`, killing it (and failing the test) if it is still running
/// after `limit`. Output goes through files so a chatty child never blocks.
fn run_capped(cmd: &mut Command, limit: Duration, what: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {limit:?}; stderr so far:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
        elapsed: started.elapsed(),
    }
}

/// Generous: these runs take a few seconds; the limit only stops a client
/// that waits for minutes.
const LIMIT: Duration = Duration::from_secs(90);

/// For each request that got a fault, the next request for the same path.
fn retries_after_faults(seen: &[Seen]) -> Vec<(Seen, Seen)> {
    seen.iter()
        .enumerate()
        .filter(|(_, s)| s.fault.is_some())
        .map(|(i, faulted)| {
            let next = seen[i + 1..]
                .iter()
                .find(|s| s.path == faulted.path && s.method == faulted.method)
                .unwrap_or_else(|| panic!("{} was never requested again", faulted.path));
            (faulted.clone(), next.clone())
        })
        .collect()
}

#[test]
fn export_honours_retry_after_on_503_and_429() {
    let setup = setup();
    // "/resources/" matches the resource zips (`…/resources/R/files`) a
    // fresh export asks for as well as single files, not the listings.
    let proxy = FaultProxy::start(
        setup.server.address,
        vec![
            Rule::new(
                Method::GET,
                "/resources/",
                2,
                Fault::Refuse {
                    status: 503,
                    retry_after: "1".into(),
                },
            ),
            Rule::new(
                Method::GET,
                "/resources/",
                1,
                Fault::Refuse {
                    status: 429,
                    retry_after: "1".into(),
                },
            ),
        ],
    );
    let out = setup.home.path().join("out");
    let run = run_capped(&mut setup.export(&proxy.url, &out), LIMIT, "export");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    setup.assert_all_verified(&out);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["totals"]["failed"], 0, "{report}");
    assert_eq!(
        report["totals"]["downloaded"].as_u64(),
        Some(SUBJECTS.len() as u64 * 4)
    );

    // Three zip GETs were refused (two 503, one 429); each was asked again,
    // and not before the second the server asked for.
    let retried = retries_after_faults(&proxy.seen());
    assert_eq!(retried.len(), 3, "{:?}", proxy.seen());
    for (faulted, retry) in &retried {
        let waited = retry.at.duration_since(faulted.at);
        assert!(
            waited >= Duration::from_secs(1),
            "{} retried after {waited:?}, before its Retry-After: 1",
            faulted.path
        );
    }
    assert!(run.elapsed >= Duration::from_secs(1), "{:?}", run.elapsed);
    // Each resource zip was fetched exactly once more than it was refused,
    // and no file needed a request of its own.
    let zip_gets = proxy.seen_matching(&Method::GET, "/resources/").len();
    assert_eq!(zip_gets, SUBJECTS.len() + 3, "{:?}", proxy.seen());
    assert!(proxy.seen_matching(&Method::GET, "/files/").is_empty());
}

#[test]
fn retry_after_beyond_the_cap_is_not_waited_for() {
    let setup = setup();
    let (subject, first) = setup.all_files().next().unwrap();
    let victim_path = zip_path(first);
    let huge = "3600";
    assert!(Duration::from_secs(huge.parse().unwrap()) > MAX_RETRY_AFTER);

    // One subject's resource answers 503 "come back in an hour" every
    // time, as a zip and file by file.
    let proxy = FaultProxy::start(
        setup.server.address,
        vec![Rule::new(
            Method::GET,
            &victim_path,
            usize::MAX,
            Fault::Refuse {
                status: 503,
                retry_after: huge.into(),
            },
        )],
    );
    let out = setup.home.path().join("out");
    let run = run_capped(&mut setup.export(&proxy.url, &out), LIMIT, "export");
    // Not stalled and not hammered: the client gave up on that resource
    // after the first answer (no file-by-file retry of what the server
    // refused), said when the server wants to be asked again, and exported
    // everything else.
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let attempts = proxy.seen_matching(&Method::GET, &victim_path);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(
        run.stderr.contains("retry after 3600 s"),
        "the message should carry the server's Retry-After: {}",
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["totals"]["failed"], 4, "{report}");
    let failed = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == subject)
        .unwrap();
    assert_eq!(failed["status"], "failed", "{report}");
    assert!(
        failed["message"].as_str().unwrap().contains("503"),
        "{report}"
    );
    assert!(run.stderr.contains("503"), "{}", run.stderr);
    for (s, file) in setup.all_files() {
        let local = setup.local(&out, s, file);
        if s == subject {
            assert!(!local.exists(), "{}", local.display());
        } else {
            assert_eq!(Some(md5_hex(&local)), file.digest, "{}", local.display());
        }
    }

    // Once the server is back, the same command finishes the export.
    let run = run_capped(&mut setup.export(&setup.server.url, &out), LIMIT, "rerun");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    setup.assert_all_verified(&out);
}

/// Path of the resource zip (`…/resources/R/files`) holding `file`.
fn zip_path(file: &RemoteFile) -> String {
    let uri = uri_path(file);
    let at = uri.find("/files/").unwrap();
    format!("{}/files", &uri[..at])
}

/// Lists `(path, md5)` of the manifest's records.
fn manifest_records(out: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(out.join(".xnatkit-manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["path"].as_str().unwrap().to_owned(),
                v["md5"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn fresh_export_is_one_zip_per_resource_and_a_rerun_fetches_only_missing_files() {
    let setup = setup();
    let proxy = FaultProxy::start(setup.server.address, Vec::new());
    let out = setup.home.path().join("out");
    let run = run_capped(&mut setup.export(&proxy.url, &out), LIMIT, "export");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    setup.assert_all_verified(&out);

    // One zip per subject's resource, no single-file GET.
    let zips = proxy.seen_matching(&Method::GET, "/resources/");
    assert_eq!(zips.len(), SUBJECTS.len(), "{zips:?}");
    for zip in &zips {
        assert!(zip.path.ends_with("/files"), "{zip:?}");
        assert_eq!(zip.query.as_deref(), Some("format=zip"), "{zip:?}");
    }
    // The manifest records every file with the server's digest.
    let expected: std::collections::BTreeMap<String, String> = setup
        .all_files()
        .map(|(s, f)| (format!("{s}/{TYPE}/{}", f.path), f.digest.clone().unwrap()))
        .collect();
    assert_eq!(manifest_records(&out), expected);

    // Lose one file of the first subject, damage one of the second, leave
    // half of a third as a `.part`: the rerun asks for those three files
    // alone, never for a whole zip again.
    let files: Vec<(&str, &RemoteFile)> = setup.all_files().collect();
    let (s0, lost) = files[0];
    let (s1, damaged) = files[4];
    let (s2, half) = files[5];
    std::fs::remove_file(setup.local(&out, s0, lost)).unwrap();
    std::fs::write(setup.local(&out, s1, damaged), b"not the file").unwrap();
    let half_local = setup.local(&out, s2, half);
    let bytes = std::fs::read(&half_local).unwrap();
    std::fs::remove_file(&half_local).unwrap();
    let mut part = half_local.as_os_str().to_owned();
    part.push(".part");
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    let before = proxy.seen().len();
    let run = run_capped(&mut setup.export(&proxy.url, &out), LIMIT, "rerun");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    setup.assert_all_verified(&out);
    let rerun: Vec<Seen> = proxy.seen()[before..]
        .iter()
        .filter(|s| s.path.contains("/resources/"))
        .cloned()
        .collect();
    let mut asked: Vec<&str> = rerun.iter().map(|s| s.path.as_str()).collect();
    asked.sort_unstable();
    let mut wanted = vec![uri_path(lost), uri_path(damaged), uri_path(half)];
    wanted.sort_unstable();
    assert_eq!(asked, wanted, "{rerun:?}");
    let resumed = rerun.iter().find(|s| s.path == uri_path(half)).unwrap();
    assert_eq!(
        resumed.range.as_deref(),
        Some(format!("bytes={}-", bytes.len() / 2).as_str())
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["totals"]["already_verified"], 5, "{report}");
    assert_eq!(report["totals"]["repaired"], 1, "{report}");
}

#[test]
fn zip_stream_cut_mid_entry_resumes_that_file_with_range() {
    let setup = setup();
    const CUT: usize = 10_000;
    assert!(setup.all_files().all(|(_, f)| f.size.unwrap() > CUT as u64));
    let rules = setup
        .remote
        .iter()
        .map(|(_, files)| {
            Rule::exact(
                Method::GET,
                &zip_path(&files[0]),
                1,
                Fault::CutBody { after: CUT },
            )
        })
        .collect();
    let proxy = FaultProxy::start(setup.server.address, rules);
    let out = setup.home.path().join("out");
    let run = run_capped(&mut setup.export(&proxy.url, &out), LIMIT, "export");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    setup.assert_all_verified(&out);

    // The cut zips were not asked again; their files came one by one, and
    // the one cut mid-entry only from where its `.part` ended.
    for (_, files) in &setup.remote {
        let zip = zip_path(&files[0]);
        let seen = proxy.seen_matching(&Method::GET, &zip);
        let zips: Vec<_> = seen.iter().filter(|s| s.path == zip).collect();
        assert_eq!(zips.len(), 1, "{seen:?}");
        assert!(zips[0].fault.is_some());
        let singles: Vec<_> = seen.iter().filter(|s| s.path != zip).collect();
        assert_eq!(singles.len(), files.len(), "{seen:?}");
        let ranged: Vec<_> = singles.iter().filter_map(|s| s.range.as_deref()).collect();
        assert_eq!(ranged.len(), 1, "{seen:?}");
        let from: usize = ranged[0]
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected Range {:?}", ranged[0]));
        assert!(from > 0 && from < CUT, "{from}");
    }
}

/// A zip (STORED, sizes in the local headers) of `entries`.
fn zip_of(entries: &[(String, Vec<u8>)]) -> bytes::Bytes {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(data).unwrap();
    }
    bytes::Bytes::from(zip.finish().unwrap().into_inner())
}

#[test]
fn hostile_zips_are_refused_and_nothing_unverified_keeps_a_name() {
    let setup = setup();
    // The real bytes, from an export straight from the server.
    let reference = setup.home.path().join("reference");
    let run = run_capped(
        &mut setup.export(&setup.server.url, &reference),
        LIMIT,
        "reference export",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (victim, files) = &setup.remote[0];
    let real: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                std::fs::read(setup.local(&reference, victim, f)).unwrap(),
            )
        })
        .collect();

    let mut corrupted = real.clone();
    let middle = corrupted[1].1.len() / 2;
    corrupted[1].1[middle] ^= 0xff;
    let mut extra = vec![("smuggled.dcm".to_owned(), real[0].1.clone())];
    extra.extend(real.iter().cloned());
    let mut escaping = vec![("../../escaped.dcm".to_owned(), real[0].1.clone())];
    escaping.extend(real.iter().cloned());
    let cases = [
        ("corrupted entry", corrupted, "MD5"),
        ("extra entry", extra, "smuggled.dcm"),
        ("../ entry", escaping, "unsafe name"),
    ];
    for (case, entries, says) in cases {
        let proxy = FaultProxy::start(
            setup.server.address,
            vec![Rule::exact(
                Method::GET,
                &zip_path(&files[0]),
                1,
                Fault::ReplaceBody(zip_of(&entries)),
            )],
        );
        let out = setup.home.path().join(case.replace(['.', '/', ' '], "_"));
        let run = run_capped(&mut setup.export(&proxy.url, &out), LIMIT, case);
        assert_eq!(run.code, Some(2), "{case}: {}", run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let subject = report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subject"] == victim.as_str())
            .unwrap();
        assert_eq!(subject["status"], "failed", "{case}: {report}");
        assert!(
            subject["message"].as_str().unwrap().contains(says),
            "{case}: {report}"
        );
        // Nothing was fetched file by file after the refusal.
        let singles = proxy.seen_matching(&Method::GET, &format!("{}/", zip_path(&files[0])));
        assert!(singles.is_empty(), "{case}: {singles:?}");
        // Whatever has a final name is verified; no `.part` is left; no
        // byte went outside the output folder.
        for file in files {
            let local = setup.local(&out, victim, file);
            if local.exists() {
                assert_eq!(Some(md5_hex(&local)), file.digest, "{case}");
            }
        }
        if case == "corrupted entry" {
            assert!(!setup.local(&out, victim, &files[1]).exists());
        }
        let parts: Vec<_> = files_below(&out)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".part"))
            .collect();
        assert!(parts.is_empty(), "{case}: {parts:?}");
        let escaped: Vec<_> = files_below(setup.home.path())
            .into_iter()
            .filter(|p| {
                p.to_string_lossy().contains("escaped") || p.to_string_lossy().contains("smuggled")
            })
            .collect();
        assert!(escaped.is_empty(), "{case}: {escaped:?}");
        // The other subject is unaffected, and a rerun against an honest
        // server completes the export.
        let (other, other_files) = &setup.remote[1];
        for file in other_files {
            let local = setup.local(&out, other, file);
            assert_eq!(Some(md5_hex(&local)), file.digest, "{case}");
        }
        let run = run_capped(&mut setup.export(&setup.server.url, &out), LIMIT, "rerun");
        assert_eq!(run.code, Some(0), "{case}: {}", run.stderr);
        setup.assert_all_verified(&out);
    }
}

#[test]
fn dropped_connection_mid_body_resumes_with_range() {
    let setup = setup();
    const CUT: usize = 10_000;
    assert!(setup.all_files().all(|(_, f)| f.size.unwrap() > CUT as u64));
    // A first run fetches each resource as a zip; losing three files makes
    // the rerun fetch exactly those one by one, through the cutting proxy.
    let out = setup.home.path().join("out");
    let run = run_capped(&mut setup.export(&setup.server.url, &out), LIMIT, "export");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for (subject, file) in setup.all_files().skip(1).step_by(2).take(3) {
        std::fs::remove_file(setup.local(&out, subject, file)).unwrap();
    }
    let proxy = FaultProxy::start(
        setup.server.address,
        vec![Rule::new(
            Method::GET,
            "/files/",
            3,
            Fault::CutBody { after: CUT },
        )],
    );
    let run = run_capped(&mut setup.export(&proxy.url, &out), LIMIT, "rerun");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    setup.assert_all_verified(&out);

    // Each cut file was asked again for the rest only.
    let retried = retries_after_faults(&proxy.seen());
    assert_eq!(retried.len(), 3);
    for (cut, again) in &retried {
        assert_eq!(cut.range, None, "{cut:?}");
        let range = again
            .range
            .as_deref()
            .unwrap_or_else(|| panic!("{} was fetched again from the start", cut.path));
        let from: usize = range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected Range {range:?}"));
        assert!(from > 0 && from <= CUT, "{range}");
    }
}

#[test]
fn import_answered_503_is_not_replayed() {
    let rt = runtime();
    let server = TestServer::start();
    let user = rt.block_on(server.create_user());
    let project = rt.block_on(server.project_with(&user, &[]));
    let home = tempfile::tempdir().unwrap();
    let dicom = home.path().join("study");
    write_sample_series(&dicom, "PAT_IMPORT", 1, "CT thorax", 3).unwrap();
    let prearchived = || {
        rt.block_on(async {
            server
                .user_client(&user)
                .await
                .prearchive_sessions(Some(&project))
                .await
                .unwrap()
        })
    };
    let import = |url: &str| {
        let mut cmd = cli(home.path());
        cmd.arg("import")
            .arg(&dicom)
            .args(["-p", &project, "--dest", "prearchive"])
            .args(["--server", url, "-u", &user.0])
            .env("XNAT_PASS", &user.1);
        cmd
    };
    let one_error_line = |run: &Run| -> String {
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{}", run.stderr);
        errors[0].to_owned()
    };

    // 1. The proxy refuses the POST with 503 + Retry-After: the server never
    //    saw it. A POST is not idempotent, so the client must not send it
    //    again: exactly one attempt, nothing stored, a clear error.
    let proxy = FaultProxy::start(
        server.address,
        vec![Rule::new(
            Method::POST,
            "/data/services/import",
            1,
            Fault::Refuse {
                status: 503,
                retry_after: "1".into(),
            },
        )],
    );
    let run = run_capped(&mut import(&proxy.url), LIMIT, "import");
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    let error = one_error_line(&run);
    assert!(
        error.contains("503") && error.contains("not repeated"),
        "{error}"
    );
    assert!(error.contains("prearchive ls"), "{error}");
    assert_eq!(
        proxy
            .seen_matching(&Method::POST, "/data/services/import")
            .len(),
        1
    );
    assert!(prearchived().is_empty(), "{:?}", prearchived());

    // 2. The server stores the import, but the answer the client gets is a
    //    503 (a gateway gave up): still exactly one attempt, so the server
    //    holds the session once, not twice.
    let proxy = FaultProxy::start(
        server.address,
        vec![Rule::new(
            Method::POST,
            "/data/services/import",
            1,
            Fault::ForwardThenRefuse {
                status: 503,
                retry_after: "1".into(),
            },
        )],
    );
    let run = run_capped(&mut import(&proxy.url), LIMIT, "import");
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    one_error_line(&run);
    assert_eq!(
        proxy
            .seen_matching(&Method::POST, "/data/services/import")
            .len(),
        1
    );
    let sessions = prearchived();
    assert_eq!(sessions.len(), 1, "{sessions:?}");

    // 3. By contrast a PUT of custom variables (idempotent) answered 503 is
    //    repeated after the Retry-After, and succeeds.
    let proxy = FaultProxy::start(
        server.address,
        vec![Rule::new(
            Method::PUT,
            &format!("/data/projects/{project}"),
            1,
            Fault::Refuse {
                status: 503,
                retry_after: "1".into(),
            },
        )],
    );
    let mut set = cli(home.path());
    set.args(["fields", "set", &project, "site=leiden"])
        .args(["--server", &proxy.url, "-u", &user.0])
        .env("XNAT_PASS", &user.1);
    let run = run_capped(&mut set, LIMIT, "fields set");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let puts = proxy.seen_matching(&Method::PUT, &format!("/data/projects/{project}"));
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(puts[1].at.duration_since(puts[0].at) >= Duration::from_secs(1));
    let fields = rt.block_on(async {
        server
            .user_client(&user)
            .await
            .fields(&format!("/data/projects/{project}"), "project")
            .await
            .unwrap()
    });
    assert_eq!(fields.get("site").map(String::as_str), Some("leiden"));
}
