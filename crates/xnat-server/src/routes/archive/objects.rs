//! Single objects: `?format=json` items, creation/update PUTs with XPath
//! parameters (client contract §6, §12), renames and DELETE.

use axum::http::StatusCode;
use axum::response::Response;
use xnat_model::{Accessibility, ArchivePath, Label, Level, XsiType};

use super::Ctx;
use super::render::{
    experiment_item, item_xml, items_response, project_item, scan_item, subject_item,
};
use crate::archive::{Scope, project_access, required_scope};
use crate::access::Action;
use crate::error::ApiError;
use crate::params::{Format, custom_field_name, xpath_tail};
use crate::routes::text;
use crate::store::{
    CreateProjectOutcome, Experiment, ExperimentAttrs, Owner, ScanAttrs, Share, ShareKind,
    ShareOutcome, Subject,
};

fn respond_item(ctx: &Ctx, item: xnat_model::ObjectItem) -> Response {
    match ctx.params.format() {
        Some(Format::Xml) => item_xml(&item),
        _ => items_response(item),
    }
}

pub(crate) async fn get_item(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let scope = required_scope(&ctx.actor(), path).await?;
    match path.level() {
        Level::Project => {
            scope.check(Action::ReadProject)?;
            let fields = store.custom_fields("project", &scope.project.id).await?;
            Ok(respond_item(ctx, project_item(&scope.project, &fields)))
        }
        Level::Subject => {
            scope.check(Action::ReadData)?;
            let subject = scope.subject(path)?;
            let fields = store.custom_fields("subject", &subject.id).await?;
            let shares = visible_shares(ctx, ShareKind::Subject, &subject.id).await?;
            Ok(respond_item(ctx, subject_item(subject, &fields, &shares)))
        }
        Level::Experiment => {
            scope.check(Action::ReadData)?;
            let experiment = scope.experiment(path)?;
            let fields = store.custom_fields("experiment", &experiment.id).await?;
            let shares = visible_shares(ctx, ShareKind::Experiment, &experiment.id).await?;
            Ok(respond_item(
                ctx,
                experiment_item(experiment, &fields, &shares),
            ))
        }
        _ => {
            scope.check(Action::ReadData)?;
            let experiment = scope.experiment(path)?;
            let scan_id = path.scans.as_ref().and_then(|s| s.single()).unwrap_or("");
            let scan = store
                .scan(&experiment.id, scan_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("scan {scan_id}")))?;
            Ok(respond_item(ctx, scan_item(&scan, &scope.project.id)))
        }
    }
}

/// The shares of an object into projects the caller can see (as in
/// project listings): other projects' names are not revealed.
async fn visible_shares(ctx: &Ctx, kind: ShareKind, id: &str) -> Result<Vec<Share>, ApiError> {
    let store = ctx.state.store();
    let mut out = Vec::new();
    for share in store.shares(kind, id).await? {
        if let Some(project) = store.project(&share.project).await?
            && project_access(&ctx.actor(), &project).await?.lists_project()
        {
            out.push(share);
        }
    }
    Ok(out)
}

/// Custom-variable changes in the request (`…/fields/field[name=x]/field=v`;
/// `NULL` deletes). Names are lower-cased as XNAT stores them.
fn field_changes(ctx: &Ctx) -> Vec<(String, Option<String>)> {
    ctx.params
        .pairs()
        .iter()
        .filter_map(|(k, v)| {
            let name = custom_field_name(xpath_tail(k))?;
            if name.is_empty() {
                return None;
            }
            let value = (v != "NULL").then(|| v.clone());
            Some((name.to_ascii_lowercase(), value))
        })
        .collect()
}

async fn apply_fields(ctx: &Ctx, kind: &str, key: &str) -> Result<(), ApiError> {
    let changes = field_changes(ctx);
    if !changes.is_empty() {
        ctx.state
            .store()
            .set_custom_fields(kind, key, &changes)
            .await?;
    }
    Ok(())
}

