//! Putting routed instances into a prearchive session. As in XNAT, data for
//! the same project, study and label joins the session that still takes
//! data; otherwise a new timestamped session is started, its folder suffixed
//! `_1`, `_2`… when the name is taken.

use std::collections::HashMap;
use std::path::PathBuf;

use xnatkit_dicom::{ExistingSession, InstanceRef, SortedStudy, scan_instances_into};

use super::build::{count_files, meta_of_study, scan_row};
use super::{new_timestamp, prearchive_root, session_dir, status};
use crate::archive::Error;
use crate::import::locks::lock_session;
use crate::state::AppState;
use crate::store::{PrearchiveScan, PrearchiveSession};

/// Folder-name suffixes tried before giving up on a clash.
const MAX_FOLDER_SUFFIX: usize = 100;

/// What to put where.
pub struct PlaceRequest<'a> {
    /// Project ID or `Unassigned`.
    pub project: &'a str,
    /// Session label = folder name.
    pub folder: &'a str,
    pub study: &'a SortedStudy,
    pub instances: &'a [InstanceRef],
    /// Status after placing (RECEIVING, READY, CONFLICT, ERROR).
    pub status: &'a str,
    /// Why, for CONFLICT / ERROR.
    pub message: &'a str,
    pub source: &'a str,
}

/// Moves the instances into the session folder and records the session.
pub async fn place(
    state: &AppState,
    request: PlaceRequest<'_>,
) -> Result<PrearchiveSession, Error> {
    let study_uid = &request.study.study_instance_uid;
    let _guard = lock_session(format!(
        "prearchive/{}/{study_uid}/{}",
        request.project, request.folder
    ))
    .await;
    let store = state.store();
    let session = match store
        .receiving_prearchive_session(request.project, study_uid, request.folder)
        .await?
    {
        Some(found) => found,
        None => create_session(state, &request).await?,
    };
    let known = store.prearchive_scans(session.id).await?;
    let existing = ExistingSession {
        scan_ids: known
            .iter()
            .map(|s| (s.series_uid.clone(), s.scan_id.clone()))
            .collect(),
        ..ExistingSession::default()
    };
    let scans = scan_instances_into(&existing, request.instances.to_vec());
    let dir = session_dir(state, &session);
    let moves: Vec<(PathBuf, PathBuf)> = scans
        .iter()
        .flat_map(|scan| {
            let scan_dir = dir.join("SCANS").join(&scan.id).join("DICOM");
            scan.files
                .iter()
                .map(move |f| (f.source.clone(), scan_dir.join(&f.stored_name)))
        })
        .collect();
    tokio::task::spawn_blocking(move || -> Result<(), Error> {
        let mut folders = std::collections::BTreeSet::new();
        for (source, dest) in &moves {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::Internal(format!("creating {}: {e}", parent.display())))?;
            }
            std::fs::rename(source, dest).map_err(|e| {
                Error::Internal(format!(
                    "moving {} into the prearchive: {e}",
                    source.display()
                ))
            })?;
            if let Some(parent) = dest.parent() {
                folders.insert(parent.to_path_buf());
            }
        }
        // The import is acknowledged after this: make the renames durable.
        for folder in folders {
            crate::file_moves::sync_dir(&folder);
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Internal(format!("prearchive file mover failed: {e}")))??;
    // The folder is the truth, the rows its index: a crash here leaves a
    // RECEIVING session that the rebuild sweep builds from the folder.
    crate::crash::point("prearchive.placed");

    let mut rows: HashMap<String, PrearchiveScan> =
        known.into_iter().map(|s| (s.scan_id.clone(), s)).collect();
    for scan in &scans {
        rows.entry(scan.id.clone())
            .or_insert_with(|| scan_row(scan));
    }
    let mut rows: Vec<PrearchiveScan> = rows.into_values().collect();
    for row in &mut rows {
        let files = count_files(&dir.join("SCANS").join(&row.scan_id).join("DICOM"));
        row.frames = i64::try_from(files).unwrap_or(i64::MAX);
    }
    rows.sort_by(|a, b| xnatkit_dicom::compare_scan_ids(&a.scan_id, &b.scan_id));
    let mut meta = meta_of_study(request.study);
    if meta.subject.is_empty() {
        meta.subject = session.subject.clone();
    }
    store
        .write_prearchive_build(session.id, &meta, &rows, request.status)
        .await?;
    if !request.message.is_empty() {
        store
            .set_prearchive_status(session.id, request.status, request.message)
            .await?;
    }
    store
        .prearchive_session_by_id(session.id)
        .await?
        .ok_or_else(|| Error::Internal("prearchive session vanished while placing".to_owned()))
}

async fn create_session(
    state: &AppState,
    request: &PlaceRequest<'_>,
) -> Result<PrearchiveSession, Error> {
    let store = state.store();
    let timestamp = new_timestamp();
    for n in 0..MAX_FOLDER_SUFFIX {
        let folder = if n == 0 {
            request.folder.to_owned()
        } else {
            format!("{}_{n}", request.folder)
        };
        let on_disk = prearchive_root(state)
            .join(request.project)
            .join(&timestamp)
            .join(&folder);
        if on_disk.exists() {
            continue;
        }
        if let Some(id) = store
            .insert_prearchive_session(
                request.project,
                &timestamp,
                &folder,
                &request.study.study_instance_uid,
                status::RECEIVING,
                request.source,
            )
            .await?
        {
            return store
                .prearchive_session_by_id(id)
                .await?
                .ok_or_else(|| Error::Internal("new prearchive session vanished".to_owned()));
        }
    }
    Err(Error::Conflict(format!(
        "prearchive folder {} is taken {MAX_FOLDER_SUFFIX} times over in project {}; archive or delete some of those sessions",
        request.folder, request.project
    )))
}
