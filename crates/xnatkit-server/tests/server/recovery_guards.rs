//! Start-up recovery never loses bytes and never mistakes missing storage
//! for damage: a file found without a row goes to `lost+found`, an
//! unfinished temp file is removed, a graceful stop lets the next start skip
//! the archive walk, an archive folder that lost most of its files (an
//! unmounted share) stops the start with nothing changed, and a second
//! server on the same data folder is refused. The server is
//! started and stopped several times on one data folder, so these run on
//! SQLite only: what they test is file-system work, not SQL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xnatkit_server::ServerError;

use crate::harness::{ADMIN_PASSWORD, config};

type ServerTask = JoinHandle<Result<(), ServerError>>;

struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: ServerTask,
}

/// Starts on `data`; `Err` when the server refused to start.
async fn start(data: &Path) -> Result<Running, ServerError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(xnatkit_server::run(listener, config(data), async move {
        let _ = rx.await;
    }));
    // A refused start drops the bound listener, which resets a waiting
    // probe; the timeout only guards against a hang.
    let http = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for _ in 0..400 {
        if task.is_finished() {
            return Err(task
                .await
                .unwrap()
                .expect_err("a server that ended refused to start"));
        }
        if let Ok(r) = http.get(format!("{url}/data/version")).send().await
            && r.status() == StatusCode::OK
        {
            return Ok(Running { url, stop, task });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server on {} did not become ready", data.display());
}

async fn stop(running: Running) {
    let _ = running.stop.send(());
    running.task.await.unwrap().unwrap();
}

fn admin() -> (&'static str, &'static str) {
    ("admin", ADMIN_PASSWORD)
}

/// Puts `count` small files into resource R of project REC.
async fn seed(url: &str, count: usize) {
    let http = Client::new();
    let (user, password) = admin();
    let put = |path: String| {
        http.put(format!("{url}{path}"))
            .basic_auth(user, Some(password))
    };
    assert!(
        put("/data/projects/REC".to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    for n in 0..count {
        let r = put(format!("/data/projects/REC/resources/R/files/f{n}.txt"))
            .body(format!("file {n}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

async fn listed(url: &str) -> Vec<String> {
    let (user, password) = admin();
    let r = Client::new()
        .get(format!(
            "{url}/data/projects/REC/resources/R/files?format=json"
        ))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = r.json().await.unwrap();
    let mut names: Vec<String> = json["ResultSet"]["Result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["Name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The folder of resource R on disk (the one holding `f0.txt`).
fn resource_folder(data: &Path) -> PathBuf {
    files_below(&data.join("archive"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "f0.txt"))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("resource R is on disk")
}

/// What a crash leaves: no clean-stop marker.
fn forget_clean_stop(data: &Path) {
    let marker = data.join(xnatkit_server::recovery::CLEAN_SHUTDOWN_MARKER);
    assert!(marker.exists(), "a graceful stop leaves the marker");
    std::fs::remove_file(marker).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_go_to_lost_and_found_and_temps_are_removed() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await.unwrap();
    seed(&server.url, 3).await;
    stop(server).await;
    let folder = resource_folder(data.path());
    std::fs::write(folder.join("stray.txt"), b"bytes nobody recorded").unwrap();
    std::fs::write(folder.join(".f9.txt.part-0123456789abcdef"), b"half").unwrap();

    // After a graceful stop the walk is skipped: the stray file stays put.
    let server = start(data.path()).await.unwrap();
    assert!(folder.join("stray.txt").exists());
    stop(server).await;

    // After a crash the walk runs.
    forget_clean_stop(data.path());
    let server = start(data.path()).await.unwrap();
    assert_eq!(listed(&server.url).await, ["f0.txt", "f1.txt", "f2.txt"]);
    assert!(!folder.join("stray.txt").exists());
    assert!(!folder.join(".f9.txt.part-0123456789abcdef").exists());
    let kept: Vec<PathBuf> =
        files_below(&data.path().join(xnatkit_server::recovery::LOST_AND_FOUND));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].ends_with("stray.txt"));
    assert_eq!(std::fs::read(&kept[0]).unwrap(), b"bytes nobody recorded");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mostly_missing_archive_stops_the_start_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await.unwrap();
    seed(&server.url, 24).await;
    stop(server).await;

    // The archive storage is not there (an unmounted share) after a crash.
    forget_clean_stop(data.path());
    let archive = data.path().join("archive");
    let aside = data.path().join("archive-unmounted");
    std::fs::rename(&archive, &aside).unwrap();
    std::fs::create_dir(&archive).unwrap();
    let refused = start(data.path())
        .await
        .err()
        .expect("the start is refused");
    let message = refused.to_string();
    assert!(message.contains("24 of 24"), "{message}");
    assert!(message.contains("mounted"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");

    // Mounted again: every file is still recorded and served.
    std::fs::remove_dir(&archive).unwrap();
    std::fs::rename(&aside, &archive).unwrap();
    let server = start(data.path()).await.unwrap();
    let names = listed(&server.url).await;
    assert_eq!(names.len(), 24, "{names:?}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_folder_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let first = start(data.path()).await.unwrap();
    seed(&first.url, 2).await;
    let refused = start(data.path())
        .await
        .err()
        .expect("the second start is refused");
    let message = refused.to_string();
    assert!(
        message.contains("in use by another xnatkit server"),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    // The first one is untouched by the attempt: its files are listed and
    // nothing of it went to lost+found.
    assert_eq!(listed(&first.url).await, ["f0.txt", "f1.txt"]);
    assert!(
        !data
            .path()
            .join(xnatkit_server::recovery::LOST_AND_FOUND)
            .exists()
    );
    stop(first).await;
    // Once it stopped, the folder is free again.
    let again = start(data.path()).await.unwrap();
    assert_eq!(listed(&again.url).await, ["f0.txt", "f1.txt"]);
    stop(again).await;
}
