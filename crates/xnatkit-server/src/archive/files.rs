//! Resources and their files: creating and updating resources, storing
//! files (one stream, or every entry of an uploaded archive), deleting them.
//!
//! Every byte goes through `xnatkit-fileio`: uploads are streamed into an
//! `AtomicFile` (temp name, fsync, rename) under an in-flight name, and the
//! file and its row (size + MD5) change together through the file-move
//! journal ([`crate::file_moves`]): rows committed with the journal, then the
//! file renamed into place; start-up recovery finishes or undoes whatever a
//! crash interrupted. A resource created by an upload that fails is removed
//! again only while no other upload uses it and it holds no files
//! ([`Upload::finish`]).
//!
//! Names reach the disk only as `xnatkit_fileio::SafeRelPath`s joined onto the
//! archive root. A name that clashes with the resource's files (a file
//! where a folder of it would be, or a folder of that name) is a conflict,
//! and so is replacing a file without `overwrite`, for archives too; all of
//! it is checked before anything is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use xnatkit_fileio::SafeRelPath;

use super::{Error, ResourceOwner, Result, Scope};
use crate::access::Action;
use crate::file_moves::MoveBatch;
use crate::state::AppState;
use crate::store::locks;
use crate::store::{NewFile, Resource};

/// Attributes of a resource (`format`, `content`, `tags`); `None` keeps
/// what is stored.
#[derive(Debug, Clone, Default)]
pub struct ResourceAttrs {
    pub format: Option<String>,
    pub content: Option<String>,
    pub tags: Option<String>,
}

/// How files are written: what XNAT records beside each of them, and
/// whether files already there may be replaced.
#[derive(Debug, Clone, Default)]
pub struct FileWrite {
    pub overwrite: bool,
    pub format: String,
    pub content: String,
    pub tags: String,
}

/// Resource labels become folder names: XNAT's label characters plus '.'.
pub fn valid_resource_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('.')
        && label.len() <= 255
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A client's file name, checked to be a safe relative path.
pub fn checked_name(name: &str) -> Result<String> {
    Ok(SafeRelPath::parse(name)?.into_string())
}

/// A resource folder on disk: its recorded path (relative to the archive
/// root), validated and joined onto the root. A row that fails validation
/// was never written by this server: refused as an internal error rather
/// than followed.
pub fn resource_dir_on_disk(state: &AppState, dir: &str) -> Result<PathBuf> {
    Ok(stored_dir(dir)?.under(state.archive_root()))
}

/// The file `name` (a client's name or a recorded file path) of the
/// resource folder `dir` on disk; an unusable name is the client's error.
pub fn file_on_disk(state: &AppState, dir: &str, name: &str) -> Result<PathBuf> {
    let path = stored_dir(dir)?.join(&SafeRelPath::parse(name)?)?;
    Ok(path.under(state.archive_root()))
}

fn stored_dir(dir: &str) -> Result<SafeRelPath> {
    SafeRelPath::parse(dir)
        .map_err(|e| Error::Internal(format!("resource folder {dir:?} is unusable: {e}")))
}

