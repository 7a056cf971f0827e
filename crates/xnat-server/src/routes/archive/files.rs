//! Resources and files: creation, uploads (raw, multipart, `extract=true`
//! archives), listings, single-file GET/HEAD with HTTP Range, deletion.
//!
//! Every byte goes through `archive-io`: uploads are streamed into an
//! `AtomicFile` (temp name, fsync, rename) under an in-flight name, and the
//! file and its row (size + MD5) change together through the file-move
//! journal ([`crate::file_moves`]): rows committed with the journal, then the
//! file renamed into place; start-up recovery finishes or undoes whatever a
//! crash interrupted. A resource created by an upload that fails is removed
//! again only while no other upload uses it and it holds no files.
//!
//! Names reach the disk only as `archive_io::SafeRelPath`s joined onto the
//! archive root. A name that clashes with the resource's files (a file
//! where a folder of it would be, or a folder of that name) is 409, and so
//! is replacing a file without `overwrite=true`, for `extract=true` too;
//! all of it is checked before anything is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use archive_io::SafeRelPath;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use xnat_model::ArchivePath;

use super::Ctx;
use super::download;
use super::listing::RESOURCE_COLUMNS;
use super::objects::remove_dirs;
use super::render::{items_response, resource_item, resource_row, table};
use crate::archive::{ResourceOwner, Scope, required_scope};
use crate::access::Action;
use crate::error::ApiError;
use crate::file_moves::MoveBatch;
use crate::import::locks;
use crate::params::Format;
use crate::routes::text;
use crate::store::{NewFile, Resource};

/// Resource labels become folder names: XNAT's label characters plus '.'.
fn valid_resource_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('.')
        && label.len() <= 255
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn category(owner: &ResourceOwner) -> (&'static str, String) {
    match &owner.scan {
        Some(scan) => ("scans", scan.scan_id.clone()),
        None => ("resources", String::new()),
    }
}

/// Resolves scope, owner and (existing) resource; checks read access first
/// so that nothing about hidden data is revealed.
async fn locate(
    ctx: &Ctx,
    path: &ArchivePath,
) -> Result<(Scope, ResourceOwner, Option<Resource>), ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    check_read(ctx, &scope)?;
    let owner = scope.resource_owner(&ctx.actor(), path).await?;
    let key = path.resource.as_deref().unwrap_or_default();
    let resource = ctx.state.store().resource(&owner.owner, key).await?;
    Ok((scope, owner, resource))
}

/// Read access to the scope, checked before anything about hidden data is
/// revealed.
fn check_read(ctx: &Ctx, scope: &Scope) -> Result<(), ApiError> {
    if let Err(err) = scope.check(Action::ReadData) {
        // Writers that cannot read (anonymous) get their own answer.
        if ctx.caller.user.is_none() && ctx.method != axum::http::Method::GET {
            return Err(ApiError::Unauthorized(
                "Login required: send credentials".to_owned(),
            ));
        }
        return Err(err.into());
    }
    Ok(())
}

pub(crate) async fn get_resource(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (scope, owner, resource) = locate(ctx, path).await?;
    let resource = resource.ok_or_else(|| {
        ApiError::not_found(format!(
            "resource {}",
            path.resource.as_deref().unwrap_or("")
        ))
    })?;
    let (cat, cat_id) = category(&owner);
    match ctx.params.format() {
        Some(Format::Zip | Format::TarGz | Format::Tar) => {
            download::download_resources(ctx, &scope, &owner, vec![resource]).await
        }
        Some(Format::Csv) => Ok(table(
            "Resources",
            RESOURCE_COLUMNS,
            vec![resource_row(&resource, cat, &cat_id)],
            &ctx.params,
        )),
        _ => Ok(items_response(resource_item(&resource, cat, &cat_id))),
    }
}

