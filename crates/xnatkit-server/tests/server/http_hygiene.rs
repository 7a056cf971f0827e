//! HTTP input hygiene of file routes: folder deletes match exactly, name
//! clashes and over-long names are 4xx, broken request framing is 400, and
//! none of them leaves a row, a file or a `.part` temp behind or shows a
//! server path.

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{TestServer, zip_of};
use crate::traversal::{raw_http, session_cookie};

crate::on_both_backends!(
    folder_delete_matches_exactly,
    file_and_folder_name_clashes_are_409,
    over_long_names_are_400,
    broken_request_framing_is_400,
    extract_refuses_to_replace_without_overwrite,
    extract_errors_name_the_upload_not_server_paths,
    nul_characters_are_400_on_every_kind_of_input,
);

/// A session resource `R` of a fresh project; returns its URI.
async fn resource(s: &TestServer, project: &str) -> String {
    let (_, session) = s.seed(&s.admin(), project).await;
    let uri = format!("/data/experiments/{session}/resources/R");
    assert_eq!(s.put(&uri, &s.admin()).await.status(), StatusCode::CREATED);
    uri
}

async fn put_bytes(s: &TestServer, uri: &str, body: &'static [u8]) -> (StatusCode, String) {
    let r = s
        .req(Method::PUT, uri, Some(&s.admin()))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// Names of the files recorded in a resource, sorted.
async fn recorded(s: &TestServer, res: &str) -> Vec<String> {
    let mut names: Vec<String> = s
        .rows(&format!("{res}/files?format=json"), &s.admin())
        .await
        .iter()
        .map(|row| {
            let uri = row["URI"].as_str().unwrap();
            let (_, path) = uri.split_once("/files/").unwrap();
            percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every file below the archive (paths relative to the data folder).
fn archive_files(s: &TestServer) -> Vec<String> {
    s.data_files()
        .into_iter()
        .filter(|f| f.starts_with("archive/"))
        .collect()
}

/// Nothing half-written anywhere: no temp file, nothing left in staging.
fn assert_no_leftovers(s: &TestServer) {
    let files = s.data_files();
    assert!(
        !files.iter().any(
            |f| f.contains(".part-") || f.starts_with("staging/") && !f.contains("dicom-spool")
        ),
        "leftovers: {files:?}"
    );
}

fn one_line(text: &str) {
    assert!(!text.trim_end().contains('\n'), "not one line: {text:?}");
}

async fn folder_delete_matches_exactly(s: &TestServer) {
    let res = resource(s, "DEL").await;
    let names = [
        "data_1/x.txt",
        "data_1/sub/y.txt",
        "dataX1/x.txt",
        "DATA_1/x.txt",
        "data_10/x.txt",
        "data_1x",
        "pct%/x.txt",
        "pctX/x.txt",
        "a_b/c.txt",
    ];
    for name in names {
        let encoded = name.replace('%', "%25");
        let (status, text) = put_bytes(s, &format!("{res}/files/{encoded}"), b"kept").await;
        assert_eq!(status, StatusCode::OK, "PUT {name}: {text}");
    }
    let disk_before = archive_files(s);
    // `%` and `_` are no wildcards: these name no file or folder.
    for wildcard in [
        "%25", "data%25", "data_", "_", "a%25", "DATA%25", "data%5F", "dataX",
    ] {
        let r = s
            .delete(&format!("{res}/files/{wildcard}"), &s.admin())
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "DELETE {wildcard}");
    }
    assert_eq!(recorded(s, &res).await.len(), names.len());
    assert_eq!(archive_files(s), disk_before);

    // The folder `data_1` and nothing else, in the database and on disk.
    let r = s.delete(&format!("{res}/files/data_1"), &s.admin()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let left = recorded(s, &res).await;
    assert_eq!(
        left,
        [
            "DATA_1/x.txt",
            "a_b/c.txt",
            "dataX1/x.txt",
            "data_10/x.txt",
            "data_1x",
            "pct%/x.txt",
            "pctX/x.txt"
        ]
    );
    let disk_after = archive_files(s);
    let gone: Vec<&String> = disk_before
        .iter()
        .filter(|f| !disk_after.contains(f))
        .collect();
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(gone.iter().all(|f| f.contains("/R/data_1/")), "{gone:?}");

    // A folder whose name holds `%` is deleted exactly as well.
    let r = s.delete(&format!("{res}/files/pct%25"), &s.admin()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let left = recorded(s, &res).await;
    assert!(left.contains(&"pctX/x.txt".to_owned()), "{left:?}");
    assert!(!left.contains(&"pct%/x.txt".to_owned()), "{left:?}");
    assert!(archive_files(s).iter().all(|f| !f.contains("/pct%/")));
    // Every recorded file is still on disk.
    let disk = archive_files(s);
    for name in left {
        assert!(
            disk.iter().any(|f| f.ends_with(&format!("/R/{name}"))),
            "{name}"
        );
    }
    // Backslashes are refused, not stored as part of a name.
    let (status, _) = put_bytes(s, &format!("{res}/files/back%5Cslash"), b"x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn file_and_folder_name_clashes_are_409(s: &TestServer) {
    let res = resource(s, "CLASH").await;
    assert_eq!(
        put_bytes(s, &format!("{res}/files/a"), b"file a").await.0,
        StatusCode::OK
    );
    assert_eq!(
        put_bytes(s, &format!("{res}/files/d/x.txt"), b"in folder d")
            .await
            .0,
        StatusCode::OK
    );
    let before = (recorded(s, &res).await, archive_files(s));
    for (name, query) in [
        ("a/b", ""),
        ("a/b/c", ""),
        ("d", ""),
        ("d", "?overwrite=true"),
        ("a/b", "?overwrite=true"),
    ] {
        let (status, text) = put_bytes(s, &format!("{res}/files/{name}{query}"), b"clash").await;
        assert_eq!(status, StatusCode::CONFLICT, "PUT {name}{query}: {text}");
        one_line(&text);
        assert!(text.contains(name.split('/').next().unwrap()), "{text}");
    }
    // The same through extract=true and multipart.
    let zip = zip_of(&[("a/inside.txt", b"x".as_slice())]);
    let r = s
        .req(
            Method::PUT,
            &format!("{res}/files/up.zip?extract=true&overwrite=true"),
            Some(&s.admin()),
        )
        .body(zip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let zip = zip_of(&[("d", b"x".as_slice())]);
    let r = s
        .req(
            Method::PUT,
            &format!("{res}/files/up.zip?extract=true&overwrite=true"),
            Some(&s.admin()),
        )
        .body(zip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("a/m.txt"),
    );
    let r = s
        .req(Method::POST, &format!("{res}/files"), Some(&s.admin()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!((recorded(s, &res).await, archive_files(s)), before);
    assert_no_leftovers(s);
}

async fn over_long_names_are_400(s: &TestServer) {
    let res = resource(s, "LONG").await;
    let before = archive_files(s);
    let long_component = "n".repeat(300);
    let deep = vec!["d".repeat(200); 8].join("/");
    for name in [long_component.clone(), format!("ok/{long_component}"), deep] {
        let (status, text) = put_bytes(s, &format!("{res}/files/{name}"), b"x").await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{} bytes: {text}",
            name.len()
        );
        one_line(&text);
    }
    // A new resource made for a refused upload is taken back too.
    let (status, _) = put_bytes(s, &format!("{res}_NEW/files/{long_component}"), b"x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(recorded(s, &res).await.is_empty());
    assert_eq!(archive_files(s), before);
    assert_no_leftovers(s);
}

/// Sends a request and half-closes: the server sees the end of the body
/// early, as when a client dies mid-upload.
async fn send_and_half_close(s: &TestServer, head: &str, body: &[u8]) -> String {
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn broken_request_framing_is_400(s: &TestServer) {
    let res = resource(s, "FRAME").await;
    let cookie = session_cookie(s, &s.admin()).await;
    let before = archive_files(s);

    // Chunked encoding that is not chunked encoding.
    let head = format!(
        "PUT {res}/files/chunked.bin HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_http(s, &head, b"5\r\nhello\r\nzz-not-hex\r\n\r\n").await;
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );

    // A multipart body that never ends.
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.bin\"\r\nContent-Type: application/octet-stream\r\n\r\nsome bytes but no closing boundary";
    let head = format!(
        "POST {res}/files HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        multipart.len()
    );
    let answer = raw_http(s, &head, multipart.as_bytes()).await;
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    one_line(&text);
    assert!(
        !text.contains(&s.data.path().display().to_string()),
        "{text}"
    );

    // A Content-Length longer than the body: the client stops sending.
    let head = format!(
        "PUT {res}/files/short.bin HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Length: 900\r\n\r\n"
    );
    let answer = send_and_half_close(s, &head, &[1u8; 100]).await;
    // The client has gone away; if the server still answers, it is a 400.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );

    // None of them left a row, a file or a temp file. The file rows are
    // checked after one more full request, which the server handles only
    // after the broken ones (each on its own connection) have ended.
    assert_eq!(
        put_bytes(s, &format!("{res}/files/last.bin"), b"ok")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(recorded(s, &res).await, ["last.bin"]);
    let after: Vec<String> = archive_files(s)
        .into_iter()
        .filter(|f| !f.ends_with("/last.bin"))
        .collect();
    assert_eq!(after, before);
    assert_no_leftovers(s);
}

async fn extract_refuses_to_replace_without_overwrite(s: &TestServer) {
    let res = resource(s, "EXTR").await;
    let first = zip_of(&[("one.txt", b"first".as_slice()), ("sub/two.txt", b"first")]);
    let second = zip_of(&[
        ("new.txt", b"second".as_slice()),
        ("sub/two.txt", b"second"),
    ]);
    let put_zip = |zip: Vec<u8>, query: &'static str| {
        s.req(
            Method::PUT,
            &format!("{res}/files/u.zip?extract=true{query}"),
            Some(&s.admin()),
        )
        .body(zip)
        .send()
    };
    assert_eq!(put_zip(first, "").await.unwrap().status(), StatusCode::OK);
    let r = put_zip(second.clone(), "").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("sub/two.txt") && text.contains("overwrite=true"),
        "{text}"
    );
    // All or nothing: not even the new file went in.
    assert_eq!(recorded(s, &res).await, ["one.txt", "sub/two.txt"]);
    let two = s.get(&format!("{res}/files/sub/two.txt"), &s.admin()).await;
    assert_eq!(two.text().await.unwrap(), "first");
    assert_no_leftovers(s);
    assert_eq!(
        put_zip(second, "&overwrite=true").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        recorded(s, &res).await,
        ["new.txt", "one.txt", "sub/two.txt"]
    );
    let two = s.get(&format!("{res}/files/sub/two.txt"), &s.admin()).await;
    assert_eq!(two.text().await.unwrap(), "second");
}

async fn extract_errors_name_the_upload_not_server_paths(s: &TestServer) {
    let res = resource(s, "MSG").await;
    let data_dir = s.data.path().display().to_string();
    let mut truncated = zip_of(&[("a.txt", vec![7u8; 4000].as_slice())]);
    truncated.truncate(truncated.len() / 2);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not an archive", b"just some text, no archive".to_vec()),
        ("truncated zip", truncated),
        (
            "corrupt gzip",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3],
        ),
        (
            "escaping entry",
            zip_of(&[("../evil.txt", b"x".as_slice())]),
        ),
    ];
    for (what, body) in bodies {
        let r = s
            .req(
                Method::PUT,
                &format!("{res}/files/up.zip?extract=true"),
                Some(&s.admin()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
        one_line(&text);
        assert!(
            !text.contains(&data_dir) && !text.contains("staging"),
            "{what}: {text}"
        );
    }
    assert!(recorded(s, &res).await.is_empty());
    assert_no_leftovers(s);
}

/// A NUL character reaches no handler and no database: in path segments
/// (archive, prearchive, axum `Path` routes), in query values and in JSON
/// bodies it is a one-line 400, never a 500, and nothing is created. Other
/// undecodable archive segments are 400 as well.
async fn nul_characters_are_400_on_every_kind_of_input(s: &TestServer) {
    let admin = s.admin();
    s.create_project("NULP").await;
    for uri in [
        "/data/projects/NULP/subjects/a%00b",
        "/data/projects/NULP%00/prearchive_code",
        "/data/projects/NULP/prearchive_code/4%00",
        "/xapi/users/ab%00c",
        "/data/prearchive/projects/NULP/2024%00/x",
        "/data/services/dicomdump?src=/archive/projects/NULP%00/experiments/E",
        "/data/projects?columns=ID%00",
        "/data/projects/NULP/subjects?label=x%00y",
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let r = s
                .req(method.clone(), uri, Some(&admin))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {text}");
            one_line(&text);
        }
    }
    // Archive path segments that are not UTF-8 once decoded, or hold a
    // control character, are the client's mistake too: 400 naming it.
    for uri in [
        "/data/projects/NULP/subjects/%c0%ae%c0%ae",
        "/data/projects/NULP/subjects/a%01b",
        "/data/archive/projects/%ff",
    ] {
        let r = s.req(Method::GET, uri, Some(&admin)).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {text}");
        assert!(text.contains("UTF-8"), "{uri}: {text}");
        one_line(&text);
    }
    // In a body the value reaches the store; PostgreSQL's refusal is the
    // client's fault too.
    let r = s
        .req(Method::POST, "/xapi/users", Some(&admin))
        .json(&serde_json::json!({
            "username": "nul\u{0}user", "password": "pw-nul-1234", "email": "n@example.org",
            "firstName": "N\u{0}", "lastName": "U", "enabled": true, "verified": true
        }))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_client_error(),
        "a NUL in a JSON body is a client error, got {}",
        r.status()
    );
    let subjects = s
        .rows("/data/projects/NULP/subjects?format=json", &admin)
        .await;
    assert!(subjects.is_empty(), "{subjects:?}");
}
