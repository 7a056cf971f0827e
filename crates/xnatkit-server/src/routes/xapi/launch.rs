//! The launch routes, in every spelling the Container Service accepts:
//! project or site level, by wrapper ID (`/wrappers/{wid}`, and the
//! singular `/wrapper/{wid}` twin used with query parameters) or by
//! command ID + wrapper name, with or without `/root/{root}`; plus
//! `bulklaunch`. Parameters come from a JSON object body, a form body and
//! the query string. A refused launch answers its status (400/403/404)
//! with a `LaunchReport` whose `status` is `failure` and whose `message`
//! says why — never a 200 "success" for something that will not run.
//! A GET on the same paths answers the launch form (`LaunchUi`) instead.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use super::json_of;
use crate::access::Caller;
use crate::archive::{self, Actor};
use crate::engine::commands::{self, FoundWrapper};
use crate::engine::launch::{LaunchRequest, bulk_launch, failure, launch, launch_ui};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Entity;

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/xapi", "/xapi/projects/{project}"] {
        for wrapper in [
            "wrappers/{wid}",
            "wrapper/{wid}",
            "commands/{id}/wrappers/{name}",
        ] {
            for root in ["", "/root/{root}"] {
                router = router
                    .route(
                        &format!("{prefix}/{wrapper}{root}/launch"),
                        post(one).get(form),
                    )
                    .route(
                        &format!("{prefix}/{wrapper}{root}/bulklaunch"),
                        post(bulk).get(bulk_form),
                    );
            }
        }
    }
    router
}

/// Values of the launch: query, then form or JSON body (later wins).
fn launch_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut params = BTreeMap::new();
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            params.insert(k.into_owned(), v.into_owned());
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in url::form_urlencoded::parse(body) {
            params.insert(k.into_owned(), v.into_owned());
        }
        return Ok(params);
    }
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the launch body must be a JSON object of input names and values: {e}"
        ))
    })?;
    for (k, v) in object {
        let text = match v {
            Value::String(s) => s,
            Value::Null => continue,
            other => other.to_string(),
        };
        params.insert(k, text);
    }
    Ok(params)
}

/// The path's parts, whichever spelling matched.
async fn wrapper_from_path(
    state: &AppState,
    path: &BTreeMap<String, String>,
) -> Result<FoundWrapper, archive::Error> {
    if let Some(wid) = path.get("wid") {
        let id = wid
            .parse()
            .map_err(|_| archive::Error::NotFound(format!("No wrapper with ID {wid}")))?;
        return commands::wrapper(state, id).await;
    }
    let id = path.get("id").map(String::as_str).unwrap_or_default();
    let id = id
        .parse()
        .map_err(|_| archive::Error::NotFound(format!("No command with ID {id}")))?;
    commands::wrapper_of_command(
        state,
        id,
        path.get("name").map(String::as_str).unwrap_or_default(),
    )
    .await
}

/// The answer to a refused launch: its status and a failure report.
fn refused(
    err: archive::Error,
    params: &BTreeMap<String, String>,
    found: Option<&FoundWrapper>,
) -> Response {
    let report = failure(params, found, &err);
    let api = ApiError::from(err);
    let status = api.status();
    if let ApiError::Internal(detail) = &api {
        tracing::error!("launch failed: {detail}");
        return api.into_response();
    }
    match json_of(&report) {
        Ok(mut response) => {
            *response.status_mut() = status;
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Puts the value given under the URL's `{root}` name where the wrapper
/// expects its root input.
fn place_root(
    params: &mut BTreeMap<String, String>,
    path: &BTreeMap<String, String>,
    found: &FoundWrapper,
) {
    let (Some(root_key), Some(input)) = (
        path.get("root"),
        xnatkit_engine::resolve::root_input(&found.wrapper),
    ) else {
        return;
    };
    if !params.contains_key(&input.name)
        && let Some(value) = params.remove(root_key)
    {
        params.insert(input.name.clone(), value);
    }
}

async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let mut params = launch_params(query.as_deref(), &headers, &body)?;
    let found = match wrapper_from_path(&state, &path).await {
        Ok(f) => f,
        Err(err) => return Ok(refused(err, &params, None)),
    };
    place_root(&mut params, &path, &found);
    let request = LaunchRequest {
        project: path.get("project").map(String::as_str),
        wrapper: &found,
        params: params.clone(),
        bulk_id: String::new(),
        entity: Entity::User,
    };
    match launch(
        &Actor {
            state: &state,
            caller: &caller,
        },
        &request,
    )
    .await
    {
        Ok(report) => json_of(&report),
        Err(err) => Ok(refused(err, &params, Some(&found))),
    }
}

async fn bulk(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let mut params = launch_params(query.as_deref(), &headers, &body)?;
    let found = match wrapper_from_path(&state, &path).await {
        Ok(f) => f,
        Err(err) => return Ok(refused(err, &params, None)),
    };
    place_root(&mut params, &path, &found);
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    match bulk_launch(
        &actor,
        path.get("project").map(String::as_str),
        &found,
        &params,
    )
    .await
    {
        Ok(report) => json_of(&report),
        Err(err) => Ok(refused(err, &params, Some(&found))),
    }
}

/// `GET .../launch`: the launch form, resolved on the object the query
/// names (under the root input's name or the URL's `{root}`).
async fn form(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (found, params) = form_request(&state, &caller, &path, query.as_deref()).await?;
    form_of(&state, &caller, &path, &found, params).await
}

/// The wrapper a form's path names and the parameters its query gives,
/// the root input placed.
async fn form_request(
    state: &AppState,
    caller: &Caller,
    path: &BTreeMap<String, String>,
    query: Option<&str>,
) -> Result<(FoundWrapper, BTreeMap<String, String>), ApiError> {
    caller.require_user()?;
    let mut params = launch_params(query, &HeaderMap::new(), &Bytes::new())?;
    let found = wrapper_from_path(state, path).await?;
    place_root(&mut params, path, &found);
    Ok((found, params))
}

/// `GET .../bulklaunch`: the form as for the first target of the list.
async fn bulk_form(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (found, mut params) = form_request(&state, &caller, &path, query.as_deref()).await?;
    if let Some(root) = xnatkit_engine::resolve::root_input(&found.wrapper)
        && let Some(raw) = params.get(&root.name)
        && let Ok(list) = serde_json::from_str::<Vec<String>>(raw)
    {
        match list.into_iter().next() {
            Some(first) => params.insert(root.name.clone(), first),
            None => params.remove(&root.name),
        };
    }
    form_of(&state, &caller, &path, &found, params).await
}

async fn form_of(
    state: &AppState,
    caller: &Caller,
    path: &BTreeMap<String, String>,
    found: &FoundWrapper,
    params: BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let request = LaunchRequest {
        project: path.get("project").map(String::as_str),
        wrapper: found,
        params,
        bulk_id: String::new(),
        entity: Entity::User,
    };
    let ui = launch_ui(&Actor { state, caller }, &request).await?;
    json_of(&ui)
}
