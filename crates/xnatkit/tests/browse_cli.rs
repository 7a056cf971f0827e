//! `ls`, `download`, `fields`, `dump`, `import` and `prearchive` against a
//! real `xnatkit serve`, and the client's transparent re-login.

// Helpers below are test code: failures should panic with their error.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use support::{TestServer, cli, files_below, md5_hex, runtime};
use xnatkit_client::sample::{seed_story_subjects, write_sample_series};

struct Env {
    server: TestServer,
    user: (String, String),
    project: String,
    home: tempfile::TempDir,
}

fn env() -> Env {
    let rt = runtime();
    let server = TestServer::start();
    let (user, project) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &seed_story_subjects(&["S1", "S2"], 3, 32))
            .await;
        (user, project)
    });
    Env {
        server,
        user,
        project,
        home: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        let out = cli(self.home.path())
            .args(args)
            .args(["--server", &self.server.url, "-u", &self.user.0])
            .env("XNAT_PASS", &self.user.1)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xnatkit {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_slice(&self.run(args).stdout).unwrap()
    }
}

#[test]
fn ls_download_fields_and_dump() {
    let env = env();
    let p = env.project.as_str();
    let projects = env.json(&["ls", "--json"]);
    assert!(projects.as_array().unwrap().iter().any(|r| r["id"] == p));
    let subjects = env.json(&["ls", p, "--json"]);
    assert_eq!(subjects.as_array().unwrap().len(), 2);
    let sessions = env.json(&["ls", &format!("{p}/S1"), "--json"]);
    assert_eq!(sessions[0]["label"], "S1_CT1");
    let scans = env.json(&["ls", &format!("{p}/S1/S1_CT1"), "--json"]);
    let types: Vec<&str> = scans
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scan_type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"Fl_Thorax INSP 3.0 Qr36"), "{types:?}");
    let files = env.json(&["ls", &format!("{p}/S1/S1_CT1/2"), "--json"]);
    assert_eq!(files.as_array().unwrap().len(), 3);
    let table = String::from_utf8(env.run(&["ls", p]).stdout).unwrap();
    assert!(
        table.starts_with("SUBJECT") && table.contains("S2"),
        "{table}"
    );

    // download: XNAT's folder structure, verified, and a rerun skips all.
    let out = env.home.path().join("dl");
    let out_s = out.to_string_lossy().into_owned();
    env.run(&["download", &format!("{p}/S1/S1_CT1"), "-o", &out_s]);
    let scan_dir = out.join("S1_CT1/scans/2-Fl_Thorax_INSP_3_0_Qr36/resources/DICOM/files");
    let local = files_below(&scan_dir);
    assert_eq!(local.len(), 3, "{:?}", files_below(&out));
    for f in files.as_array().unwrap() {
        let path = scan_dir.join(f["path"].as_str().unwrap());
        assert_eq!(md5_hex(&path), f["digest"].as_str().unwrap());
    }
    let rerun = env.run(&["download", &format!("{p}/S1/S1_CT1"), "-o", &out_s]);
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        stderr.contains("0 downloaded, 5 already verified"),
        "{stderr}"
    );
    env.run(&["download", &format!("{p}/S1"), "-o", &out_s]);
    assert!(out.join("S1/S1_CT1/scans/1-Topogram_0_6_T20f").is_dir());

    // fields: set, then read back (XNAT keeps names in lower case).
    let session = format!("{p}/S1/S1_CT1");
    env.run(&["fields", "set", &session, "weight=42", "site=UMCG"]);
    let value = env.run(&["fields", "get", &session, "weight"]);
    assert_eq!(String::from_utf8_lossy(&value.stdout).trim(), "42");
    let all = env.json(&["fields", "get", &session, "--json"]);
    assert_eq!(all["site"], "UMCG", "{all}");

    // dump: the header of a scan's first file.
    let dump = env.json(&[
        "dump",
        &format!("{session}/2"),
        "--field",
        "Modality",
        "--json",
    ]);
    let rows = dump.as_array().unwrap();
    assert!(rows.iter().any(|r| r["value"] == "CT"), "{dump}");
}

