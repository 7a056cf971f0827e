//! The Slurm executor: each job becomes one `sbatch` job that runs on a
//! node against the shared data folder (the job's folders are paths the node
//! sees, as on a single-node site or a cluster with a shared file system),
//! followed until Slurm reports a final state. Filing the outputs stays with
//! the server, exactly as for the local pool, so a job that fails on the
//! node leaves nothing attached.
//!
//! A command line runs as the job's body. Built-in dcm2niix runs the real
//! `dcm2niix` on the node; the other built-ins (QA, maps) run in-process in
//! a second copy of this program (`xnatkit pipeline exec-builtin`, hidden),
//! because they are Rust code, not programs the node has.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use xnatkit_pipelines::builtin::Builtin;
use xnatkit_slurm::{JobScript, JobStatus, SlurmCluster, SlurmJobId};

use crate::executor::{
    AbandonFuture, Executor, JobRun, RunFuture, RunKind, RunOutcome, last_line, made_nifti,
};

/// How often a running job's state is asked for. squeue is cheap, and a
/// second is far below any job's length.
const POLL: Duration = Duration::from_secs(1);

/// Runs jobs as Slurm batch jobs.
#[derive(Debug, Clone)]
pub struct SlurmExecutor {
    cluster: Arc<SlurmCluster>,
    /// The program that runs built-ins on the node (`exec-builtin`).
    builtin_runner: PathBuf,
    max_jobs: usize,
    time_limit: Option<Duration>,
}

impl SlurmExecutor {
    /// `builtin_runner` is the xnatkit binary at a path the nodes see;
    /// `max_jobs` is how many jobs may be submitted at once (the queue keeps
    /// the rest, so the server can still cancel them without Slurm).
    pub fn new(cluster: SlurmCluster, builtin_runner: PathBuf, max_jobs: usize) -> Self {
        Self {
            cluster: Arc::new(cluster),
            builtin_runner,
            max_jobs: max_jobs.max(1),
            time_limit: None,
        }
    }

    /// `--time` for every job; Slurm ends a job over it as TIMEOUT.
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    pub fn cluster(&self) -> &SlurmCluster {
        &self.cluster
    }

    /// The batch-script body that runs `job` on the node.
    fn body(&self, job: &JobRun) -> Result<String, String> {
        let folders = || match (job.inputs.first(), &job.output_dir) {
            (Some(input), Some(output)) => Ok((quote(input)?, quote(output)?)),
            _ => Err("a built-in needs an input and an output folder".to_owned()),
        };
        Ok(match &job.kind {
            RunKind::CommandLine(line) => line.clone(),
            // The same options as the local pool and `pipeline run --local`.
            RunKind::Builtin(Builtin::Dcm2niix) => {
                let (input, output) = folders()?;
                format!(
                    "command -v dcm2niix >/dev/null || {{ echo 'dcm2niix is not installed on this node; install the Debian package dcm2niix' >&2; exit 127; }}\n\
                     exec dcm2niix -z y -b y -w 1 -f %s_%p -o {output} {input}"
                )
            }
            RunKind::Builtin(builtin) => {
                let (_, output) = folders()?;
                let mut inputs = String::new();
                for input in &job.inputs {
                    inputs.push_str(" --input ");
                    inputs.push_str(&quote(input)?);
                }
                for (name, value) in &job.params {
                    inputs.push_str(" --param ");
                    inputs.push_str(&quote(Path::new(&format!("{name}={value}")))?);
                }
                format!(
                    "exec {} pipeline exec-builtin {}{inputs} --output {output}",
                    quote(&self.builtin_runner)?,
                    builtin.name()
                )
            }
        })
    }

    fn script(&self, job: &JobRun) -> Result<JobScript, String> {
        let mut script = JobScript::new(
            job_name(job.job_id),
            &job.work_dir,
            self.body(job)?,
            &job.stdout,
            &job.stderr,
        );
        script.time_limit = self.time_limit;
        script.env = job
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(script)
    }
}

impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn capacity(&self) -> usize {
        self.max_jobs
    }

    fn run(&self, job: JobRun, cancel: CancellationToken) -> RunFuture {
        let this = self.clone();
        Box::pin(async move { this.run_on_slurm(job, cancel).await })
    }

    /// The dead server knew the Slurm job ID; its name is enough.
    fn abandon(&self, job_id: i64) -> AbandonFuture {
        let cluster = self.cluster.clone();
        Box::pin(async move {
            let name = job_name(job_id);
            match cluster.cancel_named(&name).await {
                Ok(()) => tracing::info!("cancelled Slurm job {name} of a server that died"),
                Err(err) => tracing::warn!("cancelling Slurm job {name}: {err}"),
            }
        })
    }
}

/// The Slurm job name of engine job `job_id`.
fn job_name(job_id: i64) -> String {
    format!("xnatkit-job-{job_id}")
}

