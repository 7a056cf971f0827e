//! Real data sets from the project's shared data folder, which sits beside
//! the work tree (`../shared/data`) on every developer machine and in CI and
//! is never committed. A missing data set follows [`crate::ci`]'s rule.

use std::path::{Path, PathBuf};

/// `../shared/data` beside the work tree.
pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The real ParaVision 5.1 study `banana_pv51`: env
/// `XNATKIT_PARAVISION_BANANA`, else `../shared/data/paravision/banana_pv51`.
pub fn banana() -> Option<PathBuf> {
    let path = std::env::var_os("XNATKIT_PARAVISION_BANANA")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_data().join("paravision/banana_pv51"));
    if path.is_dir() {
        Some(path)
    } else {
        crate::ci::skip(&format!(
            "the banana_pv51 ParaVision study is not at {}; set XNATKIT_PARAVISION_BANANA",
            path.display()
        ))
    }
}
