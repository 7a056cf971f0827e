//! Runs as the Container Service shows them (`/xapi/containers`): the
//! job row, its history and what its launch resolved to, in the
//! `Container` shape; who may see them (readers of the project), who may
//! kill them (editors of the project, or the user who launched), and the
//! log files.

use std::path::PathBuf;

use xnatkit_engine::resolve::ResolvedJob;
use xnatkit_engine::{JobStatus, OutputKind};
use xnatkit_model::container::{Container, ContainerHistory};
use xnatkit_model::{ArchivePath, encode_segment};

use super::worker;
use crate::access::Action;
use crate::archive::outputs::assessor_label;
use crate::archive::{Actor, Error, Result, checked_project, project_access, required_scope};
use crate::state::AppState;
use crate::store::{Entity, JobRow, RunPage, RunPageQuery};

pub(super) async fn container_of(state: &AppState, job: &JobRow) -> Result<Container> {
    let resolved: Option<ResolvedJob> = serde_json::from_str(&job.resolved).ok();
    let history = state
        .store()
        .job_history(job.id)
        .await?
        .into_iter()
        .map(|h| ContainerHistory {
            id: h.id,
            status: h.status,
            entity_type: h.entity_type,
            entity_id: (!h.entity_id.is_empty()).then_some(h.entity_id),
            time_recorded: xnatkit_model::container::timestamp_ms(h.time_recorded),
            external_timestamp: None,
            message: (!h.message.is_empty()).then_some(h.message),
            exit_code: (!h.exit_code.is_empty()).then_some(h.exit_code),
        })
        .collect();
    let logs = worker::log_dir(state, job.id);
    Ok(Container {
        id: job.id,
        command_id: job.command_id,
        wrapper_id: job.wrapper_id,
        status: job.status.clone(),
        status_time: xnatkit_model::container::timestamp_ms(job.status_time),
        container_id: format!("xnatkit-{}", job.id),
        workflow_id: job.workflow_id.to_string(),
        user_id: job.username.clone(),
        project: job.project.clone(),
        backend: job.backend.clone(),
        docker_image: String::new(),
        command_line: resolved
            .as_ref()
            .map(|r| r.command_line.clone())
            .unwrap_or_default(),
        subtype: "main".to_owned(),
        parent_source_object_name: resolved
            .as_ref()
            .map(|r| {
                xnatkit_engine::resolve::OBJECT_TYPES
                    .iter()
                    .find(|t| **t == r.root.kind)
                    .map(|t| t.to_ascii_lowercase())
                    .unwrap_or_default()
            })
            .unwrap_or_default(),
        env: resolved.as_ref().map(|r| r.env.clone()).unwrap_or_default(),
        inputs: resolved
            .as_ref()
            .map(|r| r.inputs.clone())
            .unwrap_or_default(),
        outputs: resolved
            .as_ref()
            .map(ResolvedJob::container_outputs)
            .unwrap_or_default(),
        history,
        log_paths: vec![
            logs.join("stdout.log").to_string_lossy().into_owned(),
            logs.join("stderr.log").to_string_lossy().into_owned(),
        ],
    })
}

pub(super) async fn may(actor: &Actor<'_>, project: &str, action: Action) -> Result<bool> {
    let Some(found) = actor.state.store().project(project).await? else {
        return Ok(false);
    };
    Ok(project_access(actor, &found)
        .await?
        .check(action, "project")
        .is_ok())
}

/// Containers the caller may see, of `project` or all.
pub async fn list(
    actor: &Actor<'_>,
    project: Option<&str>,
    nonfinalized: bool,
) -> Result<Vec<Container>> {
    let jobs = visible_jobs(actor, project, |job| {
        !(nonfinalized && JobStatus::parse(&job.status).is_some_and(JobStatus::is_terminal))
    })
    .await?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in &jobs {
        out.push(container_of(actor.state, job).await?);
    }
    Ok(out)
}

