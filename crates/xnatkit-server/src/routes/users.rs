//! `/xapi/users`: site user management (admin only for listing, creation
//! and enabling; users may read their own record and change their own
//! password). A password change or a disabled account ends the user's
//! sessions and forgets their cached credentials.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::json;
use crate::access::Caller;
use crate::auth::AuthError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::User;
use crate::user_admin::{self, Flag, NewAccount};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xapi/users", get(list_users).post(create_user))
        .route("/xapi/users/{username}", get(get_user).put(update_user))
        .route("/xapi/users/{username}/enabled/{flag}", put(set_enabled))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewUserBody {
    username: String,
    password: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "yes")]
    verified: bool,
    #[serde(default)]
    admin: bool,
}

fn yes() -> bool {
    true
}

fn user_json(user: &User) -> serde_json::Value {
    serde_json::json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "enabled": user.enabled,
        "verified": user.verified,
        "admin": user.is_admin,
    })
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewUserBody>,
) -> Result<Response, ApiError> {
    let account = NewAccount {
        username: body.username,
        password: body.password,
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        enabled: body.enabled,
        verified: body.verified,
        admin: body.admin,
    };
    let user = user_admin::create(&state, &caller, account).await?;
    let mut response = json(user_json(&user).to_string());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let names: Vec<String> = user_admin::list(&state, &caller)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    Ok(json(serde_json::json!(names).to_string()))
}

async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let me = caller.require_user()?;
    if !caller.is_admin() && me.username != username {
        return Err(ApiError::Forbidden(
            "Forbidden: you may only read your own account".to_owned(),
        ));
    }
    match state.store().user(&username).await? {
        Some(user) => Ok(json(user_json(&user).to_string())),
        None => Err(ApiError::not_found(format!("user {username}"))),
    }
}

/// `PUT /xapi/users/{username}`: the fields XNAT's user JSON may change
/// here. Only `password` and `enabled` are applied; both end sessions.
#[derive(Debug, Deserialize)]
struct UserUpdate {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<UserUpdate>,
) -> Result<Response, AuthError> {
    let me = caller.require_user()?;
    let own_account = me.username == username;
    let allowed = caller.is_admin() || (own_account && body.enabled.is_none());
    if !allowed {
        return Err(ApiError::Forbidden(
            "Forbidden: only site administrators change other accounts or enable/disable them"
                .to_owned(),
        )
        .into());
    }
    let store = state.store();
    if store.user(&username).await?.is_none() {
        return Err(ApiError::not_found(format!("user {username}")).into());
    }
    if let Some(password) = body.password {
        user_admin::reset_password(&state, &caller, &username, &password)
            .await
            .map_err(ApiError::from)?;
    }
    if let Some(enabled) = body.enabled {
        user_admin::set_flag(&state, &caller, &username, Flag::Enabled, enabled)
            .await
            .map_err(ApiError::from)?;
    }
    match store.user(&username).await? {
        Some(user) => Ok(json(user_json(&user).to_string())),
        None => Err(ApiError::not_found(format!("user {username}")).into()),
    }
}

/// `PUT /xapi/users/{username}/enabled/{true|false}` (admin).
async fn set_enabled(
    State(state): State<AppState>,
    caller: Caller,
    Path((username, flag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    user_admin::require_admin(&caller)?;
    let enabled: bool = flag
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("enabled flag {flag:?}: use true or false")))?;
    user_admin::set_flag(&state, &caller, &username, Flag::Enabled, enabled).await?;
    Ok(super::text(StatusCode::OK, ""))
}
