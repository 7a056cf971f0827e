//! Slow and hostile clients against the real server: a connection that
//! never finishes its request head is closed, an upload whose body stalls is
//! answered 408 and leaves nothing behind, a large upload that keeps sending
//! is not cut off, and a zip bomb is refused without filling the disk.
//! Timeouts are configured short; the assertions are on what happened (EOF,
//! the answer), never on how long it took. Backend-independent: SQLite only.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Backend, TestServer, entries_of, study, walk, zip_of};

/// Far beyond the configured timeouts; only guards against a hang.
const GUARD: Duration = Duration::from_secs(60);

async fn short_timeouts() -> TestServer {
    TestServer::start_with(Backend::Sqlite, |config| {
        config.header_read_timeout = Duration::from_millis(500);
        config.body_idle_timeout = Duration::from_millis(500);
        config.extract_ratio_free_bytes = 1 << 20;
    })
    .await
    .expect("SQLite is always available")
}

fn host_port(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    match tokio::time::timeout(GUARD, stream.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => {}
        // A reset is a close too.
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(err)) => panic!("reading the answer: {err}"),
        Err(_) => panic!("the server kept a stalled connection open"),
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_request_heads_are_closed() {
    let server = short_timeouts().await;
    let mut silent = TcpStream::connect(host_port(&server))
        .await
        .expect("connect");
    let mut partial = TcpStream::connect(host_port(&server))
        .await
        .expect("connect");
    partial
        .write_all(b"POST /data/services/import HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    for stream in [&mut silent, &mut partial] {
        let answer = read_to_close(stream).await;
        // Either closed without a word or told why; never served.
        let text = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    // The server still serves everyone else.
    let r = server.get("/data/version", &server.admin()).await;
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_upload_is_answered_408_and_leaves_nothing() {
    let server = short_timeouts().await;
    server.create_project("SLOW").await;
    let (user, password) = server.admin();
    let basic = base64_encode(&format!("{user}:{password}"));
    let mut stream = TcpStream::connect(host_port(&server))
        .await
        .expect("connect");
    let head = format!(
        "POST /data/services/import?project=SLOW&subject=S&session=E HTTP/1.1\r\n\
         Host: x\r\nAuthorization: Basic {basic}\r\nContent-Type: application/zip\r\n\
         Content-Length: 10000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&[0u8; 4096]).await.expect("some body");
    // ... and then nothing.
    let answer = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("sent nothing"), "{text}");
    assert!(
        server.staging_leftovers().is_empty(),
        "{:?}",
        server.staging_leftovers()
    );
    assert!(walk(&server.data.path().join("prearchive")).is_empty());
    assert!(walk(&server.data.path().join("archive")).is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_but_steady_upload_is_not_cut_off() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.body_idle_timeout = Duration::from_secs(2);
    })
    .await
    .expect("SQLite is always available");
    server.create_project("STEADY").await;
    let generated = study(1, 2, |_| {});
    let zip = zip_of(&entries_of(generated.dir.path(), &generated.files));
    // Sent in pieces a tenth of the idle timeout apart, the whole longer
    // than it: only silence counts, not the total.
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = zip
        .chunks(zip.len() / 12 + 1)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let body = futures::stream::iter(pieces).then(|piece| async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        piece
    });
    let r = server
        .req(
            reqwest::Method::POST,
            "/data/services/import?dest=/archive&project=STEADY&subject=S&session=E",
            Some(&server.admin()),
        )
        .header("Content-Type", "application/zip")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("POST");
    let status = r.status();
    let text = r.text().await.expect("text");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        text.trim_end(),
        "/data/archive/projects/STEADY/subjects/S/experiments/E"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_bomb_is_refused_by_total_ratio() {
    let server = short_timeouts().await;
    server.create_project("BOMB").await;
    // Sixteen entries, each within the per-entry ratio limit (1000), that
    // together expand far more than 100 times the archive's size.
    let mut entry = vec![0u8; 2 << 20];
    for (i, byte) in entry.iter_mut().enumerate().step_by(997) {
        *byte = (i % 251) as u8;
    }
    let entries: Vec<(String, Vec<u8>)> = (0..16)
        .map(|n| (format!("bomb/{n}.dcm"), entry.clone()))
        .collect();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    for (name, bytes) in &entries {
        zip.start_file(name.as_str(), options).expect("entry");
        zip.write_all(bytes).expect("write");
    }
    let body = zip.finish().expect("finish").into_inner();
    let expanded: usize = entries.iter().map(|(_, b)| b.len()).sum();
    // The entries are alike, so each has about the archive's ratio.
    let ratio = expanded / body.len();
    assert!(
        (150..900).contains(&ratio),
        "the generated bomb has ratio {ratio}"
    );
    let (status, text) = server
        .import("dest=/archive&project=BOMB", body.clone(), &server.admin())
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("extracted size"), "{text}");
    assert!(server.staging_leftovers().is_empty());
    assert!(walk(&server.data.path().join("archive")).is_empty());

    // The same bomb as an `extract=true` resource upload meets the same cap.
    let answer = server
        .req(
            reqwest::Method::PUT,
            "/data/projects/BOMB/resources/R/files/bomb.zip?extract=true",
            Some(&server.admin()),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = answer.status();
    let text = answer.text().await.expect("answer text");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(server.staging_leftovers().is_empty());
    // The resource the refused upload would have created is not left behind.
    let listing = server
        .get(
            "/data/projects/BOMB/resources/R/files?format=json",
            &server.admin(),
        )
        .await;
    assert_eq!(listing.status(), StatusCode::NOT_FOUND);
    assert!(
        walk(&server.data.path().join("archive"))
            .iter()
            .all(|path| !path.to_string_lossy().contains("bomb")),
        "nothing of the bomb is on disk"
    );
    server.stop().await;
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
