//! Keeping `dicom_instances` in step with the archive's files: each scan
//! file gets one row for the bytes it holds (its MD5), read from the header
//! only. Archiving calls [`index_session`] right after the rows commit;
//! DICOMweb calls it again before answering from a session, which picks up
//! files that came another way (REST uploads) or before the table existed.
//! A file that is not DICOM gets a row with an empty SOP Instance UID, so it
//! is read once, not on every search.

use std::path::PathBuf;

use crate::archive::{Error, Result};
use crate::state::AppState;
use crate::store::{NewInstance, UnindexedFile};

/// Indexes the unindexed scan files of one session, or of the whole site.
/// Returns how many files were read.
pub async fn index_session(state: &AppState, experiment_id: Option<&str>) -> Result<usize> {
    let store = state.store();
    let pending = store.unindexed_scan_files(experiment_id).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let root = state.archive_root().to_path_buf();
    let count = pending.len();
    let rows = tokio::task::spawn_blocking(move || read_rows(&root, pending))
        .await
        .map_err(|e| Error::Internal(format!("indexing task failed: {e}")))?;
    store.record_dicom_instances(&rows).await?;
    Ok(count)
}

/// [`index_session`] for a caller that must not fail because of it (the
/// archive path: the session is archived whatever the index says).
pub async fn index_session_logged(state: &AppState, experiment_id: &str) {
    if let Err(err) = index_session(state, Some(experiment_id)).await {
        tracing::warn!("indexing session {experiment_id} for DICOMweb: {err}");
    }
}

/// Index rows for `files`, headers read in parallel (pixel data never read).
fn read_rows(root: &std::path::Path, files: Vec<UnindexedFile>) -> Vec<NewInstance> {
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|file| {
            xnatkit_fileio::SafeRelPath::parse(&file.dir)
                .and_then(|dir| dir.join(&xnatkit_fileio::SafeRelPath::parse(&file.path)?))
                .map(|p| p.under(root))
                // A row that fails validation was never written by this
                // server: index it as "not DICOM" rather than follow it.
                .unwrap_or_default()
        })
        .collect();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let headers = xnatkit_dicom::read_headers_parallel(&paths, jobs);
    files
        .into_iter()
        .zip(headers)
        .map(|(file, (path, header))| {
            let mut row = NewInstance {
                file_id: file.file_id,
                experiment_id: file.experiment_id,
                scan_pk: file.scan_pk,
                md5: file.md5,
                ..NewInstance::default()
            };
            if let (false, Ok(header)) = (path.as_os_str().is_empty(), header) {
                row.sop_instance_uid = header.sop_instance_uid;
                row.sop_class_uid = header.sop_class_uid;
                row.study_uid = header.study_instance_uid;
                row.series_uid = header.series_instance_uid;
                row.instance_number = header.instance_number;
                row.number_of_frames = header.number_of_frames;
                row.transfer_syntax = header.transfer_syntax;
            }
            row
        })
        .collect()
}
