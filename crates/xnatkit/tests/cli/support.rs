//! The CLI tests' harness: a real `xnatkit serve` (through
//! `xnatkit_test_support::serve`, on a port it picks itself) with a temp
//! data folder, a user and a project filled with generated CT sessions, and
//! a hermetic environment for running the CLI against it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use xnatkit_client::archive::RemoteFile;
use xnatkit_client::sample::{
    SampleScan, SampleSession, SampleSubject, ensure_project, upload_sample,
};
use xnatkit_client::{ClientOptions, Credentials, Method, Request, RequestBody, XnatClient};
pub use xnatkit_test_support::files::{files_below, md5_file};
use xnatkit_test_support::serve::ServeProcess;

pub const BIN: &str = env!("CARGO_BIN_EXE_xnatkit");

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}{nanos:09}", std::process::id())
}

/// A running server; stopped (killed) on drop.
pub struct TestServer {
    process: Option<ServeProcess>,
    pub url: String,
    pub address: SocketAddr,
    pub admin_password: String,
    pub dir: tempfile::TempDir,
    /// The CA the library clients of this harness trust (HTTPS servers).
    pub ca_bundle: Option<PathBuf>,
}

/// PEM files for [`TestServer::start_tls`].
pub struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    /// The CA that signed `cert`, trusted by the harness's own clients.
    pub ca: &'a Path,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    /// `xnatkit serve` with extra options (e.g. `--executor slurm`).
    pub fn start_args(extra: &[&str]) -> Self {
        Self::start_with(None, extra)
    }

    /// `xnatkit serve --tls-cert --tls-key`, announcing `https://`.
    pub fn start_tls(tls: &TlsFiles<'_>) -> Self {
        Self::start_with(Some(tls), &[])
    }

    fn start_with(tls: Option<&TlsFiles<'_>>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin_password = unique("Adm1n-");
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .args(extra)
            .env("XNATKIT_ADMIN_PASSWORD", &admin_password);
        if let Some(tls) = tls {
            command
                .arg("--tls-cert")
                .arg(tls.cert)
                .arg("--tls-key")
                .arg(tls.key);
        }
        let process = ServeProcess::spawn(command, &dir.path().join("server.log"), false);
        assert_eq!(process.scheme, if tls.is_some() { "https" } else { "http" });
        Self {
            url: process.url(),
            address: process.http,
            process: Some(process),
            admin_password,
            dir,
            ca_bundle: tls.map(|t| t.ca.to_owned()),
        }
    }

    fn options(&self) -> ClientOptions {
        ClientOptions {
            ca_bundle: self.ca_bundle.clone(),
            ..ClientOptions::default()
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Kills the server process (to simulate a crash).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    pub async fn admin(&self) -> XnatClient {
        XnatClient::connect(
            &self.url,
            Credentials::Password {
                user: "admin".into(),
                password: self.admin_password.clone(),
            },
            self.options(),
        )
        .await
        .unwrap()
    }

    /// Creates a user; returns (name, password).
    pub async fn create_user(&self) -> (String, String) {
        let name = unique("user");
        let password = unique("Pw-");
        let body = format!(
            r#"{{"username":"{name}","password":"{password}","email":"{name}@example.org","firstName":"Test","lastName":"User","enabled":true,"verified":true}}"#
        );
        let admin = self.admin().await;
        admin
            .send(
                &Request::new(Method::POST, "/xapi/users", "user")
                    .body(RequestBody::Bytes(body.into(), "application/json")),
            )
            .await
            .unwrap();
        (name, password)
    }

    pub async fn user_client(&self, user: &(String, String)) -> XnatClient {
        XnatClient::connect(
            &self.url,
            Credentials::Password {
                user: user.0.clone(),
                password: user.1.clone(),
            },
            self.options(),
        )
        .await
        .unwrap()
    }

    /// A project owned by `user` holding `subjects`.
    pub async fn project_with(
        &self,
        user: &(String, String),
        subjects: &[SampleSubject],
    ) -> String {
        let project = unique("PRJ");
        let client = self.user_client(user).await;
        ensure_project(&client, &project).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        upload_sample(&client, &project, subjects, work.path(), 8)
            .await
            .unwrap();
        project
    }

    /// Every file of a scan as the server lists it.
    pub async fn files_of(&self, user: &(String, String), path: &str) -> Vec<RemoteFile> {
        self.user_client(user).await.files(path).await.unwrap()
    }
}

/// A CLI invocation isolated from the developer's own setup: config folder
/// and netrc inside `home`, no XNAT_* variables.
/// Subjects with one CT session each (`LABEL_CT1`, 2024-03-01) holding one
/// scan `2` of `scan_type` with `slices` slices of `side`×`side` 16-bit pixels.
pub fn ct_subjects(
    labels: &[&str],
    scan_type: &str,
    slices: usize,
    side: u16,
) -> Vec<SampleSubject> {
    labels
        .iter()
        .map(|label| SampleSubject {
            label: (*label).to_owned(),
            sessions: vec![SampleSession {
                label: format!("{label}_CT1"),
                date: "2024-03-01".into(),
                scans: vec![SampleScan {
                    id: "2".into(),
                    scan_type: scan_type.into(),
                    slices,
                    side,
                }],
            }],
        })
        .collect()
}

pub fn cli(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    hermetic(&mut cmd, home);
    cmd
}

/// The environment of [`cli`] for a command that runs the CLI itself
/// (e.g. through `unshare`).
pub fn hermetic(cmd: &mut Command, home: &Path) {
    cmd.env("XNATKIT_CONFIG_DIR", home.join("config"))
        .env("NETRC", home.join("netrc"))
        .env("HOME", home)
        .env_remove("XNAT_HOST")
        .env_remove("XNAT_USER")
        .env_remove("XNAT_PASS")
        .env_remove("XNATKIT_LOG")
        .stdin(Stdio::null());
}

/// Registers a command-line command with a scan-level wrapper enabled in
/// `project`; returns the wrapper ID.
pub async fn command_line_wrapper(
    client: &XnatClient,
    project: &str,
    name: &str,
    line: &str,
) -> i64 {
    let command = serde_json::json!({
        "name": name, "type": "xnatkit", "command-line": line,
        "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "writable": true, "path": "/output"}],
        "outputs": [{"name": "o", "mount": "out"}],
        "xnat": [{"name": format!("{name}-scan"), "contexts": ["xnat:imageScanData"],
            "external-inputs": [{"name": "scan", "type": "Scan"}],
            "derived-inputs": [{"name": "d", "type": "Resource", "matcher": "@.label == 'DICOM'",
                "derived-from-wrapper-input": "scan", "provides-files-for-command-mount": "in"}],
            "output-handlers": [{"name": "h", "type": "Resource", "accepts-command-output": "o",
                "as-a-child-of": "scan", "label": name.to_uppercase()}]}]
    });
    client
        .send(
            &Request::new(Method::POST, "/xapi/commands", "command").body(RequestBody::Bytes(
                command.to_string().into(),
                "application/json",
            )),
        )
        .await
        .unwrap();
    let commands = client.commands().await.unwrap();
    let found = commands.iter().find(|c| c.name == name).unwrap();
    let (cid, wid) = (found.id.unwrap(), found.xnat[0].id.unwrap());
    client
        .set_wrapper_enabled(cid, wid, None, true)
        .await
        .unwrap();
    client
        .set_wrapper_enabled(cid, wid, Some(project), true)
        .await
        .unwrap();
    wid
}
