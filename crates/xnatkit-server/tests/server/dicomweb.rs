//! DICOMweb against the real server: QIDO-RS matching keys and paging,
//! WADO-RS retrieval (bytes equal to the stored files), metadata, frames,
//! WADO-URI, STOW-RS (stored, duplicates, study mismatch, RTSTRUCT → ROI
//! collection), and visibility (an outsider sees nothing, 404 on retrieve;
//! Basic, alias token and session cookie all authenticate).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use xnatkit_test_support::dicom::{SyntheticInstance, new_uid, write_synthetic_instance};

use crate::harness::{Auth, TestServer, entries_of, md5_hex, study, zip_of};

xnatkit_test_support::on_both_backends!(
    qido_searches_with_matching_keys,
    wado_returns_the_stored_bytes,
    outsiders_see_nothing,
    stow_stores_refuses_duplicates_and_files_rois,
    rest_uploads_are_indexed_on_first_touch,
    stow_follows_the_projects_prearchive_setting,
);

const ROOT: &str = "/xapi/dicomweb";

async fn dicom_json(server: &TestServer, path: &str, auth: &Auth) -> Vec<Value> {
    let r = server.get(path, auth).await;
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "application/dicom+json",
        "GET {path}"
    );
    r.json::<Value>()
        .await
        .expect("json")
        .as_array()
        .cloned()
        .expect("array")
}

fn value<'a>(item: &'a Value, tag: &str) -> &'a Value {
    &item[tag]["Value"][0]
}

fn text(item: &Value, tag: &str) -> String {
    value(item, tag).as_str().unwrap_or_default().to_owned()
}

/// The parts of a `multipart/related` body.
fn parts(content_type: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("boundary")
        .trim_matches('"')
        .to_owned();
    let delimiter = format!("\r\n--{boundary}");
    let mut text = b"\r\n".to_vec();
    text.extend_from_slice(body);
    let mut out = Vec::new();
    let mut rest: &[u8] = &text;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("part head") + 4;
        let body_start = &rest[head_end..];
        let end = find(body_start, delimiter.as_bytes()).expect("next delimiter");
        out.push(body_start[..end].to_vec());
        rest = &body_start[end..];
    }
    out
}

async fn get_parts(server: &TestServer, path: &str, auth: &Auth) -> (String, Vec<Vec<u8>>) {
    let r = server.get(path, auth).await;
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    let ct = r.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = r.bytes().await.unwrap();
    let found = parts(&ct, &body);
    (ct, found)
}

