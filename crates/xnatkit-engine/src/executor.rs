//! Where jobs run. [`Executor`] is the seam: the server hands a prepared
//! [`JobRun`] (folders made, inputs in place) to an executor and gets a
//! [`RunOutcome`] back; filing the outputs stays with the server. The
//! [`LocalPool`] runs jobs on this machine with bounded concurrency;
//! a cluster executor (Slurm) plugs in behind the same trait.
//!
//! A command line runs under `/bin/sh -c` in its own process group, so a
//! kill reaches the whole tree (a script and the MATLAB it started), with
//! stdout and stderr captured to the job's log files. Built-in dcm2niix
//! runs the real `dcm2niix` the same way (killable, its own words in the
//! log); built-in QA runs in-process through `xnatkit-pipelines`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use xnatkit_pipelines::builtin::Builtin;

/// What runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunKind {
    Builtin(Builtin),
    /// `/bin/sh -c` with this line.
    CommandLine(String),
}

/// One prepared job.
#[derive(Debug, Clone)]
pub struct JobRun {
    pub job_id: i64,
    pub kind: RunKind,
    /// The job's own folder (its working directory).
    pub work_dir: PathBuf,
    /// Mount name → folder.
    pub mounts: BTreeMap<String, PathBuf>,
    /// The input folders of a built-in, in mount order (a scan's DICOM;
    /// for mask-average the map's and the RTSTRUCT's).
    pub inputs: Vec<PathBuf>,
    /// The output folder of a built-in.
    pub output_dir: Option<PathBuf>,
    /// A built-in's parameters: its command inputs by name (the T1 map's
    /// `time-base`, `echo-spacing`); empty for a command line, whose
    /// inputs are already in the line.
    pub params: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The program ran to its end with this exit code.
    Exited { code: i32, message: String },
    /// It could not run, or a built-in failed; the message says why.
    Failed { message: String },
    /// Cancelled through its token.
    Killed,
}

pub type RunFuture = Pin<Box<dyn Future<Output = RunOutcome> + Send + 'static>>;

/// Runs prepared jobs. `run` resolves when the job has ended; cancelling
/// `cancel` kills it (the outcome is then [`RunOutcome::Killed`]).
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// The `backend` shown on the container record.
    fn name(&self) -> &'static str;
    /// How many jobs it takes at once; the server claims no more.
    fn capacity(&self) -> usize;
    fn run(&self, job: JobRun, cancel: CancellationToken) -> RunFuture;
    /// Makes sure job `job_id`, whose server died while it ran, does not
    /// go on running elsewhere (a local child died with its server; a
    /// cluster job would not).
    fn abandon(&self, job_id: i64) -> AbandonFuture {
        let _ = job_id;
        Box::pin(std::future::ready(()))
    }
}

pub type AbandonFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs jobs on this machine, at most `workers` at a time.
#[derive(Debug, Clone)]
pub struct LocalPool {
    permits: Arc<Semaphore>,
    workers: usize,
}

impl LocalPool {
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            workers,
        }
    }

    /// Half the cores, at least one: the default `--pipeline-workers`
    /// (dcm2niix is mostly single-threaded and I/O bound, and the server
    /// keeps serving next to it).
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get() / 2)
            .unwrap_or(1)
            .max(1)
    }
}

impl Executor for LocalPool {
    fn name(&self) -> &'static str {
        "local"
    }

    fn capacity(&self) -> usize {
        self.workers
    }

    fn run(&self, job: JobRun, cancel: CancellationToken) -> RunFuture {
        let permits = self.permits.clone();
        Box::pin(async move {
            let _permit = tokio::select! {
                () = cancel.cancelled() => return RunOutcome::Killed,
                permit = permits.acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return RunOutcome::Failed { message: "the worker pool is closed".to_owned() },
                },
            };
            run_local(job, cancel).await
        })
    }
}

