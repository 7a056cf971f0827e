//! Pass two: send the planned files, verify them, and write each row's status
//! back into the workbook.
//!
//! Per dataset (a scan or a resource) the server is asked for its file list
//! once before and once after sending; files go up several at a time. A file
//! already on the server with the same MD5 counts as uploaded (so a rerun after
//! a crash does not send it again); one with different content is replaced only
//! with `overwrite`. A row says `success` only after its MD5 matched the
//! server's `digest`.
//!
//! The workbook is saved every few seconds (between datasets) and at the end,
//! so a killed run loses at most the statuses of those seconds, and a rerun
//! verifies those files by MD5 instead of sending them again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use md5::{Digest, Md5};
use tokio_util::sync::CancellationToken;
use xnatkit_client::archive::seg;
use xnatkit_client::{ClientError, XnatClient};

use crate::config::Config;
use crate::error::Error;
use crate::files_sheet::{self, FileRow, INTERRUPTED, SUCCESS};
use crate::plan::{self, DICOM_RESOURCE, FilePlan, Plan};
use crate::workbook::Workbook;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The folder that was scanned; relative `File` cells are looked up here
    /// when they do not exist as written.
    pub dir: Option<PathBuf>,
    /// Project ID; `None` → the Configuration worksheet's `Project`.
    pub project: Option<String>,
    /// Files in flight at once.
    pub jobs: usize,
    /// Replace files whose content on the server differs.
    pub overwrite: bool,
    /// Create the project when it does not exist.
    pub create_project: bool,
    /// Ask the server to pull header data / fix scan types afterwards, as
    /// xnatuploader does.
    pub trigger_pipelines: bool,
}

/// What the caller shows while a run progresses.
pub trait RunObserver: Send + Sync {
    fn datasets(&self, _count: usize) {}
    fn dataset_started(&self, _name: &str, _files: usize) {}
    fn file_done(&self) {}
    fn dataset_done(&self) {}
    /// A line for the log / terminal (per-row failures, warnings).
    fn note(&self, _line: &str) {}
}

/// Does nothing; for tests and quiet runs.
pub struct Silent;
impl RunObserver for Silent {}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    pub project: String,
    /// Rows verified in this run (sent, or found already there).
    pub uploaded: usize,
    pub already_done: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub not_selected: usize,
    pub cancelled: bool,
}

/// Errors that stop a run before or while it sends anything.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Workbook(#[from] Error),
    #[error(
        "no project given: pass --project ID or fill in Project in the XNAT section of the Configuration worksheet"
    )]
    NoProject,
    #[error(
        "project {project} does not exist on {server} (or you cannot see it); create it, or rerun with --create-project"
    )]
    ProjectMissing { project: String, server: String },
    #[error(
        "cannot create {what} in project {project}: {source}; check that you may upload to the project"
    )]
    CannotCreate {
        project: String,
        what: String,
        #[source]
        source: Box<ClientError>,
    },
    #[error(transparent)]
    Client(Box<ClientError>),
}

// Boxed: `ClientError` is large and would make every `Result` carry it.
impl From<ClientError> for RunError {
    fn from(error: ClientError) -> Self {
        Self::Client(Box::new(error))
    }
}

/// The loaded workbook and the plan for it, shared by the dry run and the run.
pub struct Prepared {
    pub workbook: Workbook,
    pub config: Config,
    pub rows: Vec<FileRow>,
    pub plan: Plan,
}

/// Reads the workbook and plans the run; fails before any upload when the
/// workbook cannot be saved afterwards.
pub fn prepare(spreadsheet: &Path, check_writable: bool) -> Result<Prepared, Error> {
    let workbook = Workbook::open(spreadsheet)?;
    let config = Config::read(&workbook)?;
    if check_writable {
        workbook.check_writable()?;
    }
    let (_, rows) = files_sheet::read_rows(&workbook, &config)?;
    let plan = plan::plan(&config, &rows);
    Ok(Prepared {
        workbook,
        config,
        rows,
        plan,
    })
}

/// The project a run goes to: command line first, then the worksheet.
pub fn resolve_project(prepared: &Prepared, option: Option<&str>) -> Result<String, RunError> {
    option
        .map(str::to_owned)
        .or_else(|| prepared.config.xnat_value("Project").map(str::to_owned))
        .filter(|p| !p.trim().is_empty())
        .ok_or(RunError::NoProject)
}

