//! Runs many file downloads in parallel with a bounded pool, across files
//! and subjects, and stops starting new ones after a fatal error (disk full,
//! login lost) or when cancelled. A resource of which nothing is on disk
//! yet is fetched as one streamed zip ([`crate::zip_fetch`]): one request
//! instead of one per file, the same per-file verification.

use std::path::PathBuf;

use futures::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::archive::RemoteFile;
use crate::client::XnatClient;
use crate::download::{ByteSink, FileOutcome, Manifest, download_file};
use crate::error::ClientError;
use crate::zip_fetch::{ZipOutcome, fetch_resource_zip, resource_of};

/// Resources with fewer files than this are fetched file by file: a zip
/// saves nothing on one or two requests.
const ZIP_MIN_FILES: usize = 3;
/// Single downloads in flight for the files a zip could not deliver.
const FALLBACK_PARALLEL: usize = 4;

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

/// A unit of work of the pool: one file, or every file of a resource.
enum Unit {
    One(usize),
    Zip(String, Vec<usize>),
}

/// Groups the jobs: each resource whose files all have a size and digest
/// and of which no file (nor `.part`) is on disk yet becomes one zip unit;
/// everything else — a rerun's leftovers included — goes file by file, so
/// a resume fetches only what is missing. Every caller lists whole
/// resources, so a zip holds exactly the jobs of its resource.
fn plan_units(jobs: &[FileJob]) -> Vec<Unit> {
    let mut by_resource: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut units = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        match resource_of(&job.remote.uri) {
            Some(resource) => {
                let slot = *index.entry(resource).or_insert_with(|| {
                    by_resource.push((resource.to_owned(), Vec::new()));
                    by_resource.len() - 1
                });
                by_resource[slot].1.push(i);
            }
            None => units.push(Unit::One(i)),
        }
    }
    for (resource, members) in by_resource {
        let fresh = members.len() >= ZIP_MIN_FILES
            && members.iter().all(|&i| {
                let job = &jobs[i];
                job.remote.size.is_some()
                    && job.remote.digest.is_some()
                    && std::fs::symlink_metadata(&job.dest).is_err()
                    && std::fs::symlink_metadata(crate::download::part_path(&job.dest)).is_err()
            });
        if fresh {
            units.push(Unit::Zip(resource, members));
        } else {
            units.extend(members.into_iter().map(Unit::One));
        }
    }
    units
}

/// Downloads `jobs` with at most `parallel` transfers in flight (a zip of
/// a resource counts as one). Results come back in job order. `cancel`
/// stops new transfers once cancelled; those in flight finish.
pub async fn run_transfers(
    client: &XnatClient,
    jobs: Vec<FileJob>,
    manifest: Option<&Manifest>,
    parallel: usize,
    observer: &dyn TransferObserver,
    cancel: CancellationToken,
) -> Vec<JobResult> {
    // Cancelled by the caller, or here after a fatal error (disk full,
    // login lost): either way nothing new starts.
    let stop = cancel.child_token();
    let stop = &stop;
    let cancel = &cancel;
    let units = plan_units(&jobs);
    let jobs_ref = &jobs;
    let one = |index: usize| async move {
        let job = &jobs_ref[index];
        if stop.is_cancelled() {
            return (index, Err(ClientError::Cancelled));
        }
        observer.file_started(job);
        let result = download_file(client, &job.remote, &job.dest, manifest, observer).await;
        if let Err(err) = &result
            && is_fatal(err)
        {
            stop.cancel();
        }
        observer.file_finished(job, &result);
        (index, result)
    };
    let mut results: Vec<(usize, Result<FileOutcome, ClientError>)> = futures::stream::iter(units)
        .map(|unit| async move {
            match unit {
                Unit::One(index) => vec![one(index).await],
                Unit::Zip(resource, members) => {
                    if stop.is_cancelled() {
                        return members
                            .into_iter()
                            .map(|i| (i, Err(ClientError::Cancelled)))
                            .collect();
                    }
                    let group: Vec<&FileJob> = members.iter().map(|&i| &jobs_ref[i]).collect();
                    for job in &group {
                        observer.file_started(job);
                    }
                    let finished = |k: usize, result: &Result<FileOutcome, ClientError>| {
                        if let Err(err) = result
                            && is_fatal(err)
                        {
                            stop.cancel();
                        }
                        observer.file_finished(group[k], result);
                    };
                    let outcomes = fetch_resource_zip(
                        client, &resource, &group, manifest, observer, cancel, &finished,
                    )
                    .await;
                    let mut done = Vec::with_capacity(members.len());
                    let mut alone = Vec::new();
                    for (&index, outcome) in members.iter().zip(outcomes) {
                        match outcome {
                            ZipOutcome::Done(result) => done.push((index, result)),
                            ZipOutcome::FetchAlone => alone.push(index),
                        }
                    }
                    let mut fetched: Vec<_> = futures::stream::iter(alone)
                        .map(one)
                        .buffer_unordered(FALLBACK_PARALLEL)
                        .collect()
                        .await;
                    done.append(&mut fetched);
                    done
                }
            }
        })
        .buffer_unordered(parallel.max(1))
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let mut results: Vec<JobResult> = jobs
        .into_iter()
        .zip(results)
        .map(|(job, (_, result))| JobResult { job, result })
        .collect();
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
