//! Start-up recovery: after a crash (`kill -9`, power loss) the data folder
//! and the database are brought back to a state where everything the server
//! acknowledged is there and listed with the digest of its bytes, and
//! nothing unacknowledged lingers. [`recover`] runs once in [`crate::run`]
//! before the server listens; it is idempotent (running it again on a
//! recovered folder changes nothing) and assumes no request is in flight.
//!
//! In order:
//! 1. the file-move journal ([`crate::store::journal`]): pending moves are
//!    rolled back (bytes back to their source, fresh bytes dropped),
//!    committed ones rolled forward (renamed into place);
//! 2. prearchive sessions left in a transient status: ARCHIVING is removed
//!    when its files went to the archive, else rebuilt (READY); BUILDING is
//!    rebuilt; MOVING is re-homed to wherever its folder is and rebuilt;
//!    DELETING is finished. RECEIVING is left to the rebuild sweep, which
//!    builds it from its folder once quiet;
//! 3. the archive: in-flight `.xnk-` / `.part-` files are removed; complete
//!    files on disk without a row are moved, not deleted, to
//!    `DATA/lost+found/{start time}/` (recovery loses no bytes); rows whose
//!    file is gone are removed; a row whose size differs from its file is
//!    corrected from the bytes. When most recorded files are missing the
//!    archive folder is more likely unmounted than damaged: the start stops
//!    with an error and changes nothing;
//! 4. staging: upload spools and extraction folders are removed;
//! 5. the C-STORE spool: acknowledged instances not imported yet are
//!    imported (see [`crate::import::receiver::import_spool`]).
//!
//! Step 3 walks the whole archive folder, a stat per file, so it runs only
//! when the previous run did not end cleanly: a graceful stop leaves the
//! marker [`CLEAN_SHUTDOWN_MARKER`] ([`mark_clean_shutdown`]), which the next
//! start consumes. A crash leaves none, so the start after it walks.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::ServerError;
use crate::file_moves::{IN_FLIGHT_MARKER, roll_back, sync_dir};
use crate::import::receiver;
use crate::prearchive::{self, build, status};
use crate::state::AppState;
use crate::store::{COMMITTED, PrearchiveSession};

/// What recovery did, for the start-up log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Journaled file moves undone (their rows were never committed).
    pub moves_rolled_back: usize,
    /// Journaled file moves completed (their rows were committed).
    pub moves_completed: usize,
    /// Prearchive sessions taken out of a transient status.
    pub prearchive_sessions: usize,
    /// Files under the archive without a row, moved to `lost+found`.
    pub orphan_files: usize,
    /// File rows without a file, removed.
    pub missing_files: usize,
    /// File rows corrected to the bytes on disk.
    pub corrected_rows: usize,
    /// Entries removed from the staging folder.
    pub staging_entries: usize,
    /// Received DICOM instances found in the spool and imported.
    pub spooled_instances: usize,
}

