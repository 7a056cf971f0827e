//! xnatkit-upload's integration tests, one test binary: scanning and planning
//! on generated DICOM trees, uploads to the real in-process server, and the
//! cross-check against the unchanged xnatuploader.

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used)]

mod common;

mod scan_and_plan;
mod upload_server;
mod xnatuploader_crosscheck;
