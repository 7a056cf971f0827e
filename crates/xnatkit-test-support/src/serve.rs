//! `xnatkit serve` as a child process on `--listen 127.0.0.1:0`. The port is
//! learnt from the line the server prints once it is bound
//! (`listening on http://ADDR`, and `DICOM receiver listening on ADDR …`
//! with `--dicom-listen`; see docs/server.md), never picked in advance: a
//! port found free and handed over later can be taken by another test in
//! between.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long start-up (migrations, recovery) may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `xnatkit serve`; killed on drop.
pub struct ServeProcess {
    child: Child,
    /// The bound HTTP address.
    pub http: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The bound C-STORE address, when started with `--dicom-listen`.
    pub dicom: Option<SocketAddr>,
    log: PathBuf,
}

/// What the start-up lines announced.
enum Announced {
    Http(&'static str, SocketAddr),
    Dicom(SocketAddr),
}

fn parse(line: &str) -> Option<Announced> {
    if let Some(rest) = line.strip_prefix("listening on ") {
        let (scheme, addr) = rest.trim().split_once("://")?;
        let scheme = match scheme {
            "http" => "http",
            "https" => "https",
            _ => return None,
        };
        return Some(Announced::Http(scheme, addr.parse().ok()?));
    }
    let rest = line.strip_prefix("DICOM receiver listening on ")?;
    Some(Announced::Dicom(
        rest.split_whitespace().next()?.parse().ok()?,
    ))
}

impl ServeProcess {
    /// Spawns `command` — `xnatkit serve` with its arguments, which must
    /// include `--listen 127.0.0.1:0` (and `--dicom-listen 127.0.0.1:0` when
    /// `dicom`) — with stdout and stderr appended to `log`, and returns once
    /// the listening lines are printed. Panics with the log when the process
    /// exits first.
    pub fn spawn(mut command: Command, log: &Path, dicom: bool) -> ServeProcess {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log handle"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn xnatkit serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // Copies stderr into the log for the test's failure messages, and
        // reports the listening lines; ends with the process.
        std::thread::spawn(move || {
            let mut file = file;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                if let Some(announced) = parse(&line) {
                    let _ = tx.send(announced);
                }
            }
        });
        let mut http = None;
        let mut dicom_addr = None;
        while http.is_none() || (dicom && dicom_addr.is_none()) {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(Announced::Http(scheme, addr)) => http = Some((scheme, addr)),
                Ok(Announced::Dicom(addr)) => dicom_addr = Some(addr),
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!(
                        "xnatkit serve did not announce its address ({status:?}):\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
            }
        }
        let (scheme, http) = http.expect("loop ends with an HTTP address");
        ServeProcess {
            child,
            http,
            scheme,
            dicom: dicom_addr,
            log: log.to_owned(),
        }
    }

    /// `scheme://addr`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.http)
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the process (SIGKILL: a crash) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_parse() {
        assert!(matches!(
            parse("listening on http://127.0.0.1:43117"),
            Some(Announced::Http("http", a)) if a.port() == 43117
        ));
        assert!(matches!(
            parse("listening on https://[::1]:8443"),
            Some(Announced::Http("https", a)) if a.port() == 8443
        ));
        assert!(matches!(
            parse("DICOM receiver listening on 127.0.0.1:4242 as AE XNAT, open to any peer (trusted network)"),
            Some(Announced::Dicom(a)) if a.port() == 4242
        ));
        assert!(parse("GET /data/version 200 1ms -").is_none());
    }
}
