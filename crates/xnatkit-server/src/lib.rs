//! # xnatkit-server
//!
//! An XNAT-compatible archive server that real XNAT clients (xnatpy,
//! pyxnat, xnatutils, xnatuploader) use unchanged. It owns:
//!
//! - the REST surface ([`routes`]): connect/auth endpoints, the archive
//!   hierarchy (projects → subjects → experiments → scans → resources →
//!   files) under `/data`, `/data/archive` and `/REST`, users under `/xapi`;
//! - storage ([`store`]): SQLite (embedded default) or PostgreSQL through one
//!   sqlx `AnyPool` with embedded migrations;
//! - the file archive under `DATA/archive/…`, written atomically with MD5
//!   digests via `xnatkit-fileio`;
//! - security: argon2 password hashes, Basic auth, `JSESSIONID` sessions,
//!   alias tokens, lockout, and project permissions decided in [`access`];
//! - DICOM ingestion ([`import`], [`prearchive`]): `/data/services/import`,
//!   the prearchive under `DATA/prearchive/…`, `/data/services/dicomdump`,
//!   and the C-STORE receiver started by [`ServerConfig::dicom_receiver`];
//! - pipelines ([`engine`]): XNAT's Container Service API (commands,
//!   launches, containers, logs, kill), a job queue in the database run by
//!   a local worker pool, workflows, runs on archive.
//!
//! - the web interface ([`web`]): server-rendered pages under `/app/`.
//!
//! Start it with [`run`]; tests can bind `127.0.0.1:0` and pass the listener.
//! [`run`] first runs start-up [`recovery`], so what the server acknowledged
//! before a crash is durable and crash leftovers are gone before it listens.
//! With [`ServerConfig::tls`] set it serves HTTPS ([`tls`]), else plain HTTP;
//! either way slow clients are bounded by [`http_limits`].

pub mod access;
pub mod archive;
pub mod archive_email;
pub mod auth;
pub mod config;
pub mod crash;
pub mod credential_cache;
pub mod dicomweb;
pub mod engine;
pub mod error;
pub mod file_moves;
pub mod http_limits;
pub mod import;
pub mod params;
pub mod passwords;
pub mod prearchive;
pub mod recovery;
pub mod routes;
pub mod schema;
pub mod state;
pub mod store;
pub mod tls;
pub mod user_admin;
pub mod viewer;
pub mod web;

use std::future::Future;
use std::time::Duration;

pub use config::ServerConfig;
pub use error::{ApiError, ServerError};
pub use routes::app;
pub use state::{AppState, StartupReport};

/// The `tracing` target of the start-up lines meant for the operator (the
/// listening addresses, a generated admin password). The server never
/// prints; a front end shows these events as plain lines, whatever its log
/// filter (the `xnatkit` binary does).
pub const NOTICE_TARGET: &str = "xnatkit_server::notice";

/// How often idle sessions are swept from the database.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How long a stop waits for background work (archiving, commits, sweeps)
/// to finish before it gives up on it; what is left then is recovered by
/// the next start like after a crash.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

