//! DIMSE command sets: decoding C-STORE / C-ECHO requests and encoding their
//! responses (PS3.7 §9.3, §E). Command sets are always Implicit VR Little Endian.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::source::IMPLICIT_VR_LE;

pub(crate) const C_STORE_RQ: u16 = 0x0001;
pub(crate) const C_ECHO_RQ: u16 = 0x0030;
#[cfg(test)]
pub(crate) const C_ECHO_RSP: u16 = 0x8030;
/// Command Data Set Type value meaning "no data set follows".
pub(crate) const NO_DATA_SET: u16 = 0x0101;

/// DIMSE status codes we answer with.
pub(crate) mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources (storage or the archive failed).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: cannot understand (the data set could not be parsed).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Unrecognized operation (a command we do not provide).
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// The fields of a request command set that the receiver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub command_field: u16,
    pub message_id: u16,
    pub affected_sop_class_uid: String,
    pub affected_sop_instance_uid: String,
    pub has_data_set: bool,
}

pub(crate) fn decode_command(bytes: &[u8]) -> Result<Command, String> {
    let ts = TransferSyntaxRegistry
        .get(IMPLICIT_VR_LE)
        .ok_or("implicit VR little endian missing from the registry")?;
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|err| format!("unreadable command set: {err}"))?;
    let int =
        |tag: Tag| -> Option<u16> { obj.get(tag).and_then(|e| e.value().to_int::<u16>().ok()) };
    let text = |tag: Tag| -> String {
        obj.get(tag)
            .and_then(|e| e.value().to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    Ok(Command {
        command_field: int(tags::COMMAND_FIELD).ok_or("command set without Command Field")?,
        message_id: int(tags::MESSAGE_ID).ok_or("command set without Message ID")?,
        affected_sop_class_uid: text(tags::AFFECTED_SOP_CLASS_UID),
        affected_sop_instance_uid: text(tags::AFFECTED_SOP_INSTANCE_UID),
        has_data_set: int(tags::COMMAND_DATA_SET_TYPE).is_some_and(|t| t != NO_DATA_SET),
    })
}

/// Encodes the response to `request` with `status`; the response command field is
/// the request's with the high bit set (C-STORE-RSP for C-STORE-RQ, and so on).
pub(crate) fn encode_response(request: &Command, status: u16) -> Result<Vec<u8>, String> {
    let ts = TransferSyntaxRegistry
        .get(IMPLICIT_VR_LE)
        .ok_or("implicit VR little endian missing from the registry")?;
    let mut obj = InMemDicomObject::new_empty();
    let put_uid = |obj: &mut InMemDicomObject, tag: Tag, uid: &str| {
        if !uid.is_empty() {
            obj.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(uid)));
        }
    };
    put_uid(
        &mut obj,
        tags::AFFECTED_SOP_CLASS_UID,
        &request.affected_sop_class_uid,
    );
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(request.command_field | 0x8000),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        PrimitiveValue::from(request.message_id),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(NO_DATA_SET),
    ));
    obj.put(DataElement::new(
        tags::STATUS,
        VR::US,
        PrimitiveValue::from(status),
    ));
    put_uid(
        &mut obj,
        tags::AFFECTED_SOP_INSTANCE_UID,
        &request.affected_sop_instance_uid,
    );

    let mut body = Vec::with_capacity(160);
    obj.write_dataset_with_ts(&mut body, ts)
        .map_err(|err| format!("cannot encode response: {err}"))?;
    // Command Group Length (0000,0000) UL must come first and count the rest.
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_echo_the_request_and_decode_back() {
        let request = Command {
            command_field: C_ECHO_RQ,
            message_id: 7,
            affected_sop_class_uid: "1.2.840.10008.1.1".into(),
            affected_sop_instance_uid: String::new(),
            has_data_set: false,
        };
        let bytes = encode_response(&request, status::SUCCESS).unwrap();
        let ts = TransferSyntaxRegistry.get(IMPLICIT_VR_LE).unwrap();
        let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], ts).unwrap();
        assert_eq!(
            obj.get(tags::COMMAND_FIELD)
                .unwrap()
                .value()
                .to_int::<u16>()
                .unwrap(),
            C_ECHO_RSP
        );
        assert_eq!(
            obj.get(tags::MESSAGE_ID_BEING_RESPONDED_TO)
                .unwrap()
                .value()
                .to_int::<u16>()
                .unwrap(),
            7
        );
        let group_length = obj
            .get(tags::COMMAND_GROUP_LENGTH)
            .unwrap()
            .value()
            .to_int::<u32>()
            .unwrap();
        assert_eq!(group_length as usize, bytes.len() - 12);
    }
}
