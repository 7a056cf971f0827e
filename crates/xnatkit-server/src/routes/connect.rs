//! Endpoints clients call while connecting (xnatpy 0.8.1 and pyxnat 1.6.4
//! call all of these before anything else, and give up if one is missing):
//! server root, login, session heartbeat/logout, version, schemas, search
//! elements and alias tokens.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::{json, text};
use crate::access::Caller;
use crate::auth::{self, AuthError};
use crate::error::ApiError;
use crate::passwords;
use crate::schema;
use crate::state::AppState;
use crate::store::now_ms;

/// The XNAT version we claim: new enough for xnatpy's modern code paths,
/// without a trailing newline (xnatpy parses it into a tuple).
pub const XNAT_VERSION: &str = "1.8.10";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/data/services/auth", axum::routing::put(login).post(login))
        .route("/data/auth", get(auth_check))
        .route(
            "/data/JSESSION",
            get(jsession).post(jsession).delete(logout),
        )
        .route("/data/version", get(version))
        .route("/xapi/siteConfig/buildInfo", get(build_info))
        .route("/xapi/schemas", get(schema_list))
        .route("/xapi/schemas/{*name}", get(schema_document))
        .route("/data/search/elements", get(search_elements))
        .route("/data/search/elements/{name}", get(search_elements))
        .route("/data/services/tokens/issue", get(issue_token))
        .route(
            "/data/services/tokens/issue/user/{username}",
            get(issue_token_for),
        )
        .route(
            "/data/services/tokens/invalidate/{alias}/{secret}",
            get(invalidate_token).delete(invalidate_token),
        )
        .route(
            "/data/services/tokens/validate/{alias}/{secret}",
            get(validate_token),
        )
}

