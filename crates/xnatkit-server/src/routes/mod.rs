//! The HTTP surface, one module per area; each exposes `routes()`.
//!
//! - [`connect`] — `/`, login/logout, version, schemas, search elements,
//!   alias tokens — what clients call while connecting.
//! - [`users`] — site users under `/xapi/users`.
//! - [`xapi`] — the Container Service API (commands, launches,
//!   containers, subscriptions) and the workflow routes.
//! - [`dicomweb`] — QIDO-RS, WADO-RS, WADO-URI and STOW-RS under
//!   `/xapi/dicomweb` (site-wide and per project).
//! - [`archive`] — everything below `/data`, `/data/archive` and `/REST`
//!   (hierarchy, resources, files, downloads, project users/accessibility).
//!
//! More specific routes (e.g. `/data/services/import`) can be merged next to
//! these: axum prefers static segments over the archive's catch-all.
//!
//! [`canonical_rest_root`] rewrites `/REST` and `/data/archive` to `/data`
//! before routing, so routes are registered once, under `/data`.
//! [`browser_safety`] wraps everything (outside authentication): the CSRF
//! check for cookie-authenticated writes and the security headers on every
//! answer. [`refuse_nul_in_url`] refuses URLs that would carry a NUL
//! character into a handler, whatever route they are meant for.
//! [`access_log`] writes one line per request (target `xnatkit_server::access`).

pub mod archive;
pub mod catalog;
pub mod connect;
pub mod dicomweb;
pub mod ingest;
pub mod ui;
pub mod users;
pub mod xapi;
pub mod xnat_request;

pub use xnat_request::XnatRequest;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

/// The whole application with authentication applied to every route.
pub fn app(state: AppState) -> Router {
    let routed = Router::new()
        .merge(connect::routes())
        .merge(users::routes())
        .merge(ingest::routes())
        .merge(archive::routes())
        .merge(xapi::routes())
        .merge(catalog::routes())
        .merge(dicomweb::routes())
        .merge(ui::routes())
        .merge(crate::web::routes())
        .fallback(not_found);
    layered(routed, state)
}

/// `routed` (with its own fallback) behind the layers every listener shares: authentication, the
/// request timeout, path canonicalisation, browser-safety headers and the
/// access log (the OHIF listener, [`crate::viewer::app`], reuses them).
pub fn layered(routed: Router<AppState>, state: AppState) -> Router {
    let routed = routed
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            state.config().request_timeout,
            request_timeout,
        ))
        .with_state(state);
    // The root rewrite must run before routing, which layers of `routed`
    // do not (axum routes first, then runs a route's layers); an outer
    // router whose only route is `routed` gives it that place.
    Router::new()
        .fallback_service(routed)
        .layer(middleware::from_fn(canonical_rest_root))
        .layer(middleware::from_fn(refuse_nul_in_url))
        .layer(middleware::from_fn(browser_safety))
        .layer(middleware::from_fn(access_log))
}

/// Rewrites `/REST/…` and `/data/archive/…` to `/data/…` before routing
/// ([`xnatkit_model::uri`]), so every route is registered once under `/data`
/// and handlers see one spelling. The access log keeps the client's own.
pub async fn canonical_rest_root(mut request: Request, next: Next) -> Response {
    if let Some(path) = xnatkit_model::uri::canonical_request_path(request.uri().path()) {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let mut parts = request.uri().clone().into_parts();
        match path_and_query.parse() {
            Ok(rewritten) => {
                parts.path_and_query = Some(rewritten);
                if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                    *request.uri_mut() = uri;
                }
            }
            // Unreachable in practice: the rewrite only shortens a path
            // that already parsed; if it ever fails, route the original.
            Err(err) => tracing::debug!("cannot rewrite {path_and_query}: {err}"),
        }
    }
    next.run(request).await
}

/// The CSP of API answers: nothing may load from them or frame them.
const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Cross-site request forgery defence and security headers, one layer.
///
/// A browser attaches the `JSESSIONID` cookie to a form another site posts
/// to us. Such a request is refused (403, nothing run) when it changes
/// state, carries the cookie and no `Authorization`, and the browser marks
/// it as foreign: `Sec-Fetch-Site: cross-site`, or an `Origin` (else
/// `Referer`) naming another host than the request's own `Host`. Scripts
/// (xnatpy, pyxnat, curl) send neither header and are never refused; Basic
/// credentials are not ambient to another site's page, so Basic requests
/// pass too.
///
/// Every answer gets `nosniff`, `DENY` framing and (unless the handler set
/// one) the API CSP; answers that are not byte-range file downloads get
/// `Cache-Control: no-store`, so user data never lands in shared caches.
pub async fn browser_safety(request: Request, next: Next) -> Response {
    let refused = is_cross_site_cookie_write(request.method(), request.headers());
    let mut response = if refused {
        ApiError::Forbidden(
            "Forbidden: cross-site request with a session cookie refused; send the request from this site's own pages or with credentials".to_owned(),
        )
        .into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
        );
    }
    let file_download =
        headers.contains_key(header::ACCEPT_RANGES) || headers.contains_key(header::CONTENT_RANGE);
    if !file_download && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One line per request at info level, target `xnatkit_server::access`:
