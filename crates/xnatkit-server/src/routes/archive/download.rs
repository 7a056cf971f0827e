//! Archives of many files (zip, tar.gz) streamed with flat memory through
//! `xnatkit-fileio`, in XNAT's entry layout (xnatpy's `download_dir` unpacks
//! by it):
//! `{session}/scans/{id}-{type}/resources/{res}/files/{path}` and
//! `{session}/resources/{res}/files/{path}`; subject and project resources
//! under `{subject}/resources/…` and `{project}/resources/…`. Also the file
//! listings of the same selections.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use xnatkit_fileio::ArchiveEntry;
use xnatkit_model::{ArchivePath, Level, Row, ScanSelector};

use super::Ctx;
use super::listing::{experiments_in, select_scans, subjects_in};
use super::render::file_row;
use crate::access::Action;
use crate::archive::{ResourceOwner, Scope, required_scope};
use crate::error::ApiError;
use crate::params::Format;
use crate::store::{Experiment, Owner, Resource};

/// One stored file selected for a listing or an archive.
pub(crate) struct Selected {
    pub entry: ArchiveEntry,
    pub row: Row,
}

/// Scan folder name: `{id}-{type}` with every non-word character of the
/// type turned into `_`, as XNAT names it.
pub(super) fn scan_folder(scan_id: &str, scan_type: &str) -> String {
    if scan_type.is_empty() {
        return scan_id.to_owned();
    }
    let clean: String = scan_type
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{scan_id}-{clean}")
}

async fn select_resource_files(
    ctx: &Ctx,
    resource: &Resource,
    entry_prefix: &str,
    owner_uri: &str,
    out: &mut Vec<Selected>,
) -> Result<(), ApiError> {
    for f in ctx.state.store().files(resource.id).await? {
        out.push(Selected {
            entry: ArchiveEntry {
                name: format!("{entry_prefix}{}/files/{}", resource.label, f.path),
                source: crate::archive::files::file_on_disk(&ctx.state, &resource.dir, &f.path)?,
                size: f.size.unsigned_abs(),
                modified: None,
            },
            row: file_row(&f, resource, owner_uri),
        });
    }
    Ok(())
}

fn matches_key(resource: &Resource, key: Option<&str>) -> bool {
    key.is_none_or(|k| resource.label == k || resource.id.to_string() == k)
}

/// Files of a session: selected scans, optionally session resources too.
/// Entries start with `label`, the session's label in the project the
/// download goes through.
async fn select_session(
    ctx: &Ctx,
    experiment: &Experiment,
    label: &str,
    scans: Option<&ScanSelector>,
    resource_key: Option<&str>,
    with_session_resources: bool,
    out: &mut Vec<Selected>,
) -> Result<(), ApiError> {
    let keep = |resource: &Resource| matches_key(resource, resource_key);
    select_session_where(
        ctx,
        experiment,
        label,
        scans,
        with_session_resources,
        &keep,
        out,
    )
    .await
}

/// [`select_session`] with any rule for which resources to take.
async fn select_session_where(
    ctx: &Ctx,
    experiment: &Experiment,
    label: &str,
    scans: Option<&ScanSelector>,
    with_session_resources: bool,
    keep: &(dyn Fn(&Resource) -> bool + Sync),
    out: &mut Vec<Selected>,
) -> Result<(), ApiError> {
    let store = ctx.state.store();
    for scan in select_scans(store.scans(&experiment.id).await?, scans) {
        let prefix = format!(
            "{label}/scans/{}/resources/",
            scan_folder(&scan.scan_id, &scan.attrs.scan_type)
        );
        let uri = format!(
            "/data/experiments/{}/scans/{}",
            experiment.id,
            super::render::encode_segment(&scan.scan_id)
        );
        for resource in store.resources(&Owner::Scan(scan.pk)).await? {
            if keep(&resource) {
                select_resource_files(ctx, &resource, &prefix, &uri, out).await?;
            }
        }
    }
    if with_session_resources {
        let prefix = format!("{label}/resources/");
        let uri = format!("/data/experiments/{}", experiment.id);
        for resource in store
            .resources(&Owner::Experiment(experiment.id.clone()))
            .await?
        {
            if keep(&resource) {
                select_resource_files(ctx, &resource, &prefix, &uri, out).await?;
            }
        }
        // A whole session's download carries its assessors' files too.
        for assessor in store.assessors(&experiment.id).await? {
            let owner = crate::archive::assessors::resource_owner(experiment, &assessor);
            let prefix = format!("{label}/assessors/{}/resources/", assessor.label);
            for resource in store.resources(&owner.owner).await? {
                if keep(&resource) {
                    select_resource_files(ctx, &resource, &prefix, &owner.uri, out).await?;
                }
            }
        }
    }
    Ok(())
}

