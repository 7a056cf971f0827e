//! `xnatkit export --latest` against a real `xnatkit serve`: a subject with
//! two sessions of different dates exports only the newer one with
//! `--latest` (chosen by date, not by label), and both without it, each in
//! its own SUBJECT/SESSION/SCAN TYPE folder.

// Test code: failures should panic with their error.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::{TestServer, cli, files_below, md5_hex, runtime};
use xnatkit_client::archive::RemoteFile;
use xnatkit_client::sample::{SampleScan, SampleSession, SampleSubject};

const TYPE: &str = "Fl_Thorax INSP 3.0 Qr36";
const TWICE: &str = "200001";
const ONCE: &str = "200002";
/// Newer by date, but first by label: `--latest` must go by the date.
const NEWER: &str = "200001_A";
const OLDER: &str = "200001_B";

fn session(label: &str, date: &str) -> SampleSession {
    SampleSession {
        label: label.into(),
        date: date.into(),
        scans: vec![SampleScan {
            id: "2".into(),
            scan_type: TYPE.into(),
            slices: 3,
            side: 32,
        }],
    }
}

fn subjects() -> Vec<SampleSubject> {
    vec![
        SampleSubject {
            label: TWICE.into(),
            sessions: vec![session(OLDER, "2023-01-10"), session(NEWER, "2024-06-01")],
        },
        SampleSubject {
            label: ONCE.into(),
            sessions: vec![session("200002_CT1", "2022-02-02")],
        },
    ]
}

fn status<'a>(report: &'a serde_json::Value, subject: &str) -> &'a serde_json::Value {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == subject)
        .unwrap()
}

/// The `.dcm` files below `dir` are exactly `remote`, byte for byte.
fn assert_same_files(dir: &Path, remote: &[RemoteFile]) {
    let local: Vec<_> = files_below(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert_eq!(local.len(), remote.len(), "{local:?}");
    for file in remote {
        let path = dir.join(&file.path);
        assert_eq!(Some(md5_hex(&path)), file.digest, "{}", path.display());
    }
}

#[test]
fn latest_takes_the_newest_session_by_date_without_it_all_sessions() {
    let rt = runtime();
    let server = TestServer::start();
    let user = rt.block_on(server.create_user());
    let project = rt.block_on(server.project_with(&user, &subjects()));
    let scan = |subject: &str, session: &str| {
        rt.block_on(server.files_of(
            &user,
            &format!("/data/projects/{project}/subjects/{subject}/experiments/{session}/scans/2"),
        ))
    };
    let newer = scan(TWICE, NEWER);
    let older = scan(TWICE, OLDER);
    let once = scan(ONCE, "200002_CT1");
    assert_eq!(newer.len(), 3);
    assert_ne!(newer[0].digest, older[0].digest);

    let home = tempfile::tempdir().unwrap();
    let list = home.path().join("list.csv");
    std::fs::write(&list, format!("subject\n{TWICE}\n{ONCE}\n")).unwrap();
    let export = |out: &Path, latest: bool| -> serde_json::Value {
        let mut cmd = cli(home.path());
        cmd.args(["export", "-f"])
            .arg(&list)
            .arg("-o")
            .arg(out)
            .args(["-p", &project, "-t", TYPE, "--json"])
            .args(["--server", &server.url, "-u", &user.0])
            .env("XNAT_PASS", &user.1);
        if latest {
            cmd.arg("--latest");
        }
        let output = cmd.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };

    // --latest: only the newer session, in SUBJECT/SCAN TYPE as usual.
    let out = home.path().join("latest");
    let report = export(&out, true);
    let twice = status(&report, TWICE);
    assert_eq!(twice["sessions"], serde_json::json!([NEWER]), "{report}");
    assert_eq!(
        twice["folders"],
        serde_json::json!([format!("{TWICE}/{TYPE}")])
    );
    assert_eq!(twice["files"], 3);
    assert_same_files(&out.join(TWICE).join(TYPE), &newer);
    assert_same_files(&out.join(ONCE).join(TYPE), &once);
    assert!(!out.join(TWICE).join(OLDER).exists());
    assert_eq!(report["totals"]["downloaded"], 6);

    // Without it: both sessions, each in its own SUBJECT/SESSION/SCAN TYPE
    // folder (the subject needs the session level); the other subject keeps
    // the short layout.
    let out = home.path().join("all");
    let report = export(&out, false);
    let twice = status(&report, TWICE);
    let mut sessions: Vec<&str> = twice["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    sessions.sort_unstable();
    assert_eq!(sessions, [NEWER, OLDER], "{report}");
    assert_eq!(
        twice["folders"],
        serde_json::json!([
            format!("{TWICE}/{NEWER}/{TYPE}"),
            format!("{TWICE}/{OLDER}/{TYPE}")
        ]),
        "{report}"
    );
    assert_eq!(twice["files"], 6);
    assert_same_files(&out.join(TWICE).join(NEWER).join(TYPE), &newer);
    assert_same_files(&out.join(TWICE).join(OLDER).join(TYPE), &older);
    assert_eq!(
        status(&report, ONCE)["folders"],
        serde_json::json!([format!("{ONCE}/{TYPE}")])
    );
    assert_same_files(&out.join(ONCE).join(TYPE), &once);
    assert_eq!(report["totals"]["downloaded"], 9);

    // --help documents the choice.
    let help = cli(home.path())
        .args(["export", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--latest") && help.contains("session date"),
        "{help}"
    );
}
