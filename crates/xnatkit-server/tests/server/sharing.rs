//! Sharing subjects and experiments into other projects (XNAT's project
//! shares): who can read shared data through which project, that changes go
//! only through the owning project, that deleting through the shared
//! project removes only the share, label rules, listings and downloads;
//! and the experiment status (`/status`, `?activate`, `?quarantine`).

use reqwest::{Method, StatusCode, header};

use crate::harness::TestServer;

xnatkit_test_support::on_both_backends!(
    shared_data_permissions,
    share_rules_and_labels,
    deleting_owners_and_projects,
    experiment_status
);

type Auth = (String, String);

async fn status_of(s: &TestServer, method: Method, path: &str, auth: Option<&Auth>) -> StatusCode {
    s.req(method, path, auth).send().await.unwrap().status()
}

async fn expect(s: &TestServer, method: Method, path: &str, auth: &Auth, want: StatusCode) {
    let r = s
        .req(method.clone(), path, Some(auth))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, want, "{method} {path} as {}: {body}", auth.0);
}

async fn upload(s: &TestServer, path: &str, auth: &Auth, body: &'static [u8]) -> StatusCode {
    s.req(Method::PUT, path, Some(auth))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

fn labels(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["label"].as_str().unwrap().to_owned())
        .collect()
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
        .collect();
    names.sort();
    names
}

/// P1 (private, owned by alice) with subject S1, session E1 (scan 1 of type
/// T1 with a NIFTI file) and a subject resource; P2 (private, owned by bob)
/// with a member, a collaborator, and alice as member so she may share into
/// it. Returns (subject ID, session ID).
async fn two_projects(s: &TestServer, alice: &Auth, bob: &Auth) -> (String, String) {
    let (subject, session) = s.seed(alice, "P1").await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/accessibility/private",
        alice,
        StatusCode::OK,
    )
    .await;
    let scan = "/data/projects/P1/subjects/SUBJ1/experiments/SESS1/scans/1";
    expect(
        s,
        Method::PUT,
        &format!("{scan}?xsiType=xnat:mrScanData&xnat:mrScanData/type=T1"),
        alice,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        upload(
            s,
            &format!("{scan}/resources/NIFTI/files/a.txt"),
            alice,
            b"scan file"
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        upload(
            s,
            "/data/projects/P1/subjects/SUBJ1/resources/NOTES/files/n.txt",
            alice,
            b"subject note"
        )
        .await,
        StatusCode::OK
    );
    expect(
        s,
        Method::PUT,
        "/data/projects/P2",
        bob,
        StatusCode::CREATED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/accessibility/private",
        bob,
        StatusCode::OK,
    )
    .await;
    for (role, user) in [
        ("member", "carol"),
        ("collaborator", "dave"),
        ("member", "alice"),
    ] {
        expect(
            s,
            Method::PUT,
            &format!("/data/projects/P2/users/{role}/{user}"),
            bob,
            StatusCode::OK,
        )
        .await;
    }
    (subject, session)
}

