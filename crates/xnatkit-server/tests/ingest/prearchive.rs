//! Prearchive: listing fields and formats, scans/resources/files, zip
//! download, rebuild, archive with relabelling, routing from headers,
//! auto-archive codes, Unassigned data and moving it, gradual uploads.

use reqwest::{Method, StatusCode};

use crate::harness::{TestServer, entries_of, study, tar_gz_of, zip_of};

crate::on_both_backends!(
    new_projects_auto_archive_unless_told_otherwise,
    tar_gz_to_prearchive_then_archive_relabelled,
    routing_codes_and_unassigned,
    gradual_single_instances_then_commit,
);

/// XNAT 1.8's default for new projects is auto-archive (4): an import that
/// names project/subject/session lands in the archive; an explicit
/// `dest=/prearchive` still goes to the prearchive.
async fn new_projects_auto_archive_unless_told_otherwise(server: &TestServer) {
    let admin = server.admin();
    server.create_project("AUTO").await;
    let code = server
        .get("/data/projects/AUTO/prearchive_code", &admin)
        .await;
    assert_eq!(code.text().await.expect("text"), "4");
    let generated = study(2, 1, |_| {});
    let (status, uri) = server
        .import(
            "project=AUTO&subject=S1&session=E1",
            zip_of(&entries_of(generated.dir.path(), &generated.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    assert_eq!(
        uri,
        "/data/archive/projects/AUTO/subjects/S1/experiments/E1\r\n"
    );
    let held = study(1, 1, |_| {});
    let (status, uri) = server
        .import(
            "dest=/prearchive&project=AUTO&subject=S2&session=E2",
            zip_of(&entries_of(held.dir.path(), &held.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    assert!(uri.starts_with("/data/prearchive/projects/AUTO/"), "{uri}");
    let rows = server
        .rows("/data/prearchive/projects/AUTO?format=json", &admin)
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["autoarchive"], "AutoArchive");
}

/// Makes `project` keep uploads in the prearchive (new projects auto-archive).
async fn manual(server: &TestServer, project: &str) {
    let r = server
        .put(
            &format!("/data/projects/{project}/prearchive_code/0"),
            &server.admin(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn tar_gz_to_prearchive_then_archive_relabelled(server: &TestServer) {
    let admin = server.admin();
    server.create_project("PRE").await;
    manual(server, "PRE").await;
    let generated = study(2, 2, |_| {});
    let body = tar_gz_of(&entries_of(generated.dir.path(), &generated.files));
    let (status, uri) = server
        .import(
            "dest=/prearchive&project=PRE&subject=SUBJ2&session=SESS2",
            body,
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    let uri = uri.trim_end().to_owned();
    assert!(uri.starts_with("/data/prearchive/projects/PRE/"), "{uri}");
    assert!(uri.ends_with("/SESS2"), "{uri}");

    let rows = server
        .rows("/data/prearchive/projects/PRE?format=json", &admin)
        .await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["status"], "READY");
    assert_eq!(row["subject"], "SUBJ2");
    assert_eq!(row["name"], "SESS2");
    assert_eq!(row["tag"], generated.uid.as_str());
    assert_eq!(row["scan_date"], "2024-01-31");
    assert_eq!(row["autoarchive"], "Manual");
    assert_eq!(format!("/data{}", row["url"].as_str().expect("url")), uri);
    let timestamp = row["timestamp"].as_str().expect("timestamp");
    assert_eq!(timestamp.len(), 18, "{timestamp}");
    assert_eq!(&timestamp[8..9], "_");
    let lastmod = row["lastmod"].as_str().expect("lastmod");
    assert_eq!(lastmod.len(), 23, "{lastmod}");
    assert!(
        server
            .data
            .path()
            .join(format!("prearchive/PRE/{timestamp}/SESS2/SCANS/1/DICOM"))
            .is_dir()
    );
    // The whole listing includes it; a single session answers one row.
    let all = server
        .rows("/data/prearchive/projects?format=json", &admin)
        .await;
    assert_eq!(all.len(), 1);
    assert_eq!(
        server
            .rows(&format!("{uri}?format=json"), &admin)
            .await
            .len(),
        1
    );

    let scans = server
        .rows(&format!("{uri}/scans?format=json"), &admin)
        .await;
    let ids: Vec<&str> = scans.iter().filter_map(|s| s["ID"].as_str()).collect();
    assert_eq!(ids, ["1", "2"]);
    let resources = server
        .rows(&format!("{uri}/scans/1/resources?format=json"), &admin)
        .await;
    assert_eq!(resources[0]["label"], "DICOM");
    assert_eq!(resources[0]["file_count"], "2");
    let files = server
        .rows(
            &format!("{uri}/scans/1/resources/DICOM/files?format=json"),
            &admin,
        )
        .await;
    assert_eq!(files.len(), 2);
    let file_uri = files[0]["URI"].as_str().expect("URI");
    assert!(file_uri.starts_with("/data/prearchive/projects/PRE/"));
    let bytes = server
        .get(file_uri, &admin)
        .await
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&bytes[128..132], b"DICM");
    let zip = server.get(&format!("{uri}?format=zip"), &admin).await;
    assert_eq!(zip.status(), StatusCode::OK);
    let zip = zip.bytes().await.expect("zip");
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).expect("zip parses");
    assert_eq!(archive.len(), 4);
    let dump = server
        .rows(
            &format!(
                "/data/services/dicomdump?src={}/scans/2&field=SeriesDescription&format=json",
                uri.trim_start_matches("/data")
            ),
            &admin,
        )
        .await;
    assert_eq!(dump[0]["value"], "Series 2");

    let r = server
        .post(
            &format!("/data/services/prearchive/rebuild?src={uri}"),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rows = server
        .rows("/data/prearchive/projects/PRE?format=json", &admin)
        .await;
    assert_eq!(rows[0]["status"], "READY");

    let r = server
        .post(
            &format!(
                "/data/services/archive?src={uri}&auto-archive=false&subject=SUBJX&session=SESSX"
            ),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.text().await.expect("text").trim_end(),
        "/data/archive/projects/PRE/subjects/SUBJX/experiments/SESSX"
    );
    assert!(
        server
            .rows("/data/prearchive/projects/PRE?format=json", &admin)
            .await
            .is_empty()
    );
    let scans = server
        .rows(
            "/data/projects/PRE/experiments/SESSX/scans?format=json",
            &admin,
        )
        .await;
    assert_eq!(scans.len(), 2);
    assert!(
        !server
            .data
            .path()
            .join(format!("prearchive/PRE/{timestamp}"))
            .exists()
    );
    // Archiving it again: it is gone.
    let r = server
        .post(&format!("/data/services/archive?src={uri}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn routing_codes_and_unassigned(server: &TestServer) {
    let admin = server.admin();
    server.create_project("ROUTE").await;
    manual(server, "ROUTE").await;
    // Project/subject/session from Patient Comments; manual project → prearchive.
    let commented = study(1, 2, |i| {
        i.patient_comments = Some("Project: ROUTE Subject: SUBJ9 Session: SESS9".to_owned());
    });
    let (status, uri) = server
        .import(
            "",
            zip_of(&entries_of(commented.dir.path(), &commented.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    assert!(uri.starts_with("/data/prearchive/projects/ROUTE/"), "{uri}");
    assert!(uri.trim_end().ends_with("/SESS9"), "{uri}");
    let rows = server
        .rows("/data/prearchive/projects/ROUTE?format=json", &admin)
        .await;
    assert_eq!(rows[0]["subject"], "SUBJ9");

    // prearchive_code 4: the next study is archived directly.
    let r = server
        .req(
            Method::PUT,
            "/data/projects/ROUTE/prearchive_code/4",
            Some(&admin),
        )
        .send()
        .await
        .expect("PUT code");
    assert_eq!(r.status(), StatusCode::OK);
    let code = server
        .get("/data/projects/ROUTE/prearchive_code", &admin)
        .await;
    assert_eq!(code.text().await.expect("text"), "4");
    let r = server
        .req(
            Method::PUT,
            "/data/projects/ROUTE/prearchive_code/3",
            Some(&admin),
        )
        .send()
        .await
        .expect("PUT bad code");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let described = study(1, 1, |i| {
        i.study_description = Some("ROUTE".to_owned());
        i.patient_name = Some("Roe^Rita".to_owned());
        i.patient_id = Some("RR01".to_owned());
    });
    let (status, uri) = server
        .import(
            "",
            zip_of(&entries_of(described.dir.path(), &described.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    assert_eq!(
        uri,
        "/data/archive/projects/ROUTE/subjects/Roe_Rita/experiments/RR01\r\n"
    );
    let listing = server
        .rows("/data/prearchive/projects/ROUTE?format=json", &admin)
        .await;
    assert_eq!(listing[0]["autoarchive"], "AutoArchive");

    // Nothing names a project: Unassigned, admin-only, movable to a project.
    let lost = study(1, 1, |i| {
        i.study_description = Some("Brain MRI".to_owned());
        i.patient_id = Some("LOST1".to_owned());
    });
    let (status, uri) = server
        .import(
            "",
            zip_of(&entries_of(lost.dir.path(), &lost.files)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    let uri = uri.trim_end().to_owned();
    assert!(
        uri.starts_with("/data/prearchive/projects/Unassigned/"),
        "{uri}"
    );
    let someone = server.create_user("someone").await;
    let r = server
        .get("/data/prearchive/projects/Unassigned?format=json", &someone)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let visible = server
        .rows("/data/prearchive/projects?format=json", &someone)
        .await;
    assert!(visible.is_empty());
    let r = server
        .post(
            &format!("/data/services/prearchive/move?src={uri}&newProject=ROUTE"),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let moved = r.text().await.expect("text");
    assert!(
        moved.starts_with("/data/prearchive/projects/ROUTE/"),
        "{moved}"
    );
    assert!(
        server
            .rows("/data/prearchive/projects/Unassigned?format=json", &admin)
            .await
            .is_empty()
    );
    // And delete it.
    let r = server
        .req(Method::DELETE, moved.trim_end(), Some(&admin))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), StatusCode::OK);
    let left = server
        .rows("/data/prearchive/projects/ROUTE?format=json", &admin)
        .await;
    assert_eq!(left.len(), 1, "only the SESS9 session remains: {left:?}");
}

async fn gradual_single_instances_then_commit(server: &TestServer) {
    let admin = server.admin();
    server.create_project("GRAD").await;
    manual(server, "GRAD").await;
    let generated = study(1, 2, |_| {});
    let mut uris = Vec::new();
    for file in &generated.files {
        let r = server
            .req(
                Method::POST,
                "/data/services/import?project=GRAD&subject=S&session=G1",
                Some(&admin),
            )
            .header("Content-Type", "application/dicom")
            .body(std::fs::read(file).expect("read"))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::OK);
        uris.push(r.text().await.expect("text"));
    }
    assert_eq!(uris[0], uris[1], "both instances join one session");
    let rows = server
        .rows("/data/prearchive/projects/GRAD?format=json", &admin)
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "RECEIVING");
    let r = server
        .post(&format!("{}?action=commit", uris[0].trim_end()), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rows = server
        .rows("/data/prearchive/projects/GRAD?format=json", &admin)
        .await;
    assert_eq!(rows[0]["status"], "READY");
    let scans = server
        .rows(&format!("{}/scans?format=json", uris[0].trim_end()), &admin)
        .await;
    assert_eq!(scans[0]["frames"], "2");
}