impl RecoveryReport {
    /// True when there was nothing to recover.
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

/// File in the data folder that says the last run stopped gracefully.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".xnatkit-clean-shutdown";

/// Folder in the data folder that receives files recovery found without a
/// row, one subfolder per start.
pub const LOST_AND_FOUND: &str = "lost+found";

/// Below this many recorded files the "mostly missing" guard does not apply.
const UNMOUNTED_GUARD_MIN_ROWS: usize = 20;

/// Leaves the marker that lets the next start skip the archive walk; called
/// after a graceful stop, once nothing writes any more.
pub fn mark_clean_shutdown(data_dir: &Path) -> std::io::Result<()> {
    let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
    let file = std::fs::File::create(&marker)?;
    file.sync_all()?;
    sync_dir(data_dir);
    Ok(())
}

/// True when the previous run stopped gracefully; removes the marker, so a
/// crash of this run is noticed by the next start.
fn take_clean_shutdown_marker(data_dir: &Path) -> Result<bool, ServerError> {
    let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => {
            sync_dir(data_dir);
            Ok(true)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(internal("removing the clean-shutdown marker", err)),
    }
}

/// Runs every recovery step; see the module doc.
pub async fn recover(state: &AppState) -> Result<RecoveryReport, ServerError> {
    let mut report = RecoveryReport::default();
    let clean = take_clean_shutdown_marker(state.data_dir())?;
    replay_journal(state, &mut report).await?;
    recover_prearchive(state, &mut report).await?;
    if !clean {
        reconcile_archive(state, &mut report).await?;
    }
    clean_staging(state, &mut report).await;
    report.spooled_instances =
        receiver::import_spool(state, state.config().dicom_receiver.as_ref()).await;
    if !report.is_clean() {
        tracing::warn!("start-up recovery: {report:?}");
    }
    Ok(report)
}

fn internal(what: &str, err: impl std::fmt::Display) -> ServerError {
    ServerError::Recovery(format!("{what}: {err}"))
}

async fn replay_journal(state: &AppState, report: &mut RecoveryReport) -> Result<(), ServerError> {
    let store = state.store();
    let entries = store
        .journal_entries()
        .await
        .map_err(|e| internal("reading the file-move journal", e))?;
    if entries.is_empty() {
        return Ok(());
    }
    let data = state.data_dir().to_path_buf();
    let mut ops = Vec::new();
    let mut rolled_back = 0;
    let mut completed = 0;
    let mut dirs = HashSet::new();
    for entry in &entries {
        if !ops.contains(&entry.op) {
            ops.push(entry.op.clone());
        }
        let temp = data.join(&entry.file.temp);
        let dest = data.join(&entry.file.dest);
        if entry.state == COMMITTED {
            if temp.exists() {
                if let Some(parent) = dest.parent() {
                    let _ = std::fs::create_dir_all(parent);
                    dirs.insert(parent.to_path_buf());
                }
                std::fs::rename(&temp, &dest)
                    .map_err(|e| internal(&format!("moving {} into place", dest.display()), e))?;
                completed += 1;
            }
        } else if temp.exists() {
            let source = (!entry.file.source.is_empty()).then(|| data.join(&entry.file.source));
            roll_back(source.as_deref(), &temp);
            rolled_back += 1;
        }
    }
    for dir in dirs {
        sync_dir(&dir);
    }
    for op in ops {
        store
            .journal_forget(&op)
            .await
            .map_err(|e| internal("clearing the file-move journal", e))?;
    }
    report.moves_rolled_back += rolled_back;
    report.moves_completed += completed;
    Ok(())
}

async fn recover_prearchive(
    state: &AppState,
    report: &mut RecoveryReport,
) -> Result<(), ServerError> {
    let store = state.store();
    let sessions = store
        .prearchive_sessions(None)
        .await
        .map_err(|e| internal("listing prearchive sessions", e))?;
    for session in sessions {
        let fixed = match session.status.as_str() {
            status::ARCHIVING => finish_archiving(state, &session).await,
            status::BUILDING => build::rebuild(state, &session).await.map(|()| true),
            status::MOVING => finish_moving(state, &session).await,
            status::DELETING => {
                remove_session(state, &session).await;
                store
                    .delete_prearchive_session(session.id)
                    .await
                    .map(|()| true)
                    .map_err(Into::into)
            }
            _ => Ok(false),
        };
        match fixed {
            Ok(true) => report.prearchive_sessions += 1,
            Ok(false) => {}
            Err(err) => {
                return Err(internal(
                    &format!("recovering prearchive session {}", session.folder),
                    err,
                ));
            }
        }
    }
    Ok(())
}

/// An ARCHIVING session whose files all went to the archive (the journal
/// made that all-or-nothing) is done: its folder and row go. Otherwise the
/// archive did not happen and the session is READY again.
async fn finish_archiving(
    state: &AppState,
    session: &PrearchiveSession,
) -> Result<bool, crate::archive::Error> {
    let dir = prearchive::session_dir(state, session);
    let left = build::session_instances(dir).await?;
    if left.is_empty() {
        remove_session(state, session).await;
        state.store().delete_prearchive_session(session.id).await?;
    } else {
        build::rebuild(state, session).await?;
    }
    Ok(true)
}

/// A MOVING session's folder is either still where its row says or already
/// in the new project: the row follows the folder.
async fn finish_moving(
    state: &AppState,
    session: &PrearchiveSession,
) -> Result<bool, crate::archive::Error> {
    let store = state.store();
    let mut session = session.clone();
    if !prearchive::session_dir(state, &session).exists() {
        let root = prearchive::prearchive_root(state);
        let moved_to = std::fs::read_dir(&root).ok().and_then(|projects| {
            projects.flatten().find_map(|project| {
                let candidate = project
                    .path()
                    .join(&session.timestamp)
                    .join(&session.folder);
                candidate
                    .is_dir()
                    .then(|| project.file_name().to_string_lossy().into_owned())
            })
        });
        if let Some(project) = moved_to
            && store
                .move_prearchive_session(session.id, &project, &session.folder)
                .await?
        {
            session.project = project;
        }
    }
    build::rebuild(state, &session).await?;
    Ok(true)
}

async fn remove_session(state: &AppState, session: &PrearchiveSession) {
    let dir = prearchive::session_dir(state, session);
    if let Err(err) = tokio::fs::remove_dir_all(&dir).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {err}", dir.display());
    }
    if let Some(parent) = dir.parent() {
        let _ = tokio::fs::remove_dir(parent).await;
    }
}