/// Lines describing what a run would create and send (`--test`).
pub fn describe(plan: &Plan, rows: &[FileRow], project: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (row, message) in &plan.row_errors {
        lines.push(format!("row {}: {message}", rows[*row].sheet_row));
    }
    for session in &plan.sessions {
        lines.push(format!(
            "project {project} / subject {} / session {} ({})",
            session.subject, session.label, session.xsi_type
        ));
        for (name, value) in &session.fields {
            lines.push(format!("    field {name} = {value}"));
        }
        for scan in &session.scans {
            lines.push(format!(
                "    scan {} type {} ({}): {} file(s) into resource {DICOM_RESOURCE}",
                scan.id,
                scan.scan_type,
                scan.xsi_type,
                scan.files.len()
            ));
            for file in &scan.files {
                lines.push(format!("        {} <- {}", file.name, file.local.display()));
            }
        }
        for resource in &session.resources {
            lines.push(format!(
                "    resource {}: {} file(s)",
                resource.label,
                resource.files.len()
            ));
        }
    }
    for subject in &plan.subjects {
        for (name, value) in &subject.fields {
            lines.push(format!("subject {} field {name} = {value}", subject.label));
        }
    }
    for resource in &plan.project_resources {
        lines.push(format!(
            "project {project} resource {}: {} file(s)",
            resource.label,
            resource.files.len()
        ));
    }
    lines
}

/// One dataset to send: where it goes and its files.
struct Dataset<'a> {
    name: String,
    resource_path: String,
    files: &'a [FilePlan],
}

