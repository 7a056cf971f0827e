//! Launching a wrapper on an archive object: the object named by the root
//! input's value (a REST URI such as `/experiments/XNAT_E00001/scans/3`)
//! is found with the caller's rights and must be editable by them (403 or
//! 404 as XNAT answers); the wrapper must fit the object's type and be
//! enabled for the site and the project; the inputs must resolve. Only
//! then is a job queued, with its workflow row, and the answer carries a
//! numeric `workflow-id` (and, ours, the container ID). Anything else is
//! refused with its reason.

use std::collections::BTreeMap;

use xnatkit_engine::launch_ui::LaunchUiFor;
use xnatkit_engine::resolve::{resolve, root_input};
use xnatkit_engine::{XnatObject, XnatResource};
use xnatkit_model::ArchivePath;
use xnatkit_model::container::{BulkLaunchReport, LaunchReport, LaunchUi};

use super::commands::{FoundWrapper, context_fits, enabled};
use super::wrapper_config::configured;
use crate::access::Action;
use crate::archive::files::resource_dir_on_disk;
use crate::archive::{Actor, Error, Result, required_scope};
use crate::store::{Entity, Experiment, NewJob, Owner};

/// One launch.
#[derive(Debug, Clone)]
pub struct LaunchRequest<'a> {
    /// The project in the URL, if any.
    pub project: Option<&'a str>,
    pub wrapper: &'a FoundWrapper,
    /// Launch parameters: wrapper input name → value.
    pub params: BTreeMap<String, String>,
    pub bulk_id: String,
    pub entity: Entity,
}

/// A REST URI as clients pass it (`/experiments/E`, `/archive/...`,
/// `/data/...`, or a bare session ID) as a `/data` path.
fn object_path(value: &str, kind: &str) -> Result<ArchivePath> {
    let v = value.trim();
    let full = if v.starts_with("/data/") || v.starts_with("/REST/") {
        v.to_owned()
    } else if v.starts_with('/') {
        format!("/data{v}")
    } else if kind == "Session" && !v.is_empty() {
        format!("/data/experiments/{v}")
    } else {
        return Err(Error::Invalid(format!(
            "the {kind} to launch on must be given as a URI such as /experiments/XNAT_E00001{}; got {v:?}",
            if kind == "Scan" { "/scans/1" } else { "" }
        )));
    };
    ArchivePath::parse_request_path(&full)
        .map_err(|e| Error::Invalid(format!("{v} does not name an archive object: {e}")))
}

/// Finds the root object with the caller's rights (which must allow
/// editing it) and describes it for the engine.
pub async fn find_object(actor: &Actor<'_>, value: &str, kind: &str) -> Result<XnatObject> {
    let path = object_path(value, kind)?;
    let scope = required_scope(actor, &path).await?;
    scope.check(Action::Edit)?;
    let experiment = scope.experiment(&path)?.clone();
    let owner = scope.resource_owner(actor, &path).await?;
    let (found_kind, xsi_type, id, label, scan_type) = match &owner.scan {
        Some(scan) => (
            "Scan",
            scan.xsi_type.clone(),
            scan.scan_id.clone(),
            scan.scan_id.clone(),
            scan.attrs.scan_type.clone(),
        ),
        None if path.experiment.is_some() => (
            "Session",
            experiment.xsi_type.clone(),
            experiment.id.clone(),
            experiment.label.clone(),
            String::new(),
        ),
        None => {
            return Err(Error::Invalid(format!(
                "{value}: launches run on a session or a scan"
            )));
        }
    };
    let resources = object_resources(actor, &owner.owner, &owner.uri).await?;
    let children = if found_kind == "Session" {
        session_children(actor, &experiment).await?
    } else {
        Vec::new()
    };
    Ok(XnatObject {
        kind: found_kind.to_owned(),
        xsi_type,
        id,
        label,
        uri: owner.uri.clone(),
        project: experiment.project.clone(),
        session_id: experiment.id.clone(),
        scan_type,
        resources,
        children,
    })
}

