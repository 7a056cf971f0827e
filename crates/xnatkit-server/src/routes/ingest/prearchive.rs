//! Prearchive REST surface (XNAT's `/data/prearchive` and
//! `/data/services/prearchive`, as xnatpy and pyxnat use them):
//! listings with the columns and time formats xnatpy parses, session
//! details, scans, resources, files, zip download, the per-session actions
//! and the batch services. Unassigned sessions are visible to admins only.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use xnatkit_fileio::SafeRelPath;
use xnatkit_model::Row;
use xnatkit_model::resultset::row;

use super::{all_values, table};
use crate::access::Caller;
use crate::access::ingest::{
    SourceUse, destination, move_destination, prearchive_code_access, prearchive_source,
};
use crate::error::ApiError;
use crate::import::Overwrite;
use crate::params::{Format, Params};
use crate::prearchive::actions::{self, ArchiveRequest};
use crate::prearchive::build::{rebuild, session_files};
use crate::prearchive::{listing_time, prearchive_root, session_uri};
use crate::routes::XnatRequest;
use crate::routes::text;
use crate::state::AppState;
use crate::store::{PrearchiveSession, UNASSIGNED};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/data/prearchive/{*rest}", any(prearchive))
        .route("/data/services/archive", post(archive_service))
        .route("/data/services/prearchive/{operation}", post(batch_service))
        .route("/data/projects/{project}/prearchive_code", get(get_code))
        .route(
            "/data/projects/{project}/prearchive_code/{code}",
            put(put_code).post(put_code).get(get_code_with),
        )
}

/// Loads a session after [`prearchive_source`] allowed `how` on its project.
async fn load_session(
    state: &AppState,
    caller: &Caller,
    project: &str,
    timestamp: &str,
    folder: &str,
    how: SourceUse,
) -> Result<PrearchiveSession, ApiError> {
    let canonical = prearchive_source(state, caller, project, how).await?;
    state
        .store()
        .prearchive_session(&canonical, timestamp, folder)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "prearchive session {canonical}/{timestamp}/{folder}"
            ))
        })
}

/// `/prearchive/projects/P/TS/F` (with or without `/data`) → its parts.
fn parse_src(src: &str) -> Result<(String, String, String), ApiError> {
    let trimmed = xnatkit_model::uri::without_rest_root(src.trim().trim_end_matches('/'));
    match trimmed
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()[..]
    {
        ["prearchive", "projects", p, ts, f] => Ok((p.to_owned(), ts.to_owned(), f.to_owned())),
        _ => Err(ApiError::BadRequest(format!(
            "src {src:?} does not name a prearchive session: use /prearchive/projects/P/TIMESTAMP/FOLDER"
        ))),
    }
}

fn autoarchive_name(code: i64) -> &'static str {
    match code {
        4 => "AutoArchive",
        5 => "AutoArchiveOverwrite",
        _ => "Manual",
    }
}

const SESSION_COLUMNS: [&str; 19] = [
    "project",
    "timestamp",
    "lastmod",
    "uploaded",
    "scan_date",
    "scan_time",
    "subject",
    "folderName",
    "name",
    "tag",
    "status",
    "url",
    "autoarchive",
    "prevent_anon",
    "prevent_auto_commit",
    "SOURCE",
    "VISIT",
    "PROTOCOL",
    "TIMEZONE",
];

fn session_row(session: &PrearchiveSession, code: i64) -> Row {
    row([
        ("project", session.project.clone()),
        ("timestamp", session.timestamp.clone()),
        ("lastmod", listing_time(session.lastmod)),
        ("uploaded", listing_time(session.uploaded)),
        ("scan_date", session.scan_date.clone()),
        ("scan_time", session.scan_time.clone()),
        ("subject", session.subject.clone()),
        ("folderName", session.folder.clone()),
        ("name", session.folder.clone()),
        ("tag", session.tag.clone()),
        ("status", session.status.to_string()),
        ("url", session_uri(session)),
        ("autoarchive", autoarchive_name(code).to_owned()),
        ("prevent_anon", "false".to_owned()),
        ("prevent_auto_commit", "false".to_owned()),
        ("SOURCE", session.source.clone()),
        ("VISIT", String::new()),
        ("PROTOCOL", String::new()),
        ("TIMEZONE", String::new()),
    ])
}

