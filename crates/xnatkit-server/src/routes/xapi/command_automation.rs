//! `/xapi/commandeventmapping[/{id}[/enable|/disable|/convert]]`: the
//! Container Service's legacy Command Automation
//! ([`crate::engine::command_automation`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use xnatkit_model::container::CommandEventMapping;

use super::{json_of, numeric, ok};
use crate::access::Caller;
use crate::archive::Actor;
use crate::engine::command_automation;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xapi/commandeventmapping", get(list).post(create))
        .route(
            "/xapi/commandeventmapping/{id}",
            get(get_one).delete(delete),
        )
        .route("/xapi/commandeventmapping/{id}/enable", put(enable))
        .route("/xapi/commandeventmapping/{id}/disable", put(disable))
        .route("/xapi/commandeventmapping/{id}/convert", post(convert))
}

fn actor<'a>(state: &'a AppState, caller: &'a Caller) -> Actor<'a> {
    Actor { state, caller }
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_user()?;
    json_of(&command_automation::list(&actor(&state, &caller)).await?)
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let mapping: CommandEventMapping = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a command-event mapping (event-type, command-id, xnat-command-wrapper, project): {e}"
        ))
    })?;
    let made = command_automation::create(&actor(&state, &caller), &mapping).await?;
    let mut response = json_of(&made)?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = numeric(&id, "command-event mapping")?;
    json_of(&command_automation::get(&actor(&state, &caller), id).await?)
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = numeric(&id, "command-event mapping")?;
    command_automation::delete(&actor(&state, &caller), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn switch(
    state: &AppState,
    caller: &Caller,
    id: &str,
    on: bool,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = numeric(id, "command-event mapping")?;
    command_automation::set_enabled(&actor(state, caller), id, on).await?;
    Ok(ok())
}

async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    switch(&state, &caller, &id, true).await
}

async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    switch(&state, &caller, &id, false).await
}

async fn convert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = numeric(&id, "command-event mapping")?;
    command_automation::convert(&actor(&state, &caller), id).await?;
    Ok(ok())
}
