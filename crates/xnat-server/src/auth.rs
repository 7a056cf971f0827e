//! Who is calling: HTTP Basic (password or alias token), the `JSESSIONID`
//! cookie, or nobody. One middleware resolves the caller for every route and
//! stores a [`Caller`] in the request extensions.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::error::ApiError;
use crate::passwords;
use crate::state::AppState;
use crate::store::{User, now_ms};

/// The authenticated user (if any) of one request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub user: Option<User>,
    /// The server-side session this request is bound to.
    pub session_id: Option<String>,
}

impl Caller {
    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.is_admin)
    }

    /// The user, or 401 for anonymous callers.
    pub fn require_user(&self) -> Result<&User, ApiError> {
        self.user
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("Login required: send credentials".to_owned()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default())
    }
}

pub const SESSION_COOKIE: &str = "JSESSIONID";

/// Minimum gap between two `last_seen` updates of one session.
const SESSION_TOUCH_INTERVAL_MS: i64 = 5_000;

/// The `JSESSIONID` cookie value, if sent.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// `Authorization: Basic …` credentials, if sent.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `Set-Cookie` value binding a client to `session_id`; also the expiry
/// cookie xnatpy reads to pace its heartbeat.
pub fn session_cookies(state: &AppState, session_id: &str) -> Vec<HeaderValue> {
    let timeout_ms = state.config().session_timeout.as_millis();
    let mut out = Vec::new();
    if let Ok(v) =
        HeaderValue::from_str(&format!("{SESSION_COOKIE}={session_id}; Path=/; HttpOnly"))
    {
        out.push(v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "SESSION_EXPIRATION_TIME=\"{},{}\"; Path=/",
        now_ms(),
        timeout_ms
    )) {
        out.push(v);
    }
    out
}

fn login_failed() -> ApiError {
    ApiError::Unauthorized("Login attempt failed. Please try again.".to_owned())
}

/// Checks a username/password pair (or alias/secret) with lockout rules.
pub async fn verify_credentials(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<User, ApiError> {
    let store = state.store();
    if uuid::Uuid::parse_str(username).is_ok() {
        let token = store
            .alias_token(username)
            .await?
            .ok_or_else(login_failed)?;
        if !token.enabled || token.expires < now_ms() {
            return Err(login_failed());
        }
        let key = format!("token:{}", token.alias);
        if !state.credentials().hit(&key, password, &token.secret_hash) {
            if !passwords::verify_blocking(password.to_owned(), token.secret_hash.clone()).await {
                return Err(login_failed());
            }
            state
                .credentials()
                .remember(&key, password, &token.secret_hash);
        }
        let user = store
            .user(&token.username)
            .await?
            .ok_or_else(login_failed)?;
        if !user.enabled {
            return Err(login_failed());
        }
        return Ok(user);
    }
    let user = store.user(username).await?.ok_or_else(login_failed)?;
    if user.locked_until > now_ms() {
        return Err(ApiError::Unauthorized(format!(
            "Account {username} is locked after {} failed logins; try again later",
            state.config().max_failed_logins
        )));
    }
    if !user.enabled {
        return Err(ApiError::Unauthorized(format!(
            "Account {username} is disabled"
        )));
    }
    let key = format!("user:{}", user.username);
    if state.credentials().hit(&key, password, &user.password_hash) {
        return Ok(user);
    }
    if !passwords::verify_blocking(password.to_owned(), user.password_hash.clone()).await {
        let lock_ms = i64::try_from(state.config().lockout.as_millis()).unwrap_or(i64::MAX);
        store
            .record_failed_login(
                username,
                i64::from(state.config().max_failed_logins),
                lock_ms,
            )
            .await?;
        return Err(login_failed());
    }
    if user.failed_logins > 0 {
        store.reset_failed_logins(username).await?;
    }
    state
        .credentials()
        .remember(&key, password, &user.password_hash);
    Ok(user)
}

/// Opens a server-side session for `user`; returns its ID.
pub async fn open_session(state: &AppState, user: &User) -> Result<String, ApiError> {
    let id = passwords::session_id();
    state
        .store()
        .create_http_session(&id, &user.username)
        .await?;
    Ok(id)
}

/// Paths that must work with a stale cookie: the login endpoints themselves.
fn tolerates_stale_session(path: &str) -> bool {
    matches!(
        path,
        "/" | "/data/services/auth"
            | "/data/version"
            | "/xapi/siteConfig/buildInfo"
            | "/data/JSESSION"
    )
}

/// Middleware: resolves the caller; a valid cookie wins, then Basic
/// credentials (which open a session and set the cookie), else anonymous.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match resolve_caller(&state, request.headers(), request.uri().path()).await {
        Ok((caller, new_session)) => {
            request.extensions_mut().insert(caller);
            let mut response = next.run(request).await;
            if let Some(id) = new_session
                && !response.headers().contains_key(header::SET_COOKIE)
            {
                for cookie in session_cookies(&state, &id) {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
            }
            response
        }
        Err(err) => err.into_response(),
    }
}

async fn resolve_caller(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<(Caller, Option<String>), ApiError> {
    let store = state.store();
    let basic = basic_credentials(headers);
    let mut stale_cookie = false;
    if let Some(id) = session_cookie(headers) {
        let timeout_ms =
            i64::try_from(state.config().session_timeout.as_millis()).unwrap_or(i64::MAX);
        match store.http_session_with_user(&id).await? {
            Some((session, user)) if session.last_seen + timeout_ms >= now_ms() => {
                let same_user = basic.as_ref().is_none_or(|(u, _)| *u == session.username);
                if same_user
                    && let Some(user) = user
                    && user.enabled
                {
                    // Recording every request would make each read a database
                    // write; a session only needs to look alive within the
                    // idle timeout, so refresh it at most every few seconds.
                    if now_ms() - session.last_seen
                        > (timeout_ms / 4).min(SESSION_TOUCH_INTERVAL_MS)
                    {
                        store.touch_http_session(&id).await?;
                    }
                    return Ok((
                        Caller {
                            user: Some(user),
                            session_id: Some(id),
                        },
                        None,
                    ));
                }
            }
            Some(_) => {
                store.delete_http_session(&id).await?;
                stale_cookie = true;
            }
            None => stale_cookie = true,
        }
    }
    if let Some((username, password)) = basic {
        let user = verify_credentials(state, &username, &password).await?;
        let id = open_session(state, &user).await?;
        return Ok((
            Caller {
                user: Some(user),
                session_id: Some(id.clone()),
            },
            Some(id),
        ));
    }
    if stale_cookie && !tolerates_stale_session(path) {
        return Err(ApiError::Unauthorized(
            "Session expired or invalid: log in again".to_owned(),
        ));
    }
    Ok((Caller::default(), None))
}
