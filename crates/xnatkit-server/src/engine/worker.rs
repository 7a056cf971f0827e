//! The queue's consumer. One loop per server, under the server's task
//! tracker: it claims queued jobs while the executor has room (the claim
//! is a compare-and-set in the store, so servers sharing a database never
//! both take one), runs each as its own tracked task, passes kill requests
//! on to the jobs it runs (a kill may arrive through any server), and
//! fails the running jobs of servers that are gone.
//!
//! A job runs in a folder under this server's staging area (on the
//! archive's file system, so filing outputs is a rename); its logs live
//! under `DATA/pipeline-logs/ID/` and outlive it. When the server stops,
//! its running jobs are killed and end `Failed` with that reason, never to
//! be re-run; nothing of theirs is attached.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use xnatkit_engine::resolve::ResolvedJob;
use xnatkit_engine::{JobRun, JobStatus, OutputKind, RunKind, RunOutcome};

use super::RunningJob;
use crate::access::Caller;
use crate::archive::Actor;
use crate::archive::outputs::{self, OutputResource};
use crate::state::AppState;
use crate::store::{Backend, Entity, JobRow};

/// How often the loop looks for work it was not woken for (jobs queued
/// by other servers, kill requests, dead workers).
const TICK: Duration = Duration::from_millis(500);

/// Every this many ticks, the running jobs of gone servers are failed.
const ORPHAN_SWEEP_TICKS: u32 = 20;

/// Folder of job `id`'s logs.
pub fn log_dir(state: &AppState, id: i64) -> PathBuf {
    state.data_dir().join("pipeline-logs").join(id.to_string())
}

/// The log file `stream` (`stdout` or `stderr`) of job `id`.
pub fn log_file(state: &AppState, id: i64, stream: &str) -> PathBuf {
    log_dir(state, id).join(format!("{stream}.log"))
}

/// Registers the built-ins, fails jobs whose worker died, and starts the
/// worker loop. Called once by [`crate::run`] after recovery.
pub async fn start(state: &AppState) -> crate::archive::Result<()> {
    super::commands::ensure_builtins(state).await?;
    fail_orphans(state).await;
    state.spawn(work(state.clone()));
    Ok(())
}

