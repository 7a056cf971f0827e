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
pub(crate) mod import;
mod prearchive;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use xnatkit_model::{ResultSet, Row};

use crate::params::{Format, Params};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(import::routes())
        .merge(prearchive::routes())
        .merge(dicomdump::routes())
        // Uploads are streamed to disk under the server's own size limit.
        .layer(DefaultBodyLimit::disable())
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
