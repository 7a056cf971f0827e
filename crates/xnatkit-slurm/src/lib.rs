//! Slurm as a place to run jobs, through Slurm's own command-line tools.
//!
//! This crate owns the conversation with a Slurm cluster: writing a job as a
//! batch script and submitting it with `sbatch --parsable`, following it with
//! `squeue` (falling back to `scontrol show job`, `sacct` and the
//! `jobcomp/filetxt` completion log once `squeue` has forgotten it),
//! cancelling it with `scancel`, and mapping Slurm's many job states onto the
//! five an engine cares about ([`JobStatus`]). Every CLI call runs under a
//! timeout, so a dead or hung `slurmctld` becomes a typed
//! [`SlurmError`] instead of a stuck task.
//!
//! It does not own HTTP, a job queue or retries: the server's processing
//! engine decides what to run and when, and calls [`SlurmCluster`].
//!
//! ```no_run
//! # async fn run() -> Result<(), xnatkit_slurm::SlurmError> {
//! use std::time::Duration;
//! use xnatkit_slurm::{JobScript, JobStatus, SlurmCluster};
//!
//! let cluster = SlurmCluster::new().with_completion_log("/var/log/slurm/jobcomp.log");
//! cluster.ping().await?; // once, at engine start
//! let mut job = JobScript::new("xnatkit-run-42", "/srv/work/42", "dcm2niix -o out in",
//!                              "/srv/work/42/stdout.log", "/srv/work/42/stderr.log");
//! job.time_limit = Some(Duration::from_secs(3600));
//! job.cpus = Some(2);
//! let id = cluster.submit(&job).await?;   // keep `id` with the engine's job
//! match cluster.status(&id).await? {      // on each poll
//!     JobStatus::Queued | JobStatus::Running => {}
//!     JobStatus::Complete => { /* collect outputs */ }
//!     JobStatus::Failed { reason, exit_code } => { /* show reason */ }
//!     JobStatus::Killed { reason } => {}
//! }
//! cluster.cancel(&id).await?;             // when a user cancels
//! # Ok(()) }
//! ```
//!
//! Why the CLI and not libslurm or slurmrestd: Debian 12 ships Slurm 22.05,
//! the Rust FFI bindings target 17.11, and slurmrestd needs JWT setup most
//! sites do not have; the CLI is what every site has and what Snakemake and
//! DAX drive too. See `docs/slurm.md` for the site setup.

mod cluster;
mod error;
mod job;
mod state;

pub use cluster::{DEFAULT_COMMAND_TIMEOUT, SlurmCluster};
pub use error::SlurmError;
pub use job::{JobScript, SlurmJobId};
pub use state::{ExitStatus, JobStatus, SlurmJobInfo, SlurmJobState, StateSource};
