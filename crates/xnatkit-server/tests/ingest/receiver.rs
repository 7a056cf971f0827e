//! The `--dicom-listen` receiver driven by dcmtk's `echoscu` / `storescu`:
//! a series sent to the AE title of a project lands in that project (archive
//! with prearchive_code 4, prearchive otherwise).

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use xnatkit_server::import::DicomReceiverConfig;

use crate::harness::{Backend, TestServer, study};

fn dcmtk_tool(name: &str) -> Option<String> {
    let found = Command::new(name).arg("--version").output().is_ok();
    if found {
        return Some(name.to_owned());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "dcmtk's {name} is required when CI is set (Debian package dcmtk)"
    );
    // The skip must show in the test output, not only in a log.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: install dcmtk ({name}) to run the DICOM receiver test");
    }
    None
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_series_lands_in_the_called_project() {
    let (Some(storescu), Some(echoscu)) = (dcmtk_tool("storescu"), dcmtk_tool("echoscu")) else {
        return;
    };
    let port = free_port();
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.dicom_receiver = Some(DicomReceiverConfig::new(
            format!("127.0.0.1:{port}").parse().expect("addr"),
            "XNAT",
            Duration::from_millis(700),
        ));
    })
    .await
    .expect("server");
    let admin = server.admin();
    server.create_project("RXP").await;
    server.create_project("RXM").await;
    // RXP auto-archives (the default for new projects); RXM is manual.
    for (project, code) in [("RXP", 4), ("RXM", 0)] {
        let r = server
            .req(
                Method::PUT,
                &format!("/data/projects/{project}/prearchive_code/{code}"),
                Some(&admin),
            )
            .send()
            .await
            .expect("PUT code");
        assert_eq!(r.status(), StatusCode::OK);
    }

    let echo = Command::new(&echoscu)
        .args(["-aec", "XNAT", "127.0.0.1", &port.to_string()])
        .output()
        .expect("run echoscu");
    assert!(
        echo.status.success(),
        "echoscu: {}",
        String::from_utf8_lossy(&echo.stderr)
    );

    let archived = study(2, 3, |_| {});
    let manual = study(1, 2, |i| i.patient_id = Some("MAN01".to_owned()));
    for (aet, files) in [("RXP", &archived.files), ("RXM", &manual.files)] {
        let sent = Command::new(&storescu)
            .args(["-aec", aet, "127.0.0.1", &port.to_string()])
            .args(files.iter())
            .output()
            .expect("run storescu");
        assert!(
            sent.status.success(),
            "storescu: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let experiments = server
            .rows("/data/projects/RXP/experiments?format=json", &admin)
            .await;
        let prearchived = server
            .rows("/data/prearchive/projects/RXM?format=json", &admin)
            .await;
        if experiments.len() == 1 && prearchived.len() == 1 {
            assert_eq!(experiments[0]["label"], "SUBJ001");
            assert_eq!(prearchived[0]["name"], "MAN01");
            assert_eq!(prearchived[0]["status"], "READY");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "received studies did not arrive: {experiments:?} {prearchived:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let scans = server
        .rows(
            "/data/projects/RXP/experiments/SUBJ001/scans?format=json",
            &admin,
        )
        .await;
    assert_eq!(scans.len(), 2);
    for scan in ["1", "2"] {
        let files = server
            .rows(
                &format!("/data/projects/RXP/experiments/SUBJ001/scans/{scan}/resources/DICOM/files?format=json"),
                &admin,
            )
            .await;
        assert_eq!(files.len(), 3);
    }
    server.stop().await;
}

/// A receiver limited to one peer and pinned to one project: strangers are
/// refused at association time (A-ASSOCIATE-RJ), a called AE title other
/// than the receiver's is refused, and what the allowed peer sends lands in
/// the pinned project even when its headers name another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_and_pinned_project() {
    let (Some(storescu), Some(echoscu)) = (dcmtk_tool("storescu"), dcmtk_tool("echoscu")) else {
        return;
    };
    let port = free_port();
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        let mut receiver = DicomReceiverConfig::new(
            format!("127.0.0.1:{port}").parse().expect("addr"),
            "XNAT",
            Duration::from_millis(700),
        );
        receiver.allowed_peers = vec!["SCANNER1@127.0.0.1".parse().expect("peer")];
        receiver.project = Some("PINNED".to_owned());
        config.dicom_receiver = Some(receiver);
    })
    .await
    .expect("server");
    let admin = server.admin();
    server.create_project("PINNED").await;
    server.create_project("ELSEWHERE").await;
    let port = port.to_string();

    let stranger = Command::new(&echoscu)
        .args(["-aet", "STRANGER", "-aec", "XNAT", "127.0.0.1", &port])
        .output()
        .expect("run echoscu");
    let said = String::from_utf8_lossy(&stranger.stderr).into_owned()
        + &String::from_utf8_lossy(&stranger.stdout);
    assert!(
        !stranger.status.success(),
        "a stranger was accepted: {said}"
    );
    assert!(said.contains("Calling AE Title Not Recognized"), "{said}");

    let allowed = Command::new(&echoscu)
        .args(["-aet", "SCANNER1", "-aec", "XNAT", "127.0.0.1", &port])
        .output()
        .expect("run echoscu");
    assert!(
        allowed.status.success(),
        "echoscu: {}",
        String::from_utf8_lossy(&allowed.stderr)
    );

    let escaping = study(1, 2, |i| {
        i.patient_comments = Some("Project: ELSEWHERE Subject: S1 Session: PIN1".to_owned());
    });
    let by_title = Command::new(&storescu)
        .args(["-aet", "SCANNER1", "-aec", "ELSEWHERE", "127.0.0.1", &port])
        .args(escaping.files.iter())
        .output()
        .expect("run storescu");
    let said = String::from_utf8_lossy(&by_title.stderr).into_owned();
    assert!(
        !by_title.status.success(),
        "called AE ELSEWHERE was accepted: {said}"
    );
    assert!(said.contains("Called AE Title Not Recognized"), "{said}");

    let sent = Command::new(&storescu)
        .args(["-aet", "SCANNER1", "-aec", "XNAT", "127.0.0.1", &port])
        .args(escaping.files.iter())
        .output()
        .expect("run storescu");
    assert!(
        sent.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pinned = server
            .rows("/data/projects/PINNED/experiments?format=json", &admin)
            .await;
        if pinned.len() == 1 {
            assert_eq!(pinned[0]["label"], "PIN1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the study did not arrive: {pinned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elsewhere = server
        .rows("/data/projects/ELSEWHERE/experiments?format=json", &admin)
        .await;
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
    let prearchived = server
        .rows("/data/prearchive/projects?format=json", &admin)
        .await;
    assert!(prearchived.is_empty(), "{prearchived:?}");
    server.stop().await;
}
