//! Named crash points for the crash-consistency tests. With the environment
//! variable `XNATKIT_CRASH_AT` set to a point's name, the server aborts the
//! whole process (no destructors, no flushing — as `kill -9` would) the first
//! time it reaches that point. Unset (always, outside those tests), every
//! point is a no-op. The points are compiled in on purpose: the tests run the
//! real release or debug binary, not a special build.
//!
//! Points: `files.staged` (archive files under their in-flight names,
//! journal pending, rows not committed), `files.committed` (rows committed,
//! files not yet renamed into place), `files.renamed` (files in place,
//! journal not yet cleared), `prearchive.archived` (a prearchive session
//! archived, its folder and row not yet removed), `prearchive.placed`
//! (instances moved into a prearchive session, its rows not yet written).

use std::sync::LazyLock;

static CRASH_AT: LazyLock<Option<String>> = LazyLock::new(|| {
    std::env::var("XNATKIT_CRASH_AT")
        .ok()
        .filter(|name| !name.is_empty())
});

/// Aborts the process when `XNATKIT_CRASH_AT` names `point`.
pub fn point(point: &str) {
    if CRASH_AT.as_deref() == Some(point) {
        tracing::error!("XNATKIT_CRASH_AT={point}: aborting the process");
        std::process::abort();
    }
}
