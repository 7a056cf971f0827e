//! The `--dicom-listen` receiver: dicom-sort's C-STORE SCP spools every
//! instance into the staging area unchanged; its [`StudyAssembler`] releases
//! a study after `idle` without new instances, and the study goes through
//! the same pipeline as uploads, as the site admin (XNAT's
//! `receivedFileUser`). The project comes from the called AE title when it
//! names a project, else from the headers; the project's `prearchive_code`
//! decides between prearchive and archive.
//!
//! Like XNAT's default receiver it trusts its network unless told
//! otherwise: [`DicomReceiverConfig::allowed_peers`] refuses associations
//! from anyone else, and [`DicomReceiverConfig::project`] pins every study
//! to one project whatever the called AE title or the headers say.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use dicom_sort::scp::AllowedPeer;
use dicom_sort::scp::{ReceivedInstance, ScpConfig, StudyAssembler, run_scp};
use dicom_sort::{InstanceRef, RoutingHints};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::options::{ImportHandler, ImportOptions};
use super::pipeline::{ProjectScope, import_instances_in};
use crate::auth::Caller;
use crate::state::AppState;

/// Settings of `xnatkit serve --dicom-listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomReceiverConfig {
    pub listen: SocketAddr,
    pub ae_title: String,
    /// Quiet time after which a study is imported.
    pub idle: Duration,
    /// Peers (`AE`, `IP`, `AE@IP`) allowed to associate; empty: anyone.
    pub allowed_peers: Vec<AllowedPeer>,
    /// Every study goes to this project (or, if it does not exist, to
    /// Unassigned); `None`: routed by called AE title and headers.
    pub project: Option<String>,
}

impl DicomReceiverConfig {
    /// A receiver open to anyone, routing by AE title and headers.
    pub fn new(listen: SocketAddr, ae_title: impl Into<String>, idle: Duration) -> Self {
        Self {
            listen,
            ae_title: ae_title.into(),
            idle,
            allowed_peers: Vec::new(),
            project: None,
        }
    }
}

/// Serves C-ECHO / C-STORE on `listener` until `shutdown` is cancelled,
/// importing each study once it has been quiet; at shutdown the studies
/// still collecting are imported at once.
pub async fn run_receiver(
    state: AppState,
    listener: TcpListener,
    config: DicomReceiverConfig,
    shutdown: CancellationToken,
) -> Result<(), dicom_sort::Error> {
    let mut scp = ScpConfig::new(
        config.ae_title.clone(),
        state.staging_root().join("dicom-spool"),
    );
    // Senders address projects by calling them as AE titles; a receiver
    // pinned to one project answers only to its own title.
    scp.require_called_ae_title = config.project.is_some();
    scp.allowed_peers = config.allowed_peers.clone();
    let assembler = Arc::new(StudyAssembler::new(config.idle));
    let consumer = {
        let (state, assembler, shutdown) = (state.clone(), assembler.clone(), shutdown.clone());
        let config = config.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    batch = assembler.next_ready() => import_batch(&state, &config, batch).await,
                    () = shutdown.cancelled() => break,
                }
            }
        })
    };
    let served = run_scp(
        listener,
        scp,
        assembler.clone(),
        shutdown.clone().cancelled_owned(),
    )
    .await;
    shutdown.cancel();
    let _ = consumer.await;
    for batch in assembler.flush_all() {
        import_batch(&state, &config, batch).await;
    }
    served
}

/// Imports one assembled study; failures are logged (the files then stay
/// in the prearchive or the spool, never silently deleted).
async fn import_batch(
    state: &AppState,
    config: &DicomReceiverConfig,
    batch: Vec<ReceivedInstance>,
) {
    let Some(first) = batch.first() else { return };
    let called = first.called_ae.trim().to_owned();
    let calling = first.calling_ae.trim().to_owned();
    let caller = match state.store().user("admin").await {
        Ok(user) => Caller {
            user,
            session_id: None,
        },
        Err(err) => {
            tracing::error!("DICOM receiver: cannot load the importing user: {err}");
            return;
        }
    };
    let project = if let Some(fixed) = &config.project {
        Some(fixed.clone())
    } else if called.eq_ignore_ascii_case(&config.ae_title) {
        None
    } else {
        match state.store().project(&called).await {
            Ok(found) => found.map(|p| p.id),
            Err(err) => {
                tracing::warn!("DICOM receiver: project lookup for AE {called}: {err}");
                None
            }
        }
    };
    let options = ImportOptions {
        hints: RoutingHints {
            project,
            ..RoutingHints::default()
        },
        handler: ImportHandler::DicomZip,
        source: format!("C-STORE from {calling} to {called}"),
        ..ImportOptions::default()
    };
    let count = batch.len();
    let instances: Vec<InstanceRef> = batch
        .into_iter()
        .map(|r| InstanceRef {
            path: r.path,
            header: r.header,
        })
        .collect();
    let spooled: Vec<_> = instances.iter().map(|i| i.path.clone()).collect();
    let scope = match &config.project {
        Some(fixed) => ProjectScope::Only(fixed.clone()),
        None => ProjectScope::Any,
    };
    match import_instances_in(state, &caller, &options, &scope, instances).await {
        Ok(uris) => tracing::info!(
            "DICOM receiver: {count} instances from {calling} stored as {}",
            uris.join(", ")
        ),
        Err(err) => {
            let left = spooled.iter().filter(|p| p.exists()).count();
            tracing::error!(
                "DICOM receiver: importing {count} instances from {calling} failed: {err} ({left} left in the spool folder)"
            );
        }
    }
}

/// A running receiver; [`ReceiverHandle::stop`] ends it.
#[derive(Debug)]
pub struct ReceiverHandle {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Binds `config.listen` and runs [`run_receiver`] in the background.
pub async fn start_receiver(
    state: AppState,
    config: DicomReceiverConfig,
) -> Result<ReceiverHandle, crate::error::ServerError> {
    let listener = TcpListener::bind(config.listen).await.map_err(|source| {
        crate::error::ServerError::DicomListen {
            addr: config.listen,
            source,
        }
    })?;
    let bound = listener.local_addr().unwrap_or(config.listen);
    // Like the HTTP "listening on" line: scripts wait for it.
    eprintln!(
        "DICOM receiver listening on {bound} as AE {}{}{}",
        config.ae_title,
        match &config.project {
            Some(project) => format!(", storing into project {project}"),
            None => String::new(),
        },
        if config.allowed_peers.is_empty() {
            ", open to any peer (trusted network)".to_owned()
        } else {
            let peers: Vec<String> = config
                .allowed_peers
                .iter()
                .map(ToString::to_string)
                .collect();
            format!(", allowed peers: {}", peers.join(" "))
        }
    );
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        if let Err(err) = run_receiver(state, listener, config, token).await {
            tracing::error!("DICOM receiver stopped: {err}");
        }
    });
    Ok(ReceiverHandle { shutdown, task })
}

impl ReceiverHandle {
    /// Stops accepting, lets running associations finish, imports what is
    /// still collecting, and returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
