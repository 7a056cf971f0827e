//! Outputs of pipeline jobs filed into the archive, all or nothing: the
//! job writes into a staging folder on the archive's file system, and one
//! call here creates the resource and moves every file in through the
//! file-move journal (one transaction for all rows). A failure anywhere
//! takes the new resource back, so a failed or killed job leaves no half
//! resource. An earlier resource of the same label is replaced only when
//! the launch asked for it (`overwrite`); it is removed just before the new
//! one is committed.
//!
//! The job acts as the user who launched it, so rights withdrawn since the
//! launch are honoured through the usual [`super::scope`] checks.

use std::path::{Path, PathBuf};

use xnatkit_engine::output_glob::OutputSelector;
use xnatkit_fileio::SafeRelPath;
use xnatkit_model::assessor::qc_scan_statistics;
use xnatkit_model::{ArchivePath, AssessorType};

use super::files::{self, FileWrite, ResourceAttrs, commit_files, new_file, resource_dir_on_disk};
use super::{Actor, Error, Result};
use crate::access::Action;
use crate::file_moves::MoveBatch;

/// What to file.
#[derive(Debug, Clone)]
pub struct OutputResource<'a> {
    /// `/data/experiments/E[/scans/S]`.
    pub parent_uri: &'a str,
    pub label: &'a str,
    pub format: &'a str,
    pub content: &'a str,
    pub tags: &'a str,
    /// The folder holding the files (kept relative paths).
    pub staged: &'a Path,
    /// The command output's `glob`: which of the folder's files are filed
    /// (`None`: all).
    pub glob: Option<&'a str>,
    pub overwrite: bool,
}

/// The files below `dir` an output with `glob` takes, as (relative
/// '/'-path, full path).
pub fn selected_files(dir: &Path, glob: Option<&str>) -> Result<Vec<(String, PathBuf)>> {
    let selector = OutputSelector::new(glob).map_err(Error::Invalid)?;
    let mut files = staged_files(dir)
        .map_err(|e| Error::Internal(format!("listing {}: {e}", dir.display())))?;
    files.retain(|(rel, _)| selector.takes(rel));
    Ok(files)
}

/// Every regular file below `dir`, as (relative '/'-path, full path).
pub fn staged_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Files `output` as a resource of its parent; returns the file count.
pub async fn attach(actor: &Actor<'_>, output: &OutputResource<'_>) -> Result<usize> {
    let state = actor.state;
    let path = ArchivePath::parse_request_path(output.parent_uri)
        .map_err(|e| Error::Invalid(format!("output parent {}: {e}", output.parent_uri)))?;
    let scope = super::required_scope(actor, &path).await?;
    scope.check(Action::Edit)?;
    let owner = scope.resource_owner(actor, &path).await?;
    let staged = {
        let dir = output.staged.to_path_buf();
        let glob = output.glob.map(str::to_owned);
        tokio::task::spawn_blocking(move || selected_files(&dir, glob.as_deref()))
            .await
            .map_err(|e| Error::Internal(format!("listing outputs: {e}")))??
    };
    for (rel, _) in &staged {
        SafeRelPath::parse(rel)?;
    }
    let store = state.store();
    if let Some(existing) = store.resource(&owner.owner, output.label).await? {
        if !output.overwrite {
            return Err(Error::Conflict(format!(
                "{} already has a resource {}; launch again with overwrite=true to replace it",
                output.parent_uri, output.label
            )));
        }
        files::delete_resource(state, &scope, existing).await?;
    }
    let attrs = ResourceAttrs {
        format: Some(output.format.to_owned()),
        content: Some(output.content.to_owned()),
        tags: Some(output.tags.to_owned()),
    };
    let (resource, created) =
        files::put_resource(state, &scope, &owner, None, output.label, &attrs).await?;
    let write = FileWrite {
        overwrite: false,
        format: output.format.to_owned(),
        content: output.content.to_owned(),
        tags: String::new(),
    };
    let outcome = async {
        let root = resource_dir_on_disk(state, &resource.dir)?;
        let mut batch = MoveBatch::new(state.data_dir());
        let mut rows = Vec::with_capacity(staged.len());
        for (rel, full) in &staged {
            let dest = SafeRelPath::parse(rel)?.under(&root);
            let stored = {
                let full = full.clone();
                tokio::task::spawn_blocking(move || xnatkit_fileio::md5_file(&full))
                    .await
                    .map_err(|e| Error::Internal(format!("hashing outputs: {e}")))?
                    .map_err(|e| Error::from_fileio(e, rel))?
            };
            let row = new_file(rel.clone(), &stored, &write);
            batch.add_move(full.clone(), dest, Some((row.size, row.md5.clone())));
            rows.push(row);
        }
        commit_files(state, &resource, &rows, batch).await
    }
    .await;
    match outcome {
        Ok(rows) => Ok(rows.len()),
        Err(err) => {
            if created
                && store
                    .delete_resource_if_empty(resource.id)
                    .await
                    .unwrap_or(false)
            {
                files::remove_dirs(state, vec![resource.dir]).await;
            }
            Err(err)
        }
    }
}

