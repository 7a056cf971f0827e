//! "Download images" against the real server: the web dialog (counts from
//! SQL, the form POST's streamed archive in the chosen layout, the read
//! and CSRF checks) and XNAT's download catalogs under `/xapi/archive`
//! (`downloadwithsize`, `…/{id}/zip`, `…/{id}/xml`), every file checked
//! against the archive's own MD5s.

use std::collections::BTreeMap;
use std::io::Read;

use reqwest::{Method, StatusCode, header};
use xnatkit_test_support::on_both_backends;

use crate::harness::*;

const SESSIONS: [(&str, &str); 3] = [("SUBJA", "A1"), ("SUBJB", "B1"), ("SUBJB", "B2")];
const SCANS: [(&str, &str); 2] = [("1", "T1w"), ("2", "DWI")];
const FORMATS: [&str; 2] = ["DICOM", "NIFTI"];

async fn ok(s: &TestServer, method: Method, path: &str, auth: &Auth, body: Vec<u8>) {
    let r = s
        .req(method, path, Some(auth))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

/// Project `DI` (private) of `owner`: two subjects, three sessions, scans
/// of two types with DICOM and NIFTI files each.
async fn seed(s: &TestServer, owner: &Auth) {
    ok(
        s,
        Method::PUT,
        "/data/projects/DI?accessibility=private",
        owner,
        Vec::new(),
    )
    .await;
    for (subject, session) in SESSIONS {
        let uri = format!("/data/projects/DI/subjects/{subject}/experiments/{session}");
        ok(
            s,
            Method::PUT,
            &format!("/data/projects/DI/subjects/{subject}"),
            owner,
            Vec::new(),
        )
        .await;
        ok(
            s,
            Method::PUT,
            &format!("{uri}?xsiType=xnat:mrSessionData"),
            owner,
            Vec::new(),
        )
        .await;
        for (scan, kind) in SCANS {
            ok(
                s,
                Method::PUT,
                &format!("{uri}/scans/{scan}?xsiType=xnat:mrScanData&xnat:mrScanData/type={kind}"),
                owner,
                Vec::new(),
            )
            .await;
            for format in FORMATS {
                let res = format!("{uri}/scans/{scan}/resources/{format}");
                ok(
                    s,
                    Method::PUT,
                    &format!("{res}?format={format}"),
                    owner,
                    Vec::new(),
                )
                .await;
                for n in 0..2u8 {
                    let body: Vec<u8> = (0..700u32 + u32::from(n) * 31)
                        .map(|i| (i % 241) as u8 ^ n ^ session.as_bytes()[1])
                        .collect();
                    ok(
                        s,
                        Method::PUT,
                        &format!("{res}/files/f{n}.dat"),
                        owner,
                        body,
                    )
                    .await;
                }
            }
        }
    }
}

/// Entry name → MD5 the archive's REST listings promise for the pick.
async fn expected(
    s: &TestServer,
    auth: &Auth,
    sessions: &[(&str, &str)],
    kinds: &[&str],
    formats: &[&str],
    prefix: impl Fn(&str) -> String,
    simplified: bool,
) -> BTreeMap<String, String> {
    let mut want = BTreeMap::new();
    for (subject, session) in sessions {
        for (scan, kind) in SCANS.iter().filter(|(_, k)| kinds.contains(k)) {
            for format in formats {
                let listing = format!(
                    "/data/projects/DI/subjects/{subject}/experiments/{session}/scans/{scan}/resources/{format}/files?format=json"
                );
                for row in s.rows(&listing, auth).await {
                    let folder = if simplified {
                        format!("{session}/scans/{scan}-{kind}/{format}/")
                    } else {
                        format!("{session}/scans/{scan}-{kind}/resources/{format}/files/")
                    };
                    want.insert(
                        format!(
                            "{}{folder}{}",
                            prefix(subject),
                            row["Name"].as_str().unwrap()
                        ),
                        row["digest"].as_str().unwrap().to_owned(),
                    );
                }
            }
        }
    }
    want
}

fn zip_digests(bytes: Vec<u8>) -> BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut got = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        got.insert(entry.name().unwrap().into_owned(), md5_hex(&data));
    }
    got
}

fn tar_gz_digests(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut got = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        got.insert(name, md5_hex(&data));
    }
    got
}

