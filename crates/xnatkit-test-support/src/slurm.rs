//! The test Slurm cluster is one node shared by every test that submits to
//! it, and one of them stops its slurmd: they take this lock (besides the
//! nextest `slurm` group) so plain `cargo test` runs them one at a time too.

use std::fs::File;

/// Where scripts/setup-slurm.sh writes the jobcomp/filetxt log.
pub const COMPLETION_LOG: &str = "/var/log/slurm/jobcomp.log";

/// Blocks until no other test process uses the cluster; held while the
/// returned file lives.
pub fn node_lock() -> File {
    let lock = File::create(std::env::temp_dir().join("xnatkit-slurm-tests.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    lock
}
