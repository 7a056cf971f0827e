//! Cross-site request forgery defence for the pages' unsafe requests, on
//! top of the edge check every cookie write gets
//! ([`crate::routes::browser_safety`]): a page's POST must come from this
//! site (`Sec-Fetch-Site` same-origin, or no foreign `Origin`/`Referer`)
//! **and** carry the form token of the browser's session.
//!
//! The token is a hash of the session ID with a purpose prefix: another
//! site cannot read the `HttpOnly` session cookie, so it cannot compute the
//! token, and the server needs no table of tokens. It changes with every
//! login and dies with the session.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::access::Caller;
use crate::error::ApiError;

/// The form field that carries the token.
pub const FIELD: &str = "_csrf";
/// The header htmx requests carry it in (set by `app.js`).
pub const HEADER: &str = "x-xnatkit-csrf";

/// The form token of a session.
pub fn form_token(session_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"xnatkit web form token\0");
    hasher.update(session_id.as_bytes());
    hex::encode(hasher.finalize())
}

/// Equal without an early exit, so timing tells nothing about the token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Allows an unsafe request from a page, or refuses it (403) when it
/// comes from another site, has no session, or lacks the session's token
/// (in the form field or the header).
pub fn check(headers: &HeaderMap, caller: &Caller, form: Option<&str>) -> Result<(), ApiError> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if fetch_site
        .as_deref()
        .is_some_and(|site| site != "same-origin" && site != "none")
        || crate::routes::is_cross_site(headers)
    {
        return Err(ApiError::Forbidden(
            "Forbidden: a form sent from another site is refused; use this site's own pages"
                .to_owned(),
        ));
    }
    let Some(session) = caller.session_id.as_deref() else {
        return Err(ApiError::Forbidden(
            "Forbidden: this form needs a browser session; log in again".to_owned(),
        ));
    };
    let sent = form.or_else(|| headers.get(HEADER).and_then(|v| v.to_str().ok()));
    match sent {
        Some(token) if same(token, &form_token(session)) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "Forbidden: the form token is missing or stale; reload the page and try again"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_one_session() {
        let caller = Caller {
            user: None,
            session_id: Some("S1".to_owned()),
        };
        let headers = HeaderMap::new();
        assert!(check(&headers, &caller, Some(&form_token("S1"))).is_ok());
        assert!(check(&headers, &caller, Some(&form_token("S2"))).is_err());
        assert!(check(&headers, &caller, None).is_err());
        let mut foreign = HeaderMap::new();
        foreign.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(check(&foreign, &caller, Some(&form_token("S1"))).is_err());
        let mut same_site = HeaderMap::new();
        same_site.insert("sec-fetch-site", "same-site".parse().unwrap());
        assert!(check(&same_site, &caller, Some(&form_token("S1"))).is_err());
    }
}