/// Picks a folder for a new resource that no other resource uses (a
/// renamed session keeps its old folder, so names can collide).
async fn fresh_resource_dir(
    state: &AppState,
    owner: &ResourceOwner,
    label: &str,
) -> Result<String> {
    let base = format!("{}/{label}", owner.base_dir);
    let mut candidate = base.clone();
    let mut n = 1;
    while state.store().resource_dir_in_use(&candidate).await? {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    Ok(candidate)
}

/// Finds or creates the resource a write goes to (insert-or-get: parallel
/// first uploads into one new resource all get the same row). True when this
/// call created it.
async fn writable_resource(
    state: &AppState,
    scope: &Scope,
    owner: &ResourceOwner,
    existing: Option<Resource>,
    label: &str,
    attrs: &ResourceAttrs,
) -> Result<(Resource, bool)> {
    if let Some(resource) = existing {
        scope.check(Action::Edit)?;
        return Ok((resource, false));
    }
    scope.check(Action::Create)?;
    if !valid_resource_label(label) {
        return Err(Error::InvalidLabel(format!(
            "Invalid character in resource label {label:?}: use letters, digits, '_', '-', '.'"
        )));
    }
    let dir = fresh_resource_dir(state, owner, label).await?;
    let store = state.store();
    let (id, created) = store
        .create_resource(
            &owner.owner,
            &owner.project,
            label,
            attrs.format.as_deref().unwrap_or_default(),
            attrs.content.as_deref().unwrap_or_default(),
            attrs.tags.as_deref().unwrap_or_default(),
            &dir,
        )
        .await?;
    let resource = store
        .resource_by_id(id)
        .await?
        .ok_or_else(|| Error::Internal(format!("resource {label} vanished after creation")))?;
    Ok((resource, created))
}

/// Creates the resource `label` of `owner`, or updates the attributes of
/// the `existing` one. True when it was created.
pub async fn put_resource(
    state: &AppState,
    scope: &Scope,
    owner: &ResourceOwner,
    existing: Option<Resource>,
    label: &str,
    attrs: &ResourceAttrs,
) -> Result<(Resource, bool)> {
    let (resource, created) =
        writable_resource(state, scope, owner, existing, label, attrs).await?;
    if !created {
        state
            .store()
            .update_resource(
                resource.id,
                attrs.format.as_deref(),
                attrs.content.as_deref(),
                attrs.tags.as_deref(),
            )
            .await?;
    }
    Ok((resource, created))
}

/// Attempts at finding a resource that is not removed by the clean-up of a
/// failed upload before this upload holds it.
const RESOURCE_ATTEMPTS: usize = 3;

/// The resource an upload writes to, held in use for the upload's duration
/// (see [`locks::Locks::use_resource`]). End it with [`Upload::finish`].
pub struct Upload {
    pub resource: Resource,
    /// True when this upload created the resource.
    pub created: bool,
    in_use: locks::ResourceUse,
}

/// Starts an upload into resource `label` of `owner` (created if needed).
pub async fn start_upload(
    state: &AppState,
    scope: &Scope,
    owner: &ResourceOwner,
    mut existing: Option<Resource>,
    label: &str,
    attrs: &ResourceAttrs,
) -> Result<Upload> {
    for _ in 0..RESOURCE_ATTEMPTS {
        let (resource, created) =
            writable_resource(state, scope, owner, existing, label, attrs).await?;
        let in_use = state.store().locks().use_resource(resource.id).await?;
        // Between finding and holding it, a failed upload's clean-up may
        // have removed it; then it is created again.
        if state.store().resource_by_id(resource.id).await?.is_some() {
            return Ok(Upload {
                resource,
                created,
                in_use,
            });
        }
        existing = None;
    }
    Err(Error::Conflict(format!(
        "resource {label} was removed repeatedly while this upload started; retry the upload"
    )))
}

impl Upload {
    /// Ends the upload. When it failed and created the resource, the
    /// resource is taken back — but only while no other upload uses it and
    /// nothing was stored in it: a parallel upload may have found it and
    /// been told it succeeded.
    pub async fn finish(self, state: &AppState, succeeded: bool) -> Result<()> {
        let Self {
            resource,
            created,
            in_use,
        } = self;
        drop(in_use);
        if succeeded && let Err(err) = state.store().stamp_rest_upload(&resource.owner).await {
            // The files are stored; only runs on archive may miss this burst.
            tracing::warn!(
                "could not note the upload into resource {} for runs on archive: {err}",
                resource.label
            );
        }
        if !succeeded
            && created
            && let Some(_unused) = state.store().locks().resource_unused(resource.id).await?
            && state.store().delete_resource_if_empty(resource.id).await?
        {
            remove_dirs(state, vec![resource.dir]).await;
        }
        Ok(())
    }
}

/// Refuses a file `name` that would clash with what the resource already
/// holds: a file where one of its folders would be, or a folder of that
/// very name. Checked before anything is written, so a clash leaves
/// nothing behind.
async fn check_no_clash(state: &AppState, resource: &Resource, name: &str) -> Result<()> {
    let name = SafeRelPath::parse(name)?;
    let store = state.store();
    for folder in name.ancestors() {
        if store.file(resource.id, folder).await?.is_some() {
            return Err(folder_is_a_file(folder, &name, &resource.label));
        }
    }
    if store.count_files_below(resource.id, name.as_str()).await? > 0 {
        return Err(file_is_a_folder(name.as_str(), &resource.label));
    }
    Ok(())
}

fn folder_is_a_file(folder: &str, name: &SafeRelPath, label: &str) -> Error {
    Error::Conflict(format!(
        "File {folder} exists in resource {label}, so it cannot be a folder holding {name}; \
         delete it first or choose another name"
    ))
}

fn file_is_a_folder(name: &str, label: &str) -> Error {
    Error::Conflict(format!(
        "Folder {name} exists in resource {label}, so a file cannot have that name; delete the \
         folder first or choose another name"
    ))
}

/// The same checks as [`check_no_clash`] plus the overwrite rule, for all
/// files of an extracted archive against the resource's recorded `existing`
/// paths, before any of them is moved in.
fn check_extracted_fit(
    existing: &BTreeSet<String>,
    names: &[String],
    overwrite: bool,
    label: &str,
) -> Result<()> {
    for name in names {
        let name = SafeRelPath::parse(name)?;
        if existing.contains(name.as_str()) {
            if overwrite {
                continue;
            }
            return Err(Error::Conflict(format!(
                "File {name} already exists in resource {label}; add overwrite=true to replace it"
            )));
        }
        if let Some(folder) = name.ancestors().find(|f| existing.contains(*f)) {
            return Err(folder_is_a_file(folder, &name, label));
        }
        let below = format!("{name}/");
        if existing
            .range(below.clone()..)
            .next()
            .is_some_and(|path| path.starts_with(&below))
        {
            return Err(file_is_a_folder(name.as_str(), label));
        }
    }
    Ok(())
}

/// A staging path on the archive's file system, unique per call.
fn staging_path(state: &AppState, suffix: &str) -> PathBuf {
    state
        .staging_root()
        .join(format!("{}{suffix}", uuid::Uuid::new_v4()))
}

pub(super) fn new_file(
    path: String,
    stored: &xnatkit_fileio::StoredFile,
    write: &FileWrite,
) -> NewFile {
    NewFile {
        path,
        size: i64::try_from(stored.size).unwrap_or(i64::MAX),
        md5: stored.md5_hex.clone(),
        format: write.format.clone(),
        content: write.content.clone(),
        tags: write.tags.clone(),
    }
}

/// Stores `stream` as the file `name` of `resource`; returns its row.
pub async fn put_file<S, E>(
    state: &AppState,
    resource: &Resource,
    name: &str,
    stream: S,
    write: &FileWrite,
) -> Result<Vec<NewFile>>
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let store = state.store();
    if store.file(resource.id, name).await?.is_some() && !write.overwrite {
        return Err(Error::Conflict(format!(
            "File {name} already exists in resource {}; add overwrite=true to replace it",
            resource.label
        )));
    }
    check_no_clash(state, resource, name).await?;
    let dest = file_on_disk(state, &resource.dir, name)?;
    let mut batch = MoveBatch::new(state.data_dir());
    // The bytes wait under the batch's in-flight name until their row is
    // committed (see `commit_files`).
    let stored = xnatkit_fileio::write_stream_atomic(
        &batch.temp_for(&dest),
        stream,
        Some(state.config().max_upload_bytes),
    )
    .await
    .map_err(|e| Error::from_fileio(e, name))?;
    let row = new_file(name.to_owned(), &stored, write);
    batch.add_fresh(dest, row.size, row.md5.clone());
    commit_files(state, resource, &[row], batch).await
}