/// One file row as reconciliation needs it.
struct RowFacts {
    id: i64,
    size: i64,
}

/// Outcome of the blocking archive walk.
#[derive(Default)]
struct Walk {
    /// Complete files without a row (relative to the archive root).
    orphans: Vec<PathBuf>,
    /// Unfinished temp files of interrupted writes.
    in_flight: Vec<PathBuf>,
    /// Row IDs whose file was found.
    seen: HashSet<i64>,
    /// (row ID, size, MD5) of rows whose size differs from the file.
    corrections: Vec<(i64, i64, String)>,
}

async fn reconcile_archive(
    state: &AppState,
    report: &mut RecoveryReport,
) -> Result<(), ServerError> {
    let store = state.store();
    let resources = store
        .all_resource_dirs()
        .await
        .map_err(|e| internal("listing resources", e))?;
    let rows = store
        .all_file_facts()
        .await
        .map_err(|e| internal("listing file rows", e))?;
    let mut by_resource: HashMap<i64, HashMap<String, RowFacts>> = HashMap::new();
    let mut all_ids = Vec::with_capacity(rows.len());
    for (id, resource_id, path, size) in rows {
        all_ids.push(id);
        by_resource
            .entry(resource_id)
            .or_default()
            .insert(path, RowFacts { id, size });
    }
    let dirs: HashMap<PathBuf, i64> = resources
        .into_iter()
        .map(|(id, dir)| (PathBuf::from(dir), id))
        .collect();
    let root = state.archive_root().to_path_buf();
    let walk = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || {
            let mut walk = Walk::default();
            walk_archive(&root, &root, &dirs, &by_resource, &mut walk);
            walk
        })
        .await
        .map_err(|e| internal("walking the archive", e))?
    };
    let missing: Vec<i64> = all_ids
        .iter()
        .copied()
        .filter(|id| !walk.seen.contains(id))
        .collect();
    if all_ids.len() >= UNMOUNTED_GUARD_MIN_ROWS && missing.len() * 2 > all_ids.len() {
        return Err(ServerError::Recovery(format!(
            "{} of {} recorded files are missing under {}: is the archive storage mounted? Nothing was changed; mount it (or restore it) and start again",
            missing.len(),
            all_ids.len(),
            root.display()
        )));
    }
    let lost_and_found = state
        .data_dir()
        .join(LOST_AND_FOUND)
        .join(crate::store::now_ms().to_string());
    let Walk {
        orphans,
        in_flight,
        corrections,
        ..
    } = walk;
    let moved = tokio::task::spawn_blocking(move || {
        for temp in &in_flight {
            if let Err(err) = std::fs::remove_file(root.join(temp)) {
                tracing::warn!("removing unfinished {}: {err}", temp.display());
            }
        }
        let mut moved = 0;
        for orphan in &orphans {
            let to = lost_and_found.join(orphan);
            let outcome = to
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::rename(root.join(orphan), &to));
            match outcome {
                Ok(()) => {
                    tracing::warn!(
                        "start-up recovery: {} has no row; moved to {}",
                        orphan.display(),
                        to.display()
                    );
                    moved += 1;
                }
                Err(err) => tracing::warn!("moving orphan {}: {err}", orphan.display()),
            }
        }
        prune_empty_dirs(&root, &root);
        moved
    })
    .await
    .map_err(|e| internal("moving orphans", e))?;
    for (id, size, md5) in &corrections {
        store
            .correct_file(*id, *size, md5)
            .await
            .map_err(|e| internal("correcting a file row", e))?;
    }
    if !missing.is_empty() {
        tracing::warn!(
            "start-up recovery: {} file rows have no file on disk; removing them",
            missing.len()
        );
        store
            .delete_file_rows(&missing)
            .await
            .map_err(|e| internal("removing rows of missing files", e))?;
    }
    report.orphan_files += moved;
    report.missing_files += missing.len();
    report.corrected_rows += corrections.len();
    Ok(())
}

/// True for names of files still being written: xnatkit-fileio's
/// `.{name}.part-{hex}` and the journal's `.{name}.xnk-{op}`.
fn is_in_flight_name(name: &str) -> bool {
    name.starts_with('.') && (name.contains(".part-") || name.contains(IN_FLIGHT_MARKER))
}