async fn shared_data_permissions(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let bob = s.create_user("bob").await;
    let carol = s.create_user("carol").await;
    let dave = s.create_user("dave").await;
    let eve = s.create_user("eve").await;
    let (subject, session) = two_projects(s, &alice, &bob).await;

    // Share the subject and (through the short form) the session into P2.
    let r = s
        .put(
            "/data/projects/P1/subjects/SUBJ1/projects/P2?label=S2",
            &alice,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), subject);
    expect(
        s,
        Method::PUT,
        &format!("/data/experiments/{session}/projects/P2?label=E2"),
        &alice,
        StatusCode::OK,
    )
    .await;

    // Reads through P2 (by label and by ID, every URI form), for its
    // member and collaborator, although P1 is private to them.
    for reader in [&carol, &dave, &bob] {
        for path in [
            "/data/projects/P2/subjects/S2?format=json".to_owned(),
            format!("/data/projects/P2/subjects/{subject}?format=json"),
            "/data/projects/P2/subjects/S2/experiments/E2?format=json".to_owned(),
            format!(
                "/data/archive/projects/P2/subjects/{subject}/experiments/{session}?format=json"
            ),
            "/data/projects/P2/experiments/E2?format=json".to_owned(),
            format!("/data/experiments/{session}?format=json"),
            format!("/data/subjects/{subject}?format=json"),
            "/data/projects/P2/experiments/E2/scans?format=json".to_owned(),
            "/data/projects/P2/subjects/S2/resources?format=json".to_owned(),
        ] {
            expect(s, Method::GET, &path, reader, StatusCode::OK).await;
        }
    }
    // ... but not through P1, nor anything of P1 that is not shared.
    for path in [
        "/data/projects/P1/subjects/SUBJ1?format=json".to_owned(),
        format!("/data/projects/P1/subjects/{subject}?format=json"),
        format!("/data/projects/P1/experiments/{session}?format=json"),
        "/data/projects/P1/subjects?format=json".to_owned(),
        "/data/projects/P1/experiments/SESS1/scans/1/resources/NIFTI/files/a.txt".to_owned(),
        "/data/projects/P2/subjects/SUBJ1?format=json".to_owned(),
        "/data/projects/P2/experiments/SESS1?format=json".to_owned(),
    ] {
        expect(s, Method::GET, &path, &carol, StatusCode::NOT_FOUND).await;
    }
    // Someone in neither project sees nothing, by any URI.
    for path in [
        "/data/projects/P2/subjects/S2?format=json".to_owned(),
        format!("/data/experiments/{session}?format=json"),
        format!("/data/subjects/{subject}?format=json"),
    ] {
        expect(s, Method::GET, &path, &eve, StatusCode::NOT_FOUND).await;
    }

    // The item keeps its own project and label and lists the share.
    let item = s
        .json(
            "/data/projects/P2/subjects/S2/experiments/E2?format=json",
            &carol,
        )
        .await;
    let data = &item["items"][0]["data_fields"];
    assert_eq!(data["project"], "P1");
    assert_eq!(data["label"], "SESS1");
    let children = item["items"][0]["children"].as_array().unwrap();
    let sharing = children
        .iter()
        .find(|c| c["field"] == "sharing/share")
        .expect("sharing/share child");
    let share = &sharing["items"][0];
    assert_eq!(share["meta"]["xsi:type"], "xnat:experimentData_share");
    assert_eq!(share["data_fields"]["project"], "P2");
    assert_eq!(share["data_fields"]["label"], "E2");
    let item = s
        .json("/data/projects/P2/subjects/S2?format=json", &carol)
        .await;
    let share = &item["items"][0]["children"][0];
    assert_eq!(share["field"], "sharing/share");
    assert_eq!(
        share["items"][0]["meta"]["xsi:type"],
        "xnat:projectParticipant"
    );
    assert_eq!(share["items"][0]["data_fields"]["label"], "S2");

    // Listings of P2 include shared data under its P2 label, with the
    // owning project in `project`; P1's listings are unchanged.
    let rows = s
        .rows("/data/projects/P2/subjects?format=json", &carol)
        .await;
    assert_eq!(labels(&rows), ["S2"]);
    assert_eq!(rows[0]["project"], "P1");
    assert_eq!(rows[0]["ID"], subject.as_str());
    for path in [
        "/data/projects/P2/experiments?format=json",
        "/data/projects/P2/subjects/S2/experiments?format=json",
    ] {
        let rows = s.rows(path, &carol).await;
        assert_eq!(labels(&rows), ["E2"], "{path}");
        assert_eq!(rows[0]["project"], "P1");
        assert_eq!(rows[0]["subject_label"], "S2");
    }
    assert_eq!(
        labels(
            &s.rows("/data/projects/P1/subjects?format=json", &alice)
                .await
        ),
        ["SUBJ1"]
    );
    // Site-wide listings show shared data to P2's members, once.
    let rows = s.rows("/data/experiments?format=json", &carol).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["ID"], session.as_str());
    assert!(
        s.rows("/data/experiments?format=json", &eve)
            .await
            .is_empty()
    );

    // Files and downloads through P2: single file, the listed URIs, zips.
    let r = s
        .get(
            "/data/projects/P2/subjects/S2/experiments/E2/scans/1/resources/NIFTI/files/a.txt",
            &carol,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"scan file");
    let files = s
        .rows(
            "/data/projects/P2/experiments/E2/scans/ALL/files?format=json",
            &carol,
        )
        .await;
    assert_eq!(files.len(), 1);
    let uri = files[0]["URI"].as_str().unwrap().to_owned();
    let r = s.get(&uri, &carol).await;
    assert_eq!(r.status(), StatusCode::OK, "{uri}");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"scan file");
    let r = s
        .get(
            "/data/projects/P2/experiments/E2/scans/ALL/files?format=zip",
            &carol,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        zip_names(&r.bytes().await.unwrap()),
        ["E2/scans/1-T1/resources/NIFTI/files/a.txt"]
    );
    let r = s.get("/data/projects/P2/files?format=zip", &dave).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        zip_names(&r.bytes().await.unwrap()),
        [
            "E2/scans/1-T1/resources/NIFTI/files/a.txt",
            "S2/resources/NOTES/files/n.txt"
        ]
    );

    // Changes through P2 are refused with 403, even for P2's owner.
    for who in [&carol, &bob] {
        for path in [
            "/data/projects/P2/experiments/E2?xnat:mrSessionData/note=changed",
            "/data/projects/P2/subjects/S2/experiments/E2?label=RENAMED",
            "/data/projects/P2/subjects/S2?label=RENAMED",
            "/data/projects/P2/experiments/E2?quarantine=true",
            "/data/projects/P2/experiments/E2/scans/2?xsiType=xnat:mrScanData",
            "/data/projects/P2/experiments/E2/resources/NEW",
        ] {
            expect(s, Method::PUT, path, who, StatusCode::FORBIDDEN).await;
        }
        assert_eq!(
            upload(
                s,
                "/data/projects/P2/experiments/E2/scans/1/resources/NIFTI/files/b.txt",
                who,
                b"nope"
            )
            .await,
            StatusCode::FORBIDDEN
        );
        for path in [
            "/data/projects/P2/experiments/E2/scans/1",
            "/data/projects/P2/experiments/E2/scans/1/resources/NIFTI",
            "/data/projects/P2/experiments/E2/scans/1/resources/NIFTI/files/a.txt",
        ] {
            expect(s, Method::DELETE, path, who, StatusCode::FORBIDDEN).await;
        }
    }
    // A member or collaborator of P2 may not remove the share either; the
    // short form never deletes shared data.
    expect(
        s,
        Method::DELETE,
        "/data/projects/P2/experiments/E2",
        &carol,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        s,
        Method::DELETE,
        "/data/projects/P2/subjects/S2",
        &dave,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        s,
        Method::DELETE,
        &format!("/data/experiments/{session}"),
        &bob,
        StatusCode::FORBIDDEN,
    )
    .await;
    let item = s
        .json(&format!("/data/experiments/{session}?format=json"), &alice)
        .await;
    assert!(item["items"][0]["data_fields"].get("note").is_none());

    // The owner of the data may change it through P2: the label there is
    // the share's, the attributes are the object's.
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/S2/experiments/E2?label=E2B&xnat:mrSessionData/note=fine",
        &alice,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        labels(
            &s.rows("/data/projects/P2/experiments?format=json", &carol)
                .await
        ),
        ["E2B"]
    );
    let item = s
        .json("/data/projects/P1/experiments/SESS1?format=json", &alice)
        .await;
    assert_eq!(item["items"][0]["data_fields"]["label"], "SESS1");
    assert_eq!(item["items"][0]["data_fields"]["note"], "fine");

    // DELETE through P2 by its owner removes only the share.
    expect(
        s,
        Method::DELETE,
        "/data/projects/P2/experiments/E2B",
        &bob,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::GET,
        "/data/projects/P2/experiments/E2B?format=json",
        &carol,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        s,
        Method::GET,
        &format!("/data/experiments/{session}?format=json"),
        &carol,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(
        s.rows("/data/projects/P2/experiments?format=json", &carol)
            .await
            .is_empty()
    );
    let r = s
        .get(
            "/data/projects/P1/experiments/SESS1/scans/1/resources/NIFTI/files/a.txt",
            &alice,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"scan file");
    expect(
        s,
        Method::DELETE,
        "/data/projects/P2/subjects/S2",
        &bob,
        StatusCode::OK,
    )
    .await;
    assert!(
        s.rows("/data/projects/P2/subjects?format=json", &carol)
            .await
            .is_empty()
    );
    assert_eq!(
        labels(
            &s.rows("/data/projects/P1/subjects?format=json", &alice)
                .await
        ),
        ["SUBJ1"]
    );
    assert!(
        s.data_files()
            .iter()
            .any(|f| f.ends_with("P1/subjects/SUBJ1/resources/NOTES/n.txt")),
        "{:?}",
        s.data_files()
    );
}

