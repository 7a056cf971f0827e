//! Several `xnatkit serve` processes on one PostgreSQL database and one data
//! folder (docs/deploy.md): the same study imported through two servers at
//! once ends as one session holding every file once, while a third client
//! reading listings sees no error; and the same two servers behind Debian's
//! nginx, run with the site file from `docs/deploy/nginx.conf`, take uploads
//! and serve downloads.
//!
//! PostgreSQL only (SQLite is one server per data folder). Needs
//! `XNATKIT_TEST_DATABASE_URL` (a server-admin URL) and `psql`, and nginx
//! for the second test: skipped locally without them, a failure under CI.

// Test harness: a failed set-up step should panic with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cluster::{self, Cluster, Nginx, files_below, md5_hex, postgres_admin_url};
use serde_json::Value;
use xnatkit_test_support::dicom::{SyntheticInstance, new_uid, write_synthetic_instance};

/// A generated study: series of instances with fixed UIDs.
struct Study {
    study_uid: String,
    series: Vec<(String, Vec<String>)>,
}

impl Study {
    fn new(series: usize, per_series: usize) -> Self {
        Self {
            study_uid: new_uid(),
            series: (0..series)
                .map(|_| (new_uid(), (0..per_series).map(|_| new_uid()).collect()))
                .collect(),
        }
    }

    /// Writes the instances of the series in `which` below `dir`; returns
    /// (file name, MD5) of each.
    fn write(&self, dir: &Path, patient: &str, which: &[usize]) -> Vec<(PathBuf, String)> {
        std::fs::create_dir_all(dir).unwrap();
        let mut out = Vec::new();
        for &n in which {
            let (series_uid, instances) = &self.series[n];
            for (i, sop) in instances.iter().enumerate() {
                let mut instance = SyntheticInstance::new(&self.study_uid, series_uid);
                instance.sop_instance_uid = sop.clone();
                instance.series_number = Some(n as i64 + 1);
                instance.instance_number = Some(i as i64 + 1);
                instance.patient_name = Some(patient.to_owned());
                instance.patient_id = Some(patient.to_owned());
                let path = dir.join(format!("{n}-{i}.dcm"));
                write_synthetic_instance(&path, &instance).unwrap();
                let md5 = md5_hex(&std::fs::read(&path).unwrap());
                out.push((path, md5));
            }
        }
        out
    }

