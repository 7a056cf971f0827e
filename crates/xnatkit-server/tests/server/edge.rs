//! The HTTP edge: one REST root for `/data`, `/data/archive` and `/REST`;
//! browsers sent to the login page while scripts get 401; the login form
//! (same lockout rules, cookie flags, login-CSRF refusal); and the request
//! timeout, which spares uploads.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};

use crate::harness::{Backend, TestServer};

xnatkit_test_support::on_both_backends!(three_roots_are_one, browsers_log_in_on_a_page);

async fn three_roots_are_one(s: &TestServer) {
    let admin = s.admin();
    // Created through one root, visible and changeable through the others.
    assert_eq!(
        s.put("/REST/projects/ROOTS", &admin).await.status(),
        StatusCode::CREATED
    );
    for path in [
        "/data/projects/ROOTS?format=json",
        "/data/archive/projects/ROOTS?format=json",
        "/REST/projects/ROOTS?format=json",
    ] {
        let r = s.get(path, &admin).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(
        s.put("/data/archive/projects/ROOTS/subjects/S1", &admin)
            .await
            .status(),
        StatusCode::CREATED
    );
    let rows = s.rows("/REST/projects/ROOTS/subjects", &admin).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    // Routes that are not the archive's catch-all answer under every root.
    for path in [
        "/REST/version",
        "/data/archive/projects/ROOTS/prearchive_code",
        "/REST/projects/ROOTS/prearchive_code",
        "/REST/services/auth",
    ] {
        let method = if path.ends_with("auth") {
            Method::POST
        } else {
            Method::GET
        };
        let r = s.req(method, path, Some(&admin)).send().await.unwrap();
        assert_ne!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Look-alike prefixes are not roots.
    let r = s.get("/data/archives/projects/ROOTS", &admin).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn browsers_log_in_on_a_page(s: &TestServer) {
    let (_, bob_password) = s.create_user("bob").await;
    // A project only members see, so anonymous reads need a login.
    let admin = s.admin();
    s.create_project("PRIV").await;
    let r = s
        .put("/data/projects/PRIV?accessibility=private", &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A script gets 401 with a Basic challenge, as XNAT answers.
    let r = s
        .req(Method::POST, "/data/projects/PRIV/subjects/S1", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    // A browser loading a page that needs a login is sent to the form,
    // with the page to come back to.
    let r = s
        .req(Method::GET, "/data/auth", None)
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(location, "/app/login?next=%2Fdata%2Fauth");
    // A browser's script (fetch) gets the 401 it can handle.
    let r = s
        .req(Method::GET, "/data/auth", None)
        .header(header::ACCEPT, "text/html")
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The form is a page with its own CSP, and escapes what it echoes.
    let r = s
        .req(
            Method::GET,
            "/app/login?next=%2Fdata%2Fprojects%3Fx%3D%22%3E%3Cscript%3E",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\" action=\"/app/login\">"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "next is escaped: {html}");

    // The old address still takes the form (`/ui/login`).
    // Wrong password: the page again with XNAT's one refusal, 401.
    let r = s
        .req(Method::POST, "/ui/login", None)
        .form(&[
            ("username", "bob"),
            ("password", "wrong"),
            ("next", "/data/auth"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("role=\"alert\""));
    // Another site's form is refused before any credential is checked.
    let r = s
        .req(Method::POST, "/ui/login", None)
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("username", "bob"), ("password", bob_password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The right password: a session cookie and back to the page asked
    // for; a `next` naming another site is ignored.
    let r = s
        .req(Method::POST, "/ui/login", None)
        .form(&[
            ("username", "bob"),
            ("password", bob_password.as_str()),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/");
    let cookie = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("JSESSIONID="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = s
        .req(Method::GET, "/data/auth", None)
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "User 'bob' is logged in");
    // Logout ends that session.
    let r = s
        .req(Method::POST, "/ui/logout", None)
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = s
        .req(Method::GET, "/data/projects/PRIV?format=json", None)
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// With no time at all to answer, every request that uploads nothing is
/// answered 503 (the handler needs the database, so it cannot finish on
/// its first poll), while an upload still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_spares_uploads() {
    let s = TestServer::start_with(Backend::Sqlite, |config| {
        config.request_timeout = Duration::ZERO;
    })
    .await
    .expect("SQLite is always available");
    let admin = s.admin();
    let r = s.get("/data/projects?format=json", &admin).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    assert!(r.text().await.unwrap().contains("longer than 0 s"));
    // Creating the project is not a transfer: give it a body to be one.
    let r = s
        .req(Method::PUT, "/data/projects/SLOW", Some(&admin))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    s.stop().await;
}
