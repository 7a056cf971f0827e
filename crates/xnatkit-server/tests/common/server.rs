//! The one way the server's integration tests start a real server: SQLite in
//! a temp dir, or a fresh PostgreSQL database on the server-admin URL in
//! `XNATKIT_TEST_DATABASE_URL`, plus the request helpers every test uses.
//! Included by each test binary's `harness` module (`#[path]`), which adds
//! its own helpers with further `impl TestServer` blocks.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xnatkit_server::ServerConfig;

pub const ADMIN_PASSWORD: &str = "Adm1n-test-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// HTTP Basic credentials: (user, password).
pub type Auth = (String, String);

pub struct TestServer {
    pub url: String,
    pub data: TempDir,
    /// Follows no redirects, so tests see the server's own answers.
    pub http: Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), xnatkit_server::ServerError>>>,
    /// (admin URL, database name) of a PostgreSQL database to drop at stop.
    database: Option<(String, String)>,
}

/// The server-admin PostgreSQL URL, or `None` after a loud skip (a failure
/// when `CI` is set).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("XNATKIT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "XNATKIT_TEST_DATABASE_URL is required when CI is set"
            );
            // The skip must show in the test output, not only in a log.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SKIPPED: set XNATKIT_TEST_DATABASE_URL to run the PostgreSQL variant");
            }
            None
        }
    }
}

/// Creates an empty database; returns its URL and name.
pub async fn fresh_postgres_database(admin_url: &str) -> (String, String) {
    sqlx::any::install_default_drivers();
    let name = format!("xnatkit_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("connect to the PostgreSQL admin URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(admin_url).expect("admin URL parses");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

/// The configuration tests start from: the data dir and a known admin password.
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
        let task = tokio::spawn(xnatkit_server::run(listener, config, async move {
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

    /// Shuts the server down (it must stop cleanly) and drops its database.
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

    async fn send(&self, method: Method, path: &str, auth: &Auth) -> Response {
        let what = format!("{method} {path}");
        self.req(method, path, Some(auth))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Response {
        self.send(Method::GET, path, auth).await
    }

    pub async fn put(&self, path: &str, auth: &Auth) -> Response {
        self.send(Method::PUT, path, auth).await
    }

    pub async fn post(&self, path: &str, auth: &Auth) -> Response {
        self.send(Method::POST, path, auth).await
    }

    pub async fn delete(&self, path: &str, auth: &Auth) -> Response {
        self.send(Method::DELETE, path, auth).await
    }

    /// A JSON body of a GET that must answer 200.
    pub async fn json(&self, path: &str, auth: &Auth) -> serde_json::Value {
        let r = self.get(path, auth).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.expect("JSON body")
    }

    /// Rows of a ResultSet listing.
    pub async fn rows(&self, path: &str, auth: &Auth) -> Vec<serde_json::Value> {
        let doc = self.json(path, auth).await;
        doc["ResultSet"]["Result"]
            .as_array()
            .cloned()
            .expect("ResultSet.Result")
    }

    /// A user created by the admin through `POST /xapi/users`.
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

    /// A project created by the admin.
    pub async fn create_project(&self, project: &str) {
        let r = self
            .put(&format!("/data/projects/{project}"), &self.admin())
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "create project {project}");
    }
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
