//! A real server per test (SQLite in a temp dir, or a fresh PostgreSQL
//! database on the server-admin URL in `XNATKIT_TEST_DATABASE_URL`), plus
//! generated DICOM and archive builders.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dicom_sort::testdata::{SyntheticInstance, new_uid, write_series};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xnat_server::ServerConfig;

pub const ADMIN_PASSWORD: &str = "Adm1n-ingest-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub type Auth = (String, String);

pub struct TestServer {
    pub url: String,
    pub data: TempDir,
    pub http: Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), xnat_server::ServerError>>>,
    database: Option<(String, String)>,
}

fn postgres_admin_url() -> Option<String> {
    match std::env::var("XNATKIT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "XNATKIT_TEST_DATABASE_URL is required when CI is set"
            );
            eprintln!("SKIPPED: set XNATKIT_TEST_DATABASE_URL to run the PostgreSQL variant");
            None
        }
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Option<Self> {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::new(data.path());
        config.admin_password = Some(ADMIN_PASSWORD.to_owned());
        let mut database = None;
        if backend == Backend::Postgres {
            let admin = postgres_admin_url()?;
            sqlx::any::install_default_drivers();
            let name = format!("xnatkit_ingest_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .expect("connect to the PostgreSQL admin URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&admin).expect("admin URL parses");
            url.set_path(&format!("/{name}"));
            config.database_url = Some(url.to_string());
            database = Some((admin, name));
        }
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(xnat_server::run(listener, config, async move {
            let _ = rx.await;
        }));
        let server = Self {
            url: format!("http://{addr}"),
            data,
            http: Client::builder()
                .timeout(Duration::from_secs(120))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            shutdown: Some(tx),
            task: Some(task),
            database,
        };
        for _ in 0..200 {
            if let Ok(r) = server
                .http
                .get(format!("{}/data/version", server.url))
                .send()
                .await
                && r.status() == StatusCode::OK
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server at {} did not become ready", server.url);
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
        if let Some((admin, name)) = self.database.take() {
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .expect("connect admin");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .expect("drop test database");
        }
    }

    pub fn admin(&self) -> Auth {
        ("admin".to_owned(), ADMIN_PASSWORD.to_owned())
    }

    pub fn req(&self, method: Method, path: &str, auth: Option<&Auth>) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.url));
        match auth {
            Some((u, p)) => builder.basic_auth(u, Some(p)),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Response {
        self.req(Method::GET, path, Some(auth))
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, auth: &Auth) -> Response {
        self.req(Method::POST, path, Some(auth))
            .send()
            .await
            .expect("POST")
    }

    /// POSTs `body` to the import service; returns status and text.
    pub async fn import(&self, query: &str, body: Vec<u8>, auth: &Auth) -> (StatusCode, String) {
        let r = self
            .req(
                Method::POST,
                &format!("/data/services/import?{query}"),
                Some(auth),
            )
            .header("Content-Type", "application/zip")
            .body(body)
            .send()
            .await
            .expect("POST import");
        let status = r.status();
        (status, r.text().await.expect("text"))
    }

    pub async fn rows(&self, path: &str, auth: &Auth) -> Vec<serde_json::Value> {
        let r = self.get(path, auth).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        let doc: serde_json::Value = r.json().await.expect("JSON body");
        doc["ResultSet"]["Result"]
            .as_array()
            .cloned()
            .expect("ResultSet.Result")
    }

    pub async fn create_project(&self, project: &str) {
        let r = self
            .req(
                Method::PUT,
                &format!("/data/projects/{project}"),
                Some(&self.admin()),
            )
            .send()
            .await
            .expect("PUT project");
        assert_eq!(r.status(), StatusCode::CREATED, "create project {project}");
    }

    pub async fn create_user(&self, name: &str) -> Auth {
        let password = format!("Pw-{name}-1");
        let r = self
            .req(Method::POST, "/xapi/users", Some(&self.admin()))
            .json(&serde_json::json!({
                "username": name, "password": password, "email": format!("{name}@example.org"),
                "firstName": "T", "lastName": name, "enabled": true, "verified": true
            }))
            .send()
            .await
            .expect("POST user");
        assert_eq!(r.status(), StatusCode::CREATED);
        (name.to_owned(), password)
    }

    /// Every file below the staging folder (must be empty between imports).
    pub fn staging_leftovers(&self) -> Vec<PathBuf> {
        walk(&self.data.path().join("staging"))
            .into_iter()
            .filter(|p| !p.starts_with(self.data.path().join("staging").join("dicom-spool")))
            .collect()
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A generated study: `series` series of `per_series` MR instances each.
pub struct Study {
    pub uid: String,
    pub dir: TempDir,
    pub files: Vec<PathBuf>,
}

pub fn study(series: usize, per_series: usize, tweak: impl Fn(&mut SyntheticInstance)) -> Study {
    let dir = tempfile::tempdir().expect("temp dir");
    let uid = new_uid();
    let mut files = Vec::new();
    for n in 1..=series {
        let mut template = SyntheticInstance::new(&uid, &new_uid());
        template.series_number = Some(n as i64);
        template.series_description = Some(format!("Series {n}"));
        tweak(&mut template);
        files.extend(
            write_series(&dir.path().join(format!("s{n}")), &template, per_series)
                .expect("write series"),
        );
    }
    Study { uid, dir, files }
}

/// A zip of `(name, bytes)` entries (deflated).
pub fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), options).expect("zip entry");
        zip.write_all(bytes).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

/// Zip entries for files under `root`, named like xnatpy's `import_dir`.
pub fn entries_of(root: &Path, files: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(root).unwrap_or(f);
            (
                format!("Case001/{}", rel.to_string_lossy()),
                std::fs::read(f).expect("read file"),
            )
        })
        .collect()
}

pub fn tar_gz_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(encoder);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .expect("tar entry");
    }
    tar.into_inner()
        .expect("tar finish")
        .finish()
        .expect("gzip finish")
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// Runs each listed `async fn(&TestServer)` once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = $crate::harness::TestServer::start($crate::harness::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(server) = $crate::harness::TestServer::start($crate::harness::Backend::Postgres).await else {
                        return;
                    };
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
    };
}