/// The commit step of every upload: moves staged files under their
/// in-flight names, records the rows together with the batch's journal in
/// one transaction, then renames the files into place.
/// Commits into one resource are serialised so that two uploads of the same
/// name leave the bytes of the one whose row is last. It runs as its own
/// task: a client hanging up must not stop it between commit and rename.
/// Returns the rows it committed.
pub(super) async fn commit_files(
    state: &AppState,
    resource: &Resource,
    rows: &[NewFile],
    mut batch: MoveBatch,
) -> Result<Vec<NewFile>> {
    let tasks = state.clone();
    let state = state.clone();
    let (resource_id, label, rows) = (resource.id, resource.label.clone(), rows.to_vec());
    let commit = async move {
        let store = state.store();
        // Moves files in from staging (extractions); nothing for fresh ones.
        batch.stage(store).await?;
        let _commit = store
            .locks()
            .lock(&format!("resource-commit/{resource_id}"))
            .await?;
        if let Err(err) = store
            .record_files(resource_id, &rows, &batch.commit_record())
            .await
        {
            batch.abort(store).await;
            return Err(Error::from(err));
        }
        if let Err(err) = batch.finish(store).await {
            // The rows are committed, so the upload is done; recovery at the
            // next start completes the renames.
            tracing::error!(
                "files of resource {label} are recorded but not all in place yet ({err}); restart the server to complete them"
            );
        }
        Ok(rows)
    };
    tasks
        .spawn(commit)
        .await
        .map_err(|e| Error::Internal(format!("upload writer failed: {e}")))?
}

