//! The DICOM C-STORE receiver (SCP), on dicom-ul's async upper layer.
//!
//! [`run_scp`] accepts associations until shutdown, answers C-ECHO, and for every
//! C-STORE of a storage SOP class streams the data set into `spool_dir` (our file
//! meta group + the data set exactly as received, in its negotiated transfer
//! syntax), fsyncs it, parses the header and hands a [`ReceivedInstance`] to the
//! [`InstanceSink`]. [`StudyAssembler`] is a sink that groups instances into
//! studies and releases each study once it has been quiet for a while.
//!
//! Associations are bounded by [`ScpConfig::max_associations`]: an extra one waits
//! up to [`ScpConfig::association_wait`] for a free slot, then is rejected with
//! A-ASSOCIATE-RJ (transient, local limit exceeded), which senders retry later.
//! [`ScpConfig::allowed_peers`] limits who may associate at all.

mod assembler;
mod association;
mod dimse;
mod negotiation;
mod peers;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

pub use assembler::{DEFAULT_STUDY_IDLE, StudyAssembler};
pub use peers::{AllowedPeer, BadPeer};

use crate::error::Error;
use crate::header::DicomHeader;

/// Settings of the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpConfig {
    /// Our AE title (XNAT's default receiver is `XNAT`).
    pub ae_title: String,
    /// Reject associations whose called AE title is not ours (as XNAT's receiver does).
    pub require_called_ae_title: bool,
    /// When not empty, only these peers may associate; anyone else is
    /// rejected with A-ASSOCIATE-RJ (permanent, service user, "calling AE
    /// title not recognized" — or "no reason given" for a list of hosts only).
    pub allowed_peers: Vec<AllowedPeer>,
    /// Associations served at once.
    pub max_associations: usize,
    /// How long an association beyond the limit waits for a slot before rejection.
    pub association_wait: Duration,
    /// Where received instances are written; created if missing. The sink owns
    /// the files it is given.
    pub spool_dir: PathBuf,
    /// Largest PDU we accept (bytes).
    pub max_pdu: u32,
    /// Longest silence from the peer before the association is dropped.
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// On shutdown, how long running associations may take to finish.
    pub shutdown_grace: Duration,
    /// Private storage SOP classes to accept besides the standard ones.
    pub extra_storage_sop_classes: Vec<String>,
}

/// Siemens CSA Non-Image Storage: private, but sent by every Siemens MR scanner.
pub const SIEMENS_CSA_NON_IMAGE_STORAGE: &str = "1.3.12.2.1107.5.9.1";

impl ScpConfig {
    /// Defaults: 16 associations, 10 s wait for a slot, 128 KiB PDUs, 60 s timeouts.
    pub fn new(ae_title: impl Into<String>, spool_dir: impl Into<PathBuf>) -> Self {
        ScpConfig {
            ae_title: ae_title.into(),
            require_called_ae_title: true,
            allowed_peers: Vec::new(),
            max_associations: 16,
            association_wait: Duration::from_secs(10),
            spool_dir: spool_dir.into(),
            max_pdu: 131_072,
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            extra_storage_sop_classes: vec![SIEMENS_CSA_NON_IMAGE_STORAGE.to_owned()],
        }
    }
}

/// One instance received and spooled.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedInstance {
    /// The spooled file (complete and fsynced); the sink now owns it.
    pub path: PathBuf,
    pub header: DicomHeader,
    /// AE title of the sender.
    pub calling_ae: String,
    /// AE title the sender called (ours, unless any title is accepted).
    pub called_ae: String,
    pub remote_addr: SocketAddr,
}

/// What the server plugs into the receiver.
pub trait InstanceSink: Send + Sync + 'static {
    /// Called once per stored instance. `Err(reason)` makes the receiver answer the
    /// C-STORE with a failure status (0xA700) and delete the spooled file.
    fn instance_received(
        &self,
        received: ReceivedInstance,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Serves associations from `listener` until `shutdown` resolves, then lets running
/// associations finish (up to [`ScpConfig::shutdown_grace`]) and returns.
pub async fn run_scp<S: InstanceSink>(
    listener: TcpListener,
    config: ScpConfig,
    sink: Arc<S>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    tokio::fs::create_dir_all(&config.spool_dir)
        .await
        .map_err(|source| Error::Spool {
            path: config.spool_dir.clone(),
            source,
        })?;
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_associations.max(1)));
    let mut running = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        info!(ae_title = %config.ae_title, %addr, "DICOM receiver listening");
    }

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    running.spawn(association::serve_connection(
                        stream,
                        remote,
                        Arc::clone(&config),
                        Arc::clone(&sink),
                        Arc::clone(&slots),
                    ));
                }
                Err(err) if is_transient_accept_error(&err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("DICOM receiver: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(source) => return Err(Error::Accept { source }),
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }

    drop(listener);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "DICOM receiver: {} associations still running after {:?}; aborting them",
            running.len(),
            config.shutdown_grace
        );
        running.shutdown().await;
    }
    Ok(())
}

fn is_transient_accept_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut
    ) || err
        .raw_os_error()
        .is_some_and(|code| code == 24 || code == 23) // EMFILE, ENFILE
}