/// Simple attributes (`date`, `xnat:mrSessionData/date`, …) by lower-cased
/// name; `NULL` clears.
pub(crate) fn attribute(ctx: &Ctx, name: &str) -> Option<String> {
    ctx.params
        .pairs()
        .iter()
        .rev()
        .find(|(k, _)| xpath_tail(k).eq_ignore_ascii_case(name))
        .map(|(_, v)| {
            if v == "NULL" {
                String::new()
            } else {
                v.clone()
            }
        })
}

fn unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

fn created(id: &str) -> Response {
    text(StatusCode::CREATED, id)
}

fn updated(id: &str) -> Response {
    text(StatusCode::OK, id)
}

pub(crate) async fn put_project(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let user = ctx.caller.require_user()?;
    let id = path.project.as_deref().unwrap_or_default();
    let accessibility = match attribute(ctx, "accessibility") {
        Some(raw) => Some(
            raw.parse::<Accessibility>()
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    if let Some(project) = store.project(id).await? {
        let access = project_access(&ctx.actor(), &project).await?;
        let what = format!("project {}", project.id);
        access.check(Action::Edit, &what)?;
        store
            .update_project(
                &project.id,
                attribute(ctx, "name").as_deref(),
                attribute(ctx, "description").as_deref(),
                attribute(ctx, "secondary_ID").as_deref(),
            )
            .await?;
        if let Some(level) = accessibility {
            access.check(Action::Manage, &what)?;
            store.set_accessibility(&project.id, level).await?;
        }
        apply_fields(ctx, "project", &project.id).await?;
        return Ok(updated(&project.id));
    }
    let label = Label::parse(id)
        .map_err(|e| ApiError::InvalidLabel(format!("Invalid character in project ID: {e}")))?;
    let name = attribute(ctx, "name").unwrap_or_else(|| id.to_owned());
    let description = attribute(ctx, "description").unwrap_or_default();
    let outcome = store
        .create_project(
            label.as_str(),
            &name,
            &description,
            accessibility.unwrap_or(Accessibility::Protected),
            &user.username,
        )
        .await;
    match outcome {
        Ok(CreateProjectOutcome::Created) => {}
        Ok(CreateProjectOutcome::Taken) => {
            return Err(ApiError::Conflict(format!(
                "Requested new project conflicts with existing project {id}"
            )));
        }
        Ok(CreateProjectOutcome::Retired) => {
            return Err(ApiError::Conflict(format!(
                "Project ID {id} was used in a previously deleted project and cannot be reused"
            )));
        }
        Err(e) if unique_violation(&e) => {
            return Err(ApiError::Conflict(format!("project {id} already exists")));
        }
        Err(e) => return Err(e.into()),
    }
    apply_fields(ctx, "project", label.as_str()).await?;
    Ok(created(label.as_str()))
}

/// The new label asked for by `label=` (or `<type>/label=`), if it differs.
fn requested_label(ctx: &Ctx, current: &str) -> Result<Option<Label>, ApiError> {
    match attribute(ctx, "label") {
        Some(raw) if raw != current && !raw.is_empty() => Ok(Some(Label::parse(&raw)?)),
        _ => Ok(None),
    }
}

fn parse_label(raw: &str, what: &str) -> Result<Label, ApiError> {
    Label::parse(raw)
        .map_err(|e| ApiError::InvalidLabel(format!("Invalid character in {what} label: {e}")))
}

pub(crate) async fn put_subject(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    if let Some(subject) = &scope.subject {
        scope.check(Action::Edit)?;
        let current = scope.subject_label().unwrap_or(&subject.label);
        if let Some(label) = requested_label(ctx, current)? {
            relabel(ctx, &scope, ShareKind::Subject, subject, label.as_str()).await?;
        }
        apply_fields(ctx, "subject", &subject.id).await?;
        return Ok(updated(&subject.id));
    }
    scope.check(Action::Create)?;
    let raw = path.subject.as_deref().unwrap_or_default();
    let label = parse_label(raw, "subject")?;
    let id = create_subject(ctx, &scope, &label).await?;
    apply_fields(ctx, "subject", &id).await?;
    Ok(created(&id))
}

/// Renames what the path names in the project it goes through: the
/// object itself in its own project, or its share's label when the path
/// goes through a project it is shared into. 409 when the label is taken
/// there (owned or shared).
async fn relabel(
    ctx: &Ctx,
    scope: &Scope,
    kind: ShareKind,
    object: &impl Labelled,
    label: &str,
) -> Result<(), ApiError> {
    let store = ctx.state.store();
    let project = &scope.project.id;
    let in_use = || ApiError::Conflict("Specified label is already in use.".to_owned());
    if object.project() != project {
        let user = ctx.caller.require_user()?;
        return match store
            .share(kind, object.id(), project, label, &user.username)
            .await?
        {
            ShareOutcome::LabelTaken => Err(in_use()),
            _ => Ok(()),
        };
    }
    if !store.label_free(kind, project, label, object.id()).await? {
        return Err(in_use());
    }
    let renamed = match kind {
        ShareKind::Subject => store.rename_subject(object.id(), label).await,
        ShareKind::Experiment => store.rename_experiment(object.id(), label).await,
    };
    renamed.map_err(rename_error)
}

/// What [`relabel`] needs of subjects and experiments.
trait Labelled {
    fn id(&self) -> &str;
    fn project(&self) -> &str;
}

impl Labelled for Subject {
    fn id(&self) -> &str {
        &self.id
    }
    fn project(&self) -> &str {
        &self.project
    }
}

impl Labelled for Experiment {
    fn id(&self) -> &str {
        &self.id
    }
    fn project(&self) -> &str {
        &self.project
    }
}

fn rename_error(err: sqlx::Error) -> ApiError {
    if unique_violation(&err) {
        ApiError::Conflict("Specified label is already in use.".to_owned())
    } else {
        err.into()
    }
}

async fn create_subject(ctx: &Ctx, scope: &Scope, label: &Label) -> Result<String, ApiError> {
    let user = ctx.caller.require_user()?;
    ctx.state
        .store()
        .create_subject(
            &ctx.state.config().site_id,
            &scope.project.id,
            label.as_str(),
            &user.username,
        )
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                ApiError::Conflict(format!("subject {label} already exists"))
            } else {
                e.into()
            }
        })
}