fn walk_archive(
    root: &Path,
    dir: &Path,
    dirs: &HashMap<PathBuf, i64>,
    rows: &HashMap<i64, HashMap<String, RowFacts>>,
    walk: &mut Walk,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk_archive(root, &path, dirs, rows, walk);
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let row = if is_in_flight_name(&name) {
            None
        } else {
            row_of(rel, dirs, rows)
        };
        match row {
            Some(facts) => {
                walk.seen.insert(facts.id);
                let on_disk = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if i64::try_from(on_disk).ok() != Some(facts.size)
                    && let Ok(stored) = xnatkit_fileio::md5_file(&path)
                {
                    tracing::warn!(
                        "start-up recovery: {} does not match its row; the row now describes the bytes",
                        path.display()
                    );
                    walk.corrections.push((
                        facts.id,
                        i64::try_from(stored.size).unwrap_or(i64::MAX),
                        stored.md5_hex,
                    ));
                }
            }
            None if is_in_flight_name(&name) => walk.in_flight.push(rel.to_path_buf()),
            None => walk.orphans.push(rel.to_path_buf()),
        }
    }
}

/// The row of the archive file at `rel` (relative to the archive root): the
/// nearest enclosing folder that is a resource's, and the path below it.
fn row_of<'a>(
    rel: &Path,
    dirs: &HashMap<PathBuf, i64>,
    rows: &'a HashMap<i64, HashMap<String, RowFacts>>,
) -> Option<&'a RowFacts> {
    for ancestor in rel.ancestors().skip(1) {
        if let Some(resource_id) = dirs.get(ancestor) {
            let inside = rel.strip_prefix(ancestor).ok()?;
            let key = inside.to_string_lossy().replace('\\', "/");
            return rows.get(resource_id)?.get(&key);
        }
    }
    None
}

/// Removes empty folders below `dir` (not `root` itself); resource folders
/// are created again by the next write into them.
fn prune_empty_dirs(root: &Path, dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) && prune_empty_dirs(root, &path) {
            continue;
        }
        empty = false;
    }
    if empty && dir != root {
        return std::fs::remove_dir(dir).is_ok();
    }
    false
}

/// Removes everything in staging but the C-STORE spool, and xnatkit-dicom's
/// unfinished (hidden, never acknowledged) spool files.
async fn clean_staging(state: &AppState, report: &mut RecoveryReport) {
    let staging = state.staging_root().to_path_buf();
    let spool = receiver::spool_root(state);
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        let mut remove = |path: &Path, is_dir: bool| {
            let outcome = if is_dir {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            match outcome {
                Ok(()) => removed += 1,
                Err(err) => tracing::warn!("removing {}: {err}", path.display()),
            }
        };
        for dir in [&staging, &spool] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                let name = entry.file_name().to_string_lossy().into_owned();
                let keep = if *dir == staging {
                    path == spool
                } else {
                    // In the spool: acknowledged instances (by-ae) and complete
                    // files are imported by the next step.
                    name == receiver::BY_AE || !name.starts_with('.')
                };
                if !keep {
                    remove(&path, is_dir);
                }
            }
        }
        removed
    })
    .await
    .unwrap_or(0);
    report.staging_entries += removed;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_names_are_recognised() {
        assert!(is_in_flight_name(".a.dcm.part-0123456789abcdef"));
        assert!(is_in_flight_name(".a.dcm.xnk-0123"));
        assert!(!is_in_flight_name("a.dcm"));
        assert!(!is_in_flight_name("notes.part-1.txt"));
    }

    #[test]
    fn files_map_to_the_nearest_resource_folder() {
        let dirs: HashMap<PathBuf, i64> = [
            (PathBuf::from("P/arc001/S/SCANS/1/DICOM"), 1),
            (PathBuf::from("P/resources/R"), 2),
        ]
        .into_iter()
        .collect();
        let mut rows: HashMap<i64, HashMap<String, RowFacts>> = HashMap::new();
        rows.entry(2)
            .or_default()
            .insert("sub/a.txt".to_owned(), RowFacts { id: 7, size: 3 });
        let found = row_of(Path::new("P/resources/R/sub/a.txt"), &dirs, &rows);
        assert_eq!(found.map(|f| f.id), Some(7));
        assert!(row_of(Path::new("P/resources/R/sub/b.txt"), &dirs, &rows).is_none());
        assert!(row_of(Path::new("P/elsewhere/a.txt"), &dirs, &rows).is_none());
    }

    #[test]
    fn empty_folders_are_pruned_but_not_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b/c")).unwrap();
        std::fs::create_dir_all(root.path().join("d")).unwrap();
        std::fs::write(root.path().join("d/keep"), b"x").unwrap();
        prune_empty_dirs(root.path(), root.path());
        assert!(!root.path().join("a").exists());
        assert!(root.path().join("d/keep").exists());
        assert!(root.path().exists());
    }
}
