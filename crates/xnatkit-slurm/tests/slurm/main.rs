//! xnatkit-slurm's integration tests, one test binary, against the real
//! single-node Slurm that scripts/setup-slurm.sh installs and starts.

// Test code: a failed step should panic with its error.
#![allow(clippy::unwrap_used)]

mod cluster;
