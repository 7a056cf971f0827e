//! Page addresses, the REST path a page mirrors, and the actor of a page
//! request, in one place: every
//! path segment of a link is percent-encoded here, and askama then
//! HTML-escapes the whole link like every other value.

use xnatkit_model::{ArchivePath, encode_segment};

use super::WebError;

use crate::access::Caller;
use crate::archive::Actor;
use crate::error::ApiError;
use crate::state::AppState;

/// The domain layer's view of a page request.
pub fn actor<'a>(state: &'a AppState, caller: &'a Caller) -> Actor<'a> {
    Actor { state, caller }
}

/// `/app/projects/P`.
pub fn project_href(project: &str) -> String {
    format!("/app/projects/{}", encode_segment(project))
}

/// `/app/projects/P/subjects/S`.
pub fn subject_href(project: &str, subject: &str) -> String {
    format!(
        "{}/subjects/{}",
        project_href(project),
        encode_segment(subject)
    )
}

/// `/app/projects/P/subjects/S/experiments/E`.
pub fn session_href(project: &str, subject: &str, session: &str) -> String {
    format!(
        "{}/experiments/{}",
        subject_href(project, subject),
        encode_segment(session)
    )
}

/// The REST path a page mirrors (`/app/projects/P/…` ↔ `/data/projects/P/…`)
/// of a subject, session or scan; the router decoded each segment once.
pub fn archive_path(
    project: &str,
    subject: &str,
    experiment: Option<&str>,
    scan: Option<&str>,
) -> Result<ArchivePath, WebError> {
    let mut segments = vec![
        "projects".to_owned(),
        project.to_owned(),
        "subjects".to_owned(),
        subject.to_owned(),
    ];
    if let Some(experiment) = experiment {
        segments.extend(["experiments".to_owned(), experiment.to_owned()]);
    }
    if let Some(scan) = scan {
        segments.extend(["scans".to_owned(), scan.to_owned()]);
    }
    ArchivePath::parse(&segments)
        .map_err(|e| WebError(ApiError::NotFound(format!("Not Found: {e}"))))
}
