//! Bad uploads: each gets one clear message naming the file, and leaves
//! nothing behind (no rows, no files, no staging leftovers).

use reqwest::StatusCode;

use crate::harness::{Backend, TestServer, entries_of, study, zip_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_cleanly() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        // Small enough that a few MB of zeros is a bomb.
        config.extract_limits.max_ratio = 100;
    })
    .await
    .expect("SQLite server");
    let admin = server.admin();
    server.create_project("BAD").await;
    let generated = study(1, 2, |_| {});
    let good = entries_of(generated.dir.path(), &generated.files);
    let query = "dest=/archive&project=BAD&subject=S&session=E";

    let mut with_text = good.clone();
    with_text.push(("Case001/notes.txt".to_owned(), b"not an image".to_vec()));
    let (status, body) = server.import(query, zip_of(&with_text), &admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Case001/notes.txt"), "{body}");
    assert!(body.contains("Ignore-Unparsable"), "{body}");

    let mut truncated = good.clone();
    let cut = truncated[0].1.len() - 40;
    truncated[0].1.truncate(cut);
    let (status, body) = server.import(query, zip_of(&truncated), &admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains(&truncated[0].0), "{body}");
    assert!(body.contains("truncated"), "{body}");

    let mut escaping = good.clone();
    escaping.push(("../escape.dcm".to_owned(), good[0].1.clone()));
    let (status, body) = server.import(query, zip_of(&escaping), &admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("escape.dcm"), "{body}");
    assert!(!server.data.path().join("escape.dcm").exists());

    let bomb = vec![("zeros.dcm".to_owned(), vec![0u8; 8 << 20])];
    let (status, body) = server.import(query, zip_of(&bomb), &admin).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
        "{status} {body}"
    );

    let (status, body) = server
        .import(query, b"this is not an upload at all".to_vec(), &admin)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("neither"), "{body}");

    let (status, body) = server.import(query, Vec::new(), &admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("no file"), "{body}");

    let (status, body) = server
        .import("dest=/nowhere&project=BAD", zip_of(&good), &admin)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("/nowhere"), "{body}");

    // Nothing of the refused uploads exists anywhere.
    assert!(
        server
            .rows("/data/projects/BAD/experiments?format=json", &admin)
            .await
            .is_empty()
    );
    assert!(
        server
            .rows("/data/prearchive/projects?format=json", &admin)
            .await
            .is_empty()
    );
    assert!(
        server.staging_leftovers().is_empty(),
        "{:?}",
        server.staging_leftovers()
    );
    assert!(crate::harness::walk(&server.data.path().join("archive")).is_empty());

    // With Ignore-Unparsable the stray file is skipped and the rest imported.
    let (status, body) = server
        .import(
            &format!("{query}&Ignore-Unparsable=true"),
            zip_of(&with_text),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let files = server
        .rows(
            "/data/projects/BAD/experiments/E/scans/1/resources/DICOM/files?format=json",
            &admin,
        )
        .await;
    assert_eq!(files.len(), 2);
    server.stop().await;
}
