//! Deterministic UIDs: converting the same input twice gives the same UIDs,
//! so re-running a conversion and re-uploading replaces rather than duplicates.
//!
//! `2.25.<decimal UUID>` (PS3.5 §B.2) with a name-based (v5) UUID of the
//! identifying parts.

use uuid::Uuid;

/// Namespace for all xnatkit ParaVision UIDs (itself a v5 UUID of a fixed name).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, b"xnatkit.paravision")
}

/// UID derived from the parts (joined with a separator that cannot occur in them).
pub fn derive(parts: &[&str]) -> String {
    let joined = parts.join("\u{1f}");
    format!(
        "2.25.{}",
        Uuid::new_v5(&namespace(), joined.as_bytes()).as_u128()
    )
}

/// Our Implementation Class UID for the file meta header.
pub fn implementation_class_uid() -> String {
    derive(&["implementation", "xnatkit"])
}

/// Whether `text` is a syntactically valid UID (digits and dots, no leading
/// zeros in components, at most 64 characters).
pub fn is_valid(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.split('.').all(|component| {
            !component.is_empty()
                && component.bytes().all(|b| b.is_ascii_digit())
                && (component == "0" || !component.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uids_are_valid_stable_and_distinct() {
        let a = derive(&["series", "1.2.3", "1", "1"]);
        assert!(is_valid(&a), "{a}");
        assert_eq!(a, derive(&["series", "1.2.3", "1", "1"]));
        assert_ne!(a, derive(&["series", "1.2.3", "11", ""]));
        assert!(!is_valid("1.02.3"));
        assert!(!is_valid("1..3"));
    }
}
