//! Everything below `/data`, `/data/archive` and `/REST`: one catch-all
//! route parses the path with [`xnatkit_model::ArchivePath`] (which knows every
//! prefix and short form clients use) and dispatches by level and method.
//!
//! Path → project/subject/experiment with permission checks is the
//! archive's rule [`crate::archive::scope`].
//! - [`listing`]: ResultSet tables (JSON/CSV);
//! - [`objects`]: single-object items, creation/update PUTs, DELETE;
//! - [`files`]: resources, uploads, single-file GET/HEAD;
//! - [`download`]: zip / tar.gz archives in XNAT's entry layout;
//! - [`project_admin`]: accessibility and project users;
//! - [`sharing`]: sharing subjects/experiments into other projects, and
//!   the experiment status.

pub(crate) mod download;
pub(crate) mod files;
pub(crate) mod images;
mod listing;
mod objects;
mod project_admin;
mod render;
mod sharing;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::any;
use xnatkit_model::{ArchivePath, Level, PathError};

use crate::access::Caller;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::XnatRequest;
use crate::state::AppState;

pub use render::{EXPERIMENT_SHARE_TYPE, SUBJECT_SHARE_TYPE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/data/{*rest}", any(dispatch))
        // Uploads are streamed to disk and limited by our own configurable
        // maximum, not axum's 2 MB default.
        .layer(DefaultBodyLimit::disable())
}

/// What every archive handler gets.
pub(crate) struct Ctx {
    pub state: AppState,
    pub caller: Caller,
    pub method: Method,
    pub params: Params,
    pub headers: axum::http::HeaderMap,
}

impl Ctx {
    /// The caller and state, as the archive's rules take them.
    pub fn actor(&self) -> crate::archive::Actor<'_> {
        crate::archive::Actor {
            state: &self.state,
            caller: &self.caller,
        }
    }
}

async fn dispatch(
    State(state): State<AppState>,
    caller: Caller,
    XnatRequest {
        parts,
        params,
        body,
    }: XnatRequest,
) -> Result<Response, ApiError> {
    let segments = ArchivePath::split_request_path(parts.uri.path()).map_err(|e| match e {
        // A segment that is not text is the client's mistake, not a
        // missing object.
        PathError::BadSegment { .. } => ApiError::BadRequest(e.to_string()),
        _ => ApiError::NotFound("Not Found".to_owned()),
    })?;
    let ctx = Ctx {
        state,
        caller,
        method: parts.method.clone(),
        params,
        headers: parts.headers,
    };

    if let Some(response) = project_admin::try_dispatch(&ctx, &segments).await? {
        return Ok(response);
    }
    if let Some(response) = sharing::try_dispatch(&ctx, &segments).await? {
        return Ok(response);
    }
    // `…/subjects/S/files` and `/projects/P/files`: downloads of everything
    // below a subject or project (not in the shared path grammar).
    if segments.last().map(String::as_str) == Some("files") {
        let head = &segments[..segments.len() - 1];
        if let Ok(path) = ArchivePath::parse(head)
            && matches!(path.level(), Level::Subject | Level::Project)
        {
            return download::download_level(&ctx, &path).await;
        }
    }
    let path =
        ArchivePath::parse(&segments).map_err(|e| ApiError::NotFound(format!("Not Found: {e}")))?;
    match ctx.method {
        Method::GET | Method::HEAD => get(&ctx, &path).await,
        Method::PUT | Method::POST => put(&ctx, &path, body).await,
        Method::DELETE => objects::delete(&ctx, &path).await,
        _ => Err(ApiError::BadRequest(format!(
            "method {} is not supported here",
            ctx.method
        ))),
    }
}

async fn get(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    match path.level() {
        Level::Projects
        | Level::Subjects
        | Level::Experiments
        | Level::Scans
        | Level::Assessors
        | Level::Resources => listing::list(ctx, path).await,
        Level::Assessor => objects::get_assessor(ctx, path).await,
        Level::Project | Level::Subject | Level::Experiment | Level::Scan => {
            if path.level() == Level::Scan && path.scans.as_ref().and_then(|s| s.single()).is_none()
            {
                return listing::list(ctx, path).await;
            }
            objects::get_item(ctx, path).await
        }
        Level::Resource => files::get_resource(ctx, path).await,
        Level::Files => files::list_or_download(ctx, path).await,
        Level::File => files::get_file(ctx, path).await,
    }
}

async fn put(ctx: &Ctx, path: &ArchivePath, body: Body) -> Result<Response, ApiError> {
    match path.level() {
        Level::Project => objects::put_project(ctx, path).await,
        Level::Subject => objects::put_subject(ctx, path).await,
        Level::Experiment => objects::put_experiment(ctx, path).await,
        Level::Scan => objects::put_scan(ctx, path).await,
        Level::Assessor => objects::put_assessor(ctx, path, body).await,
        Level::Resource => files::put_resource(ctx, path).await,
        Level::Files | Level::File => files::upload(ctx, path, body).await,
        other => Err(ApiError::BadRequest(format!(
            "cannot {} a {other:?} collection; name the object to create",
            ctx.method
        ))),
    }
}