async fn object_resources(
    actor: &Actor<'_>,
    owner: &Owner,
    uri: &str,
) -> Result<Vec<XnatResource>> {
    let mut resources = Vec::new();
    for resource in actor.state.store().resources(owner).await? {
        resources.push(XnatResource {
            uri: format!("{uri}/resources/{}", resource.label),
            directory: resource_dir_on_disk(actor.state, &resource.dir)?,
            label: resource.label,
        });
    }
    Ok(resources)
}

/// A session's scans (in scan order) and assessors (newest first, so an
/// input that takes "the" ROI collection takes the latest), with their
/// resources: what derived `Scan` and `Assessor` inputs choose from.
async fn session_children(actor: &Actor<'_>, session: &Experiment) -> Result<Vec<XnatObject>> {
    let store = actor.state.store();
    let mut children = Vec::new();
    for scan in store.scans(&session.id).await? {
        let uri = format!(
            "/data/experiments/{}/scans/{}",
            session.id,
            xnatkit_model::encode_segment(&scan.scan_id)
        );
        children.push(XnatObject {
            kind: "Scan".to_owned(),
            xsi_type: scan.xsi_type.clone(),
            id: scan.scan_id.clone(),
            label: scan.scan_id.clone(),
            resources: object_resources(actor, &Owner::Scan(scan.pk), &uri).await?,
            uri,
            project: session.project.clone(),
            session_id: session.id.clone(),
            scan_type: scan.attrs.scan_type.clone(),
            children: Vec::new(),
        });
    }
    let mut assessors = store.assessors(&session.id).await?;
    assessors.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    for assessor in assessors {
        let uri = format!(
            "/data/experiments/{}/assessors/{}",
            session.id,
            xnatkit_model::encode_segment(&assessor.id)
        );
        children.push(XnatObject {
            kind: "Assessor".to_owned(),
            xsi_type: assessor.xsi_type.clone(),
            resources: object_resources(actor, &Owner::Assessor(assessor.id.clone()), &uri).await?,
            id: assessor.id,
            label: assessor.label,
            uri,
            project: session.project.clone(),
            session_id: session.id.clone(),
            scan_type: String::new(),
            children: Vec::new(),
        });
    }
    Ok(children)
}

/// The object a launch runs on, checked: found with the caller's right to
/// edit it, in the URL's project, of a type the wrapper runs on, with the
/// wrapper enabled for the site and its project.
async fn checked_object(actor: &Actor<'_>, request: &LaunchRequest<'_>) -> Result<XnatObject> {
    let found = request.wrapper;
    let wrapper = &found.wrapper;
    let root = root_input(wrapper).ok_or_else(|| {
        Error::Invalid(format!(
            "wrapper {} has no external input for an archive object, so it cannot be launched",
            wrapper.name
        ))
    })?;
    let value = request.params.get(&root.name).ok_or_else(|| {
        Error::Invalid(format!(
            "the launch names no {} to run on: add \"{}\": \"/experiments/ID{}\" to the body",
            root.kind.to_ascii_lowercase(),
            root.name,
            if root.kind == "Scan" {
                "/scans/SCAN"
            } else {
                ""
            }
        ))
    })?;
    let object = find_object(actor, value, &root.kind).await?;
    if let Some(p) = request.project
        && !p.eq_ignore_ascii_case(&object.project)
    {
        return Err(Error::Invalid(format!(
            "{} belongs to project {}, not {p}; launch it in project {}",
            object.uri, object.project, object.project
        )));
    }
    if !wrapper
        .contexts
        .iter()
        .any(|c| context_fits(c, &object.xsi_type))
    {
        return Err(Error::Invalid(format!(
            "wrapper {} runs on {}; {} is a {}",
            wrapper.name,
            wrapper.contexts.join(", "),
            object.uri,
            object.xsi_type
        )));
    }
    let (site, project_on) = enabled(actor.state, found.wrapper_id, Some(&object.project)).await?;
    if !site {
        return Err(Error::Invalid(format!(
            "wrapper {} is not enabled on this site; an administrator enables it with PUT /xapi/wrappers/{}/enabled",
            wrapper.name, found.wrapper_id
        )));
    }
    if !project_on {
        return Err(Error::Invalid(format!(
            "wrapper {} is not enabled in project {}; enable it with `xnatkit pipeline enable {} --project {}` (PUT /xapi/projects/{}/wrappers/{}/enabled)",
            wrapper.name,
            object.project,
            wrapper.name,
            object.project,
            object.project,
            found.wrapper_id
        )));
    }
    Ok(object)
}

