//! One association: negotiation, then C-ECHO and C-STORE requests until release.
//! Data sets are streamed PDV by PDV into a spool file, never held whole in memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dicom_object::FileMetaTableBuilder;
use dicom_ul::association::AsyncServerAssociation;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, AssociationRJServiceUserReason, PDataValue,
    PDataValueType, PresentationContextResultReason, UserIdentity,
};
use dicom_ul::{Pdu, ServerAssociationOptions};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::dimse::{self, Command, status};
use super::negotiation::{acceptable_syntaxes, peek_request, reject_busy};
use super::peers::{self, AllowedPeer};
use super::{InstanceSink, ReceivedInstance, ScpConfig};

/// Our implementation class UID (a fixed UUID-derived UID) and version name, written
/// into the file meta group of every stored instance.
const IMPLEMENTATION_CLASS_UID: &str = "2.25.211524576274591535120440679256192611133";
const IMPLEMENTATION_VERSION_NAME: &str = "XNATKIT_SCP";

/// Accepts associations addressed to our AE title (or to any title when
/// configured so) from an allowed peer.
#[derive(Debug, Clone)]
struct AssociationPolicy {
    require_match: bool,
    allowed_peers: Vec<AllowedPeer>,
    remote: SocketAddr,
}

impl AccessControl for AssociationPolicy {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if !peers::admitted(&self.allowed_peers, calling_ae_title, self.remote.ip()) {
            warn!(remote = %self.remote, calling = calling_ae_title.trim(), "rejecting association: peer not in the allowed list");
            return Err(if self.allowed_peers.iter().any(|p| p.ae_title.is_some()) {
                AssociationRJServiceUserReason::CallingAETitleNotRecognized
            } else {
                AssociationRJServiceUserReason::NoReasonGiven
            });
        }
        if !self.require_match || this_ae_title.trim() == called_ae_title.trim() {
            Ok(())
        } else {
            Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
        }
    }
}

/// Serves one TCP connection from the first byte to the close.
pub(crate) async fn serve_connection<S: InstanceSink>(
    stream: TcpStream,
    remote: SocketAddr,
    config: Arc<ScpConfig>,
    sink: Arc<S>,
    slots: Arc<Semaphore>,
) {
    let proposal = match tokio::time::timeout(config.read_timeout, peek_request(&stream)).await {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => {
            debug!(%remote, "connection closed before an association request");
            return;
        }
        Ok(Err(err)) => {
            warn!(%remote, "unreadable association request: {err}");
            return;
        }
        Err(_) => {
            warn!(%remote, "no association request within {:?}", config.read_timeout);
            return;
        }
    };
    let (proposal, request_len) = proposal;

    // A bounded number of associations run at once; a newcomer waits for a slot
    // for `association_wait`, then is rejected as "local limit exceeded".
    let slot = match tokio::time::timeout(config.association_wait, slots.acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        _ => {
            warn!(%remote, "rejecting association: {} associations already running", config.max_associations);
            if let Err(err) = reject_busy(stream, request_len).await {
                debug!(%remote, "could not send the rejection: {err}");
            }
            return;
        }
    };

    let mut options = ServerAssociationOptions::new()
        .ae_access_control(AssociationPolicy {
            require_match: config.require_called_ae_title,
            allowed_peers: config.allowed_peers.clone(),
            remote,
        })
        .ae_title(config.ae_title.clone())
        .max_pdu_length(config.max_pdu)
        .read_timeout(config.read_timeout)
        .write_timeout(config.write_timeout)
        .strict(false);
    for uid in acceptable_syntaxes(&proposal, &config.extra_storage_sop_classes) {
        options = options.with_abstract_syntax(uid);
    }
    let association = match options.establish_async(stream).await {
        Ok(association) => association,
        Err(err) => {
            info!(%remote, "association not established: {err}");
            return;
        }
    };
    let mut receiver = Receiver::new(association, remote, &config, sink);
    receiver.run().await;
    drop(slot);
}

