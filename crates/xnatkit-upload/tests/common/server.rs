//! A real xnatkit server on 127.0.0.1:0 with its own temp directory and
//! SQLite database, running in the test's runtime.
#![allow(dead_code)]

use std::time::Duration;

use xnatkit_client::{ClientOptions, Credentials, Request, RequestBody, XnatClient};

pub const ADMIN_PASSWORD: &str = "admin-test-pass";

pub struct TestServer {
    pub url: String,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = xnatkit_server::ServerConfig::new(dir.path());
    config.admin_password = Some(ADMIN_PASSWORD.to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Err(e) = xnatkit_server::run(listener, config, async {
            let _ = rx.await;
        })
        .await
        {
            // Test output: a server that stopped explains the failures after it.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("test server stopped: {e}");
            }
        }
    });
    let server = TestServer {
        url,
        dir,
        shutdown: Some(tx),
    };
    // The listener is bound before the database opens; wait for logins to work.
    for _ in 0..100 {
        if connect(&server.url, "admin", ADMIN_PASSWORD).await.is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("test server at {} did not come up", server.url);
}

pub async fn connect(
    url: &str,
    user: &str,
    password: &str,
) -> Result<XnatClient, xnatkit_client::ClientError> {
    XnatClient::connect(
        url,
        Credentials::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        },
        ClientOptions::default(),
    )
    .await
}

pub async fn admin(server: &TestServer) -> XnatClient {
    connect(&server.url, "admin", ADMIN_PASSWORD).await.unwrap()
}

pub async fn create_project(client: &XnatClient, project: &str) {
    client
        .put_object(&format!("/data/projects/{project}"), &[], "project")
        .await
        .unwrap();
}

pub async fn create_user(admin: &XnatClient, user: &str, password: &str) {
    let body = format!(
        r#"{{"username":"{user}","password":"{password}","email":"{user}@example.invalid","firstName":"T","lastName":"U","enabled":true,"verified":true}}"#
    );
    let request = Request::new(reqwest_post(), "/xapi/users", "user").body(RequestBody::Bytes(
        body.into_bytes().into(),
        "application/json",
    ));
    admin.send(&request).await.unwrap();
}

fn reqwest_post() -> http::Method {
    http::Method::POST
}

/// The archive as `subject → session (type) → scan id (type) → file names`,
/// sorted, for comparing two projects.
pub async fn hierarchy(client: &XnatClient, project: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for subject in client.subjects(project).await.unwrap() {
        for session in client.sessions(project, &subject.label).await.unwrap() {
            let scans = client
                .scans(project, &subject.label, &session.label)
                .await
                .unwrap();
            for scan in scans {
                let path = format!(
                    "/data/projects/{project}/subjects/{}/experiments/{}/scans/{}",
                    subject.label, session.label, scan.id
                );
                for file in client
                    .files(&format!("{path}/resources/DICOM"))
                    .await
                    .unwrap()
                {
                    lines.push(format!(
                        "{} / {} ({}) / {} ({}, {}) / {}",
                        subject.label,
                        session.label,
                        session.xsi_type,
                        scan.id,
                        scan.scan_type,
                        scan.xsi_type,
                        file.path
                    ));
                }
            }
        }
    }
    lines.sort();
    lines
}
