//! Starts a real server per test and offers small request helpers.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xnat_server::ServerConfig;

pub const ADMIN_PASSWORD: &str = "Adm1n-test-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub url: String,
    pub data: TempDir,
    pub http: Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), xnat_server::ServerError>>>,
    database: Option<(String, String)>,
}

/// The server-admin PostgreSQL URL, or `None` after a loud skip (a failure
/// when `CI` is set).
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

async fn fresh_postgres_database(admin_url: &str) -> (String, String) {
    sqlx::any::install_default_drivers();
    let name = format!("xnatkit_srv_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("connect to PostgreSQL admin URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(admin_url).expect("admin URL parses");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

pub fn config(data: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new(data);
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    config
}

impl TestServer {
    /// Starts a server; `None` when the backend is not available here.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Option<Self> {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = config(data.path());
        let mut database = None;
        if backend == Backend::Postgres {
            let admin = postgres_admin_url()?;
            let (url, name) = fresh_postgres_database(&admin).await;
            config.database_url = Some(url);
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
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            shutdown: Some(tx),
            task: Some(task),
            database,
        };
        server.wait_ready().await;
        Some(server)
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self
                .http
                .get(format!("{}/data/version", self.url))
                .send()
                .await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server at {} did not become ready", self.url);
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

    pub fn admin(&self) -> (String, String) {
        ("admin".to_owned(), ADMIN_PASSWORD.to_owned())
    }

    pub fn req(
        &self,
        method: Method,
        path: &str,
        auth: Option<&(String, String)>,
    ) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.url));
        match auth {
            Some((u, p)) => builder.basic_auth(u, Some(p)),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, auth: &(String, String)) -> Response {
        self.req(Method::GET, path, Some(auth))
            .send()
            .await
            .expect("GET")
    }

    pub async fn put(&self, path: &str, auth: &(String, String)) -> Response {
        self.req(Method::PUT, path, Some(auth))
            .send()
            .await
            .expect("PUT")
    }

    pub async fn delete(&self, path: &str, auth: &(String, String)) -> Response {
        self.req(Method::DELETE, path, Some(auth))
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn json(&self, path: &str, auth: &(String, String)) -> serde_json::Value {
        let r = self.get(path, auth).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.expect("JSON body")
    }

    /// Rows of a ResultSet listing.
    pub async fn rows(&self, path: &str, auth: &(String, String)) -> Vec<serde_json::Value> {
        let doc = self.json(path, auth).await;
        doc["ResultSet"]["Result"]
            .as_array()
            .cloned()
            .expect("ResultSet.Result")
    }

    pub async fn create_user(&self, name: &str) -> (String, String) {
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

    /// Project, subject and MR session owned by `auth`; returns (subject ID, session ID).
    pub async fn seed(&self, auth: &(String, String), project: &str) -> (String, String) {
        assert_eq!(
            self.put(&format!("/data/projects/{project}"), auth)
                .await
                .status(),
            StatusCode::CREATED
        );
        let r = self
            .put(
                &format!("/data/projects/{project}/subjects/SUBJ1?xsiType=xnat:subjectData"),
                auth,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let subject = r.text().await.expect("text");
        let r = self
            .put(
                &format!("/data/projects/{project}/subjects/SUBJ1/experiments/SESS1?xsiType=xnat:mrSessionData&xnat:mrSessionData/date=2024-01-31"),
                auth,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let session = r.text().await.expect("text");
        (subject, session)
    }

    /// Every file below the data directory (names relative to it).
    pub fn data_files(&self) -> Vec<String> {
        walk(self.data.path(), self.data.path())
    }
}

fn walk(root: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(root, &path));
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
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
