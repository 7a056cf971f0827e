//! The pipeline engine inside the server (XNAT's Container Service API on
//! top of `xnatkit-engine`), without HTTP:
//!
//! - [`commands`]: commands and wrappers (the built-ins registered at
//!   start), enabling per site and project, what is available where;
//! - [`launch`]: a launch or bulk launch checked (edit rights on the
//!   object, the wrapper enabled, the inputs resolved) and queued as a job
//!   with its `wrk:workflowData` row — a bad launch is refused with the
//!   real reason, never queued as a fake success;
//! - [`worker`]: the queue's consumer, a background task under the
//!   server's task tracker: claims jobs (compare-and-set, so servers
//!   sharing one PostgreSQL never run a job twice), runs them on the
//!   [`Executor`], files outputs through [`crate::archive::outputs`], and
//!   fails the jobs of workers that died;
//! - [`containers`]: runs in the Container Service's shape, their logs,
//!   kill;
//! - [`container_history`]: the history table's paged list, a log polled
//!   while it grows (`logSince`), `finalize` and the version check;
//! - [`command_automation`]: the legacy `/xapi/commandeventmapping`,
//!   kept as marked subscriptions;
//! - [`events`]: Event Service subscriptions, and the hook that launches
//!   them whenever a session is archived ([`events::session_archived`]);
//! - [`workflows`]: the `wrk:workflowData` rows of the runs;
//! - [`wrapper_config`]: the site's and projects' wrapper configurations
//!   (`…/wrappers/{id}/config`) and the wrapper as configured, which
//!   launches resolve.
//!
//! A restart never re-runs a job: a job that was running when its server
//! stopped (gracefully or not) ends `Failed` with that reason; queued jobs
//! wait in the database and run after the restart.

pub mod command_automation;
pub mod commands;
pub mod container_history;
pub mod containers;
pub mod events;
pub mod launch;
pub mod project_pipelines;
pub mod worker;
pub mod workflows;
pub mod wrapper_config;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;
pub use xnatkit_engine::Executor;
use xnatkit_engine::LocalPool;

/// Which executor runs this server's jobs (`serve --executor`).
#[derive(Debug, Clone)]
pub enum ExecutorChoice {
    /// The local pool with this many concurrent jobs.
    Local { workers: usize },
    /// Another executor (Slurm), plugged in by the binary.
    Custom(Arc<dyn Executor>),
}

/// The engine's settings in [`crate::ServerConfig`].
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub executor: ExecutorChoice,
    /// A session built file by file over REST counts as archived once no
    /// file has arrived for this long (`serve --upload-settle-secs`); see
    /// [`events::settle_rest_uploads`].
    pub upload_settle: std::time::Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            executor: ExecutorChoice::Local {
                workers: LocalPool::default_workers(),
            },
            upload_settle: std::time::Duration::from_secs(60),
        }
    }
}

/// The running engine: its executor and the jobs this server runs now.
#[derive(Debug)]
pub struct Engine {
    executor: Arc<dyn Executor>,
    wake: tokio::sync::Notify,
    running: std::sync::Mutex<HashMap<i64, RunningJob>>,
}

#[derive(Debug, Clone)]
struct RunningJob {
    cancel: CancellationToken,
    /// Set when a user's kill (not the server's stop) cancelled it.
    killed: Arc<AtomicBool>,
}

impl Engine {
    pub fn new(config: &PipelineConfig) -> Self {
        let executor: Arc<dyn Executor> = match &config.executor {
            ExecutorChoice::Local { workers } => Arc::new(LocalPool::new(*workers)),
            ExecutorChoice::Custom(executor) => executor.clone(),
        };
        Self {
            executor,
            wake: tokio::sync::Notify::new(),
            running: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// Tells the worker that a job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn running_count(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }

    fn track(&self, id: i64) -> RunningJob {
        let job = RunningJob {
            cancel: CancellationToken::new(),
            killed: Arc::new(AtomicBool::new(false)),
        };
        if let Ok(mut running) = self.running.lock() {
            running.insert(id, job.clone());
        }
        job
    }

    fn untrack(&self, id: i64) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&id);
        }
    }

    /// Kills job `id` if this server runs it; true when it did.
    fn kill_here(&self, id: i64) -> bool {
        let job = self.running.lock().ok().and_then(|r| r.get(&id).cloned());
        match job {
            Some(job) => {
                job.killed.store(true, Ordering::SeqCst);
                job.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every job this server runs (the server is stopping).
    fn stop_all(&self) {
        if let Ok(running) = self.running.lock() {
            for job in running.values() {
                job.cancel.cancel();
            }
        }
    }
}