async fn session_rows(
    state: &AppState,
    sessions: Vec<PrearchiveSession>,
) -> Result<Vec<Row>, ApiError> {
    let mut codes: HashMap<String, i64> = HashMap::new();
    let mut rows = Vec::with_capacity(sessions.len());
    for session in sessions {
        let code = match codes.get(&session.project) {
            Some(code) => *code,
            None => {
                let code = state.store().prearchive_code(&session.project).await?;
                codes.insert(session.project.clone(), code);
                code
            }
        };
        rows.push(session_row(&session, code));
    }
    Ok(rows)
}

/// The segments after `…/prearchive/` of the raw request path, each
/// percent-decoded exactly once (and refused if that yields no UTF-8 text
/// or a control character). Not axum's `Path`: that has decoded the
/// wildcard already (turning `%2F` into a separator), and decoding it again
/// turned `%252F` into one too.
fn prearchive_segments(raw_path: &str) -> Result<Vec<String>, ApiError> {
    let rest = raw_path
        .split_once("/prearchive/")
        .map_or("", |(_, rest)| rest);
    rest.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            xnatkit_model::path::decode_segment(s).map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .collect()
}

async fn prearchive(
    State(state): State<AppState>,
    caller: Caller,
    XnatRequest { parts, params, .. }: XnatRequest,
) -> Result<Response, ApiError> {
    let method = parts.method.clone();
    let segments = prearchive_segments(parts.uri.path())?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, &segs[..]) {
        (&Method::GET, ["projects"]) => list(&state, &caller, None, &params).await,
        (&Method::GET, ["projects", project]) => {
            list(&state, &caller, Some(project), &params).await
        }
        (_, ["projects", project, timestamp, folder, tail @ ..]) => {
            let how = if method == Method::GET || method == Method::HEAD {
                SourceUse::View
            } else if method == Method::POST && params.get("action") == Some("move") {
                SourceUse::Claim
            } else {
                SourceUse::Change
            };
            let session = load_session(&state, &caller, project, timestamp, folder, how).await?;
            match (&method, tail) {
                (&Method::GET, []) => session_get(&state, &session, &params).await,
                (&Method::POST, []) | (&Method::PUT, []) => {
                    act(&state, &caller, &session, &params).await
                }
                (&Method::DELETE, []) => {
                    actions::delete(&state, &session).await?;
                    Ok(text(StatusCode::OK, ""))
                }
                (&Method::GET, rest) => session_part(&state, &session, rest, &params).await,
                _ => Err(ApiError::BadRequest(format!(
                    "method {method} is not supported here"
                ))),
            }
        }
        _ => Err(ApiError::NotFound("Not Found".to_owned())),
    }
}

async fn list(
    state: &AppState,
    caller: &Caller,
    project: Option<&str>,
    params: &Params,
) -> Result<Response, ApiError> {
    let sessions = match project {
        Some(p) => {
            let canonical = prearchive_source(state, caller, p, SourceUse::View).await?;
            state.store().prearchive_sessions(Some(&canonical)).await?
        }
        None => {
            let mut visible = Vec::new();
            let mut allowed: HashMap<String, bool> = HashMap::new();
            for session in state.store().prearchive_sessions(None).await? {
                let ok = match allowed.get(&session.project) {
                    Some(ok) => *ok,
                    None => {
                        let ok =
                            prearchive_source(state, caller, &session.project, SourceUse::View)
                                .await
                                .is_ok();
                        allowed.insert(session.project.clone(), ok);
                        ok
                    }
                };
                if ok {
                    visible.push(session);
                }
            }
            visible
        }
    };
    let rows = session_rows(state, sessions).await?;
    Ok(table("Prearchive", &SESSION_COLUMNS, rows, params))
}

async fn session_get(
    state: &AppState,
    session: &PrearchiveSession,
    params: &Params,
) -> Result<Response, ApiError> {
    if params.format() == Some(Format::Zip) {
        return download_zip(state, session).await;
    }
    let rows = session_rows(state, vec![session.clone()]).await?;
    Ok(table("Prearchive", &SESSION_COLUMNS, rows, params))
}