async fn share_rules_and_labels(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let bob = s.create_user("bob").await;
    let _carol = s.create_user("carol").await;
    let _dave = s.create_user("dave").await;
    let eve = s.create_user("eve").await;
    let (subject, session) = two_projects(s, &alice, &bob).await;
    let share_subject = "/data/projects/P1/subjects/SUBJ1/projects/P2";
    let share_session =
        format!("/data/projects/P1/subjects/SUBJ1/experiments/{session}/projects/P2");

    // Labels already used in P2 (owned there) cannot be taken by a share.
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/TAKEN?xsiType=xnat:subjectData",
        &bob,
        StatusCode::CREATED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/TAKEN/experiments/ETAKEN?xsiType=xnat:mrSessionData",
        &bob,
        StatusCode::CREATED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("{share_subject}?label=TAKEN"),
        &alice,
        StatusCode::CONFLICT,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("{share_session}?label=ETAKEN"),
        &alice,
        StatusCode::CONFLICT,
    )
    .await;
    // Default label: the object's own.
    expect(s, Method::PUT, share_subject, &alice, StatusCode::OK).await;
    assert_eq!(
        labels(&s.rows("/data/projects/P2/subjects?format=json", &bob).await),
        ["SUBJ1", "TAKEN"]
    );
    // Sharing again with the same label is a no-op; a new label relabels.
    expect(s, Method::PUT, share_subject, &alice, StatusCode::OK).await;
    expect(
        s,
        Method::PUT,
        &format!("{share_subject}?label=SUBJ1"),
        &alice,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("{share_subject}?label=SHARED"),
        &alice,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        labels(&s.rows("/data/projects/P2/subjects?format=json", &bob).await),
        ["SHARED", "TAKEN"]
    );
    expect(
        s,
        Method::PUT,
        &format!("{share_subject}?label=TAKEN"),
        &alice,
        StatusCode::CONFLICT,
    )
    .await;
    // A share's label is taken in P2 for new and renamed objects too.
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/SHARED2?xsiType=xnat:subjectData",
        &bob,
        StatusCode::CREATED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/SHARED2?label=SHARED",
        &bob,
        StatusCode::CONFLICT,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("{share_session}?label=E2"),
        &alice,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/TAKEN/experiments/E2?xsiType=xnat:mrSessionData",
        &bob,
        StatusCode::CONFLICT,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/TAKEN/experiments/ETAKEN?label=E2",
        &bob,
        StatusCode::CONFLICT,
    )
    .await;
    // Creating through the shared label finds the shared subject: sessions
    // of a shared subject are created in its own project only.
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/SHARED/experiments/NEWSESS?xsiType=xnat:mrSessionData",
        &alice,
        StatusCode::CONFLICT,
    )
    .await;
    expect(
        s,
        Method::GET,
        "/data/projects/P1/experiments/NEWSESS?format=json",
        &alice,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Sharing into the owning project, or with primary=true, is refused.
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P1",
        &alice,
        StatusCode::CONFLICT,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("/data/experiments/{session}/projects/p1"),
        &alice,
        StatusCode::CONFLICT,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("{share_session}?label=E3&primary=true"),
        &alice,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("{share_session}?label=bad%20label"),
        &alice,
        StatusCode::EXPECTATION_FAILED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/NOPE",
        &alice,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/NOPE/projects/P2",
        &alice,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Permissions: read on the source, create (member/owner) in the target.
    expect(
        s,
        Method::PUT,
        "/data/projects/P3",
        &eve,
        StatusCode::CREATED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P3/accessibility/private",
        &eve,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P3",
        &alice,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P3/accessibility/protected",
        &eve,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P3",
        &alice,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P3/users/collaborator/alice",
        &eve,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P3",
        &alice,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P3/users/member/alice",
        &eve,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P3?label=S3",
        &alice,
        StatusCode::OK,
    )
    .await;
    // eve cannot read P1 (private): the source stays hidden.
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P3",
        &eve,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        status_of(
            s,
            Method::PUT,
            "/data/projects/P1/subjects/SUBJ1/projects/P3",
            None
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    // ... but through P3 she may read it, and share it on into her own
    // projects (read on the source is enough, as in XNAT).
    expect(
        s,
        Method::GET,
        "/data/projects/P3/subjects/S3?format=json",
        &eve,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P4",
        &eve,
        StatusCode::CREATED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P3/subjects/S3/projects/P4",
        &eve,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::GET,
        &format!("/data/projects/P4/subjects/{subject}?format=json"),
        &eve,
        StatusCode::OK,
    )
    .await;

    // Items list the shares into projects the caller can see (not P2).
    let item = s
        .json("/data/projects/P3/subjects/S3?format=json", &eve)
        .await;
    let sharing = item["items"][0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "sharing/share")
        .cloned()
        .expect("sharing/share child");
    let into: Vec<&str> = sharing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["data_fields"]["project"].as_str().unwrap())
        .collect();
    assert_eq!(into, ["P3", "P4"]);

    // `…/projects` lists the owner and the shares (those the caller sees).
    let rows = s
        .rows(
            "/data/projects/P1/subjects/SUBJ1/projects?format=json",
            &alice,
        )
        .await;
    let listed: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["ID"].as_str().unwrap().to_owned(),
                r["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("P1".to_owned(), "SUBJ1".to_owned()),
            ("P2".to_owned(), "SHARED".to_owned()),
            ("P3".to_owned(), "S3".to_owned()),
            ("P4".to_owned(), "SUBJ1".to_owned()),
        ]
    );
    let rows = s
        .rows("/data/projects/P3/subjects/S3/projects?format=json", &eve)
        .await;
    let ids: Vec<&str> = rows.iter().map(|r| r["ID"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["P1", "P3", "P4"],
        "P2 (private, not eve's) is not listed"
    );
    // The owning project P1 is private too: its ID is part of the object,
    // its name is not for eve to see.
    assert_eq!(rows[0]["Name"], "", "{rows:?}");
    assert_eq!(rows[0]["Secondary_ID"], "", "{rows:?}");
    assert_ne!(rows[1]["Name"], "", "{rows:?}");

    // DELETE …/projects/P2 removes the share; the owning project cannot be
    // removed that way; the share must exist.
    expect(
        s,
        Method::DELETE,
        "/data/projects/P1/subjects/SUBJ1/projects/P1",
        &alice,
        StatusCode::CONFLICT,
    )
    .await;
    expect(s, Method::DELETE, &share_session, &alice, StatusCode::OK).await;
    expect(
        s,
        Method::DELETE,
        &share_session,
        &alice,
        StatusCode::NOT_FOUND,
    )
    .await;
    // eve owns P4: she may remove the share into it, not the one into P3's
    // neighbour P2 (which she cannot see).
    expect(
        s,
        Method::DELETE,
        "/data/projects/P3/subjects/S3/projects/P4",
        &eve,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::DELETE,
        "/data/projects/P3/subjects/S3/projects/P2",
        &eve,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        s,
        Method::GET,
        &format!("/data/projects/P4/subjects/{subject}?format=json"),
        &eve,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        s,
        Method::GET,
        "/data/projects/P2/subjects/SHARED?format=json",
        &bob,
        StatusCode::OK,
    )
    .await;
}

