//! `xnatkit login` / `xnatkit logout`: exchange a password (asked once) for
//! an XNAT alias token stored in a private file, and give it back.

use std::process::ExitCode;

use anyhow::Context;
use xnatkit_client::auth::resolve_server;
use xnatkit_client::tokens::{StoredToken, TokenStore, tokens_path};

use super::common::{ConnectionArgs, ServerArgs};
use crate::printer::Printer;

/// Log in once and store an alias token (never the password) for later commands.
///
/// The password is prompted for on a terminal; otherwise it is read from the
/// first line of stdin (or pass --password-stdin explicitly), so scripts can
/// run `printf '%s\n' "$PW" | xnatkit login --server URL -u USER`.
/// The token is kept in tokens.json (mode 0600) in the user config folder
/// ($XNATKIT_CONFIG_DIR overrides it).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

/// Invalidate the stored token on the server and delete it locally.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
}

use xnatkit_model::now_ms;

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    if args.server.user.is_none() && std::env::var_os("XNAT_USER").is_none() {
        anyhow::bail!("login needs a user: pass -u USER (or set XNAT_USER)");
    }
    let client = args.server.connect().await?;
    let token = client
        .issue_token()
        .await
        .context("the server would not issue an alias token")?;
    let path = tokens_path()?;
    let mut store = TokenStore::load(&path)?;
    store.servers.insert(
        client.server().to_owned(),
        StoredToken {
            user: client.user().to_owned(),
            alias: token.alias,
            secret: token.secret,
            expires_at_ms: token.expires_at_ms,
        },
    );
    store.save(&path)?;
    client.disconnect().await;
    let expiry = match token.expires_at_ms {
        Some(ms) if ms > now_ms() => {
            format!(", valid for about {} hours", (ms - now_ms()) / 3_600_000)
        }
        _ => String::new(),
    };
    printer.status(format!(
        "logged in to {} as {}; token stored in {}{expiry}",
        client.server(),
        client.user(),
        path.display()
    ));
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(args: LogoutArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let server = resolve_server(args.connection.server.as_deref())?;
    let path = tokens_path()?;
    let mut store = TokenStore::load(&path)?;
    let Some(token) = store.servers.remove(&server) else {
        anyhow::bail!(
            "not logged in to {server} (no stored token in {})",
            path.display()
        );
    };
    let credentials = xnatkit_client::Credentials::Token {
        user: token.user.clone(),
        alias: token.alias.clone(),
        secret: token.secret.clone(),
    };
    // Invalidate first, but forget the token locally whatever the server
    // says: an unreachable server must not keep a secret on disk.
    match xnatkit_client::XnatClient::connect(
        &server,
        credentials,
        args.connection.client_options(),
    )
    .await
    {
        Ok(client) => {
            if let Err(err) = client.invalidate_token(&token.alias, &token.secret).await {
                tracing::warn!("could not invalidate the token on the server: {err}");
            }
            client.disconnect().await;
        }
        Err(err) => tracing::warn!("could not reach the server to invalidate the token: {err}"),
    }
    store.save(&path)?;
    printer.status(format!(
        "logged out of {server}; token removed from {}",
        path.display()
    ));
    Ok(ExitCode::SUCCESS)
}
