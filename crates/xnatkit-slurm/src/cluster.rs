//! The Slurm CLI calls. Every call is a child process under a timeout and
//! killed when the timeout fires: when slurmctld is down the tools retry
//! their connection for MessageTimeout × retries (tens of seconds), and an
//! engine polling many jobs must get an error back, not pile up processes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::job::{JobScript, SlurmJobId};
use crate::state::{self, SlurmJobInfo, StateSource};
use crate::{JobStatus, SlurmError};

/// How long one CLI call may take by default. Generous: a busy controller
/// answers in well under a second, a dead one never does.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables of the engine's own environment a job sees. The rest stays
/// out: the server's environment may hold secrets (database URLs), and stray
/// `SLURM_*`/`SBATCH_*` variables would silently change sbatch's options.
const PASSED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME",
];

/// What the CLI prints when it cannot reach slurmctld (Slurm 22.05's
/// `slurm_strerror` texts for connection failures).
const CONTROLLER_DOWN: &[&str] = &[
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Connection timed out",
    "Zero Bytes were transmitted or received",
];

/// The slurm_strerror text for a job ID the controller does not know (never
/// had, or forgot after MinJobAge).
const INVALID_JOB_ID: &str = "Invalid job id specified";

/// scancel's answer for a job that already ended: cancelling is then done.
const ALREADY_DONE: &str = "already completing or completed";

/// One Slurm cluster as seen from the machine the engine runs on: where its
/// tools are, which conf they read, where jobs go.
#[derive(Debug, Clone)]
pub struct SlurmCluster {
    bin_dir: Option<PathBuf>,
    conf: Option<PathBuf>,
    partition: Option<String>,
    account: Option<String>,
    command_timeout: Duration,
    completion_log: Option<PathBuf>,
}

impl Default for SlurmCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl SlurmCluster {
    /// The cluster the tools on `PATH` talk to, with its default partition.
    pub fn new() -> Self {
        Self {
            bin_dir: None,
            conf: None,
            partition: None,
            account: None,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            completion_log: None,
        }
    }

    /// Run `sbatch`, `squeue`, ... from this directory instead of `PATH`.
    pub fn with_bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Give the tools this `slurm.conf` (as `SLURM_CONF`).
    pub fn with_conf(mut self, conf: impl Into<PathBuf>) -> Self {
        self.conf = Some(conf.into());
        self
    }

    /// Submit to this partition (`--partition`).
    pub fn with_partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// Charge jobs to this account (`--account`).
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// The limit for each CLI call.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The `jobcomp/filetxt` log (`JobCompLoc`), read for jobs that squeue
    /// has forgotten on clusters without slurmdbd.
    pub fn with_completion_log(mut self, log: impl Into<PathBuf>) -> Self {
        self.completion_log = Some(log.into());
        self
    }

    /// The per-call timeout.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Checks that slurmctld answers (`scontrol ping`); an engine calls this
    /// once at start so a misconfigured site fails before accepting jobs.
    pub async fn ping(&self) -> Result<(), SlurmError> {
        let output = self.run("scontrol", &["ping".into()], None, None).await?;
        let text = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && text.contains("is UP") {
            return Ok(());
        }
        // The status line ("Slurmctld(primary) at host is DOWN"), not the
        // banner of asterisks scontrol prints after it.
        let message = text
            .lines()
            .find(|line| line.contains("Slurmctld"))
            .map(|line| line.trim().to_owned())
            .unwrap_or_else(|| last_line(&text, &output.stderr));
        Err(SlurmError::ControllerUnreachable {
            command: "scontrol ping".into(),
            message,
        })
    }

    /// Submits `job` with `sbatch --parsable`, the script on stdin.
    pub async fn submit(&self, job: &JobScript) -> Result<SlurmJobId, SlurmError> {
        // --no-requeue: a job whose node fails ends as NODE_FAIL whatever the
        // site's JobRequeue says; with requeueing it would silently run again
        // from the start, and retrying is the engine's decision.
        let mut args = vec![
            "--parsable".to_owned(),
            "--export=ALL".to_owned(),
            "--no-requeue".to_owned(),
        ];
        if let Some(partition) = &self.partition {
            args.push(format!("--partition={partition}"));
        }
        if let Some(account) = &self.account {
            args.push(format!("--account={account}"));
        }
        args.extend(job.sbatch_args()?);
        let mut env: Vec<(OsString, OsString)> = PASSED_ENV
            .iter()
            .filter_map(|name| Some((OsString::from(name), std::env::var_os(name)?)))
            .collect();
        env.extend(
            job.env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        let output = self
            .run("sbatch", &args, Some(job.script_text()), Some(env))
            .await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let message = last_line(&stdout, &output.stderr);
            if controller_down(&message) {
                return Err(SlurmError::ControllerUnreachable {
                    command: "sbatch".into(),
                    message,
                });
            }
            return Err(SlurmError::Rejected {
                name: job.name.clone(),
                message,
            });
        }
        let id = SlurmJobId::from_parsable(&stdout).ok_or_else(|| SlurmError::Unparsable {
            command: "sbatch --parsable".into(),
            what: "a job ID",
            output: stdout.trim().to_owned(),
        })?;
        tracing::debug!(job = %job.name, slurm_job = %id, "submitted to Slurm");
        Ok(id)
    }

