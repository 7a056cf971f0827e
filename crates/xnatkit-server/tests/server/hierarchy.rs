//! Projects → subjects → experiments → scans: creation by PUT, addressing by
//! ID and label under every prefix, listings (JSON, CSV, no format), items,
//! custom fields, label rules, renames and accession IDs.

use reqwest::StatusCode;

use crate::harness::TestServer;

crate::on_both_backends!(
    create_address_and_list,
    items_fields_and_renames,
    label_rules_and_ids_never_reused,
    concurrent_creations_get_distinct_ids,
    listings_page_with_limit_and_offset
);

async fn create_address_and_list(s: &TestServer) {
    let admin = s.admin();
    let (subject, session) = s.seed(&admin, "PRJ1").await;
    assert_eq!(subject, "XNAT_S00001");
    assert_eq!(session, "XNAT_E00001");

    // Re-PUT of an existing subject: 200 with the same ID.
    let again = s
        .put(
            "/data/projects/PRJ1/subjects/SUBJ1?xsiType=xnat:subjectData",
            &admin,
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.text().await.unwrap(), subject);

    // A session PUT naming a new subject label creates that subject.
    let r = s
        .put("/data/archive/projects/PRJ1/subjects/NEWSUBJ/experiments/CT1?xsiType=xnat:ctSessionData", &admin)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let subjects = s
        .rows("/data/projects/PRJ1/subjects?format=json", &admin)
        .await;
    assert_eq!(subjects.len(), 2);
    for row in &subjects {
        for column in ["ID", "label", "project", "URI", "insert_date"] {
            assert!(row[column].is_string(), "{column} in {row}");
        }
        assert!(row["URI"].as_str().unwrap().starts_with("/data/"));
    }

    // Scan creation with xnatpy's parameters; body = the scan ID.
    let scan = s
        .put(
            &format!("/data/archive/projects/PRJ1/subjects/{subject}/experiments/{session}/scans/7?xsiType=xnat:mrScanData&req_format=qs&xnat:mrScanData/type=T1w&xnat:mrScanData/id=7&xnat:mrScanData/series_description=T1w"),
            &admin,
        )
        .await;
    assert_eq!(scan.status(), StatusCode::CREATED);
    assert_eq!(scan.text().await.unwrap(), "7");

    // Every address form reaches the same session.
    for path in [
        format!("/data/experiments/{session}"),
        format!("/data/archive/experiments/{session}"),
        "/data/projects/PRJ1/experiments/SESS1".to_owned(),
        "/data/projects/PRJ1/subjects/SUBJ1/experiments/SESS1".to_owned(),
        format!("/data/projects/PRJ1/subjects/{subject}/experiments/{session}"),
        format!("/REST/projects/PRJ1/subjects/SUBJ1/experiments/{session}"),
    ] {
        let doc = s.json(&format!("{path}?format=json"), &admin).await;
        let item = &doc["items"][0];
        assert_eq!(item["data_fields"]["ID"], session.as_str(), "{path}");
        assert_eq!(item["data_fields"]["subject_ID"], subject.as_str());
        assert_eq!(item["data_fields"]["project"], "PRJ1");
        assert_eq!(item["meta"]["xsi:type"], "xnat:mrSessionData");
    }

    // Listings: JSON by default (also without format), CSV on request.
    let no_format = s.get("/data/projects/PRJ1/experiments", &admin).await;
    let doc: serde_json::Value = no_format.json().await.unwrap();
    let experiments = doc["ResultSet"]["Result"].as_array().unwrap();
    assert_eq!(experiments.len(), 2);
    let csv = s
        .get(
            "/data/projects/PRJ1/experiments?format=csv&columns=ID,label,xsiType",
            &admin,
        )
        .await;
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("ID,project,label,xsiType"), "{text}");
    assert!(text.contains("xnat:ctSessionData"));

    // Filters.
    let mr = s
        .rows(
            "/data/archive/experiments?xsiType=xnat:mrSessionData&format=json",
            &admin,
        )
        .await;
    assert_eq!(mr.len(), 1);
    let wild = s
        .rows(
            "/data/projects/PRJ1/subjects?label=NEW*&format=json",
            &admin,
        )
        .await;
    assert_eq!(wild.len(), 1);
    let scans = s
        .rows(
            &format!("/data/experiments/{session}/scans?columns=ID,URI,type,xsiType&format=json"),
            &admin,
        )
        .await;
    assert_eq!(scans[0]["type"], "T1w");
    assert_eq!(scans[0]["xsiType"], "xnat:mrScanData");
    let scan_item = s
        .json(
            &format!("/data/experiments/{session}/scans/7?format=json"),
            &admin,
        )
        .await;
    assert_eq!(
        scan_item["items"][0]["data_fields"]["image_session_ID"],
        session.as_str()
    );
    let projects = s
        .rows(
            "/data/archive/projects?columns=ID,URI,name&format=json",
            &admin,
        )
        .await;
    assert_eq!(projects[0]["ID"], "PRJ1");
}