/// The launch form of a wrapper (`GET .../launch`): its inputs and, when
/// the request names the object, what they resolve to there — the same
/// checks as a launch, so the form never offers what would be refused.
/// Inputs that do not resolve yet (a required parameter not given) leave
/// the form open, with the reason on the root input.
pub async fn launch_ui(actor: &Actor<'_>, request: &LaunchRequest<'_>) -> Result<LaunchUi> {
    actor.caller.require_user()?;
    let found = request.wrapper;
    let named = root_input(&found.wrapper).is_some_and(|r| request.params.contains_key(&r.name));
    let object = if named {
        Some(checked_object(actor, request).await?)
    } else {
        None
    };
    // The object's project configures the form; without one, the URL's.
    let project = object
        .as_ref()
        .map(|o| o.project.as_str())
        .or(request.project);
    let configured = configured(actor.state, found, project).await?;
    let target = LaunchUiFor {
        command: &configured.command.command,
        command_id: found.command.row.id,
        wrapper: &configured.wrapper,
        wrapper_id: found.wrapper_id,
    };
    let Some(object) = object else {
        return Ok(xnatkit_engine::launch_ui::launch_ui(&target, None));
    };
    Ok(
        match resolve(
            &configured.command.command,
            &configured.wrapper,
            &object,
            &request.params,
        ) {
            Ok(resolved) => xnatkit_engine::launch_ui::launch_ui(&target, Some(&resolved)),
            Err(err) => xnatkit_engine::launch_ui::launch_ui_unresolved(
                &target,
                (&object.uri, &object.label),
                &err.to_string(),
            ),
        },
    )
}

/// Checks and queues one launch.
pub async fn launch(actor: &Actor<'_>, request: &LaunchRequest<'_>) -> Result<LaunchReport> {
    let state = actor.state;
    let found = request.wrapper;
    let wrapper = &found.wrapper;
    let user = actor.caller.require_user()?.username.clone();
    let object = checked_object(actor, request).await?;
    let configured = configured(state, found, Some(&object.project)).await?;
    let resolved = resolve(
        &configured.command.command,
        &configured.wrapper,
        &object,
        &request.params,
    )
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let (data_type, scan_id) = if object.kind == "Scan" {
        let session = state
            .store()
            .experiment_by_id(&object.session_id)
            .await?
            .map(|e| e.xsi_type)
            .unwrap_or_default();
        (session, object.id.clone())
    } else {
        (object.xsi_type.clone(), String::new())
    };
    let job = NewJob {
        command_id: found.command.row.id,
        wrapper_id: found.wrapper_id,
        project: object.project.clone(),
        username: user,
        root_uri: object.uri.clone(),
        params: to_json(&request.params)?,
        resolved: to_json(&resolved)?,
        bulk_id: request.bulk_id.clone(),
        pipeline_name: wrapper.name.clone(),
        data_id: object.session_id.clone(),
        data_type,
        scan_id,
    };
    let (job_id, workflow_id) = state.store().enqueue_job(&job, request.entity).await?;
    state.engine().wake();
    Ok(LaunchReport {
        status: "success".to_owned(),
        params: request.params.clone(),
        command_id: Some(found.command.row.id),
        wrapper_id: Some(found.wrapper_id),
        workflow_id: Some(serde_json::Value::from(workflow_id)),
        container_id: Some(job_id.to_string()),
        message: None,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("job JSON: {e}")))
}