    /// The engine's view of job `id`.
    pub async fn status(&self, id: &SlurmJobId) -> Result<JobStatus, SlurmError> {
        Ok(self.info(id).await?.status())
    }

    /// What Slurm says about job `id`: squeue first (cheap, live); for a
    /// finished job scontrol adds the exit code; once both have forgotten
    /// the job (after MinJobAge), sacct and then the completion log.
    pub async fn info(&self, id: &SlurmJobId) -> Result<SlurmJobInfo, SlurmError> {
        let args = [
            "--noheader".to_owned(),
            "--format=%i|%T|%r".to_owned(),
            "--states=all".to_owned(),
            format!("--jobs={id}"),
        ];
        let output = self.run("squeue", &args, None, None).await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() {
            if let Some(info) = state::parse_squeue(&stdout, id) {
                if !info.state.is_final() {
                    return Ok(info);
                }
                // squeue has no exit code column; scontrol has it.
                return Ok(match self.scontrol_info(id).await {
                    Ok(Some(detailed)) if detailed.state.is_final() => detailed,
                    Ok(_) => info,
                    Err(err) => {
                        tracing::debug!(slurm_job = %id, error = %err, "scontrol after squeue failed");
                        info
                    }
                });
            }
            if !stdout.trim().is_empty() {
                return Err(SlurmError::Unparsable {
                    command: "squeue".into(),
                    what: "a job line",
                    output: stdout.trim().to_owned(),
                });
            }
        } else {
            let message = last_line(&stdout, &output.stderr);
            if !message.contains(INVALID_JOB_ID) {
                return Err(failure("squeue", &output, message));
            }
        }
        if let Some(info) = self.scontrol_info(id).await? {
            return Ok(info);
        }
        if let Some(info) = self.sacct_info(id).await {
            return Ok(info);
        }
        if let Some(info) = self.completion_log_info(id).await {
            return Ok(info);
        }
        Err(SlurmError::UnknownJob {
            id: id.to_string(),
            searched: if self.completion_log.is_some() {
                "asked squeue, scontrol, sacct and the completion log; squeue and scontrol forget a finished job after MinJobAge"
            } else {
                "asked squeue, scontrol and sacct; squeue and scontrol forget a finished job after MinJobAge, sacct needs slurmdbd, and no completion log is configured"
            },
        })
    }

    /// Cancels job `id` (`scancel`). Cancelling a job that already ended is
    /// not an error: the caller's wish (the job is not running) holds.
    pub async fn cancel(&self, id: &SlurmJobId) -> Result<(), SlurmError> {
        // Slurm 22.05's scancel exits 0 and prints nothing for a job ID the
        // controller does not know; only --verbose shows the error line.
        let args = ["--verbose".to_owned(), id.to_string()];
        let output = self.run("scancel", &args, None, None).await?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains(ALREADY_DONE) {
            return Ok(());
        }
        if stderr.contains(INVALID_JOB_ID) {
            return Err(SlurmError::UnknownJob {
                id: id.to_string(),
                searched: "scancel: Invalid job id specified",
            });
        }
        let error_line = stderr
            .lines()
            .find(|line| line.contains("error:"))
            .map(|line| line.trim().to_owned());
        match error_line {
            None if output.status.success() => Ok(()),
            message => Err(failure(
                "scancel",
                &output,
                message.unwrap_or_else(|| last_line("", &output.stderr)),
            )),
        }
    }

