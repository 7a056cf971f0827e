//! Who gets a project's archive email: `GET` and `PUT
//! /xapi/projects/{project}/archive-email`, a JSON array of addresses
//! (project owners and site admins only; see [`crate::archive_email`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;

use super::json_of;
use crate::access::Caller;
use crate::archive::Actor;
use crate::archive_email;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/xapi/projects/{project}/archive-email",
        get(list).put(replace),
    )
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    json_of(&archive_email::recipients(&actor, &project).await?)
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let addresses: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a JSON array of email addresses (e.g. [\"pi@example.org\"]): {e}"
        ))
    })?;
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    json_of(&archive_email::set_recipients(&actor, &project, &addresses).await?)
}