/// The jobs of `project` (every project when `None`; an unknown or
/// hidden project is refused) that `keep` accepts and whose project's
/// data the caller may read — each project's rights looked up once.
pub async fn visible_jobs(
    actor: &Actor<'_>,
    project: Option<&str>,
    keep: impl Fn(&JobRow) -> bool,
) -> Result<Vec<JobRow>> {
    if let Some(p) = project {
        checked_project(actor, p, Action::ReadData).await?;
    }
    let mut visible: std::collections::BTreeMap<String, bool> = Default::default();
    let mut out = Vec::new();
    for job in actor.state.store().jobs(project).await? {
        if !keep(&job) {
            continue;
        }
        let ok = match visible.get(&job.project) {
            Some(v) => *v,
            None => {
                let v = may(actor, &job.project, Action::ReadData).await?;
                visible.insert(job.project.clone(), v);
                v
            }
        };
        if ok {
            out.push(job);
        }
    }
    Ok(out)
}

/// Job `id` (`123` or `xnatkit-123`), visible to the caller, in `project`
/// when given.
pub async fn job(actor: &Actor<'_>, project: Option<&str>, id: &str) -> Result<JobRow> {
    let not_found = || Error::NotFound(format!("No container with ID {id}"));
    let numeric: i64 = id
        .strip_prefix("xnatkit-")
        .unwrap_or(id)
        .parse()
        .map_err(|_| not_found())?;
    let job = actor
        .state
        .store()
        .job(numeric)
        .await?
        .filter(|j| project.is_none_or(|p| p.eq_ignore_ascii_case(&j.project)))
        .ok_or_else(not_found)?;
    if !may(actor, &job.project, Action::ReadData).await? {
        return Err(not_found());
    }
    Ok(job)
}

pub async fn get(actor: &Actor<'_>, project: Option<&str>, id: &str) -> Result<Container> {
    let job = job(actor, project, id).await?;
    container_of(actor.state, &job).await
}

/// The log file `stream` of container `id`; `None` when nothing was
/// written (yet).
pub async fn log(
    actor: &Actor<'_>,
    project: Option<&str>,
    id: &str,
    stream: &str,
) -> Result<Option<PathBuf>> {
    if stream != "stdout" && stream != "stderr" {
        return Err(Error::NotFound(format!(
            "No log {stream}: use stdout or stderr"
        )));
    }
    let job = job(actor, project, id).await?;
    let path = worker::log_file(actor.state, job.id, stream);
    Ok(tokio::fs::try_exists(&path)
        .await
        .unwrap_or(false)
        .then_some(path))
}

/// Kills container `id`: a queued one at once, a running one through the
/// server that runs it. A finished one is left as it is.
pub async fn kill(actor: &Actor<'_>, project: Option<&str>, id: &str) -> Result<Container> {
    let user = actor.caller.require_user()?.username.clone();
    let job = job(actor, project, id).await?;
    if job.username != user && !may(actor, &job.project, Action::Edit).await? {
        return Err(Error::Forbidden(format!(
            "Forbidden: you may not kill container {id} of project {}",
            job.project
        )));
    }
    let store = actor.state.store();
    let status = JobStatus::parse(&job.status);
    if status == Some(JobStatus::Created) {
        store
            .move_job(
                job.id,
                "Created",
                "Killed",
                Entity::User,
                &user,
                "",
                "killed before it started",
            )
            .await?;
    }
    if !status.is_some_and(JobStatus::is_terminal) {
        store.request_kill(job.id).await?;
        // The server running it (maybe this one) acts at once or within
        // a tick of its worker loop.
        actor.state.engine().kill_here(job.id);
        actor.state.engine().wake();
    }
    let job = store.job(job.id).await?.unwrap_or(job);
    container_of(actor.state, &job).await
}

/// Deletes the record and logs of container `id` once it has ended (who may
/// kill it may delete it); a queued or running one must be killed first.
pub async fn delete(actor: &Actor<'_>, project: Option<&str>, id: &str) -> Result<()> {
    let user = actor.caller.require_user()?.username.clone();
    let job = job(actor, project, id).await?;
    if job.username != user && !may(actor, &job.project, Action::Edit).await? {
        return Err(Error::Forbidden(format!(
            "Forbidden: you may not delete container {id} of project {}",
            job.project
        )));
    }
    if !actor.state.store().delete_finished_job(job.id).await? {
        return Err(Error::Conflict(format!(
            "container {id} is {}; kill it before deleting it",
            job.status
        )));
    }
    let logs = worker::log_dir(actor.state, job.id);
    if let Err(err) = tokio::fs::remove_dir_all(&logs).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {err}", logs.display());
    }
    Ok(())
}