/// Runs the upload. Rows get their statuses in the workbook, which is saved
/// after each dataset and at the end (also when cancelled).
pub async fn run(
    client: &XnatClient,
    mut prepared: Prepared,
    options: &RunOptions,
    observer: &dyn RunObserver,
    cancel: CancellationToken,
) -> Result<RunReport, RunError> {
    let project = resolve_project(&prepared, options.project.as_deref())?;
    let mut report = RunReport {
        project: project.clone(),
        ..RunReport::default()
    };
    report.not_selected = prepared.rows.iter().filter(|r| !r.upload).count();
    report.already_done = prepared
        .rows
        .iter()
        .filter(|r| r.upload && r.is_success())
        .count();
    let plan = std::mem::take(&mut prepared.plan);
    let mut statuses: HashMap<usize, String> = HashMap::new();
    for (row, message) in &plan.row_errors {
        statuses.insert(*row, message.clone());
        observer.note(&format!("row {}: {message}", prepared.rows[*row].sheet_row));
    }

    ensure_project(client, &project, options.create_project).await?;

    let project_path = format!("/data/projects/{}", seg(&project));
    let mut datasets_total = plan.project_resources.len();
    for session in &plan.sessions {
        datasets_total += session.scans.len() + session.resources.len();
    }
    observer.datasets(datasets_total);

    let mut sender = Sender {
        client,
        options,
        observer,
        cancel: &cancel,
        prepared: &mut prepared,
        statuses: &mut statuses,
        // The first dataset is saved at once, so a run shows progress early.
        last_save: std::time::Instant::now()
            .checked_sub(SAVE_INTERVAL)
            .unwrap_or_else(std::time::Instant::now),
    };
    let outcome = async {
        for subject in &plan.subjects {
            let path = format!("{project_path}/subjects/{}", seg(&subject.label));
            let mut query = vec![("xsiType".to_owned(), "xnat:subjectData".to_owned())];
            query.extend(field_query("xnat:subjectData", &subject.fields));
            let what = format!("subject {}", subject.label);
            put(client, &path, &query, &what)
                .await
                .map_err(|source| RunError::CannotCreate {
                    project: project.clone(),
                    what,
                    source: Box::new(source),
                })?;
        }
        for session in &plan.sessions {
            if cancel.is_cancelled() {
                break;
            }
            let session_path = format!(
                "{project_path}/subjects/{}/experiments/{}",
                seg(&session.subject),
                seg(&session.label)
            );
            let mut query = vec![("xsiType".to_owned(), session.xsi_type.clone())];
            query.extend(field_query(&session.xsi_type, &session.fields));
            if let Err(source) = put(
                client,
                &session_path,
                &query,
                &format!("session {}", session.label),
            )
            .await
            {
                // As xnatuploader: a refused session means no permission or no
                // project, which will not get better for the next session.
                if matches!(
                    source,
                    ClientError::Forbidden { .. } | ClientError::NotFound { .. }
                ) {
                    return Err(RunError::CannotCreate {
                        project: project.clone(),
                        what: format!("session {}", session.label),
                        source: Box::new(source),
                    });
                }
                let message = format!("cannot create session {}: {source}", session.label);
                observer.note(&message);
                for file in session
                    .scans
                    .iter()
                    .flat_map(|s| &s.files)
                    .chain(session.resources.iter().flat_map(|r| &r.files))
                {
                    sender.statuses.insert(file.row, message.clone());
                }
                continue;
            }
            for scan in &session.scans {
                if cancel.is_cancelled() {
                    break;
                }
                let scan_path = format!("{session_path}/scans/{}", seg(&scan.id));
                let query = vec![
                    ("xsiType".to_owned(), scan.xsi_type.clone()),
                    (format!("{}/type", scan.xsi_type), scan.scan_type.clone()),
                ];
                let dataset = Dataset {
                    name: format!("{}/{}", session.label, scan.scan_type),
                    resource_path: format!("{scan_path}/resources/{DICOM_RESOURCE}"),
                    files: &scan.files,
                };
                match put(client, &scan_path, &query, &format!("scan {}", scan.id)).await {
                    Ok(()) => sender.send(&dataset).await?,
                    Err(e) => {
                        sender.fail(&dataset, &format!("cannot create scan {}: {e}", scan.id))?;
                    }
                }
            }
            for resource in &session.resources {
                if cancel.is_cancelled() {
                    break;
                }
                let dataset = Dataset {
                    name: format!("{}/{}", session.label, resource.label),
                    resource_path: format!("{session_path}/resources/{}", seg(&resource.label)),
                    files: &resource.files,
                };
                sender.send(&dataset).await?;
            }
        }
        for resource in &plan.project_resources {
            if cancel.is_cancelled() {
                break;
            }
            let dataset = Dataset {
                name: format!("{project}/{}", resource.label),
                resource_path: format!("{project_path}/resources/{}", seg(&resource.label)),
                files: &resource.files,
            };
            sender.send(&dataset).await?;
        }
        Ok::<(), RunError>(())
    }
    .await;

    // Every planned row without a status was not reached.
    let planned = plan
        .sessions
        .iter()
        .flat_map(|s| {
            s.scans
                .iter()
                .flat_map(|c| &c.files)
                .chain(s.resources.iter().flat_map(|r| &r.files))
        })
        .chain(plan.project_resources.iter().flat_map(|r| &r.files));
    let leftover = match &outcome {
        Ok(()) if cancel.is_cancelled() => INTERRUPTED.to_owned(),
        Ok(()) => INTERRUPTED.to_owned(),
        Err(e) => format!("not uploaded: {e}"),
    };
    for file in planned {
        statuses.entry(file.row).or_insert_with(|| leftover.clone());
    }
    save_statuses(&mut prepared, &statuses)?;
    outcome?;

    if options.trigger_pipelines && !cancel.is_cancelled() {
        for session in &plan.sessions {
            let path = format!(
                "{project_path}/subjects/{}/experiments/{}",
                seg(&session.subject),
                seg(&session.label)
            );
            for action in ["pullDataFromHeaders", "fixScanTypes", "triggerPipelines"] {
                // Best effort, as in xnatuploader: the data is already safe.
                if let Err(e) = put(
                    client,
                    &path,
                    &[(action.to_owned(), "true".to_owned())],
                    action,
                )
                .await
                {
                    tracing::debug!("{action} on {}: {e}", session.label);
                }
            }
        }
    }

    for status in statuses.values() {
        if status == SUCCESS {
            report.uploaded += 1;
        } else if status == INTERRUPTED {
            report.interrupted += 1;
        } else {
            report.failed += 1;
        }
    }
    report.cancelled = cancel.is_cancelled();
    Ok(report)
}

