//! The Upload page: a zip or tar.gz of DICOM into a project's prearchive
//! or straight into its archive, with XNAT's import fields (project,
//! subject, session label, ignore unparsable). `app.js` sends the form
//! with XHR so the page can show upload progress; the server side is the
//! REST import service's own function
//! ([`crate::routes::ingest::import::import_request`]), so routing,
//! permissions and limits are the same as `POST /data/services/import`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use xnatkit_model::{ProjectRole, encode_segment};

use super::{Layout, WebError, csrf, page, require_login};
use crate::access::Caller;
use crate::archive::Actor;
use crate::archive::browse::projects_overview;
use crate::routes::XnatRequest;
use crate::routes::ingest::import::import_request;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct UploadQuery {
    #[serde(default)]
    project: String,
}

#[derive(Template)]
#[template(path = "web/upload.html")]
struct UploadPage {
    layout: Layout,
    projects: Vec<(String, bool)>,
}

/// `GET /app/upload?project=P`: the form, offering the projects the
/// caller may put data into.
pub async fn form(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UploadQuery>,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    let overview = projects_overview(&Actor {
        state: &state,
        caller: &caller,
    })
    .await?;
    let projects = overview
        .into_iter()
        .filter(|p| {
            caller.is_admin() || matches!(p.role, Some(ProjectRole::Owner | ProjectRole::Member))
        })
        .map(|p| {
            let selected = p.project.id == query.project;
            (p.project.id, selected)
        })
        .collect();
    let layout = Layout::new(&state, &caller, "Upload images").crumb("Projects", "/app/projects");
    Ok(page(
        StatusCode::OK,
        UploadPage { layout, projects }.render(),
    ))
}

/// Where a session the import made is shown on the pages.
fn page_link(uri: &str) -> String {
    let mut parts: Vec<&str> = uri.trim().split('/').filter(|s| !s.is_empty()).collect();
    // `/data/archive/projects/…` is `/data/projects/…`.
    if parts.get(1) == Some(&"archive") {
        parts.remove(1);
    }
    match parts[..] {
        ["data", "prearchive", "projects", project, ..] => {
            format!("/app/projects/{}/prearchive", encode_segment(project))
        }
        [
            "data",
            "projects",
            project,
            "subjects",
            subject,
            "experiments",
            session,
        ] => format!(
            "/app/projects/{}/subjects/{}/experiments/{}",
            encode_segment(project),
            encode_segment(subject),
            encode_segment(session)
        ),
        _ => "/app/projects".to_owned(),
    }
}

/// `POST /app/upload` (multipart, from `app.js` with the form token in
/// its header): `{"uris": [...], "links": [...]}`, one per session.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    request: XnatRequest,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    csrf::check(&headers, &caller, None)?;
    let uris = import_request(&state, &caller, request).await?;
    let links: Vec<String> = uris.iter().map(|u| page_link(u)).collect();
    let body = serde_json::json!({ "uris": uris, "links": links });
    Ok(crate::routes::json(body.to_string()))
}
