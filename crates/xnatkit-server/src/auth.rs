//! Who is calling: HTTP Basic (password or alias token), the `JSESSIONID`
//! cookie, or nobody. One middleware resolves the caller for every route and
//! stores a [`Caller`] in the request extensions. Also owns the login rules:
//! attempts counted before hashing, lockout per user and per alias token,
//! one answer for every refused login, and sessions that end with the token
//! that opened them.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::access::Caller;
use crate::error::ApiError;
use crate::passwords::{self, HashingBusy};
use crate::state::AppState;
use crate::store::{AliasToken, AttemptClaim, AttemptCounter, User, now_ms};

// The caller lives with the permission rules (`access`); its extractor here.
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

/// The authenticated user's name, attached to the response for the access
/// log (which runs outside authentication and never sees credentials).
#[derive(Debug, Clone)]
pub struct LoggedUser(pub String);

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

/// `Set-Cookie` values binding a client to `session_id`, plus the expiry
/// cookie xnatpy reads to pace its heartbeat.
pub fn session_cookies(state: &AppState, session_id: &str) -> Vec<HeaderValue> {
    session_cookie_values(
        session_id,
        now_ms(),
        state.config().session_timeout.as_millis(),
        state.config().tls.is_some(),
    )
    .into_iter()
    .filter_map(|cookie| HeaderValue::from_str(&cookie).ok())
    .collect()
}

/// The cookie attributes: the session cookie is `HttpOnly` (no script
/// reads it), `SameSite=Lax` (browsers leave it off cross-site form posts
/// and sub-requests) and `Secure` when the server speaks TLS.
fn cookie_attributes(tls: bool) -> &'static str {
    if tls {
        "Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Lax"
    }
}

fn session_cookie_values(session_id: &str, now: i64, timeout_ms: u128, tls: bool) -> Vec<String> {
    let secure = if tls { "; Secure" } else { "" };
    vec![
        format!("{SESSION_COOKIE}={session_id}; {}", cookie_attributes(tls)),
        // No secret in it, and XNAT's pages read it from script: not HttpOnly.
        format!("SESSION_EXPIRATION_TIME=\"{now},{timeout_ms}\"; Path=/; SameSite=Lax{secure}"),
    ]
}

/// The `Set-Cookie` value that removes the session cookie (logout).
pub fn cleared_session_cookie(state: &AppState) -> Option<HeaderValue> {
    let attributes = cookie_attributes(state.config().tls.is_some());
    HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Max-Age=0; {attributes}")).ok()
}

/// The one answer to every refused login: unknown user, wrong password,
/// locked or disabled account all look the same, so none of them tells a
/// guesser which names exist or which accounts are locked.
pub const LOGIN_FAILED: &str = "Login attempt failed: wrong username or password, or the account is locked or disabled; check the credentials or try again later";

fn login_failed() -> AuthError {
    AuthError::Api(ApiError::Unauthorized(LOGIN_FAILED.to_owned()))
}

/// Why credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Too many credential checks in flight: 503 with `Retry-After`.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
}

impl From<crate::archive::Error> for AuthError {
    fn from(err: crate::archive::Error) -> Self {
        Self::Api(err.into())
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        Self::Api(err.into())
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(err) => err.into_response(),
            Self::Busy(busy) => {
                let mut response =
                    crate::routes::text(StatusCode::SERVICE_UNAVAILABLE, busy.to_string());
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(passwords::BUSY_RETRY_AFTER_SECS),
                );
                response
            }
        }
    }
}

/// Credentials that passed [`verify_credentials`].
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: User,
    /// The alias token used, when the credentials were `alias:secret`.
    pub token_alias: Option<String>,
}

fn lockout_limits(state: &AppState) -> (i64, i64) {
    let config = state.config();
    (
        i64::from(config.max_failed_logins),
        i64::try_from(config.lockout.as_millis()).unwrap_or(i64::MAX),
    )
}

