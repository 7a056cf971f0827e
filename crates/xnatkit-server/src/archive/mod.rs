//! The archive's rules, with no HTTP in them: who may see and change what
//! ([`scope`]), creating, updating and deleting projects, subjects,
//! sessions and scans ([`objects`]), image assessors ([`assessors`]),
//! resources and their files ([`files`]), and the outputs of pipeline jobs
//! filed as resources ([`outputs`]). The REST handlers in [`crate::routes`], the DICOM import,
//! and later the pipeline engine, web pages and DICOMweb call these same
//! functions ([`browse`] holds the read models of the web pages); each returns [`Error`], which only the edge turns into a
//! status code.

pub mod assessors;
pub mod browse;
mod error;
pub mod files;
pub mod objects;
pub mod outputs;
pub mod scope;

pub use error::{Error, Result};
pub use scope::{ResourceOwner, Scope, checked_project, project_access, required_scope, scope};

use crate::access::Caller;
use crate::state::AppState;

/// Who acts on the archive, and the server they act on: what every rule
/// here takes first.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub state: &'a AppState,
    pub caller: &'a Caller,
}
