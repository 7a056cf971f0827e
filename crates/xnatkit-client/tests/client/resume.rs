//! Retry and resume in the client itself (the CLI tests cover the same
//! through the binary): a download cut mid-body resumes with `Range` from
//! the bytes it has; 5xx answers and a stalled body are retried; the MD5 is
//! verified before a file gets its final name, so a wrong or incomplete
//! body never looks like a finished file.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use xnatkit_client::archive::RemoteFile;
use xnatkit_client::download::{FileOutcome, PART_SUFFIX, download_file};
use xnatkit_client::{ClientError, ClientOptions, Credentials, XnatClient};
use xnatkit_test_support::fault_proxy::{Fault, FaultProxy, Rule};
use xnatkit_test_support::files::{md5_file, md5_hex};
use xnatkit_test_support::{Backend, TestServer};

const SCAN: &str = "/data/projects/RESUME/subjects/SUBJ1/experiments/SESS1/scans/1";
/// Big enough to arrive in several frames, so a cut lands mid-body.
const SIZE: usize = 3 * 1024 * 1024;
const NAME: &str = "big.bin";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A server holding one `SIZE`-byte file; returns it with the file's bytes.
async fn server_with_file() -> (TestServer, Vec<u8>) {
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let admin = server.admin();
    server.seed(&admin, "RESUME").await;
    let r = server
        .put(&format!("{SCAN}?xsiType=xnat:mrScanData"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = server.put(&format!("{SCAN}/resources/DATA"), &admin).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let bytes: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let r = server
        .req(
            Method::PUT,
            &format!("{SCAN}/resources/DATA/files/{NAME}"),
            Some(&admin),
        )
        .header("Content-Type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    (server, bytes)
}

fn upstream(server: &TestServer) -> SocketAddr {
    server.url.strip_prefix("http://").unwrap().parse().unwrap()
}

/// The admin's client through `url`, with a short read timeout so a stalled
/// body fails the attempt quickly.
async fn client(url: &str, server: &TestServer) -> XnatClient {
    let (user, password) = server.admin();
    XnatClient::connect(
        url,
        Credentials::Password { user, password },
        ClientOptions {
            read_timeout: Duration::from_secs(2),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap()
}

async fn remote(client: &XnatClient) -> RemoteFile {
    let files = client
        .files(&format!("{SCAN}/resources/DATA"))
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].digest.is_some(), "the server lists an MD5");
    files[0].clone()
}

fn part_of(dest: &Path) -> std::path::PathBuf {
    dest.with_file_name(format!("{NAME}{PART_SUFFIX}"))
}

/// Runs `check` with a server holding the file and a proxy applying `rules`.
fn with_proxy(rules: Vec<Rule>, check: impl AsyncFnOnce(&TestServer, &FaultProxy, &[u8])) {
    let rt = runtime();
    let (server, bytes) = rt.block_on(server_with_file());
    // The proxy runs its own runtime, so it is made and dropped outside ours.
    let proxy = FaultProxy::start(upstream(&server), rules);
    rt.block_on(check(&server, &proxy, &bytes));
    drop(proxy);
    rt.block_on(server.stop());
}

fn file_rule(times: usize, fault: Fault) -> Rule {
    Rule::new(Method::GET, &format!("/files/{NAME}"), times, fault)
}

#[test]
fn a_download_cut_mid_body_resumes_from_the_bytes_it_has() {
    const CUT: usize = 1024 * 1024;
    with_proxy(
        vec![file_rule(1, Fault::CutBody { after: CUT })],
        async |server, proxy, bytes| {
            let client = client(&proxy.url, server).await;
            let remote = remote(&client).await;
            let out = tempfile::tempdir().unwrap();
            let dest = out.path().join(NAME);
            let outcome = download_file(&client, &remote, &dest, None, &|_| {})
                .await
                .unwrap();
            assert_eq!(outcome, FileOutcome::Downloaded);
            assert_eq!(md5_file(&dest), md5_hex(bytes));
            assert!(!part_of(&dest).exists());
            let gets = proxy.seen_matching(&Method::GET, NAME);
            assert_eq!(gets.len(), 2, "{gets:?}");
            assert_eq!(gets[0].range, None);
            let from: usize = gets[1]
                .range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("resume without a Range: {:?}", gets[1]));
            assert!(from > 0 && from <= CUT, "resumed from {from}");
        },
    );
}

#[test]
fn server_errors_are_retried_until_the_file_arrives() {
    with_proxy(
        vec![file_rule(
            2,
            Fault::Refuse {
                status: 503,
                retry_after: "0".into(),
            },
        )],
        async |server, proxy, bytes| {
            let client = client(&proxy.url, server).await;
            let remote = remote(&client).await;
            let out = tempfile::tempdir().unwrap();
            let dest = out.path().join(NAME);
            download_file(&client, &remote, &dest, None, &|_| {})
                .await
                .unwrap();
            assert_eq!(md5_file(&dest), md5_hex(bytes));
            assert_eq!(proxy.seen_matching(&Method::GET, NAME).len(), 3);
        },
    );
}

#[test]
fn a_stalled_body_times_out_and_resumes() {
    const STALL: usize = 512 * 1024;
    with_proxy(
        vec![file_rule(1, Fault::StallBody { after: STALL })],
        async |server, proxy, bytes| {
            let client = client(&proxy.url, server).await;
            let remote = remote(&client).await;
            let out = tempfile::tempdir().unwrap();
            let dest = out.path().join(NAME);
            download_file(&client, &remote, &dest, None, &|_| {})
                .await
                .unwrap();
            assert_eq!(md5_file(&dest), md5_hex(bytes));
            let gets = proxy.seen_matching(&Method::GET, NAME);
            assert_eq!(gets.len(), 2, "{gets:?}");
            assert!(gets[1].range.is_some(), "the retry resumes: {:?}", gets[1]);
        },
    );
}

#[test]
fn a_body_with_the_wrong_digest_is_fetched_again_then_refused() {
    // Same length as the real file, other bytes: only the MD5 can tell.
    let wrong = bytes::Bytes::from(vec![0u8; SIZE]);
    // One bad body: the client starts the file again and gets the real one.
    with_proxy(
        vec![file_rule(1, Fault::ReplaceBody(wrong.clone()))],
        async |server, proxy, bytes| {
            let client = client(&proxy.url, server).await;
            let remote = remote(&client).await;
            let out = tempfile::tempdir().unwrap();
            let dest = out.path().join(NAME);
            download_file(&client, &remote, &dest, None, &|_| {})
                .await
                .unwrap();
            assert_eq!(md5_file(&dest), md5_hex(bytes));
            assert_eq!(proxy.seen_matching(&Method::GET, NAME).len(), 2);
        },
    );
    // Bad every time: an error naming the mismatch, and nothing under the
    // final name or left as a part.
    with_proxy(
        vec![file_rule(usize::MAX, Fault::ReplaceBody(wrong))],
        async |server, proxy, _| {
            let client = client(&proxy.url, server).await;
            let remote = remote(&client).await;
            let out = tempfile::tempdir().unwrap();
            let dest = out.path().join(NAME);
            let err = download_file(&client, &remote, &dest, None, &|_| {})
                .await
                .unwrap_err();
            assert!(matches!(err, ClientError::DigestMismatch { .. }), "{err}");
            assert!(
                !dest.exists(),
                "a file that failed its MD5 has no final name"
            );
            assert!(!part_of(&dest).exists());
        },
    );
}

#[test]
fn a_transfer_that_keeps_breaking_leaves_only_a_part_which_the_next_run_resumes() {
    const CUT: usize = 256 * 1024;
    let rt = runtime();
    let (server, bytes) = rt.block_on(server_with_file());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join(NAME);
    {
        let proxy = FaultProxy::start(
            upstream(&server),
            vec![file_rule(usize::MAX, Fault::CutBody { after: CUT })],
        );
        rt.block_on(async {
            let client = client(&proxy.url, &server).await;
            let remote = remote(&client).await;
            download_file(&client, &remote, &dest, None, &|_| {})
                .await
                .expect_err("every attempt is cut");
        });
        assert!(
            !dest.exists(),
            "an incomplete file never gets its final name"
        );
        let part = part_of(&dest);
        let have = std::fs::metadata(&part).expect("the part is kept").len();
        assert!(have > 0 && (have as usize) < SIZE, "{have}");
    }
    // The next run, with a healthy network, asks only for the rest.
    let proxy = FaultProxy::start(upstream(&server), Vec::new());
    rt.block_on(async {
        let client = client(&proxy.url, &server).await;
        let remote = remote(&client).await;
        let outcome = download_file(&client, &remote, &dest, None, &|_| {})
            .await
            .unwrap();
        assert_eq!(outcome, FileOutcome::Downloaded);
    });
    assert_eq!(md5_file(&dest), md5_hex(&bytes));
    let gets = proxy.seen_matching(&Method::GET, NAME);
    assert_eq!(gets.len(), 1);
    assert!(gets[0].range.is_some(), "{:?}", gets[0]);
    drop(proxy);
    rt.block_on(server.stop());
}
