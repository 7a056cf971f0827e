//! `xnatkit prearchive` end to end against a real `xnatkit serve`: DICOM
//! imported into project A's prearchive, moved to project B, seen there
//! (and no longer under A), then archived into B with every file intact.

// Test code: failures should panic with their error.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::{TestServer, cli, files_below, md5_hex, runtime};
use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_series};

const PATIENT: &str = "PAT_MOVE";

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn import_to_prearchive_move_to_other_project_then_archive() {
    let rt = runtime();
    let server = TestServer::start();
    let user = rt.block_on(server.create_user());
    let project_a = rt.block_on(server.project_with(&user, &[]));
    let project_b = rt.block_on(server.project_with(&user, &[]));
    let home = tempfile::tempdir().unwrap();

    // A small CT study: one series of four instances.
    let study = home.path().join("study");
    let template = SyntheticInstance {
        modality: "CT".into(),
        series_number: Some(3),
        series_description: Some("Thorax 1.0".into()),
        patient_id: Some(PATIENT.into()),
        patient_name: Some(format!("Test^{PATIENT}")),
        study_date: Some("20240517".into()),
        rows: 32,
        cols: 32,
        ..SyntheticInstance::new(&new_uid(), &new_uid())
    };
    let written = write_series(&study, &template, 4).unwrap();
    let local_md5: BTreeSet<String> = written.iter().map(|p| md5_hex(p)).collect();
    assert_eq!(local_md5.len(), 4);

    let xnatkit = |args: &[&str]| {
        let mut cmd = cli(home.path());
        cmd.args(args)
            .args(["--server", &server.url, "-u", &user.0])
            .env("XNAT_PASS", &user.1);
        cmd
    };
    let prearchive = |project: Option<&str>| -> Vec<serde_json::Value> {
        let mut args = vec!["prearchive", "ls", "--json"];
        if let Some(p) = project {
            args.extend(["-p", p]);
        }
        let text = ok(&mut xnatkit(&args));
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };

    // Import into A's prearchive.
    let uri = ok(xnatkit(&["import", "-p", &project_a, "--dest", "prearchive"]).arg(&study));
    assert!(
        uri.trim()
            .contains(&format!("/prearchive/projects/{project_a}/")),
        "{uri}"
    );
    let in_a = prearchive(Some(&project_a));
    assert_eq!(in_a.len(), 1, "{in_a:?}");
    let session = &in_a[0];
    assert_eq!(session["project"], project_a.as_str());
    let handle = format!(
        "{}/{}/{}",
        session["project"].as_str().unwrap(),
        session["timestamp"].as_str().unwrap(),
        session["name"].as_str().unwrap()
    );
    assert!(prearchive(Some(&project_b)).is_empty());

    // Move it to B: listed under B, gone from A, in the overall listing
    // exactly once.
    let moved = xnatkit(&["prearchive", "move", &handle, "--to", &project_b])
        .output()
        .unwrap();
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(
        String::from_utf8_lossy(&moved.stderr).contains(&format!("to project {project_b}")),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(prearchive(Some(&project_a)).is_empty());
    let in_b = prearchive(Some(&project_b));
    assert_eq!(in_b.len(), 1, "{in_b:?}");
    assert_eq!(in_b[0]["project"], project_b.as_str());
    assert_eq!(in_b[0]["name"], session["name"]);
    let everywhere: Vec<_> = prearchive(None)
        .into_iter()
        .filter(|s| s["name"] == session["name"])
        .collect();
    assert_eq!(everywhere.len(), 1, "{everywhere:?}");
    assert_eq!(everywhere[0]["project"], project_b.as_str());
    // The table form shows the new handle.
    let table = ok(&mut xnatkit(&["prearchive", "ls", "-p", &project_b]));
    let handle_b = format!(
        "{project_b}/{}/{}",
        in_b[0]["timestamp"].as_str().unwrap(),
        in_b[0]["name"].as_str().unwrap()
    );
    assert!(table.contains(&handle_b), "{table}");
    // The old handle no longer names anything.
    let stale = xnatkit(&["prearchive", "archive", &handle])
        .output()
        .unwrap();
    assert!(!stale.status.success());

    // Archive it from B: it leaves the prearchive and lands in B's archive
    // with its four files intact; A got nothing.
    let archived = ok(&mut xnatkit(&["prearchive", "archive", &handle_b]));
    assert!(
        archived.contains(&format!("/projects/{project_b}/")),
        "{archived}"
    );
    assert!(prearchive(Some(&project_b)).is_empty());
    let subjects: serde_json::Value =
        serde_json::from_str(&ok(&mut xnatkit(&["ls", &project_b, "--json"]))).unwrap();
    assert_eq!(subjects.as_array().unwrap().len(), 1, "{subjects}");
    let subjects_a: serde_json::Value =
        serde_json::from_str(&ok(&mut xnatkit(&["ls", &project_a, "--json"]))).unwrap();
    assert!(subjects_a.as_array().unwrap().is_empty(), "{subjects_a}");

    // Download the archived session and compare the bytes.
    let out = home.path().join("download");
    ok(xnatkit(&["download", &project_b]).arg("-o").arg(&out));
    let got: BTreeSet<String> = files_below(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .map(|p| md5_hex(Path::new(&p)))
        .collect();
    assert_eq!(got, local_md5);
}