async fn deleting_owners_and_projects(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let bob = s.create_user("bob").await;
    let carol = s.create_user("carol").await;
    let _dave = s.create_user("dave").await;
    let (_subject, session) = two_projects(s, &alice, &bob).await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P2?label=S2",
        &alice,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("/data/experiments/{session}/projects/P2?label=E2"),
        &alice,
        StatusCode::OK,
    )
    .await;

    // Deleting the session in P1 removes it everywhere.
    expect(
        s,
        Method::DELETE,
        "/data/projects/P1/subjects/SUBJ1/experiments/SESS1?removeFiles=true",
        &alice,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::GET,
        "/data/projects/P2/experiments/E2?format=json",
        &carol,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(
        s.rows("/data/projects/P2/experiments?format=json", &carol)
            .await
            .is_empty()
    );
    assert!(
        !s.data_files().iter().any(|f| f.contains("SESS1")),
        "{:?}",
        s.data_files()
    );
    // Its label in P2 is free again.
    expect(
        s,
        Method::PUT,
        "/data/projects/P2/subjects/NEW/experiments/E2?xsiType=xnat:mrSessionData",
        &bob,
        StatusCode::CREATED,
    )
    .await;

    // Deleting the shared project keeps the data in P1; deleting P1 removes
    // its shares elsewhere.
    expect(
        s,
        Method::PUT,
        "/data/projects/P3",
        &bob,
        StatusCode::CREATED,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P3/users/member/alice",
        &bob,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/P1/subjects/SUBJ1/projects/P3?label=S3",
        &alice,
        StatusCode::OK,
    )
    .await;
    expect(s, Method::DELETE, "/data/projects/P2", &bob, StatusCode::OK).await;
    assert_eq!(
        labels(
            &s.rows("/data/projects/P1/subjects?format=json", &alice)
                .await
        ),
        ["SUBJ1"]
    );
    let rows = s
        .rows(
            "/data/projects/P1/subjects/SUBJ1/projects?format=json",
            &alice,
        )
        .await;
    let ids: Vec<&str> = rows.iter().map(|r| r["ID"].as_str().unwrap()).collect();
    assert_eq!(ids, ["P1", "P3"]);
    assert!(s.data_files().iter().any(|f| f.ends_with("n.txt")));
    expect(
        s,
        Method::DELETE,
        "/data/projects/P1",
        &alice,
        StatusCode::OK,
    )
    .await;
    assert!(
        s.rows("/data/projects/P3/subjects?format=json", &bob)
            .await
            .is_empty()
    );
}