/// `GET /`: for a person in a browser, the web pages (the projects when
/// logged in, else the login page); for clients a small 200 page, never a
/// redirect: xnatpy rebases on redirects (only one to `/app/…` or
/// `/data/…` would be safe), and anonymous connect checks the page for the
/// guest marker in `user_info`.
async fn root(caller: Caller, method: axum::http::Method, headers: HeaderMap) -> Response {
    if auth::browser_page_load(&method, &headers) {
        let target = if caller.user.is_some() {
            "/app/projects"
        } else {
            crate::routes::ui::LOGIN_PATH
        };
        return crate::web::see_other(target);
    }
    let who = match caller.username() {
        Some(name) => format!("Logged in as: &nbsp;<a href=\"/\">{name}</a>"),
        None => "Logged in as: <span style=\"color:red;\">Guest</span>".to_owned(),
    };
    Html(format!(
        "<!DOCTYPE html><html><head><title>xnatkit</title></head><body><h1>xnatkit archive</h1><span id=\"user_info\">{who}</span></body></html>"
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

/// `PUT|POST /data/services/auth`: form login → session id + cookie.
async fn login(
    State(state): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AuthError> {
    let verified = auth::verify_credentials(&state, &form.username, &form.password).await?;
    let id = auth::open_session(&state, &verified.user, verified.token_alias.as_deref()).await?;
    Ok(with_session_cookie(
        &state,
        text(StatusCode::OK, id.clone()),
        &id,
    ))
}

fn with_session_cookie(state: &AppState, mut response: Response, id: &str) -> Response {
    for cookie in auth::session_cookies(state, id) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn auth_check(caller: Caller) -> Result<Response, ApiError> {
    let user = caller.require_user()?;
    Ok(text(
        StatusCode::OK,
        format!("User '{}' is logged in", user.username),
    ))
}

/// `GET|POST /data/JSESSION`: the caller's session id.
async fn jsession(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let user = caller.require_user()?;
    let id = match &caller.session_id {
        Some(id) => id.clone(),
        None => auth::open_session(&state, user, None).await?,
    };
    Ok(with_session_cookie(
        &state,
        text(StatusCode::OK, id.clone()),
        &id,
    ))
}

/// `DELETE /data/JSESSION`: logout; always 200.
async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = caller.session_id.or_else(|| auth::session_cookie(&headers)) {
        state.store().delete_http_session(&id).await?;
    }
    let mut response = text(StatusCode::OK, "");
    if let Some(v) = auth::cleared_session_cookie(&state) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn version() -> Response {
    text(StatusCode::OK, XNAT_VERSION)
}

async fn build_info() -> Response {
    json(
        serde_json::json!({
            "version": XNAT_VERSION,
            "buildNumber": "xnatkit",
            "buildDate": "",
            "commit": env!("CARGO_PKG_VERSION"),
            "server": "xnatkit",
        })
        .to_string(),
    )
}

async fn schema_list() -> Response {
    json(serde_json::json!(schema::SCHEMA_NAMES).to_string())
}

async fn schema_document(Path(name): Path<String>) -> Result<Response, ApiError> {
    let body = match name.trim_end_matches(".xsd") {
        "xnat" => schema::xnat_schema(),
        "xdat" => schema::XDAT_SCHEMA.to_owned(),
        "icr" => schema::plugin_schema(xnatkit_model::AssessorType::RoiCollection),
        "proc" => schema::plugin_schema(xnatkit_model::AssessorType::GenProc),
        other => return Err(ApiError::not_found(format!("schema {other}"))),
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    Ok(response)
}

/// Search display fields: an empty table is all clients need.
async fn search_elements() -> Response {
    json(xnatkit_model::ResultSet::new("Elements", &["ELEMENT_NAME"]).to_json())
}

async fn issue_token(State(state): State<AppState>, caller: Caller) -> Result<Response, AuthError> {
    let user = caller.require_user()?;
    issue(&state, &user.username, user.id).await
}

async fn issue_token_for(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Response, AuthError> {
    caller.require_user()?;
    if !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "Forbidden: only site administrators issue tokens for other users".to_owned(),
        )
        .into());
    }
    let user = state
        .store()
        .user(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {username}")))?;
    issue(&state, &user.username, user.id).await
}

async fn issue(state: &AppState, username: &str, user_id: i64) -> Result<Response, AuthError> {
    let alias = uuid::Uuid::new_v4().to_string();
    let secret = passwords::random_secret(64);
    let hash = state
        .hasher()
        .hash(&secret)
        .await?
        .map_err(ApiError::Internal)?;
    let lifetime = i64::try_from(state.config().token_lifetime.as_millis()).unwrap_or(i64::MAX);
    let token = state
        .store()
        .create_alias_token(&alias, &hash, username, now_ms().saturating_add(lifetime))
        .await?;
    Ok(json(
        serde_json::json!({
            "alias": token.alias,
            "secret": secret,
            "xdatUserId": user_id.to_string(),
            "singleUse": false,
            "estimatedExpirationTime": token.expires,
            "timestamp": token.created,
            "created": token.created,
            "enabled": true,
            "id": token.id,
            "disabled": 0,
        })
        .to_string(),
    ))
}

/// `invalidate/{alias}/{secret}`: disables the token and ends every
/// session it opened. The secret is checked like a login (counted per
/// alias), and tokens the caller may not manage look absent.
async fn invalidate_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((alias, secret)): Path<(String, String)>,
) -> Result<Response, AuthError> {
    caller.require_user()?;
    let not_found = || AuthError::Api(ApiError::not_found(format!("token {alias}")));
    let token = auth::verify_token_secret(&state, &alias, &secret)
        .await?
        .ok_or_else(not_found)?;
    let owner_or_admin = caller.is_admin() || caller.username() == Some(token.username.as_str());
    if !owner_or_admin {
        return Err(not_found());
    }
    state.store().disable_alias_token(&alias).await?;
    state.credentials().forget(&format!("token:{alias}"));
    Ok(text(StatusCode::OK, ""))
}

/// `validate/{alias}/{secret}`: anonymous, so it is a guessing oracle
/// unless it shares the login's per-alias counting and bounded hashing.
async fn validate_token(
    State(state): State<AppState>,
    Path((alias, secret)): Path<(String, String)>,
) -> Result<Response, AuthError> {
    let valid = auth::verify_token_secret(&state, &alias, &secret).await?;
    Ok(json(match valid {
        Some(token) => serde_json::json!({ "valid": token.username }).to_string(),
        None => "{}".to_owned(),
    }))
}