/// Picks a folder for a new resource that no other resource uses (a
/// renamed session keeps its old folder, so names can collide).
async fn fresh_resource_dir(
    ctx: &Ctx,
    owner: &ResourceOwner,
    label: &str,
) -> Result<String, ApiError> {
    let base = format!("{}/{label}", owner.base_dir);
    let mut candidate = base.clone();
    let mut n = 1;
    while ctx.state.store().resource_dir_in_use(&candidate).await? {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    Ok(candidate)
}

/// Finds or creates the resource a write goes to (insert-or-get: parallel
/// first uploads into one new resource all get the same row). True when this
/// call created it.
async fn writable_resource(
    ctx: &Ctx,
    scope: &Scope,
    owner: &ResourceOwner,
    existing: Option<Resource>,
    label: &str,
) -> Result<(Resource, bool), ApiError> {
    if let Some(resource) = existing {
        scope.check(Action::Edit)?;
        return Ok((resource, false));
    }
    scope.check(Action::Create)?;
    if !valid_resource_label(label) {
        return Err(ApiError::InvalidLabel(format!(
            "Invalid character in resource label {label:?}: use letters, digits, '_', '-', '.'"
        )));
    }
    let dir = fresh_resource_dir(ctx, owner, label).await?;
    let store = ctx.state.store();
    let (id, created) = store
        .create_resource(
            &owner.owner,
            &owner.project,
            label,
            &resource_attr(ctx, "format").unwrap_or_default(),
            &resource_attr(ctx, "content").unwrap_or_default(),
            &resource_attr(ctx, "tags").unwrap_or_default(),
            &dir,
        )
        .await?;
    let resource = store
        .resource_by_id(id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("resource {label} vanished after creation")))?;
    Ok((resource, created))
}

/// A resource attribute from `name=` or `xnat:resourceCatalog/name=`,
/// ignoring response formats and pyxnat's `U` (unknown) placeholder.
fn resource_attr(ctx: &Ctx, name: &str) -> Option<String> {
    super::objects::attribute(ctx, name).filter(|v| !is_transfer_format(v) && v != "U")
}

/// `format=` on a resource PUT names the data format (`DICOM`, `NIFTI`),
/// except the response formats clients also append.
fn is_transfer_format(f: &str) -> bool {
    matches!(
        f.to_ascii_lowercase().as_str(),
        "json" | "xml" | "csv" | "html"
    )
}

