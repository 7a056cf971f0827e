//! `/xapi/[projects/{p}/]containers[/{id}]`, the logs (`logs/stdout`,
//! `logs/stderr`, plain text) and kill (site and project forms); the
//! history table's paged `POST /xapi/containers`, `logSince` polling,
//! `finalize` and `/xapi/containers/version`.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::json_of;
use crate::access::Caller;
use crate::archive::Actor;
use crate::engine::{container_history, containers};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/xapi", "/xapi/projects/{project}"] {
        router = router
            .route(&format!("{prefix}/containers"), get(list).post(page))
            .route(
                &format!("{prefix}/containers/{{cid}}/logSince/{{stream}}"),
                get(log_since),
            )
            .route(
                &format!("{prefix}/containers/{{cid}}"),
                get(get_one).delete(delete),
            )
            .route(&format!("{prefix}/containers/{{cid}}/logs"), get(logs_zip))
            .route(
                &format!("{prefix}/containers/{{cid}}/logs/{{stream}}"),
                get(log),
            )
            .route(&format!("{prefix}/containers/{{cid}}/kill"), post(kill));
    }
    router
        .route("/xapi/containers/version", get(version))
        .route("/xapi/containers/{cid}/finalize", post(finalize))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<BTreeMap<String, String>>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let path = path.map(|Path(p)| p).unwrap_or_default();
    let nonfinalized = q.get("nonfinalized").is_some_and(|v| v == "true");
    let rows = containers::list(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        nonfinalized,
    )
    .await?;
    json_of(&rows)
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = path.get("cid").map(String::as_str).unwrap_or_default();
    let container = containers::get(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        id,
    )
    .await?;
    json_of(&container)
}

async fn log(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = path.get("cid").map(String::as_str).unwrap_or_default();
    let stream = path.get("stream").map(String::as_str).unwrap_or_default();
    let file = containers::log(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        id,
        stream,
    )
    .await?;
    let body = match file {
        Some(path) => tokio::fs::read(&path)
            .await
            .map_err(|e| ApiError::Internal(format!("reading {}: {e}", path.display())))?,
        None => Vec::new(),
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

async fn kill(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = path.get("cid").map(String::as_str).unwrap_or_default();
    let container = containers::kill(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        id,
    )
    .await?;
    json_of(&container)
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = path.get("cid").map(String::as_str).unwrap_or_default();
    containers::delete(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn logs_zip(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = path.get("cid").map(String::as_str).unwrap_or_default();
    let entries = containers::log_entries(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        id,
    )
    .await?;
    let stream = xnatkit_fileio::zip_stream(entries);
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"container-{id}-logs.zip\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `POST /xapi/containers`: one page of the history, as XNAT's history
/// table asks for it.
async fn page(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<BTreeMap<String, String>>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let path = path.map(|Path(p)| p).unwrap_or_default();
    let request: xnatkit_model::container::ContainerPageRequest = if body
        .iter()
        .all(u8::is_ascii_whitespace)
    {
        Default::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the body must be a page request such as {{\"page\": 1, \"size\": 50, \"sort_col\": \"timestamp\", \"sort_dir\": \"desc\", \"filters\": {{}}}}: {e}"
                ))
            })?
    };
    let rows = container_history::page(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        &request,
    )
    .await?;
    json_of(&rows)
}

async fn log_since(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = path.get("cid").map(String::as_str).unwrap_or_default();
    let stream = path.get("stream").map(String::as_str).unwrap_or_default();
    let poll = container_history::log_since(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        id,
        stream,
        q.get("since").map(String::as_str),
    )
    .await?;
    json_of(&poll)
}

async fn finalize(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<String>,
) -> Result<Response, ApiError> {
    let container = container_history::finalize(
        &Actor {
            state: &state,
            caller: &caller,
        },
        &cid,
    )
    .await?;
    json_of(&container)
}

async fn version(caller: Caller) -> Result<Response, ApiError> {
    caller.require_user()?;
    json_of(&container_history::version_check(
        crate::routes::connect::XNAT_VERSION,
    ))
}
