//! [`XnatRequest`]: the one extractor that gives handlers XNAT's request
//! parameters. XNAT reads parameters from the query string and, when the
//! body is form-encoded, from the body too (pyxnat sends them so), except
//! where the body is the payload itself.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};

use crate::error::ApiError;
use crate::params::Params;

/// Largest form body read for parameters.
const MAX_FORM_BYTES: usize = 1 << 20;

/// A request split into its head, its XNAT parameters and what is left of
/// its body.
pub struct XnatRequest {
    pub parts: Parts,
    pub params: Params,
    /// The body, or an empty one when it was a form read into `params`.
    pub body: Body,
}

impl XnatRequest {
    /// The request's `Content-Type`, lower-cased (empty when absent).
    pub fn content_type(&self) -> String {
        content_type(&self.parts)
    }
}

impl<S: Send + Sync> FromRequest<S> for XnatRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let mut params = Params::from_query(parts.uri.query());
        if !body_holds_parameters(&parts, &params) {
            return Ok(Self {
                parts,
                params,
                body,
            });
        }
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|e| ApiError::BadRequest(format!("cannot read form body: {e}")))?;
        params.extend_from_urlencoded(&bytes);
        Ok(Self {
            parts,
            params,
            body: Body::empty(),
        })
    }
}

/// A form-encoded body carries parameters, except on a GET, when the
/// client says `inbody=true` (the import service's "the body is the file"),
/// and on file uploads (`…/files…`), where it is the file itself: pyxnat
/// sends files with that content type or none.
fn body_holds_parameters(parts: &Parts, params: &Params) -> bool {
    content_type(parts).starts_with("application/x-www-form-urlencoded")
        && parts.method != Method::GET
        && !params.flag("inbody")
        && !parts.uri.path().split('/').any(|s| s == "files")
}

fn content_type(parts: &Parts) -> String {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}
