//! Uploads to the archive: layout, rows, digests, dicomdump, encodings,
//! concurrency and permissions.

use reqwest::{Method, StatusCode};
use xnatkit_dicom::testdata::SyntheticEncoding;

use crate::harness::{TestServer, entries_of, md5_hex, study, zip_of};

crate::on_both_backends!(
    zip_into_archive_with_digests_and_dump,
    encodings_and_append,
    same_study_in_parallel_ends_as_one_session,
    import_needs_create_rights,
    import_fills_scanner_fields,
);

/// The `data_fields` of a single-object JSON document.
async fn data_fields(server: &TestServer, path: &str) -> serde_json::Value {
    let body: serde_json::Value = server
        .get(path, &server.admin())
        .await
        .json()
        .await
        .expect("json");
    body["items"][0]["data_fields"].clone()
}

async fn import_fills_scanner_fields(server: &TestServer) {
    let admin = server.admin();
    server.create_project("SCANF").await;
    let generated = study(1, 2, |t| {
        t.station_name = Some("STATION7".to_owned());
        t.manufacturer = Some("ACME Medical".to_owned());
        t.manufacturer_model_name = Some("Imager 3T".to_owned());
        t.institution_name = Some("Test Hospital".to_owned());
        t.operators_name = Some("Op^Erator".to_owned());
        t.magnetic_field_strength = Some("3".to_owned());
        t.accession_number = Some("ACC42".to_owned());
    });
    let entries = entries_of(generated.dir.path(), &generated.files);
    let (status, body) = server
        .import(
            "dest=/archive&project=SCANF&subject=SUBJ1&session=SESS1",
            zip_of(&entries),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let session = data_fields(server, "/data/projects/SCANF/experiments/SESS1?format=json").await;
    for (key, want) in [
        ("scanner", "STATION7"),
        ("scanner/manufacturer", "ACME Medical"),
        ("scanner/model", "Imager 3T"),
        ("operator", "Op^Erator"),
        ("acquisition_site", "Test Hospital"),
        ("dcmAccessionNumber", "ACC42"),
        ("dcmPatientId", "SUBJ001"),
        ("dcmPatientName", "Doe^Jane"),
        ("fieldStrength", "3"),
    ] {
        assert_eq!(session[key], want, "session {key}: {session}");
    }

    let scan = data_fields(
        server,
        "/data/projects/SCANF/experiments/SESS1/scans/1?format=json",
    )
    .await;
    for (key, want) in [
        ("scanner", "STATION7"),
        ("scanner/manufacturer", "ACME Medical"),
        ("scanner/model", "Imager 3T"),
        ("startTime", "10:16:00"),
        ("series_class", "MR"),
        ("modality", "MR"),
        ("frames", "2"),
    ] {
        assert_eq!(scan[key], want, "scan {key}: {scan}");
    }
    // Absent headers stay absent rather than empty strings.
    assert!(scan.get("bodyPartExamined").is_none(), "{scan}");
}

async fn zip_into_archive_with_digests_and_dump(server: &TestServer) {
    let admin = server.admin();
    server.create_project("PROJ1").await;
    let generated = study(2, 3, |_| {});
    let entries = entries_of(generated.dir.path(), &generated.files);
    let (status, body) = server
        .import(
            "dest=/archive&project=PROJ1&subject=SUBJ1&session=SESS1",
            zip_of(&entries),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        "/data/archive/projects/PROJ1/subjects/SUBJ1/experiments/SESS1\r\n"
    );

    let experiments = server
        .rows("/data/projects/PROJ1/experiments?format=json", &admin)
        .await;
    assert_eq!(experiments.len(), 1);
    assert_eq!(experiments[0]["xsiType"], "xnat:mrSessionData");
    let scans = server
        .rows(
            "/data/projects/PROJ1/experiments/SESS1/scans?format=json",
            &admin,
        )
        .await;
    let ids: Vec<&str> = scans.iter().filter_map(|s| s["ID"].as_str()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(scans[0]["series_description"], "Series 1");

    let files = server
        .rows(
            "/data/projects/PROJ1/experiments/SESS1/scans/1/resources/DICOM/files?format=json",
            &admin,
        )
        .await;
    assert_eq!(files.len(), 3);
    let sent: Vec<String> = entries.iter().map(|(_, bytes)| md5_hex(bytes)).collect();
    for file in &files {
        let uri = file["URI"].as_str().expect("URI");
        let bytes = server.get(uri, &admin).await.bytes().await.expect("bytes");
        let digest = md5_hex(&bytes);
        assert!(
            sent.contains(&digest),
            "file {uri} is not one that was sent"
        );
        if let Some(listed) = file.get("digest").and_then(|d| d.as_str()) {
            assert_eq!(listed, digest);
        }
        assert!(file["Name"].as_str().expect("Name").ends_with(".dcm"));
    }
    let on_disk = crate::harness::walk(
        &server
            .data
            .path()
            .join("archive/PROJ1/arc001/SESS1/SCANS/2/DICOM"),
    );
    assert_eq!(on_disk.len(), 3);
    assert!(server.staging_leftovers().is_empty());

    let id = experiments[0]["ID"].as_str().expect("ID");
    let dump = server
        .rows(
            &format!(
                "/data/services/dicomdump?src=/archive/projects/PROJ1/experiments/{id}/scans/1&field=PatientName&field=00100020&format=json"
            ),
            &admin,
        )
        .await;
    assert_eq!(dump.len(), 2, "{dump:?}");
    assert_eq!(dump[0]["tag1"], "(0010,0010)");
    assert_eq!(dump[0]["value"], "Doe^Jane");
    assert_eq!(dump[1]["value"], "SUBJ001");
    let r = server
        .get(
            &format!("/data/services/dicomdump?src=/archive/projects/PROJ1/experiments/{id}&field=NoSuchKeyword"),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn encodings_and_append(server: &TestServer) {
    let admin = server.admin();
    server.create_project("ENC").await;
    let uid = xnatkit_dicom::testdata::new_uid();
    let mut all = Vec::new();
    let dir = tempfile::tempdir().expect("dir");
    for (n, encoding) in [
        SyntheticEncoding::ExplicitLittle,
        SyntheticEncoding::ImplicitLittle,
        SyntheticEncoding::ExplicitBig,
        SyntheticEncoding::BareImplicitLittle,
    ]
    .into_iter()
    .enumerate()
    {
        let mut template = xnatkit_dicom::testdata::SyntheticInstance::new(
            &uid,
            &xnatkit_dicom::testdata::new_uid(),
        );
        template.series_number = Some(n as i64 + 1);
        template.encoding = encoding;
        all.extend(
            xnatkit_dicom::testdata::write_series(&dir.path().join(format!("e{n}")), &template, 2)
                .expect("series"),
        );
    }
    let (first, second) = all.split_at(4);
    let (status, body) = server
        .import(
            "dest=/archive&project=ENC&subject=S&session=E",
            zip_of(&entries_of(dir.path(), first)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same session again without overwrite: refused, kept in the prearchive.
    let (status, body) = server
        .import(
            "dest=/archive&project=ENC&subject=S&session=E",
            zip_of(&entries_of(dir.path(), second)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already exists"), "{body}");
    assert!(body.contains("/data/prearchive/projects/ENC/"), "{body}");
    let kept = server
        .rows("/data/prearchive/projects/ENC?format=json", &admin)
        .await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["status"], "CONFLICT");
    // Appending merges the new series.
    let (status, body) = server
        .import(
            "dest=/archive&project=ENC&subject=S&session=E&overwrite=append",
            zip_of(&entries_of(dir.path(), second)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let scans = server
        .rows("/data/projects/ENC/experiments/E/scans?format=json", &admin)
        .await;
    assert_eq!(scans.len(), 4, "{scans:?}");
    // Appending files that exist is a conflict; delete replaces them.
    let (status, _) = server
        .import(
            "dest=/archive&project=ENC&subject=S&session=E&overwrite=append",
            zip_of(&entries_of(dir.path(), second)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = server
        .import(
            "dest=/archive&project=ENC&subject=S&session=E&overwrite=delete",
            zip_of(&entries_of(dir.path(), second)),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let files = server
        .rows(
            "/data/projects/ENC/experiments/E/scans/4/resources/DICOM/files?format=json",
            &admin,
        )
        .await;
    assert_eq!(files.len(), 2);
}

async fn same_study_in_parallel_ends_as_one_session(server: &TestServer) {
    let admin = server.admin();
    server.create_project("PAR").await;
    let generated = study(4, 3, |_| {});
    let halves: Vec<Vec<u8>> = generated
        .files
        .chunks(6)
        .map(|part| zip_of(&entries_of(generated.dir.path(), part)))
        .collect();
    let query = "dest=/archive&project=PAR&subject=S1&session=E1&overwrite=append";
    let (a, b) = tokio::join!(
        server.import(query, halves[0].clone(), &admin),
        server.import(query, halves[1].clone(), &admin)
    );
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(b.0, StatusCode::OK, "{}", b.1);
    assert_eq!(a.1, b.1);
    let experiments = server
        .rows("/data/projects/PAR/experiments?format=json", &admin)
        .await;
    assert_eq!(experiments.len(), 1);
    let scans = server
        .rows(
            "/data/projects/PAR/experiments/E1/scans?format=json",
            &admin,
        )
        .await;
    assert_eq!(scans.len(), 4, "{scans:?}");
    for scan in &scans {
        let id = scan["ID"].as_str().expect("ID");
        let files = server
            .rows(
                &format!(
                    "/data/projects/PAR/experiments/E1/scans/{id}/resources/DICOM/files?format=json"
                ),
                &admin,
            )
            .await;
        assert_eq!(files.len(), 3, "scan {id}");
    }

    // The same full upload twice at once without overwrite: one archive,
    // one conflict kept in the prearchive; nothing lost, nothing doubled.
    let whole = zip_of(&entries_of(generated.dir.path(), &generated.files));
    let query = "dest=/archive&project=PAR&subject=S2&session=E2";
    let (a, b) = tokio::join!(
        server.import(query, whole.clone(), &admin),
        server.import(query, whole.clone(), &admin)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.1,
        b.1
    );
    let scans = server
        .rows(
            "/data/projects/PAR/experiments/E2/scans?format=json",
            &admin,
        )
        .await;
    assert_eq!(scans.len(), 4);
}

async fn import_needs_create_rights(server: &TestServer) {
    let admin = server.admin();
    server.create_project("PRIV").await;
    let outsider = server.create_user("outsider").await;
    let collaborator = server.create_user("collab").await;
    let r = server
        .req(
            Method::PUT,
            "/data/projects/PRIV/users/Collaborators/collab",
            Some(&admin),
        )
        .send()
        .await
        .expect("add collaborator");
    assert!(r.status().is_success(), "{}", r.status());
    let generated = study(1, 1, |_| {});
    let body = zip_of(&entries_of(generated.dir.path(), &generated.files));
    let query = "dest=/archive&project=PRIV&subject=S&session=E";
    let r = server
        .req(
            Method::POST,
            &format!("/data/services/import?{query}"),
            None,
        )
        .body(body.clone())
        .send()
        .await
        .expect("anonymous import");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, text) = server.import(query, body.clone(), &outsider).await;
    // 404 for a private project, 403 when its row is visible (protected).
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
        "{status} {text}"
    );
    let (status, text) = server.import(query, body.clone(), &collaborator).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let experiments = server
        .rows("/data/projects/PRIV/experiments?format=json", &admin)
        .await;
    assert!(experiments.is_empty());
    assert!(server.staging_leftovers().is_empty());
}