impl SlurmExecutor {
    async fn run_on_slurm(&self, job: JobRun, cancel: CancellationToken) -> RunOutcome {
        let script = match self.script(&job) {
            Ok(script) => script,
            Err(message) => return RunOutcome::Failed { message },
        };
        if cancel.is_cancelled() {
            return RunOutcome::Killed;
        }
        let id = match self.cluster.submit(&script).await {
            Ok(id) => id,
            Err(err) => {
                return RunOutcome::Failed {
                    message: format!("Slurm did not take the job: {err}"),
                };
            }
        };
        tracing::info!(job = job.job_id, slurm_job = %id, "submitted to Slurm");
        let status = tokio::select! {
            () = cancel.cancelled() => return self.cancel(&id).await,
            status = self.follow(&id) => status,
        };
        match status {
            Ok(JobStatus::Complete) => {
                if matches!(job.kind, RunKind::Builtin(Builtin::Dcm2niix))
                    && let Some(output) = &job.output_dir
                    && !made_nifti(output)
                {
                    return RunOutcome::Failed {
                        message: format!(
                            "dcm2niix made no NIfTI image: {}",
                            last_line(&job.stdout).unwrap_or_else(|| "no output".to_owned())
                        ),
                    };
                }
                RunOutcome::Exited {
                    code: 0,
                    message: String::new(),
                }
            }
            // The script's own exit code: the same outcome as the local pool
            // gives, with the program's last words as the message.
            Ok(JobStatus::Failed {
                exit_code: Some(code),
                reason,
            }) => RunOutcome::Exited {
                code,
                message: last_line(&job.stderr)
                    .or_else(|| last_line(&job.stdout))
                    .unwrap_or(reason),
            },
            Ok(JobStatus::Failed {
                reason,
                exit_code: None,
            }) => RunOutcome::Failed {
                message: format!("Slurm job {id}: {reason}"),
            },
            // An admin's scancel: the run ends killed, as a kill through the
            // server would.
            Ok(JobStatus::Killed { reason }) => {
                tracing::info!(slurm_job = %id, "cancelled outside xnatkit: {reason}");
                RunOutcome::Killed
            }
            Ok(JobStatus::Queued | JobStatus::Running) => RunOutcome::Failed {
                message: format!("Slurm job {id} was still running when it stopped being followed"),
            },
            Err(err) => {
                // Lost track of it (slurmctld gone for good): cancel it so it
                // does not finish behind a run that says failed.
                let _ = self.cluster.cancel(&id).await;
                RunOutcome::Failed {
                    message: format!("lost track of Slurm job {id}: {err}"),
                }
            }
        }
    }

    /// Polls until a final state. A few failed polls in a row are tolerated
    /// (a controller restart); each CLI call has its own timeout.
    async fn follow(&self, id: &SlurmJobId) -> Result<JobStatus, xnatkit_slurm::SlurmError> {
        let mut failures = 0;
        loop {
            match self.cluster.status(id).await {
                Ok(status) if status.is_final() => return Ok(status),
                Ok(_) => failures = 0,
                Err(err) => {
                    failures += 1;
                    if failures >= 5 {
                        return Err(err);
                    }
                    tracing::warn!(slurm_job = %id, "asking Slurm for the job's state: {err}");
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn cancel(&self, id: &SlurmJobId) -> RunOutcome {
        if let Err(err) = self.cluster.cancel(id).await {
            tracing::warn!(slurm_job = %id, "scancel: {err}");
            return RunOutcome::Failed {
                message: format!("cancelled, but scancel of Slurm job {id} failed: {err}"),
            };
        }
        // Wait for the job to be gone, so its outputs are not written
        // while the server cleans up the job's folder.
        let ended = tokio::time::timeout(Duration::from_secs(60), self.follow(id)).await;
        if !matches!(ended, Ok(Ok(_))) {
            tracing::warn!(slurm_job = %id, "did not see the cancelled job end");
        }
        RunOutcome::Killed
    }
}

/// A path as one shell word. Paths come from the server's own folders, but
/// a project or scan label may be in them; single quotes take everything
/// literally except the quote itself, which shlex escapes.
fn quote(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
    shlex::try_quote(text)
        .map(|q| q.into_owned())
        .map_err(|_| format!("{} contains a NUL byte", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn job(kind: RunKind) -> JobRun {
        JobRun {
            job_id: 7,
            kind,
            work_dir: "/srv/work/7".into(),
            mounts: BTreeMap::new(),
            inputs: vec!["/srv/work/7/in put".into()],
            output_dir: Some("/srv/work/7/out".into()),
            params: BTreeMap::new(),
            env: BTreeMap::new(),
            stdout: "/srv/work/7/stdout.log".into(),
            stderr: "/srv/work/7/stderr.log".into(),
        }
    }

    fn executor() -> SlurmExecutor {
        SlurmExecutor::new(SlurmCluster::new(), "/opt/xnatkit/bin/xnatkit".into(), 4)
    }

    #[test]
    fn builtins_run_on_the_node_with_quoted_folders() {
        let body = executor()
            .body(&job(RunKind::Builtin(Builtin::Qa)))
            .unwrap();
        assert_eq!(
            body,
            "exec /opt/xnatkit/bin/xnatkit pipeline exec-builtin qa --input '/srv/work/7/in put' --output /srv/work/7/out"
        );
        let body = executor()
            .body(&job(RunKind::Builtin(Builtin::Dcm2niix)))
            .unwrap();
        assert!(
            body.ends_with("-o /srv/work/7/out '/srv/work/7/in put'"),
            "{body}"
        );
    }

    #[test]
    fn a_builtins_parameters_go_to_the_node_quoted() {
        let mut t1 = job(RunKind::Builtin(Builtin::T1SrMap));
        t1.params = BTreeMap::from([
            ("echo-spacing".to_owned(), "10.5".to_owned()),
            ("time-base".to_owned(), "recovery".to_owned()),
        ]);
        let body = executor().body(&t1).unwrap();
        assert_eq!(
            body,
            "exec /opt/xnatkit/bin/xnatkit pipeline exec-builtin t1-sr-map --input '/srv/work/7/in put' --param 'echo-spacing=10.5' --param 'time-base=recovery' --output /srv/work/7/out"
        );
    }

    #[test]
    fn a_command_line_is_the_body() {
        let body = executor()
            .body(&job(RunKind::CommandLine("fit.sh /input /output".into())))
            .unwrap();
        assert_eq!(body, "fit.sh /input /output");
        let script = executor()
            .script(&job(RunKind::CommandLine("true".into())))
            .unwrap();
        assert_eq!(script.name, "xnatkit-job-7");
    }
}
