//! The project's Prearchive tab: its sessions with status, a filter and
//! paging; a details view; Archive (with relabelling), Rebuild, Move and
//! Delete on one or many. Permissions and actions are those of the REST
//! `/data/prearchive` routes: [`crate::access::ingest`] decides, and
//! [`crate::prearchive`] acts.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use xnatkit_model::encode_segment;

use super::{Layout, WebError, csrf, page, require_login, see_other};
use crate::access::Caller;
use crate::access::ingest::{SourceUse, destination, move_destination, prearchive_source};
use crate::error::ApiError;
use crate::import::Overwrite;
use crate::prearchive::actions::{self, ArchiveRequest};
use crate::prearchive::build::rebuild;
use crate::prearchive::listing_time;
use crate::state::AppState;
use crate::store::{PrearchiveScan, PrearchiveSession};

const PAGE_SIZE: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    done: Option<String>,
}

struct Line {
    key: String,
    folder: String,
    href: String,
    subject: String,
    status: String,
    scan_date: String,
    uploaded: String,
    message: String,
}

#[derive(Template)]
#[template(path = "web/prearchive.html")]
struct ListPage {
    layout: Layout,
    id: String,
    name: String,
    project_href: String,
    tab: &'static str,
    filter: String,
    status: String,
    statuses: Vec<(&'static str, bool)>,
    notice: Option<String>,
    total: usize,
    first: usize,
    last: usize,
    prev_href: Option<String>,
    next_href: Option<String>,
    lines: Vec<Line>,
}

#[derive(Template)]
#[template(path = "web/prearchive_session.html")]
struct DetailPage {
    layout: Layout,
    project_href: String,
    key: String,
    session: PrearchiveSession,
    uploaded: String,
    scans: Vec<PrearchiveScan>,
}

fn prearchive_href(project: &str) -> String {
    format!("/app/projects/{}/prearchive", encode_segment(project))
}

/// The fixed message after an action (`?done=`): a link cannot put its
/// own text on the page.
fn done_notice(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "archived" => "Archived.",
            "rebuilt" => "Rebuilt.",
            "moved" => "Moved.",
            "deleted" => "Deleted.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// `GET /app/projects/P/prearchive?q=&status=&page=`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    let project = prearchive_source(&state, &caller, &project, SourceUse::View).await?;
    let found = state
        .store()
        .project(&project)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {project}")))?;
    let needle = query.q.trim().to_lowercase();
    let sessions: Vec<PrearchiveSession> = state
        .store()
        .prearchive_sessions(Some(&project))
        .await?
        .into_iter()
        .filter(|s| query.status.is_empty() || s.status.as_str() == query.status)
        .filter(|s| {
            needle.is_empty()
                || s.folder.to_lowercase().contains(&needle)
                || s.subject.to_lowercase().contains(&needle)
        })
        .collect();
    let total = sessions.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = query.page.unwrap_or(1).clamp(1, pages);
    let base = prearchive_href(&project);
    let link = |n: usize| {
        format!(
            "{base}?q={}&status={}&page={n}",
            encode_segment(&query.q),
            encode_segment(&query.status)
        )
    };
    let lines = sessions
        .iter()
        .skip((page_no - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|s| Line {
            key: format!("{}/{}", s.timestamp, s.folder),
            href: format!(
                "{base}/{}/{}",
                encode_segment(&s.timestamp),
                encode_segment(&s.folder)
            ),
            folder: s.folder.clone(),
            subject: s.subject.clone(),
            status: s.status.to_string(),
            scan_date: s.scan_date.clone(),
            uploaded: listing_time(s.uploaded),
            message: s.message.clone(),
        })
        .collect();
    let statuses = ["READY", "RECEIVING", "CONFLICT", "ERROR"]
        .into_iter()
        .map(|s| (s, s == query.status))
        .collect();
    let project_href = format!("/app/projects/{}", encode_segment(&project));
    let layout = Layout::new(&state, &caller, format!("Prearchive: {project}"))
        .crumb("Projects", "/app/projects")
        .crumb(project.clone(), project_href.clone());
    let rendered = ListPage {
        layout,
        id: project.clone(),
        name: found.name,
        project_href,
        tab: "prearchive",
        filter: query.q.clone(),
        status: query.status.clone(),
        statuses,
        notice: done_notice(query.done.as_deref()),
        total,
        first: if total == 0 {
            0
        } else {
            (page_no - 1) * PAGE_SIZE + 1
        },
        last: (page_no * PAGE_SIZE).min(total),
        prev_href: (page_no > 1).then(|| link(page_no - 1)),
        next_href: (page_no < pages).then(|| link(page_no + 1)),
        lines,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

/// `GET /app/projects/P/prearchive/TIMESTAMP/FOLDER`.
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, timestamp, folder)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    let project = prearchive_source(&state, &caller, &project, SourceUse::View).await?;
    let session = load(&state, &project, &timestamp, &folder).await?;
    let scans = state.store().prearchive_scans(session.id).await?;
    let project_href = format!("/app/projects/{}", encode_segment(&project));
    let layout = Layout::new(&state, &caller, format!("Prearchive session {folder}"))
        .crumb("Projects", "/app/projects")
        .crumb(project.clone(), project_href.clone())
        .crumb("Prearchive", prearchive_href(&project));
    let rendered = DetailPage {
        layout,
        project_href,
        key: format!("{timestamp}/{folder}"),
        uploaded: listing_time(session.uploaded),
        session,
        scans,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

async fn load(
    state: &AppState,
    project: &str,
    timestamp: &str,
    folder: &str,
) -> Result<PrearchiveSession, ApiError> {
    state
        .store()
        .prearchive_session(project, timestamp, folder)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("prearchive session {project}/{timestamp}/{folder}"))
        })
}

/// `POST /app/projects/P/prearchive`: `action` (archive, rebuild, move,
/// delete) on every `sel` (`TIMESTAMP/FOLDER`). Every session is loaded
/// and every permission decided before the first one changes.
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect();
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    csrf::check(&headers, &caller, value(csrf::FIELD).as_deref())?;
    let action = value("action").unwrap_or_default();
    let how = if action == "move" {
        SourceUse::Claim
    } else {
        SourceUse::Change
    };
    let project = prearchive_source(&state, &caller, &project, how).await?;
    let mut sessions = Vec::new();
    for (_, key) in pairs.iter().filter(|(k, _)| k == "sel") {
        let (timestamp, folder) = key.split_once('/').ok_or_else(|| {
            ApiError::BadRequest(format!("{key} does not name a prearchive session"))
        })?;
        sessions.push(load(&state, &project, timestamp, folder).await?);
    }
    if sessions.is_empty() {
        return Err(WebError(ApiError::BadRequest(
            "no sessions selected; tick at least one session".to_owned(),
        )));
    }
    let done = match action.as_str() {
        "archive" => {
            let request = ArchiveRequest {
                project: None,
                subject: value("subject"),
                label: value("label"),
                overwrite: if value("overwrite").as_deref() == Some("append") {
                    Overwrite::Append
                } else {
                    Overwrite::None
                },
            };
            if request.label.is_some() && sessions.len() > 1 {
                return Err(WebError(ApiError::BadRequest(
                    "a new session label applies to one session; select only one".to_owned(),
                )));
            }
            for name in [&request.subject, &request.label].into_iter().flatten() {
                xnatkit_model::Label::parse(name.as_str())?;
            }
            destination(&state, &caller, &project, request.overwrite).await?;
            for session in &sessions {
                actions::archive(&state, &caller, session, &request).await?;
            }
            "archived"
        }
        "rebuild" => {
            for session in &sessions {
                rebuild(&state, session).await?;
            }
            "rebuilt"
        }
        "move" => {
            let target = value("newProject").ok_or_else(|| {
                ApiError::BadRequest("name the project to move the sessions to".to_owned())
            })?;
            let target = move_destination(&state, &caller, &target).await?;
            for session in &sessions {
                actions::move_to(&state, session, &target).await?;
            }
            "moved"
        }
        "delete" => {
            for session in &sessions {
                actions::delete(&state, session).await?;
            }
            "deleted"
        }
        other => {
            return Err(WebError(ApiError::BadRequest(format!(
                "unknown action {other:?}: use archive, rebuild, move or delete"
            ))));
        }
    };
    Ok(see_other(&format!(
        "{}?done={done}",
        prearchive_href(&project)
    )))
}