/// `prearchive/{project}/{timestamp}/{folder}[/below…]` of a session, built
/// only from validated parts joined onto the prearchive root: the session's
/// stored names (refused as an internal error if a row was ever corrupted)
/// and the client's segments (refused as a bad request).
fn session_path(
    state: &AppState,
    session: &PrearchiveSession,
    below: &[&str],
) -> Result<PathBuf, ApiError> {
    let stored = SafeRelPath::from_segments([
        session.project.as_str(),
        session.timestamp.as_str(),
        session.folder.as_str(),
    ])
    .map_err(|e| {
        ApiError::Internal(format!(
            "prearchive session row {} names an unusable folder: {e}",
            session.id
        ))
    })?;
    let full = if below.is_empty() {
        stored
    } else {
        stored.join(&SafeRelPath::from_segments(below)?)?
    };
    Ok(full.under(&prearchive_root(state)))
}

async fn download_zip(state: &AppState, session: &PrearchiveSession) -> Result<Response, ApiError> {
    let dir = session_path(state, session, &[])?;
    let folder = session.folder.clone();
    let files = tokio::task::spawn_blocking(move || session_files(&dir))
        .await
        .map_err(|e| ApiError::Internal(format!("listing prearchive files failed: {e}")))?;
    let entries = files
        .into_iter()
        .map(|(scan, label, path)| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            xnatkit_fileio::ArchiveEntry {
                name: format!("{folder}/SCANS/{scan}/{label}/{name}"),
                source: path,
                size,
                modified: None,
            }
        })
        .collect();
    let stream = xnatkit_fileio::zip_stream_with(entries, xnatkit_fileio::ZipCompression::Stored);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}.zip\"", session.folder))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Scans, resources, files and single files of a session.
async fn session_part(
    state: &AppState,
    session: &PrearchiveSession,
    rest: &[&str],
    params: &Params,
) -> Result<Response, ApiError> {
    let base = format!("/data{}", session_uri(session));
    match rest {
        ["scans"] => {
            let rows = state
                .store()
                .prearchive_scans(session.id)
                .await?
                .into_iter()
                .map(|scan| {
                    row([
                        ("ID", scan.scan_id.clone()),
                        ("xsiType", scan.xsi_type),
                        ("type", scan.scan_type),
                        ("series_description", scan.series_description),
                        ("modality", scan.modality),
                        ("frames", scan.frames.to_string()),
                        ("UID", scan.series_uid),
                        ("URI", format!("{base}/scans/{}", scan.scan_id)),
                    ])
                })
                .collect();
            Ok(table(
                "Scans",
                &[
                    "ID",
                    "xsiType",
                    "type",
                    "series_description",
                    "modality",
                    "frames",
                    "UID",
                    "URI",
                ],
                rows,
                params,
            ))
        }
        ["scans", scan, "resources"] => {
            let scan_dir = session_path(state, session, &["SCANS", scan])?;
            let mut rows = Vec::new();
            let mut entries = tokio::fs::read_dir(&scan_dir)
                .await
                .map_err(|_| ApiError::not_found(format!("scan {scan}")))?;
            while let Ok(Some(entry)) = entries.next_entry().await {
                let label = entry.file_name().to_string_lossy().into_owned();
                let (mut count, mut size) = (0u64, 0u64);
                if let Ok(mut files) = tokio::fs::read_dir(entry.path()).await {
                    while let Ok(Some(file)) = files.next_entry().await {
                        if let Ok(meta) = file.metadata().await
                            && meta.is_file()
                        {
                            count += 1;
                            size += meta.len();
                        }
                    }
                }
                rows.push(row([
                    ("label", label),
                    ("file_count", count.to_string()),
                    ("file_size", size.to_string()),
                ]));
            }
            Ok(table(
                "Resources",
                &["label", "file_count", "file_size"],
                rows,
                params,
            ))
        }
        ["scans", scan, "resources", label, "files"] => {
            let resource_dir = session_path(state, session, &["SCANS", scan, label])?;
            let mut entries = tokio::fs::read_dir(&resource_dir)
                .await
                .map_err(|_| ApiError::not_found(format!("resource {label} of scan {scan}")))?;
            let mut rows = Vec::new();
            while let Ok(Some(entry)) = entries.next_entry().await {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let size = entry.metadata().await.map(|m| m.len()).unwrap_or(0);
                rows.push(row([
                    ("Name", name.clone()),
                    ("Size", size.to_string()),
                    (
                        "URI",
                        format!("{base}/scans/{scan}/resources/{label}/files/{name}"),
                    ),
                ]));
            }
            rows.sort_by(|a, b| a.get("Name").cmp(&b.get("Name")));
            Ok(table("Files", &["Name", "Size", "URI"], rows, params))
        }
        ["scans", scan, "resources", label, "files", name] => {
            let path = session_path(state, session, &["SCANS", scan, label, name])?;
            let not_found = || ApiError::not_found(format!("file {name}"));
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|_| not_found())?;
            let meta = file.metadata().await.map_err(|_| not_found())?;
            // A folder opens fine on Unix but is no file to send.
            if !meta.is_file() {
                return Err(not_found());
            }
            let len = meta.len();
            let stream = tokio_util::io::ReaderStream::new(file);
            let mut response = Body::from_stream(stream).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            Ok(response)
        }
        _ => Err(ApiError::NotFound("Not Found".to_owned())),
    }
}