/// A spool file being written; removed on drop unless it was renamed into place.
struct PartialFile {
    path: PathBuf,
    writer: Option<BufWriter<tokio::fs::File>>,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.writer.is_some() || self.path.exists() {
            // Synchronous on purpose: drop cannot await, and this is one unlink.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

enum State {
    Idle,
    /// Collecting the fragments of a command set.
    Command {
        bytes: Vec<u8>,
    },
    /// Writing the data set of a C-STORE into a spool file.
    Storing {
        command: Command,
        file: PartialFile,
        presentation_context: u8,
    },
    /// Reading past a data set we will not keep; answered with `status`.
    Discarding {
        command: Command,
        status: u16,
        presentation_context: u8,
    },
}

struct Receiver<'c, S> {
    association: AsyncServerAssociation<TcpStream>,
    remote: SocketAddr,
    config: &'c ScpConfig,
    sink: Arc<S>,
    calling_ae: String,
    called_ae: String,
    /// Accepted presentation contexts: id → (abstract syntax, transfer syntax).
    contexts: HashMap<u8, (String, String)>,
}

/// Why the association has to end early.
struct Abort(String);

impl<'c, S: InstanceSink> Receiver<'c, S> {
    fn new(
        association: AsyncServerAssociation<TcpStream>,
        remote: SocketAddr,
        config: &'c ScpConfig,
        sink: Arc<S>,
    ) -> Self {
        use dicom_ul::association::Association as _;
        let contexts = association
            .presentation_contexts()
            .iter()
            .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
            .map(|pc| {
                (
                    pc.id,
                    (
                        pc.abstract_syntax.trim_end_matches(['\0', ' ']).to_owned(),
                        pc.transfer_syntax.trim_end_matches(['\0', ' ']).to_owned(),
                    ),
                )
            })
            .collect();
        let calling_ae = association.peer_ae_title().trim().to_owned();
        let called_ae = association.called_ae_title().trim().to_owned();
        Receiver {
            association,
            remote,
            config,
            sink,
            calling_ae,
            called_ae,
            contexts,
        }
    }

    async fn run(&mut self) {
        debug!(calling = %self.calling_ae, called = %self.called_ae, remote = %self.remote, "association established");
        let mut state = State::Idle;
        loop {
            let pdu = match self.association.receive().await {
                Ok(pdu) => pdu,
                Err(err) => {
                    warn!(calling = %self.calling_ae, remote = %self.remote, "association ended: {err}");
                    return;
                }
            };
            match pdu {
                Pdu::PData { data } => {
                    for value in data {
                        match self.on_value(value, state).await {
                            Ok(next) => state = next,
                            Err(Abort(reason)) => {
                                warn!(calling = %self.calling_ae, remote = %self.remote, "aborting association: {reason}");
                                let _ = self
                                    .association
                                    .send(&Pdu::AbortRQ {
                                        source: AbortRQSource::ServiceProvider(
                                            AbortRQServiceProviderReason::UnexpectedPdu,
                                        ),
                                    })
                                    .await;
                                return;
                            }
                        }
                    }
                }
                Pdu::ReleaseRQ => {
                    let _ = self.association.send(&Pdu::ReleaseRP).await;
                    debug!(calling = %self.calling_ae, "association released");
                    return;
                }
                Pdu::AbortRQ { source } => {
                    info!(calling = %self.calling_ae, "association aborted by the peer: {source:?}");
                    return;
                }
                other => {
                    warn!(calling = %self.calling_ae, "unexpected PDU {}", other.short_description());
                    let _ = self
                        .association
                        .send(&Pdu::AbortRQ {
                            source: AbortRQSource::ServiceProvider(
                                AbortRQServiceProviderReason::UnexpectedPdu,
                            ),
                        })
                        .await;
                    return;
                }
            }
        }
    }

