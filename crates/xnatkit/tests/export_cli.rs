//! The CLI against a real `xnatkit serve`: the seed story end to end,
//! reruns, repair of damaged files, resume after a killed run, token login,
//! and the one-line errors for bad input.

// Helpers below are test code: failures should panic with their error.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{TestServer, cli, files_below, md5_hex, runtime};
use xnatkit_client::sample::{ListCell, seed_story_subjects, write_subject_list_xlsx};

const PREFERRED: &str = "Fl_Thorax INSP 3.0 Qr36";
const FALLBACK: &str = "Fl_Thorax 3.0 Qr36";
/// Subject 1 (index 1) has only the fallback type; the last has neither.
const SUBJECTS: &[&str] = &["125586", "339193", "370941", "830219", "136470"];
const MISSING: &str = "731797";

struct Story {
    server: TestServer,
    user: (String, String),
    project: String,
    home: tempfile::TempDir,
}

fn story(slices: usize, side: u16) -> Story {
    let rt = runtime();
    let server = TestServer::start();
    let (user, project) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &seed_story_subjects(SUBJECTS, slices, side))
            .await;
        (user, project)
    });
    Story {
        server,
        user,
        project,
        home: tempfile::tempdir().unwrap(),
    }
}

impl Story {
    fn list(&self) -> std::path::PathBuf {
        let path = self.home.path().join("Patientnummers_10.xlsx");
        let mut cells: Vec<ListCell> = SUBJECTS
            .iter()
            .map(|s| ListCell::Number(s.parse().unwrap()))
            .collect();
        // A subject typed as text, a blank row and one not on the server.
        cells[2] = ListCell::Text(SUBJECTS[2].into());
        cells.insert(3, ListCell::Text(String::new()));
        cells.push(ListCell::Number(MISSING.parse().unwrap()));
        write_subject_list_xlsx(&path, "Patientnummer", &cells).unwrap();
        path
    }

    fn export(&self, list: &Path, out: &Path) -> std::process::Command {
        self.export_from(&self.project, list, out)
    }

    fn export_from(&self, project: &str, list: &Path, out: &Path) -> std::process::Command {
        let mut cmd = cli(self.home.path());
        cmd.args(["export", "-f"])
            .arg(list)
            .arg("-o")
            .arg(out)
            .args(["-p", project, "-t", PREFERRED, "-t", FALLBACK])
            .args(["--server", &self.server.url, "-u", &self.user.0, "--json"])
            .env("XNAT_PASS", &self.user.1);
        cmd
    }
}

fn run(cmd: &mut std::process::Command) -> (i32, serde_json::Value, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn status_of<'a>(report: &'a serde_json::Value, subject: &str) -> &'a str {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == subject)
        .map(|s| s["status"].as_str().unwrap())
        .unwrap_or("absent")
}

/// Every exported file matches the server's MD5 and nothing is left as `.part`.
fn assert_all_verified(story: &Story, out: &Path) {
    let rt = runtime();
    for (i, subject) in SUBJECTS.iter().enumerate().take(SUBJECTS.len() - 1) {
        let scan_type = if i % 3 == 1 { FALLBACK } else { PREFERRED };
        let session = format!(
            "/data/projects/{}/subjects/{subject}/experiments/{subject}_CT1/scans/2",
            story.project
        );
        let remote = rt.block_on(story.server.files_of(&story.user, &session));
        assert!(!remote.is_empty());
        for file in remote {
            let local = out.join(subject).join(scan_type).join(&file.path);
            assert!(local.is_file(), "missing {}", local.display());
            assert_eq!(Some(md5_hex(&local)), file.digest, "{}", local.display());
        }
    }
    let parts: Vec<_> = files_below(out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "left-over partial files: {parts:?}");
}

#[test]
fn seed_story_end_to_end_then_rerun_and_repair() {
    let story = story(6, 64);
    let list = story.list();
    let out = story.home.path().join("CT Scans");

    let (code, report, stderr) = run(&mut story.export(&list, &out));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(status_of(&report, "125586"), "exported");
    assert_eq!(status_of(&report, "339193"), "exported");
    assert_eq!(status_of(&report, "370941"), "exported");
    assert_eq!(status_of(&report, "136470"), "no_matching_scan_type");
    assert_eq!(status_of(&report, MISSING), "subject_not_found");
    let fallback = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == "339193")
        .unwrap();
    assert_eq!(fallback["matched_types"][0], FALLBACK);
    assert!(
        stderr.contains("not exported:") && stderr.contains(MISSING),
        "{stderr}"
    );
    assert!(out.join("export-report.csv").is_file());
    assert!(out.join("export-report.json").is_file());
    // The topogram (scan 1) is never exported.
    assert!(
        files_below(&out)
            .iter()
            .all(|p| !p.to_string_lossy().contains("Topogram"))
    );
    assert_all_verified(&story, &out);
    let total = report["totals"]["downloaded"].as_u64().unwrap();
    assert_eq!(total, 4 * 6);

    // A rerun transfers nothing and keeps everything verified.
    let (code, report, stderr) = run(&mut story.export(&list, &out));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        report["totals"]["already_verified"].as_u64().unwrap(),
        total
    );
    assert_eq!(report["totals"]["downloaded"].as_u64().unwrap(), 0);

    // Damage two files: one truncated, one with a flipped byte (same size).
    let dir = out.join("125586").join(PREFERRED);
    let mut files: Vec<_> = files_below(&dir);
    files.sort();
    let truncated = &files[0];
    let flipped = &files[1];
    let len = std::fs::metadata(truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let mut bytes = std::fs::read(flipped).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    // Keep the mtime moving so the manifest cannot vouch for the old bytes.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(flipped, &bytes).unwrap();

    let (code, report, stderr) = run(&mut story.export(&list, &out));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        report["totals"]["repaired"].as_u64().unwrap(),
        2,
        "{report}"
    );
    assert_all_verified(&story, &out);
}