async fn items_fields_and_renames(s: &TestServer) {
    let admin = s.admin();
    let (subject, session) = s.seed(&admin, "PRJ2").await;
    let fulluri = format!("/data/archive/projects/PRJ2/subjects/{subject}/experiments/{session}");
    let r = s
        .put(
            &format!("{fulluri}?xsiType=xnat:mrSessionData&xnat:mrSessionData/fields/field%5Bname%3Dbrain_volume%5D/field=42"),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc = s.json(&format!("{fulluri}?format=json"), &admin).await;
    let children = doc["items"][0]["children"].as_array().unwrap();
    let fields = children
        .iter()
        .find(|c| c["field"] == "fields/field")
        .expect("fields child");
    assert_eq!(fields["items"][0]["data_fields"]["name"], "brain_volume");
    assert_eq!(fields["items"][0]["data_fields"]["field"], "42");
    assert_eq!(doc["items"][0]["data_fields"]["date"], "2024-01-31");

    // Subject and project fields too; NULL deletes.
    s.put(&format!("/data/archive/projects/PRJ2/subjects/{subject}?xsiType=xnat:subjectData&xnat:subjectData/fields/field%5Bname%3Dgroup%5D/field=treated"), &admin).await;
    let subj = s
        .json(&format!("/data/subjects/{subject}?format=json"), &admin)
        .await;
    assert!(subj.to_string().contains("treated"));
    s.put(&format!("/data/archive/projects/PRJ2/subjects/{subject}?xsiType=xnat:subjectData&xnat:subjectData/fields/field%5Bname%3Dgroup%5D/field=NULL"), &admin).await;
    let subj = s
        .json(&format!("/data/subjects/{subject}?format=json"), &admin)
        .await;
    assert!(!subj.to_string().contains("treated"));
    s.put("/data/archive/projects/PRJ2?xsiType=xnat:projectData&xnat:projectData/fields/field%5Bname%3Dsite%5D/field=A", &admin).await;
    assert!(
        s.json("/data/projects/PRJ2?format=json", &admin)
            .await
            .to_string()
            .contains("\"site\"")
    );

    // Rename, then the new label resolves and the old one does not.
    let r = s.put(&format!("{fulluri}?label=SESS1B"), &admin).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.get("/data/projects/PRJ2/experiments/SESS1B?format=json", &admin)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/data/projects/PRJ2/experiments/SESS1?format=json", &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Trigger PUTs on label paths answer 200.
    for flag in ["pullDataFromHeaders", "fixScanTypes", "triggerPipelines"] {
        let r = s
            .put(
                &format!("/data/projects/PRJ2/subjects/SUBJ1/experiments/SESS1B?{flag}=true"),
                &admin,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{flag}");
    }
}

async fn label_rules_and_ids_never_reused(s: &TestServer) {
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "PRJ3").await;
    for bad in ["bad.label", "bad%20label", "bad$label"] {
        let r = s
            .put(
                &format!("/data/projects/PRJ3/subjects/{bad}?xsiType=xnat:subjectData"),
                &admin,
            )
            .await;
        assert_eq!(r.status(), StatusCode::EXPECTATION_FAILED, "{bad}");
        assert!(!r.text().await.unwrap().starts_with('<'));
        let r = s.put(&format!("/data/projects/{bad}"), &admin).await;
        assert_eq!(r.status(), StatusCode::EXPECTATION_FAILED, "project {bad}");
    }
    s.put(
        "/data/projects/PRJ3/subjects/OTHER?xsiType=xnat:subjectData",
        &admin,
    )
    .await;
    let clash = s
        .put("/data/projects/PRJ3/subjects/OTHER?label=SUBJ1", &admin)
        .await;
    assert_eq!(clash.status(), StatusCode::CONFLICT);
    let dup_project = s.put("/data/projects/prj3", &admin).await;
    assert_eq!(
        dup_project.status(),
        StatusCode::OK,
        "same project ID in another case is the same project"
    );

    // Delete answers 200 and the accession ID is never handed out again.
    let r = s
        .delete(
            &format!("/data/experiments/{session}?removeFiles=true"),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.get(&format!("/data/experiments/{session}?format=json"), &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = s
        .put(
            "/data/projects/PRJ3/subjects/SUBJ1/experiments/SESS1?xsiType=xnat:mrSessionData",
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let new_id = r.text().await.unwrap();
    assert_ne!(new_id, session);
    assert_eq!(new_id, "XNAT_E00002");

    // A deleted project's ID cannot be reused.
    assert_eq!(
        s.delete("/data/projects/PRJ3", &admin).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/data/projects/PRJ3?format=json", &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.put("/data/projects/PRJ3", &admin).await.status(),
        StatusCode::CONFLICT
    );
}

async fn concurrent_creations_get_distinct_ids(s: &TestServer) {
    let admin = s.admin();
    s.seed(&admin, "CONC").await;
    let puts = (0..24).map(|i| {
        let admin = admin.clone();
        async move {
            let path = if i % 2 == 0 {
                format!("/data/projects/CONC/subjects/PS{i}?xsiType=xnat:subjectData")
            } else {
                format!("/data/projects/CONC/subjects/SUBJ1/experiments/PE{i}?xsiType=xnat:mrSessionData")
            };
            let r = s.put(&path, &admin).await;
            (r.status(), r.text().await.unwrap())
        }
    });
    let results = futures::future::join_all(puts).await;
    let mut ids: Vec<String> = results
        .into_iter()
        .map(|(status, id)| {
            assert_eq!(status, StatusCode::CREATED, "{id}");
            id
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        24,
        "every concurrent creation got its own accession ID"
    );
}

async fn listings_page_with_limit_and_offset(s: &TestServer) {
    let admin = s.admin();
    s.create_project("PAGED").await;
    for n in 1..=5 {
        let r = s
            .put(&format!("/data/projects/PAGED/subjects/S{n}"), &admin)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let labels = |rows: Vec<serde_json::Value>| -> Vec<String> {
        rows.iter()
            .map(|r| r["label"].as_str().unwrap().to_owned())
            .collect()
    };
    let base = "/data/projects/PAGED/subjects?format=json";
    let all = labels(s.rows(base, &admin).await);
    assert_eq!(all, ["S1", "S2", "S3", "S4", "S5"]);
    assert_eq!(
        labels(s.rows(&format!("{base}&limit=2"), &admin).await),
        ["S1", "S2"]
    );
    assert_eq!(
        labels(s.rows(&format!("{base}&limit=2&offset=2"), &admin).await),
        ["S3", "S4"]
    );
    assert_eq!(
        labels(s.rows(&format!("{base}&offset=4"), &admin).await),
        ["S5"]
    );
    assert_eq!(
        labels(s.rows(&format!("{base}&limit=*"), &admin).await),
        all
    );
    assert!(s.rows(&format!("{base}&offset=9"), &admin).await.is_empty());
    // Paging applies after the filters.
    assert_eq!(
        labels(
            s.rows(&format!("{base}&label=S*&limit=1&offset=1"), &admin)
                .await
        ),
        ["S2"]
    );
    // The CSV form pages the same way.
    let csv = s
        .get("/data/projects/PAGED/subjects?format=csv&limit=1", &admin)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let bad = s.get(&format!("{base}&limit=ten"), &admin).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let text = bad.text().await.unwrap();
    assert!(text.contains("limit") && !text.contains('<'), "{text}");
}
