//! `GET /data/services/dicomdump?src=…&field=…` (xnatpy's `dicom_dump`): the
//! header of the first DICOM file of an archive or prearchive session or
//! scan, or of one named file, as `tag1, tag2, vr, value, desc` rows.

use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use xnatkit_model::resultset::row;

use super::{all_values, table};
use crate::access::Action;
use crate::access::Caller;
use crate::access::ingest::{SourceUse, prearchive_source};
use crate::error::ApiError;
use crate::import::archive::DICOM_RESOURCE;
use crate::import::pipeline::project_access;
use crate::prearchive::build::session_files;
use crate::prearchive::session_dir;
use crate::routes::XnatRequest;
use crate::state::AppState;
use crate::store::{Owner, ShareKind};

pub fn routes() -> Router<AppState> {
    Router::new().route("/data/services/dicomdump", get(dicomdump))
}

async fn dicomdump(
    State(state): State<AppState>,
    caller: Caller,
    XnatRequest { params, .. }: XnatRequest,
) -> Result<Response, ApiError> {
    let src = params
        .get("src")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "name what to dump: src=/archive/projects/P/experiments/E/scans/S".to_owned(),
            )
        })?
        .to_owned();
    let fields: Vec<String> = all_values(&params, "field")
        .into_iter()
        .flat_map(|f| f.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    // Unknown fields are refused before any file is looked for.
    for field in &fields {
        xnatkit_dicom::parse_field(field).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let file = locate(&state, &caller, &src).await?;
    let dumped = tokio::task::spawn_blocking(move || xnatkit_dicom::dicom_dump(&file, &fields))
        .await
        .map_err(|e| ApiError::Internal(format!("dicom dump task failed: {e}")))?;
    let rows = match dumped {
        Ok(rows) => rows,
        Err(err) if err.is_unparsable() => {
            return Err(ApiError::BadRequest(format!(
                "the file named by {src} cannot be read as DICOM: {}",
                err.to_string().rsplit(": ").next().unwrap_or_default()
            )));
        }
        Err(err) => return Err(ApiError::Internal(err.to_string())),
    };
    let rows = rows
        .into_iter()
        .map(|r| {
            row([
                ("tag1", r.tag1),
                ("tag2", r.tag2),
                ("vr", r.vr),
                ("value", r.value),
                ("desc", r.desc),
            ])
        })
        .collect();
    Ok(table(
        "DICOM header",
        &["tag1", "tag2", "vr", "value", "desc"],
        rows,
        &params,
    ))
}

/// What `src` names, split into its parts.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    Archive {
        project: Option<String>,
        experiment: String,
        scan: Option<String>,
        file: Option<(String, String)>,
    },
    Prearchive {
        project: String,
        timestamp: String,
        folder: String,
        scan: Option<String>,
        file: Option<(String, String)>,
    },
}

fn bad_src(src: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "src {src:?} is not understood: use /archive/projects/P[/subjects/S]/experiments/E[/scans/S[/resources/DICOM/files/NAME]] or /prearchive/projects/P/TIMESTAMP/FOLDER[/scans/S…]"
    ))
}

/// A scan ID and a (resource label, file name) below a session.
type ScanTail = (Option<String>, Option<(String, String)>);

/// `scans/S[/resources/R/files/NAME]` after a session.
fn scan_tail(src: &str, tail: &[&str]) -> Result<ScanTail, ApiError> {
    match tail {
        [] => Ok((None, None)),
        ["scans", scan] => Ok((Some((*scan).to_owned()), None)),
        ["scans", scan, "resources", label, "files", name @ ..] if !name.is_empty() => Ok((
            Some((*scan).to_owned()),
            Some(((*label).to_owned(), name.join("/"))),
        )),
        _ => Err(bad_src(src)),
    }
}

fn parse_source(src: &str) -> Result<Source, ApiError> {
    let trimmed = xnatkit_model::uri::without_rest_root(src.trim().trim_end_matches('/'));
    let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    match &segments[..] {
        [
            "prearchive",
            "projects",
            project,
            timestamp,
            folder,
            tail @ ..,
        ] => {
            let (scan, file) = scan_tail(src, tail)?;
            Ok(Source::Prearchive {
                project: (*project).to_owned(),
                timestamp: (*timestamp).to_owned(),
                folder: (*folder).to_owned(),
                scan,
                file,
            })
        }
        [
            "archive",
            "projects",
            project,
            "subjects",
            _,
            "experiments",
            experiment,
            tail @ ..,
        ]
        | [
            "archive",
            "projects",
            project,
            "experiments",
            experiment,
            tail @ ..,
        ]
        | [
            "projects",
            project,
            "subjects",
            _,
            "experiments",
            experiment,
            tail @ ..,
        ]
        | ["projects", project, "experiments", experiment, tail @ ..] => {
            let (scan, file) = scan_tail(src, tail)?;
            Ok(Source::Archive {
                project: Some((*project).to_owned()),
                experiment: (*experiment).to_owned(),
                scan,
                file,
            })
        }
        ["archive", "experiments", experiment, tail @ ..]
        | ["experiments", experiment, tail @ ..] => {
            let (scan, file) = scan_tail(src, tail)?;
            Ok(Source::Archive {
                project: None,
                experiment: (*experiment).to_owned(),
                scan,
                file,
            })
        }
        _ => Err(bad_src(src)),
    }
}