pub(crate) async fn put_resource(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (scope, owner, existing) = locate(ctx, path).await?;
    let label = path.resource.as_deref().unwrap_or_default();
    let (resource, created) = writable_resource(ctx, &scope, &owner, existing, label).await?;
    if !created {
        ctx.state
            .store()
            .update_resource(
                resource.id,
                resource_attr(ctx, "format").as_deref(),
                resource_attr(ctx, "content").as_deref(),
                resource_attr(ctx, "tags").as_deref(),
            )
            .await?;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(text(status, resource.id.to_string()))
}

fn is_multipart(ctx: &Ctx) -> Option<String> {
    ctx.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
        .map(str::to_owned)
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    Ok(SafeRelPath::parse(name)?.into_string())
}

/// Refuses (409) a file `name` that would clash with what the resource
/// already holds: a file where one of its folders would be, or a folder of
/// that very name. Checked before anything is written, so a clash leaves
/// nothing behind.
async fn check_no_clash(ctx: &Ctx, resource: &Resource, name: &str) -> Result<(), ApiError> {
    let name = SafeRelPath::parse(name)?;
    let store = ctx.state.store();
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

fn folder_is_a_file(folder: &str, name: &SafeRelPath, label: &str) -> ApiError {
    ApiError::Conflict(format!(
        "File {folder} exists in resource {label}, so it cannot be a folder holding {name}; \
         delete it first or choose another name"
    ))
}

fn file_is_a_folder(name: &str, label: &str) -> ApiError {
    ApiError::Conflict(format!(
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
) -> Result<(), ApiError> {
    for name in names {
        let name = SafeRelPath::parse(name)?;
        if existing.contains(name.as_str()) {
            if overwrite {
                continue;
            }
            return Err(ApiError::Conflict(format!(
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
fn staging_path(ctx: &Ctx, suffix: &str) -> PathBuf {
    ctx.state
        .staging_root()
        .join(format!("{}{suffix}", uuid::Uuid::new_v4()))
}

pub(crate) async fn upload(
    ctx: &Ctx,
    path: &ArchivePath,
    body: Body,
) -> Result<Response, ApiError> {
    // Names are checked before anything is created, so a refused name
    // leaves nothing behind.
    let target = match &path.file {
        Some(f) => Some(checked_name(&f.0)?),
        None => None,
    };
    let (scope, owner, existing) = locate(ctx, path).await?;
    let label = path.resource.as_deref().unwrap_or_default();
    if path.resource.is_none() {
        return Err(ApiError::BadRequest(
            "uploads go to …/resources/{LABEL}/files/{name}".to_owned(),
        ));
    }
    let (resource, created, in_use) = resource_in_use(ctx, &scope, &owner, existing, label).await?;
    let outcome = match is_multipart(ctx) {
        Some(content_type) => {
            upload_multipart(
                ctx,
                &resource,
                created,
                target.as_deref(),
                body,
                &content_type,
            )
            .await
        }
        None => {
            let name = target
                .ok_or_else(|| ApiError::BadRequest("name the file: …/files/{name}".to_owned()))?;
            if ctx.params.flag("extract") {
                let dir = name.rsplit_once('/').map(|(d, _)| d.to_owned());
                upload_archive(ctx, &resource, dir.as_deref(), body)
                    .await
                    .map(drop)
            } else {
                upload_one(ctx, &resource, &name, body.into_data_stream())
                    .await
                    .map(drop)
            }
        }
    };
    drop(in_use);
    if outcome.is_err() && created {
        // The resource was created for this upload: take it back, but only
        // while no other upload uses it and nothing was stored in it — a
        // parallel upload may have found it and been answered 200.
        if let Some(_unused) = locks::resource_unused(resource.id)
            && ctx
                .state
                .store()
                .delete_resource_if_empty(resource.id)
                .await?
        {
            remove_dirs(ctx, vec![resource.dir.clone()]).await;
        }
    }
    outcome?;
    Ok(text(StatusCode::OK, ""))
}

/// Attempts at finding a resource that is not removed by the clean-up of a
/// failed upload before this upload holds it.
const RESOURCE_ATTEMPTS: usize = 3;

/// The resource an upload writes to, held in use for the upload's duration
/// (see [`locks::use_resource`]); true when this upload created it.
async fn resource_in_use(
    ctx: &Ctx,
    scope: &Scope,
    owner: &ResourceOwner,
    mut existing: Option<Resource>,
    label: &str,
) -> Result<(Resource, bool, locks::ResourceUse), ApiError> {
    for _ in 0..RESOURCE_ATTEMPTS {
        let (resource, created) = writable_resource(ctx, scope, owner, existing, label).await?;
        let in_use = locks::use_resource(resource.id).await;
        // Between finding and holding it, a failed upload's clean-up may
        // have removed it; then it is created again.
        if ctx
            .state
            .store()
            .resource_by_id(resource.id)
            .await?
            .is_some()
        {
            return Ok((resource, created, in_use));
        }
        existing = None;
    }
    Err(ApiError::Conflict(format!(
        "resource {label} was removed repeatedly while this upload started; retry the upload"
    )))
}

fn file_meta(ctx: &Ctx, path: String, stored: &archive_io::StoredFile) -> NewFile {
    let pick = |k: &str| {
        ctx.params
            .get(k)
            .filter(|v| !v.eq_ignore_ascii_case("U") && !is_transfer_format(v))
            .unwrap_or_default()
            .to_owned()
    };
    NewFile {
        path,
        size: i64::try_from(stored.size).unwrap_or(i64::MAX),
        md5: stored.md5_hex.clone(),
        format: pick("format"),
        content: pick("content"),
        tags: pick("tags"),
    }
}

async fn upload_one<S, E>(
    ctx: &Ctx,
    resource: &Resource,
    name: &str,
    stream: S,
) -> Result<Vec<NewFile>, ApiError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let store = ctx.state.store();
    if store.file(resource.id, name).await?.is_some() && !ctx.params.flag("overwrite") {
        return Err(ApiError::Conflict(format!(
            "File {name} already exists in resource {}; add overwrite=true to replace it",
            resource.label
        )));
    }
    check_no_clash(ctx, resource, name).await?;
    let dest = download::file_on_disk(ctx, &resource.dir, name)?;
    let mut batch = MoveBatch::new(ctx.state.data_dir());
    // The bytes wait under the batch's in-flight name until their row is
    // committed (see `commit_files`).
    let stored = archive_io::write_stream_atomic(
        &batch.temp_for(&dest),
        stream,
        Some(ctx.state.config().max_upload_bytes),
    )
    .await
    .map_err(|e| ApiError::from_archive_io(e, name))?;
    let row = file_meta(ctx, name.to_owned(), &stored);
    batch.add_fresh(dest, row.size, row.md5.clone());
    commit_files(ctx, resource, &[row], batch).await
}

/// The commit step of every upload: moves staged files under their
/// in-flight names, records the rows together with the batch's journal in
/// one transaction, then renames the files into place.
/// Commits into one resource are serialised so that two uploads of the same
/// name leave the bytes of the one whose row is last. It runs as its own
/// task: a client hanging up must not stop it between commit and rename.
/// Returns the rows it committed.
async fn commit_files(
    ctx: &Ctx,
    resource: &Resource,
    rows: &[NewFile],
    mut batch: MoveBatch,
) -> Result<Vec<NewFile>, ApiError> {
    let state = ctx.state.clone();
    let (resource_id, label, rows) = (resource.id, resource.label.clone(), rows.to_vec());
    let commit = async move {
        let store = state.store();
        // Moves files in from staging (extractions); nothing for fresh ones.
        batch.stage(store).await?;
        let _commit = locks::lock_session(format!("resource-commit/{resource_id}")).await;
        if let Err(err) = store
            .record_files(resource_id, &rows, &batch.commit_record())
            .await
        {
            batch.abort(store).await;
            return Err(ApiError::from(err));
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
    tokio::spawn(commit)
        .await
        .map_err(|e| ApiError::Internal(format!("upload writer failed: {e}")))?
}

/// Stores every file part. When a later part fails and this request created
/// the resource, the parts it stored are taken back, so that the resource
/// can go too (see `upload`).
async fn upload_multipart(
    ctx: &Ctx,
    resource: &Resource,
    created: bool,
    target: Option<&str>,
    body: Body,
    content_type: &str,
) -> Result<(), ApiError> {
    let mut committed = Vec::new();
    let outcome = store_parts(ctx, resource, target, body, content_type, &mut committed).await;
    if outcome.is_err() && created && !committed.is_empty() {
        take_back(ctx, resource, &committed).await;
    }
    outcome
}

/// Removes files this request committed, unless another upload has
/// replaced them since (their digest changed).
async fn take_back(ctx: &Ctx, resource: &Resource, committed: &[NewFile]) {
    let store = ctx.state.store();
    let _commit = locks::lock_session(format!("resource-commit/{}", resource.id)).await;
    for file in committed {
        let Ok(Some(row)) = store.file(resource.id, &file.path).await else {
            continue;
        };
        if row.md5 != file.md5 || store.delete_file_rows(&[row.id]).await.is_err() {
            continue;
        }
        let disk = ctx
            .state
            .archive_root()
            .join(&resource.dir)
            .join(&file.path);
        if let Err(err) = tokio::fs::remove_file(&disk).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove {}: {err}", disk.display());
        }
    }
}

async fn store_parts(
    ctx: &Ctx,
    resource: &Resource,
    target: Option<&str>,
    body: Body,
    content_type: &str,
    committed: &mut Vec<NewFile>,
) -> Result<(), ApiError> {
    let request = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .map_err(|e| ApiError::BadRequest(format!("bad multipart request: {e}")))?;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))?;
    let mut stored_any = false;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))?
    {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let name = match (target, stored_any) {
            (Some(t), false) => t.to_owned(),
            (Some(t), true) => format!("{t}/{}", checked_name(&file_name)?),
            (None, _) => checked_name(&file_name)?,
        };
        let name = checked_name(&name)?;
        if ctx.params.flag("extract") {
            let dir = name.rsplit_once('/').map(|(d, _)| d.to_owned());
            let spooled = spool(ctx, field).await?;
            committed.extend(extract_spooled(ctx, resource, dir.as_deref(), &spooled).await?);
        } else {
            committed.extend(upload_one(ctx, resource, &name, field).await?);
        }
        stored_any = true;
    }
    if stored_any {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "multipart body has no file part".to_owned(),
        ))
    }
}

/// Writes a request body to a staging file (for archives, which need a
/// seekable file to extract).
async fn spool<S, E>(ctx: &Ctx, stream: S) -> Result<PathBuf, ApiError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let path = staging_path(ctx, ".upload");
    archive_io::write_stream_atomic(&path, stream, Some(ctx.state.config().max_upload_bytes))
        .await?;
    Ok(path)
}

async fn upload_archive(
    ctx: &Ctx,
    resource: &Resource,
    dir: Option<&str>,
    body: Body,
) -> Result<Vec<NewFile>, ApiError> {
    let spooled = spool(ctx, body.into_data_stream()).await?;
    extract_spooled(ctx, resource, dir, &spooled).await
}

/// Extracts a spooled archive into a staging folder, then moves every file
/// into the resource and records them all in one transaction through the
/// file-move journal: a failure anywhere before the commit leaves every file
/// of the resource (also those the archive would replace) as it was. The
/// spool and the staging folder are removed whatever happens.
async fn extract_spooled(
    ctx: &Ctx,
    resource: &Resource,
    dir: Option<&str>,
    spooled: &Path,
) -> Result<Vec<NewFile>, ApiError> {
    let staging = staging_path(ctx, ".d");
    let outcome = extract_and_commit(ctx, resource, dir, spooled, &staging).await;
    let _ = tokio::fs::remove_file(spooled).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    outcome
}

async fn extract_and_commit(
    ctx: &Ctx,
    resource: &Resource,
    dir: Option<&str>,
    spooled: &Path,
    staging: &Path,
) -> Result<Vec<NewFile>, ApiError> {
    // The total an archive may unpack to scales with its size, so a small
    // zip bomb is refused as it is by the import service.
    let archive_len = tokio::fs::metadata(spooled)
        .await
        .map(|m| m.len())
        .unwrap_or(u64::MAX);
    let limits = ctx.state.config().extract_limits_for(archive_len);
    let resource_root = download::resource_dir_on_disk(ctx, &resource.dir)?;
    let existing: BTreeSet<String> = ctx
        .state
        .store()
        .files(resource.id)
        .await?
        .into_iter()
        .map(|f| f.path)
        .collect();
    let (overwrite, label) = (ctx.params.flag("overwrite"), resource.label.clone());
    let prefix = dir.map(str::to_owned);
    let (archive, stage) = (spooled.to_path_buf(), staging.to_path_buf());
    let extracted = tokio::task::spawn_blocking(
        move || -> Result<Vec<(String, archive_io::ExtractedFile)>, ApiError> {
            let kind = archive_io::sniff_file(&archive)?.ok_or_else(|| {
                ApiError::BadRequest("extract=true needs a zip, tar or tar.gz upload".to_owned())
            })?;
            let extracted = archive_io::extract_archive(&archive, kind, &stage, &limits)?;
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
    .map_err(|e| ApiError::Internal(format!("extraction task failed: {e}")))??;
    let mut batch = MoveBatch::new(ctx.state.data_dir());
    let mut rows = Vec::with_capacity(extracted.len());
    for (rel, file) in extracted {
        let dest = SafeRelPath::parse(&rel)?.under(&resource_root);
        let row = file_meta(ctx, rel, &file.stored);
        batch.add_move(
            staging.join(&file.rel_path),
            dest,
            Some((row.size, row.md5.clone())),
        );
        rows.push(row);
    }
    commit_files(ctx, resource, &rows, batch).await
}

pub(crate) async fn list_or_download(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    if matches!(
        ctx.params.format(),
        Some(Format::Zip | Format::TarGz | Format::Tar)
    ) {
        return download::download_path(ctx, path).await;
    }
    let rows = download::file_rows(ctx, path).await?;
    Ok(table(
        "Files",
        &[
            "Name",
            "Size",
            "URI",
            "collection",
            "file_tags",
            "file_format",
            "file_content",
            "cat_ID",
            "digest",
        ],
        rows,
        &ctx.params,
    ))
}

/// Parses `Range: bytes=a-b | a- | -n` against `size`; `Ok(None)` = whole file.
fn parse_range(header: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = header.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    // Multiple ranges are answered with the whole file (allowed by RFC 9110).
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec
        .split_once('-')
        .ok_or(ApiError::RangeNotSatisfiable(size))?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix
                .parse()
                .map_err(|_| ApiError::RangeNotSatisfiable(size))?;
            if n == 0 {
                return Err(ApiError::RangeNotSatisfiable(size));
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (s, "") => (
            s.parse().map_err(|_| ApiError::RangeNotSatisfiable(size))?,
            size.saturating_sub(1),
        ),
        (s, e) => {
            let s: u64 = s.parse().map_err(|_| ApiError::RangeNotSatisfiable(size))?;
            let e: u64 = e.parse().map_err(|_| ApiError::RangeNotSatisfiable(size))?;
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if size == 0 || start >= size || start > end {
        return Err(ApiError::RangeNotSatisfiable(size));
    }
    Ok(Some((start, end)))
}

pub(crate) async fn get_file(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    // Same checks as `locate` (scope, read access, owner), but the resource
    // and the file come from one query: this is the hot path of per-file
    // exports, where every database round trip shows.
    let scope = required_scope(&ctx.actor(), path).await?;
    check_read(ctx, &scope)?;
    let owner = scope.resource_owner(&ctx.actor(), path).await?;
    let key = path.resource.as_deref().unwrap_or_default();
    let name = path.file.as_ref().map(|f| f.0.as_str()).unwrap_or_default();
    let (dir, row) = ctx
        .state
        .store()
        .resource_file(&owner.owner, key, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("file {name}")))?;
    let disk = download::file_on_disk(ctx, &dir, &row.path)?;
    // Opening and stat-ing a local file takes microseconds; a blocking-pool
    // hop for each would cost more than it saves.
    let file = std::fs::File::open(&disk)
        .map_err(|e| ApiError::Internal(format!("opening {}: {e}", disk.display())))?;
    let size = file
        .metadata()
        .map_err(|e| ApiError::Internal(format!("reading {}: {e}", disk.display())))?
        .len();
    let range = parse_range(ctx.headers.get(header::RANGE), size)?;
    let (status, start, len) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = if ctx.method == axum::http::Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(archive_io::file_range_stream(file, start, len, disk))
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some((start, end)) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

pub(crate) async fn delete_resource(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (scope, _, resource) = locate(ctx, path).await?;
    let resource = resource.ok_or_else(|| {
        ApiError::not_found(format!(
            "resource {}",
            path.resource.as_deref().unwrap_or("")
        ))
    })?;
    scope.check(Action::Edit)?;
    ctx.state.store().delete_resource(resource.id).await?;
    remove_dirs(ctx, vec![resource.dir]).await;
    Ok(text(StatusCode::OK, ""))
}

pub(crate) async fn delete_file(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (scope, _, resource) = locate(ctx, path).await?;
    let name = path.file.as_ref().map(|f| f.0.as_str()).unwrap_or_default();
    let resource = resource.ok_or_else(|| ApiError::not_found(format!("file {name}")))?;
    scope.check(Action::Edit)?;
    let name = checked_name(name)?;
    let removed = ctx
        .state
        .store()
        .delete_files_under(resource.id, &name)
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found(format!("file {name}")));
    }
    let disk = download::file_on_disk(ctx, &resource.dir, &name)?;
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
    Ok(text(StatusCode::OK, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(
            parse_range(Some(&h("bytes=0-9")), 100).unwrap(),
            Some((0, 9))
        );
        assert_eq!(
            parse_range(Some(&h("bytes=90-")), 100).unwrap(),
            Some((90, 99))
        );
        assert_eq!(
            parse_range(Some(&h("bytes=-10")), 100).unwrap(),
            Some((90, 99))
        );
        assert!(parse_range(Some(&h("bytes=100-")), 100).is_err());
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }
}