/// Entry prefix (up to `resources/`) for resources of `owner`, with labels
/// as the project the download goes through knows them.
fn owner_prefix(scope: &Scope, owner: &ResourceOwner) -> String {
    match (
        &owner.owner,
        scope.experiment_label(),
        scope.subject_label(),
    ) {
        (Owner::Scan(_), Some(exp), _) => {
            let folder = owner
                .scan
                .as_ref()
                .map(|s| scan_folder(&s.scan_id, &s.attrs.scan_type))
                .unwrap_or_default();
            format!("{exp}/scans/{folder}/resources/")
        }
        (Owner::Experiment(_), Some(exp), _) => format!("{exp}/resources/"),
        (Owner::Assessor(_), Some(exp), _) => format!(
            "{exp}/assessors/{}/resources/",
            owner.assessor_label.as_deref().unwrap_or_default()
        ),
        (Owner::Subject(_), _, Some(subject)) => format!("{subject}/resources/"),
        _ => format!("{}/resources/", scope.project.id),
    }
}

async fn select_path(ctx: &Ctx, path: &ArchivePath) -> Result<(Vec<Selected>, String), ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let mut out = Vec::new();
    let name;
    if path.resource.is_some() {
        let owner = scope.resource_owner(&ctx.actor(), path).await?;
        let key = path.resource.as_deref().unwrap_or_default();
        let resource = ctx
            .state
            .store()
            .resource(&owner.owner, key)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("resource {key}")))?;
        select_resource_files(
            ctx,
            &resource,
            &owner_prefix(&scope, &owner),
            &owner.uri,
            &mut out,
        )
        .await?;
        name = scope
            .experiment_label()
            .map(str::to_owned)
            .unwrap_or_else(|| resource.label.clone());
    } else if path.assessor.is_some() {
        // `…/assessors/A/files`: every resource of the assessor.
        let owner = scope.resource_owner(&ctx.actor(), path).await?;
        let prefix = owner_prefix(&scope, &owner);
        for resource in ctx.state.store().resources(&owner.owner).await? {
            select_resource_files(ctx, &resource, &prefix, &owner.uri, &mut out).await?;
        }
        name = owner.assessor_label.unwrap_or_default();
    } else {
        let experiment = scope.experiment(path)?;
        let label = scope.experiment_label().unwrap_or(&experiment.label);
        select_session(
            ctx,
            experiment,
            label,
            path.scans.as_ref(),
            None,
            path.scans.is_none(),
            &mut out,
        )
        .await?;
        name = label.to_owned();
    }
    Ok((out, name))
}

/// File rows of a `…/files` listing (resource, scans or whole session).
pub(crate) async fn file_rows(ctx: &Ctx, path: &ArchivePath) -> Result<Vec<Row>, ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    if path.resource.is_some() {
        let owner = scope.resource_owner(&ctx.actor(), path).await?;
        let key = path.resource.as_deref().unwrap_or_default();
        let resource = ctx
            .state
            .store()
            .resource(&owner.owner, key)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("resource {key}")))?;
        let mut out = Vec::new();
        select_resource_files(ctx, &resource, "", &owner.uri, &mut out).await?;
        return Ok(out.into_iter().map(|s| s.row).collect());
    }
    let (selected, _) = select_path(ctx, path).await?;
    Ok(selected.into_iter().map(|s| s.row).collect())
}

/// `…/files?format=zip|tar.gz` at resource, scan or session level.
pub(crate) async fn download_path(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (selected, name) = select_path(ctx, path).await?;
    stream_archive(ctx, selected, &name)
}

