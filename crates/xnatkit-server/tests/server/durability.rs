//! Acknowledged data stays, and files and rows change together (issue 10):
//! parallel first uploads into one new resource all succeed (finding 8);
//! the clean-up of a failed upload does not remove a resource a parallel
//! upload was answered 200 for (finding 4a); a failed `extract=true` upload
//! leaves the files it would have replaced as they were (finding 5). Every
//! check compares listed digests with the MD5 of the bytes served.

use reqwest::{Method, StatusCode};

use crate::harness::{Auth, Backend, TestServer, md5_hex, zip_of};

crate::on_both_backends!(
    parallel_first_uploads_into_one_new_resource_all_succeed,
    failed_extract_leaves_replaced_files_as_they_were
);

/// Listed files of a resource as (name, digest); every listed digest must be
/// the MD5 of the bytes the server serves for it.
async fn listed_with_true_digests(
    s: &TestServer,
    resource: &str,
    auth: &Auth,
) -> Vec<(String, String)> {
    let rows = s.rows(&format!("{resource}/files?format=json"), auth).await;
    let mut out = Vec::new();
    for row in rows {
        let name = row["Name"].as_str().unwrap().to_owned();
        let digest = row["digest"].as_str().unwrap().to_owned();
        let uri = row["URI"].as_str().unwrap().to_owned();
        let r = s.get(&uri, auth).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {uri}");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(
            md5_hex(&bytes),
            digest,
            "listed digest of {name} is not its bytes"
        );
        out.push((name, digest));
    }
    out.sort();
    out
}

async fn put_bytes(s: &TestServer, path: &str, auth: &Auth, body: Vec<u8>) -> reqwest::Response {
    s.req(Method::PUT, path, Some(auth))
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Finding 8: 40 uploads race to create the same resource; insert-or-get
/// makes them all succeed, with every file listed under its digest.
async fn parallel_first_uploads_into_one_new_resource_all_succeed(s: &TestServer) {
    const UPLOADS: usize = 40;
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "RACE").await;
    let resource = format!("/data/experiments/{session}/resources/NEW");
    let uploads = (0..UPLOADS).map(|i| {
        let body: Vec<u8> = format!("file {i} ").repeat(100 + i).into_bytes();
        let path = format!("{resource}/files/f{i:02}.txt");
        let admin = admin.clone();
        async move {
            let r = put_bytes(s, &path, &admin, body.clone()).await;
            let status = r.status();
            let text = r.text().await.unwrap();
            (i, status, text, md5_hex(&body))
        }
    });
    let answers = futures::future::join_all(uploads).await;
    for (i, status, text, _) in &answers {
        assert_eq!(*status, StatusCode::OK, "upload {i}: {text}");
    }
    let listed = listed_with_true_digests(s, &resource, &admin).await;
    let expected: Vec<(String, String)> = answers
        .iter()
        .map(|(i, _, _, md5)| (format!("f{i:02}.txt"), md5.clone()))
        .collect();
    assert_eq!(listed, expected);
    let resources = s
        .rows(
            &format!("/data/experiments/{session}/resources?format=json"),
            &admin,
        )
        .await;
    assert_eq!(
        resources.len(),
        1,
        "one resource, not one per upload: {resources:?}"
    );
}