fn experiment_attrs(ctx: &Ctx, base: &ExperimentAttrs) -> ExperimentAttrs {
    let pick =
        |name: &str, current: &String| attribute(ctx, name).unwrap_or_else(|| current.clone());
    ExperimentAttrs {
        date: pick("date", &base.date),
        time: pick("time", &base.time),
        note: pick("note", &base.note),
        modality: pick("modality", &base.modality),
        uid: pick("UID", &base.uid),
        session_type: pick("session_type", &base.session_type),
        dicom: base.dicom.clone(),
    }
}

fn requested_type(
    ctx: &Ctx,
    want: fn(XsiType) -> bool,
    what: &str,
) -> Result<Option<XsiType>, ApiError> {
    match ctx.params.get("xsiType") {
        None => Ok(None),
        Some(raw) => match XsiType::parse(raw) {
            Some(t) if want(t) => Ok(Some(t)),
            _ => Err(ApiError::BadRequest(format!(
                "xsiType {raw} is not a {what} type this server supports"
            ))),
        },
    }
}

pub(crate) async fn put_experiment(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let scope = required_scope(&ctx.actor(), path).await?;
    let xsi = requested_type(ctx, XsiType::is_session, "session")?;
    if let Some(experiment) = &scope.experiment {
        scope.check(Action::Edit)?;
        // pullDataFromHeaders / fixScanTypes / triggerPipelines: nothing to
        // rebuild here (resource files are stored as sent), so they succeed.
        let current = scope.experiment_label().unwrap_or(&experiment.label);
        if let Some(label) = requested_label(ctx, current)? {
            relabel(
                ctx,
                &scope,
                ShareKind::Experiment,
                experiment,
                label.as_str(),
            )
            .await?;
        }
        apply_status(ctx, &experiment.id).await?;
        let attrs = experiment_attrs(ctx, &experiment.attrs);
        let xsi_type = xsi.map_or_else(|| experiment.xsi_type.clone(), |t| t.as_str().to_owned());
        if attrs != experiment.attrs || xsi_type != experiment.xsi_type {
            store
                .update_experiment(&experiment.id, &xsi_type, &attrs)
                .await?;
        }
        apply_fields(ctx, "experiment", &experiment.id).await?;
        return Ok(updated(&experiment.id));
    }
    if let (Some(subject), Some(_)) = (&scope.subject, &scope.subject_share) {
        // Every session lives in its subject's own project (a deliberate
        // difference from XNAT, which allows sessions of a shared subject).
        scope.check(Action::ReadData)?;
        return Err(ApiError::Conflict(format!(
            "Subject {} is shared into project {} from project {}; create its sessions in project {}",
            scope.subject_label().unwrap_or(&subject.label),
            scope.project.id,
            subject.project,
            subject.project
        )));
    }
    scope.check(Action::Create)?;
    let raw = path.experiment.as_deref().unwrap_or_default();
    let label = parse_label(raw, "experiment")?;
    let subject_id = match (&scope.subject, &path.subject) {
        (Some(subject), _) => subject.id.clone(),
        (None, Some(raw_subject)) => {
            // XNAT creates a subject named in the URL that does not exist yet.
            let subject_label = parse_label(raw_subject, "subject")?;
            create_subject(ctx, &scope, &subject_label).await?
        }
        (None, None) => {
            let wanted = attribute(ctx, "subject_ID").ok_or_else(|| {
                ApiError::BadRequest(
                    "creating an experiment needs a subject: use …/subjects/{S}/experiments/{E} or subject_ID=".to_owned(),
                )
            })?;
            match store.subject_by_id(&wanted).await? {
                Some(s) if s.project == scope.project.id => s.id,
                _ => store
                    .subject_by_label(&scope.project.id, &wanted)
                    .await?
                    .map(|s| s.id)
                    .ok_or_else(|| ApiError::not_found(format!("subject {wanted}")))?,
            }
        }
    };
    let xsi_type = xsi.unwrap_or(XsiType::MrSession);
    let mut attrs = experiment_attrs(ctx, &ExperimentAttrs::default());
    if attrs.modality.is_empty() {
        attrs.modality = xsi_type.modality().unwrap_or_default().to_owned();
    }
    let user = ctx.caller.require_user()?;
    let id = store
        .create_experiment(
            &ctx.state.config().site_id,
            &scope.project.id,
            &subject_id,
            label.as_str(),
            xsi_type.as_str(),
            &attrs,
            &user.username,
        )
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                ApiError::Conflict(format!(
                    "experiment label {label} is already in use in project {}",
                    scope.project.id
                ))
            } else {
                e.into()
            }
        })?;
    apply_fields(ctx, "experiment", &id).await?;
    apply_status(ctx, &id).await?;
    Ok(created(&id))
}

