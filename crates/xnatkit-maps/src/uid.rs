//! Deterministic UIDs for derived series: `2.25.<decimal v5 UUID>` of the
//! input's UIDs and what was derived, so a rerun on the same input writes
//! byte-identical files (the ParaVision converter's rule, own namespace).

use uuid::Uuid;

fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, b"xnatkit.maps")
}

pub fn derive(parts: &[&str]) -> String {
    let joined = parts.join("\u{1f}");
    format!(
        "2.25.{}",
        Uuid::new_v5(&namespace(), joined.as_bytes()).as_u128()
    )
}