/// The failure entry of a launch that was refused.
pub fn failure(
    params: &BTreeMap<String, String>,
    found: Option<&FoundWrapper>,
    err: &Error,
) -> LaunchReport {
    LaunchReport {
        status: "failure".to_owned(),
        params: params.clone(),
        command_id: found.map(|f| f.command.row.id),
        wrapper_id: found.map(|f| f.wrapper_id),
        workflow_id: None,
        container_id: None,
        message: Some(err.to_string()),
    }
}

/// Launches `wrapper` on every target: the root input's value is a JSON
/// array of URIs (the Container Service's bulk form), or one URI.
pub async fn bulk_launch(
    actor: &Actor<'_>,
    project: Option<&str>,
    found: &FoundWrapper,
    params: &BTreeMap<String, String>,
) -> Result<BulkLaunchReport> {
    let root = root_input(&found.wrapper).ok_or_else(|| {
        Error::Invalid(format!(
            "wrapper {} has no archive-object input",
            found.wrapper.name
        ))
    })?;
    let raw = params.get(&root.name).ok_or_else(|| {
        Error::Invalid(format!(
            "the bulk launch names no targets: add \"{}\": \"[\\\"/experiments/ID/scans/1\\\", ...]\"",
            root.name
        ))
    })?;
    let targets: Vec<String> = match serde_json::from_str::<Vec<String>>(raw) {
        Ok(list) => list,
        Err(_) => vec![raw.clone()],
    };
    let outcomes = launch_each(actor, project, found, params, targets).await?;
    let mut report = BulkLaunchReport {
        bulk_launch_id: outcomes.bulk_id,
        pipeline_name: found.wrapper.name.clone(),
        successes: Vec::new(),
        failures: Vec::new(),
    };
    for outcome in outcomes.launches {
        match outcome.result {
            Ok(ok) => report.successes.push(ok),
            Err(err) => report
                .failures
                .push(failure(&outcome.params, Some(found), &err)),
        }
    }
    Ok(report)
}

/// One target of a bulk launch and how its launch went.
#[derive(Debug)]
pub struct TargetLaunch {
    /// The launch parameters with the target as the root input.
    pub params: BTreeMap<String, String>,
    pub target: String,
    pub result: Result<LaunchReport>,
}

/// Every launch of one bulk launch, under its ID.
#[derive(Debug)]
pub struct BulkOutcome {
    pub bulk_id: String,
    pub launches: Vec<TargetLaunch>,
}

/// Launches `found` on each target URI in turn (the bulk launch's work,
/// also what the web pages call): each target is checked and queued on
/// its own, and a refused one keeps its error (a database failure stops
/// the whole launch).
pub async fn launch_each(
    actor: &Actor<'_>,
    project: Option<&str>,
    found: &FoundWrapper,
    params: &BTreeMap<String, String>,
    targets: Vec<String>,
) -> Result<BulkOutcome> {
    let root = root_input(&found.wrapper).ok_or_else(|| {
        Error::Invalid(format!(
            "wrapper {} has no archive-object input",
            found.wrapper.name
        ))
    })?;
    let bulk_id = uuid::Uuid::new_v4().to_string();
    let mut launches = Vec::new();
    for target in targets {
        let mut one = params.clone();
        one.insert(root.name.clone(), target.clone());
        let request = LaunchRequest {
            project,
            wrapper: found,
            params: one.clone(),
            bulk_id: bulk_id.clone(),
            entity: Entity::User,
        };
        let result = match launch(actor, &request).await {
            Err(Error::Store(err)) => return Err(Error::Store(err)),
            other => other,
        };
        launches.push(TargetLaunch {
            params: one,
            target,
            result,
        });
    }
    Ok(BulkOutcome { bulk_id, launches })
}
