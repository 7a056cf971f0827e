//! The OHIF viewer's listener (`serve --ohif-dir`) over real HTTP, with a
//! stand-in OHIF folder (the real OHIF in a browser is tests/web/e2e-ohif.mjs):
//! login redirect for anonymous visitors, index page with its CSP, the
//! generated configuration instead of DIR's, files of DIR and nothing
//! outside it, DICOMweb on the same origin, and the session page's View
//! button leading there.

use std::collections::BTreeSet;

use reqwest::{Client, StatusCode, header};
use xnatkit_server::viewer::OhifConfig;

use crate::harness::{Backend, TestServer, entries_of, study, zip_of};

const INLINE: &str = r#"window.PUBLIC_URL="/""#;

fn stand_in_ohif(dir: &std::path::Path) {
    std::fs::write(
        dir.join("index.html"),
        format!(
            r#"<!doctype html><html><head><script>{INLINE}</script><script src="/app-config.js"></script></head><body><div id="root"></div><script defer src="/app.bundle.js"></script></body></html>"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("app-config.js"), "window.config = 'ORIGINAL';").unwrap();
    std::fs::write(dir.join("app.bundle.js"), "console.log('bundle');").unwrap();
    std::fs::write(dir.join(".xnatkit-ohif-version"), "@ohif/app@3.13.2").unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_listener_serves_ohif_with_our_dicomweb_and_login() {
    let ohif = tempfile::tempdir().unwrap();
    stand_in_ohif(ohif.path());
    let port = free_port();
    let dir = ohif.path().to_path_buf();
    let s = TestServer::start_with(Backend::Sqlite, move |config| {
        config.ohif = Some(OhifConfig {
            dir,
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
        });
    })
    .await
    .unwrap();
    let viewer = format!("http://127.0.0.1:{port}");
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let alice = s.create_user("vieweralice").await;

    // An anonymous browser is sent to the login page on the viewer's origin.
    let r = http
        .get(format!("{viewer}/viewer?StudyInstanceUIDs=1.2.3"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/app/login?next=%2Fviewer%3FStudyInstanceUIDs%3D1.2.3"),
        "{location}"
    );
    let r = http
        .get(format!("{viewer}{location}"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the login page is on the viewer's origin"
    );

    // Logged in: OHIF's index page, its inline script allowed by hash only.
    let r = http
        .get(format!("{viewer}/viewer?StudyInstanceUIDs=1.2.3"))
        .basic_auth(&alice.0, Some(&alice.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("'unsafe-eval'"), "{csp}");
    assert!(r.text().await.unwrap().contains(INLINE));

    // The generated configuration, never DIR's own; DIR's files as they are.
    let config = http
        .get(format!("{viewer}/app-config.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(config.contains("/xapi/dicomweb") && !config.contains("ORIGINAL"));
    let r = http
        .get(format!("{viewer}/app.bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    for hidden in ["/.xnatkit-ohif-version", "/%2e%2e/etc/passwd"] {
        let r = http
            .get(format!("{viewer}{hidden}"))
            .basic_auth(&alice.0, Some(&alice.1))
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("@ohif/app") && !body.contains("root:"),
            "{hidden} leaked: {body}"
        );
    }

    // A study the owner stored; DICOMweb on the viewer's origin lists it
    // for the owner only, and says no password dialog on a bad login.
    s.put("/data/projects/VIEWP?accessibility=private", &alice)
        .await;
    let generated = study(1, 2, |_| {});
    let entries = entries_of(generated.dir.path(), &generated.files);
    let (status, body) = s
        .import(
            "dest=/archive&project=VIEWP&subject=SUBJ&session=SESS",
            zip_of(&entries),
            &alice,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let studies = |auth: (String, String)| {
        let http = http.clone();
        let viewer = viewer.clone();
        async move {
            let found: Vec<serde_json::Value> = http
                .get(format!("{viewer}/xapi/dicomweb/studies"))
                .basic_auth(&auth.0, Some(&auth.1))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            found
                .iter()
                .map(|s| s["0020000D"]["Value"][0].as_str().unwrap().to_owned())
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(
        studies((alice.0.clone(), alice.1.clone())).await,
        BTreeSet::from([generated.uid.clone()])
    );
    let bob = s.create_user("viewerbob").await;
    assert!(studies((bob.0.clone(), bob.1.clone())).await.is_empty());
    let r = http
        .get(format!("{viewer}/xapi/dicomweb/studies"))
        .basic_auth(&alice.0, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.headers().contains_key(header::WWW_AUTHENTICATE));

    // The session page's View button, and where it leads.
    let r = s
        .req(
            reqwest::Method::GET,
            "/app/projects/VIEWP/subjects/SUBJ/experiments/SESS",
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    let href = format!("/app/viewer?StudyInstanceUIDs={}", generated.uid);
    assert!(html.contains(&href), "{html}");
    let r = s
        .req(reqwest::Method::GET, &href, Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        format!("{viewer}/viewer?StudyInstanceUIDs={}", generated.uid).as_str()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_viewer_there_is_no_view_button() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let alice = s.create_user("noviewer").await;
    s.put("/data/projects/NOVIEW", &alice).await;
    let generated = study(1, 1, |_| {});
    let entries = entries_of(generated.dir.path(), &generated.files);
    let (status, body) = s
        .import(
            "dest=/archive&project=NOVIEW&subject=SUBJ&session=SESS",
            zip_of(&entries),
            &alice,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = s
        .req(
            reqwest::Method::GET,
            "/app/projects/NOVIEW/subjects/SUBJ/experiments/SESS",
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("/app/viewer"));
    let r = s
        .req(
            reqwest::Method::GET,
            "/app/viewer?StudyInstanceUIDs=1.2",
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}
