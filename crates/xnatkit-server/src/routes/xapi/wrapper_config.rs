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
    let config = || get(get_config).post(set_config).delete(delete_config);
    Router::new()
        .route("/xapi/wrappers/{wid}/config", config())
        .route("/xapi/commands/{id}/wrappers/{name}/config", config())
        .route("/xapi/projects/{project}/wrappers/{wid}/config", config())
        .route(
            "/xapi/projects/{project}/commands/{id}/wrappers/{name}/config",
            config(),
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

/// The wrapper and scope a route's path names: `{wid}`, or `{id}` (the
/// command) with `{name}` (its wrapper's name or ID), under
/// `/projects/{project}` or not.
async fn target(
    state: &AppState,
    path: &BTreeMap<String, String>,
) -> Result<(i64, Option<String>), ApiError> {
    let wid = match (path.get("wid"), path.get("id"), path.get("name")) {
        (Some(wid), _, _) => numeric(wid, "wrapper")?,
        (None, Some(id), Some(name)) => {
            commands::wrapper_of_command(state, numeric(id, "command")?, name)
                .await?
                .wrapper_id
        }
        _ => return Err(ApiError::NotFound("Not Found".to_owned())),
    };
    Ok((wid, path.get("project").cloned()))
}

fn scope(project: &Option<String>) -> Scope<'_> {
    match project {
        Some(p) => Scope::Project(p),
        None => Scope::Site,
    }
}

async fn get_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let (wid, project) = target(&state, &path).await?;
    run(&state, &caller, wid, scope(&project), Op::Get).await
}

async fn set_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = Op::set(body, &q)?;
    let (wid, project) = target(&state, &path).await?;
    run(&state, &caller, wid, scope(&project), op).await
}

async fn delete_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let (wid, project) = target(&state, &path).await?;
    run(&state, &caller, wid, scope(&project), Op::Delete).await
}
