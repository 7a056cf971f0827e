//! paravision's integration tests, one test binary: the real PV5.1 banana
//! study (`xnatkit_test_support::fixtures::banana`) and synthetic PV6/PV360
//! studies converted and checked against an independent decode, defect
//! handling, and cross-checks with dciodvfy, dcm2niix, pydicom and brkraw.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

mod convert;
mod defects;
mod peers;