async fn post_form(
    s: &TestServer,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    s.req(Method::POST, path, None)
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn download_dialog_streams_the_pick(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let bob = s.create_user("bob").await;
    seed(s, &alice).await;
    let cookie = browser_login(s, &alice).await;
    let (status, html) = page(s, "/app/projects/DI/download", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("All 3 matching"), "{html}");
    assert!(
        html.contains("T1w <span class=\"muted\">(3)</span>"),
        "{html}"
    );
    assert!(
        html.contains("DICOM <span class=\"muted\">(6)</span>"),
        "{html}"
    );
    // The equivalent commands: the CLI, and curl through the catalog API
    // naming each session as XNAT's dialog does.
    assert!(html.contains("xnatkit download DI -o ./DI"), "{html}");
    assert!(
        html.contains("/xapi/archive/downloadwithsize") && html.contains("DI:SUBJA:A1:"),
        "{html}"
    );
    let (_, html_b) = page(s, "/app/projects/DI/download?subject=SUBJB", &cookie).await;
    assert!(html_b.contains("All 2 matching"), "{html_b}");
    assert!(
        html_b.contains("DWI <span class=\"muted\">(2)</span>"),
        "{html_b}"
    );
    let token = form_token(&html);

    // T1w DICOM of all sessions, subjects as sub-folders, simplified: zip.
    let form = [
        ("_csrf", token.as_str()),
        ("q", ""),
        ("type", "T1w"),
        ("format", "DICOM"),
        ("subjectIncludedInPath", "true"),
        ("simplified", "true"),
        ("archive", "zip"),
    ];
    let r = post_form(s, "/app/projects/DI/download", &cookie, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/zip");
    let got = zip_digests(r.bytes().await.unwrap().to_vec());
    let want = expected(
        s,
        &alice,
        &SESSIONS,
        &["T1w"],
        &["DICOM"],
        |subj| format!("{subj}/"),
        true,
    )
    .await;
    assert_eq!(got, want);
    assert_eq!(got.len(), 6);

    // Filter "subjb" (subject B's sessions), everything, project in paths, full
    // structure: tar.gz.
    let form = [
        ("_csrf", token.as_str()),
        ("q", "subjb"),
        ("type", "T1w"),
        ("type", "DWI"),
        ("format", "DICOM"),
        ("format", "NIFTI"),
        ("projectIncludedInPath", "true"),
        ("archive", "tar.gz"),
    ];
    let r = post_form(s, "/app/projects/DI/download", &cookie, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = tar_gz_digests(&r.bytes().await.unwrap());
    let want = expected(
        s,
        &alice,
        &SESSIONS[1..],
        &["T1w", "DWI"],
        &FORMATS,
        |_| "DI/".to_owned(),
        false,
    )
    .await;
    assert_eq!(got, want);
    assert_eq!(got.len(), 16);

    // Only listed sessions (IDs or labels), never past the project.
    let form = [
        ("_csrf", token.as_str()),
        ("s", "A1"),
        ("s", "NOT_THERE"),
        ("type", "DWI"),
        ("format", "NIFTI"),
        ("archive", "zip"),
    ];
    let r = post_form(s, "/app/projects/DI/download", &cookie, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = zip_digests(r.bytes().await.unwrap().to_vec());
    let want = expected(
        s,
        &alice,
        &SESSIONS[..1],
        &["DWI"],
        &["NIFTI"],
        |_| String::new(),
        false,
    )
    .await;
    assert_eq!(got, want);

    // Refusals: nothing ticked (400), no token (403), another site (403).
    let r = post_form(
        s,
        "/app/projects/DI/download",
        &cookie,
        &[("_csrf", token.as_str()), ("format", "DICOM")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post_form(
        s,
        "/app/projects/DI/download",
        &cookie,
        &[("type", "T1w"), ("format", "DICOM")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .req(Method::POST, "/app/projects/DI/download", None)
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("_csrf", token.as_str()),
            ("type", "T1w"),
            ("format", "DICOM"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An outsider: no dialog, no archive.
    let outsider = browser_login(s, &bob).await;
    let (status, html) = page(s, "/app/projects/DI/download", &outsider).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("T1w"));
    let (_, own) = page(s, "/app/projects", &outsider).await;
    let bob_token = form_token(&own);
    let r = post_form(
        s,
        "/app/projects/DI/download",
        &outsider,
        &[
            ("_csrf", bob_token.as_str()),
            ("type", "T1w"),
            ("format", "DICOM"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn post_json(
    s: &TestServer,
    path: &str,
    auth: &Auth,
    body: serde_json::Value,
) -> reqwest::Response {
    s.req(Method::POST, path, Some(auth))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn xapi_download_catalogs(s: &TestServer) {
    let alice = s.create_user("alice").await;
    let bob = s.create_user("bob").await;
    seed(s, &alice).await;
    let ids: BTreeMap<String, String> = s
        .rows("/data/projects/DI/experiments?format=json", &alice)
        .await
        .iter()
        .map(|row| {
            (
                row["label"].as_str().unwrap().to_owned(),
                row["ID"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // As XNAT's dialog sends it: PROJECT:SUBJECT:LABEL:ID.
    let sessions: Vec<String> = SESSIONS
        .iter()
        .map(|(subject, label)| format!("DI:{subject}:{label}:{}", ids[*label]))
        .collect();
    let request = serde_json::json!({
        "sessions": sessions,
        "scan_types": ["DWI"],
        "scan_formats": ["DICOM", "NIFTI"],
        "options": ["projectIncludedInPath", "subjectIncludedInPath", "simplified"],
        "projectIds": ["DI"],
    });
    let r = post_json(s, "/xapi/archive/downloadwithsize", &alice, request.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: serde_json::Value = r.json().await.unwrap();
    let id = answer["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("alice-"), "{answer}");
    assert_eq!(answer["resourcesOfUnknownSize"], "0");

    let r = s
        .req(
            Method::GET,
            &format!("/xapi/archive/download/{id}/zip"),
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap().to_vec();
    let got = zip_digests(bytes);
    let want = expected(
        s,
        &alice,
        &SESSIONS,
        &["DWI"],
        &FORMATS,
        |subject| format!("DI/{subject}/"),
        true,
    )
    .await;
    assert_eq!(got, want);
    assert_eq!(got.len(), 12);
    // The size is the sum of the files' sizes.
    let mut size = 0u64;
    for (subject, session) in SESSIONS {
        for format in FORMATS {
            for row in s
                .rows(
                    &format!("/data/projects/DI/subjects/{subject}/experiments/{session}/scans/2/resources/{format}/files?format=json"),
                    &alice,
                )
                .await
            {
                size += row["Size"].as_str().unwrap().parse::<u64>().unwrap();
            }
        }
    }
    assert_eq!(answer["size"], size.to_string());

    // The catalog XML: one entry set per session, one entry per file.
    for (suffix, attachment) in [("", false), ("/xml", true)] {
        let r = s
            .req(
                Method::GET,
                &format!("/xapi/archive/download/{id}{suffix}"),
                Some(&alice),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers().contains_key(header::CONTENT_DISPOSITION),
            attachment
        );
        let xml = r.text().await.unwrap();
        assert!(
            xml.contains("<cat:Catalog xmlns:cat=\"http://nrg.wustl.edu/catalog\""),
            "{xml}"
        );
        assert_eq!(xml.matches("<cat:entrySet ").count(), 3, "{xml}");
        assert_eq!(xml.matches("<cat:entry ").count(), 12, "{xml}");
        for (name, digest) in &want {
            assert!(xml.contains(&format!("ID=\"{name}\"")), "{name} in {xml}");
            assert!(xml.contains(digest.as_str()));
        }
    }

    // `POST …/download` answers the bare ID.
    let r = post_json(s, "/xapi/archive/download", &alice, request.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().starts_with("alice-"));

    // Another user cannot use alice's catalog, nor build one of a private
    // project; a malformed request is a 400.
    let r = s
        .req(
            Method::GET,
            &format!("/xapi/archive/download/{id}/zip"),
            Some(&bob),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post_json(s, "/xapi/archive/downloadwithsize", &bob, request).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post_json(
        s,
        "/xapi/archive/downloadwithsize",
        &alice,
        serde_json::json!({"sessions": ["DI-no-colons"]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post_json(
        s,
        "/xapi/archive/downloadwithsize",
        &alice,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// XNAT's "Additional Resources" and "Assessments": session resources by
/// label and assessors by type, counted on the page, streamed by the form
/// (tar) and by a catalog (zip), every byte checked against the MD5s.
async fn session_resources_and_assessors(s: &TestServer) {
    let alice = s.create_user("alice").await;
    seed(s, &alice).await;
    let a1 = "/data/projects/DI/subjects/SUBJA/experiments/A1";
    let b1 = "/data/projects/DI/subjects/SUBJB/experiments/B1";
    ok(
        s,
        Method::PUT,
        &format!("{a1}/resources/NOTES/files/notes.txt"),
        &alice,
        b"reading notes".to_vec(),
    )
    .await;
    ok(
        s,
        Method::PUT,
        &format!("{b1}/assessors/B1_ROI?xsiType=icr:roiCollectionData"),
        &alice,
        Vec::new(),
    )
    .await;
    ok(
        s,
        Method::PUT,
        &format!("{b1}/assessors/B1_ROI/resources/RTSTRUCT/files/rois.dcm"),
        &alice,
        vec![7u8; 900],
    )
    .await;
    let notes = s
        .rows(&format!("{a1}/resources/NOTES/files?format=json"), &alice)
        .await;
    let notes_md5 = notes[0]["digest"].as_str().unwrap().to_owned();
    let rois = s
        .rows(
            &format!("{b1}/assessors/B1_ROI/resources/RTSTRUCT/files?format=json"),
            &alice,
        )
        .await;
    let rois_md5 = rois[0]["digest"].as_str().unwrap().to_owned();

    let cookie = browser_login(s, &alice).await;
    let (status, html) = page(s, "/app/projects/DI/download", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"resource-choice\""), "{html}");
    assert!(
        html.contains("name=\"resource\" value=\"NOTES\"> NOTES <span class=\"muted\">(1)</span>"),
        "{html}"
    );
    assert!(html.contains("name=\"assessor\" value=\"icr:roiCollectionData\"> icr:roiCollectionData <span class=\"muted\">(1)</span>"), "{html}");
    let token = form_token(&html);

    // Only the extras, no scans, as a plain tar in the simplified layout.
    let r = post_form(
        s,
        "/app/projects/DI/download",
        &cookie,
        &[
            ("_csrf", &token),
            ("resource", "NOTES"),
            ("assessor", "icr:roiCollectionData"),
            ("simplified", "true"),
            ("archive", "tar"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    let mut got = BTreeMap::new();
    for entry in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        got.insert(name, md5_hex(&data));
    }
    let want = BTreeMap::from([
        ("A1/resources/NOTES/notes.txt".to_owned(), notes_md5.clone()),
        (
            "B1/assessors/B1_ROI/RTSTRUCT/rois.dcm".to_owned(),
            rois_md5.clone(),
        ),
    ]);
    assert_eq!(got, want);
    // Nothing ticked at all is refused with the reason.
    let r = post_form(
        s,
        "/app/projects/DI/download",
        &cookie,
        &[("_csrf", &token)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The catalog route takes them as "resources" and "assessors" (full
    // layout without "simplified").
    let ids: BTreeMap<String, String> = s
        .rows("/data/projects/DI/experiments?format=json", &alice)
        .await
        .iter()
        .map(|row| {
            (
                row["label"].as_str().unwrap().to_owned(),
                row["ID"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let request = serde_json::json!({
        "sessions": [format!("DI:SUBJA:A1:{}", ids["A1"]), format!("DI:SUBJB:B1:{}", ids["B1"])],
        "scan_types": [],
        "scan_formats": [],
        "resources": ["NOTES"],
        "assessors": ["icr:roiCollectionData"],
        "options": [],
    });
    let r = post_json(s, "/xapi/archive/downloadwithsize", &alice, request).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: serde_json::Value = r.json().await.unwrap();
    let id = answer["id"].as_str().unwrap().to_owned();
    let r = s
        .get(&format!("/xapi/archive/download/{id}/zip"), &alice)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = zip_digests(r.bytes().await.unwrap().to_vec());
    let want = BTreeMap::from([
        ("A1/resources/NOTES/files/notes.txt".to_owned(), notes_md5),
        (
            "B1/assessors/B1_ROI/resources/RTSTRUCT/files/rois.dcm".to_owned(),
            rois_md5,
        ),
    ]);
    assert_eq!(got, want);
}

on_both_backends!(
    download_dialog_streams_the_pick,
    xapi_download_catalogs,
    session_resources_and_assessors,
);