/// `?activate=true` / `?quarantine=true` on an experiment PUT (the caller
/// may edit it, checked before).
async fn apply_status(ctx: &Ctx, experiment_id: &str) -> Result<(), ApiError> {
    let status = if ctx.params.flag("quarantine") {
        Some(STATUS_QUARANTINE)
    } else if ctx.params.flag("activate") {
        Some(STATUS_ACTIVE)
    } else {
        None
    };
    if let Some(status) = status {
        ctx.state
            .store()
            .set_experiment_status(experiment_id, status)
            .await?;
    }
    Ok(())
}

pub(crate) const STATUS_ACTIVE: &str = "active";
pub(crate) const STATUS_QUARANTINE: &str = "quarantine";

/// Scan IDs are per-session strings (often the series number, sometimes a
/// type such as `t1w`); they become folder names, so keep them tame.
fn valid_scan_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn scan_attrs(ctx: &Ctx, base: &ScanAttrs) -> ScanAttrs {
    let pick =
        |name: &str, current: &String| attribute(ctx, name).unwrap_or_else(|| current.clone());
    ScanAttrs {
        scan_type: pick("type", &base.scan_type),
        series_description: pick("series_description", &base.series_description),
        quality: pick("quality", &base.quality),
        note: pick("note", &base.note),
        uid: pick("UID", &base.uid),
        modality: pick("modality", &base.modality),
        frames: pick("frames", &base.frames),
        dicom: base.dicom.clone(),
    }
}

