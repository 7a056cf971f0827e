//! The Upload page and the Prearchive tab against the real server: an
//! upload through the page lands in the prearchive (or the archive) as
//! through `POST /data/services/import`; the tab lists, filters and shows
//! sessions; archive (relabelled), rebuild, move and delete act on one or
//! many; and all of it under the REST prearchive's permission rules and
//! the pages' CSRF checks.

use reqwest::{Method, StatusCode, header, multipart};
use xnatkit_test_support::on_both_backends;

use crate::harness::*;

/// Uploads a generated study through the page; (status, body).
async fn upload(
    s: &TestServer,
    cookie: &str,
    token: Option<&str>,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let generated = study(2, 2, |_| {});
    let zip = zip_of(&entries_of(generated.dir.path(), &generated.files));
    let mut form = multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    form = form.part("file", multipart::Part::bytes(zip).file_name("upload.zip"));
    let mut request = s
        .req(Method::POST, "/app/upload", None)
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .multipart(form);
    if let Some(token) = token {
        request = request.header("x-xnatkit-csrf", token);
    }
    let r = request.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn act(s: &TestServer, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    s.req(Method::POST, "/app/projects/PA/prearchive", None)
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap()
}

/// `TIMESTAMP/FOLDER` of each prearchive session of `project` (REST).
async fn prearchived(s: &TestServer, auth: &Auth, project: &str) -> Vec<String> {
    s.rows(
        &format!("/data/prearchive/projects/{project}?format=json"),
        auth,
    )
    .await
    .iter()
    .map(|r| {
        format!(
            "{}/{}",
            r["timestamp"].as_str().unwrap(),
            r["folderName"].as_str().unwrap()
        )
    })
    .collect()
}

async fn upload_and_prearchive_pages(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let carol = s.create_user("carol").await;
    let bob = s.create_user("bob").await;
    for project in ["PA", "PB"] {
        let r = s
            .req(
                Method::PUT,
                &format!("/data/projects/{project}?accessibility=private"),
                Some(&alice),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let r = s
        .req(
            Method::PUT,
            "/data/projects/PA/users/Collaborators/carol",
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let cookie = browser_login(s, &alice).await;
    let (status, html) = page(s, "/app/upload?project=PA", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<option value=\"PA\" selected>"), "{html}");
    let token = form_token(&html);

    // Three sessions into the prearchive, one straight into the archive.
    for label in ["UP1", "UP2", "UP3"] {
        let (status, body) = upload(
            s,
            &cookie,
            Some(&token),
            &[
                ("project", "PA"),
                ("subject", "SUBJ"),
                ("session", label),
                ("dest", "/prearchive"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            answer["uris"][0]
                .as_str()
                .unwrap()
                .starts_with("/data/prearchive/projects/PA/")
        );
        assert_eq!(answer["links"][0], "/app/projects/PA/prearchive");
    }
    let (status, body) = upload(
        s,
        &cookie,
        Some(&token),
        &[
            ("project", "PA"),
            ("subject", "SUBJ"),
            ("session", "DIRECT"),
            ("dest", "/archive"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["links"][0],
        "/app/projects/PA/subjects/SUBJ/experiments/DIRECT"
    );
    assert_eq!(
        s.rows(
            "/data/projects/PA/subjects/SUBJ/experiments/DIRECT/files?format=json",
            &alice
        )
        .await
        .len(),
        4
    );
    // No token, or the outsider's project: refused, nothing imported.
    let (status, _) = upload(
        s,
        &cookie,
        None,
        &[("project", "PA"), ("dest", "/prearchive")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let keys = prearchived(s, &alice, "PA").await;
    assert_eq!(keys.len(), 3);

    // The tab: list, filter, details.
    let (status, html) = page(s, "/app/projects/PA/prearchive", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Sessions 1–3 of 3."), "{html}");
    let (_, html) = page(s, "/app/projects/PA/prearchive?q=up2", &cookie).await;
    assert!(
        html.contains("Sessions 1–1 of 1.") && html.contains(">UP2<"),
        "{html}"
    );
    let (_, html) = page(s, "/app/projects/PA/prearchive?status=ERROR", &cookie).await;
    assert!(html.contains("No prearchive sessions match."), "{html}");
    let (status, html) = page(
        s,
        &format!("/app/projects/PA/prearchive/{}", keys[0]),
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("id=\"prearchive-scans\"") && html.contains("READY"),
        "{html}"
    );

    let key = |label: &str| {
        keys.iter()
            .find(|k| k.ends_with(&format!("/{label}")))
            .unwrap()
            .clone()
    };
    // Archive one, relabelled.
    let (up1, up2, up3) = (key("UP1"), key("UP2"), key("UP3"));
    let r = act(
        s,
        &cookie,
        &[
            ("_csrf", &token),
            ("action", "archive"),
            ("sel", &up1),
            ("subject", "NEWSUBJ"),
            ("label", "UP1_ARCH"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/app/projects/PA/prearchive?done=archived"
    );
    assert_eq!(
        s.rows(
            "/data/projects/PA/subjects/NEWSUBJ/experiments/UP1_ARCH/files?format=json",
            &alice
        )
        .await
        .len(),
        4
    );
    // A new label for many sessions is refused; nothing changes.
    let r = act(
        s,
        &cookie,
        &[
            ("_csrf", &token),
            ("action", "archive"),
            ("sel", &up2),
            ("sel", &up3),
            ("label", "SAME"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Rebuild two, move one to PB, delete the other.
    let r = act(
        s,
        &cookie,
        &[
            ("_csrf", &token),
            ("action", "rebuild"),
            ("sel", &up2),
            ("sel", &up3),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = act(
        s,
        &cookie,
        &[
            ("_csrf", &token),
            ("action", "move"),
            ("sel", &up2),
            ("newProject", "PB"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(prearchived(s, &alice, "PB").await.len(), 1);
    let r = act(
        s,
        &cookie,
        &[("_csrf", &token), ("action", "delete"), ("sel", &up3)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(prearchived(s, &alice, "PA").await.is_empty());

    // CSRF: no token, another site.
    let r = act(s, &cookie, &[("action", "delete"), ("sel", &up3)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A collaborator may read the project but not use its prearchive, an
    // outsider sees nothing; neither may upload into it.
    for (user, want) in [
        (&carol, StatusCode::FORBIDDEN),
        (&bob, StatusCode::NOT_FOUND),
    ] {
        let other = browser_login(s, user).await;
        let (status, html) = page(s, "/app/projects/PA/prearchive", &other).await;
        assert_eq!(status, want, "{} {html}", user.0);
        let (_, html) = page(s, "/app/upload", &other).await;
        assert!(!html.contains("value=\"PA\""), "{html}");
        let other_token = form_token(&html);
        let (status, _) = upload(
            s,
            &other,
            Some(&other_token),
            &[("project", "PA"), ("dest", "/prearchive")],
        )
        .await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "{status}"
        );
        let r = act(
            s,
            &other,
            &[("_csrf", &other_token), ("action", "delete"), ("sel", &up3)],
        )
        .await;
        assert_eq!(r.status(), want);
    }
}

/// Posts files to the session page's Upload files panel.
async fn post_files(
    s: &TestServer,
    cookie: &str,
    token: Option<&str>,
    resource: &str,
    files: &[(&str, Vec<u8>)],
) -> (StatusCode, String) {
    let mut form = multipart::Form::new().text("resource", resource.to_owned());
    for (name, data) in files {
        form = form.part(
            "file",
            multipart::Part::bytes(data.clone()).file_name(name.to_string()),
        );
    }
    let mut request = s
        .req(
            Method::POST,
            &format!("/app/projects/PF/subjects/SUBJ1/experiments/SESS1/files?resource={resource}"),
            None,
        )
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .multipart(form);
    if let Some(token) = token {
        request = request.header("x-xnatkit-csrf", token);
    }
    let r = request.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn session_page_uploads_files_into_a_resource(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let carol = s.create_user("carol").await;
    s.seed(&alice, "PF").await;
    let r = s
        .req(
            Method::PUT,
            "/data/projects/PF/users/Collaborators/carol",
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let cookie = browser_login(s, &alice).await;
    let (status, html) = page(
        s,
        "/app/projects/PF/subjects/SUBJ1/experiments/SESS1",
        &cookie,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("action=\"/app/projects/PF/subjects/SUBJ1/experiments/SESS1/files\""),
        "{html}"
    );
    let token = form_token(&html);
    let files = [
        ("report.pdf", b"%PDF-1.4 not really".to_vec()),
        (
            "volume.nii.gz",
            (0..5000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>(),
        ),
    ];
    let (status, body) = post_files(s, &cookie, Some(&token), "NOTES", &files).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["links"][0],
        "/app/projects/PF/subjects/SUBJ1/experiments/SESS1"
    );
    let rows = s
        .rows(
            "/data/projects/PF/subjects/SUBJ1/experiments/SESS1/resources/NOTES/files?format=json",
            &alice,
        )
        .await;
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap().to_owned(),
                r["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = files
        .iter()
        .map(|(n, d)| (n.to_string(), md5_hex(d)))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // No token; a bad resource label; a collaborator (read only).
    let (status, _) = post_files(s, &cookie, None, "NOTES2", &files).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post_files(s, &cookie, Some(&token), "..", &files).await;
    assert!(status.is_client_error(), "{status}");
    let other = browser_login(s, &carol).await;
    let (_, html) = page(s, "/app/projects", &other).await;
    let (status, _) = post_files(s, &other, Some(&form_token(&html)), "NOTES3", &files).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    assert!(
        s.rows(
            "/data/projects/PF/subjects/SUBJ1/experiments/SESS1/resources?format=json",
            &alice
        )
        .await
        .len()
            == 1
    );
}

on_both_backends!(
    upload_and_prearchive_pages,
    session_page_uploads_files_into_a_resource
);
