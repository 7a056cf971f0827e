//! Test support: a real `xnatkit serve` on a loopback port with a temp data
//! folder, a user and a project filled with generated CT sessions, and a
//! hermetic environment for running the CLI against it.

// Test harness: a failed set-up step should panic with its error.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use md5::Digest;
use xnatkit_client::archive::RemoteFile;
use xnatkit_client::sample::{
    SampleScan, SampleSession, SampleSubject, ensure_project, upload_sample,
};
use xnatkit_client::{ClientOptions, Credentials, Method, Request, RequestBody, XnatClient};

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
    child: Option<Child>,
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
        Self::start_with(None)
    }

    /// `xnatkit serve --tls-cert --tls-key`; ready once it logs
    /// `listening on https://` and accepts connections.
    pub fn start_tls(tls: &TlsFiles<'_>) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&TlsFiles<'_>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let admin_password = unique("Adm1n-");
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--data"])
            .arg(dir.path().join("data"))
            .args(["--listen", &address.to_string()]);
        if let Some(tls) = tls {
            command
                .arg("--tls-cert")
                .arg(tls.cert)
                .arg("--tls-key")
                .arg(tls.key);
        }
        let child = command
            .env("XNATKIT_ADMIN_PASSWORD", &admin_password)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self {
            child: Some(child),
            url: format!(
                "{}://{address}",
                if tls.is_some() { "https" } else { "http" }
            ),
            address,
            admin_password,
            dir,
            ca_bundle: tls.map(|t| t.ca.to_owned()),
        };
        if tls.is_some() {
            server.wait_listening_tls();
        } else {
            server.wait_ready();
        }
        server
    }

    fn wait_listening_tls(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.log().contains("listening on https://")
                && TcpStream::connect(self.address).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("xnatkit serve (TLS) did not become ready:\n{}", self.log());
    }

    fn options(&self) -> ClientOptions {
        ClientOptions {
            ca_bundle: self.ca_bundle.clone(),
            ..ClientOptions::default()
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(self.address) {
                let _ = s.write_all(b"GET /data/version HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("xnatkit serve did not become ready:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Kills the server process (to simulate a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
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

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
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

/// MD5 hex of a local file.
pub fn md5_hex(path: &Path) -> String {
    hex::encode(md5::Md5::digest(std::fs::read(path).unwrap()))
}

/// All files below `dir` (recursive), sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