    async fn on_value(&mut self, value: PDataValue, state: State) -> Result<State, Abort> {
        let presentation_context = value.presentation_context_id;
        match (value.value_type.clone(), state) {
            (PDataValueType::Command, State::Idle) => {
                self.on_command_fragment(Vec::new(), value, presentation_context)
                    .await
            }
            (PDataValueType::Command, State::Command { bytes }) => {
                self.on_command_fragment(bytes, value, presentation_context)
                    .await
            }
            (
                PDataValueType::Data,
                State::Storing {
                    command,
                    mut file,
                    presentation_context,
                },
            ) => {
                let write = match file.writer.as_mut() {
                    Some(writer) => writer.write_all(&value.data).await,
                    None => Err(std::io::Error::other("spool file already closed")),
                };
                if let Err(err) = write {
                    warn!("cannot write {}: {err}", file.path.display());
                    let next = State::Discarding {
                        command,
                        status: status::OUT_OF_RESOURCES,
                        presentation_context,
                    };
                    drop(file);
                    return self.after_data(next, value.is_last).await;
                }
                if value.is_last {
                    let status = self.finish_instance(&command, file).await;
                    self.respond(&command, status, presentation_context).await?;
                    Ok(State::Idle)
                } else {
                    Ok(State::Storing {
                        command,
                        file,
                        presentation_context,
                    })
                }
            }
            (PDataValueType::Data, discarding @ State::Discarding { .. }) => {
                self.after_data(discarding, value.is_last).await
            }
            (kind, _) => Err(Abort(format!("{kind:?} fragment out of order"))),
        }
    }

    async fn after_data(&mut self, state: State, is_last: bool) -> Result<State, Abort> {
        match state {
            State::Discarding {
                command,
                status,
                presentation_context,
            } if is_last => {
                self.respond(&command, status, presentation_context).await?;
                Ok(State::Idle)
            }
            other => Ok(other),
        }
    }

    async fn on_command_fragment(
        &mut self,
        mut bytes: Vec<u8>,
        value: PDataValue,
        presentation_context: u8,
    ) -> Result<State, Abort> {
        bytes.extend_from_slice(&value.data);
        if !value.is_last {
            return Ok(State::Command { bytes });
        }
        let command = dimse::decode_command(&bytes).map_err(Abort)?;
        match (command.command_field, command.has_data_set) {
            (dimse::C_ECHO_RQ, _) => {
                self.respond(&command, status::SUCCESS, presentation_context)
                    .await?;
                Ok(State::Idle)
            }
            (dimse::C_STORE_RQ, true) => {
                let Some((_, transfer_syntax)) = self.contexts.get(&presentation_context) else {
                    return Err(Abort(format!(
                        "C-STORE on presentation context {presentation_context}, which was not accepted"
                    )));
                };
                let transfer_syntax = transfer_syntax.clone();
                match self.create_spool_file(&command, &transfer_syntax).await {
                    Ok(file) => Ok(State::Storing {
                        command,
                        file,
                        presentation_context,
                    }),
                    Err(err) => {
                        warn!(
                            "cannot create a spool file in {}: {err}",
                            self.config.spool_dir.display()
                        );
                        Ok(State::Discarding {
                            command,
                            status: status::OUT_OF_RESOURCES,
                            presentation_context,
                        })
                    }
                }
            }
            (_, true) => Ok(State::Discarding {
                command,
                status: status::UNRECOGNIZED_OPERATION,
                presentation_context,
            }),
            (_, false) => {
                self.respond(
                    &command,
                    status::UNRECOGNIZED_OPERATION,
                    presentation_context,
                )
                .await?;
                Ok(State::Idle)
            }
        }
    }

