//! "Download images": the scans of many sessions of one project, picked by
//! scan type and scan format (resource label), as one streamed archive.
//! The web page's dialog and XNAT's `/xapi/archive/download…` routes both
//! resolve their selection here, after the same read check as
//! `/data/projects/P/files?format=zip`.
//!
//! Entry layout, with `[P/][S/]` when "include project/subject in paths"
//! is on (subjects as sub-folders):
//! - simplified (XNAT's default in the dialog):
//!   `[P/][S/]SESSION/scans/ID-TYPE/RESOURCE/PATH`
//! - full: `[P/][S/]SESSION/scans/ID-TYPE/resources/RESOURCE/files/PATH`,
//!   the layout of the REST zip and of xnatpy's `download_dir`.
//!
//! Session resources ("Additional Resources", picked by label) go to
//! `SESSION/resources/LABEL/[files/]PATH`, assessors ("Assessments", picked
//! by type) with all their resources to
//! `SESSION/assessors/ASSESSOR/[resources/]RESOURCE/[files/]PATH`, the
//! bracketed parts only in the full layout.

use std::collections::HashSet;

use axum::response::Response;
use xnatkit_fileio::ArchiveEntry;

use super::Ctx;
use super::download::{Selected, scan_folder, stream_archive};
use super::render::file_row;
use crate::archive::browse::readable_project;
use crate::error::ApiError;
use crate::store::{DownloadSession, Owner, Resource, SessionFilter};

/// XNAT's name for scans without a type, in the dialog's type list.
pub const UNASSIGNED_TYPE: &str = "Unassigned";

/// XNAT's `DownloadArchiveOptions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathOptions {
    pub project_in_path: bool,
    pub subject_in_path: bool,
    pub simplified: bool,
}

/// Which scans and resources of the chosen sessions to take. A scan type
/// of "" is written [`UNASSIGNED_TYPE`].
#[derive(Debug, Clone, Default)]
pub struct ImagePick {
    pub scan_types: HashSet<String>,
    pub formats: HashSet<String>,
    /// Session resources by label.
    pub resources: HashSet<String>,
    /// Assessors by type (`icr:roiCollectionData`, …).
    pub assessors: HashSet<String>,
    pub options: PathOptions,
}

impl ImagePick {
    fn takes_type(&self, scan_type: &str) -> bool {
        let key = if scan_type.is_empty() {
            UNASSIGNED_TYPE
        } else {
            scan_type
        };
        self.scan_types.contains(key)
    }
}

/// Which sessions of the project: those a filter matches, optionally only
/// the listed IDs among them (so a list can never reach past the project).
#[derive(Debug, Clone, Default)]
pub struct SessionChoice {
    pub filter: String,
    pub subject: String,
    pub only: Option<HashSet<String>>,
}

/// The project's sessions the choice names, after the read check.
pub(crate) async fn chosen_sessions(
    ctx: &Ctx,
    project: &str,
    choice: &SessionChoice,
) -> Result<Vec<DownloadSession>, ApiError> {
    readable_project(&ctx.actor(), project).await?;
    let mut sessions = ctx
        .state
        .store()
        .download_sessions(&SessionFilter {
            project,
            filter: &choice.filter,
            subject: &choice.subject,
        })
        .await?;
    if let Some(only) = &choice.only {
        sessions.retain(|s| only.contains(&s.id) || only.contains(&s.label));
    }
    Ok(sessions)
}

