//! The prearchive: sessions waiting to be archived, one folder each at
//! `DATA/prearchive/{PROJECT or Unassigned}/{yyyyMMdd_HHmmssSSS}/{FOLDER}/SCANS/{scan}/DICOM/{file}`,
//! (XNAT's own prearchive layout, which its tools and admins know),
//! indexed by `prearchive_sessions` rows.
//!
//! - [`place`]: put routed instances into a session (appending to the one
//!   of the same project, study and label when it still takes data);
//! - [`build`]: (re)build a session's scan list from its folder;
//! - [`actions`]: archive, move and delete;
//! - [`sweep`]: building RECEIVING sessions that went quiet.

pub mod actions;
pub mod build;
mod place;
pub mod sweep;

use std::path::PathBuf;

pub use place::{PlaceRequest, place};

use crate::state::AppState;
use crate::store::PrearchiveSession;
pub use crate::store::PrearchiveStatus;

/// `DATA/prearchive`.
pub fn prearchive_root(state: &AppState) -> PathBuf {
    state.data_dir().join("prearchive")
}

/// The folder of one session.
pub fn session_dir(state: &AppState, session: &PrearchiveSession) -> PathBuf {
    prearchive_root(state)
        .join(&session.project)
        .join(&session.timestamp)
        .join(&session.folder)
}

/// `/prearchive/projects/P/TS/FOLDER` (the listing's `url`, without `/data`).
pub fn session_uri(session: &PrearchiveSession) -> String {
    format!(
        "/prearchive/projects/{}/{}/{}",
        session.project, session.timestamp, session.folder
    )
}

/// A new session timestamp, `yyyyMMdd_HHmmssSSS` (UTC).
pub fn new_timestamp() -> String {
    chrono::Utc::now().format("%Y%m%d_%H%M%S%3f").to_string()
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM:SS.fff`, the form xnatpy parses.
pub fn listing_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(new_timestamp().len(), 18);
        assert_eq!(listing_time(1_704_708_312_345), "2024-01-08 10:05:12.345");
    }
}
