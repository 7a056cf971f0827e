//! Event Service subscriptions: `POST /xapi/projects/{p}/events/subscription`
//! (answers `name:id`, as XNAT), the plural listings, single GET/DELETE
//! and activate/deactivate, site and project spellings.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::BTreeMap;

use super::{json_of, numeric, ok};
use crate::access::Caller;
use crate::archive::Actor;
use crate::engine::events::{self, Subscription};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xapi/events/subscriptions", get(list))
        .route("/xapi/events/subscription", post(create))
        .route(
            "/xapi/events/subscription/{sid}",
            get(get_one).delete(delete),
        )
        .route("/xapi/events/subscription/{sid}/{action}", post(activate))
        .route("/xapi/projects/{project}/events/subscriptions", get(list))
        .route("/xapi/projects/{project}/events/subscription", post(create))
        .route(
            "/xapi/projects/{project}/events/subscription/{sid}",
            get(get_one).delete(delete),
        )
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<BTreeMap<String, String>>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let path = path.map(|Path(p)| p).unwrap_or_default();
    let sub: Subscription = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a subscription (name, action-key, event-filter {{event-type, status}}): {e}"
        ))
    })?;
    let project = match path.get("project") {
        Some(p) => p.clone(),
        None => match sub.event_filter.project_ids.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(ApiError::BadRequest(
                    "name exactly one project in event-filter.project-ids, or post to /xapi/projects/P/events/subscription".to_owned(),
                ));
            }
        },
    };
    let (name, id) = events::subscribe(
        &Actor {
            state: &state,
            caller: &caller,
        },
        &project,
        sub,
    )
    .await?;
    Ok((StatusCode::CREATED, format!("{name}:{id}")).into_response())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Option<Path<BTreeMap<String, String>>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let path = path.map(|Path(p)| p).unwrap_or_default();
    let subs = events::list(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
    )
    .await?;
    json_of(&subs)
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let id = numeric(
        path.get("sid").map(String::as_str).unwrap_or_default(),
        "subscription",
    )?;
    let row = events::get(
        &Actor {
            state: &state,
            caller: &caller,
        },
        path.get("project").map(String::as_str),
        id,
    )
    .await?;
    json_of(&events::render(&row))
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = numeric(
        path.get("sid").map(String::as_str).unwrap_or_default(),
        "subscription",
    )?;
    events::delete(
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

async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path((sid, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = numeric(&sid, "subscription")?;
    let active = match action.as_str() {
        "activate" => true,
        "deactivate" => false,
        other => return Err(ApiError::NotFound(format!("Not Found: {other}"))),
    };
    events::set_active(
        &Actor {
            state: &state,
            caller: &caller,
        },
        id,
        active,
    )
    .await?;
    Ok(ok())
}