async fn run_local(job: JobRun, cancel: CancellationToken) -> RunOutcome {
    match &job.kind {
        RunKind::CommandLine(line) => {
            let mut cmd = tokio::process::Command::new("/bin/sh");
            cmd.arg("-c").arg(line);
            run_child(cmd, &job, cancel).await
        }
        RunKind::Builtin(Builtin::Dcm2niix) => {
            let (Some(input), Some(output)) = (job.inputs.first(), &job.output_dir) else {
                return RunOutcome::Failed {
                    message: "dcm2niix needs an input and an output folder".to_owned(),
                };
            };
            let mut cmd = tokio::process::Command::new("dcm2niix");
            // The same options as `xnatkit pipeline run --local`: plain
            // images gzipped by us afterwards (xnatkit_pipelines::nifti_gzip
            // says why), BIDS sidecar, overwrite, series number and
            // protocol names.
            cmd.args(["-z", "n", "-b", "y", "-w", "1", "-f", "%s_%p", "-o"])
                .arg(output)
                .arg(input);
            match run_child(cmd, &job, cancel.clone()).await {
                RunOutcome::Exited { code: 0, .. } if !made_nifti(output) => RunOutcome::Failed {
                    message: format!(
                        "dcm2niix made no NIfTI image: {}",
                        last_line(&job.stdout).unwrap_or_else(|| "no output".to_owned())
                    ),
                },
                RunOutcome::Exited { code: 0, message } => {
                    gzip_images(output.clone(), cancel, message).await
                }
                RunOutcome::Failed { message } if message.contains("No such file") => {
                    RunOutcome::Failed {
                        message: format!(
                            "dcm2niix is not installed on this worker ({message}); install the Debian package dcm2niix"
                        ),
                    }
                }
                other => other,
            }
        }
        RunKind::Builtin(builtin) => {
            let (inputs, Some(output)) = (job.inputs.clone(), job.output_dir.clone()) else {
                return RunOutcome::Failed {
                    message: format!("{} needs an output folder", builtin.name()),
                };
            };
            let builtin = *builtin;
            let stderr = job.stderr.clone();
            let stdout = job.stdout.clone();
            let params = job.params.clone();
            // The error is rendered inside the thread: only its text crosses.
            let task = tokio::task::spawn_blocking(move || {
                xnatkit_pipelines::builtin::run_with(builtin, &inputs, &output, &params)
                    .map_err(|e| e.to_string())
            });
            tokio::select! {
                () = cancel.cancelled() => RunOutcome::Killed,
                joined = task => match joined {
                    Ok(Ok(outputs)) => {
                        let text = format!("{}: {} file(s)\n", outputs.tool_version, outputs.files.len());
                        let _ = tokio::fs::write(&stdout, text).await;
                        RunOutcome::Exited { code: 0, message: String::new() }
                    }
                    Ok(Err(err)) => {
                        let _ = tokio::fs::write(&stderr, format!("{err}\n")).await;
                        RunOutcome::Failed { message: err.to_string() }
                    }
                    Err(err) => RunOutcome::Failed { message: format!("{} stopped: {err}", builtin.name()) },
                },
            }
        }
    }
}

/// dcm2niix's plain images, gzipped; a kill while compressing ends the
/// run as killed (its outputs are never filed then).
async fn gzip_images(output: PathBuf, cancel: CancellationToken, message: String) -> RunOutcome {
    let task = tokio::task::spawn_blocking(move || {
        xnatkit_pipelines::nifti_gzip::gzip_nifti_images(&output).map_err(|e| e.to_string())
    });
    tokio::select! {
        () = cancel.cancelled() => RunOutcome::Killed,
        joined = task => match joined {
            Ok(Ok(_)) => RunOutcome::Exited { code: 0, message },
            Ok(Err(err)) => RunOutcome::Failed { message: format!("gzipping dcm2niix's images: {err}") },
            Err(err) => RunOutcome::Failed { message: format!("gzipping dcm2niix's images stopped: {err}") },
        },
    }
}

