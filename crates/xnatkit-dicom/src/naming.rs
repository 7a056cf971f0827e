//! The stored file name of an instance, as XNAT names it (label rules and
//! sanitising are `xnatkit_model::label`, shared with the server).

use crate::header::DicomHeader;

/// The file name XNAT's default template gives an instance:
/// `${StudyInstanceUID}-${SeriesNumber}-${InstanceNumber}-${HashSOPClassUIDWithSOPInstanceUID}.dcm`.
/// Missing values become `no-value-for-<Attribute>`, as in XNAT.
pub fn stored_file_name(header: &DicomHeader) -> String {
    let or_missing = |value: Option<String>, attribute: &str| {
        value.unwrap_or_else(|| format!("no-value-for-{attribute}"))
    };
    let study = or_missing(non_empty(&header.study_instance_uid), "StudyInstanceUID");
    let series = or_missing(header.series_number.map(|n| n.to_string()), "SeriesNumber");
    let instance = or_missing(
        header.instance_number.map(|n| n.to_string()),
        "InstanceNumber",
    );
    let hash = hash_uids(&header.sop_class_uid, &header.sop_instance_uid);
    let name = format!("{study}-{series}-{instance}-{hash}.dcm");
    // A name must stay inside its folder: no separators, no leading dots.
    name.replace(['/', '\\'], "_")
        .trim_start_matches('.')
        .to_owned()
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// `HashSOPClassUIDWithSOPInstanceUID`: Java's `List.hashCode()` of the two strings,
/// read as an unsigned 32-bit number and written in base 36 — reimplemented because
/// the name must match what XNAT itself would write for the same instance.
fn hash_uids(sop_class_uid: &str, sop_instance_uid: &str) -> String {
    let list_hash = [sop_class_uid, sop_instance_uid]
        .iter()
        .fold(1i32, |hash, item| {
            hash.wrapping_mul(31).wrapping_add(java_string_hash(item))
        });
    to_base36(u64::from(list_hash as u32))
}

fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

fn to_base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if value == 0 {
        return "0".to_owned();
    }
    let mut out = Vec::new();
    while value > 0 {
        out.push(DIGITS[(value % 36) as usize]);
        value /= 36;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sanitised_like_xnat() {}

    #[test]
    fn java_hashes_match_known_values() {
        // "hello".hashCode() == 99162322 in Java; Arrays.asList("a","b").hashCode() == 4066
        assert_eq!(java_string_hash("hello"), 99_162_322);
        let list = [("a"), ("b")].iter().fold(1i32, |h, s| {
            h.wrapping_mul(31).wrapping_add(java_string_hash(s))
        });
        assert_eq!(list, 4066);
        assert_eq!(to_base36(4066), "34y");
        assert_eq!(to_base36(u64::from(u32::MAX)), "1z141z3");
    }

    #[test]
    fn stored_name_follows_the_default_template() {
        let header = DicomHeader {
            study_instance_uid: "1.2.3".into(),
            sop_class_uid: "a".into(),
            sop_instance_uid: "b".into(),
            series_number: Some(4),
            instance_number: Some(12),
            ..DicomHeader::default()
        };
        assert_eq!(stored_file_name(&header), "1.2.3-4-12-34y.dcm");
        let missing = DicomHeader {
            series_number: None,
            instance_number: None,
            ..header
        };
        assert_eq!(
            stored_file_name(&missing),
            "1.2.3-no-value-for-SeriesNumber-no-value-for-InstanceNumber-34y.dcm"
        );
    }
}
