//! The in-process server of `xnatkit-test-support` (SQLite), seen through
//! `xnatkit-client` as the uploader sees it.

use xnatkit_client::{ClientOptions, Credentials, Request, RequestBody, XnatClient};
pub use xnatkit_test_support::{ADMIN_PASSWORD, TestServer};

pub async fn start() -> TestServer {
    TestServer::start(xnatkit_test_support::Backend::Sqlite)
        .await
        .expect("SQLite is always available")
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
    server.client(&server.admin()).await
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