/// Every file the pick takes from the sessions, with its entry name.
pub(crate) async fn select_images(
    ctx: &Ctx,
    project: &str,
    sessions: &[DownloadSession],
    pick: &ImagePick,
) -> Result<Vec<Selected>, ApiError> {
    let store = ctx.state.store();
    let mut out = Vec::new();
    for session in sessions {
        let mut prefix = String::new();
        if pick.options.project_in_path {
            prefix.push_str(project);
            prefix.push('/');
        }
        if pick.options.subject_in_path {
            prefix.push_str(&session.subject_label);
            prefix.push('/');
        }
        prefix.push_str(&session.label);
        for scan in store.scans(&session.id).await? {
            if !pick.takes_type(&scan.attrs.scan_type) {
                continue;
            }
            let folder = scan_folder(&scan.scan_id, &scan.attrs.scan_type);
            let uri = format!(
                "/data/experiments/{}/scans/{}",
                session.id,
                super::render::encode_segment(&scan.scan_id)
            );
            for resource in store.resources(&Owner::Scan(scan.pk)).await? {
                if !pick.formats.contains(&resource.label) {
                    continue;
                }
                let base = if pick.options.simplified {
                    format!("{prefix}/scans/{folder}/{}/", resource.label)
                } else {
                    format!(
                        "{prefix}/scans/{folder}/resources/{}/files/",
                        resource.label
                    )
                };
                push_files(ctx, &resource, &base, &uri, &mut out).await?;
            }
        }
        let session_uri = format!("/data/experiments/{}", session.id);
        if !pick.resources.is_empty() {
            for resource in store
                .resources(&Owner::Experiment(session.id.clone()))
                .await?
            {
                if !pick.resources.contains(&resource.label) {
                    continue;
                }
                let base = if pick.options.simplified {
                    format!("{prefix}/resources/{}/", resource.label)
                } else {
                    format!("{prefix}/resources/{}/files/", resource.label)
                };
                push_files(ctx, &resource, &base, &session_uri, &mut out).await?;
            }
        }
        if !pick.assessors.is_empty() {
            for assessor in store.assessors(&session.id).await? {
                if !pick.assessors.contains(&assessor.xsi_type) {
                    continue;
                }
                let uri = format!(
                    "{session_uri}/assessors/{}",
                    super::render::encode_segment(&assessor.id)
                );
                for resource in store
                    .resources(&Owner::Assessor(assessor.id.clone()))
                    .await?
                {
                    let base = if pick.options.simplified {
                        format!("{prefix}/assessors/{}/{}/", assessor.label, resource.label)
                    } else {
                        format!(
                            "{prefix}/assessors/{}/resources/{}/files/",
                            assessor.label, resource.label
                        )
                    };
                    push_files(ctx, &resource, &base, &uri, &mut out).await?;
                }
            }
        }
    }
    Ok(out)
}

/// Every file of `resource` as an entry under `base`.
async fn push_files(
    ctx: &Ctx,
    resource: &Resource,
    base: &str,
    uri: &str,
    out: &mut Vec<Selected>,
) -> Result<(), ApiError> {
    for f in ctx.state.store().files(resource.id).await? {
        out.push(Selected {
            entry: ArchiveEntry {
                name: format!("{base}{}", f.path),
                source: crate::archive::files::file_on_disk(&ctx.state, &resource.dir, &f.path)?,
                size: f.size.unsigned_abs(),
                modified: None,
            },
            row: file_row(&f, resource, uri),
        });
    }
    Ok(())
}

/// The pick as one streamed zip or tar.gz (`ctx.params`' `format`).
pub(crate) async fn download_images(
    ctx: &Ctx,
    project: &str,
    choice: &SessionChoice,
    pick: &ImagePick,
) -> Result<Response, ApiError> {
    let sessions = chosen_sessions(ctx, project, choice).await?;
    let selected = select_images(ctx, project, &sessions, pick).await?;
    stream_archive(ctx, selected, project)
}

/// Already selected files as one streamed archive named `name`.
pub(crate) fn stream_selection(
    ctx: &Ctx,
    selected: Vec<Selected>,
    name: &str,
) -> Result<Response, ApiError> {
    stream_archive(ctx, selected, name)
}

/// XML text of `value` for an attribute or element.
pub(crate) fn xml_text(value: &str) -> String {
    super::render::xml_escape(value)
}
