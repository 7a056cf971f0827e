//! The `--dicom-listen` receiver: xnatkit-dicom's C-STORE SCP spools every
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
//!
//! Acknowledged means durable: before the C-STORE success is answered, the
//! spooled instance (already fsynced by xnatkit-dicom) is moved into
//! `dicom-spool/by-ae/{hex of the called AE title}/` and that folder fsynced.
//! An instance stays there until its study is imported, so after a crash
//! start-up recovery ([`import_spool`]) imports whatever is left, routed by
//! the called AE title as it would have been.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::path::{Path, PathBuf};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xnatkit_dicom::{InstanceRef, RoutingHints};
pub use xnatkit_receiver::AllowedPeer;
use xnatkit_receiver::{InstanceSink, ReceivedInstance, ScpConfig, StudyAssembler, run_scp};

use super::options::{ImportHandler, ImportOptions};
use super::pipeline::{ProjectScope, import_instances_in};
use crate::access::Caller;
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
) -> Result<(), xnatkit_receiver::Error> {
    let mut scp = ScpConfig::new(config.ae_title.clone(), spool_root(&state));
    // Senders address projects by calling them as AE titles; a receiver
    // pinned to one project answers only to its own title.
    scp.require_called_ae_title = config.project.is_some();
    scp.allowed_peers = config.allowed_peers.clone();
    let assembler = Arc::new(StudyAssembler::new(config.idle));
    let sink = Arc::new(DurableSpool {
        assembler: assembler.clone(),
        by_ae: spool_root(&state).join(BY_AE),
    });
    let consumer = {
        let (state, assembler, shutdown) = (state.clone(), assembler.clone(), shutdown.clone());
        let config = config.clone();
        state.clone().spawn(async move {
            loop {
                tokio::select! {
                    batch = assembler.next_ready() => import_batch(&state, &config, batch).await,
                    () = shutdown.cancelled() => break,
                }
            }
        })
    };
    let served = run_scp(listener, scp, sink, shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    let _ = consumer.await;
    for batch in assembler.flush_all() {
        import_batch(&state, &config, batch).await;
    }
    served
}

/// `DATA/staging/dicom-spool`: where xnatkit-dicom writes received instances.
/// Not below a server's own staging folder: the spool outlives the server
/// (a start imports what the last run acknowledged), and exactly one server
/// on a data folder runs the receiver.
pub fn spool_root(state: &AppState) -> PathBuf {
    state.data_dir().join("staging").join("dicom-spool")
}

/// Folder below the spool root holding acknowledged instances, one
/// subfolder per called AE title.
pub const BY_AE: &str = "by-ae";

/// The spool folder of instances sent to `called_ae` (hex, because AE
/// titles may hold characters no file name should).
fn ae_folder(by_ae: &Path, called_ae: &str) -> PathBuf {
    by_ae.join(hex::encode(called_ae.trim().as_bytes()))
}

/// The receiver's sink: makes each instance durable under its called AE
/// title before it is acknowledged, then hands it to the assembler.
struct DurableSpool {
    assembler: Arc<StudyAssembler>,
    by_ae: PathBuf,
}

impl InstanceSink for DurableSpool {
    async fn instance_received(&self, mut received: ReceivedInstance) -> Result<(), String> {
        let folder = ae_folder(&self.by_ae, &received.called_ae);
        let Some(name) = received.path.file_name().map(ToOwned::to_owned) else {
            return Err(format!("spooled {} has no name", received.path.display()));
        };
        let dest = folder.join(name);
        let source = received.path.clone();
        let target = dest.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&folder)?;
            std::fs::rename(&source, &target)?;
            // The rename (and the file's entry) must survive a crash once
            // the sender has been told the instance is stored.
            std::fs::File::open(&folder)?.sync_all()
        })
        .await
        .map_err(|e| format!("spool task failed: {e}"))?
        .map_err(|e| format!("spooling {}: {e}", dest.display()))?;
        received.path = dest;
        self.assembler.add(received);
        Ok(())
    }
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
    let instances: Vec<InstanceRef> = batch
        .into_iter()
        .map(|r| InstanceRef {
            path: r.path,
            header: r.header,
        })
        .collect();
    let routing = ReceiverRouting::of(config);
    import_received(state, &routing, &called, &calling, instances).await;
}

