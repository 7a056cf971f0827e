//! Options and helpers shared by the client subcommands: which server, who
//! is logging in, TLS trust, and printing tables or JSON on stdout.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use xnatkit_client::auth::{AuthInput, resolve_credentials};
use xnatkit_client::{ClientOptions, XnatClient};

/// How to reach and log in to the XNAT server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// XNAT server URL (default: $XNAT_HOST, or the server of your only
    /// stored `xnatkit login`).
    #[arg(long, value_name = "URL", global = true)]
    pub server: Option<String>,
    /// User name (default: $XNAT_USER). Without a user, a stored login token
    /// or a ~/.netrc entry for the server's host:port is used. The password
    /// comes from --password-stdin, $XNAT_PASS, ~/.netrc, or a prompt; it is
    /// never taken from the command line.
    #[arg(short = 'u', long, value_name = "USER", global = true)]
    pub user: Option<String>,
    /// Read the password from the first line of stdin (for scripts). When
    /// stdin is not a terminal this happens anyway if a password is needed.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// Extra CA certificates (PEM) to trust, for servers with a private CA.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_bundle: Option<PathBuf>,
}

fn read_stdin_line() -> Option<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    (!line.is_empty()).then_some(line)
}

impl ServerArgs {
    /// Resolves credentials (prompting on a terminal) and logs in.
    pub async fn connect(&self) -> anyhow::Result<XnatClient> {
        let password = if self.password_stdin {
            Some(read_stdin_line().context("--password-stdin: no password on stdin")?)
        } else {
            None
        };
        let input = AuthInput {
            server: self.server.clone(),
            user: self.user.clone(),
            password,
        };
        let prompt = |server: &str, user: &str| -> Option<String> {
            if std::io::stdin().is_terminal() {
                rpassword::prompt_password(format!("Password for {user} at {server}: ")).ok()
            } else {
                read_stdin_line()
            }
        };
        let (server, credentials, source) = resolve_credentials(&input, &prompt)?;
        tracing::debug!(%server, user = credentials.user(), ?source, "connecting");
        let options = ClientOptions {
            ca_bundle: self.ca_bundle.clone(),
            ..ClientOptions::default()
        };
        Ok(XnatClient::connect(&server, credentials, options).await?)
    }
}

/// Prints rows as aligned columns (header first) on stdout.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let mut line = |cells: Vec<&str>| -> std::io::Result<()> {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                write!(out, "{cell}")?;
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                write!(out, "{cell}{}  ", " ".repeat(pad))?;
            }
        }
        writeln!(out)
    };
    line(headers.to_vec())
        .and_then(|()| {
            rows.iter()
                .try_for_each(|r| line(r.iter().map(String::as_str).collect()))
        })
        .or_else(ignore_broken_pipe)
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").or_else(ignore_broken_pipe)
}

/// `xnatkit ls | head` must not fail with "broken pipe".
fn ignore_broken_pipe(err: std::io::Error) -> anyhow::Result<()> {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(err).context("cannot write to stdout")
    }
}

/// Human-readable byte count.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A flag set by the first Ctrl-C (finish what is in flight, start nothing
/// new); a second Ctrl-C exits at once, leaving `.part` files to resume.
pub fn cancel_on_ctrl_c() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing files in flight; press Ctrl-C again to stop now");
            set.store(true, Ordering::Relaxed);
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopped; run the same command again to resume");
                std::process::exit(130);
            }
        }
    });
    flag
}
