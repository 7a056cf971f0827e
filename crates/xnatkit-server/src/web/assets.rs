//! The static files of the pages, compiled into the binary so the server
//! needs no folder beside it: the vendored htmx (0BSD, unmodified), our own
//! small script and stylesheet. They change only with the binary, so a
//! browser may keep them for a day.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const HTMX: &[u8] = include_bytes!("../../assets/htmx.min.js");
const APP_JS: &[u8] = include_bytes!("../../assets/app.js");
const APP_CSS: &[u8] = include_bytes!("../../assets/app.css");

pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "Not Found").into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}
