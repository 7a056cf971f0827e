//! The web pages (`/app/…`) against the real server: who sees which page
//! (the same rules as the REST API), HTML escaping of stored text, the
//! CSRF defences of the pages' forms, the page CSP, paging and filtering
//! in SQL, and the Files panel's download checked file by file against
//! the archive's own MD5s.

use std::io::Read;

use reqwest::{Method, StatusCode, header};
use xnatkit_test_support::on_both_backends;

use crate::harness::*;

/// Logs in through the login form; returns the `Cookie` header value.
async fn login(s: &TestServer, auth: &Auth) -> String {
    let r = s
        .req(Method::POST, "/app/login", None)
        .form(&[
            ("username", auth.0.as_str()),
            ("password", auth.1.as_str()),
            ("next", "/app/projects"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login {}", auth.0);
    assert_eq!(r.headers()[header::LOCATION], "/app/projects");
    session_cookie(&r)
}

/// Rows of the sessions table on a project page.
fn session_rows(html: &str) -> Vec<String> {
    let Some(start) = html.find("id=\"session-table\"") else {
        return Vec::new();
    };
    let table = &html[start..html[start..].find("</table>").unwrap() + start];
    table
        .split("<tr><td><a href=\"")
        .skip(1)
        .map(|row| {
            let label_start = row.find('>').unwrap() + 1;
            row[label_start..].split('<').next().unwrap().to_owned()
        })
        .collect()
}

async fn put_ok(s: &TestServer, path: &str, auth: &Auth) {
    let r = s.put(path, auth).await;
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

async fn put_file(s: &TestServer, path: &str, body: Vec<u8>, auth: &Auth) {
    let r = s
        .req(Method::PUT, path, Some(auth))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

/// A private project of `owner` with one session, two scans with files
/// and a session resource.
async fn private_project(s: &TestServer, owner: &Auth, project: &str) {
    s.seed(owner, project).await;
    put_ok(
        s,
        &format!("/data/projects/{project}/accessibility/private"),
        owner,
    )
    .await;
    let session = format!("/data/projects/{project}/subjects/SUBJ1/experiments/SESS1");
    for (scan, kind) in [("1", "T1w"), ("2", "DWI")] {
        put_ok(
            s,
            &format!("{session}/scans/{scan}?xsiType=xnat:mrScanData&xnat:mrScanData/type={kind}&xnat:mrScanData/series_description={kind}%20series"),
            owner,
        )
        .await;
        put_ok(
            s,
            &format!("{session}/scans/{scan}/resources/DICOM?format=DICOM"),
            owner,
        )
        .await;
        for n in 0..3u8 {
            let body: Vec<u8> = (0..1000u32 + u32::from(n))
                .map(|i| (i % 251) as u8 ^ n)
                .collect();
            put_file(
                s,
                &format!("{session}/scans/{scan}/resources/DICOM/files/img{n}.dcm"),
                body,
                owner,
            )
            .await;
        }
    }
    put_ok(s, &format!("{session}/resources/NOTES"), owner).await;
    put_file(
        s,
        &format!("{session}/resources/NOTES/files/readme.txt"),
        b"notes".to_vec(),
        owner,
    )
    .await;
}

async fn pages_follow_project_permissions(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let bob = s.create_user("bob").await;
    private_project(s, &alice, "PRIV").await;
    let alice_cookie = login(s, &alice).await;
    let bob_cookie = login(s, &bob).await;

    let (status, html) = page(s, "/app/projects", &alice_cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("href=\"/app/projects/PRIV\""), "{html}");
    assert!(html.contains("<title>Projects"), "{html}");
    let (status, html) = page(s, "/app/projects/PRIV", &alice_cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session_rows(&html), ["SESS1"]);
    assert!(html.contains("aria-label=\"Breadcrumb\""));
    let session = "/app/projects/PRIV/subjects/SUBJ1/experiments/SESS1";
    let (status, html) = page(s, session, &alice_cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"scan-table\""));
    assert!(html.contains("T1w series") && html.contains("DWI series"));
    assert!(html.contains("<span class=\"badge\">DICOM</span>"));
    let (status, _) = page(s, "/app/projects/PRIV/subjects/SUBJ1", &alice_cookie).await;
    assert_eq!(status, StatusCode::OK);
    let (status, html) = page(s, "/app/projects/PRIV/access", &alice_cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<td>alice</td>"), "{html}");

    // An outsider: the project is not listed and none of its pages (nor
    // the download) exist for them, as with the REST API.
    let (_, html) = page(s, "/app/projects", &bob_cookie).await;
    assert!(!html.contains("PRIV"), "{html}");
    for path in [
        "/app/projects/PRIV".to_owned(),
        "/app/projects/PRIV/access".to_owned(),
        "/app/projects/PRIV/subjects/SUBJ1".to_owned(),
        session.to_owned(),
        format!("{session}/download?format=zip&r=1"),
    ] {
        let (status, html) = page(s, &path, &bob_cookie).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !html.contains("SESS1") && !html.contains("T1w"),
            "{path}: {html}"
        );
    }
    // Nor can the outsider change access.
    let (_, projects) = page(s, "/app/projects", &bob_cookie).await;
    let token = form_token(&projects);
    let r = s
        .req(
            Method::POST,
            "/app/projects/PRIV/access/accessibility",
            None,
        )
        .header(header::COOKIE, &bob_cookie)
        .form(&[("_csrf", token.as_str()), ("accessibility", "public")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Anonymous: a script gets 401, a browser the login page with the way back.
    let r = s.req(Method::GET, session, None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .req(Method::GET, session, None)
        .header(header::ACCEPT, "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/app/login?next=%2Fapp%2Fprojects%2FPRIV"),
    );
}

async fn root_sends_browsers_to_pages_and_clients_to_the_root_page(s: &TestServer) {
    // Clients (xnatpy, pyxnat: Accept */*) get the 200 page with user_info.
    let r = s.req(Method::GET, "/", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text().await.unwrap().contains(
            "<span id=\"user_info\">Logged in as: <span style=\"color:red;\">Guest</span>"
        )
    );
    // A browser: the login page, or the projects once logged in.
    let r = s
        .req(Method::GET, "/", None)
        .header(header::ACCEPT, "text/html,*/*;q=0.8")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/app/login");
    let cookie = login(s, &s.admin()).await;
    let r = s
        .req(Method::GET, "/", None)
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::LOCATION], "/app/projects");
    // The assets come from the binary.
    for (asset, kind) in [
        ("htmx.min.js", "text/javascript"),
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let r = s
            .req(Method::GET, &format!("/app/static/{asset}"), None)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

async fn stored_text_is_escaped(s: &TestServer) {
    let admin = s.admin();
    s.seed(&admin, "ESC").await;
    let evil = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    put_ok(
        s,
        &format!("/data/projects/ESC?name=Name{evil}&description=Desc{evil}"),
        &admin,
    )
    .await;
    let session = "/data/projects/ESC/subjects/SUBJ1/experiments/SESS1";
    put_ok(
        s,
        &format!("{session}/scans/1?xsiType=xnat:mrScanData&xnat:mrScanData/type=T{evil}&xnat:mrScanData/series_description=D{evil}"),
        &admin,
    )
    .await;
    put_ok(s, &format!("{session}/scans/1/resources/DICOM"), &admin).await;
    put_file(
        s,
        &format!("{session}/scans/1/resources/DICOM/files/f{evil}.dcm"),
        b"x".to_vec(),
        &admin,
    )
    .await;
    let cookie = login(s, &admin).await;
    for path in [
        "/app/projects",
        "/app/projects/ESC",
        "/app/projects/ESC/subjects/SUBJ1/experiments/SESS1",
        "/app/projects?q=%3Cscript%3E",
        "/app/projects/ESC?q=%22%3E%3Cscript%3E",
    ] {
        let (status, html) = page(s, path, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains("<script>"), "{path}: {html}");
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"),
            "{path}: {html}"
        );
    }
    // The error page escapes what it echoes too.
    let (status, html) = page(s, "/app/projects/%3Cscript%3E", &cookie).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("<script>"), "{html}");
}

async fn forms_need_this_site_and_the_session_token(s: &TestServer) {
    let alice = s.create_user("alice").await;
    private_project(s, &alice, "CSRF").await;
    let cookie = login(s, &alice).await;
    let (status, html) = page(s, "/app/projects/CSRF/access", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let token = form_token(&html);
    assert_eq!(token.len(), 64);
    let post = |form: Vec<(&'static str, String)>, extra: Option<(&'static str, &'static str)>| {
        let mut request = s
            .req(
                Method::POST,
                "/app/projects/CSRF/access/accessibility",
                None,
            )
            .header(header::COOKIE, &cookie)
            .form(&form);
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        request.send()
    };
    let public = || ("accessibility", "public".to_owned());
    // No token, a wrong token, another site (by Sec-Fetch-Site or Origin):
    // refused and nothing changes.
    let refused = [
        post(vec![public()], None).await.unwrap(),
        post(vec![public(), ("_csrf", "0".repeat(64))], None)
            .await
            .unwrap(),
        post(
            vec![public(), ("_csrf", token.clone())],
            Some(("sec-fetch-site", "cross-site")),
        )
        .await
        .unwrap(),
        post(
            vec![public(), ("_csrf", token.clone())],
            Some(("sec-fetch-site", "same-site")),
        )
        .await
        .unwrap(),
        post(
            vec![public(), ("_csrf", token.clone())],
            Some(("origin", "https://evil.example")),
        )
        .await
        .unwrap(),
    ];
    for r in refused {
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let level = s
        .get("/data/projects/CSRF/accessibility", &alice)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(level, "private");
    // The page's own form: done.
    let r = post(
        vec![public(), ("_csrf", token.clone())],
        Some(("sec-fetch-site", "same-origin")),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let level = s
        .get("/data/projects/CSRF/accessibility", &alice)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(level, "public");

    // Members: add bob, see him, remove him (the last owner stays).
    s.create_user("bob").await;
    let r = s
        .req(Method::POST, "/app/projects/CSRF/access/members", None)
        .header(header::COOKIE, &cookie)
        .form(&[
            ("_csrf", token.as_str()),
            ("action", "add"),
            ("username", "bob"),
            ("role", "member"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/app/projects/CSRF/access?done=added"
    );
    let (_, html) = page(s, "/app/projects/CSRF/access?done=added", &cookie).await;
    assert!(html.contains("<td>bob</td>"), "{html}");
    assert!(html.contains("class=\"notice\""), "{html}");
    // A link cannot put its own words on the page.
    let (_, html) = page(
        s,
        "/app/projects/CSRF/access?done=Call%20this%20number",
        &cookie,
    )
    .await;
    assert!(!html.contains("Call this number") && !html.contains("class=\"notice\""));
    let r = s
        .req(Method::POST, "/app/projects/CSRF/access/members", None)
        .header(header::COOKIE, &cookie)
        .form(&[
            ("_csrf", token.as_str()),
            ("action", "remove"),
            ("username", "alice"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "the last owner stays");

    // New project: token needed; the creator owns it; an ID in use is a
    // conflict, not an edit of that project.
    let r = s
        .req(Method::POST, "/app/projects", None)
        .header(header::COOKIE, &cookie)
        .form(&[
            ("id", "FRESH"),
            ("name", "Fresh <b>"),
            ("accessibility", "private"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .req(Method::POST, "/app/projects", None)
        .header(header::COOKIE, &cookie)
        .form(&[
            ("_csrf", token.as_str()),
            ("id", "FRESH"),
            ("name", "Fresh <b>"),
            ("accessibility", "private"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/app/projects/FRESH");
    let (status, html) = page(s, "/app/projects/FRESH/access", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<td>alice</td>") && html.contains(">private<"),
        "{html}"
    );
    let r = s
        .req(Method::POST, "/app/projects", None)
        .header(header::COOKIE, &cookie)
        .form(&[
            ("_csrf", token.as_str()),
            ("id", "CSRF"),
            ("name", "taken"),
            ("accessibility", "public"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Logout needs the token too, then the session is gone.
    let r = s
        .req(Method::POST, "/app/logout", None)
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .req(Method::POST, "/app/logout", None)
        .header(header::COOKIE, &cookie)
        .form(&[("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/app/login");
    let r = s
        .req(Method::GET, "/app/projects", None)
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn pages_carry_a_strict_csp_and_no_inline_script(s: &TestServer) {
    let alice = s.create_user("alice").await;
    private_project(s, &alice, "CSP").await;
    let cookie = login(s, &alice).await;
    for path in [
        "/app/login",
        "/app/projects",
        "/app/projects/CSP",
        "/app/projects/CSP/access",
        "/app/projects/CSP/subjects/SUBJ1",
        "/app/projects/CSP/subjects/SUBJ1/experiments/SESS1",
        "/app/projects/NOPE",
    ] {
        let r = s
            .req(Method::GET, path, None)
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let html = r.text().await.unwrap();
        for script in html.split("<script").skip(1) {
            assert!(
                script.starts_with(" src=\"/app/static/"),
                "{path}: inline script {script}"
            );
        }
        assert!(
            !html.contains(" onclick=") && !html.contains(" onload="),
            "{path}"
        );
    }
}

async fn sessions_are_paged_filtered_and_sorted_in_sql(s: &TestServer) {
    let admin = s.admin();
    s.create_project("BIG").await;
    for subject in 1..=3 {
        put_ok(
            s,
            &format!("/data/projects/BIG/subjects/SUB{subject}"),
            &admin,
        )
        .await;
    }
    for n in 1..=120 {
        let subject = n % 3 + 1;
        put_ok(
            s,
            &format!("/data/projects/BIG/subjects/SUB{subject}/experiments/SESS{n:03}?xsiType=xnat:mrSessionData&date=2024-01-{:02}", n % 28 + 1),
            &admin,
        )
        .await;
    }
    let cookie = login(s, &admin).await;
    let (_, html) = page(s, "/app/projects/BIG", &cookie).await;
    let rows = session_rows(&html);
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], "SESS001");
    assert_eq!(rows[49], "SESS050");
    assert!(html.contains("Sessions 1–50 of 120."), "{html}");
    assert!(html.contains("Page 1 of 3"));
    let (_, html) = page(s, "/app/projects/BIG?page=3", &cookie).await;
    let rows = session_rows(&html);
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0], "SESS101");
    // Past the end: the last page.
    let (_, html) = page(s, "/app/projects/BIG?page=99", &cookie).await;
    assert!(html.contains("Page 3 of 3"));
    // Descending, 10 per page.
    let (_, html) = page(s, "/app/projects/BIG?sort=label&dir=desc&size=10", &cookie).await;
    let rows = session_rows(&html);
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0], "SESS120");
    // The filter matches session or subject labels, case-insensitively,
    // and its pattern characters are literal.
    let (_, html) = page(s, "/app/projects/BIG?q=sess11", &cookie).await;
    let rows = session_rows(&html);
    assert_eq!(
        rows,
        (110..=119).map(|n| format!("SESS{n}")).collect::<Vec<_>>()
    );
    assert!(html.contains("Sessions 1–10 of 10 matching."), "{html}");
    let (_, html) = page(s, "/app/projects/BIG?q=sub2&size=200", &cookie).await;
    assert_eq!(session_rows(&html).len(), 40);
    let (_, html) = page(s, "/app/projects/BIG?q=%25", &cookie).await;
    assert!(html.contains("No sessions match."), "{html}");
    // Sorted by subject, then label.
    let (_, html) = page(s, "/app/projects/BIG?sort=subject&size=10", &cookie).await;
    assert_eq!(session_rows(&html)[0], "SESS003");
    // The projects page counts subjects and sessions.
    let (_, html) = page(s, "/app/projects?q=big", &cookie).await;
    assert!(
        html.contains("<td class=\"num\">3</td><td class=\"num\">120</td>"),
        "{html}"
    );
}

async fn files_panel_downloads_the_selection(s: &TestServer) {
    let alice = s.create_user("alice").await;
    private_project(s, &alice, "DL").await;
    let cookie = login(s, &alice).await;
    let session = "/app/projects/DL/subjects/SUBJ1/experiments/SESS1";
    let (_, html) = page(s, session, &cookie).await;
    // Checkbox values are resource IDs; take scan 1's DICOM and NOTES.
    let rows = s
        .rows(
            "/data/projects/DL/subjects/SUBJ1/experiments/SESS1/scans/1/resources?format=json",
            &alice,
        )
        .await;
    let scan1 = rows[0]["xnat_abstractresource_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| rows[0]["xnat_abstractresource_id"].to_string());
    let rows = s
        .rows(
            "/data/projects/DL/subjects/SUBJ1/experiments/SESS1/resources?format=json",
            &alice,
        )
        .await;
    let notes = rows[0]["xnat_abstractresource_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| rows[0]["xnat_abstractresource_id"].to_string());
    assert!(
        html.contains(&format!("name=\"r\" value=\"{scan1}\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("name=\"r\" value=\"{notes}\"")),
        "{html}"
    );

    for format in ["zip", "tar.gz"] {
        let r = s
            .req(
                Method::GET,
                &format!("{session}/download?format={format}&r={scan1}&r={notes}"),
                None,
            )
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{format}");
        let bytes = r.bytes().await.unwrap().to_vec();
        let mut got: Vec<(String, String)> = Vec::new();
        if format == "zip" {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            for i in 0..archive.len() {
                let mut entry = archive.by_index(i).unwrap();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                got.push((entry.name().unwrap().into_owned(), md5_hex(&data)));
            }
        } else {
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                got.push((name, md5_hex(&data)));
            }
        }
        got.sort();
        // What the archive says (REST listing with digests).
        let mut want: Vec<(String, String)> = Vec::new();
        for (listing, prefix) in [
            (
                "scans/1/resources/DICOM/files",
                "SESS1/scans/1-T1w/resources/DICOM/files/",
            ),
            ("resources/NOTES/files", "SESS1/resources/NOTES/files/"),
        ] {
            for row in s
                .rows(
                    &format!(
                        "/data/projects/DL/subjects/SUBJ1/experiments/SESS1/{listing}?format=json"
                    ),
                    &alice,
                )
                .await
            {
                want.push((
                    format!("{prefix}{}", row["Name"].as_str().unwrap()),
                    row["digest"].as_str().unwrap().to_owned(),
                ));
            }
        }
        want.sort();
        assert_eq!(got, want, "{format}");
        assert_eq!(got.len(), 4);
    }
    // Nothing picked, or only IDs of other sessions: refused, no archive.
    let (status, _) = page(s, &format!("{session}/download?format=zip"), &cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = page(
        s,
        &format!("{session}/download?format=zip&r=999999"),
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn shared_sessions_show_under_their_labels_there(s: &TestServer) {
    let alice = s.create_user("alice").await;
    private_project(s, &alice, "SRC").await;
    s.seed(&alice, "DST").await;
    put_ok(
        s,
        "/data/projects/SRC/subjects/SUBJ1/projects/DST?label=SHSUBJ",
        &alice,
    )
    .await;
    put_ok(
        s,
        "/data/projects/SRC/subjects/SUBJ1/experiments/SESS1/projects/DST?label=SHARED1",
        &alice,
    )
    .await;
    let cookie = login(s, &alice).await;
    let (_, html) = page(s, "/app/projects/DST", &cookie).await;
    assert_eq!(session_rows(&html), ["SESS1", "SHARED1"]);
    assert!(
        html.contains("href=\"/app/projects/DST/subjects/SHSUBJ/experiments/SHARED1\""),
        "{html}"
    );
    let (_, html) = page(s, "/app/projects/DST?q=shared", &cookie).await;
    assert_eq!(session_rows(&html), ["SHARED1"]);
    let (status, html) = page(
        s,
        "/app/projects/DST/subjects/SHSUBJ/experiments/SHARED1",
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("T1w series"), "{html}");
    let (_, html) = page(s, "/app/projects?q=dst", &cookie).await;
    assert!(
        html.contains("<td class=\"num\">2</td><td class=\"num\">2</td>"),
        "{html}"
    );
}

on_both_backends!(
    shared_sessions_show_under_their_labels_there,
    pages_follow_project_permissions,
    root_sends_browsers_to_pages_and_clients_to_the_root_page,
    stored_text_is_escaped,
    forms_need_this_site_and_the_session_token,
    pages_carry_a_strict_csp_and_no_inline_script,
    sessions_are_paged_filtered_and_sorted_in_sql,
    files_panel_downloads_the_selection,
);