pub(crate) async fn put_scan(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let scope = required_scope(&ctx.actor(), path).await?;
    let experiment = match &scope.experiment {
        Some(e) => e,
        None => {
            // Do not reveal whether the session exists to those who may not read.
            scope.check(Action::ReadData)?;
            return Err(ApiError::not_found(format!(
                "experiment {}",
                path.experiment.as_deref().unwrap_or("")
            )));
        }
    };
    let scan_id = path
        .scans
        .as_ref()
        .and_then(|s| s.single())
        .ok_or_else(|| ApiError::BadRequest("name exactly one scan ID to create".to_owned()))?;
    let xsi = requested_type(ctx, XsiType::is_scan, "scan")?;
    if let Some(scan) = store.scan(&experiment.id, scan_id).await? {
        scope.check(Action::Edit)?;
        let attrs = scan_attrs(ctx, &scan.attrs);
        let xsi_type = xsi.map_or_else(|| scan.xsi_type.clone(), |t| t.as_str().to_owned());
        store
            .put_scan(&experiment.id, scan_id, &xsi_type, &attrs)
            .await?;
        return Ok(updated(&scan.scan_id));
    }
    scope.check(Action::Create)?;
    if !valid_scan_id(scan_id) {
        return Err(ApiError::InvalidLabel(format!(
            "Invalid character in scan ID {scan_id:?}: use letters, digits, '_', '-', '.'"
        )));
    }
    let xsi_type = xsi.unwrap_or_else(|| default_scan_type(&experiment.xsi_type));
    let attrs = scan_attrs(ctx, &ScanAttrs::default());
    store
        .put_scan(&experiment.id, scan_id, xsi_type.as_str(), &attrs)
        .await?;
    Ok(created(scan_id))
}

fn default_scan_type(session_type: &str) -> XsiType {
    match XsiType::parse(session_type) {
        Some(XsiType::CtSession) => XsiType::CtScan,
        Some(XsiType::PetSession) => XsiType::PetScan,
        Some(XsiType::UsSession) => XsiType::UsScan,
        Some(XsiType::OtherDicomSession) => XsiType::OtherDicomScan,
        _ => XsiType::MrScan,
    }
}

/// Resource folders (relative to the archive root) of the given owners.
async fn resource_dirs(ctx: &Ctx, owners: &[Owner]) -> Result<Vec<String>, ApiError> {
    let mut dirs = Vec::new();
    for owner in owners {
        dirs.extend(
            ctx.state
                .store()
                .resources(owner)
                .await?
                .into_iter()
                .map(|r| r.dir),
        );
    }
    Ok(dirs)
}

async fn experiment_owners(ctx: &Ctx, experiment_id: &str) -> Result<Vec<Owner>, ApiError> {
    let mut owners = vec![Owner::Experiment(experiment_id.to_owned())];
    owners.extend(
        ctx.state
            .store()
            .scans(experiment_id)
            .await?
            .into_iter()
            .map(|s| Owner::Scan(s.pk)),
    );
    Ok(owners)
}

/// Removes folders after their rows are gone; a failure is logged, not
/// fatal, because the database no longer points at them.
pub(crate) async fn remove_dirs(ctx: &Ctx, dirs: Vec<String>) {
    let root = ctx.state.archive_root().to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        for dir in dirs {
            let full = root.join(&dir);
            if let Err(err) = std::fs::remove_dir_all(&full)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("could not remove {}: {err}", full.display());
            }
        }
    })
    .await;
}

