//! Association negotiation: which abstract syntaxes we accept, and the A-ASSOCIATE-RQ
//! peek that lets us decide per association.
//!
//! dicom-ul accepts either a fixed list of abstract syntaxes or all of them
//! ("promiscuous"). We want "every storage SOP class, nothing else", and the
//! standard dictionary cannot be enumerated, so we peek at the request, keep the
//! proposed storage classes and hand exactly those to dicom-ul.

use std::io;
use std::time::Duration;

use dicom_core::dictionary::UidDictionary;
use dicom_dictionary_std::{StandardSopClassDictionary, uids};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, MAXIMUM_PDU_SIZE, PDU_HEADER_SIZE,
};
use dicom_ul::{Pdu, read_pdu, write_pdu};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A-ASSOCIATE-RQ PDUs are a few KiB; anything bigger is not a DICOM peer.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The prefix under which the standard puts (nearly) all storage SOP classes.
const STORAGE_ROOT: &str = "1.2.840.10008.5.1.4.1.1.";

/// True for a storage SOP class: the standard storage root, any other standard
/// SOP class named "... Storage" (hanging protocols, implant templates, ...), or
/// one of `extra` (private classes such as Siemens CSA Non-Image Storage).
pub(crate) fn is_storage_sop_class(uid: &str, extra: &[String]) -> bool {
    let uid = uid.trim_end_matches(['\0', ' ']);
    if uid.starts_with(STORAGE_ROOT) || extra.iter().any(|e| e == uid) {
        return true;
    }
    StandardSopClassDictionary
        .by_uid(uid)
        .is_some_and(|entry| entry.name.contains("Storage") && !entry.name.contains("Commitment"))
}

/// What the peer proposed, from its A-ASSOCIATE-RQ.
pub(crate) struct Proposal {
    pub abstract_syntaxes: Vec<String>,
}

/// Waits until the whole A-ASSOCIATE-RQ is in the socket buffer and decodes it,
/// without consuming it (dicom-ul reads it again when it negotiates).
/// `Ok(None)`: the peer closed or sent something else first.
pub(crate) async fn peek_request(stream: &TcpStream) -> io::Result<Option<(Proposal, usize)>> {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let available = stream.peek(&mut buffer).await?;
        if available == 0 {
            return Ok(None);
        }
        if available >= PDU_HEADER_SIZE as usize {
            let body = u32::from_be_bytes([buffer[2], buffer[3], buffer[4], buffer[5]]) as usize;
            let total = body.saturating_add(PDU_HEADER_SIZE as usize);
            if total > MAX_REQUEST_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("association request of {total} bytes is too large"),
                ));
            }
            if buffer.len() < total {
                buffer.resize(total, 0);
                continue;
            }
            if available >= total {
                let pdu = read_pdu(&buffer[..total], MAXIMUM_PDU_SIZE, false)
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
                return Ok(match pdu {
                    Some(Pdu::AssociationRQ(request)) => Some((
                        Proposal {
                            abstract_syntaxes: request
                                .presentation_contexts
                                .into_iter()
                                .map(|pc| {
                                    pc.abstract_syntax.trim_end_matches(['\0', ' ']).to_owned()
                                })
                                .collect(),
                        },
                        total,
                    )),
                    _ => None,
                });
            }
        }
        // `peek` returns at once while any bytes are buffered, so wait a little
        // for the rest of the request instead of spinning.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The abstract syntaxes to accept out of a proposal: Verification plus the
/// storage classes proposed. Verification is always listed so that dicom-ul can
/// answer (with per-context rejections) even when nothing else is acceptable.
pub(crate) fn acceptable_syntaxes(proposal: &Proposal, extra: &[String]) -> Vec<String> {
    let mut accepted = vec![uids::VERIFICATION.to_owned()];
    for uid in &proposal.abstract_syntaxes {
        if is_storage_sop_class(uid, extra) && !accepted.contains(uid) {
            accepted.push(uid.clone());
        }
    }
    accepted
}

/// Consumes the peer's request and answers A-ASSOCIATE-RJ "transient, local limit
/// exceeded": the standard way to say "too many associations, try again later".
pub(crate) async fn reject_busy(mut stream: TcpStream, request_len: usize) -> io::Result<()> {
    let mut request = vec![0u8; request_len];
    stream.read_exact(&mut request).await?;
    let mut reply = Vec::with_capacity(16);
    write_pdu(
        &mut reply,
        &Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
            ),
        }),
    )
    .map_err(|err| io::Error::other(err.to_string()))?;
    stream.write_all(&reply).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_classes_are_told_from_others() {
        let none: &[String] = &[];
        assert!(is_storage_sop_class(uids::MR_IMAGE_STORAGE, none));
        assert!(is_storage_sop_class(uids::ENHANCED_SR_STORAGE, none));
        assert!(is_storage_sop_class(uids::HANGING_PROTOCOL_STORAGE, none));
        assert!(!is_storage_sop_class(uids::VERIFICATION, none));
        assert!(!is_storage_sop_class(
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            none
        ));
        assert!(!is_storage_sop_class(
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
            none
        ));
        let siemens = ["1.3.12.2.1107.5.9.1".to_owned()];
        assert!(is_storage_sop_class("1.3.12.2.1107.5.9.1", &siemens));
    }
}
