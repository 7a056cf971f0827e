//! XNAT's names: label sanitising and the stored file name of an instance
//! (xnat-server-behavior §1.3 and §2.5).

use crate::header::DicomHeader;

/// Replaces every character outside `[A-Za-z0-9_-]` with `_`, as XNAT does for
/// labels derived from DICOM (`Doe^John` → `Doe_John`). Surrounding blanks are dropped first.
pub fn sanitize_label(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// True when `label` is a valid XNAT ID or label (`^[A-Za-z0-9_-]+$`).
pub fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

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
    fn labels_are_sanitised_like_xnat() {
        assert_eq!(sanitize_label("Doe^John"), "Doe_John");
        assert_eq!(sanitize_label(" Brain MRI 2.0 "), "Brain_MRI_2_0");
        assert_eq!(sanitize_label("ok_label-1"), "ok_label-1");
        assert!(is_valid_label("P01_a-b"));
        assert!(!is_valid_label("Brain MRI"));
        assert!(!is_valid_label(""));
    }

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
