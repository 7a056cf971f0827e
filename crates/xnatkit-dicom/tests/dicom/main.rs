//! xnatkit-dicom's integration tests, one test binary: header reading against
//! pydicom's test files and dcmdump, sorting generated series, and the
//! dicomdump rows.

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used)]

mod dump;
mod headers;
mod sorting;