    fn zip(files: &[(PathBuf, String)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (file, _) in files {
            zip.start_file(
                file.file_name().unwrap().to_string_lossy(),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(&std::fs::read(file).unwrap()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }
}

fn rows(body: &Value) -> Vec<Value> {
    body["ResultSet"]["Result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn text_of(row: &Value, key: &str) -> String {
    match &row[key] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// GETs `path` as JSON rows; `Err` with the status and body otherwise.
async fn listing(http: &reqwest::Client, base: &str, path: &str) -> Result<Vec<Value>, String> {
    let response = http
        .get(format!("{base}{path}"))
        .basic_auth("admin", Some(cluster::ADMIN_PASSWORD))
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("GET {path}: {status}: {body}"));
    }
    let value: Value =
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: not JSON ({e}): {body}"))?;
    Ok(rows(&value))
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, String) {
    let response = http
        .request(method, &url)
        .basic_auth("admin", Some(cluster::ADMIN_PASSWORD))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// What one pass of the reader saw: the sessions and, per session, its
/// scans and their file counts. Errors are any failed request.
async fn read_once(http: &reqwest::Client, base: &str, project: &str) -> Result<usize, String> {
    let sessions = listing(
        http,
        base,
        &format!("/data/projects/{project}/experiments?format=json"),
    )
    .await?;
    let labels: BTreeSet<String> = sessions.iter().map(|s| text_of(s, "label")).collect();
    if labels.len() != sessions.len() || sessions.len() > 2 {
        return Err(format!("sessions listed more than once: {sessions:?}"));
    }
    let mut files = 0;
    for session in &sessions {
        let label = text_of(session, "label");
        for scan in listing(
            http,
            base,
            &format!("/data/projects/{project}/experiments/{label}/scans?format=json"),
        )
        .await?
        {
            let id = text_of(&scan, "ID");
            // A scan row is committed with its files in one transaction, so
            // a listed scan always has its resource.
            files += listing(
                http,
                base,
                &format!(
                    "/data/projects/{project}/experiments/{label}/scans/{id}/resources/DICOM/files?format=json"
                ),
            )
            .await?
            .len();
        }
    }
    Ok(files)
}

/// Scan ID → (file name → MD5) of the session, read through `base`.
async fn session_files(
    http: &reqwest::Client,
    base: &str,
    project: &str,
    label: &str,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for scan in listing(
        http,
        base,
        &format!("/data/projects/{project}/experiments/{label}/scans?format=json"),
    )
    .await
    .unwrap()
    {
        let id = text_of(&scan, "ID");
        let mut files = BTreeMap::new();
        for file in listing(
            http,
            base,
            &format!(
                "/data/projects/{project}/experiments/{label}/scans/{id}/resources/DICOM/files?format=json"
            ),
        )
        .await
        .unwrap()
        {
            let name = text_of(&file, "Name");
            assert!(
                files.insert(name.clone(), text_of(&file, "digest")).is_none(),
                "scan {id} lists {name} twice"
            );
        }
        out.insert(id, files);
    }
    out
}

#[test]
fn one_study_through_two_servers_at_once() {
    let Some(admin_url) = postgres_admin_url() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&admin_url, work.path(), 2);
    let (a, b) = (
        cluster.servers[0].url.clone(),
        cluster.servers[1].url.clone(),
    );
    let study = Study::new(3, 8);
    // SESS1: the study in two parts, one through each server, merged into
    // one session (overwrite=append).
    let through_a = study.write(&work.path().join("gen/a"), "P1", &[0]);
    let through_b = study.write(&work.path().join("gen/b"), "P1", &[1, 2]);
    // SESS2: the whole study through both: one creates the session, the
    // other is told it exists (XNAT's answer without overwrite).
    let whole = study.write(&work.path().join("gen/whole"), "P1", &[0, 1, 2]);
    let expected: BTreeSet<String> = through_a
        .iter()
        .chain(&through_b)
        .map(|(_, md5)| md5.clone())
        .collect();
    assert_eq!(expected.len(), 24);

    let runtime = cluster::runtime();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let (status, body) = send(
            &http,
            reqwest::Method::PUT,
            format!("{a}/data/projects/MULTI"),
            Vec::new(),
            "text/plain",
        )
        .await;
        assert!(status < 300, "create project: {status} {body}");

        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (http, done, urls) = (http.clone(), done.clone(), [a.clone(), b.clone()]);
            tokio::spawn(async move {
                let mut errors = Vec::new();
                let mut passes = 0usize;
                // Bounded: the imports take seconds; the reader stops when
                // they are answered, and never runs more than this.
                while passes < 20_000 && (!done.load(Ordering::SeqCst) || passes < 2) {
                    let base = &urls[passes % 2];
                    if let Err(err) = read_once(&http, base, "MULTI").await {
                        errors.push(err);
                    }
                    passes += 1;
                }
                (passes, errors)
            })
        };
        let query = "project=MULTI&subject=S1&session=SESS1&dest=/archive&overwrite=append";
        let whole_query = "project=MULTI&subject=S1&session=SESS2&dest=/archive";
        let (first, second, whole_a, whole_b) = tokio::join!(
            send(
                &http,
                reqwest::Method::POST,
                format!("{a}/data/services/import?{query}"),
                Study::zip(&through_a),
                "application/zip",
            ),
            send(
                &http,
                reqwest::Method::POST,
                format!("{b}/data/services/import?{query}"),
                Study::zip(&through_b),
                "application/zip",
            ),
            send(
                &http,
                reqwest::Method::POST,
                format!("{a}/data/services/import?{whole_query}"),
                Study::zip(&whole),
                "application/zip",
            ),
            send(
                &http,
                reqwest::Method::POST,
                format!("{b}/data/services/import?{whole_query}"),
                Study::zip(&whole),
                "application/zip",
            ),
        );
        done.store(true, Ordering::SeqCst);
        assert_eq!(first.0, 200, "import through A: {}", first.1);
        assert_eq!(second.0, 200, "import through B: {}", second.1);
        let mut answers = [whole_a.0, whole_b.0];
        answers.sort_unstable();
        assert_eq!(answers, [200, 409], "{whole_a:?} {whole_b:?}");
        let refused = if whole_a.0 == 409 {
            &whole_a.1
        } else {
            &whole_b.1
        };
        assert!(refused.contains("already exists"), "{refused}");
        let (passes, errors) = reader.await.unwrap();
        assert!(errors.is_empty(), "the reader saw errors: {errors:#?}");
        assert!(passes >= 2);

        for base in [&a, &b] {
            let sessions = listing(&http, base, "/data/projects/MULTI/experiments?format=json")
                .await
                .unwrap();
            assert_eq!(sessions.len(), 2, "{sessions:?}");
            let subjects = listing(&http, base, "/data/projects/MULTI/subjects?format=json")
                .await
                .unwrap();
            assert_eq!(subjects.len(), 1, "{subjects:?}");
            for label in ["SESS1", "SESS2"] {
                let scans = session_files(&http, base, "MULTI", label).await;
                assert_eq!(scans.len(), 3, "{label}: one scan per series: {scans:?}");
                let listed: Vec<&String> = scans.values().flat_map(|f| f.values()).collect();
                assert_eq!(listed.len(), 24, "{label}: every file once: {scans:?}");
                let listed: BTreeSet<String> = listed.into_iter().cloned().collect();
                assert_eq!(listed, expected, "{label}");
            }
        }
    });

    // The database holds each object once.
    for (table, rows) in [
        ("subjects", 1),
        ("experiments", 2),
        ("scans", 6),
        ("files", 48),
    ] {
        assert_eq!(
            cluster
                .database
                .count(&format!("SELECT count(*) FROM {table}")),
            rows,
            "{table}"
        );
    }
    assert_eq!(
        cluster.database.count("SELECT count(*) FROM file_moves"),
        0,
        "no journal entries left"
    );
    // The disk holds each file once, with the bytes its row describes.
    let on_disk: Vec<PathBuf> = files_below(&cluster.data.join("archive"));
    assert_eq!(on_disk.len(), 48, "{on_disk:#?}");
    let digests: BTreeSet<String> = on_disk
        .iter()
        .map(|p| md5_hex(&std::fs::read(p).unwrap()))
        .collect();
    assert_eq!(digests, expected);

    // A graceful stop of both leaves no staging behind.
    let data = cluster.data.clone();
    cluster.stop();
    let staging = files_below(&data.join("staging"));
    assert!(staging.is_empty(), "staging leftovers: {staging:#?}");
    let instances: Vec<_> = std::fs::read_dir(data.join("staging/instances"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(instances.is_empty(), "{instances:?}");
}

#[test]
fn two_servers_behind_nginx() {
    let Some(admin_url) = postgres_admin_url() else {
        return;
    };
    let Some(nginx_bin) = cluster::nginx_binary() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&admin_url, work.path(), 2);
    let nginx = Nginx::start(&nginx_bin, &work.path().join("nginx"), &cluster);
    let front = nginx.url.clone();

    let study = Study::new(2, 5);
    let files = study.write(&work.path().join("gen"), "PN", &[0, 1]);
    let expected: BTreeSet<String> = files.iter().map(|(_, m)| m.clone()).collect();
    // Several MiB of bytes no compression shrinks: a real streamed upload.
    let big: Vec<u8> = (0u64..(6 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_md5 = md5_hex(&big);

    let runtime = cluster::runtime();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let (status, body) = send(
            &http,
            reqwest::Method::PUT,
            format!("{front}/data/projects/NGX"),
            Vec::new(),
            "text/plain",
        )
        .await;
        assert!(
            status < 300,
            "create project through nginx: {status} {body}"
        );
        let (status, body) = send(
            &http,
            reqwest::Method::POST,
            format!("{front}/data/services/import?project=NGX&subject=S1&session=N1&dest=/archive"),
            Study::zip(&files),
            "application/zip",
        )
        .await;
        assert_eq!(status, 200, "import through nginx: {body}");
        let (status, body) = send(
            &http,
            reqwest::Method::PUT,
            format!("{front}/data/projects/NGX/resources/BIG/files/big.bin?inbody=true"),
            big.clone(),
            "application/octet-stream",
        )
        .await;
        assert!(status < 300, "upload through nginx: {status} {body}");

        // Round robin sends these to both servers; each answer is whole.
        for _ in 0..4 {
            let scans = session_files(&http, &front, "NGX", "N1").await;
            let listed: BTreeSet<String> =
                scans.values().flat_map(|f| f.values()).cloned().collect();
            assert_eq!(listed, expected);
            let response = http
                .get(format!(
                    "{front}/data/projects/NGX/resources/BIG/files/big.bin"
                ))
                .basic_auth("admin", Some(cluster::ADMIN_PASSWORD))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let bytes = response.bytes().await.unwrap();
            assert_eq!(bytes.len(), big.len());
            assert_eq!(md5_hex(&bytes), big_md5);
        }
    });
    let upstreams = nginx.upstreams_used();
    for server in &cluster.servers {
        assert!(
            upstreams.contains(&server.address),
            "nginx never reached {}: {upstreams:?}",
            server.address
        );
    }
    drop(nginx);
    cluster.stop();
}