#[test]
fn killed_run_resumes_and_loses_nothing() {
    // Bigger files so the kill lands mid-transfer.
    let story = story(30, 512);
    let list = story.list();
    let out = story.home.path().join("out");

    let mut child = story
        .export(&list, &out)
        .args(["--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = files_below(&out)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .count();
        if done >= 3 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Whatever carries a final name is complete: it matches a server digest.
    let rt = runtime();
    let mut digests = std::collections::HashSet::new();
    for subject in SUBJECTS {
        let path = format!(
            "/data/projects/{}/subjects/{subject}/experiments/{subject}_CT1/scans/ALL",
            story.project
        );
        for f in rt.block_on(story.server.files_of(&story.user, &path)) {
            digests.insert(f.digest.unwrap());
        }
    }
    for file in files_below(&out) {
        if file.extension().is_some_and(|e| e == "dcm") {
            assert!(
                digests.contains(&md5_hex(&file)),
                "incomplete file under its final name: {}",
                file.display()
            );
        }
    }

    // A .part half-way through resumes with a Range request.
    let some_dcm = files_below(&out)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "dcm"))
        .unwrap();
    let bytes = std::fs::read(&some_dcm).unwrap();
    std::fs::remove_file(&some_dcm).unwrap();
    let mut part = some_dcm.as_os_str().to_owned();
    part.push(".part");
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();

    let (code, report, stderr) = run(&mut story.export(&list, &out));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(report["totals"]["failed"].as_u64().unwrap(), 0, "{report}");
    assert_eq!(md5_hex(&some_dcm), hex_of(&bytes));
    assert_all_verified(&story, &out);
}

fn hex_of(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

#[test]
fn token_login_ls_and_logout() {
    let story = story(1, 16);
    let home = story.home.path();
    let out = cli(home)
        .args(["login", "--server", &story.server.url, "-u", &story.user.0])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{}\n", story.user.1).as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tokens = home.join("config").join("tokens.json");
    let text = std::fs::read_to_string(&tokens).unwrap();
    assert!(
        !text.contains(&story.user.1),
        "the password must not be stored"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // No user, no password: the stored token is used (and the only stored
    // server is the default).
    let ls = cli(home)
        .args(["ls", &story.project, "--json"])
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let subjects: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(subjects.as_array().unwrap().len(), SUBJECTS.len());

    let logout = cli(home).args(["logout"]).output().unwrap();
    assert!(
        logout.status.success(),
        "{}",
        String::from_utf8_lossy(&logout.stderr)
    );
    let ls = cli(home)
        .args(["ls", &story.project, "--server", &story.server.url])
        .output()
        .unwrap();
    assert!(!ls.status.success());
    assert!(String::from_utf8_lossy(&ls.stderr).contains("no credentials"));
}

#[test]
fn bad_input_gives_one_line_errors() {
    let story = story(1, 16);
    let home = story.home.path();
    let list = story.list();
    let one_line_error = |cmd: &mut std::process::Command, needle: &str| {
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "expected failure for {needle}: {stderr}"
        );
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(needle), "wanted {needle:?} in {stderr}");
    };

    // Wrong password.
    let mut cmd = story.export(&list, &home.join("o1"));
    cmd.env("XNAT_PASS", "not-the-password");
    one_line_error(&mut cmd, "failed");
    // Unknown project.
    one_line_error(
        &mut story.export_from("NO_SUCH_PROJECT", &list, &home.join("o2")),
        "NO_SUCH_PROJECT",
    );
    // Empty and malformed lists, a label with a space.
    let empty = home.join("empty.csv");
    std::fs::write(&empty, "subject\n\n").unwrap();
    one_line_error(
        &mut story.export(&empty, &home.join("o3")),
        "contains no subject labels",
    );
    let spaced = home.join("spaced.csv");
    std::fs::write(&spaced, "subject\n125586\n1255 86\n").unwrap();
    one_line_error(&mut story.export(&spaced, &home.join("o4")), "row 3");
    let no_column = home.join("cols.csv");
    std::fs::write(&no_column, "a,b\n1,2\n").unwrap();
    one_line_error(&mut story.export(&no_column, &home.join("o5")), "--column");
    // Nothing listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cmd = cli(home);
    cmd.args(["ls", "--server", &format!("http://{dead}"), "-u", "x"])
        .env("XNAT_PASS", "y");
    one_line_error(&mut cmd, "cannot reach");
    // Nothing half-written for the failed runs.
    for o in ["o1", "o2", "o3", "o4", "o5"] {
        assert!(
            files_below(&home.join(o))
                .iter()
                .all(|p| !p.to_string_lossy().ends_with(".dcm"))
        );
    }
}

#[test]
fn server_killed_mid_run_is_reported() {
    let mut story = story(30, 512);
    let list = story.list();
    let out = story.home.path().join("out");
    let child = story
        .export(&list, &out)
        .args(["--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && !files_below(&out)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "dcm"))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    story.server.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach") || stderr.contains("failed"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("export-report.json")).unwrap())
            .unwrap();
    assert_ne!(status_of(&report, "125586"), "absent");
    assert!(
        report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "failed"),
        "{report}"
    );
}