/// Removes files this upload committed, unless another upload has replaced
/// them since (their digest changed): what a failed multi-file upload that
/// created its resource does, so that the resource can go too.
pub async fn take_back(state: &AppState, resource: &Resource, committed: &[NewFile]) {
    let store = state.store();
    let Ok(_commit) = store
        .locks()
        .lock(&format!("resource-commit/{}", resource.id))
        .await
    else {
        tracing::warn!(
            "could not take back the files of a failed upload into resource {}: its lock is unavailable",
            resource.label
        );
        return;
    };
    for file in committed {
        let Ok(Some(row)) = store.file(resource.id, &file.path).await else {
            continue;
        };
        if row.md5 != file.md5 || store.delete_file_rows(&[row.id]).await.is_err() {
            continue;
        }
        let disk = state.archive_root().join(&resource.dir).join(&file.path);
        if let Err(err) = tokio::fs::remove_file(&disk).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove {}: {err}", disk.display());
        }
    }
}

/// Writes an uploaded archive to a staging file (extraction needs a
/// seekable file).
pub async fn spool<S, E>(state: &AppState, stream: S) -> Result<PathBuf>
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let path = staging_path(state, ".upload");
    xnatkit_fileio::write_stream_atomic(&path, stream, Some(state.config().max_upload_bytes))
        .await?;
    Ok(path)
}

/// Extracts a spooled archive into a staging folder, then moves every file
/// into the resource (below `dir` when given) and records them all in one
/// transaction through the file-move journal: a failure anywhere before the
/// commit leaves every file of the resource (also those the archive would
/// replace) as it was. The spool and the staging folder are removed
/// whatever happens.
pub async fn put_archive(
    state: &AppState,
    resource: &Resource,
    dir: Option<&str>,
    spooled: &Path,
    write: &FileWrite,
) -> Result<Vec<NewFile>> {
    let staging = staging_path(state, ".d");
    let outcome = extract_and_commit(state, resource, dir, spooled, &staging, write).await;
    let _ = tokio::fs::remove_file(spooled).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    outcome
}