/// Opens the state for `config` and serves on `listener` until `shutdown`
/// completes, then finishes in-flight requests and closes the database.
pub async fn run(
    listener: tokio::net::TcpListener,
    mut config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Bad TLS files stop the start before anything touches the database.
    let tls = match &config.tls {
        Some(files) => Some(tls::load(files).await?),
        None => None,
    };
    // A missing OHIF folder or a taken port also stop the start early.
    let ohif = match &config.ohif {
        Some(ohif) => {
            let site = viewer::OhifSite::load(ohif, &config.site_id).await?;
            let listener = tokio::net::TcpListener::bind(ohif.listen)
                .await
                .map_err(|source| ServerError::OhifListen {
                    addr: ohif.listen,
                    source,
                })?;
            Some((std::sync::Arc::new(site), listener))
        }
        None => None,
    };
    // The bound address (a port 0 is now a real one): pages link to it.
    if let (Some(ohif), Some((_, listener))) = (&mut config.ohif, &ohif) {
        ohif.listen = listener.local_addr().map_err(ServerError::Serve)?;
    }
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if config.site_url.is_none() {
        config.site_url = Some(format!("{scheme}://{addr}"));
    }
    let (state, report) = AppState::open(config).await?;
    // Before anything listens: crash leftovers are rolled back or forward
    // and acknowledged C-STORE instances imported (see `recovery`).
    recovery::recover(&state).await?;
    // Operator-facing start-up lines are notices: the generated password is
    // shown exactly once, and scripts wait for the "listening on" line, so
    // the binary shows them whatever the log filter is.
    if let Some(password) = &report.generated_admin_password {
        tracing::warn!(
            target: NOTICE_TARGET,
            "created site admin 'admin' with generated password: {password} (shown once; set XNATKIT_ADMIN_PASSWORD to choose it)"
        );
    }
    tracing::info!(target: NOTICE_TARGET, "listening on {scheme}://{addr}");
    let dicom_receiver = match state.config().dicom_receiver.clone() {
        Some(dicom) => Some(import::start_receiver(state.clone(), dicom).await?),
        None => None,
    };

    // Built-in commands registered, jobs of dead workers failed, then the
    // queue's worker starts.
    engine::worker::start(&state)
        .await
        .map_err(|e| ServerError::Recovery(format!("pipeline engine: {e}")))?;
    state.spawn(sweep_sessions(state.clone()));
    state.spawn(prearchive::sweep::sweep_receiving(state.clone()));
    state.spawn(engine::events::settle_rest_uploads(state.clone()));
    let header_read_timeout = state.config().header_read_timeout;
    let body_idle_timeout = state.config().body_idle_timeout;
    let router = http_limits::limit_bodies(app(state.clone()), body_idle_timeout);
    // One stop for both listeners.
    let stop = tokio_util::sync::CancellationToken::new();
    let stopper = stop.clone();
    let stop_on_shutdown = tokio::spawn(async move {
        shutdown.await;
        stopper.cancel();
    });
    let viewer = ohif.map(|(site, listener)| {
        let router = http_limits::limit_bodies(viewer::app(state.clone(), site), body_idle_timeout);
        let addr = listener.local_addr().ok();
        if let Some(addr) = addr {
            tracing::info!(target: NOTICE_TARGET, "OHIF viewer on {scheme}://{addr}/");
        }
        let tls = tls.clone();
        let stop = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            match tls {
                None => http_limits::serve_plain(listener, router, header_read_timeout, stop).await,
                Some(rustls) => {
                    tls::serve(listener, router, rustls, header_read_timeout, stop).await
                }
            }
        })
    });
    let main_stop = stop.clone().cancelled_owned();
    let mut served = match tls {
        None => http_limits::serve_plain(listener, router, header_read_timeout, main_stop).await,
        Some(rustls) => tls::serve(listener, router, rustls, header_read_timeout, main_stop).await,
    };
    // The main listener ended (stop, or failure): the viewer ends with it.
    stop.cancel();
    stop_on_shutdown.abort();
    if let Some(viewer) = viewer {
        let viewer_served = viewer
            .await
            .unwrap_or_else(|err| Err(std::io::Error::other(err.to_string())));
        if served.is_ok() {
            served = viewer_served;
        }
    }
    // Cooperative stop: the sweeps end at their next tick, the receiver
    // imports what it holds, and work that outlives its request finishes.
    state.shutdown().cancel();
    if let Some(receiver) = dicom_receiver {
        receiver.stop().await;
    }
    state.tasks().close();
    let finished = tokio::time::timeout(SHUTDOWN_WAIT, state.tasks().wait())
        .await
        .is_ok();
    if !finished {
        tracing::warn!(
            "{} background task(s) still running {}s after the stop began; stopping without them (the next start recovers their work)",
            state.tasks().len(),
            SHUTDOWN_WAIT.as_secs()
        );
    }
    state.store().close().await;
    if served.is_ok() && finished {
        // Only a stop that got here wrote nothing half-way: the next start
        // may skip walking the archive (see `recovery`).
        if let Err(err) = recovery::mark_clean_shutdown(&state) {
            tracing::warn!(
                "could not record the clean stop ({err}); the next start walks the archive"
            );
        }
    }
    // Last: the marker above must not land beside a server that started
    // after the lock was given up, and no other server may recover this
    // one's leftovers while it still writes.
    state.release_instance().await;
    state.release_data_dir();
    served.map_err(ServerError::Serve)
}

async fn sweep_sessions(state: AppState) {
    let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
    let shutdown = state.shutdown().clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let timeout_ms =
            i64::try_from(state.config().session_timeout.as_millis()).unwrap_or(i64::MAX);
        if let Err(err) = state
            .store()
            .expire_http_sessions(store::now_ms().saturating_sub(timeout_ms))
            .await
        {
            tracing::warn!("sweeping idle sessions failed: {err}");
        }
    }
}