pub(crate) fn made_nifti(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".nii.gz") || name.ends_with(".nii")
        })
    })
}

/// The last non-empty line of a log file.
pub fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

async fn run_child(
    mut cmd: tokio::process::Command,
    job: &JobRun,
    cancel: CancellationToken,
) -> RunOutcome {
    let open = |path: &Path| std::fs::File::create(path);
    let (stdout, stderr) = match (open(&job.stdout), open(&job.stderr)) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(err), _) | (_, Err(err)) => {
            return RunOutcome::Failed {
                message: format!("cannot create the job's log files: {err}"),
            };
        }
    };
    cmd.current_dir(&job.work_dir)
        .envs(&job.env)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            return RunOutcome::Failed {
                message: format!("cannot start the program: {err}"),
            };
        }
    };
    let pid = child.id();
    tokio::select! {
        () = cancel.cancelled() => {
            kill_group(pid);
            let _ = child.wait().await;
            RunOutcome::Killed
        }
        status = child.wait() => match status {
            Ok(status) => match status.code() {
                Some(code) => RunOutcome::Exited {
                    code,
                    message: if code == 0 {
                        String::new()
                    } else {
                        last_line(&job.stderr)
                            .or_else(|| last_line(&job.stdout))
                            .unwrap_or_default()
                    },
                },
                None => RunOutcome::Failed {
                    message: "the program was stopped by a signal".to_owned(),
                },
            },
            Err(err) => RunOutcome::Failed { message: format!("waiting for the program failed: {err}") },
        },
    }
}

/// Kills the process group `pid` leads (the command and its children).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &Path, line: &str) -> JobRun {
        JobRun {
            job_id: 1,
            kind: RunKind::CommandLine(line.to_owned()),
            work_dir: dir.to_owned(),
            mounts: BTreeMap::new(),
            inputs: Vec::new(),
            output_dir: None,
            params: BTreeMap::new(),
            env: BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]),
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
        }
    }

    #[tokio::test]
    async fn a_command_line_runs_with_logs_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let pool = LocalPool::new(1);
        let out = pool
            .run(
                job(dir.path(), "echo $GREETING; echo oops >&2; exit 3"),
                CancellationToken::new(),
            )
            .await;
        assert_eq!(
            out,
            RunOutcome::Exited {
                code: 3,
                message: "oops".to_owned()
            }
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stdout.log")).unwrap(),
            "hi\n"
        );
    }

    #[tokio::test]
    async fn a_missing_program_fails_with_the_shells_words() {
        let dir = tempfile::tempdir().unwrap();
        let out = LocalPool::new(1)
            .run(
                job(dir.path(), "no-such-program-xnatkit --x"),
                CancellationToken::new(),
            )
            .await;
        match out {
            RunOutcome::Exited { code: 127, message } => {
                assert!(message.contains("not found"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_builtins_parameters_reach_it() {
        // A value the T1 map cannot take is refused by the built-in itself,
        // before it reads anything: the parameters got there.
        let dir = tempfile::tempdir().unwrap();
        let mut run = job(dir.path(), "");
        run.kind = RunKind::Builtin(Builtin::T1SrMap);
        run.inputs = vec![dir.path().join("in")];
        run.output_dir = Some(dir.path().join("out"));
        run.params = BTreeMap::from([("time-base".to_owned(), "nominal".to_owned())]);
        match LocalPool::new(1).run(run, CancellationToken::new()).await {
            RunOutcome::Failed { message } => {
                assert!(message.contains("repetition or recovery"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_kill_stops_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let pool = LocalPool::new(1);
        let run = pool.run(
            job(dir.path(), "sleep 600 & sleep 600; wait"),
            cancel.clone(),
        );
        let handle = tokio::spawn(run);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        cancel.cancel();
        assert_eq!(handle.await.unwrap(), RunOutcome::Killed);
    }
}