/// Files `output` as a new image assessor of its parent's session (for a
/// scan parent, describing that scan) holding one resource of the output's
/// label; the assessor is labelled `{session}_{label}[_{scan}]`. Returns
/// the assessor's label and the file count. All or nothing: an assessor
/// whose files could not be filed is removed again.
pub async fn attach_assessor(
    actor: &Actor<'_>,
    output: &OutputResource<'_>,
) -> Result<(String, usize)> {
    let path = ArchivePath::parse_request_path(output.parent_uri)
        .map_err(|e| Error::Invalid(format!("output parent {}: {e}", output.parent_uri)))?;
    let scope = super::required_scope(actor, &path).await?;
    scope.check(Action::Edit)?;
    let session = scope.experiment(&path)?.clone();
    let scan_id = path
        .scans
        .as_ref()
        .and_then(|s| s.single())
        .map(str::to_owned);
    let label = assessor_label(&session.label, output.label, scan_id.as_deref());
    let reports = {
        let dir = output.staged.to_path_buf();
        let glob = output.glob.map(str::to_owned);
        tokio::task::spawn_blocking(move || qa_reports(&dir, glob.as_deref()))
            .await
            .map_err(|e| Error::Internal(format!("reading QA reports: {e}")))??
    };
    let store = actor.state.store();
    if let Some(existing) = store.assessor_in(&session.id, &label).await? {
        if !output.overwrite {
            return Err(Error::Conflict(format!(
                "session {} already has assessor {label}; launch again with overwrite=true to replace it",
                session.label
            )));
        }
        super::assessors::remove(actor, &existing).await?;
    }
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        "date".to_owned(),
        chrono::Utc::now().format("%Y-%m-%d").to_string(),
    );
    let (kind, children) = if reports.is_empty() {
        (AssessorType::ImageAssessor, String::new())
    } else {
        fields.insert("type".to_owned(), "xnatkit-qa".to_owned());
        let scan = scan_id.clone().unwrap_or_default();
        let child = qc_scan_statistics(&[(scan, reports)]);
        let children = serde_json::to_string(&[child])
            .map_err(|e| Error::Internal(format!("encoding QA statistics: {e}")))?;
        (AssessorType::QcAssessment, children)
    };
    let user = actor.caller.require_user()?;
    let id = super::assessors::create(
        actor,
        &session,
        &label,
        kind,
        &fields,
        &children,
        &user.username,
    )
    .await?;
    let assessor_uri = format!("/data/experiments/{}/assessors/{id}", session.id);
    let filed = attach(
        actor,
        &OutputResource {
            parent_uri: &assessor_uri,
            label: output.label,
            format: output.format,
            content: output.content,
            tags: output.tags,
            staged: output.staged,
            glob: output.glob,
            overwrite: false,
        },
    )
    .await;
    match filed {
        Ok(count) => Ok((label, count)),
        Err(err) => {
            if let Ok(Some(made)) = store.assessor_in(&session.id, &id).await
                && let Err(cleanup) = super::assessors::remove(actor, &made).await
            {
                tracing::warn!("removing half-filed assessor {id}: {cleanup}");
            }
            Err(err)
        }
    }
}

pub(crate) use xnatkit_model::assessor::output_assessor_label as assessor_label;

/// The metrics of the QA reports among the staged files (`qa.csv`, or
/// `{image}_qa.csv` when a scan made several images, whose metrics are then
/// prefixed with the image's name), in the reports' own order. The CSV is
/// read rather than `qa.json` because it is the flat, ordered `metric,value`
/// form XNAT's `additionalStatistics` want; an empty value (a metric that
/// does not apply, such as tSNR of a 3-D image) is left out.
fn qa_reports(dir: &Path, glob: Option<&str>) -> Result<Vec<(String, f64)>> {
    let staged = selected_files(dir, glob)?;
    let mut metrics = Vec::new();
    for (rel, full) in staged {
        let Some(prefix) = rel.strip_suffix("qa.csv") else {
            continue;
        };
        let text = std::fs::read_to_string(&full)
            .map_err(|e| Error::Internal(format!("reading {}: {e}", full.display())))?;
        metrics.extend(xnatkit_qa::csv_metrics(prefix, &text));
    }
    Ok(metrics)
}
