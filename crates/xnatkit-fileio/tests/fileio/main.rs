//! xnatkit-fileio's integration tests, one test binary: archive extraction with
//! its limits and hostile entries, and the streamed zip/tar writers read
//! back by independent readers.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod extract;
mod streams;
