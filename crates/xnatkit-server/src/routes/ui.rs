//! The login page that unauthenticated browser requests are redirected to
//! (see [`crate::auth::authenticate`]), at `/app/login` with the web pages
//! ([`crate::web`]) and at its first address `/ui/login`, and the old
//! `/ui/logout`. Pages are askama templates compiled into the binary
//! (`templates/`), so HTML escaping is the template engine's, not ours.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::access::Caller;
use crate::auth::{self, AuthError};
use crate::error::ApiError;
use crate::state::AppState;

/// Where browsers are sent to log in.
pub const LOGIN_PATH: &str = "/app/login";

/// Where the login page was first; still served for old links.
pub const OLD_LOGIN_PATH: &str = "/ui/login";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(LOGIN_PATH, get(login_form).post(login))
        .route(OLD_LOGIN_PATH, get(login_form).post(login))
        .route("/ui/logout", post(logout))
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage<'a> {
    layout: crate::web::Layout,
    action: &'a str,
    next: &'a str,
    message: Option<&'a str>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// `next` when it is a path on this site, else the site root: a login
/// link must not send the user to another site.
pub fn local_target(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

fn page(status: StatusCode, state: &AppState, next: &str, message: Option<&str>) -> Response {
    let layout = crate::web::Layout::new(state, &Caller::default(), "Log in");
    let rendered = LoginPage {
        layout,
        action: LOGIN_PATH,
        next,
        message,
    }
    .render();
    crate::web::page(status, rendered)
}

async fn login_form(State(state): State<AppState>, Query(query): Query<NextQuery>) -> Response {
    page(
        StatusCode::OK,
        &state,
        local_target(query.next.as_deref()),
        None,
    )
}

/// Checks the form's credentials with the same rules as Basic logins
/// (attempt counting, lockout, one answer for every refusal), opens a
/// session and sends the browser on with its cookie.
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Login CSRF: another site's page must not log the browser in as
    // someone else.
    if super::is_cross_site(&headers) {
        return ApiError::Forbidden(
            "Forbidden: a login form posted from another site is refused; log in on this site's own page".to_owned(),
        )
        .into_response();
    }
    let next = local_target(form.next.as_deref()).to_owned();
    let verified = match auth::verify_credentials(&state, &form.username, &form.password).await {
        Ok(verified) => verified,
        Err(AuthError::Api(ApiError::Unauthorized(message))) => {
            return page(StatusCode::UNAUTHORIZED, &state, &next, Some(&message));
        }
        Err(other) => return other.into_response(),
    };
    let id = match auth::open_session(&state, &verified.user, verified.token_alias.as_deref()).await
    {
        Ok(id) => id,
        Err(err) => return err.into_response(),
    };
    let mut response = see_other(&next);
    for cookie in auth::session_cookies(&state, &id) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Ends the browser's session and shows the login form again.
async fn logout(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    if super::is_cross_site(&headers) {
        return ApiError::Forbidden(
            "Forbidden: a logout posted from another site is refused".to_owned(),
        )
        .into_response();
    }
    if let Some(id) = &caller.session_id
        && let Err(err) = state.store().delete_http_session(id).await
    {
        return ApiError::from(err).into_response();
    }
    see_other(LOGIN_PATH)
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::local_target;

    #[test]
    fn login_redirects_stay_on_this_site() {
        assert_eq!(
            local_target(Some("/data/projects?x=1")),
            "/data/projects?x=1"
        );
        assert_eq!(local_target(Some("//evil.example/")), "/");
        assert_eq!(local_target(Some("https://evil.example/")), "/");
        assert_eq!(local_target(Some("/\\evil.example")), "/");
        assert_eq!(local_target(Some("/a\r\nSet-Cookie: x")), "/");
        assert_eq!(local_target(None), "/");
    }
}
