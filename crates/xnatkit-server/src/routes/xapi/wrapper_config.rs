//! `GET|POST|DELETE /xapi/[projects/{p}/]wrappers/{id}/config` and the
//! same under `/xapi/[projects/{p}/]commands/{id}/wrappers/{name}/config`:
//! the site's and projects' wrapper configurations
//! ([`crate::engine::wrapper_config`]). A POST answers 201 and, unless
//! `enable=false`, enables the wrapper where it configures it.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use xnatkit_model::container::CommandConfiguration;

use super::{json_of, numeric};
use crate::access::Caller;
use crate::archive::Actor;
use crate::engine::commands;
use crate::engine::wrapper_config::{self, Scope};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/xapi/wrappers/{wid}/config",
            get(get_site).post(set_site).delete(delete_site),
        )
        .route(
            "/xapi/commands/{id}/wrappers/{name}/config",
            get(get_site_by_name)
                .post(set_site_by_name)
                .delete(delete_site_by_name),
        )
        .route(
            "/xapi/projects/{project}/wrappers/{wid}/config",
            get(get_project).post(set_project).delete(delete_project),
        )
        .route(
            "/xapi/projects/{project}/commands/{id}/wrappers/{name}/config",
            get(get_project_by_name)
                .post(set_project_by_name)
                .delete(delete_project_by_name),
        )
}

/// What a request asks of a configuration.
enum Op {
    Get,
    Set { body: Bytes, enable: bool },
    Delete,
}

impl Op {
    fn set(body: Bytes, query: &BTreeMap<String, String>) -> Result<Op, ApiError> {
        let enable = match query.get("enable").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "enable={other}: use enable=true or enable=false"
                )));
            }
        };
        Ok(Op::Set { body, enable })
    }
}

async fn run(
    state: &AppState,
    caller: &Caller,
    wid: i64,
    scope: Scope<'_>,
    op: Op,
) -> Result<Response, ApiError> {
    let actor = Actor { state, caller };
    match op {
        Op::Get => json_of(&wrapper_config::get(&actor, wid, scope).await?),
        Op::Set { body, enable } => {
            let config: CommandConfiguration = serde_json::from_slice(&body).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the body is not a wrapper configuration ({{\"inputs\": {{NAME: {{\"default-value\": …}}}}, \"outputs\": {{HANDLER: {{\"label\": …}}}}}}): {e}"
                ))
            })?;
            wrapper_config::set(&actor, wid, scope, &config, enable).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        Op::Delete => {
            wrapper_config::delete(&actor, wid, scope).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

async fn wid_by_name(state: &AppState, id: &str, name: &str) -> Result<i64, ApiError> {
    Ok(
        commands::wrapper_of_command(state, numeric(id, "command")?, name)
            .await?
            .wrapper_id,
    )
}

async fn get_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(wid): Path<String>,
) -> Result<Response, ApiError> {
    run(
        &state,
        &caller,
        numeric(&wid, "wrapper")?,
        Scope::Site,
        Op::Get,
    )
    .await
}

async fn set_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(wid): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = Op::set(body, &q)?;
    run(&state, &caller, numeric(&wid, "wrapper")?, Scope::Site, op).await
}

async fn delete_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(wid): Path<String>,
) -> Result<Response, ApiError> {
    run(
        &state,
        &caller,
        numeric(&wid, "wrapper")?,
        Scope::Site,
        Op::Delete,
    )
    .await
}

async fn get_site_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    run(&state, &caller, wid, Scope::Site, Op::Get).await
}

async fn set_site_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = Op::set(body, &q)?;
    let wid = wid_by_name(&state, &id, &name).await?;
    run(&state, &caller, wid, Scope::Site, op).await
}

async fn delete_site_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    run(&state, &caller, wid, Scope::Site, Op::Delete).await
}

async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, wid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let wid = numeric(&wid, "wrapper")?;
    run(&state, &caller, wid, Scope::Project(&project), Op::Get).await
}

async fn set_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, wid)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = Op::set(body, &q)?;
    let wid = numeric(&wid, "wrapper")?;
    run(&state, &caller, wid, Scope::Project(&project), op).await
}

async fn delete_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, wid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let wid = numeric(&wid, "wrapper")?;
    run(&state, &caller, wid, Scope::Project(&project), Op::Delete).await
}

async fn get_project_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    run(&state, &caller, wid, Scope::Project(&project), Op::Get).await
}

async fn set_project_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id, name)): Path<(String, String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = Op::set(body, &q)?;
    let wid = wid_by_name(&state, &id, &name).await?;
    run(&state, &caller, wid, Scope::Project(&project), op).await
}

async fn delete_project_by_name(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let wid = wid_by_name(&state, &id, &name).await?;
    run(&state, &caller, wid, Scope::Project(&project), Op::Delete).await
}
