//! Page addresses and the actor of a page request, in one place: every
//! path segment of a link is percent-encoded here, and askama then
//! HTML-escapes the whole link like every other value.

use xnatkit_model::encode_segment;

use crate::access::Caller;
use crate::archive::Actor;
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