    /// Cancels every job of this user named `name` (`scancel --name`),
    /// for when the job's ID was lost (a server that crashed after
    /// submitting). No such job is not an error.
    pub async fn cancel_named(&self, name: &str) -> Result<(), SlurmError> {
        let args = ["--name".to_owned(), name.to_owned()];
        let output = self.run("scancel", &args, None, None).await?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failure("scancel", &output, last_line("", &output.stderr)))
        }
    }

    /// Polls job `id` every `poll` until Slurm reports a final state. No
    /// overall limit: wrap it in `tokio::time::timeout` for one.
    pub async fn wait(&self, id: &SlurmJobId, poll: Duration) -> Result<SlurmJobInfo, SlurmError> {
        loop {
            let info = self.info(id).await?;
            if info.state.is_final() {
                return Ok(info);
            }
            tokio::time::sleep(poll).await;
        }
    }

    async fn scontrol_info(&self, id: &SlurmJobId) -> Result<Option<SlurmJobInfo>, SlurmError> {
        let args = [
            "show".into(),
            "job".into(),
            "--oneliner".into(),
            id.to_string(),
        ];
        let output = self.run("scontrol", &args, None, None).await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() {
            return stdout
                .lines()
                .find_map(|line| state::parse_key_values(line, id, StateSource::Scontrol))
                .map(Some)
                .ok_or_else(|| SlurmError::Unparsable {
                    command: "scontrol show job".into(),
                    what: "a job record",
                    output: stdout.trim().to_owned(),
                });
        }
        let message = last_line(&stdout, &output.stderr);
        if message.contains(INVALID_JOB_ID) {
            return Ok(None);
        }
        Err(failure("scontrol show job", &output, message))
    }

    /// sacct only knows jobs on clusters with slurmdbd; elsewhere it says
    /// "accounting storage is disabled", which is not an error here.
    async fn sacct_info(&self, id: &SlurmJobId) -> Option<SlurmJobInfo> {
        let args = [
            "-X".into(),
            "--noheader".into(),
            "--parsable2".into(),
            "--format=JobIDRaw,State,ExitCode".into(),
            format!("--jobs={id}"),
        ];
        match self.run("sacct", &args, None, None).await {
            Ok(output) if output.status.success() => {
                state::parse_sacct(&String::from_utf8_lossy(&output.stdout), id)
            }
            Ok(output) => {
                tracing::debug!(
                    slurm_job = %id,
                    message = %last_line("", &output.stderr),
                    "sacct has no record"
                );
                None
            }
            Err(err) => {
                tracing::debug!(slurm_job = %id, error = %err, "sacct failed");
                None
            }
        }
    }

    async fn completion_log_info(&self, id: &SlurmJobId) -> Option<SlurmJobInfo> {
        match self.completion_record(id).await {
            Ok(info) => info,
            Err(err) => {
                tracing::debug!(error = %err, "completion log unreadable");
                None
            }
        }
    }

    /// Job `id`'s record in the `jobcomp/filetxt` completion log, if one is
    /// configured and has it. [`SlurmCluster::info`] reads it last; an
    /// engine restarting after a long outage may read it directly.
    pub async fn completion_record(
        &self,
        id: &SlurmJobId,
    ) -> Result<Option<SlurmJobInfo>, std::io::Error> {
        let Some(log) = self.completion_log.as_deref() else {
            return Ok(None);
        };
        match tokio::fs::read_to_string(log).await {
            Ok(text) => Ok(state::parse_completion_log(&text, id)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(std::io::Error::new(
                err.kind(),
                format!("completion log {}: {err}", log.display()),
            )),
        }
    }

    fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    /// Runs one tool under the timeout. `env: Some(..)` replaces the
    /// environment (sbatch exports it to the job); `None` inherits it.
    async fn run(
        &self,
        name: &str,
        args: &[String],
        stdin: Option<String>,
        env: Option<Vec<(OsString, OsString)>>,
    ) -> Result<Output, SlurmError> {
        let command_line = format!("{name} {}", args.join(" "));
        let mut command = Command::new(self.program(name));
        command
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The timeout drops the future; the child must not outlive it.
            .kill_on_drop(true);
        if let Some(env) = env {
            command.env_clear().envs(env);
        }
        if let Some(conf) = &self.conf {
            command.env("SLURM_CONF", conf);
        }
        let mut child = command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                SlurmError::ToolMissing {
                    program: self.program(name).display().to_string(),
                    source,
                }
            } else {
                SlurmError::Spawn {
                    command: command_line.clone(),
                    source,
                }
            }
        })?;
        let stdin_pipe = child.stdin.take();
        let io = async move {
            if let (Some(mut pipe), Some(text)) = (stdin_pipe, stdin) {
                pipe.write_all(text.as_bytes()).await?;
                pipe.shutdown().await?;
            }
            child.wait_with_output().await
        };
        match tokio::time::timeout(self.command_timeout, io).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(source)) => Err(SlurmError::Spawn {
                command: command_line,
                source,
            }),
            Err(_) => Err(SlurmError::Timeout {
                command: command_line,
                timeout: self.command_timeout,
            }),
        }
    }
}

fn controller_down(message: &str) -> bool {
    CONTROLLER_DOWN.iter().any(|m| message.contains(m))
}

/// The error for a failed call: unreachable controller when the message says
/// so, otherwise the command's own message.
fn failure(command: &str, output: &Output, message: String) -> SlurmError {
    if controller_down(&message) {
        return SlurmError::ControllerUnreachable {
            command: command.into(),
            message,
        };
    }
    SlurmError::CommandFailed {
        command: command.into(),
        status: output.status.to_string(),
        stderr: message,
    }
}

/// The last non-empty line of stderr, else of stdout: Slurm tools put the
/// one useful sentence last.
fn last_line(stdout: &str, stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let pick = |text: &str| {
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    };
    pick(&stderr)
        .or_else(|| pick(stdout))
        .unwrap_or_else(|| "no output".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_useful_line_is_the_last_one_on_stderr() {
        let stderr = b"sbatch: warning: x\nsbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n\n";
        let line = last_line("", stderr);
        assert!(line.ends_with("(connect failure)"), "{line}");
        assert!(controller_down(&line));
        assert_eq!(last_line("12\n", b""), "12");
        assert!(!controller_down("Invalid job id specified"));
    }
}