/// Checks a username/password pair (or alias/secret) with lockout rules.
///
/// Every attempt that needs a hash is counted before the hash runs (see
/// [`crate::store::Store::claim_login_attempt`]); refused, unknown and
/// locked attempts run a dummy hash through the same bounded pool, so
/// neither the answer nor its cost tells them apart from a wrong password.
pub async fn verify_credentials(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Verified, AuthError> {
    if uuid::Uuid::parse_str(username).is_ok() {
        return verify_token(state, username, password).await;
    }
    let store = state.store();
    let (max_attempts, lock_ms) = lockout_limits(state);
    let Some(user) = store.user(username).await? else {
        // The same statements and hash as a wrong password; the claim
        // matches no row (unknown names are not counted: nothing to lock).
        store
            .claim_login_attempt(username, max_attempts, lock_ms)
            .await?;
        state.hasher().verify_dummy(password).await?;
        return Err(login_failed());
    };
    let key = format!("user:{}", user.username);
    if state.credentials().hit(&key, password, &user.password_hash) {
        // Only the holder of the password gets here; the lock still holds.
        if user.enabled && store.accept_remembered_login(&user, max_attempts).await? {
            return Ok(Verified {
                user,
                token_alias: None,
            });
        }
        return Err(login_failed());
    }
    let secret = CountedSecret {
        counter: AttemptCounter::Account,
        key: &user.username,
        cache_key: &key,
        stored_hash: &user.password_hash,
    };
    let matched = counted_check(state, &secret, password).await?;
    if !matched || !user.enabled {
        return Err(login_failed());
    }
    Ok(Verified {
        user,
        token_alias: None,
    })
}

/// Checks an alias token's secret, counted and locked per alias exactly
/// like a user's password (aliases are as guessable a target as names).
pub async fn verify_token_secret(
    state: &AppState,
    alias: &str,
    secret: &str,
) -> Result<Option<AliasToken>, AuthError> {
    let store = state.store();
    let (max_attempts, _) = lockout_limits(state);
    let Some(token) = store.alias_token(alias).await? else {
        state.hasher().verify_dummy(secret).await?;
        return Ok(None);
    };
    if !token.enabled || token.expires < now_ms() {
        return Ok(None);
    }
    let key = format!("token:{}", token.alias);
    if state.credentials().hit(&key, secret, &token.secret_hash) {
        let accepted = store.accept_remembered_token(&token, max_attempts).await?;
        return Ok(accepted.then_some(token));
    }
    let counted = CountedSecret {
        counter: AttemptCounter::Token,
        key: &token.alias,
        cache_key: &key,
        stored_hash: &token.secret_hash,
    };
    let matched = counted_check(state, &counted, secret).await?;
    Ok(matched.then_some(token))
}

/// A stored secret whose checks are counted: an account's password or an
/// alias token's secret.
struct CountedSecret<'a> {
    counter: AttemptCounter,
    /// Username or alias: the row whose count is claimed.
    key: &'a str,
    /// Key in the credential cache (`user:…` / `token:…`).
    cache_key: &'a str,
    stored_hash: &'a str,
}

/// The one counted check behind passwords and token secrets: claim an
/// attempt before hashing (a refused claim costs a dummy hash, so it looks
/// like a wrong secret), verify within the bounded pool, and on a match
/// reset the count and remember the secret. Concurrent identical checks
/// share one run ([`crate::credential_cache::CredentialCache::single_flight`]).
async fn counted_check(
    state: &AppState,
    counted: &CountedSecret<'_>,
    secret: &str,
) -> Result<bool, AuthError> {
    let store = state.store();
    let (max_attempts, lock_ms) = lockout_limits(state);
    state
        .credentials()
        .single_flight(counted.cache_key, secret, || async {
            match store
                .claim_attempt(counted.counter, counted.key, max_attempts, lock_ms)
                .await?
            {
                AttemptClaim::Granted => {}
                AttemptClaim::Refused | AttemptClaim::Unknown => {
                    state.hasher().verify_dummy(secret).await?;
                    return Ok(false);
                }
            }
            if !state.hasher().verify(secret, counted.stored_hash).await? {
                return Ok(false);
            }
            store.reset_attempts(counted.counter, counted.key).await?;
            state
                .credentials()
                .remember(counted.cache_key, secret, counted.stored_hash);
            Ok::<bool, AuthError>(true)
        })
        .await
}

async fn verify_token(state: &AppState, alias: &str, secret: &str) -> Result<Verified, AuthError> {
    let token = verify_token_secret(state, alias, secret)
        .await?
        .ok_or_else(login_failed)?;
    let user = state
        .store()
        .user(&token.username)
        .await?
        .ok_or_else(login_failed)?;
    if !user.enabled {
        return Err(login_failed());
    }
    Ok(Verified {
        user,
        token_alias: Some(token.alias),
    })
}