/// Finding 5: an `extract=true` upload that cannot be completed (an entry
/// needs a folder where the resource has a file) changes nothing — in
/// particular not `c.txt`, which the archive also carries.
async fn failed_extract_leaves_replaced_files_as_they_were(s: &TestServer) {
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "EXTR").await;
    let resource = format!("/data/experiments/{session}/resources/R");
    for (name, body) in [("c.txt", "old c"), ("d", "a file named d")] {
        let r = put_bytes(s, &format!("{resource}/files/{name}"), &admin, body.into()).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let before = listed_with_true_digests(s, &resource, &admin).await;
    let zip = zip_of(&[("c.txt", b"new c"), ("d/x.txt", b"x")]);
    let r = put_bytes(
        s,
        &format!("{resource}/files/u.zip?extract=true&overwrite=true"),
        &admin,
        zip,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let message = r.text().await.unwrap();
    assert!(
        message.contains("d/x.txt") && !message.contains('\n'),
        "{message}"
    );
    assert_eq!(listed_with_true_digests(s, &resource, &admin).await, before);
    let c = s.get(&format!("{resource}/files/c.txt"), &admin).await;
    assert_eq!(c.bytes().await.unwrap().as_ref(), b"old c");
    let leftovers: Vec<String> = s
        .data_files()
        .into_iter()
        .filter(|f| f.contains(".xnk-") || f.contains(".part-") || f.starts_with("staging/"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Finding 4a, on one backend: upload A creates resource SHARED and is still
/// sending; upload B into SHARED is answered 200; then A fails (its body
/// grows past the upload limit). A's clean-up must not take B's file with it.
async fn failed_upload_keeps_what_a_parallel_upload_stored(backend: Backend) {
    let Some(s) = TestServer::start_with(backend, |c| c.max_upload_bytes = 1000).await else {
        return;
    };
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "KEEP").await;
    let resource = format!("/data/experiments/{session}/resources/SHARED");
    let (feed, chunks) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let mut feed = feed;
    let upload_a = {
        let request = s
            .req(
                Method::PUT,
                &format!("{resource}/files/a.bin"),
                Some(&admin),
            )
            .body(reqwest::Body::wrap_stream(chunks));
        tokio::spawn(async move { request.send().await })
    };
    futures::SinkExt::send(&mut feed, Ok(vec![1u8; 500]))
        .await
        .unwrap();
    // A has created the resource once it is listed.
    let mut created = false;
    for _ in 0..400 {
        let r = s.get(&format!("{resource}?format=json"), &admin).await;
        if r.status() == StatusCode::OK {
            created = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(created, "upload A never created the resource");
    let r = put_bytes(
        &s,
        &format!("{resource}/files/b.txt"),
        &admin,
        b"from B".to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    futures::SinkExt::send(&mut feed, Ok(vec![2u8; 600]))
        .await
        .unwrap();
    drop(feed);
    let answer_a = upload_a.await.unwrap().unwrap();
    assert_eq!(answer_a.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let listed = listed_with_true_digests(&s, &resource, &admin).await;
    assert_eq!(listed, vec![("b.txt".to_owned(), md5_hex(b"from B"))]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_keeps_what_a_parallel_upload_stored_sqlite() {
    failed_upload_keeps_what_a_parallel_upload_stored(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_keeps_what_a_parallel_upload_stored_postgres() {
    failed_upload_keeps_what_a_parallel_upload_stored(Backend::Postgres).await;
}

/// A failed first upload (single or multipart) still takes back the
/// resource it created when no other upload used it (nothing half-written
/// stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_first_upload_alone_leaves_no_resource() {
    let s = TestServer::start_with(Backend::Sqlite, |c| c.max_upload_bytes = 1000)
        .await
        .unwrap();
    let admin = s.admin();
    let (_, session) = s.seed(&admin, "GONE").await;
    let resource = format!("/data/experiments/{session}/resources/ALONE");
    let r = put_bytes(
        &s,
        &format!("{resource}/files/big.bin"),
        &admin,
        vec![0u8; 5000],
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        s.get(&format!("{resource}?format=json"), &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // A multipart upload whose second part fails takes its first part back
    // with the resource it created.
    let form = reqwest::multipart::Form::new()
        .part(
            "first",
            reqwest::multipart::Part::bytes(b"small".to_vec()).file_name("small.txt"),
        )
        .part(
            "second",
            reqwest::multipart::Part::bytes(vec![0u8; 5000]).file_name("big.bin"),
        );
    let r = s
        .req(Method::POST, &format!("{resource}/files"), Some(&admin))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        s.get(&format!("{resource}?format=json"), &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let left: Vec<String> = s
        .data_files()
        .into_iter()
        .filter(|f| f.starts_with("archive/"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    s.stop().await;
}