async fn extract_and_commit(
    state: &AppState,
    resource: &Resource,
    dir: Option<&str>,
    spooled: &Path,
    staging: &Path,
    write: &FileWrite,
) -> Result<Vec<NewFile>> {
    // The total an archive may unpack to scales with its size, so a small
    // zip bomb is refused as it is by the import service.
    let archive_len = tokio::fs::metadata(spooled)
        .await
        .map(|m| m.len())
        .unwrap_or(u64::MAX);
    let limits = state.config().extract_limits_for(archive_len);
    let resource_root = resource_dir_on_disk(state, &resource.dir)?;
    let existing: BTreeSet<String> = state
        .store()
        .files(resource.id)
        .await?
        .into_iter()
        .map(|f| f.path)
        .collect();
    let (overwrite, label) = (write.overwrite, resource.label.clone());
    let prefix = dir.map(str::to_owned);
    let (archive, stage) = (spooled.to_path_buf(), staging.to_path_buf());
    let extracted = tokio::task::spawn_blocking(
        move || -> Result<Vec<(String, xnatkit_fileio::ExtractedFile)>> {
            let kind = xnatkit_fileio::sniff_file(&archive)?.ok_or_else(|| {
                Error::Invalid("extract=true needs a zip, tar or tar.gz upload".to_owned())
            })?;
            let extracted = xnatkit_fileio::extract_archive(&archive, kind, &stage, &limits)?;
            let names: Vec<String> = extracted
                .iter()
                .map(|file| {
                    let rel = file.rel_path.to_string_lossy().replace('\\', "/");
                    match &prefix {
                        Some(p) => format!("{p}/{rel}"),
                        None => rel,
                    }
                })
                .collect();
            // Every entry is checked against the resource's recorded files
            // before any of them is moved in: all or nothing.
            check_extracted_fit(&existing, &names, overwrite, &label)?;
            Ok(names.into_iter().zip(extracted).collect())
        },
    )
    .await
    .map_err(|e| Error::Internal(format!("extraction task failed: {e}")))??;
    let mut batch = MoveBatch::new(state.data_dir());
    let mut rows = Vec::with_capacity(extracted.len());
    for (rel, file) in extracted {
        let dest = SafeRelPath::parse(&rel)?.under(&resource_root);
        let row = new_file(rel, &file.stored, write);
        batch.add_move(
            staging.join(&file.rel_path),
            dest,
            Some((row.size, row.md5.clone())),
        );
        rows.push(row);
    }
    commit_files(state, resource, &rows, batch).await
}

/// Deletes `resource` with its files (needs edit rights in `scope`).
pub async fn delete_resource(state: &AppState, scope: &Scope, resource: Resource) -> Result<()> {
    scope.check(Action::Edit)?;
    state.store().delete_resource(resource.id).await?;
    remove_dirs(state, vec![resource.dir]).await;
    Ok(())
}

/// Deletes the file `name` of `resource`, or every file below the folder
/// `name` (needs edit rights in `scope`).
pub async fn delete_file(
    state: &AppState,
    scope: &Scope,
    resource: &Resource,
    name: &str,
) -> Result<()> {
    scope.check(Action::Edit)?;
    let name = checked_name(name)?;
    let removed = state.store().delete_files_under(resource.id, &name).await?;
    if removed == 0 {
        return Err(Error::not_found(format!("file {name}")));
    }
    let disk = file_on_disk(state, &resource.dir, &name)?;
    let outcome = if disk.is_dir() {
        tokio::fs::remove_dir_all(&disk).await
    } else {
        tokio::fs::remove_file(&disk).await
    };
    if let Err(err) = outcome
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("could not remove {}: {err}", disk.display());
    }
    Ok(())
}

/// Removes folders after their rows are gone; a failure is logged, not
/// fatal, because the database no longer points at them.
pub async fn remove_dirs(state: &AppState, dirs: Vec<String>) {
    let root = state.archive_root().to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        for dir in dirs {
            let full = root.join(&dir);
            if let Err(err) = std::fs::remove_dir_all(&full)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("could not remove {}: {err}", full.display());
            }
        }
    })
    .await;
}