/// Opens a server-side session for `user`; returns its ID. `token_alias`
/// names the alias token it is opened with, if any.
pub async fn open_session(
    state: &AppState,
    user: &User,
    token_alias: Option<&str>,
) -> Result<String, ApiError> {
    let id = passwords::session_id();
    state
        .store()
        .create_http_session(&id, &user.username, token_alias)
        .await?;
    Ok(id)
}

/// Paths that must work with a stale cookie: the login endpoints themselves.
fn tolerates_stale_session(path: &str) -> bool {
    matches!(
        path,
        "/" | "/data/services/auth"
            | crate::routes::ui::LOGIN_PATH
            | crate::routes::ui::OLD_LOGIN_PATH
            | "/ui/logout"
            | "/app/logout"
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
    let login_redirect = browser_navigation(&request).then(|| login_location(&request));
    let response = match resolve_caller(&state, request.headers(), request.uri().path()).await {
        Ok((caller, new_session)) => {
            let user = caller.username().map(|name| LoggedUser(name.to_owned()));
            request.extensions_mut().insert(caller);
            let mut response = next.run(request).await;
            if let Some(user) = user {
                response.extensions_mut().insert(user);
            }
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
    };
    match login_redirect {
        // A person in a browser gets the login page; scripts get 401 and
        // its `WWW-Authenticate` as XNAT answers them.
        Some(location) if response.status() == StatusCode::UNAUTHORIZED => {
            let mut redirect = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                redirect.headers_mut().insert(header::LOCATION, value);
            }
            redirect
        }
        _ => response,
    }
}

/// A browser loading a page: a GET that accepts HTML, without credentials
/// of its own and not from a script (`X-Requested-With`, `fetch` with a
/// non-navigation `Sec-Fetch-Mode`). Python clients and curl accept `*/*`.
fn browser_navigation(request: &Request) -> bool {
    browser_page_load(request.method(), request.headers())
}

/// [`browser_navigation`] from a request's method and headers.
pub fn browser_page_load(method: &axum::http::Method, headers: &HeaderMap) -> bool {
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let scripted = headers.contains_key("x-requested-with")
        || headers
            .get("sec-fetch-mode")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|mode| mode != "navigate");
    matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD)
        && accepts_html
        && !scripted
        && !headers.contains_key(header::AUTHORIZATION)
}

/// The login page, with the page asked for as where to go afterwards.
fn login_location(request: &Request) -> String {
    let wanted = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let encoded: String = url::form_urlencoded::byte_serialize(wanted.as_bytes()).collect();
    format!("{}?next={encoded}", crate::routes::ui::LOGIN_PATH)
}

async fn resolve_caller(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Result<(Caller, Option<String>), AuthError> {
    let store = state.store();
    let basic = basic_credentials(headers);
    let mut stale_cookie = false;
    if let Some(id) = session_cookie(headers) {
        let timeout_ms =
            i64::try_from(state.config().session_timeout.as_millis()).unwrap_or(i64::MAX);
        match store.http_session_with_user(&id).await? {
            Some((session, user))
                if session.last_seen + timeout_ms >= now_ms()
                    && session.credential_alive(now_ms()) =>
            {
                // Clients send their Basic name (a user or the token alias
                // that opened the session) next to the cookie.
                let same_user = basic.as_ref().is_none_or(|(u, _)| {
                    *u == session.username || session.token_alias.as_deref() == Some(u.as_str())
                });
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
        let verified = verify_credentials(state, &username, &password).await?;
        let id = open_session(state, &verified.user, verified.token_alias.as_deref()).await?;
        return Ok((
            Caller {
                user: Some(verified.user),
                session_id: Some(id.clone()),
            },
            Some(id),
        ));
    }
    if stale_cookie && !tolerates_stale_session(path) {
        return Err(AuthError::Api(ApiError::Unauthorized(
            "Session expired or invalid: log in again".to_owned(),
        )));
    }
    Ok((Caller::default(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookies_are_secure_only_under_tls() {
        for tls in [false, true] {
            let cookies = session_cookie_values("ABC", 1, 900_000, tls);
            assert!(cookies[0].contains("; HttpOnly"), "{}", cookies[0]);
            for cookie in &cookies {
                assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
                assert_eq!(cookie.contains("; Secure"), tls, "{cookie}");
            }
        }
        assert!(session_cookie_values("ABC", 1, 2, false)[0].starts_with("JSESSIONID=ABC; "));
    }
}
