//! XNAT's Container Service API (`/xapi/commands`, launches, containers,
//! Event Service subscriptions) and the workflow routes under `/data`
//! that read the same runs. HTTP only: each handler parses, calls
//! [`crate::engine`], renders.

mod archive_email;
mod command_automation;
mod commands;
mod containers;
mod events;
mod launch;
mod workflows;
mod wrapper_config;

use axum::Router;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(commands::routes())
        .merge(archive_email::routes())
        .merge(command_automation::routes())
        .merge(launch::routes())
        .merge(containers::routes())
        .merge(events::routes())
        .merge(workflows::routes())
        .merge(wrapper_config::routes())
}

/// `value` as a JSON answer.
fn json_of<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_string(value)
        .map_err(|e| ApiError::Internal(format!("rendering JSON: {e}")))?;
    Ok(super::json(body))
}

/// A numeric path ID, or 404 as for a missing one.
fn numeric(id: &str, what: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("No {what} with ID {id}")))
}

fn ok() -> Response {
    axum::http::StatusCode::OK.into_response()
}
