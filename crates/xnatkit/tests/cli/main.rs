//! The CLI's integration tests, one test binary: the real `xnatkit` binary
//! against a real `xnatkit serve` process (started on `127.0.0.1:0` through
//! `xnatkit_test_support::serve`), including `kill -9` crash tests,
//! memory-watching flood tests, a fault-injecting proxy, and snapshots of the
//! output whose exact shape matters (`snapshots/`).

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth_flood;
mod browse;
mod cluster;
mod convert_paravision;
mod crash_consistency;
mod export;
mod export_latest;
mod full_disk;
mod maps;
mod multi_instance;
mod pipeline;
mod prearchive;
mod resilience;
mod slurm_executor;
mod snapshots;
mod tls;
mod upload_resume;
