//! xnatkit-client's integration tests, one test binary: the client against the
//! real in-process server (`xnatkit_test_support::server`), with the fault
//! proxy in between where a test needs a broken network or server.

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod resume;