#[test]
fn import_to_prearchive_then_archive() {
    let env = env();
    let p = env.project.as_str();
    let folder = env.home.path().join("incoming");
    write_sample_series(
        &folder.join("series2"),
        "NEWSUBJ",
        2,
        "Fl_Thorax 3.0 Qr36",
        4,
    )
    .unwrap();
    let folder_s = folder.to_string_lossy().into_owned();

    let uri = env.run(&[
        "import",
        &folder_s,
        "-p",
        p,
        "--subject",
        "NEWSUBJ",
        "--session",
        "NEWSUBJ_CT1",
        "--dest",
        "prearchive",
    ]);
    let uri = String::from_utf8_lossy(&uri.stdout).trim().to_owned();
    assert!(uri.starts_with("/data/prearchive/"), "{uri}");

    let listed = env.json(&["prearchive", "ls", "-p", p, "--json"]);
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    let handle = format!(
        "{}/{}/{}",
        sessions[0]["project"].as_str().unwrap(),
        sessions[0]["timestamp"].as_str().unwrap(),
        sessions[0]["name"].as_str().unwrap()
    );
    let archived = env.run(&["prearchive", "archive", &handle]);
    let archived = String::from_utf8_lossy(&archived.stdout).trim().to_owned();
    assert!(archived.starts_with("/data/archive/"), "{archived}");
    let subjects = env.json(&["ls", p, "--json"]);
    assert!(
        subjects
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["label"] == "NEWSUBJ"),
        "{subjects}"
    );
    let listed = env.json(&["prearchive", "ls", "-p", p, "--json"]);
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");

    // Straight into the archive from a zip-less folder, and delete from the prearchive.
    let second = env.home.path().join("second");
    write_sample_series(&second, "OTHER", 5, "Topogram", 2).unwrap();
    let second_s = second.to_string_lossy().into_owned();
    let uri = env.run(&[
        "import",
        &second_s,
        "-p",
        p,
        "--subject",
        "OTHER",
        "--session",
        "OTHER_CT1",
    ]);
    assert!(String::from_utf8_lossy(&uri.stdout).starts_with("/data/archive/"));
    env.run(&[
        "import",
        &second_s,
        "-p",
        p,
        "--subject",
        "GONE",
        "--session",
        "GONE_CT1",
        "--dest",
        "prearchive",
    ]);
    let listed = env.json(&["prearchive", "ls", "-p", p, "--json"]);
    let s = &listed.as_array().unwrap()[0];
    let handle = format!(
        "{}/{}/{}",
        s["project"].as_str().unwrap(),
        s["timestamp"].as_str().unwrap(),
        s["name"].as_str().unwrap()
    );
    env.run(&["prearchive", "delete", &handle]);
    let listed = env.json(&["prearchive", "ls", "-p", p, "--json"]);
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
}

#[test]
fn expired_session_is_renewed_transparently() {
    let env = env();
    let rt = runtime();
    rt.block_on(async {
        let client = env.server.user_client(&env.user).await;
        assert!(!client.subjects(&env.project).await.unwrap().is_empty());
        // End the server-side session behind the client's back.
        client.disconnect().await;
        let subjects = client.subjects(&env.project).await.unwrap();
        assert_eq!(subjects.len(), 2);
    });
}

#[test]
fn netrc_and_environment_credentials() {
    let env = env();
    let home = env.home.path();
    let port = env.server.address.port();
    std::fs::write(
        home.join("netrc"),
        format!(
            "machine 127.0.0.1:{port}\n  login {}\n  password {}\n",
            env.user.0, env.user.1
        ),
    )
    .unwrap();
    // .netrc by host:port, no user given.
    let out = cli(home)
        .args(["ls", &env.project, "--server", &env.server.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(home.join("netrc")).unwrap();
    // XNAT_HOST / XNAT_USER / XNAT_PASS only.
    let out = cli(home)
        .args(["ls", &env.project])
        .env("XNAT_HOST", &env.server.url)
        .env("XNAT_USER", &env.user.0)
        .env("XNAT_PASS", &env.user.1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("S2"));
    // A user without any password source and no terminal: one clear line.
    let out = cli(home)
        .args([
            "ls",
            &env.project,
            "--server",
            &env.server.url,
            "-u",
            &env.user.0,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no password"), "{stderr}");
}
