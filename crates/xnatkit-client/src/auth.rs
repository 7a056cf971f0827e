//! Finding credentials for a server, in the order users of xnatpy and
//! xnatutils expect: explicit user (+ password from stdin, `XNAT_PASS`,
//! `.netrc` or a prompt), then a token stored by `xnatkit login`, then a
//! `.netrc` entry for `host:port`.

use crate::client::{Credentials, normalize_server};
use crate::error::{ClientError, Result};
use crate::netrc::{Netrc, default_netrc_path};
use crate::tokens::{TokenStore, tokens_path};

pub const ENV_HOST: &str = "XNAT_HOST";
pub const ENV_USER: &str = "XNAT_USER";
pub const ENV_PASS: &str = "XNAT_PASS";

/// What the user gave on the command line.
#[derive(Debug, Clone, Default)]
pub struct AuthInput {
    pub server: Option<String>,
    pub user: Option<String>,
    /// A password read from stdin (`--password-stdin`).
    pub password: Option<String>,
}

/// Where the credentials came from (for `-v` logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Given,
    Environment,
    Netrc,
    StoredToken,
    Prompt,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

use xnatkit_model::now_ms;

/// Picks the server: given, `XNAT_HOST`, or the only stored login.
pub fn resolve_server(given: Option<&str>) -> Result<String> {
    if let Some(s) = given.map(str::to_owned).or_else(|| env(ENV_HOST)) {
        return normalize_server(&s);
    }
    let store = TokenStore::load(&tokens_path()?)?;
    let mut servers = store.servers.keys();
    match (servers.next(), servers.next()) {
        (Some(only), None) => Ok(only.clone()),
        _ => Err(ClientError::Invalid(
            "no server given: pass --server URL or set XNAT_HOST".into(),
        )),
    }
}

/// Resolves server and credentials. `prompt(server, user)` asks for a
/// password interactively and returns `None` when it cannot (no terminal).
pub fn resolve_credentials(
    input: &AuthInput,
    prompt: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<(String, Credentials, CredentialSource)> {
    let server = resolve_server(input.server.as_deref())?;
    let url = url::Url::parse(&server).map_err(|e| ClientError::InvalidServerUrl {
        url: server.clone(),
        reason: e.to_string(),
    })?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port();
    let netrc = || -> Netrc {
        default_netrc_path()
            .and_then(|p| match Netrc::read(&p) {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "cannot read .netrc; ignoring it");
                    None
                }
            })
            .unwrap_or_default()
    };
    let user = input.user.clone().or_else(|| env(ENV_USER));
    if let Some(user) = user {
        let (password, source) = if let Some(p) = &input.password {
            (Some(p.clone()), CredentialSource::Given)
        } else if let Some(p) = env(ENV_PASS) {
            (Some(p), CredentialSource::Environment)
        } else if let Some(p) = netrc()
            .find(&host, port, Some(&user))
            .filter(|e| e.login.as_deref() == Some(user.as_str()))
            .and_then(|e| e.password.clone())
        {
            (Some(p), CredentialSource::Netrc)
        } else {
            (prompt(&server, &user), CredentialSource::Prompt)
        };
        let password = password.ok_or_else(|| {
            ClientError::Invalid(format!(
                "no password for {user:?} at {server}: use --password-stdin, set {ENV_PASS}, or run in a terminal to be prompted"
            ))
        })?;
        return Ok((server, Credentials::Password { user, password }, source));
    }
    let store = TokenStore::load(&tokens_path()?)?;
    if let Some(token) = store.get(&server) {
        if token.is_expired(now_ms()) {
            tracing::warn!(%server, "the stored login has expired; run `xnatkit login` again");
        } else {
            return Ok((
                server,
                Credentials::Token {
                    user: token.user.clone(),
                    alias: token.alias.clone(),
                    secret: token.secret.clone(),
                },
                CredentialSource::StoredToken,
            ));
        }
    }
    if let Some(entry) = netrc().find(&host, port, None)
        && let (Some(user), Some(password)) = (entry.login.clone(), entry.password.clone())
    {
        return Ok((
            server,
            Credentials::Password { user, password },
            CredentialSource::Netrc,
        ));
    }
    Err(ClientError::NoCredentials { server })
}