fn archive_request(params: &Params) -> Result<ArchiveRequest, ApiError> {
    let mut request = ArchiveRequest {
        project: params
            .get("project")
            .or_else(|| params.get("PROJECT_ID"))
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        subject: params
            .get("subject")
            .or_else(|| params.get("SUBJECT_ID"))
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        label: params
            .get("session")
            .or_else(|| params.get("EXPT_LABEL"))
            .or_else(|| params.get("label"))
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        overwrite: Overwrite::parse(params.get("overwrite")),
    };
    if let Some(dest) = params.get("dest").filter(|d| !d.is_empty()) {
        let trimmed = xnatkit_model::uri::without_rest_root(dest);
        let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
        let pairs = segments.get(1..).unwrap_or_default().chunks(2);
        if segments.first() != Some(&"archive") {
            return Err(ApiError::BadRequest(format!(
                "dest {dest:?} is not an archive location: use /archive/projects/P[/subjects/S[/experiments/E]]"
            )));
        }
        for pair in pairs {
            let slot = match pair {
                ["projects", _] => &mut request.project,
                ["subjects", _] => &mut request.subject,
                ["experiments", _] => &mut request.label,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "dest {dest:?} is not understood: use /archive/projects/P[/subjects/S[/experiments/E]]"
                    )));
                }
            };
            if slot.is_none() {
                *slot = Some(pair[1].to_owned());
            }
        }
    }
    for name in [&mut request.subject, &mut request.label]
        .into_iter()
        .flatten()
    {
        xnatkit_model::Label::parse(name.as_str())?;
    }
    Ok(request)
}

/// `POST …/prearchive/projects/P/TS/F?action=build|commit|move|archive`.
async fn act(
    state: &AppState,
    caller: &Caller,
    session: &PrearchiveSession,
    params: &Params,
) -> Result<Response, ApiError> {
    let action = params.get("action").unwrap_or("build").to_ascii_lowercase();
    match action.as_str() {
        "build" | "rebuild" | "reset-status" => {
            rebuild(state, session).await?;
            Ok(text(
                StatusCode::OK,
                format!("/data{}\r\n", session_uri(session)),
            ))
        }
        "commit" => {
            rebuild(state, session).await?;
            let code = state.store().prearchive_code(&session.project).await?;
            let auto = params
                .get("AA")
                .or_else(|| params.get("auto-archive"))
                .map(|v| v.eq_ignore_ascii_case("true"))
                .unwrap_or(code >= 4);
            if auto && session.project != UNASSIGNED {
                let mut request = archive_request(params)?;
                if request.overwrite == Overwrite::None {
                    request.overwrite = if code == 5 {
                        Overwrite::Replace
                    } else {
                        Overwrite::Append
                    };
                }
                let uri = actions::archive(state, caller, session, &request).await?;
                Ok(text(StatusCode::MOVED_PERMANENTLY, format!("{uri}\r\n")))
            } else {
                Ok(text(
                    StatusCode::OK,
                    format!("/data{}\r\n", session_uri(session)),
                ))
            }
        }
        "move" => {
            let moved = move_session(state, caller, session, params).await?;
            Ok(text(
                StatusCode::MOVED_PERMANENTLY,
                format!("/data{}\r\n", session_uri(&moved)),
            ))
        }
        "archive" => {
            let uri = actions::archive(state, caller, session, &archive_request(params)?).await?;
            Ok(text(StatusCode::OK, format!("{uri}\r\n")))
        }
        other => Err(ApiError::BadRequest(format!(
            "unknown action {other:?}: use build, commit, move or archive"
        ))),
    }
}

/// Moves `session` (its source use already allowed) to `newProject`.
async fn move_session(
    state: &AppState,
    caller: &Caller,
    session: &PrearchiveSession,
    params: &Params,
) -> Result<PrearchiveSession, ApiError> {
    let new_project = params
        .get("newProject")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::BadRequest("name the target project: newProject=P".to_owned()))?;
    let target = move_destination(state, caller, new_project).await?;
    Ok(actions::move_to(state, session, &target).await?)
}

