//! HTTP side of DICOM ingestion:
//!
//! - [`import`]: `POST /data/services/import`;
//! - [`prearchive`]: `/data/prearchive/…` listings, downloads and actions,
//!   `POST /data/services/archive`, `/data/services/prearchive/{move,delete,rebuild}`,
//!   and `/data/projects/{P}/prearchive_code[/{n}]`;
//! - [`dicomdump`]: `GET /data/services/dicomdump`.
//!
//! The work itself is in [`crate::import`] and [`crate::prearchive`].

mod dicomdump;
mod import;
mod prearchive;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header, request::Parts};
use axum::response::{IntoResponse, Response};
use xnat_model::{ResultSet, Row};

use crate::error::ApiError;
use crate::params::{Format, Params};
use crate::state::AppState;

/// Largest form body read for parameters.
const MAX_FORM_BYTES: usize = 1 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(import::routes())
        .merge(prearchive::routes())
        .merge(dicomdump::routes())
        // Uploads are streamed to disk under the server's own size limit.
        .layer(DefaultBodyLimit::disable())
}

fn is_form(parts: &Parts) -> bool {
    content_type(parts).starts_with("application/x-www-form-urlencoded")
}

fn content_type(parts: &Parts) -> String {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Query parameters plus those of a form-encoded body (pyxnat sends them so).
async fn request_params(parts: &Parts, body: Body) -> Result<Params, ApiError> {
    let mut params = Params::from_query(parts.uri.query());
    if is_form(parts) {
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|e| ApiError::BadRequest(format!("cannot read form body: {e}")))?;
        params.extend_from_urlencoded(&bytes);
    }
    Ok(params)
}

/// Every value of a repeatable parameter, in request order.
fn all_values<'a>(params: &'a Params, key: &str) -> Vec<&'a str> {
    params
        .pairs()
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A ResultSet table as JSON (default) or CSV.
fn table(title: &str, columns: &[&str], rows: Vec<Row>, params: &Params) -> Response {
    let mut set = ResultSet::new(title, columns);
    for row in rows {
        set.push(row);
    }
    let (body, mime) = match params.format() {
        Some(Format::Csv) => (set.to_csv(), "text/csv; charset=utf-8"),
        _ => (set.to_json(), "application/json; charset=utf-8"),
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    response
}
