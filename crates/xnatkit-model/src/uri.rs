//! XNAT answers its REST API under three roots — `/data`, `/data/archive`
//! and the legacy `/REST` — and clients use all three (xnatpy `/data`,
//! pyxnat `/REST` and `/data/archive`, scripts whatever they copied). This
//! module is the one place that turns them into one spelling, so the server
//! routes every request once and reads URIs given as parameters (`dest`,
//! `src`) the same way.

/// The root every canonical request path starts with.
pub const REST_ROOT: &str = "/data";

/// `path` with the REST root spelled `/data`: `/REST/x` and
/// `/data/archive/x` become `/data/x` (and `/REST`, `/data/archive` become
/// `/data`). `None` when `path` is already canonical or not under a REST
/// root at all, so callers rewrite only when needed.
pub fn canonical_request_path(path: &str) -> Option<String> {
    let rest = root_rest(path, "/REST").or_else(|| root_rest(path, "/data/archive"))?;
    Some(format!("{REST_ROOT}{rest}"))
}

/// A URI given as a parameter value with its REST root removed:
/// `/data/prearchive/projects/P/…` and `/REST/prearchive/…` become
/// `/prearchive/projects/P/…`. `/archive` is kept: in `dest` it is what
/// says "archive" rather than "prearchive".
pub fn without_rest_root(uri: &str) -> &str {
    root_rest(uri, "/data")
        .or_else(|| root_rest(uri, "/REST"))
        .unwrap_or(uri)
}

/// What follows `root` in `path` when `path` is `root` itself or continues
/// with `/` (so `/data/archives` is not under `/data/archive`).
fn root_rest<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_share_one_root() {
        assert_eq!(
            canonical_request_path("/REST/projects/P").as_deref(),
            Some("/data/projects/P")
        );
        assert_eq!(
            canonical_request_path("/data/archive/projects/P/prearchive_code").as_deref(),
            Some("/data/projects/P/prearchive_code")
        );
        assert_eq!(canonical_request_path("/REST").as_deref(), Some("/data"));
        assert_eq!(
            canonical_request_path("/data/archive").as_deref(),
            Some("/data")
        );
        assert_eq!(canonical_request_path("/data/projects"), None);
        assert_eq!(canonical_request_path("/data/archives/x"), None);
        assert_eq!(canonical_request_path("/RESTx/projects"), None);
        assert_eq!(canonical_request_path("/xapi/users"), None);
    }

    #[test]
    fn parameter_uris_lose_only_the_root() {
        assert_eq!(
            without_rest_root("/data/prearchive/projects/P/1/S"),
            "/prearchive/projects/P/1/S"
        );
        assert_eq!(
            without_rest_root("/REST/archive/projects/P"),
            "/archive/projects/P"
        );
        assert_eq!(
            without_rest_root("/archive/projects/P"),
            "/archive/projects/P"
        );
        assert_eq!(without_rest_root("/database/x"), "/database/x");
    }
}