async fn experiment_status(s: &TestServer) {
    let owner = s.create_user("owner").await;
    let member = s.create_user("member").await;
    let collaborator = s.create_user("collab").await;
    let other = s.create_user("other").await;
    let (_, session) = s.seed(&owner, "STAT").await;
    expect(
        s,
        Method::PUT,
        "/data/projects/STAT/accessibility/private",
        &owner,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/STAT/users/member/member",
        &owner,
        StatusCode::OK,
    )
    .await;
    expect(
        s,
        Method::PUT,
        "/data/projects/STAT/users/collaborator/collab",
        &owner,
        StatusCode::OK,
    )
    .await;
    let uris = [
        format!("/data/experiments/{session}"),
        "/data/projects/STAT/subjects/SUBJ1/experiments/SESS1".to_owned(),
        format!("/data/archive/projects/STAT/experiments/{session}"),
    ];
    let status = |uri: String, who: Auth| async move {
        let r = s.get(&format!("{uri}/status"), &who).await;
        assert_eq!(r.status(), StatusCode::OK, "{uri}/status");
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        r.text().await.unwrap()
    };
    for uri in &uris {
        assert_eq!(status(uri.clone(), collaborator.clone()).await, "active");
    }
    expect(
        s,
        Method::GET,
        &format!("{}/status", uris[0]),
        &other,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        s,
        Method::GET,
        "/data/projects/STAT/experiments/NOPE/status",
        &owner,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Switching needs the edit right.
    expect(
        s,
        Method::PUT,
        &format!("{}?quarantine=true", uris[1]),
        &collaborator,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        s,
        Method::PUT,
        &format!("{}?quarantine=true", uris[1]),
        &other,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(status(uris[0].clone(), owner.clone()).await, "active");
    let r = s
        .put(&format!("{}?quarantine=true", uris[1]), &member)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), session);
    for uri in &uris {
        assert_eq!(
            status(uri.clone(), collaborator.clone()).await,
            "quarantine"
        );
    }
    // Other changes leave the status alone; activate switches back.
    expect(
        s,
        Method::PUT,
        &format!("{}?xnat:mrSessionData/note=n", uris[0]),
        &member,
        StatusCode::OK,
    )
    .await;
    assert_eq!(status(uris[2].clone(), owner.clone()).await, "quarantine");
    expect(
        s,
        Method::PUT,
        &format!("{}?activate=true", uris[2]),
        &owner,
        StatusCode::OK,
    )
    .await;
    assert_eq!(status(uris[1].clone(), owner.clone()).await, "active");
    // A session created quarantined.
    let r = s
        .put(
            "/data/projects/STAT/subjects/SUBJ1/experiments/SESS2?xsiType=xnat:mrSessionData&quarantine=true",
            &member,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        status(
            "/data/projects/STAT/experiments/SESS2".to_owned(),
            owner.clone()
        )
        .await,
        "quarantine"
    );
    // Not a subject URI.
    expect(
        s,
        Method::GET,
        "/data/projects/STAT/subjects/SUBJ1/status",
        &owner,
        StatusCode::NOT_FOUND,
    )
    .await;
}
