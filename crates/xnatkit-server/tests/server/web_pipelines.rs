//! The Pipelines pages against the real server and the real engine: the
//! project's Pipelines tab lists its runs (paged and filtered in SQL), a
//! launch from the session page queues the built-in QA, which runs and
//! whose PNG montage the panel then shows inline (and the image answers
//! as a PNG to the viewer); a launch over "all N matching" sessions from
//! the tab; the run page shows the logs and the outputs; a collaborator
//! (no edit rights) gets the engine's refusal with its 403, an outsider
//! 404 on every page and form; and stored text is escaped.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use xnatkit_test_support::on_both_backends;

use crate::harness::*;

fn dcm2niix_missing() -> bool {
    xnatkit_test_support::ci::tool("dcm2niix", "dcm2niix").is_none()
}

async fn put_ok(s: &TestServer, path: &str, auth: &Auth) {
    let r = s.put(path, auth).await;
    assert!(r.status().is_success(), "PUT {path}: {}", r.status());
}

/// Imports a session of `series` CT series (8 slices of 32×32 each) into
/// `project`; returns its accession ID.
async fn import_session(s: &TestServer, project: &str, subject: &str, session: &str) -> String {
    let generated = study(2, 8, |i| {
        i.modality = "CT".to_owned();
        i.rows = 32;
        i.cols = 32;
    });
    let entries = entries_of(generated.dir.path(), &generated.files);
    let (status, body) = s
        .import(
            &format!("dest=/archive&project={project}&subject={subject}&session={session}"),
            zip_of(&entries),
            &s.admin(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let exp = s
        .json(
            &format!("/data/projects/{project}/experiments/{session}?format=json"),
            &s.admin(),
        )
        .await;
    exp["items"][0]["data_fields"]["ID"]
        .as_str()
        .expect("session ID")
        .to_owned()
}

/// The ID of wrapper `name`.
async fn wrapper_id(s: &TestServer, name: &str) -> i64 {
    let commands = s.json("/xapi/commands", &s.admin()).await;
    commands
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["xnat"].as_array().unwrap().iter())
        .find(|w| w["name"] == name)
        .and_then(|w| w["id"].as_i64())
        .unwrap_or_else(|| panic!("no wrapper {name}"))
}

/// POSTs a form as a browser of this site with `cookie`.
async fn post_form(
    s: &TestServer,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    s.req(Method::POST, path, None)
        .header(header::COOKIE, cookie)
        .header("Sec-Fetch-Site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Polls `path` (as `cookie`) until `done` holds for its HTML.
async fn wait_for_page(
    s: &TestServer,
    path: &str,
    cookie: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (status, html) = page(s, path, cookie).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        if done(&html) {
            return html;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {html}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every `src` of an `<img class="output">` on a page.
fn output_images(html: &str) -> Vec<String> {
    html.split("<img src=\"")
        .skip(1)
        .filter(|rest| rest.contains("class=\"output\""))
        .map(|rest| rest.split('"').next().unwrap().replace("&#x2f;", "/"))
        .collect()
}

/// `value`s of the checkboxes named `name` on a page.
fn checkbox_values(html: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// Rows (run IDs) of the runs table of the Pipelines tab.
fn run_ids(html: &str) -> Vec<i64> {
    let Some(start) = html.find("id=\"run-table\"") else {
        return Vec::new();
    };
    html[start..]
        .split("<tr data-run=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

async fn launch_from_the_session_page_shows_the_qa_montage(s: &TestServer) {
    if dcm2niix_missing() {
        return;
    }
    let alice = s.create_user("alice").await;
    put_ok(s, "/data/projects/PIPEWEB?accessibility=private", &alice).await;
    let first = import_session(s, "PIPEWEB", "SUBJ1", "SUBJ1_CT").await;
    let _second = import_session(s, "PIPEWEB", "SUBJ2", "SUBJ2_CT").await;
    let qa = wrapper_id(s, "qa-scan").await;
    let cookie = browser_login(s, &alice).await;

    // Nothing enabled yet: the tab says so, the panel offers nothing.
    let (status, html) = page(s, "/app/projects/PIPEWEB/pipelines", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("href=\"/app/projects/PIPEWEB/pipelines\" aria-current=\"page\""),
        "{html}"
    );
    assert!(html.contains("No runs."), "{html}");
    assert!(html.contains("No pipeline is enabled"), "{html}");
    put_ok(
        s,
        &format!("/xapi/projects/PIPEWEB/wrappers/{qa}/enabled"),
        &alice,
    )
    .await;

    let session_page = "/app/projects/PIPEWEB/subjects/SUBJ1/experiments/SUBJ1_CT";
    let (status, html) = page(s, session_page, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"session-launch\""), "{html}");
    assert!(
        html.contains(&format!("<option value=\"{qa}\">qa-scan")),
        "{html}"
    );
    assert_eq!(checkbox_values(&html, "scan"), ["1", "2"]);
    assert!(html.contains("No runs on this session yet."), "{html}");
    let token = form_token(&html);

    // Launch QA on scan 1 from the session page: back to the page, queued.
    let r = post_form(
        s,
        &format!("{session_page}/pipelines"),
        &cookie,
        &[
            ("_csrf", token.as_str()),
            ("wrapper", &qa.to_string()),
            ("scan", "1"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        format!("{session_page}?launched=1#pipelines")
    );
    let (_, html) = page(s, &format!("{session_page}?launched=1"), &cookie).await;
    assert!(html.contains("Launched 1 run."), "{html}");
    assert!(html.contains("<td>SUBJ1_CT scan 1</td>"), "{html}");

    // It runs; the panel then shows the montage inline.
    let html = wait_for_page(s, session_page, &cookie, |h| {
        h.contains("status ok") || h.contains("status failed")
    })
    .await;
    assert!(
        html.contains("<span class=\"status ok\">Complete</span>"),
        "{html}"
    );
    let images = output_images(&html);
    assert!(
        images.iter().any(
            |i| i.starts_with(&format!("/data/experiments/{first}/assessors/"))
                && i.ends_with("/resources/QA/files/montage.png")
        ),
        "{images:?}: {html}"
    );
    assert!(
        html.contains("assessor SUBJ1_CT_QA_1, resource QA"),
        "{html}"
    );
    // The image is a PNG to this viewer, through the REST file route.
    for src in &images {
        let r = s
            .req(Method::GET, src, None)
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{src}");
        let bytes = r.bytes().await.unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{src} is no PNG");
    }

    // The tab lists the run with its object, user, status and duration.
    let (_, html) = page(s, "/app/projects/PIPEWEB/pipelines", &cookie).await;
    let runs = run_ids(&html);
    assert_eq!(runs.len(), 1, "{html}");
    let run = runs[0];
    assert!(
        html.contains("qa-scan <span class=\"muted\">(qa)</span>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("<a href=\"{session_page}\">SUBJ1_CT scan 1</a>")),
        "{html}"
    );
    assert!(html.contains("<td>alice</td>"), "{html}");
    assert!(html.contains("Runs 1–1 of 1, newest first."), "{html}");
    // Filtered by status in SQL.
    let (_, html) = page(s, "/app/projects/PIPEWEB/pipelines?status=Failed", &cookie).await;
    assert!(
        run_ids(&html).is_empty() && html.contains("No runs with this status."),
        "{html}"
    );
    let (_, html) = page(
        s,
        "/app/projects/PIPEWEB/pipelines?status=Complete",
        &cookie,
    )
    .await;
    assert_eq!(run_ids(&html), [run]);

    // The run's page: the logs (as the xapi log route reads them), the
    // outputs with the montage, the history.
    let (status, html) = page(
        s,
        &format!("/app/projects/PIPEWEB/pipelines/{run}"),
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<title>Run "), "{html}");
    assert!(html.contains("id=\"log-stdout\"") && html.contains("id=\"log-stderr\""));
    let stdout = s
        .req(
            Method::GET,
            &format!("/xapi/projects/PIPEWEB/containers/{run}/logs/stdout"),
            Some(&alice),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if let Some(line) = stdout.lines().find(|l| !l.trim().is_empty()) {
        let escaped = line
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(html.contains(escaped.trim()), "{line}: {html}");
    }
    assert!(
        output_images(&html)
            .iter()
            .any(|i| i.ends_with("montage.png")),
        "{html}"
    );
    assert!(html.contains("id=\"run-history\""));
    assert!(html.contains("<td>Complete</td>"), "{html}");

    // From the tab: every matching session ("all 2"), scans of the ticked
    // types, replacing earlier QA — two sessions × two series.
    let (_, html) = page(s, "/app/projects/PIPEWEB/pipelines", &cookie).await;
    assert!(html.contains("All 2 matching sessions"), "{html}");
    let types = checkbox_values(&html, "type");
    assert!(!types.is_empty(), "{html}");
    let (_, filtered) = page(s, "/app/projects/PIPEWEB/pipelines?q=SUBJ2", &cookie).await;
    assert!(
        filtered.contains("All 1 matching session</strong>"),
        "{filtered}"
    );
    let token = form_token(&html);
    let wrapper = qa.to_string();
    let mut form = vec![
        ("_csrf", token.as_str()),
        ("wrapper", wrapper.as_str()),
        ("q", ""),
        ("subject", ""),
        ("overwrite", "true"),
    ];
    form.extend(types.iter().map(|t| ("type", t.as_str())));
    let r = post_form(s, "/app/projects/PIPEWEB/pipelines", &cookie, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/app/projects/PIPEWEB/pipelines?launched=4"
    );
    let html = wait_for_page(
        s,
        "/app/projects/PIPEWEB/pipelines?status=Complete",
        &cookie,
        |h| run_ids(h).len() == 5,
    )
    .await;
    let ids = run_ids(&html);
    let mut newest_first = ids.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first, "newest first");
    // Past the last page: the last page.
    let (_, html) = page(s, "/app/projects/PIPEWEB/pipelines?size=10&page=7", &cookie).await;
    assert_eq!(run_ids(&html).len(), 5);
    assert!(html.contains("Page 1 of 1"), "{html}");
    // One session's runs (the panel's "all runs" link).
    let (_, html) = page(s, session_page, &cookie).await;
    assert!(html.contains("All 3 runs of this session"), "{html}");
    let (_, html) = page(
        s,
        &format!("/app/projects/PIPEWEB/pipelines?session={first}"),
        &cookie,
    )
    .await;
    assert_eq!(run_ids(&html).len(), 3, "{html}");
    assert!(html.contains("Runs on session SUBJ1_CT"), "{html}");
}

async fn pipeline_pages_follow_permissions(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let carol = s.create_user("carol").await;
    let dave = s.create_user("dave").await;
    s.seed(&alice, "PERMS").await;
    put_ok(s, "/data/projects/PERMS/accessibility/private", &alice).await;
    put_ok(s, "/data/projects/PERMS/users/collaborator/carol", &alice).await;
    let session = "/data/projects/PERMS/subjects/SUBJ1/experiments/SESS1";
    put_ok(
        s,
        &format!("{session}/scans/1?xsiType=xnat:mrScanData&xnat:mrScanData/type=T1w"),
        &alice,
    )
    .await;
    let qa = wrapper_id(s, "qa-scan").await;
    let dcm = wrapper_id(s, "dcm2niix-scan").await;
    put_ok(
        s,
        &format!("/xapi/projects/PERMS/wrappers/{qa}/enabled"),
        &alice,
    )
    .await;
    let session_page = "/app/projects/PERMS/subjects/SUBJ1/experiments/SESS1";

    // The owner: a launch the engine refuses (no DICOM on the scan) shows
    // the engine's reason, with 400; one of a wrapper the project did not
    // enable says so.
    let alice_cookie = browser_login(s, &alice).await;
    let (_, html) = page(s, session_page, &alice_cookie).await;
    let token = form_token(&html);
    let r = post_form(
        s,
        &format!("{session_page}/pipelines"),
        &alice_cookie,
        &[
            ("_csrf", token.as_str()),
            ("wrapper", &dcm.to_string()),
            ("scan", "1"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"launch-refused\""), "{html}");
    assert!(html.contains("not enabled in project PERMS"), "{html}");
    // No scan ticked: told what to do.
    let r = post_form(
        s,
        &format!("{session_page}/pipelines"),
        &alice_cookie,
        &[("_csrf", token.as_str()), ("wrapper", &qa.to_string())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("tick at least one scan"));
    // Without the form token: refused before anything.
    let r = post_form(
        s,
        &format!("{session_page}/pipelines"),
        &alice_cookie,
        &[("wrapper", &qa.to_string()), ("scan", "1")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let containers = s.json("/xapi/projects/PERMS/containers", &alice).await;
    assert_eq!(containers.as_array().unwrap().len(), 0, "{containers}");

    // A collaborator reads the tab and the panel but is offered no launch;
    // a launch posted anyway gets the engine's refusal and its 403.
    let carol_cookie = browser_login(s, &carol).await;
    let (status, html) = page(s, "/app/projects/PERMS/pipelines", &carol_cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains("id=\"launch-form\""), "{html}");
    let (status, html) = page(s, session_page, &carol_cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"pipelines\"") && !html.contains("id=\"session-launch\""));
    let token = form_token(&html);
    for (path, form) in [
        (format!("{session_page}/pipelines"), vec![("scan", "1")]),
        (
            "/app/projects/PERMS/pipelines".to_owned(),
            vec![("type", "T1w")],
        ),
    ] {
        let wrapper = qa.to_string();
        let mut fields = vec![("_csrf", token.as_str()), ("wrapper", wrapper.as_str())];
        fields.extend(form);
        let r = post_form(s, &path, &carol_cookie, &fields).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains("id=\"launch-refused\""), "{html}");
        assert!(html.contains("Forbidden: you may not"), "{html}");
    }
    let containers = s.json("/xapi/projects/PERMS/containers", &alice).await;
    assert_eq!(containers.as_array().unwrap().len(), 0, "{containers}");

    // An outsider: no page and no form of the private project exists.
    let dave_cookie = browser_login(s, &dave).await;
    for path in [
        "/app/projects/PERMS/pipelines",
        "/app/projects/PERMS/pipelines/1",
        session_page,
    ] {
        let (status, _) = page(s, path, &dave_cookie).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, html) = page(s, "/app/projects", &dave_cookie).await;
    let token = form_token(&html);
    for (path, extra) in [
        (format!("{session_page}/pipelines"), ("scan", "1")),
        ("/app/projects/PERMS/pipelines".to_owned(), ("type", "T1w")),
    ] {
        let wrapper = qa.to_string();
        let r = post_form(
            s,
            &path,
            &dave_cookie,
            &[
                ("_csrf", token.as_str()),
                ("wrapper", wrapper.as_str()),
                extra,
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Admin → Users is linked in the header for site admins only.
    let (_, html) = page(s, "/app/projects", &alice_cookie).await;
    assert!(!html.contains("href=\"/app/admin/users\""), "{html}");
    let admin_cookie = browser_login(s, &s.admin()).await;
    let (_, html) = page(s, "/app/projects", &admin_cookie).await;
    assert!(html.contains("href=\"/app/admin/users\""), "{html}");
}

async fn pipeline_pages_escape_stored_text(s: &TestServer) {
    let admin = s.admin();
    s.seed(&admin, "PESC").await;
    let evil = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    put_ok(s, &format!("/data/projects/PESC?name=Name{evil}"), &admin).await;
    let session = "/data/projects/PESC/subjects/SUBJ1/experiments/SESS1";
    put_ok(
        s,
        &format!("{session}/scans/1?xsiType=xnat:mrScanData&xnat:mrScanData/type=T{evil}"),
        &admin,
    )
    .await;
    let qa = wrapper_id(s, "qa-scan").await;
    put_ok(
        s,
        &format!("/xapi/projects/PESC/wrappers/{qa}/enabled"),
        &admin,
    )
    .await;
    let cookie = browser_login(s, &admin).await;
    for path in [
        "/app/projects/PESC/pipelines",
        "/app/projects/PESC/pipelines?q=%3Cscript%3E&status=%3Cscript%3E",
        "/app/projects/PESC/subjects/SUBJ1/experiments/SESS1",
    ] {
        let (status, html) = page(s, path, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains("<script>"), "{path}: {html}");
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"),
            "{path}: {html}"
        );
    }
    // A refused launch echoes the target and the engine's message escaped.
    let (_, html) = page(s, "/app/projects/PESC/pipelines", &cookie).await;
    let token = form_token(&html);
    let r = post_form(
        s,
        "/app/projects/PESC/pipelines",
        &cookie,
        &[
            ("_csrf", token.as_str()),
            ("wrapper", &qa.to_string()),
            ("type", "T<script>alert(1)</script>"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("id=\"launch-refused\""), "{html}");
}

on_both_backends!(
    launch_from_the_session_page_shows_the_qa_montage,
    pipeline_pages_follow_permissions,
    pipeline_pages_escape_stored_text,
);