fn field_query(xsi_type: &str, fields: &[(String, String)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(name, value)| {
            (
                format!("{xsi_type}/fields/field[name={name}]/field"),
                value.clone(),
            )
        })
        .collect()
}

async fn put(
    client: &XnatClient,
    path: &str,
    query: &[(String, String)],
    what: &str,
) -> Result<(), ClientError> {
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    client.put_object(path, &pairs, what).await.map(drop)
}

async fn ensure_project(client: &XnatClient, project: &str, create: bool) -> Result<(), RunError> {
    match client.project(project).await {
        Ok(_) => Ok(()),
        Err(ClientError::NotFound { server, .. }) => {
            if !create {
                return Err(RunError::ProjectMissing {
                    project: project.to_owned(),
                    server,
                });
            }
            let path = format!("/data/projects/{}", seg(project));
            client
                .put_object(
                    &path,
                    &[("xsiType", "xnat:projectData")],
                    &format!("project {project}"),
                )
                .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn mark_all(
    dataset: &Dataset,
    message: &str,
    statuses: &mut HashMap<usize, String>,
    observer: &dyn RunObserver,
) {
    observer.note(&format!("{}: {message}", dataset.name));
    for file in dataset.files {
        statuses.insert(file.row, message.to_owned());
    }
}

/// How often statuses are saved during a run. Saving rewrites the whole
/// workbook, which costs more than a dataset of small files; a killed run
/// loses at most this much, and the rerun verifies those files by MD5
/// instead of sending them again.
const SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends the datasets of a run one after the other, keeping the workbook's
/// statuses saved as it goes (at most every [`SAVE_INTERVAL`]).
struct Sender<'a> {
    client: &'a XnatClient,
    options: &'a RunOptions,
    observer: &'a dyn RunObserver,
    cancel: &'a CancellationToken,
    prepared: &'a mut Prepared,
    statuses: &'a mut HashMap<usize, String>,
    last_save: std::time::Instant,
}

impl Sender<'_> {
    /// Sends one dataset and records its rows' statuses.
    async fn send(&mut self, dataset: &Dataset<'_>) -> Result<(), Error> {
        send_dataset(
            self.client,
            self.prepared,
            dataset,
            self.options,
            self.observer,
            self.cancel,
            self.statuses,
        )
        .await;
        save_statuses_every(self.prepared, self.statuses, &mut self.last_save)
    }

    /// Gives every row of a dataset that could not be sent `message`.
    fn fail(&mut self, dataset: &Dataset<'_>, message: &str) -> Result<(), Error> {
        mark_all(dataset, message, self.statuses, self.observer);
        save_statuses_every(self.prepared, self.statuses, &mut self.last_save)
    }
}

fn save_statuses_every(
    prepared: &mut Prepared,
    statuses: &HashMap<usize, String>,
    last_save: &mut std::time::Instant,
) -> Result<(), Error> {
    if last_save.elapsed() < SAVE_INTERVAL {
        return Ok(());
    }
    save_statuses(prepared, statuses)?;
    *last_save = std::time::Instant::now();
    Ok(())
}

fn save_statuses(prepared: &mut Prepared, statuses: &HashMap<usize, String>) -> Result<(), Error> {
    for (row, status) in statuses {
        let sheet_row = prepared.rows[*row].sheet_row;
        if prepared.rows[*row].status != *status {
            prepared.rows[*row].status = status.clone();
            files_sheet::set_status(&mut prepared.workbook, sheet_row, status)?;
        }
    }
    prepared.workbook.save()
}

/// The local file for a `File` cell: as written, else under `--dir`.
fn locate(file: &Path, dir: Option<&Path>) -> Option<PathBuf> {
    if file.is_file() {
        return Some(file.to_owned());
    }
    let dir = dir?;
    if file.is_relative() {
        let joined = dir.join(file);
        if joined.is_file() {
            return Some(joined);
        }
    }
    None
}

fn md5_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

async fn remote_digests(
    client: &XnatClient,
    resource_path: &str,
) -> Result<HashMap<String, String>, ClientError> {
    match client.files(resource_path).await {
        Ok(files) => Ok(files
            .into_iter()
            .map(|f| (f.path, f.digest.unwrap_or_default()))
            .collect()),
        // A resource that does not exist yet simply has no files.
        Err(ClientError::NotFound { .. }) => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

async fn send_dataset(
    client: &XnatClient,
    prepared: &Prepared,
    dataset: &Dataset<'_>,
    options: &RunOptions,
    observer: &dyn RunObserver,
    cancel: &CancellationToken,
    statuses: &mut HashMap<usize, String>,
) {
    observer.dataset_started(&dataset.name, dataset.files.len());
    let before = match remote_digests(client, &dataset.resource_path).await {
        Ok(d) => d,
        Err(e) => {
            mark_all(
                dataset,
                &format!("cannot list {}: {e}", dataset.name),
                statuses,
                observer,
            );
            observer.dataset_done();
            return;
        }
    };
    if !before.is_empty() || dataset.files.is_empty() {
        // Resource exists (or nothing to do).
    } else if let Err(e) = put(
        client,
        &dataset.resource_path,
        &[],
        &format!("resource of {}", dataset.name),
    )
    .await
    {
        mark_all(
            dataset,
            &format!("cannot create resource for {}: {e}", dataset.name),
            statuses,
            observer,
        );
        observer.dataset_done();
        return;
    }
    let before = Arc::new(before);
    let dir = options.dir.clone();
    let results: Vec<(usize, String, Result<(), String>)> = futures::stream::iter(dataset.files.iter())
        .map(|file| {
            let before = Arc::clone(&before);
            let dir = dir.clone();
            async move {
                if cancel.is_cancelled() {
                    return (file.row, String::new(), Err(INTERRUPTED.to_owned()));
                }
                let Some(local) = locate(&file.local, dir.as_deref()) else {
                    return (
                        file.row,
                        String::new(),
                        Err(format!(
                            "file not found: {} (moved or deleted since the scan? rescan, or put it back and rerun)",
                            file.local.display()
                        )),
                    );
                };
                let hash_path = local.clone();
                let digest = match tokio::task::spawn_blocking(move || md5_of(&hash_path)).await {
                    Ok(Ok(d)) => d,
                    Ok(Err(e)) => return (file.row, String::new(), Err(format!("cannot read {}: {e}", local.display()))),
                    Err(e) => return (file.row, String::new(), Err(format!("cannot read {}: {e}", local.display()))),
                };
                match before.get(&file.name) {
                    Some(remote) if remote.eq_ignore_ascii_case(&digest) => {
                        return (file.row, digest, Ok(()));
                    }
                    Some(_) if !options.overwrite => {
                        return (
                            file.row,
                            digest,
                            Err(format!(
                                "{} is already on the server with different content; rerun with --overwrite to replace it",
                                file.name
                            )),
                        );
                    }
                    _ => {}
                }
                let sent = client
                    .upload_file(&dataset.resource_path, &file.name, &local)
                    .await
                    .map_err(|e| e.to_string());
                (file.row, digest, sent)
            }
        })
        .buffer_unordered(options.jobs.max(1))
        .inspect(|_| observer.file_done())
        .collect()
        .await;

    // One listing verifies the whole dataset.
    let after = if results.iter().any(|(_, _, r)| r.is_ok()) {
        remote_digests(client, &dataset.resource_path)
            .await
            .map_err(|e| e.to_string())
    } else {
        Ok(HashMap::new())
    };
    let names: HashMap<usize, &str> = dataset
        .files
        .iter()
        .map(|f| (f.row, f.name.as_str()))
        .collect();
    for (row, local_digest, result) in results {
        let status = match (result, &after) {
            (Err(message), _) => message,
            (Ok(()), Err(e)) => {
                format!("uploaded but not verified: cannot list files ({e}); rerun to verify")
            }
            (Ok(()), Ok(after)) => {
                let name = names.get(&row).copied().unwrap_or("");
                match after.get(name) {
                    None => format!("File {name} not found in digests"),
                    Some(remote) if remote.eq_ignore_ascii_case(&local_digest) => {
                        SUCCESS.to_owned()
                    }
                    Some(remote) => format!("Digest mismatch {local_digest} {remote}"),
                }
            }
        };
        if status != SUCCESS && status != INTERRUPTED {
            observer.note(&format!("{}: {status}", prepared.rows[row].file));
        }
        statuses.insert(row, status);
    }
    observer.dataset_done();
}