/// The sessions named by `src=` (repeatable), each allowed `how` on its
/// project; any refusal refuses the whole request before anything changes.
async fn sessions_from_src(
    state: &AppState,
    caller: &Caller,
    params: &Params,
    how: SourceUse,
) -> Result<Vec<PrearchiveSession>, ApiError> {
    let sources = all_values(params, "src");
    if sources.is_empty() {
        return Err(ApiError::BadRequest(
            "name the session: src=/prearchive/projects/P/TIMESTAMP/FOLDER".to_owned(),
        ));
    }
    let mut sessions = Vec::with_capacity(sources.len());
    for src in sources {
        let (project, timestamp, folder) = parse_src(src)?;
        sessions.push(load_session(state, caller, &project, &timestamp, &folder, how).await?);
    }
    Ok(sessions)
}

/// `POST /data/services/archive?src=…`: archives each named session.
async fn archive_service(
    State(state): State<AppState>,
    caller: Caller,
    XnatRequest { params, .. }: XnatRequest,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let request = archive_request(&params)?;
    let sessions = sessions_from_src(&state, &caller, &params, SourceUse::Change).await?;
    // Every destination is decided before the first session is archived.
    for session in &sessions {
        let target = request.project.as_deref().unwrap_or(&session.project);
        if target != UNASSIGNED {
            destination(&state, &caller, target, request.overwrite).await?;
        }
    }
    let mut uris = Vec::with_capacity(sessions.len());
    for session in &sessions {
        uris.push(actions::archive(&state, &caller, session, &request).await?);
    }
    Ok(text(StatusCode::OK, format!("{}\r\n", uris.join("\r\n"))))
}

/// `POST /data/services/prearchive/{move|delete|rebuild}?src=…`.
async fn batch_service(
    State(state): State<AppState>,
    caller: Caller,
    Path(operation): Path<String>,
    XnatRequest { params, .. }: XnatRequest,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let mut uris = Vec::new();
    match operation.as_str() {
        "move" => {
            let sessions = sessions_from_src(&state, &caller, &params, SourceUse::Claim).await?;
            for session in sessions {
                let moved = move_session(&state, &caller, &session, &params).await?;
                uris.push(format!("/data{}", session_uri(&moved)));
            }
        }
        "delete" => {
            for session in sessions_from_src(&state, &caller, &params, SourceUse::Change).await? {
                actions::delete(&state, &session).await?;
                uris.push(format!("/data{}", session_uri(&session)));
            }
        }
        "rebuild" => {
            for session in sessions_from_src(&state, &caller, &params, SourceUse::Change).await? {
                rebuild(&state, &session).await?;
                uris.push(format!("/data{}", session_uri(&session)));
            }
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown prearchive service {other:?}: use move, delete or rebuild"
            )));
        }
    }
    Ok(text(StatusCode::OK, format!("{}\r\n", uris.join("\r\n"))))
}

async fn get_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let found = prearchive_code_access(&state, &caller, &project, false).await?;
    let code = state.store().prearchive_code(&found.id).await?;
    Ok(text(StatusCode::OK, code.to_string()))
}

async fn get_code_with(
    state: State<AppState>,
    caller: Caller,
    Path((project, _code)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    get_code(state, caller, Path(project)).await
}

async fn put_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, code)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = prearchive_code_access(&state, &caller, &project, true).await?;
    let code: i64 = match code.trim() {
        "0" => 0,
        "4" => 4,
        "5" => 5,
        other => {
            return Err(ApiError::BadRequest(format!(
                "prearchive_code {other:?} is not one of 0 (manual), 4 (auto-archive), 5 (auto-archive with overwrite)"
            )));
        }
    };
    state.store().set_prearchive_code(&found.id, code).await?;
    Ok(text(StatusCode::OK, code.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn src_with_and_without_data() {
        assert_eq!(
            parse_src("/data/prearchive/projects/P/20240101_101010101/S1").unwrap(),
            (
                "P".to_owned(),
                "20240101_101010101".to_owned(),
                "S1".to_owned()
            )
        );
        assert!(parse_src("/prearchive/projects/P/TS/S1").is_ok());
        assert!(parse_src("/archive/projects/P").is_err());
    }
}