/// Whether the caller may read the data of `project`.
async fn readable(state: &AppState, caller: &Caller, project: &str) -> Result<bool, ApiError> {
    Ok(project_access(state, caller, project)
        .await?
        .is_some_and(|(_, access)| access.check(Action::ReadData, project).is_ok()))
}

/// Finds the file to dump, checking the caller may read it.
async fn locate(state: &AppState, caller: &Caller, src: &str) -> Result<PathBuf, ApiError> {
    let store = state.store();
    match parse_source(src)? {
        Source::Archive {
            project,
            experiment,
            scan,
            file,
        } => {
            // The session and the project whose rights apply: its own, or
            // a project it is shared into (named in `src`, or for the short
            // form any such project the caller may read), as for the archive
            // routes.
            let not_found = || ApiError::not_found(format!("experiment {experiment}"));
            let (found, via) = match &project {
                Some(p) => {
                    let canonical = store
                        .project(p)
                        .await?
                        .map(|p| p.id)
                        .ok_or_else(|| ApiError::not_found(format!("project {p}")))?;
                    let (found, _) = store
                        .experiment_in(&canonical, &experiment)
                        .await?
                        .ok_or_else(not_found)?;
                    (found, canonical)
                }
                None => {
                    let found = store
                        .experiment_by_id(&experiment)
                        .await?
                        .ok_or_else(not_found)?;
                    let mut via = found.project.clone();
                    if !readable(state, caller, &via).await? {
                        for share in store.shares(ShareKind::Experiment, &found.id).await? {
                            if readable(state, caller, &share.project).await? {
                                via = share.project;
                                break;
                            }
                        }
                    }
                    (found, via)
                }
            };
            let (project_row, access) = project_access(state, caller, &via)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("project {via}")))?;
            access.check(Action::ReadData, &format!("project {}", project_row.id))?;
            let scans = store.scans(&found.id).await?;
            let candidates: Vec<_> = match &scan {
                Some(id) => vec![
                    scans
                        .into_iter()
                        .find(|s| &s.scan_id == id)
                        .ok_or_else(|| ApiError::not_found(format!("scan {id}")))?,
                ],
                None => scans,
            };
            for candidate in candidates {
                let label = file.as_ref().map_or(DICOM_RESOURCE, |(l, _)| l.as_str());
                let Some(resource) = store.resource(&Owner::Scan(candidate.pk), label).await?
                else {
                    continue;
                };
                let rows = store.files(resource.id).await?;
                let chosen = match &file {
                    Some((_, name)) => rows.into_iter().find(|r| &r.path == name),
                    None => rows.into_iter().next(),
                };
                if let Some(row) = chosen {
                    return Ok(state.archive_root().join(&resource.dir).join(&row.path));
                }
            }
            Err(ApiError::not_found(format!("DICOM file for {src}")))
        }
        Source::Prearchive {
            project,
            timestamp,
            folder,
            scan,
            file,
        } => {
            // The prearchive's own rule (its project's editors; Unassigned
            // for admins), not the archive's read rule.
            let canonical = prearchive_source(state, caller, &project, SourceUse::View).await?;
            let session = store
                .prearchive_session(&canonical, &timestamp, &folder)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("prearchive session {src}")))?;
            let dir = session_dir(state, &session);
            if let (Some(scan), Some((label, name))) = (&scan, &file) {
                let path = xnatkit_fileio::SafeRelPath::from_segments(["SCANS", scan, label])?
                    .join(&xnatkit_fileio::SafeRelPath::parse(name)?)?
                    .under(&dir);
                return if path.is_file() {
                    Ok(path)
                } else {
                    Err(ApiError::not_found(format!("file {name}")))
                };
            }
            let files = tokio::task::spawn_blocking(move || session_files(&dir))
                .await
                .map_err(|e| ApiError::Internal(format!("listing prearchive files failed: {e}")))?;
            files
                .into_iter()
                .find(|(s, label, _)| {
                    label == DICOM_RESOURCE && scan.as_ref().is_none_or(|wanted| wanted == s)
                })
                .map(|(_, _, path)| path)
                .ok_or_else(|| ApiError::not_found(format!("DICOM file for {src}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            parse_source("/archive/projects/P/experiments/XNAT_E00001/scans/1").unwrap(),
            Source::Archive {
                project: Some("P".to_owned()),
                experiment: "XNAT_E00001".to_owned(),
                scan: Some("1".to_owned()),
                file: None
            }
        );
        assert!(matches!(
            parse_source("/data/prearchive/projects/P/20240101_000000000/S/scans/2/resources/DICOM/files/a.dcm")
                .unwrap(),
            Source::Prearchive { file: Some(_), .. }
        ));
        assert!(parse_source("/elsewhere").is_err());
    }
}