/// Imports a generated study into `project` as `session`; returns its
/// study UID and file MD5s.
async fn import_study(
    server: &TestServer,
    project: &str,
    session: &str,
    series: usize,
    per_series: usize,
    tweak: impl Fn(&mut SyntheticInstance),
) -> (String, BTreeSet<String>) {
    let generated = study(series, per_series, tweak);
    let entries = entries_of(generated.dir.path(), &generated.files);
    let (status, body) = server
        .import(
            &format!("dest=/archive&project={project}&subject={session}_S&session={session}"),
            zip_of(&entries),
            &server.admin(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let md5s = generated
        .files
        .iter()
        .map(|f| md5_hex(&std::fs::read(f).unwrap()))
        .collect();
    (generated.uid, md5s)
}

async fn qido_searches_with_matching_keys(server: &TestServer) {
    let admin = server.admin();
    server.create_project("DWQ").await;
    let (mr, _) = import_study(server, "DWQ", "MR1", 2, 3, |_| {}).await;
    let (ct, _) = import_study(server, "DWQ", "CT1", 1, 2, |t| {
        t.modality = "CT".to_owned();
        t.patient_name = Some("Smith^Ann".to_owned());
        t.patient_id = Some("PAT-CT".to_owned());
        t.study_date = Some("20190704".to_owned());
        t.accession_number = Some("ACC-7".to_owned());
    })
    .await;

    let all = dicom_json(server, &format!("{ROOT}/studies"), &admin).await;
    assert_eq!(all.len(), 2);
    let mr_row = all
        .iter()
        .find(|s| text(s, "0020000D") == mr)
        .expect("MR study listed");
    assert_eq!(value(mr_row, "00201206"), 2, "series count");
    assert_eq!(value(mr_row, "00201208"), 6, "instance count");
    assert_eq!(value(mr_row, "00100010")["Alphabetic"], "Doe^Jane");
    assert_eq!(text(mr_row, "00080061"), "MR");
    assert!(text(mr_row, "00081190").ends_with(&format!("/studies/{mr}")));

    for (query, want) in [
        ("PatientName=doe*", Some(&mr)),
        ("PatientName=SM?TH*", Some(&ct)),
        ("PatientID=PAT-CT", Some(&ct)),
        ("00100020=SUBJ001", Some(&mr)),
        ("StudyDate=20240101-20241231", Some(&mr)),
        ("StudyDate=-20191231", Some(&ct)),
        ("ModalitiesInStudy=CT", Some(&ct)),
        ("AccessionNumber=ACC-7", Some(&ct)),
        (&format!("StudyInstanceUID={mr}") as &str, Some(&mr)),
        ("PatientID=nobody", None),
    ] {
        let found = dicom_json(server, &format!("{ROOT}/studies?{query}"), &admin).await;
        let uids: Vec<String> = found.iter().map(|s| text(s, "0020000D")).collect();
        match want {
            Some(uid) => assert_eq!(uids, vec![uid.clone()], "{query}"),
            None => assert!(uids.is_empty(), "{query}: {uids:?}"),
        }
    }
    let first = dicom_json(server, &format!("{ROOT}/studies?limit=1"), &admin).await;
    let second = dicom_json(server, &format!("{ROOT}/studies?limit=1&offset=1"), &admin).await;
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_ne!(text(&first[0], "0020000D"), text(&second[0], "0020000D"));
    dicom_json(
        server,
        &format!("{ROOT}/studies?includefield=00081030&includefield=StudyDescription,all&fuzzymatching=false"),
        &admin,
    )
    .await;

    for bad in [
        "Bogus=1",
        "Modality=CT",
        "StudyDate=yesterday",
        "limit=many",
        "includefield=NoSuchKeyword",
    ] {
        let r = server.get(&format!("{ROOT}/studies?{bad}"), &admin).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    let series = dicom_json(server, &format!("{ROOT}/studies/{mr}/series"), &admin).await;
    assert_eq!(series.len(), 2);
    assert!(series.iter().all(|s| value(s, "00201209") == 3));
    let one = text(&series[0], "0020000E");
    let by_uid = dicom_json(
        server,
        &format!("{ROOT}/studies/{mr}/series?SeriesInstanceUID={one}"),
        &admin,
    )
    .await;
    assert_eq!(by_uid.len(), 1);
    let flat_ct = dicom_json(server, &format!("{ROOT}/series?Modality=CT"), &admin).await;
    assert_eq!(flat_ct.len(), 1);
    assert_eq!(text(&flat_ct[0], "0020000D"), ct);

    let instances = dicom_json(
        server,
        &format!("{ROOT}/studies/{mr}/series/{one}/instances"),
        &admin,
    )
    .await;
    assert_eq!(instances.len(), 3);
    let numbers: Vec<i64> = instances
        .iter()
        .map(|i| value(i, "00200013").as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let sop = text(&instances[1], "00080018");
    let flat = dicom_json(
        server,
        &format!("{ROOT}/instances?SOPInstanceUID={sop}"),
        &admin,
    )
    .await;
    assert_eq!(flat.len(), 1);
    assert_eq!(text(&flat[0], "0020000E"), one);
    let of_study = dicom_json(server, &format!("{ROOT}/studies/{mr}/instances"), &admin).await;
    assert_eq!(of_study.len(), 6);

    let in_project = dicom_json(server, &format!("{ROOT}/projects/DWQ/studies"), &admin).await;
    assert_eq!(in_project.len(), 2);
    assert!(text(&in_project[0], "00081190").contains("/xapi/dicomweb/projects/DWQ/studies/"));
    let r = server
        .get(&format!("{ROOT}/projects/NOPE/studies"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = server
        .get(&format!("{ROOT}/studies/1.2.3.4/series"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn wado_returns_the_stored_bytes(server: &TestServer) {
    let admin = server.admin();
    server.create_project("DWW").await;
    let (uid, md5s) = import_study(server, "DWW", "W1", 2, 2, |_| {}).await;

    let (ct, study_parts) = get_parts(server, &format!("{ROOT}/studies/{uid}"), &admin).await;
    assert!(
        ct.starts_with("multipart/related; type=\"application/dicom\""),
        "{ct}"
    );
    let got: BTreeSet<String> = study_parts.iter().map(|p| md5_hex(p)).collect();
    assert_eq!(got, md5s, "retrieved study bytes equal the stored files");

    let series = dicom_json(server, &format!("{ROOT}/studies/{uid}/series"), &admin).await;
    let series_uid = text(&series[0], "0020000E");
    let (_, series_parts) = get_parts(
        server,
        &format!("{ROOT}/studies/{uid}/series/{series_uid}"),
        &admin,
    )
    .await;
    assert_eq!(series_parts.len(), 2);

    let metadata = dicom_json(
        server,
        &format!("{ROOT}/studies/{uid}/series/{series_uid}/metadata"),
        &admin,
    )
    .await;
    assert_eq!(metadata.len(), 2);
    for item in &metadata {
        assert_eq!(text(item, "0020000E"), series_uid);
        assert_eq!(value(item, "00100010")["Alphabetic"], "Doe^Jane");
        assert_eq!(value(item, "00280010"), 8, "Rows as a number");
        let bulk = item["7FE00010"]["BulkDataURI"]
            .as_str()
            .expect("BulkDataURI");
        assert!(bulk.ends_with("/bulkdata/7FE00010"), "{bulk}");
        assert!(item["7FE00010"].get("Value").is_none());
    }
    let study_meta = dicom_json(server, &format!("{ROOT}/studies/{uid}/metadata"), &admin).await;
    assert_eq!(study_meta.len(), 4);

    let sop = text(&metadata[0], "00080018");
    let instance = format!("{ROOT}/studies/{uid}/series/{series_uid}/instances/{sop}");
    let (_, one) = get_parts(server, &instance, &admin).await;
    assert_eq!(one.len(), 1);
    let stored = one[0].clone();
    // The synthetic images are 8×8 16-bit, pixel data last in the file.
    let pixels = &stored[stored.len() - 128..];
    let (frame_type, frames) = get_parts(server, &format!("{instance}/frames/1"), &admin).await;
    assert!(
        frame_type.contains("application/octet-stream"),
        "{frame_type}"
    );
    assert_eq!(frames, vec![pixels.to_vec()]);
    let r = server.get(&format!("{instance}/frames/2"), &admin).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "only one frame");
    let r = server.get(&format!("{instance}/frames/x"), &admin).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, bulk) = get_parts(server, &format!("{instance}/bulkdata/7FE00010"), &admin).await;
    assert_eq!(bulk, vec![pixels.to_vec()]);

    let r = server
        .get(
            &format!("{ROOT}/wado?requestType=WADO&studyUID={uid}&seriesUID={series_uid}&objectUID={sop}&contentType=application%2Fdicom"),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/dicom");
    assert_eq!(r.bytes().await.unwrap().to_vec(), stored);
    let r = server
        .get(
            &format!(
                "{ROOT}/wado?requestType=WADO&studyUID={uid}&seriesUID={series_uid}&objectUID=1.2.3"
            ),
            &admin,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = server
        .req(Method::GET, &instance, Some(&admin))
        .header(header::ACCEPT, "multipart/related; type=\"image/jpeg\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
}

async fn outsiders_see_nothing(server: &TestServer) {
    let admin = server.admin();
    server.create_project("DWP").await;
    let r = server
        .put("/data/projects/DWP/accessibility/private", &admin)
        .await;
    assert!(r.status().is_success());
    let (uid, _) = import_study(server, "DWP", "P1", 1, 1, |_| {}).await;
    let series = dicom_json(server, &format!("{ROOT}/studies/{uid}/series"), &admin).await;
    let series_uid = text(&series[0], "0020000E");

    let outsider = server.create_user("dwoutsider").await;
    assert!(
        dicom_json(server, &format!("{ROOT}/studies"), &outsider)
            .await
            .is_empty()
    );
    assert!(
        dicom_json(server, &format!("{ROOT}/series"), &outsider)
            .await
            .is_empty()
    );
    assert!(
        dicom_json(server, &format!("{ROOT}/instances"), &outsider)
            .await
            .is_empty()
    );
    for path in [
        format!("{ROOT}/studies/{uid}"),
        format!("{ROOT}/studies/{uid}/metadata"),
        format!("{ROOT}/studies/{uid}/series"),
        format!("{ROOT}/studies/{uid}/series/{series_uid}"),
        format!("{ROOT}/projects/DWP/studies"),
        format!("{ROOT}/wado?requestType=WADO&studyUID={uid}&seriesUID={series_uid}&objectUID=1"),
    ] {
        let r = server.get(&path, &outsider).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let anonymous = server
        .req(Method::GET, &format!("{ROOT}/studies"), None)
        .send()
        .await
        .unwrap();
    let seen: Value = anonymous.json().await.unwrap();
    assert_eq!(seen, Value::Array(vec![]), "anonymous callers see nothing");

    // A collaborator sees the study, by Basic, alias token and cookie.
    let r = server
        .put("/data/projects/DWP/users/collaborator/dwoutsider", &admin)
        .await;
    assert!(r.status().is_success());
    assert_eq!(
        dicom_json(server, &format!("{ROOT}/studies"), &outsider)
            .await
            .len(),
        1
    );
    let token: Value = server
        .get("/data/services/tokens/issue", &outsider)
        .await
        .json()
        .await
        .unwrap();
    let alias = (
        token["alias"].as_str().unwrap().to_owned(),
        token["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        dicom_json(server, &format!("{ROOT}/studies/{uid}/series"), &alias)
            .await
            .len(),
        1
    );
    let session = server
        .get("/data/JSESSION", &outsider)
        .await
        .text()
        .await
        .unwrap();
    let r = server
        .http
        .get(format!("{}{ROOT}/studies/{uid}/metadata", server.url))
        .header(header::COOKIE, format!("JSESSIONID={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A `multipart/related; type="application/dicom"` body of files.
fn stow_body(files: &[Vec<u8>]) -> (String, Vec<u8>) {
    let boundary = "stow-boundary-1234";
    let mut body = Vec::new();
    for f in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        body,
    )
}

async fn stow(server: &TestServer, path: &str, files: &[Vec<u8>], auth: &Auth) -> (u16, Value) {
    let (ct, body) = stow_body(files);
    let r = server
        .req(Method::POST, path, Some(auth))
        .header(header::CONTENT_TYPE, ct)
        .header(header::ACCEPT, "application/dicom+json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn sequence_len(response: &Value, tag: &str) -> usize {
    response[tag]["Value"].as_array().map_or(0, Vec::len)
}

async fn stow_stores_refuses_duplicates_and_files_rois(server: &TestServer) {
    let admin = server.admin();
    server.create_project("DWS").await;
    let generated = study(1, 3, |t| t.patient_id = Some("STOW1".to_owned()));
    let files: Vec<Vec<u8>> = generated
        .files
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let uid = generated.uid.clone();
    let (status, response) = stow(
        server,
        &format!("{ROOT}/projects/DWS/studies"),
        &files,
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(sequence_len(&response, "00081199"), 3, "{response}");
    let found = dicom_json(
        server,
        &format!("{ROOT}/projects/DWS/studies?StudyInstanceUID={uid}"),
        &admin,
    )
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(value(&found[0], "00201208"), 3);
    let (_, retrieved) = get_parts(server, &format!("{ROOT}/studies/{uid}"), &admin).await;
    let got: BTreeSet<String> = retrieved.iter().map(|p| md5_hex(p)).collect();
    let sent: BTreeSet<String> = files.iter().map(|f| md5_hex(f)).collect();
    assert_eq!(got, sent);

    // Again: every instance is a duplicate, nothing stored, 409.
    let (status, response) = stow(server, &format!("{ROOT}/studies"), &files, &admin).await;
    assert_eq!(status, 409, "{response}");
    let failed = &response["00081198"]["Value"];
    assert_eq!(failed.as_array().unwrap().len(), 3);
    assert_eq!(failed[0]["00081197"]["Value"][0], 0x0111);
    // Another project may hold the same study: stored there as well, and
    // the site-wide search still lists the study once.
    server.create_project("DWS2").await;
    let (status, response) = stow(
        server,
        &format!("{ROOT}/projects/DWS2/studies"),
        &files,
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    let site = dicom_json(
        server,
        &format!("{ROOT}/studies?StudyInstanceUID={uid}"),
        &admin,
    )
    .await;
    assert_eq!(site.len(), 1);
    let r = server
        .delete("/data/projects/DWS2?removeFiles=true", &admin)
        .await;
    assert!(r.status().is_success());

    // An instance of another study than the path names fails.
    let other = study(1, 1, |_| {});
    let body = vec![std::fs::read(&other.files[0]).unwrap()];
    let (status, response) = stow(
        server,
        &format!("{ROOT}/projects/DWS/studies/{uid}"),
        &body,
        &admin,
    )
    .await;
    assert_eq!(status, 409, "{response}");
    assert_eq!(
        response["00081198"]["Value"][0]["00081197"]["Value"][0],
        0xC409
    );
    // Not DICOM: failed, not stored.
    let (status, response) = stow(
        server,
        &format!("{ROOT}/projects/DWS/studies"),
        &[b"not dicom".to_vec()],
        &admin,
    )
    .await;
    assert_eq!(status, 409, "{response}");
    // Wrong media type.
    let r = server
        .req(Method::POST, &format!("{ROOT}/studies"), Some(&admin))
        .header(header::CONTENT_TYPE, "application/zip")
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // An outsider may not store into the project, and does not see it.
    let outsider = server.create_user("dwstower").await;
    let extra = study(1, 1, |_| {});
    let (status, _) = stow(
        server,
        &format!("{ROOT}/projects/DWS/studies"),
        &[std::fs::read(&extra.files[0]).unwrap()],
        &outsider,
    )
    .await;
    assert_eq!(status, 404);

    // An RTSTRUCT of the archived study becomes a ROI collection.
    let dir = tempfile::tempdir().unwrap();
    let mut rt = SyntheticInstance::new(&uid, &new_uid());
    rt.modality = "RTSTRUCT".to_owned();
    rt.sop_class_uid = Some("1.2.840.10008.5.1.4.1.1.481.3".to_owned());
    rt.series_number = Some(99);
    rt.series_description = Some("Kidneys".to_owned());
    let rt_path = dir.path().join("rt.dcm");
    write_synthetic_instance(&rt_path, &rt).unwrap();
    let rt_bytes = std::fs::read(&rt_path).unwrap();
    let (status, response) = stow(
        server,
        &format!("{ROOT}/studies/{uid}"),
        std::slice::from_ref(&rt_bytes),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    let sessions = server
        .rows("/data/projects/DWS/experiments?format=json", &admin)
        .await;
    assert_eq!(sessions.len(), 1, "the RTSTRUCT made no session of its own");
    let session_id = sessions[0]["ID"].as_str().unwrap().to_owned();
    let assessors = server
        .rows(
            &format!("/data/experiments/{session_id}/assessors?format=json"),
            &admin,
        )
        .await;
    assert_eq!(assessors.len(), 1, "{assessors:?}");
    assert_eq!(assessors[0]["xsiType"], "icr:roiCollectionData");
    let assessor = assessors[0]["ID"].as_str().unwrap().to_owned();
    let files = server
        .rows(
            &format!("/data/experiments/{session_id}/assessors/{assessor}/resources/RTSTRUCT/files?format=json"),
            &admin,
        )
        .await;
    assert_eq!(files.len(), 1);
    let uri = files[0]["URI"].as_str().unwrap();
    let stored = server.get(uri, &admin).await.bytes().await.unwrap();
    assert_eq!(md5_hex(&stored), md5_hex(&rt_bytes));
    // The same RTSTRUCT again is a duplicate.
    let (status, _) = stow(
        server,
        &format!("{ROOT}/studies/{uid}"),
        std::slice::from_ref(&rt_bytes),
        &admin,
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        server.staging_leftovers().is_empty(),
        "{:?}",
        server.staging_leftovers()
    );
}

/// A DICOM file that came through the REST API (not the import) is found
/// once DICOMweb touches its session; replacing it re-indexes it, deleting
/// it removes it.
async fn rest_uploads_are_indexed_on_first_touch(server: &TestServer) {
    let admin = server.admin();
    server.create_project("DWR").await;
    let (study_uid, series_uid) = (new_uid(), new_uid());
    let session = "/data/projects/DWR/subjects/R1/experiments/RS1";
    assert!(
        server
            .put("/data/projects/DWR/subjects/R1", &admin)
            .await
            .status()
            .is_success()
    );
    let r = server
        .put(
            &format!("{session}?xsiType=xnat:mrSessionData&xnat:mrSessionData/UID={study_uid}"),
            &admin,
        )
        .await;
    assert!(r.status().is_success());
    let r = server
        .put(
            &format!("{session}/scans/7?xsiType=xnat:mrScanData&xnat:mrScanData/UID={series_uid}&xnat:mrScanData/modality=MR"),
            &admin,
        )
        .await;
    assert!(r.status().is_success());
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str| {
        let path = dir.path().join(name);
        let sop = write_synthetic_instance(&path, &SyntheticInstance::new(&study_uid, &series_uid))
            .unwrap();
        (sop, std::fs::read(&path).unwrap())
    };
    let (first_sop, first) = write("a.dcm");
    let file = format!("{session}/scans/7/resources/DICOM/files/a.dcm");
    let put = |body: Vec<u8>, query: &'static str| {
        server
            .req(Method::PUT, &format!("{file}{query}"), Some(&admin))
            .body(body)
            .send()
    };
    assert!(put(first, "").await.unwrap().status().is_success());
    let instances = format!("{ROOT}/studies/{study_uid}/series/{series_uid}/instances");
    let found = dicom_json(server, &instances, &admin).await;
    assert_eq!(found.len(), 1);
    assert_eq!(text(&found[0], "00080018"), first_sop);

    let (second_sop, second) = write("b.dcm");
    assert!(
        put(second, "?overwrite=true")
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let found = dicom_json(server, &instances, &admin).await;
    assert_eq!(found.len(), 1);
    assert_eq!(text(&found[0], "00080018"), second_sop);

    assert!(server.delete(&file, &admin).await.status().is_success());
    let r = server.get(&instances, &admin).await;
    assert_eq!(r.status(), StatusCode::OK);
    let left: Value = r.json().await.unwrap();
    assert_eq!(left, Value::Array(vec![]));
}

/// A project that sends data to the prearchive gets STOW-RS data there too:
/// stored (200), but not archived, so not searchable until archived.
async fn stow_follows_the_projects_prearchive_setting(server: &TestServer) {
    let admin = server.admin();
    server.create_project("DWPRE").await;
    let r = server
        .put("/data/projects/DWPRE/prearchive_code/0", &admin)
        .await;
    assert!(r.status().is_success());
    let generated = study(1, 2, |_| {});
    let files: Vec<Vec<u8>> = generated
        .files
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let (status, response) = stow(
        server,
        &format!("{ROOT}/projects/DWPRE/studies"),
        &files,
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    let referenced = &response["00081199"]["Value"];
    assert_eq!(referenced.as_array().unwrap().len(), 2);
    assert!(
        referenced[0].get("00081190").is_none(),
        "not retrievable before archiving: {response}"
    );
    assert!(
        dicom_json(server, &format!("{ROOT}/projects/DWPRE/studies"), &admin)
            .await
            .is_empty()
    );
    let rows = server
        .rows("/data/prearchive/projects/DWPRE?format=json", &admin)
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["SOURCE"], "STOW-RS", "{rows:?}");
    // Archiving it (the prearchive path) makes it searchable and retrievable.
    let uri = rows[0]["url"].as_str().unwrap();
    let r = server
        .post(&format!("/data/services/archive?src={uri}"), &admin)
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let found = dicom_json(server, &format!("{ROOT}/projects/DWPRE/studies"), &admin).await;
    assert_eq!(found.len(), 1);
    assert_eq!(value(&found[0], "00201208"), 2);
    let (_, retrieved) =
        get_parts(server, &format!("{ROOT}/studies/{}", generated.uid), &admin).await;
    let got: BTreeSet<String> = retrieved.iter().map(|p| md5_hex(p)).collect();
    let sent: BTreeSet<String> = files.iter().map(|f| md5_hex(f)).collect();
    assert_eq!(got, sent);
}