async fn work(state: AppState) {
    let shutdown = state.shutdown().clone();
    let mut ticks: u32 = 0;
    loop {
        claim_while_room(&state).await;
        match state.store().kills_for_me().await {
            Ok(ids) => {
                for id in ids {
                    state.engine().kill_here(id);
                }
            }
            Err(err) => tracing::warn!("reading kill requests failed: {err}"),
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(ORPHAN_SWEEP_TICKS) {
            fail_orphans(&state).await;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = state.engine().wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
    state.engine().stop_all();
}

async fn claim_while_room(state: &AppState) {
    let engine = state.engine();
    while engine.running_count() < engine.executor().capacity() {
        if state.shutdown().is_cancelled() {
            return;
        }
        match state.store().claim_job(engine.executor().name()).await {
            Ok(Some(job)) => {
                let running = engine.track(job.id);
                state.spawn(run_job(state.clone(), job, running));
            }
            Ok(None) => return,
            Err(err) => {
                tracing::warn!("claiming a queued job failed: {err}");
                return;
            }
        }
    }
}

/// How a job ended, for its row.
struct Ending {
    status: JobStatus,
    exit_code: String,
    message: String,
}

impl Ending {
    fn failed(message: impl Into<String>) -> Self {
        Self {
            status: JobStatus::Failed,
            exit_code: String::new(),
            message: message.into(),
        }
    }
}

async fn run_job(state: AppState, job: JobRow, running: RunningJob) {
    let work_dir = state.staging_root().join(format!("job-{}", job.id));
    let ending = execute(&state, &job, &running, &work_dir).await;
    let entity = if ending.status == JobStatus::Killed {
        Entity::User
    } else {
        Entity::System
    };
    match state
        .store()
        .move_job(
            job.id,
            JobStatus::Running.as_str(),
            ending.status.as_str(),
            entity,
            state.store().instance(),
            &ending.exit_code,
            &ending.message,
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!("job {} had already ended elsewhere", job.id),
        Err(err) => tracing::error!(
            "job {} ended {} but its row could not be updated: {err}",
            job.id,
            ending.status
        ),
    }
    state.engine().untrack(job.id);
    if let Err(err) = tokio::fs::remove_dir_all(&work_dir).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("could not remove {}: {err}", work_dir.display());
    }
    state.engine().wake();
}

fn env_name(mount: &str) -> String {
    mount
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

async fn execute(
    state: &AppState,
    job: &JobRow,
    running: &RunningJob,
    work_dir: &std::path::Path,
) -> Ending {
    let resolved: ResolvedJob = match serde_json::from_str(&job.resolved) {
        Ok(r) => r,
        Err(err) => {
            return Ending::failed(format!("the job's stored launch does not parse: {err}"));
        }
    };
    let logs = log_dir(state, job.id);
    let out_root = work_dir.join("out");
    let mut mounts = BTreeMap::new();
    for mount in &resolved.mounts {
        let folder = match &mount.source {
            Some(source) => source.clone(),
            None => out_root.join(&mount.name),
        };
        mounts.insert(mount.name.clone(), folder);
    }
    let mut dirs: Vec<PathBuf> = vec![logs.clone(), work_dir.to_path_buf()];
    dirs.extend(
        resolved
            .mounts
            .iter()
            .filter(|m| m.source.is_none())
            .filter_map(|m| mounts.get(&m.name).cloned()),
    );
    for dir in &dirs {
        if let Err(err) = tokio::fs::create_dir_all(dir).await {
            return Ending::failed(format!("cannot create {}: {err}", dir.display()));
        }
    }
    let inputs: Vec<PathBuf> = resolved
        .mounts
        .iter()
        .filter(|m| !m.writable)
        .filter_map(|m| mounts.get(&m.name).cloned())
        .collect();
    let output_dir = resolved
        .mounts
        .iter()
        .find(|m| m.writable)
        .and_then(|m| mounts.get(&m.name).cloned());
    let kind = match &resolved.builtin {
        Some(name) => match xnatkit_engine::builtin::implementation(name) {
            Some(builtin) => RunKind::Builtin(builtin),
            None => return Ending::failed(format!("this server has no built-in command {name}")),
        },
        None => RunKind::CommandLine(resolved.command_line_on(&mounts)),
    };
    let mut env = resolved.env.clone();
    env.insert("XNAT_WORKFLOW_ID".to_owned(), job.workflow_id.to_string());
    env.insert("XNATKIT_JOB_ID".to_owned(), job.id.to_string());
    for (name, folder) in &mounts {
        env.insert(
            format!("XNATKIT_MOUNT_{}", env_name(name)),
            folder.to_string_lossy().into_owned(),
        );
    }
    // A built-in reads its command inputs as parameters (a command line
    // has them substituted into the line already).
    let params = if matches!(kind, RunKind::Builtin(_)) {
        resolved
            .inputs
            .iter()
            .filter(|i| i.kind == "command")
            .map(|i| (i.name.clone(), i.value.clone()))
            .collect()
    } else {
        BTreeMap::new()
    };
    let run = JobRun {
        job_id: job.id,
        kind,
        work_dir: work_dir.to_path_buf(),
        mounts: mounts.clone(),
        inputs,
        output_dir,
        params,
        env,
        stdout: logs.join("stdout.log"),
        stderr: logs.join("stderr.log"),
    };
    let outcome = state
        .engine()
        .executor()
        .run(run, running.cancel.clone())
        .await;
    let killed = || running.killed.load(Ordering::SeqCst);
    match outcome {
        RunOutcome::Killed if killed() => Ending {
            status: JobStatus::Killed,
            exit_code: String::new(),
            message: "killed on request; nothing was attached".to_owned(),
        },
        RunOutcome::Killed => Ending::failed(
            "the server stopped while this job ran; nothing was attached — launch it again",
        ),
        RunOutcome::Failed { message } => Ending::failed(message),
        RunOutcome::Exited { code, message } if code != 0 => Ending {
            status: JobStatus::Failed,
            exit_code: code.to_string(),
            message: if message.is_empty() {
                format!("the command exited with code {code}")
            } else {
                format!("the command exited with code {code}: {message}")
            },
        },
        RunOutcome::Exited { .. } if killed() => Ending {
            status: JobStatus::Killed,
            exit_code: "0".to_owned(),
            message: "killed on request before its outputs were filed; nothing was attached"
                .to_owned(),
        },
        RunOutcome::Exited { .. } => file_outputs(state, job, &resolved, &mounts).await,
    }
}

async fn file_outputs(
    state: &AppState,
    job: &JobRow,
    resolved: &ResolvedJob,
    mounts: &BTreeMap<String, PathBuf>,
) -> Ending {
    let user = match state.store().user(&job.username).await {
        Ok(user) => user,
        Err(err) => return Ending::failed(format!("reading the launching user failed: {err}")),
    };
    let caller = Caller {
        user,
        session_id: None,
    };
    let actor = Actor {
        state,
        caller: &caller,
    };
    let mut filed = Vec::new();
    for output in &resolved.outputs {
        let Some(folder) = mounts.get(&output.mount) else {
            return Ending::failed(format!(
                "output {} has no mount {}",
                output.name, output.mount
            ));
        };
        let folder = match &output.path {
            Some(p) if !p.is_empty() => folder.join(p),
            _ => folder.clone(),
        };
        let empty =
            outputs::selected_files(&folder, output.glob.as_deref()).map_or(true, |f| f.is_empty());
        if empty {
            if output.required {
                let which = match output.glob.as_deref() {
                    Some(g) if !g.trim().is_empty() => format!("no files matching {g:?}"),
                    _ => "no files".to_owned(),
                };
                return Ending::failed(format!(
                    "output {}: the command wrote {which} to {}; nothing was attached",
                    output.name, output.mount
                ));
            }
            continue;
        }
        let request = OutputResource {
            parent_uri: &output.parent_uri,
            label: &output.label,
            format: &output.format,
            content: &output.content,
            tags: &output.tags,
            staged: &folder,
            glob: output.glob.as_deref(),
            overwrite: resolved.overwrite,
        };
        let filing = match output.kind {
            OutputKind::Resource => outputs::attach(&actor, &request)
                .await
                .map(|count| format!("{} ({count} files)", output.label)),
            OutputKind::Assessor => outputs::attach_assessor(&actor, &request)
                .await
                .map(|(label, count)| format!("assessor {label} ({count} files)")),
        };
        match filing {
            Ok(what) => filed.push(what),
            Err(err) => {
                let what = match output.kind {
                    OutputKind::Resource => "resource",
                    OutputKind::Assessor => "an assessor with resource",
                };
                return Ending::failed(format!(
                    "filing output {} as {what} {} of {} failed: {err}",
                    output.name, output.label, output.parent_uri
                ));
            }
        }
    }
    Ending {
        status: JobStatus::Complete,
        exit_code: "0".to_owned(),
        message: if filed.is_empty() {
            String::new()
        } else {
            format!("filed {}", filed.join(", "))
        },
    }
}

/// Fails the running jobs of servers that are gone: on SQLite every other
/// instance ID is an earlier run of this one (one server per data
/// folder); on PostgreSQL a server is gone when its instance lock can be
/// taken.
pub async fn fail_orphans(state: &AppState) {
    let store = state.store();
    let running = match store.running_jobs().await {
        Ok(r) => r,
        Err(err) => {
            tracing::warn!("listing running jobs failed: {err}");
            return;
        }
    };
    let mut verdicts: BTreeMap<String, bool> = BTreeMap::new();
    for (id, owner) in running {
        if owner == store.instance() {
            continue;
        }
        let gone = match verdicts.get(&owner) {
            Some(v) => *v,
            None => {
                let v = match store.backend() {
                    Backend::Sqlite => true,
                    Backend::Postgres => match store.locks().instance_gone(&owner).await {
                        Ok(Some(hold)) => {
                            hold.release().await;
                            true
                        }
                        Ok(None) => false,
                        Err(err) => {
                            tracing::warn!("checking server {owner} failed: {err}");
                            false
                        }
                    },
                };
                verdicts.insert(owner.clone(), v);
                v
            }
        };
        if gone {
            let message = "the worker running this job died (its server stopped or crashed); nothing was attached — launch it again";
            if let Err(err) = store
                .move_job(
                    id,
                    "Running",
                    "Failed",
                    Entity::System,
                    store.instance(),
                    "",
                    message,
                )
                .await
            {
                tracing::warn!("failing orphaned job {id} failed: {err}");
            }
            // A job on a cluster outlives its server: stop it, so nothing
            // runs behind a run that says failed.
            state.engine().executor().abandon(id).await;
        }
    }
}
