//! Custom variables and deletion from the subject and session pages,
//! against the real server: a member sets and removes variables that REST
//! clients then read; deletion asks for the label on a confirmation page
//! that counts what goes, and follows the REST API's rules (a member may
//! not delete, a collaborator sees no form, an outsider gets 404, a
//! cross-site post is refused, a wrong label deletes nothing).

use reqwest::{Method, StatusCode, header};
use xnatkit_test_support::on_both_backends;

use crate::harness::*;

/// POST a page form as a browser from this site.
async fn post_form(
    s: &TestServer,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let r = s
        .req(Method::POST, path, None)
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

/// `name → value` of a session's custom variables as xnatpy reads them.
async fn rest_fields(s: &TestServer, auth: &Auth, path: &str) -> Vec<(String, String)> {
    let doc = s.json(&format!("{path}?format=json"), auth).await;
    let mut out = Vec::new();
    for child in doc["items"][0]["children"].as_array().unwrap() {
        if child["field"] == "fields/field" {
            for item in child["items"].as_array().unwrap() {
                let data = &item["data_fields"];
                out.push((
                    data["name"].as_str().unwrap().to_owned(),
                    data["field"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    out.sort();
    out
}

async fn custom_variables_and_deletion(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let bob = s.create_user("bob").await;
    let carol = s.create_user("carol").await;
    let eve = s.create_user("eve").await;
    s.seed(&alice, "PE").await;
    // A second session with files: an imported study.
    let generated = study(2, 3, |_| {});
    let zip = zip_of(&entries_of(generated.dir.path(), &generated.files));
    let (status, body) = s
        .import(
            "dest=/archive/projects/PE/subjects/SUBJ1/experiments/FULL",
            zip,
            &alice,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    for (user, role) in [("bob", "Members"), ("carol", "Collaborators")] {
        let r = s
            .put(&format!("/data/projects/PE/users/{role}/{user}"), &alice)
            .await;
        assert!(r.status().is_success(), "{}", r.status());
    }
    let session = "/app/projects/PE/subjects/SUBJ1/experiments/SESS1";
    let rest_session = "/data/projects/PE/subjects/SUBJ1/experiments/SESS1";

    // A member sets two variables (the name is stored lower-cased, the value
    // escaped on the page) and removes one; REST sees exactly that.
    let cookie = browser_login(s, &bob).await;
    let (status, html) = page(s, session, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"field-form\""), "members edit");
    assert!(
        !html.contains("id=\"delete-link\""),
        "members do not delete"
    );
    let token = form_token(&html);
    for (name, value) in [("Weight_kg", "71.5"), ("note", "<script>x</script>")] {
        let (status, location, body) = post_form(
            s,
            &format!("{session}/fields"),
            &cookie,
            &[("_csrf", &token), ("name", name), ("value", value)],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(location, format!("{session}#custom-fields"));
    }
    assert_eq!(
        rest_fields(s, &bob, rest_session).await,
        vec![
            ("note".to_owned(), "<script>x</script>".to_owned()),
            ("weight_kg".to_owned(), "71.5".to_owned())
        ]
    );
    let (_, html) = page(s, session, &cookie).await;
    assert!(
        html.contains("&#60;script&#62;x&#60;/script&#62;"),
        "escaped: {html}"
    );
    assert!(!html.contains("<script>x</script>"));
    let (status, _, _) = post_form(
        s,
        &format!("{session}/fields"),
        &cookie,
        &[("_csrf", &token), ("name", "note"), ("remove", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        rest_fields(s, &bob, rest_session).await,
        vec![("weight_kg".to_owned(), "71.5".to_owned())]
    );
    // A bad name is refused with the reason; nothing changes.
    let (status, _, body) = post_form(
        s,
        &format!("{session}/fields"),
        &cookie,
        &[("_csrf", &token), ("name", "two words"), ("value", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("custom variable name"), "{body}");
    // Without the form token nothing is written.
    let (status, _, _) = post_form(
        s,
        &format!("{session}/fields"),
        &cookie,
        &[("name", "x"), ("value", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Subject variables too; a member may not delete (403 on the post).
    let (status, _, _) = post_form(
        s,
        "/app/projects/PE/subjects/SUBJ1/fields",
        &cookie,
        &[("_csrf", &token), ("name", "group"), ("value", "control")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = page(s, "/app/projects/PE/subjects/SUBJ1", &cookie).await;
    assert!(html.contains("<td>group</td><td>control</td>"), "{html}");
    // The form never creates what it names: a typo in the path is a 404,
    // not a new subject or session.
    for path in [
        "/app/projects/PE/subjects/NOSUCH/fields",
        "/app/projects/PE/subjects/SUBJ1/experiments/NOSUCH/fields",
    ] {
        let (status, _, _) = post_form(
            s,
            path,
            &cookie,
            &[("_csrf", &token), ("name", "group"), ("value", "x")],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        s.rows("/data/projects/PE/subjects", &alice).await.len(),
        1,
        "no subject was created"
    );
    let (status, html) = page(s, &format!("{session}/delete"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("id=\"delete-form\""));
    let (status, _, _) = post_form(
        s,
        &format!("{session}/delete"),
        &cookie,
        &[("_csrf", &token), ("confirm", "SESS1")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A collaborator reads the variables but gets no form.
    let cookie = browser_login(s, &carol).await;
    let (status, html) = page(s, session, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<td>weight_kg</td><td>71.5</td>"));
    assert!(!html.contains("id=\"field-form\""));
    let token = form_token(&html);
    let (status, _, _) = post_form(
        s,
        &format!("{session}/fields"),
        &cookie,
        &[("_csrf", &token), ("name", "x"), ("value", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An outsider gets 404 for the pages and the forms.
    let cookie = browser_login(s, &eve).await;
    for path in [
        format!("{session}/delete"),
        "/app/projects/PE/subjects/SUBJ1/delete".to_owned(),
    ] {
        assert_eq!(page(s, &path, &cookie).await.0, StatusCode::NOT_FOUND);
    }

    // The owner: the confirmation counts what goes; a wrong label deletes
    // nothing; the right one deletes a scan, then the session.
    let cookie = browser_login(s, &alice).await;
    let full = "/app/projects/PE/subjects/SUBJ1/experiments/FULL";
    let (status, html) = page(s, full, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"delete-link\""));
    assert!(
        html.contains(&format!("href=\"{full}/scans/1/delete\"")),
        "{html}"
    );
    let token = form_token(&html);
    // The Files panel also offers a plain tar.
    assert!(html.contains("<option value=\"tar\">tar</option>"));
    let marker = "name=\"r\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let resource = html[start..].split('"').next().unwrap();
    let r = s
        .req(
            Method::GET,
            &format!("{full}/download?format=tar&r={resource}"),
            None,
        )
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    let mut tar = tar::Archive::new(&bytes[..]);
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let (status, html) = page(s, &format!("{full}/delete"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("2 scans, 6 files"), "{html}");
    let (status, html) = page(s, &format!("{full}/scans/1/delete"), &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("3 files"), "{html}");
    let (status, _, body) = post_form(
        s,
        &format!("{full}/scans/1/delete"),
        &cookie,
        &[("_csrf", &token), ("confirm", "2")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("nothing was deleted"), "{body}");
    let scans = s
        .rows(
            "/data/projects/PE/subjects/SUBJ1/experiments/FULL/scans",
            &alice,
        )
        .await;
    assert_eq!(scans.len(), 2);
    let (status, location, _) = post_form(
        s,
        &format!("{full}/scans/1/delete"),
        &cookie,
        &[("_csrf", &token), ("confirm", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, full);
    let scans = s
        .rows(
            "/data/projects/PE/subjects/SUBJ1/experiments/FULL/scans",
            &alice,
        )
        .await;
    assert_eq!(scans.len(), 1);
    let (status, location, _) = post_form(
        s,
        &format!("{full}/delete"),
        &cookie,
        &[("_csrf", &token), ("confirm", "FULL")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/app/projects/PE/subjects/SUBJ1");
    let r = s
        .get("/data/projects/PE/subjects/SUBJ1/experiments/FULL", &alice)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        !s.data_files().iter().any(|f| f.contains("FULL")),
        "the session's files are gone: {:?}",
        s.data_files()
    );
    // Then the subject with what is left.
    let (_, html) = page(s, "/app/projects/PE/subjects/SUBJ1/delete", &cookie).await;
    assert!(html.contains("1 session, 0 scans"), "{html}");
    let (status, location, _) = post_form(
        s,
        "/app/projects/PE/subjects/SUBJ1/delete",
        &cookie,
        &[("_csrf", &token), ("confirm", "SUBJ1")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/app/projects/PE");
    assert!(
        s.rows("/data/projects/PE/subjects", &alice)
            .await
            .is_empty()
    );
}

on_both_backends!(custom_variables_and_deletion);