    /// Creates the hidden temporary file and writes preamble, `DICM` and our file
    /// meta group (with the negotiated transfer syntax): the data set that follows
    /// is appended exactly as received.
    async fn create_spool_file(
        &self,
        command: &Command,
        transfer_syntax: &str,
    ) -> std::io::Result<PartialFile> {
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(transfer_syntax)
            .media_storage_sop_class_uid(command.affected_sop_class_uid.as_str())
            .media_storage_sop_instance_uid(command.affected_sop_instance_uid.as_str())
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
            .source_application_entity_title(self.calling_ae.as_str())
            .build()
            .map_err(std::io::Error::other)?;
        let mut head = Vec::with_capacity(400);
        head.extend_from_slice(&[0u8; 128]);
        head.extend_from_slice(b"DICM");
        meta.write(&mut head).map_err(std::io::Error::other)?;

        let path = self
            .config
            .spool_dir
            .join(format!(".{}.partial", uuid::Uuid::new_v4().simple()));
        let mut file = PartialFile { path, writer: None };
        let handle = tokio::fs::File::create(&file.path).await?;
        let mut writer = BufWriter::with_capacity(256 * 1024, handle);
        writer.write_all(&head).await?;
        file.writer = Some(writer);
        Ok(file)
    }

    /// Makes the received instance durable, checks that it parses, moves it to its
    /// final name and hands it to the sink. Returns the DIMSE status to answer.
    async fn finish_instance(&self, command: &Command, mut file: PartialFile) -> u16 {
        let Some(mut writer) = file.writer.take() else {
            return status::OUT_OF_RESOURCES;
        };
        let durable = async {
            writer.flush().await?;
            let handle = writer.into_inner();
            handle.sync_all().await
        };
        if let Err(err) = durable.await {
            warn!("cannot write {}: {err}", file.path.display());
            return status::OUT_OF_RESOURCES;
        }

        let temp_path = file.path.clone();
        let header = match tokio::task::spawn_blocking(move || crate::read_header(&temp_path)).await
        {
            Ok(Ok(header)) => header,
            Ok(Err(err)) => {
                warn!(calling = %self.calling_ae, "received instance {} rejected: {err}", command.affected_sop_instance_uid);
                return status::CANNOT_UNDERSTAND;
            }
            Err(err) => {
                warn!("header reader failed: {err}");
                return status::OUT_OF_RESOURCES;
            }
        };
        if header.sop_instance_uid != command.affected_sop_instance_uid {
            warn!(
                calling = %self.calling_ae,
                "SOP Instance UID in the data set ({}) differs from the C-STORE request ({})",
                header.sop_instance_uid, command.affected_sop_instance_uid
            );
        }

        let final_path = final_name(&self.config.spool_dir, &header.sop_instance_uid);
        if let Err(err) = tokio::fs::rename(&file.path, &final_path).await {
            warn!(
                "cannot move {} to {}: {err}",
                file.path.display(),
                final_path.display()
            );
            return status::OUT_OF_RESOURCES;
        }
        // Renamed: nothing left for the guard to remove.
        drop(file);

        let received = ReceivedInstance {
            path: final_path.clone(),
            header,
            calling_ae: self.calling_ae.clone(),
            called_ae: self.called_ae.clone(),
            remote_addr: self.remote,
        };
        match self.sink.instance_received(received).await {
            Ok(()) => status::SUCCESS,
            Err(reason) => {
                warn!(calling = %self.calling_ae, "archive refused {}: {reason}", final_path.display());
                // The sink did not take the file: do not leave it in the spool.
                let _ = tokio::fs::remove_file(&final_path).await;
                status::OUT_OF_RESOURCES
            }
        }
    }

    async fn respond(
        &mut self,
        command: &Command,
        status: u16,
        presentation_context: u8,
    ) -> Result<(), Abort> {
        let data = dimse::encode_response(command, status).map_err(Abort)?;
        self.association
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: presentation_context,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data,
                }],
            })
            .await
            .map_err(|err| Abort(format!("cannot send the response: {err}")))
    }
}

/// `<SOPInstanceUID>_<random>.dcm`: readable, and unique even when the same
/// instance arrives twice at once (deduplication happens when sorting).
fn final_name(spool_dir: &Path, sop_instance_uid: &str) -> PathBuf {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let readable: String = sop_instance_uid
        .chars()
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    spool_dir.join(format!("{readable}_{}.dcm", &unique[..12]))
}
