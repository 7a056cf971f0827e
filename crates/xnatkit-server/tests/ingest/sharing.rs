//! Imports into a project that holds shared data: labels of subjects and
//! sessions shared into it are taken there, and their sessions are only
//! added in their own project.

use reqwest::{Method, StatusCode};

use crate::harness::{TestServer, entries_of, study, zip_of};

crate::on_both_backends!(import_respects_shared_labels, dicomdump_of_shared_sessions);

async fn put_ok(server: &TestServer, path: &str) {
    let r = server
        .req(Method::PUT, path, Some(&server.admin()))
        .send()
        .await
        .expect("PUT");
    let status = r.status();
    assert!(
        status.is_success(),
        "PUT {path}: {status} {:?}",
        r.text().await
    );
}

fn labels(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["label"].as_str().expect("label").to_owned())
        .collect()
}

async fn import_respects_shared_labels(server: &TestServer) {
    let admin = server.admin();
    server.create_project("OWNS").await;
    server.create_project("SHARED").await;
    let first = study(1, 2, |_| {});
    let (status, body) = server
        .import(
            "dest=/archive&project=OWNS&subject=SUBJ1&session=SESS1",
            zip_of(&entries_of(first.dir.path(), &first.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    put_ok(server, "/data/projects/OWNS/subjects/SUBJ1/projects/SHARED").await;
    put_ok(
        server,
        "/data/projects/OWNS/experiments/SESS1/projects/SHARED",
    )
    .await;

    // A new study under the shared session's label, or under the shared
    // subject's label: refused, nothing changes in either project.
    for query in [
        "dest=/archive&project=SHARED&subject=OTHER&session=SESS1",
        "dest=/archive&project=SHARED&subject=SUBJ1&session=NEW1",
    ] {
        let other = study(1, 2, |_| {});
        let (status, body) = server
            .import(
                query,
                zip_of(&entries_of(other.dir.path(), &other.files)),
                &admin,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{query}: {body}");
        assert!(body.contains("shared from project OWNS"), "{body}");
    }
    assert_eq!(
        labels(
            &server
                .rows("/data/projects/SHARED/experiments?format=json", &admin)
                .await
        ),
        ["SESS1"]
    );
    assert_eq!(
        labels(
            &server
                .rows("/data/projects/SHARED/subjects?format=json", &admin)
                .await
        ),
        ["SUBJ1"]
    );
    assert_eq!(
        labels(
            &server
                .rows("/data/projects/OWNS/experiments?format=json", &admin)
                .await
        ),
        ["SESS1"]
    );
    let scans = server
        .rows(
            "/data/projects/OWNS/experiments/SESS1/scans?format=json",
            &admin,
        )
        .await;
    assert_eq!(scans.len(), 1, "the shared session got no new scans");

    // Free labels import as usual.
    let fresh = study(1, 1, |_| {});
    let (status, body) = server
        .import(
            "dest=/archive&project=SHARED&subject=FRESH&session=NEW2",
            zip_of(&entries_of(fresh.dir.path(), &fresh.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        labels(
            &server
                .rows("/data/projects/SHARED/experiments?format=json", &admin)
                .await
        ),
        ["NEW2", "SESS1"]
    );
}

/// dicomdump follows the same rules as the archive routes: a member of the
/// project a session is shared into may dump it through that project (by
/// its label there or by ID) or by the short form, but not through the
/// private owning project; strangers see nothing.
async fn dicomdump_of_shared_sessions(server: &TestServer) {
    let admin = server.admin();
    server.create_project("OWNS").await;
    server.create_project("READS").await;
    put_ok(server, "/data/projects/OWNS/accessibility/private").await;
    let reader = server.create_user("reader").await;
    let stranger = server.create_user("stranger").await;
    put_ok(server, "/data/projects/READS/users/member/reader").await;
    let one = study(1, 1, |_| {});
    let (status, body) = server
        .import(
            "dest=/archive&project=OWNS&subject=SUBJ1&session=SESS1",
            zip_of(&entries_of(one.dir.path(), &one.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = server
        .rows("/data/projects/OWNS/experiments?format=json", &admin)
        .await[0]["ID"]
        .as_str()
        .expect("ID")
        .to_owned();
    let dump = |src: String| {
        format!("/data/services/dicomdump?src={src}&field=StudyInstanceUID&format=json")
    };
    let through_owner = dump(format!("/archive/projects/OWNS/experiments/{id}/scans/1"));
    let by_label = dump("/archive/projects/READS/experiments/SHX/scans/1".to_owned());
    let by_id = dump(format!("/archive/projects/READS/experiments/{id}/scans/1"));
    let short = dump(format!("/archive/experiments/{id}/scans/1"));
    // Before the share the reader sees nothing.
    for path in [&through_owner, &by_label, &short] {
        let r = server.get(path, &reader).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    put_ok(
        server,
        &format!("/data/experiments/{id}/projects/READS?label=SHX"),
    )
    .await;
    for path in [&by_label, &by_id, &short] {
        let rows = server.rows(path, &reader).await;
        let text = serde_json::to_string(&rows).expect("json");
        assert!(text.contains(&one.uid), "{path}: {text}");
    }
    let r = server.get(&through_owner, &reader).await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "not through the owning project"
    );
    for path in [&by_label, &short] {
        let r = server.get(path, &stranger).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
