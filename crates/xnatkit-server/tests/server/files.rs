//! Resources and files: raw, inbody and multipart uploads, extract=true
//! (zip and tar.gz), names with spaces and sub-directories, MD5 digests,
//! Range/HEAD, zip and tar.gz downloads with XNAT's entry layout, refused
//! names and oversized uploads leaving nothing behind.

use std::io::Read;

use reqwest::{Method, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, TestServer, md5_hex, zip_of};

crate::on_both_backends!(
    uploads_listings_and_downloads,
    unsafe_names_leave_nothing_behind
);

fn tar_gz_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

async fn uploads_listings_and_downloads(s: &TestServer) {
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "FILES").await;
    let scan = "/data/projects/FILES/subjects/SUBJ1/experiments/SESS1/scans/1".to_owned();
    assert_eq!(
        s.put(
            &format!("{scan}?xsiType=xnat:mrScanData&xnat:mrScanData/type=T1%20MPRAGE"),
            &admin
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let r = s
        .put(&format!("{scan}/resources/DICOM?format=DICOM"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let resource_id = r.text().await.unwrap();

    // Raw PUT (octet-stream), a name with a space in a sub-directory.
    let raw: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let r = s
        .req(
            Method::PUT,
            &format!("{scan}/resources/DICOM/files/sub%20dir/img%201.dcm"),
            Some(&admin),
        )
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    // Same name again without overwrite: refused; with overwrite: replaced.
    let r = s
        .req(
            Method::PUT,
            &format!("{scan}/resources/DICOM/files/sub%20dir/img%201.dcm"),
            Some(&admin),
        )
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // pyxnat style: POST to the numeric resource ID with inbody=true, no Content-Type.
    let r = s
        .req(Method::POST, &format!("/data/experiments/{session}/scans/1/resources/{resource_id}/files/b.dcm?format=U&content=U&tags=U&overwrite=false&inbody=true"), Some(&admin))
        .body(b"pyxnat bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Multipart.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"multi".to_vec()).file_name("m.txt"),
    );
    let r = s
        .req(
            Method::POST,
            &format!("{scan}/resources/DICOM/files"),
            Some(&admin),
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // extract=true: zip into the scan resource, tar.gz into a session resource.
    let zip = zip_of(&[("z/one.txt", b"one"), ("two words.txt", b"two")]);
    let r = s
        .req(
            Method::PUT,
            &format!("{scan}/resources/DICOM/files/upload.zip?extract=true"),
            Some(&admin),
        )
        .body(zip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tgz = tar_gz_of(&[("notes/a.txt", b"alpha"), ("b.txt", b"beta")]);
    let r = s
        .req(
            Method::PUT,
            &format!(
                "/data/experiments/{session}/resources/NOTES/files/upload.tar.gz?extract=true"
            ),
            Some(&admin),
        )
        .body(tgz)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Format-less listing is JSON with Name and MD5 digest of the stored bytes.
    let doc: serde_json::Value = s
        .get(&format!("{scan}/resources/DICOM/files"), &admin)
        .await
        .json()
        .await
        .unwrap();
    let rows = doc["ResultSet"]["Result"].as_array().unwrap().clone();
    let names: Vec<&str> = rows.iter().map(|r| r["Name"].as_str().unwrap()).collect();
    for want in ["img 1.dcm", "b.dcm", "m.txt", "one.txt", "two words.txt"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(
        !names.contains(&"upload.zip"),
        "archives are extracted, not stored"
    );
    let img = rows.iter().find(|r| r["Name"] == "img 1.dcm").unwrap();
    assert_eq!(img["digest"], md5_hex(&raw).as_str());
    assert_eq!(img["Size"], raw.len().to_string().as_str());
    let uri = img["URI"].as_str().unwrap().to_owned();
    assert!(
        uri.contains(&format!("/resources/{resource_id}/files/sub dir/img 1.dcm")),
        "{uri}"
    );

    // The URI from the listing downloads the exact bytes; Range and HEAD work.
    let body = s.get(&uri, &admin).await.bytes().await.unwrap();
    assert_eq!(md5_hex(&body), md5_hex(&raw));
    let part = s
        .req(Method::GET, &uri, Some(&admin))
        .header(header::RANGE, "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes 10-19/{}", raw.len()).as_str()
    );
    assert_eq!(&part.bytes().await.unwrap()[..], &raw[10..20]);
    let bad = s
        .req(Method::GET, &uri, Some(&admin))
        .header(header::RANGE, "bytes=999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let head = s
        .req(Method::HEAD, &uri, Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        raw.len().to_string().as_str()
    );

    // Resources listing carries the counts.
    let resources = s
        .rows(&format!("{scan}/resources?format=json"), &admin)
        .await;
    assert_eq!(resources[0]["label"], "DICOM");
    assert_eq!(resources[0]["file_count"], "5");
    assert_eq!(resources[0]["element_name"], "xnat:resourceCatalog");

    // Session zip: XNAT's layout, bytes intact.
    let zip_bytes = s
        .get(
            &format!("/data/experiments/{session}/scans/ALL/files?format=zip"),
            &admin,
        )
        .await
        .bytes()
        .await
        .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
    let entry = "SESS1/scans/1-T1_MPRAGE/resources/DICOM/files/sub dir/img 1.dcm";
    let mut data = Vec::new();
    archive
        .by_name(entry)
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(data, raw);
    assert!(
        archive
            .by_name("SESS1/scans/1-T1_MPRAGE/resources/DICOM/files/z/one.txt")
            .is_ok()
    );
    // scans/1,2 selects too; whole-session tar.gz includes session resources.
    assert_eq!(
        s.get(
            &format!("/data/experiments/{session}/scans/1,2/files?format=zip"),
            &admin
        )
        .await
        .status(),
        StatusCode::OK
    );
    let tgz = s
        .get(
            &format!("/data/experiments/{session}/files?format=tar.gz"),
            &admin,
        )
        .await
        .bytes()
        .await
        .unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"SESS1/resources/NOTES/files/notes/a.txt".to_owned()),
        "{names:?}"
    );
    // Resource-level and subject-level zips.
    assert_eq!(
        s.get(&format!("{scan}/resources/DICOM/files?format=zip"), &admin)
            .await
            .status(),
        StatusCode::OK
    );
    let subject_zip = s
        .get(
            "/data/projects/FILES/subjects/SUBJ1/files?format=zip",
            &admin,
        )
        .await
        .bytes()
        .await
        .unwrap();
    let archive = zip::ZipArchive::new(std::io::Cursor::new(subject_zip.to_vec())).unwrap();
    assert!(archive.len() >= 7);

    // Deleting a file removes row and bytes.
    assert_eq!(s.delete(&uri, &admin).await.status(), StatusCode::OK);
    assert_eq!(s.get(&uri, &admin).await.status(), StatusCode::NOT_FOUND);
    assert!(!s.data_files().iter().any(|f| f.ends_with("img 1.dcm")));
    assert!(
        !s.data_files().iter().any(|f| f.contains(".part-")),
        "no temp files remain"
    );
}

/// Sends a request byte-for-byte (clients would normalise `..`).
async fn raw_request(s: &TestServer, request: String, body: &[u8]) -> String {
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn basic(user: &(String, String)) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.0, user.1))
}

async fn unsafe_names_leave_nothing_behind(s: &TestServer) {
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "SAFE").await;
    let before = s.data_files();
    for path in [
        "../escape.txt",
        "%2E%2E/escape.txt",
        "sub/../../escape.txt",
        "%2Fetc%2Fpasswd",
    ] {
        let request = format!(
            "PUT /data/experiments/{session}/resources/OUT/files/{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nContent-Length: 4\r\nConnection: close\r\n\r\n",
            basic(&admin)
        );
        let answer = raw_request(s, request, b"evil").await;
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 404"),
            "{path}: {answer}"
        );
    }
    // Archive entries escaping the resource are refused as a whole.
    let zip = zip_of(&[("fine.txt", b"ok"), ("../evil.txt", b"evil")]);
    let r = s
        .req(
            Method::PUT,
            &format!("/data/experiments/{session}/resources/OUT/files/u.zip?extract=true"),
            Some(&admin),
        )
        .body(zip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!r.text().await.unwrap().starts_with('<'));
    let multipart = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("../m.txt"),
    );
    let r = s
        .req(
            Method::POST,
            &format!("/data/experiments/{session}/resources/OUT/files"),
            Some(&admin),
        )
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        s.get(
            &format!("/data/experiments/{session}/resources/OUT?format=json"),
            &admin
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.data_files(),
        before,
        "refused uploads leave nothing behind"
    );
}

/// Oversized and interrupted uploads: no file, no row, no temp file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_interrupted_uploads_are_not_recorded() {
    let s = TestServer::start_with(Backend::Sqlite, |c| c.max_upload_bytes = 1000)
        .await
        .unwrap();
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "BIG").await;
    let res = format!("/data/experiments/{session}/resources/R");
    assert_eq!(s.put(&res, &admin).await.status(), StatusCode::CREATED);
    let r = s
        .req(Method::PUT, &format!("{res}/files/big.bin"), Some(&admin))
        .body(vec![7u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Announce 900 bytes, send 100, hang up.
    let request = format!(
        "PUT {res}/files/cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nContent-Length: 900\r\n\r\n",
        basic(&admin)
    );
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&[1u8; 100]).await.unwrap();
    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let rows = s.rows(&format!("{res}/files?format=json"), &admin).await;
    assert!(rows.is_empty(), "{rows:?}");
    let files = s.data_files();
    assert!(
        !files
            .iter()
            .any(|f| f.contains("big.bin") || f.contains("cut.bin")),
        "{files:?}"
    );
    s.stop().await;
}
