//! Support for the several-servers tests: a fresh PostgreSQL database, `N`
//! `xnatkit serve` processes on it and one data folder (each started with
//! `--listen 127.0.0.1:0`, its address read from the "listening on" line it
//! prints), and Debian's nginx in front of them with the site file from
//! `docs/deploy/nginx.conf`.

// Test harness: a failed set-up step should panic with its error.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xnatkit_test_support::ci::{env, skip};
use xnatkit_test_support::serve::ServeProcess;

pub const BIN: &str = env!("CARGO_BIN_EXE_xnatkit");
pub const ADMIN_PASSWORD: &str = "Multi-Adm1n-pw";

/// How long nginx may take to start, and a server to stop.
const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(90);

/// The server-admin PostgreSQL URL from `XNATKIT_TEST_DATABASE_URL`.
pub fn postgres_admin_url() -> Option<String> {
    env(
        "XNATKIT_TEST_DATABASE_URL",
        "a PostgreSQL server-admin URL (the two-server tests need PostgreSQL)",
    )
}

/// Debian's nginx (package `nginx`, installed by scripts/setup-system.sh),
/// in /usr/sbin, which a non-root PATH may lack.
pub fn nginx_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/sbin/nginx");
    if debian.is_file() {
        return Some(debian);
    }
    skip("nginx (Debian package nginx, /usr/sbin/nginx)")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub use xnatkit_test_support::files::{files_below, md5_hex};

/// A database of its own on the test PostgreSQL; dropped with the value.
pub struct Database {
    admin_url: String,
    name: String,
    pub url: String,
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .output()
        .expect("psql (Debian package postgresql-client) is needed");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Database {
    pub fn create(admin_url: &str) -> Self {
        let name = format!(
            "xnatkit_multi_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        psql(admin_url, &format!("CREATE DATABASE \"{name}\""));
        let base = admin_url
            .split_once('?')
            .map_or(admin_url, |(base, _)| base);
        let query = admin_url.split_once('?').map(|(_, q)| q);
        let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
        let url = match query {
            Some(q) => format!("{root}/{name}?{q}"),
            None => format!("{root}/{name}"),
        };
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }

    /// The single number `sql` answers.
    pub fn count(&self, sql: &str) -> i64 {
        psql(&self.url, sql).parse().unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .args([
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// One `xnatkit serve` process.
pub struct Server {
    process: Option<ServeProcess>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Server {
    /// Starts `xnatkit serve` on `--listen 127.0.0.1:0` and returns once it
    /// says where it listens.
    fn start(data: &Path, database: &str, log: &Path) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--db-pool-size", "6"])
            .arg("--data")
            .arg(data)
            .args(["--database", database])
            .env("XNATKIT_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("XNATKIT_CRASH_AT");
        let process = ServeProcess::spawn(command, log, false);
        Self {
            url: process.url(),
            address: process.http.to_string(),
            process: Some(process),
        }
    }

    /// SIGTERM (a graceful stop) and waits for a successful exit.
    fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let pid = process.child().id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            if let Ok(Some(status)) = process.child().try_wait() {
                assert!(
                    status.success(),
                    "xnatkit serve ended with {status}:\n{}",
                    process.log()
                );
                return;
            }
            if Instant::now() > deadline {
                let log = process.log();
                process.kill();
                panic!("xnatkit serve did not stop on SIGTERM:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `N` servers on one fresh database and one data folder.
pub struct Cluster {
    pub servers: Vec<Server>,
    pub data: PathBuf,
    pub database: Database,
}

impl Cluster {
    /// Starts all servers at once (so they also race for creating the
    /// first admin and for start-up recovery) and waits for each.
    pub fn start(admin_url: &str, work: &Path, count: usize) -> Self {
        let database = Database::create(admin_url);
        let data = work.join("data");
        let servers = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..count)
                .map(|n| {
                    let (data, url) = (&data, &database.url);
                    let log = work.join(format!("server-{n}.log"));
                    scope.spawn(move || Server::start(data, url, &log))
                })
                .collect();
            starting
                .into_iter()
                .map(|s| s.join().expect("server start"))
                .collect()
        });
        Self {
            servers,
            data,
            database,
        }
    }

    /// Stops every server gracefully.
    pub fn stop(mut self) {
        for server in &mut self.servers {
            server.stop();
        }
    }
}

/// Debian's nginx, unprivileged, with its prefix, logs and temp folders in
/// its own folder, serving `docs/deploy/nginx.conf` in front of a cluster.
pub struct Nginx {
    child: Option<Child>,
    pub url: String,
    dir: PathBuf,
}

/// The site file of docs/deploy.md, shared with this test.
pub fn deploy_site_file() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy/nginx.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "docs/deploy/nginx.conf must contain `{from}` exactly once"
    );
    text.replacen(from, to, 1)
}

impl Nginx {
    pub fn start(binary: &Path, dir: &Path, cluster: &Cluster) -> Self {
        assert_eq!(cluster.servers.len(), 2, "the site file names two servers");
        std::fs::create_dir_all(dir).unwrap();
        // Workers of an nginx started as root run as nobody, and must be
        // able to reach their temp folders.
        for folder in [dir, dir.parent().unwrap()] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // A port nginx can take: free a moment ago (nginx cannot be handed
        // a bound socket); a lost race shows as nginx failing to start.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut site = deploy_site_file();
        site = replace_once(
            &site,
            "server 127.0.0.1:8081 ",
            &format!("server {} ", cluster.servers[0].address),
        );
        site = replace_once(
            &site,
            "server 127.0.0.1:8082 ",
            &format!("server {} ", cluster.servers[1].address),
        );
        site = replace_once(&site, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        std::fs::write(dir.join("site.conf"), site).unwrap();
        let d = dir.display();
        let main = format!(
            "worker_processes 1;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             log_format upstreams '$request $status $upstream_addr';\n\
             access_log {d}/access.log upstreams;\n\
             client_body_temp_path {d}/client_body;\n\
             proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf;\n\
             }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-g")
            .arg(format!("daemon off; pid {d}/nginx.pid;"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut nginx = Self {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            let exited = nginx
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "nginx did not start ({exited:?}):\n{}\n{}",
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
                    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The upstream addresses nginx sent requests to (its access log).
    pub fn upstreams_used(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGQUIT: the master stops its workers too (a SIGKILL would leave
        // them behind).
        let _ = Command::new("kill")
            .args(["-QUIT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
}
