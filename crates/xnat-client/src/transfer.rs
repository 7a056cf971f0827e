//! Runs many file downloads in parallel with a bounded pool, across files
//! and subjects, and stops starting new ones after a fatal error (disk full,
//! login lost) or when cancelled.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde::Serialize;

use crate::archive::RemoteFile;
use crate::client::XnatClient;
use crate::download::{ByteSink, FileOutcome, Manifest, download_file};
use crate::error::ClientError;

/// One file to fetch.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// Which group (subject) the file belongs to, for reports.
    pub group: usize,
    pub remote: RemoteFile,
    pub dest: PathBuf,
}

/// What happened to one job.
#[derive(Debug)]
pub struct JobResult {
    pub job: FileJob,
    pub result: Result<FileOutcome, ClientError>,
}

/// Progress callbacks of a transfer. All methods may be called from several
/// tasks at once.
pub trait TransferObserver: ByteSink {
    fn file_started(&self, _job: &FileJob) {}
    fn file_finished(&self, _job: &FileJob, _result: &Result<FileOutcome, ClientError>) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl ByteSink for Quiet {
    fn add(&self, _bytes: u64) {}
}

impl TransferObserver for Quiet {}

/// Summary counts of a finished transfer.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct TransferTotals {
    pub downloaded: u64,
    pub already_verified: u64,
    pub repaired: u64,
    pub failed: u64,
    pub bytes: u64,
}

impl TransferTotals {
    pub fn from_results(results: &[JobResult]) -> Self {
        let mut t = Self::default();
        for r in results {
            match &r.result {
                Ok(outcome) => {
                    t.bytes += r.job.remote.size.unwrap_or(0);
                    match outcome {
                        FileOutcome::Downloaded => t.downloaded += 1,
                        FileOutcome::AlreadyVerified => t.already_verified += 1,
                        FileOutcome::Repaired => t.repaired += 1,
                    }
                }
                Err(_) => t.failed += 1,
            }
        }
        t
    }
}

/// Errors after which starting more downloads is pointless.
fn is_fatal(err: &ClientError) -> bool {
    matches!(
        err,
        ClientError::DiskFull { .. }
            | ClientError::Unreachable { .. }
            | ClientError::LoginFailed { .. }
            | ClientError::Cancelled
            | ClientError::Io { .. }
    )
}

/// Downloads `jobs` with at most `parallel` transfers in flight. Results
/// come back in job order. `cancel` stops new transfers when set.
pub async fn run_transfers(
    client: &XnatClient,
    jobs: Vec<FileJob>,
    manifest: Option<&Manifest>,
    parallel: usize,
    observer: &dyn TransferObserver,
    cancel: Arc<AtomicBool>,
) -> Vec<JobResult> {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let cancel = &cancel;
    let mut results: Vec<(usize, JobResult)> = futures::stream::iter(jobs.into_iter().enumerate())
        .map(|(index, job)| async move {
            if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                return (
                    index,
                    JobResult {
                        job,
                        result: Err(ClientError::Cancelled),
                    },
                );
            }
            observer.file_started(&job);
            let result = download_file(client, &job.remote, &job.dest, manifest, observer).await;
            if let Err(err) = &result
                && is_fatal(err)
            {
                stop.store(true, Ordering::Relaxed);
            }
            observer.file_finished(&job, &result);
            (index, JobResult { job, result })
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let mut results: Vec<JobResult> = results.into_iter().map(|(_, r)| r).collect();
    if let Some(m) = manifest
        && let Err(err) = m.commit()
    {
        // Without a durable sync nothing may be reported as done.
        let message = err.to_string();
        for r in results.iter_mut().filter(|r| r.result.is_ok()) {
            r.result = Err(ClientError::Invalid(format!(
                "not synced to disk: {message}"
            )));
        }
    }
    results
}
