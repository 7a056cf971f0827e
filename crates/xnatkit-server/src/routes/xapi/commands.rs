//! `/xapi/commands[/{id}]`, the enable/disable routes (site and project,
//! by wrapper ID or by command ID + wrapper name) and `commands/available`.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use xnatkit_engine::{Command, Wrapper};

use super::{json_of, numeric, ok};
use crate::access::Caller;
use crate::archive::Actor;
use crate::engine::commands;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xapi/commands", get(list).post(create))
        .route("/xapi/commands/available", get(available_site))
        .route(
            "/xapi/commands/{id}",
            get(get_one).post(replace).delete(delete_command),
        )
        .route(
            "/xapi/commands/{id}/wrappers/{name}/{flag}",
            put(set_site_by_name).get(get_site_by_name),
        )
        .route("/xapi/commands/{id}/wrappers", post(add_wrapper))
        .route("/xapi/wrappers/{wid}", delete(delete_wrapper))
        .route("/xapi/wrappers/{wid}/{flag}", put(set_site).get(get_site))
        .route(
            "/xapi/projects/{project}/commands/available",
            get(available_project),
        )
        .route(
            "/xapi/projects/{project}/wrappers/{wid}/{flag}",
            put(set_project).get(get_project),
        )
        .route(
            "/xapi/projects/{project}/commands/{id}/wrappers/{name}/{flag}",
            put(set_project_by_name).get(get_project_by_name),
        )
}

fn actor<'a>(state: &'a AppState, caller: &'a Caller) -> Actor<'a> {
    Actor { state, caller }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let found = commands::list(
        &state,
        q.get("name").map(String::as_str),
        q.get("version").map(String::as_str),
        q.get("image").map(String::as_str),
    )
    .await?;
    let all: Vec<&Command> = found.iter().map(|s| &s.command).collect();
    json_of(&all)
}

fn parse_command(body: &Bytes) -> Result<Command, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a command JSON (name, type, command-line, inputs, outputs, mounts, xnat): {e}"
        ))
    })
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let command = parse_command(&body)?;
    let id = commands::create(&actor(&state, &caller), &command).await?;
    Ok((StatusCode::CREATED, id.to_string()).into_response())
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let found = commands::get(&state, numeric(&id, "command")?).await?;
    json_of(&found.command)
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let command = parse_command(&body)?;
    commands::replace(&actor(&state, &caller), numeric(&id, "command")?, &command).await?;
    Ok(ok())
}

async fn delete_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    commands::delete(&actor(&state, &caller), numeric(&id, "command")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn flag(flag: &str) -> Result<bool, ApiError> {
    match flag {
        "enabled" => Ok(true),
        "disabled" => Ok(false),
        other => Err(ApiError::NotFound(format!(
            "Not Found: {other} (use enabled or disabled)"
        ))),
    }
}

async fn set(
    state: &AppState,
    caller: &Caller,
    wid: i64,
    project: Option<&str>,
    flag_text: &str,
) -> Result<Response, ApiError> {
    let on = flag(flag_text)?;
    commands::set_enabled(&actor(state, caller), wid, project, on).await?;
    Ok(ok())
}

async fn read(
    state: &AppState,
    caller: &Caller,
    wid: i64,
    project: Option<&str>,
    flag_text: &str,
) -> Result<Response, ApiError> {
    if flag_text != "enabled" {
        return Err(ApiError::NotFound(format!("Not Found: {flag_text}")));
    }
    caller.require_user()?;
    match project {
        None => {
            commands::wrapper(state, wid).await?;
            let (site, _) = commands::enabled(state, wid, None).await?;
            json_of(&site)
        }
        Some(p) => json_of(&commands::project_report(&actor(state, caller), wid, p).await?),
    }
}

async fn wid_by_name(state: &AppState, id: &str, name: &str) -> Result<i64, ApiError> {
    Ok(
        commands::wrapper_of_command(state, numeric(id, "command")?, name)
            .await?
            .wrapper_id,
    )
}

async fn set_site(
    State(state): State<AppState>,
    caller: Caller,
    Path((wid, flag_text)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set(&state, &caller, numeric(&wid, "wrapper")?, None, &flag_text).await
}

async fn get_site(
    State(state): State<AppState>,
    caller: Caller,
    Path((wid, flag_text)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    read(&state, &caller, numeric(&wid, "wrapper")?, None, &flag_text).await
}

async fn set_site_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name, flag_text)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    set(&state, &caller, wid, None, &flag_text).await
}

async fn get_site_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name, flag_text)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    read(&state, &caller, wid, None, &flag_text).await
}

async fn set_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, wid, flag_text)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    set(
        &state,
        &caller,
        numeric(&wid, "wrapper")?,
        Some(&project),
        &flag_text,
    )
    .await
}

async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, wid, flag_text)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    read(
        &state,
        &caller,
        numeric(&wid, "wrapper")?,
        Some(&project),
        &flag_text,
    )
    .await
}

async fn set_project_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id, name, flag_text)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    set(&state, &caller, wid, Some(&project), &flag_text).await
}

async fn get_project_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id, name, flag_text)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    read(&state, &caller, wid, Some(&project), &flag_text).await
}

async fn available_site(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let rows = commands::available(
        &state,
        q.get("project").map(String::as_str),
        q.get("xsiType").map(String::as_str),
    )
    .await?;
    json_of(&rows)
}

async fn available_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let rows =
        commands::available(&state, Some(&project), q.get("xsiType").map(String::as_str)).await?;
    json_of(&rows)
}

async fn add_wrapper(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let wrapper: Wrapper = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a wrapper JSON (name, contexts, external-inputs, derived-inputs, output-handlers): {e}"
        ))
    })?;
    let wid =
        commands::add_wrapper(&actor(&state, &caller), numeric(&id, "command")?, &wrapper).await?;
    Ok((StatusCode::CREATED, wid.to_string()).into_response())
}

async fn delete_wrapper(
    State(state): State<AppState>,
    caller: Caller,
    Path(wid): Path<String>,
) -> Result<Response, ApiError> {
    commands::delete_wrapper(&actor(&state, &caller), numeric(&wid, "wrapper")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