/// The resources of one session picked by row ID (the web page's Files
/// panel: any mix of scan, session and assessor resources), in the same
/// entry layout and with the same read check as `…/files?format=zip`.
/// IDs that are not resources of this session are ignored.
pub(crate) async fn download_session_resources(
    ctx: &Ctx,
    path: &ArchivePath,
    picked: &std::collections::HashSet<i64>,
) -> Result<Response, ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let experiment = scope.experiment(path)?;
    let label = scope.experiment_label().unwrap_or(&experiment.label);
    let keep = |resource: &Resource| picked.contains(&resource.id);
    let mut out = Vec::new();
    select_session_where(ctx, experiment, label, None, true, &keep, &mut out).await?;
    stream_archive(ctx, out, label)
}

/// `…/resources/{R}?format=zip`.
pub(crate) async fn download_resources(
    ctx: &Ctx,
    scope: &Scope,
    owner: &ResourceOwner,
    resources: Vec<Resource>,
) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    let prefix = owner_prefix(scope, owner);
    for resource in &resources {
        select_resource_files(ctx, resource, &prefix, &owner.uri, &mut out).await?;
    }
    let name = resources
        .first()
        .map(|r| r.label.clone())
        .unwrap_or_default();
    stream_archive(ctx, out, &name)
}

/// `/data/projects/P[/subjects/S]/files?format=zip`: everything below a
/// subject or a project, shared data included, with labels as that project
/// knows them.
pub(crate) async fn download_level(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let project = scope.project.id.clone();
    let (subjects, experiments) = if path.level() == Level::Subject {
        let subject = scope.subject(path)?;
        let label = scope.subject_label().unwrap_or(&subject.label).to_owned();
        let experiments = experiments_in(ctx, &project, Some(subject)).await?;
        (vec![(subject.clone(), label)], experiments)
    } else {
        (
            subjects_in(ctx, &project).await?,
            experiments_in(ctx, &project, None).await?,
        )
    };
    let mut out = Vec::new();
    let name;
    if path.level() == Level::Project {
        name = project.clone();
        let uri = format!("/data/projects/{project}");
        for resource in store.resources(&Owner::Project(project.clone())).await? {
            let prefix = format!("{project}/resources/");
            select_resource_files(ctx, &resource, &prefix, &uri, &mut out).await?;
        }
    } else {
        name = subjects
            .first()
            .map(|(_, label)| label.clone())
            .unwrap_or_default();
    }
    for (subject, label) in &subjects {
        let uri = format!("/data/projects/{project}/subjects/{}", subject.id);
        for resource in store.resources(&Owner::Subject(subject.id.clone())).await? {
            let prefix = format!("{label}/resources/");
            select_resource_files(ctx, &resource, &prefix, &uri, &mut out).await?;
        }
    }
    for (experiment, label) in &experiments {
        select_session(ctx, experiment, label, None, None, true, &mut out).await?;
    }
    if matches!(
        ctx.params.format(),
        Some(Format::Zip | Format::TarGz | Format::Tar)
    ) {
        stream_archive(ctx, out, &name)
    } else {
        let rows = out.into_iter().map(|s| s.row).collect();
        Ok(super::render::table(
            "Files",
            &["Name", "Size", "URI", "collection", "cat_ID", "digest"],
            rows,
            &ctx.params,
        ))
    }
}

pub(super) fn stream_archive(
    ctx: &Ctx,
    selected: Vec<Selected>,
    name: &str,
) -> Result<Response, ApiError> {
    if selected.is_empty() {
        return Err(ApiError::NotFound(
            "Not Found: no files to download".to_owned(),
        ));
    }
    let entries: Vec<ArchiveEntry> = selected.into_iter().map(|s| s.entry).collect();
    let (stream, content_type, extension) = match ctx.params.format() {
        Some(Format::TarGz) => (
            xnatkit_fileio::tar_gz_stream(entries),
            "application/x-gzip",
            "tar.gz",
        ),
        Some(Format::Tar) => (
            xnatkit_fileio::tar_stream(entries),
            "application/x-tar",
            "tar",
        ),
        _ => (
            xnatkit_fileio::zip_stream_with(entries, ctx.params.zip_compression()),
            "application/zip",
            "zip",
        ),
    };
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_folders_like_xnat() {
        assert_eq!(scan_folder("1", "T1 MPRAGE"), "1-T1_MPRAGE");
        assert_eq!(scan_folder("2", ""), "2");
    }
}
