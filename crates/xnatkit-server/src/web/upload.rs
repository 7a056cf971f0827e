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

/// `POST /app/projects/P/subjects/S/experiments/E/files?resource=R`
/// (multipart, from `app.js` with the form token in its header): any
/// files, not only DICOM, into resource `R` of the session (created if
/// needed), through the REST upload's own function (same permission
/// check, same names check, same clean-up when a part fails).
pub async fn session_files(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    axum::extract::Path((project, subject, experiment)): axum::extract::Path<(
        String,
        String,
        String,
    )>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: axum::body::Body,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    csrf::check(&headers, &caller, None)?;
    let params = crate::params::Params::from_query(query.as_deref());
    let resource = params
        .get("resource")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            crate::error::ApiError::BadRequest(
                "name the resource the files go into (e.g. NOTES)".to_owned(),
            )
        })?
        .to_owned();
    let segments: Vec<String> = [
        "projects",
        &project,
        "subjects",
        &subject,
        "experiments",
        &experiment,
        "resources",
        &resource,
        "files",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let path = xnatkit_model::ArchivePath::parse(&segments)
        .map_err(|e| crate::error::ApiError::NotFound(format!("Not Found: {e}")))?;
    let ctx = crate::routes::archive::Ctx {
        state,
        caller,
        method: axum::http::Method::PUT,
        params,
        headers,
    };
    crate::routes::archive::files::upload(&ctx, &path, body).await?;
    let session_page = format!(
        "/app/projects/{}/subjects/{}/experiments/{}",
        encode_segment(&project),
        encode_segment(&subject),
        encode_segment(&experiment)
    );
    let uri = format!(
        "/data/projects/{}/subjects/{}/experiments/{}/resources/{}",
        encode_segment(&project),
        encode_segment(&subject),
        encode_segment(&experiment),
        encode_segment(&resource)
    );
    let body = serde_json::json!({ "uris": [uri], "links": [session_page] });
    Ok(crate::routes::json(body.to_string()))
}
