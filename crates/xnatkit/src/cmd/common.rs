//! Options and helpers shared by the client subcommands: which server, who
//! is logging in, TLS trust and network timeouts, in one struct that every
//! command talking to a server flattens in.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use xnatkit_client::auth::{AuthInput, resolve_credentials};
use xnatkit_client::{ClientOptions, XnatClient};

/// How to reach the XNAT server: its URL, TLS trust and network timeouts.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// XNAT server URL (default: $XNAT_HOST, or the server of your only
    /// stored `xnatkit login`).
    #[arg(long, value_name = "URL", global = true)]
    pub server: Option<String>,
    /// Extra CA certificates (PEM) to trust, for servers with a private CA.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_bundle: Option<PathBuf>,
    /// Seconds to wait for a connection to the server.
    #[arg(long, value_name = "SECS", global = true, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
    /// Seconds the server may stay silent in the middle of an answer before
    /// the attempt fails (and is retried where that is safe).
    #[arg(long, value_name = "SECS", global = true, default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout: u64,
}

impl ConnectionArgs {
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            ca_bundle: self.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout),
            read_timeout: Duration::from_secs(self.read_timeout),
            ..ClientOptions::default()
        }
    }
}

/// How to reach and log in to the XNAT server: every command that talks to
/// a server flattens this in, so the options are the same everywhere.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
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
        self.connect_or(None).await
    }

    /// Like [`Self::connect`], with `fallback_server` used when --server is
    /// not given, before $XNAT_HOST (the uploader's workbook names one).
    pub async fn connect_or(&self, fallback_server: Option<&str>) -> anyhow::Result<XnatClient> {
        let password = if self.password_stdin {
            Some(read_stdin_line().context("--password-stdin: no password on stdin")?)
        } else {
            None
        };
        let input = AuthInput {
            server: self
                .connection
                .server
                .clone()
                .or_else(|| fallback_server.map(str::to_owned)),
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
        let options = self.connection.client_options();
        Ok(XnatClient::connect(&server, credentials, options).await?)
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
