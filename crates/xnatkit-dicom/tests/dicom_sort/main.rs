//! xnatkit-dicom's integration tests, one test binary: header reading against
//! pydicom's test files and dcmdump, sorting and assembling generated
//! series, the dicomdump rows, and the C-STORE receiver against DCMTK and
//! pynetdicom.

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used)]

mod common;

mod assembler;
mod dump;
mod headers;
mod scp;
mod sorting;
