//! `xnatkit convert paravision --upload` against a real `xnatkit serve`:
//! the converted series land as one session, the raw study as a zip resource,
//! scans that were never acquired are skipped with a warning, and nothing is
//! sent (exit status 2) when an acquired reconstruction fails.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use support::{TestServer, cli, runtime};
use xnatkit_client::sample::ensure_project;

/// The real PV5.1 study: env `XNATKIT_PARAVISION_BANANA`, else the shared
/// data folder beside the work tree. Missing: skip, or fail under `CI`.
fn banana() -> Option<PathBuf> {
    let path = std::env::var_os("XNATKIT_PARAVISION_BANANA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/paravision/banana_pv51")
        });
    if path.is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "banana study not found at {}",
        path.display()
    );
    // The skip must show in the test output, not only in a log.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: set XNATKIT_PARAVISION_BANANA to the banana_pv51 study");
    }
    None
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
}

#[test]
fn upload_sends_the_series_as_one_session_with_the_raw_study_attached() {
    let Some(banana) = banana() else { return };
    let rt = runtime();
    let server = TestServer::start();
    let user = rt.block_on(server.create_user());
    let project = format!("PV{}", std::process::id());
    rt.block_on(async {
        let client = server.user_client(&user).await;
        ensure_project(&client, &project).await.unwrap();
    });
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let study = work.path().join("banana_pv51");
    copy_dir(&banana, &study);

    // A broken reconstruction: nothing may be sent.
    let broken = work.path().join("broken");
    copy_dir(&banana, &broken);
    std::fs::remove_file(broken.join("2/pdata/1/visu_pars")).unwrap();
    let out = cli(home.path())
        .args(["convert", "paravision"])
        .arg(&broken)
        .args([
            "--upload",
            &project,
            "--subject",
            "FRUIT",
            "--session",
            "BAD",
        ])
        .args(["--server", &server.url, "-u", &user.0])
        .env("XNAT_PASS", &user.1)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing uploaded"), "{stderr}");

    // Scans set up but never run: one with only parameter files, one with a
    // reconstruction folder holding visu_pars but no 2dseq (and no fid).
    std::fs::create_dir_all(study.join("4")).unwrap();
    std::fs::copy(study.join("1/acqp"), study.join("4/acqp")).unwrap();
    std::fs::copy(study.join("1/method"), study.join("4/method")).unwrap();
    std::fs::create_dir_all(study.join("5/pdata/1")).unwrap();
    std::fs::copy(study.join("1/acqp"), study.join("5/acqp")).unwrap();
    std::fs::copy(
        study.join("1/pdata/1/visu_pars"),
        study.join("5/pdata/1/visu_pars"),
    )
    .unwrap();

    let out = cli(home.path())
        .args(["convert", "paravision"])
        .arg(&study)
        .args([
            "--upload",
            &project,
            "--subject",
            "FRUIT",
            "--session",
            "BANANA",
        ])
        .args(["--server", &server.url, "-u", &user.0])
        .env("XNAT_PASS", &user.1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(work.path().join("banana_pv51_dicom/1/1").is_dir());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: scan 4: skipped: never acquired")
            && stderr.contains("warning: scan 5 reconstruction 1: skipped: never acquired"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 scan(s) or reconstruction(s) skipped"),
        "{stdout}"
    );
    assert!(!work.path().join("banana_pv51_dicom/4").exists());
    assert!(!work.path().join("banana_pv51_dicom/5").exists());

    rt.block_on(async {
        let client = server.user_client(&user).await;
        let sessions = client.sessions(&project, "FRUIT").await.unwrap();
        let labels: Vec<&str> = sessions.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["BANANA"], "the broken study must not be uploaded");
        let scans = client.scans(&project, "FRUIT", "BANANA").await.unwrap();
        assert_eq!(scans.len(), 3, "{scans:?}");
        let resource = format!(
            "/data/projects/{project}/subjects/FRUIT/experiments/BANANA/resources/PARAVISION"
        );
        let files = client.files(&resource).await.unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].path, "banana_pv51.zip");
        assert!(files[0].size.unwrap_or(0) > 150_000, "{files:?}");
    });
}
