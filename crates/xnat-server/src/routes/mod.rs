//! The HTTP surface, one module per area; each exposes `routes()`.
//!
//! - [`connect`] — `/`, login/logout, version, schemas, search elements,
//!   alias tokens — what clients call while connecting.
//! - [`users`] — site users under `/xapi/users`.
//! - [`archive`] — everything below `/data`, `/data/archive` and `/REST`
//!   (hierarchy, resources, files, downloads, project users/accessibility).
//!
//! More specific routes (e.g. `/data/services/import`) can be merged next to
//! these: axum prefers static segments over the archive's catch-all.

pub mod archive;
pub mod connect;
pub mod ingest;
pub mod users;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};

use crate::auth;
use crate::state::AppState;

/// The whole application with authentication applied to every route.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(connect::routes())
        .merge(users::routes())
        .merge(ingest::routes())
        .merge(archive::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
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
