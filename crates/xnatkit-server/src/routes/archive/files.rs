//! The HTTP side of resources and files: parses uploads (raw, multipart,
//! `extract=true` archives) and parameters, calls the archive's rules in
//! [`crate::archive::files`], and answers: listings, single-file GET/HEAD
//! with HTTP Range, creation and deletion.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use xnatkit_model::ArchivePath;

use super::Ctx;
use super::download;
use super::listing::RESOURCE_COLUMNS;
use super::render::{items_response, resource_item, resource_row, table};
use crate::access::Action;
use crate::archive::files::{self as rules, FileWrite, ResourceAttrs, checked_name};
use crate::archive::{ResourceOwner, Scope, required_scope};
use crate::error::ApiError;
use crate::params::Format;
use crate::routes::text;
use crate::store::{NewFile, Resource};

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

/// The resource attributes a request gives.
fn resource_attrs(ctx: &Ctx) -> ResourceAttrs {
    ResourceAttrs {
        format: resource_attr(ctx, "format"),
        content: resource_attr(ctx, "content"),
        tags: resource_attr(ctx, "tags"),
    }
}

/// How a request writes files: `overwrite=true` and the file attributes
/// (pyxnat's `U` placeholder and response formats ignored).
fn file_write(ctx: &Ctx) -> FileWrite {
    let pick = |k: &str| {
        ctx.params
            .get(k)
            .filter(|v| !v.eq_ignore_ascii_case("U") && !is_transfer_format(v))
            .unwrap_or_default()
            .to_owned()
    };
    FileWrite {
        overwrite: ctx.params.flag("overwrite"),
        format: pick("format"),
        content: pick("content"),
        tags: pick("tags"),
    }
}

pub(crate) async fn put_resource(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (scope, owner, existing) = locate(ctx, path).await?;
    let label = path.resource.as_deref().unwrap_or_default();
    let (resource, created) = rules::put_resource(
        &ctx.state,
        &scope,
        &owner,
        existing,
        label,
        &resource_attrs(ctx),
    )
    .await?;
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
    let upload = rules::start_upload(
        &ctx.state,
        &scope,
        &owner,
        existing,
        label,
        &resource_attrs(ctx),
    )
    .await?;
    let write = file_write(ctx);
    let outcome = match is_multipart(ctx) {
        Some(content_type) => {
            upload_multipart(
                ctx,
                &upload.resource,
                upload.created,
                target.as_deref(),
                body,
                &content_type,
                &write,
            )
            .await
        }
        None => {
            let name = target
                .ok_or_else(|| ApiError::BadRequest("name the file: …/files/{name}".to_owned()))?;
            let stored = if ctx.params.flag("extract") {
                let dir = name.rsplit_once('/').map(|(d, _)| d.to_owned());
                match rules::spool(&ctx.state, body.into_data_stream()).await {
                    Ok(spooled) => {
                        rules::put_archive(
                            &ctx.state,
                            &upload.resource,
                            dir.as_deref(),
                            &spooled,
                            &write,
                        )
                        .await
                    }
                    Err(err) => Err(err),
                }
            } else {
                rules::put_file(
                    &ctx.state,
                    &upload.resource,
                    &name,
                    body.into_data_stream(),
                    &write,
                )
                .await
            };
            stored.map(drop).map_err(ApiError::from)
        }
    };
    upload.finish(&ctx.state, outcome.is_ok()).await?;
    outcome?;
    Ok(text(StatusCode::OK, ""))
}

/// Stores every file part. When a later part fails and this request created
/// the resource, the parts it stored are taken back, so that the resource
/// can go too (see [`rules::Upload::finish`]).
async fn upload_multipart(
    ctx: &Ctx,
    resource: &Resource,
    created: bool,
    target: Option<&str>,
    body: Body,
    content_type: &str,
    write: &FileWrite,
) -> Result<(), ApiError> {
    let mut committed = Vec::new();
    let outcome = store_parts(
        ctx,
        resource,
        target,
        body,
        content_type,
        write,
        &mut committed,
    )
    .await;
    if outcome.is_err() && created && !committed.is_empty() {
        rules::take_back(&ctx.state, resource, &committed).await;
    }
    outcome
}

/// A multipart body (its `Content-Type`, with the boundary) as axum's
/// [`Multipart`], for handlers that hold the body apart from the request.
pub(super) async fn multipart_of(body: Body, content_type: &str) -> Result<Multipart, ApiError> {
    let request = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .map_err(|e| ApiError::BadRequest(format!("bad multipart request: {e}")))?;
    Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("bad multipart body: {e}")))
}

async fn store_parts(
    ctx: &Ctx,
    resource: &Resource,
    target: Option<&str>,
    body: Body,
    content_type: &str,
    write: &FileWrite,
    committed: &mut Vec<NewFile>,
) -> Result<(), ApiError> {
    let mut multipart = multipart_of(body, content_type).await?;
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
            let spooled = rules::spool(&ctx.state, field).await?;
            committed.extend(
                rules::put_archive(&ctx.state, resource, dir.as_deref(), &spooled, write).await?,
            );
        } else {
            committed.extend(rules::put_file(&ctx.state, resource, &name, field, write).await?);
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
    let disk = rules::file_on_disk(&ctx.state, &dir, &row.path)?;
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
        Body::from_stream(xnatkit_fileio::file_range_stream(file, start, len, disk))
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
    rules::delete_resource(&ctx.state, &scope, resource).await?;
    Ok(text(StatusCode::OK, ""))
}

pub(crate) async fn delete_file(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (scope, _, resource) = locate(ctx, path).await?;
    let name = path.file.as_ref().map(|f| f.0.as_str()).unwrap_or_default();
    let resource = resource.ok_or_else(|| ApiError::not_found(format!("file {name}")))?;
    rules::delete_file(&ctx.state, &scope, &resource, name).await?;
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
