//! The ways talking to Slurm goes wrong, one variant per thing a site admin
//! would fix differently: a missing tool (install slurm-client), a controller
//! that does not answer (start slurmctld), output we cannot read (a Slurm
//! version we do not know), a job Slurm rejected or forgot.

use std::time::Duration;

/// An error from a Slurm CLI call. Each message is one line naming the
/// command and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// The program is not installed (or not where the cluster says it is).
    #[error(
        "`{program}` not found: install Slurm's client tools (Debian: apt-get install slurm-client) or point the Slurm executor at their directory"
    )]
    ToolMissing {
        program: String,
        #[source]
        source: std::io::Error,
    },

    /// The program could be found but not run (permissions, no processes left, ...).
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    /// The command did not finish in time: typically `slurmctld` is down or
    /// unreachable and the CLI is retrying its connection.
    #[error(
        "`{command}` did not answer within {}s: is slurmctld running and reachable (scontrol ping)?",
        timeout.as_secs_f32()
    )]
    Timeout { command: String, timeout: Duration },

    /// The command answered that it cannot reach `slurmctld`.
    #[error(
        "slurmctld is not answering (`{command}`: {message}): start slurmctld or check SlurmctldHost in slurm.conf"
    )]
    ControllerUnreachable { command: String, message: String },

    /// Slurm refused the job at submission (bad partition, more CPUs or
    /// memory than any node has, ...).
    #[error("sbatch rejected job `{name}`: {message}")]
    Rejected { name: String, message: String },

    /// The command failed for another reason; `stderr` is its last line.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },

    /// The command succeeded but printed something we cannot read.
    #[error("`{command}` printed {what} we cannot read: {output:?}")]
    Unparsable {
        command: String,
        what: &'static str,
        output: String,
    },

    /// Slurm does not know the job: never submitted here, or forgotten by
    /// every source that was asked.
    #[error("Slurm has no record of job {id} ({searched})")]
    UnknownJob { id: String, searched: &'static str },

    /// The job description cannot be turned into a batch script.
    #[error("job `{name}` cannot be submitted: {problem}")]
    InvalidJob { name: String, problem: String },
}
