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

/// Puts slurmd back (`scripts/setup-slurm.sh start`) when dropped, however
/// the test that killed it ends, so the tests after it find an idle node.
pub struct RestartSlurmd;

impl Drop for RestartSlurmd {
    fn drop(&mut self) {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup-slurm.sh");
        let status = std::process::Command::new("bash")
            .arg(script)
            .arg("start")
            .status();
        if !matches!(status, Ok(s) if s.success()) && !std::thread::panicking() {
            panic!("scripts/setup-slurm.sh start did not bring slurmd back: {status:?}");
        }
    }
}

/// slurmd's pid, from the pid file the live conf names; `None` when it
/// cannot be read (slurmd not started by scripts/setup-slurm.sh).
pub fn slurmd_pid() -> Option<String> {
    let conf = std::env::var("SLURM_CONF").unwrap_or_else(|_| "/etc/slurm/slurm.conf".into());
    let text = std::fs::read_to_string(conf).ok()?;
    let pid_file = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("SlurmdPidFile="))
        .unwrap_or("/run/slurmd.pid");
    Some(
        std::fs::read_to_string(pid_file.trim())
            .ok()?
            .trim()
            .to_owned(),
    )
}