/// method, path, status, milliseconds until the answer's head, and the
/// authenticated user (`-` for anonymous or refused callers). The query
/// string is never logged, and the secret of an alias token in a
/// `…/tokens/…` path is replaced by `*`, so the log holds no credentials.
/// Streamed bodies are still flowing when the line is written.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = loggable_path(request.uri().path());
    let response = next.run(request).await;
    let user = response
        .extensions()
        .get::<auth::LoggedUser>()
        .map_or("-", |u| u.0.as_str());
    tracing::info!(
        target: "xnatkit_server::access",
        "{method} {path} {} {}ms {user}",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// `path` with credentials taken out: everything after the alias in the
/// token services (`/data/services/tokens/{validate,invalidate}/ALIAS/SECRET`).
fn loggable_path(path: &str) -> String {
    let Some(at) = path.find("/services/tokens/") else {
        return path.to_owned();
    };
    let (head, tail) = path.split_at(at + "/services/tokens/".len());
    let mut parts = tail.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(action), Some(alias), Some(_secret)) => format!("{head}{action}/{alias}/*"),
        _ => path.to_owned(),
    }
}

/// A percent-encoded NUL (`%00`) in the path or query is refused with 400
/// before routing. No XNAT name or parameter holds one, PostgreSQL cannot
/// store one in text (it answered 500), and C-style consumers of a name
/// (the file system, DICOM tools) would cut it short. One check at the edge
/// covers every route, including those that take segments through axum's
/// `Path` or values from the query.
pub async fn refuse_nul_in_url(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let holds_nul = |text: &str| {
        text.as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
    };
    if holds_nul(uri.path()) || uri.query().is_some_and(holds_nul) {
        return ApiError::BadRequest(
            "the request URL holds a NUL character (%00); remove it from the path and parameters"
                .to_owned(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Bounds the time to answer a request that uploads nothing (listings,
/// changes, the head of a download, whose body then streams as long as it
/// needs): past [`crate::ServerConfig::request_timeout`] the work is
/// dropped — as when a client hangs up, which every handler already
/// survives — and the client is answered 503. Uploads are exempt: their
/// handlers read the body before answering, and a stalled body is bounded
/// by [`crate::http_limits`] instead.
pub async fn request_timeout(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    if is_transfer(&request) {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = text(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server took longer than {} s to answer; try again later or ask for less",
                    limit.as_secs()
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            response
        }
    }
}

/// A request that sends a body other than a parameter form: an upload.
fn is_transfer(request: &Request) -> bool {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|len| len > 0);
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    has_body && !is_form
}

fn is_cross_site_cookie_write(method: &Method, headers: &HeaderMap) -> bool {
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !changes_state
        || auth::session_cookie(headers).is_none()
        || headers.contains_key(header::AUTHORIZATION)
    {
        return false;
    }
    is_cross_site(headers)
}

/// True when the browser marks the request as coming from another site:
/// `Sec-Fetch-Site: cross-site`, or an `Origin` (else `Referer`) naming
/// another host than the request's own `Host`. Requests without those
/// headers (scripts) are not cross-site.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return true;
    }
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    match claimed {
        None => false,
        Some(value) => !same_host(value, headers.get(header::HOST)),
    }
}

/// True when the `Origin`/`Referer` value names the request's own host
/// (and port). Unparsable values (`Origin: null`) count as foreign.
fn same_host(claimed: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Some(claimed), Some(host)) = (
        claimed.to_str().ok().and_then(|v| url::Url::parse(v).ok()),
        host.and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    let Some(claimed_host) = claimed.host_str() else {
        return false;
    };
    let claimed_authority = match claimed.port() {
        Some(port) => format!("{claimed_host}:{port}"),
        None => claimed_host.to_owned(),
    };
    let host = host.trim().to_ascii_lowercase();
    let with_default_port = claimed
        .port_or_known_default()
        .map(|port| format!("{claimed_host}:{port}"));
    host == claimed_authority || Some(&host) == with_default_port.as_ref()
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::NotFound("Not Found".to_owned())
}

/// A plain-text 200/201 answer.
pub fn text(status: axum::http::StatusCode, body: impl Into<String>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A JSON answer from an already serialised string.
pub fn json(body: String) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn token_secrets_never_reach_the_access_log() {
        assert_eq!(
            loggable_path("/data/services/tokens/invalidate/0b1c-alias/s3cr3t"),
            "/data/services/tokens/invalidate/0b1c-alias/*"
        );
        assert_eq!(
            loggable_path("/REST/services/tokens/validate/a/secret/extra"),
            "/REST/services/tokens/validate/a/*"
        );
        assert_eq!(
            loggable_path("/data/services/tokens/issue"),
            "/data/services/tokens/issue"
        );
        assert_eq!(loggable_path("/data/projects/P"), "/data/projects/P");
    }
}