/// The log files of container `id` for XNAT's `GET /containers/{id}/logs`
/// zip (`stdout.log`, `stderr.log`; a log never written is left out).
pub async fn log_entries(
    actor: &Actor<'_>,
    project: Option<&str>,
    id: &str,
) -> Result<Vec<xnatkit_fileio::ArchiveEntry>> {
    let job = job(actor, project, id).await?;
    let mut entries = Vec::new();
    for stream in ["stdout", "stderr"] {
        let source = worker::log_file(actor.state, job.id, stream);
        if let Ok(meta) = tokio::fs::metadata(&source).await {
            entries.push(xnatkit_fileio::ArchiveEntry {
                name: format!("{stream}.log"),
                source,
                size: meta.len(),
                modified: None,
            });
        }
    }
    Ok(entries)
}

/// One page of `project`'s runs for the web pages (newest first, filtered
/// and paged in SQL), after the same read check as [`list`].
pub async fn page(actor: &Actor<'_>, query: &RunPageQuery<'_>) -> Result<RunPage> {
    let found = checked_project(actor, query.project, Action::ReadData).await?;
    let query = RunPageQuery {
        project: &found.id,
        ..*query
    };
    Ok(actor.state.store().run_page(&query).await?)
}

/// May the caller see the runs of `project` (read its data)?
pub async fn may_see_runs(actor: &Actor<'_>, project: &str) -> Result<bool> {
    may(actor, project, Action::ReadData).await
}

/// What a finished run filed: one resource (of a scan, the session or a
/// new assessor) per output, as far as the caller may read it.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The output's name in the command.
    pub name: String,
    /// The resource's label.
    pub label: String,
    /// `/data/…` URI of the resource (its files are under `/files/`).
    pub resource_uri: String,
    /// The assessor that holds it, for an assessor output.
    pub assessor: Option<String>,
    pub file_count: i64,
    /// Paths (inside the resource) of its PNG files, to show inline.
    pub images: Vec<String>,
}

/// The outputs of a `Complete` run that still exist and that the caller
/// may read (through the same scope checks as the REST file routes).
/// Nothing for a run that did not complete: it attached nothing.
pub async fn outputs(actor: &Actor<'_>, job: &JobRow) -> Result<Vec<RunOutput>> {
    if JobStatus::parse(&job.status) != Some(JobStatus::Complete) {
        return Ok(Vec::new());
    }
    let Ok(resolved) = serde_json::from_str::<ResolvedJob>(&job.resolved) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for output in &resolved.outputs {
        match output_resource(actor, output).await {
            Ok(Some(found)) => out.push(found),
            Ok(None) | Err(Error::NotFound(_) | Error::Forbidden(_) | Error::Invalid(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

async fn output_resource(
    actor: &Actor<'_>,
    output: &xnatkit_engine::resolve::ResolvedOutput,
) -> Result<Option<RunOutput>> {
    let parse = |uri: &str| {
        ArchivePath::parse_request_path(uri)
            .map_err(|e| Error::Invalid(format!("output parent {uri}: {e}")))
    };
    let parent = parse(&output.parent_uri)?;
    let (owner_path, assessor) = match output.kind {
        OutputKind::Resource => (parent, None),
        OutputKind::Assessor => {
            // Filed as a new assessor of the session, labelled as
            // `archive::outputs::attach_assessor` labels it.
            let scope = required_scope(actor, &parent).await?;
            scope.check(Action::ReadData)?;
            let session = scope.experiment(&parent)?;
            let scan = parent.scans.as_ref().and_then(|s| s.single());
            let label = assessor_label(&session.label, &output.label, scan);
            let uri = format!(
                "/data/experiments/{}/assessors/{}",
                encode_segment(&session.id),
                encode_segment(&label)
            );
            (parse(&uri)?, Some(label))
        }
    };
    let scope = required_scope(actor, &owner_path).await?;
    scope.check(Action::ReadData)?;
    let owner = scope.resource_owner(actor, &owner_path).await?;
    let store = actor.state.store();
    let Some(resource) = store.resource(&owner.owner, &output.label).await? else {
        return Ok(None);
    };
    let images = store
        .files(resource.id)
        .await?
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.to_ascii_lowercase().ends_with(".png"))
        .collect();
    Ok(Some(RunOutput {
        name: output.name.clone(),
        resource_uri: format!(
            "{}/resources/{}",
            owner.uri,
            encode_segment(&resource.label)
        ),
        label: resource.label,
        assessor,
        file_count: resource.file_count,
        images,
    }))
}