/// DELETE of any archive object; always 200 on success (xnatpy rejects 204).
/// Files of deleted objects are removed from disk as well.
pub(crate) async fn delete(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    match path.level() {
        Level::Resource => return super::files::delete_resource(ctx, path).await,
        Level::File => return super::files::delete_file(ctx, path).await,
        Level::Project | Level::Subject | Level::Experiment | Level::Scan => {}
        _ => {
            return Err(ApiError::BadRequest("name the object to delete".to_owned()));
        }
    }
    let scope = required_scope(&ctx.actor(), path).await?;
    match path.level() {
        Level::Project => {
            scope.check(Action::Delete)?;
            store.delete_project(&scope.project.id).await?;
            remove_dirs(ctx, vec![scope.project.id.clone()]).await;
        }
        Level::Subject => {
            let Some(subject) = &scope.subject else {
                scope.check(Action::ReadData)?;
                return Err(ApiError::not_found(format!(
                    "subject {}",
                    path.subject.as_deref().unwrap_or("")
                )));
            };
            if scope.names_shared() {
                return remove_share(ctx, path, &scope, ShareKind::Subject, &subject.id).await;
            }
            scope.check(Action::Delete)?;
            let mut owners = vec![Owner::Subject(subject.id.clone())];
            for e in store.experiments(None, Some(&subject.id)).await? {
                owners.extend(experiment_owners(ctx, &e.id).await?);
            }
            let dirs = resource_dirs(ctx, &owners).await?;
            store.delete_subject(&subject.id).await?;
            remove_dirs(ctx, dirs).await;
        }
        Level::Experiment => {
            let Some(experiment) = &scope.experiment else {
                scope.check(Action::ReadData)?;
                return Err(ApiError::not_found(format!(
                    "experiment {}",
                    path.experiment.as_deref().unwrap_or("")
                )));
            };
            if scope.names_shared() {
                return remove_share(ctx, path, &scope, ShareKind::Experiment, &experiment.id)
                    .await;
            }
            scope.check(Action::Delete)?;
            let dirs = resource_dirs(ctx, &experiment_owners(ctx, &experiment.id).await?).await?;
            store.delete_experiment(&experiment.id).await?;
            remove_dirs(ctx, dirs).await;
        }
        _ => {
            scope.check(Action::ReadData)?;
            let experiment = scope.experiment(path)?;
            let scan_id = path.scans.as_ref().and_then(|s| s.single()).unwrap_or("");
            let scan = store
                .scan(&experiment.id, scan_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("scan {scan_id}")))?;
            scope.check(Action::Delete)?;
            let dirs = resource_dirs(ctx, &[Owner::Scan(scan.pk)]).await?;
            store.delete_scan(scan.pk).await?;
            remove_dirs(ctx, dirs).await;
        }
    }
    Ok(text(StatusCode::OK, ""))
}

/// DELETE of a shared object through a project it is shared into removes
/// only that share (XNAT deletes "in that project's context"). Through a
/// short form (`/data/experiments/ID`) the project is implicit, so nothing
/// is removed: 403 with where to send the DELETE.
async fn remove_share(
    ctx: &Ctx,
    path: &ArchivePath,
    scope: &Scope,
    kind: ShareKind,
    id: &str,
) -> Result<Response, ApiError> {
    if path.project.is_none() {
        scope.check(Action::ReadData)?;
        return Err(ApiError::Forbidden(format!(
            "Forbidden: you may not delete {id} here; DELETE /data/projects/{}/{}s/{id} removes its share into project {}",
            scope.project.id,
            match kind {
                ShareKind::Subject => "subject",
                ShareKind::Experiment => "experiment",
            },
            scope.project.id
        )));
    }
    scope.check_unshare()?;
    ctx.state
        .store()
        .unshare(kind, id, &scope.project.id)
        .await?;
    Ok(text(StatusCode::OK, ""))
}
