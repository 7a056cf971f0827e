//! `xnatkit upload run` interrupted for real (SIGINT without a terminal, then
//! SIGKILL) against a real server on loopback, then rerun to completion.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xnatkit_client::{ClientOptions, Credentials, XnatClient};
use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_series};
use xnatkit_upload::files_sheet::{self, FileRow, INTERRUPTED};
use xnatkit_upload::workbook::Workbook;

const PASSWORD: &str = "resume-test-pass";
const SUBJECTS: usize = 8;
const SERIES: i64 = 3;
const PER_SERIES: usize = 40;

fn xnatkit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xnatkit"));
    cmd.env("XNAT_USER", "admin")
        .env("XNAT_PASS", PASSWORD)
        .env_remove("XNAT_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn write_tree(root: &Path) {
    for s in 1..=SUBJECTS {
        let study = new_uid();
        for series in 1..=SERIES {
            let template = SyntheticInstance {
                series_number: Some(series),
                patient_id: Some(format!("{s:04}")),
                study_date: Some("20240301".into()),
                ..SyntheticInstance::new(&study, &new_uid())
            };
            let dir = root
                .join(format!("Test^Subject-{s:04}"))
                .join("20240301")
                .join(format!("Series {series}"));
            write_series(&dir, &template, PER_SERIES).unwrap();
        }
    }
}

fn rows(sheet: &Path) -> Option<Vec<FileRow>> {
    // The run replaces the workbook by rename, so a read never sees half a file;
    // it can still race the rename itself, hence the Option.
    let wb = Workbook::open(sheet).ok()?;
    let config = xnatkit_upload::Config::read(&wb).ok()?;
    files_sheet::read_rows(&wb, &config).ok().map(|(_, r)| r)
}

fn successes(sheet: &Path) -> usize {
    rows(sheet).map_or(0, |r| r.iter().filter(|r| r.is_success()).count())
}

fn start_run(sheet: &Path, url: &str) -> Child {
    xnatkit()
        .args([
            "upload",
            "run",
            "--jobs",
            "1",
            "--project",
            "RES",
            "--server",
            url,
            "--spreadsheet",
        ])
        .arg(sheet)
        .spawn()
        .unwrap()
}

/// Waits until the saved workbook shows more than `than` uploaded rows.
fn wait_for_progress(sheet: &Path, than: usize, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if successes(sheet) > than {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no progress within 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_and_killed_runs_resume_to_a_complete_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = xnatkit_server::ServerConfig::new(tmp.path().join("server"));
    config.admin_password = Some(PASSWORD.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(xnatkit_server::run(
        listener,
        config,
        std::future::pending(),
    ));
    let credentials = Credentials::Password {
        user: "admin".into(),
        password: PASSWORD.into(),
    };
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) =
            XnatClient::connect(&url, credentials.clone(), ClientOptions::default()).await
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = client.expect("server up");
    client
        .put_object("/data/projects/RES", &[], "project")
        .await
        .unwrap();

    let data: PathBuf = tmp.path().join("data");
    write_tree(&data);
    let sheet = tmp.path().join("files.xlsx");
    let total = SUBJECTS * SERIES as usize * PER_SERIES;
    let blocking = {
        let (sheet, data, url) = (sheet.clone(), data.clone(), url.clone());
        move || {
            let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
            ok(xnatkit()
                .args(["upload", "init", "--spreadsheet"])
                .arg(&sheet));
            ok(xnatkit()
                .args(["upload", "scan", "--spreadsheet"])
                .arg(&sheet)
                .arg("--dir")
                .arg(&data));
            assert_eq!(
                rows(&sheet).unwrap().iter().filter(|r| r.upload).count(),
                total
            );

            // 1. SIGINT without a terminal: stop at once, finish in-flight, mark the rest.
            let mut child = start_run(&sheet, &url);
            let progressed = wait_for_progress(&sheet, 0, &mut child);
            assert!(
                progressed,
                "the run finished before it could be interrupted"
            );
            let pid = child.id().to_string();
            assert!(
                Command::new("kill")
                    .args(["-INT", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(130),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let after_int = rows(&sheet).unwrap();
            let done = after_int.iter().filter(|r| r.is_success()).count();
            let interrupted = after_int.iter().filter(|r| r.status == INTERRUPTED).count();
            assert!(done > 0 && done < total, "{done}");
            assert_eq!(
                done + interrupted,
                total,
                "every row is either uploaded or marked interrupted"
            );

            // 2. SIGKILL: nothing can be saved for the dataset in flight.
            let mut child = start_run(&sheet, &url);
            if wait_for_progress(&sheet, done, &mut child) {
                child.kill().unwrap();
            }
            let _ = child.wait();
            assert!(rows(&sheet).is_some(), "the workbook survives a kill");

            // 3. Rerun to the end.
            let out = start_run(&sheet, &url).wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(rows(&sheet).unwrap().iter().all(|r| r.is_success()));
        }
    };
    tokio::task::spawn_blocking(blocking).await.unwrap();

    // The server has every file exactly once, in the expected places.
    let mut files = 0;
    for subject in client.subjects("RES").await.unwrap() {
        for session in client.sessions("RES", &subject.label).await.unwrap() {
            assert_eq!(session.label, format!("{}_MR1", subject.label));
            for scan in client
                .scans("RES", &subject.label, &session.label)
                .await
                .unwrap()
            {
                let path = format!(
                    "/data/projects/RES/subjects/{}/experiments/{}/scans/{}/resources/DICOM",
                    subject.label, session.label, scan.id
                );
                files += client.files(&path).await.unwrap().len();
            }
        }
    }
    assert_eq!(files, total);
}