/// How a receiver routes what it received: its own AE title (a call to it
/// routes by headers; any other called title names a project) or a project
/// it is pinned to.
struct ReceiverRouting<'a> {
    ae_title: &'a str,
    pinned_project: Option<&'a str>,
}

impl<'a> ReceiverRouting<'a> {
    fn of(config: &'a DicomReceiverConfig) -> Self {
        Self {
            ae_title: &config.ae_title,
            pinned_project: config.project.as_deref(),
        }
    }
}

/// Imports instances received for `called` from `calling` as the site admin;
/// failures are logged and the files left where they are.
async fn import_received(
    state: &AppState,
    routing: &ReceiverRouting<'_>,
    called: &str,
    calling: &str,
    instances: Vec<InstanceRef>,
) {
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
    let project = if let Some(fixed) = routing.pinned_project {
        Some(fixed.to_owned())
    } else if called.eq_ignore_ascii_case(routing.ae_title) {
        None
    } else {
        match state.store().project(called).await {
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
    let count = instances.len();
    let spooled: Vec<_> = instances.iter().map(|i| i.path.clone()).collect();
    let scope = match routing.pinned_project {
        Some(fixed) => ProjectScope::Only(fixed.to_owned()),
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

/// Start-up recovery of the receiver: imports every acknowledged instance
/// still in the spool (the server stopped before its study was imported),
/// one batch per called AE title. Instances the receiver had not
/// acknowledged yet (xnatkit-dicom's files outside `by-ae`) are imported too,
/// routed by their headers only: better kept than lost. Returns how many
/// instances were found. `config` is the receiver's configuration (its AE
/// title and pinned project); `None` when the server runs without one.
pub async fn import_spool(state: &AppState, config: Option<&DicomReceiverConfig>) -> usize {
    let routing = match config {
        Some(config) => ReceiverRouting::of(config),
        None => ReceiverRouting {
            ae_title: "XNAT",
            pinned_project: None,
        },
    };
    let our_ae_title = routing.ae_title;
    let root = spool_root(state);
    let by_ae = root.join(BY_AE);
    let mut batches: Vec<(String, Vec<PathBuf>)> = Vec::new();
    if let Ok(folders) = std::fs::read_dir(&by_ae) {
        for folder in folders.flatten() {
            let name = folder.file_name().to_string_lossy().into_owned();
            let called = hex::decode(&name)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_else(|| our_ae_title.to_owned());
            batches.push((called, spooled_files(&folder.path())));
        }
    }
    batches.push((our_ae_title.to_owned(), spooled_files(&root)));
    let mut found = 0;
    for (called, files) in batches {
        if files.is_empty() {
            continue;
        }
        found += files.len();
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        let headers =
            tokio::task::spawn_blocking(move || xnatkit_dicom::read_headers_parallel(&files, jobs))
                .await
                .unwrap_or_default();
        let mut instances = Vec::with_capacity(headers.len());
        for (path, header) in headers {
            match header {
                Ok(header) => instances.push(InstanceRef { path, header }),
                Err(err) => tracing::warn!(
                    "DICOM receiver: spooled {} is not readable ({err}); left in the spool",
                    path.display()
                ),
            }
        }
        if !instances.is_empty() {
            tracing::info!(
                "DICOM receiver: importing {} instances for AE {called} left in the spool",
                instances.len()
            );
            import_received(state, &routing, &called, "spool recovery", instances).await;
        }
    }
    found
}

/// Complete spooled instances directly in `dir` (hidden names are files
/// xnatkit-dicom was still writing).
fn spooled_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
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
    tracing::info!(
        target: crate::NOTICE_TARGET,
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
    // A child of the server's token: the server's stop stops it too.
    let shutdown = state.shutdown().child_token();
    let token = shutdown.clone();
    let task = state.clone().spawn(async move {
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
