//! Projects, subjects, sessions (experiments) and scans: creating them,
//! updating their attributes and custom variables, renaming, deleting (with
//! their files), and removing a share instead of the object when the path
//! goes through a project it is shared into. Each change arrives as a typed
//! `…Changes` value; the REST edge builds those from XNAT's XPath
//! parameters (`xnat:subjectData/label=…`, `xnat:mrSessionData/date=…`, and
//! `…/fields/field[name=…]/field` for custom variables, as xnatpy and pyxnat
//! send them).

use xnatkit_model::{Accessibility, ArchivePath, Label, Level, XsiType};

use super::files::remove_dirs;
use super::{Actor, Error, Result, Scope, project_access, required_scope};
use crate::access::Action;
use crate::store::{
    CreateProjectOutcome, Experiment, ExperimentAttrs, ExperimentStatus, Owner, ScanAttrs,
    ShareKind, ShareOutcome, Subject,
};

/// Custom-variable changes: lower-cased name → value, `None` deletes.
pub type FieldChanges = Vec<(String, Option<String>)>;

/// Whether a PUT created the object or changed an existing one; holds the
/// object's ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Created(String),
    Updated(String),
}

/// What a project PUT asks for; `None` keeps what is stored.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub secondary_id: Option<String>,
    pub accessibility: Option<Accessibility>,
    pub fields: FieldChanges,
}

/// What a subject PUT asks for.
#[derive(Debug, Clone, Default)]
pub struct SubjectChanges {
    /// A new label (in the project the path goes through).
    pub label: Option<String>,
    pub fields: FieldChanges,
}

/// What a session PUT asks for; attribute `None`s keep what is stored.
#[derive(Debug, Clone, Default)]
pub struct ExperimentChanges {
    pub label: Option<String>,
    pub xsi_type: Option<XsiType>,
    pub date: Option<String>,
    pub time: Option<String>,
    pub note: Option<String>,
    pub modality: Option<String>,
    pub uid: Option<String>,
    pub session_type: Option<String>,
    /// The subject (ID or label) of a new session whose path names none.
    pub subject: Option<String>,
    pub status: Option<ExperimentStatus>,
    pub fields: FieldChanges,
}

/// What a scan PUT asks for; attribute `None`s keep what is stored.
#[derive(Debug, Clone, Default)]
pub struct ScanChanges {
    pub xsi_type: Option<XsiType>,
    pub scan_type: Option<String>,
    pub series_description: Option<String>,
    pub quality: Option<String>,
    pub note: Option<String>,
    pub uid: Option<String>,
    pub modality: Option<String>,
    pub frames: Option<String>,
}

fn unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

async fn apply_fields(actor: &Actor<'_>, owner: Owner, fields: &FieldChanges) -> Result<()> {
    if !fields.is_empty() {
        actor
            .state
            .store()
            .set_custom_fields(&owner, fields)
            .await?;
    }
    Ok(())
}

/// The owner of the custom variables of the subject or session `path`
/// names, which must exist.
pub(super) fn field_owner(scope: &Scope, path: &ArchivePath) -> Result<Owner> {
    match path.level() {
        Level::Subject => Ok(Owner::Subject(scope.subject(path)?.id.clone())),
        Level::Experiment => Ok(Owner::Experiment(scope.experiment(path)?.id.clone())),
        _ => Err(Error::Invalid("name a subject or session".to_owned())),
    }
}

/// Sets and removes custom variables of an existing subject or session
/// (the pages' Custom variables form). Unlike a PUT it never creates the
/// object; the rules are a PUT's: editing needs Edit in the project the
/// path goes through.
pub async fn set_custom_fields(
    actor: &Actor<'_>,
    path: &ArchivePath,
    fields: &FieldChanges,
) -> Result<()> {
    let scope = required_scope(actor, path).await?;
    scope.check(Action::ReadData)?;
    let owner = field_owner(&scope, path)?;
    scope.check(Action::Edit)?;
    apply_fields(actor, owner, fields).await
}

/// Creates project `id` or updates it.
pub async fn put_project(actor: &Actor<'_>, id: &str, changes: &ProjectChanges) -> Result<Written> {
    let store = actor.state.store();
    let user = actor.caller.require_user()?;
    if let Some(project) = store.project(id).await? {
        let access = project_access(actor, &project).await?;
        let what = format!("project {}", project.id);
        access.check(Action::Edit, &what)?;
        store
            .update_project(
                &project.id,
                changes.name.as_deref(),
                changes.description.as_deref(),
                changes.secondary_id.as_deref(),
            )
            .await?;
        if let Some(level) = changes.accessibility {
            access.check(Action::Manage, &what)?;
            store.set_accessibility(&project.id, level).await?;
        }
        apply_fields(actor, Owner::Project(project.id.clone()), &changes.fields).await?;
        return Ok(Written::Updated(project.id));
    }
    let label = Label::parse(id)
        .map_err(|e| Error::InvalidLabel(format!("Invalid character in project ID: {e}")))?;
    let name = changes.name.clone().unwrap_or_else(|| id.to_owned());
    let description = changes.description.clone().unwrap_or_default();
    let outcome = store
        .create_project(
            label.as_str(),
            &name,
            &description,
            changes.accessibility.unwrap_or(Accessibility::Protected),
            &user.username,
        )
        .await;
    match outcome {
        Ok(CreateProjectOutcome::Created) => {}
        Ok(CreateProjectOutcome::Taken) => {
            return Err(Error::Conflict(format!(
                "Requested new project conflicts with existing project {id}"
            )));
        }
        Ok(CreateProjectOutcome::Retired) => {
            return Err(Error::Conflict(format!(
                "Project ID {id} was used in a previously deleted project and cannot be reused"
            )));
        }
        Err(e) if unique_violation(&e) => {
            return Err(Error::Conflict(format!("project {id} already exists")));
        }
        Err(e) => return Err(e.into()),
    }
    apply_fields(
        actor,
        Owner::Project(label.as_str().to_owned()),
        &changes.fields,
    )
    .await?;
    Ok(Written::Created(label.as_str().to_owned()))
}

/// The new label asked for, if it differs from `current`.
fn new_label(wanted: Option<&str>, current: &str) -> Result<Option<Label>> {
    match wanted {
        Some(raw) if raw != current && !raw.is_empty() => Ok(Some(Label::parse(raw)?)),
        _ => Ok(None),
    }
}

fn parse_label(raw: &str, what: &str) -> Result<Label> {
    Label::parse(raw)
        .map_err(|e| Error::InvalidLabel(format!("Invalid character in {what} label: {e}")))
}

/// Creates the subject `path` names or updates it.
pub async fn put_subject(
    actor: &Actor<'_>,
    path: &ArchivePath,
    changes: &SubjectChanges,
) -> Result<Written> {
    let scope = required_scope(actor, path).await?;
    if let Some(subject) = &scope.subject {
        scope.check(Action::Edit)?;
        let current = scope.subject_label().unwrap_or(&subject.label);
        if let Some(label) = new_label(changes.label.as_deref(), current)? {
            relabel(actor, &scope, ShareKind::Subject, subject, label.as_str()).await?;
        }
        apply_fields(actor, Owner::Subject(subject.id.clone()), &changes.fields).await?;
        return Ok(Written::Updated(subject.id.clone()));
    }
    scope.check(Action::Create)?;
    let raw = path.subject.as_deref().unwrap_or_default();
    let label = parse_label(raw, "subject")?;
    let id = create_subject(actor, &scope, &label).await?;
    apply_fields(actor, Owner::Subject(id.clone()), &changes.fields).await?;
    Ok(Written::Created(id))
}

/// Renames what the path names in the project it goes through: the
/// object itself in its own project, or its share's label when the path
/// goes through a project it is shared into. A conflict when the label is
/// taken there (owned or shared).
async fn relabel(
    actor: &Actor<'_>,
    scope: &Scope,
    kind: ShareKind,
    object: &impl Labelled,
    label: &str,
) -> Result<()> {
    let store = actor.state.store();
    let project = &scope.project.id;
    let in_use = || Error::Conflict("Specified label is already in use.".to_owned());
    if object.project() != project {
        let user = actor.caller.require_user()?;
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
    renamed.map_err(|err| {
        if unique_violation(&err) {
            in_use()
        } else {
            err.into()
        }
    })
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

async fn create_subject(actor: &Actor<'_>, scope: &Scope, label: &Label) -> Result<String> {
    let user = actor.caller.require_user()?;
    actor
        .state
        .store()
        .create_subject(
            &actor.state.config().site_id,
            &scope.project.id,
            label.as_str(),
            &user.username,
        )
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                Error::Conflict(format!("subject {label} already exists"))
            } else {
                e.into()
            }
        })
}

fn experiment_attrs(changes: &ExperimentChanges, base: &ExperimentAttrs) -> ExperimentAttrs {
    let pick = |wanted: &Option<String>, current: &String| {
        wanted.clone().unwrap_or_else(|| current.clone())
    };
    ExperimentAttrs {
        date: pick(&changes.date, &base.date),
        time: pick(&changes.time, &base.time),
        note: pick(&changes.note, &base.note),
        modality: pick(&changes.modality, &base.modality),
        uid: pick(&changes.uid, &base.uid),
        session_type: pick(&changes.session_type, &base.session_type),
        dicom: base.dicom.clone(),
    }
}

/// Creates the session `path` names or updates it.
pub async fn put_experiment(
    actor: &Actor<'_>,
    path: &ArchivePath,
    changes: &ExperimentChanges,
) -> Result<Written> {
    let store = actor.state.store();
    let scope = required_scope(actor, path).await?;
    if let Some(experiment) = &scope.experiment {
        scope.check(Action::Edit)?;
        // pullDataFromHeaders / fixScanTypes / triggerPipelines: nothing to
        // rebuild here (resource files are stored as sent), so they succeed.
        let current = scope.experiment_label().unwrap_or(&experiment.label);
        if let Some(label) = new_label(changes.label.as_deref(), current)? {
            relabel(
                actor,
                &scope,
                ShareKind::Experiment,
                experiment,
                label.as_str(),
            )
            .await?;
        }
        apply_status(actor, &experiment.id, changes.status).await?;
        let attrs = experiment_attrs(changes, &experiment.attrs);
        let xsi_type = changes
            .xsi_type
            .map_or_else(|| experiment.xsi_type.clone(), |t| t.as_str().to_owned());
        if attrs != experiment.attrs || xsi_type != experiment.xsi_type {
            store
                .update_experiment(&experiment.id, &xsi_type, &attrs)
                .await?;
        }
        apply_fields(
            actor,
            Owner::Experiment(experiment.id.clone()),
            &changes.fields,
        )
        .await?;
        return Ok(Written::Updated(experiment.id.clone()));
    }
    if let (Some(subject), Some(_)) = (&scope.subject, &scope.subject_share) {
        // Every session lives in its subject's own project (a deliberate
        // difference from XNAT, which allows sessions of a shared subject).
        scope.check(Action::ReadData)?;
        return Err(Error::Conflict(format!(
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
            create_subject(actor, &scope, &subject_label).await?
        }
        (None, None) => {
            let wanted = changes.subject.clone().ok_or_else(|| {
                Error::Invalid(
                    "creating an experiment needs a subject: use …/subjects/{S}/experiments/{E} or subject_ID=".to_owned(),
                )
            })?;
            match store.subject_by_id(&wanted).await? {
                Some(s) if s.project == scope.project.id => s.id,
                _ => store
                    .subject_by_label(&scope.project.id, &wanted)
                    .await?
                    .map(|s| s.id)
                    .ok_or_else(|| Error::not_found(format!("subject {wanted}")))?,
            }
        }
    };
    let xsi_type = changes.xsi_type.unwrap_or(XsiType::MrSession);
    let mut attrs = experiment_attrs(changes, &ExperimentAttrs::default());
    if attrs.modality.is_empty() {
        attrs.modality = xsi_type.modality().unwrap_or_default().to_owned();
    }
    let user = actor.caller.require_user()?;
    let id = store
        .create_experiment(
            &actor.state.config().site_id,
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
                Error::Conflict(format!(
                    "experiment label {label} is already in use in project {}",
                    scope.project.id
                ))
            } else {
                e.into()
            }
        })?;
    apply_fields(actor, Owner::Experiment(id.clone()), &changes.fields).await?;
    apply_status(actor, &id, changes.status).await?;
    Ok(Written::Created(id))
}

/// Sets a session's status (the caller may edit it, checked before).
async fn apply_status(
    actor: &Actor<'_>,
    experiment_id: &str,
    status: Option<ExperimentStatus>,
) -> Result<()> {
    if let Some(status) = status {
        actor
            .state
            .store()
            .set_experiment_status(experiment_id, status)
            .await?;
    }
    Ok(())
}

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

fn scan_attrs(changes: &ScanChanges, base: &ScanAttrs) -> ScanAttrs {
    let pick = |wanted: &Option<String>, current: &String| {
        wanted.clone().unwrap_or_else(|| current.clone())
    };
    ScanAttrs {
        scan_type: pick(&changes.scan_type, &base.scan_type),
        series_description: pick(&changes.series_description, &base.series_description),
        quality: pick(&changes.quality, &base.quality),
        note: pick(&changes.note, &base.note),
        uid: pick(&changes.uid, &base.uid),
        modality: pick(&changes.modality, &base.modality),
        frames: pick(&changes.frames, &base.frames),
        dicom: base.dicom.clone(),
    }
}

/// Creates the scan `path` names or updates it.
pub async fn put_scan(
    actor: &Actor<'_>,
    path: &ArchivePath,
    changes: &ScanChanges,
) -> Result<Written> {
    let store = actor.state.store();
    let scope = required_scope(actor, path).await?;
    let experiment = match &scope.experiment {
        Some(e) => e,
        None => {
            // Do not reveal whether the session exists to those who may not read.
            scope.check(Action::ReadData)?;
            return Err(Error::not_found(format!(
                "experiment {}",
                path.experiment.as_deref().unwrap_or("")
            )));
        }
    };
    let scan_id = path
        .scans
        .as_ref()
        .and_then(|s| s.single())
        .ok_or_else(|| Error::Invalid("name exactly one scan ID to create".to_owned()))?;
    if let Some(scan) = store.scan(&experiment.id, scan_id).await? {
        scope.check(Action::Edit)?;
        let attrs = scan_attrs(changes, &scan.attrs);
        let xsi_type = changes
            .xsi_type
            .map_or_else(|| scan.xsi_type.clone(), |t| t.as_str().to_owned());
        store
            .put_scan(&experiment.id, scan_id, &xsi_type, &attrs)
            .await?;
        return Ok(Written::Updated(scan.scan_id));
    }
    scope.check(Action::Create)?;
    if !valid_scan_id(scan_id) {
        return Err(Error::InvalidLabel(format!(
            "Invalid character in scan ID {scan_id:?}: use letters, digits, '_', '-', '.'"
        )));
    }
    let xsi_type = changes
        .xsi_type
        .unwrap_or_else(|| default_scan_type(&experiment.xsi_type));
    let attrs = scan_attrs(changes, &ScanAttrs::default());
    store
        .put_scan(&experiment.id, scan_id, xsi_type.as_str(), &attrs)
        .await?;
    Ok(Written::Created(scan_id.to_owned()))
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
async fn resource_dirs(actor: &Actor<'_>, owners: &[Owner]) -> Result<Vec<String>> {
    let mut dirs = Vec::new();
    for owner in owners {
        dirs.extend(
            actor
                .state
                .store()
                .resources(owner)
                .await?
                .into_iter()
                .map(|r| r.dir),
        );
    }
    Ok(dirs)
}

async fn experiment_owners(actor: &Actor<'_>, experiment_id: &str) -> Result<Vec<Owner>> {
    let mut owners = vec![Owner::Experiment(experiment_id.to_owned())];
    owners.extend(
        actor
            .state
            .store()
            .scans(experiment_id)
            .await?
            .into_iter()
            .map(|s| Owner::Scan(s.pk)),
    );
    owners.extend(
        actor
            .state
            .store()
            .assessors(experiment_id)
            .await?
            .into_iter()
            .map(|a| Owner::Assessor(a.id)),
    );
    Ok(owners)
}

/// What deleting the subject, session or scan `path` names would remove,
/// and whether the caller may: the confirmation a page shows before
/// [`delete`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionPreview {
    /// `subject`, `session` or `scan`.
    pub what: &'static str,
    /// The label (or scan ID) in the project the path goes through.
    pub label: String,
    /// The owning project when the path goes through a project the object
    /// is shared into: then only that share goes, nothing else.
    pub share_of: Option<String>,
    /// The caller may do it ([`delete`] would not refuse with 403).
    pub allowed: bool,
    pub sessions: usize,
    pub scans: usize,
    pub files: i64,
    pub bytes: i64,
}

/// Counts what [`delete`] of `path` would remove, after the read check.
pub async fn deletion_preview(actor: &Actor<'_>, path: &ArchivePath) -> Result<DeletionPreview> {
    let store = actor.state.store();
    let scope = required_scope(actor, path).await?;
    scope.check(Action::ReadData)?;
    let shared = scope.names_shared();
    let allowed = if shared {
        scope.check_unshare().is_ok()
    } else {
        scope.check(Action::Delete).is_ok()
    };
    let mut preview = DeletionPreview {
        what: "subject",
        label: String::new(),
        share_of: None,
        allowed,
        sessions: 0,
        scans: 0,
        files: 0,
        bytes: 0,
    };
    let mut owners = Vec::new();
    match path.level() {
        Level::Subject => {
            let subject = scope.subject(path)?;
            preview.label = scope.subject_label().unwrap_or(&subject.label).to_owned();
            if shared {
                preview.share_of = Some(subject.project.clone());
            } else {
                owners.push(Owner::Subject(subject.id.clone()));
                for e in store.experiments(None, Some(&subject.id)).await? {
                    preview.sessions += 1;
                    owners.extend(experiment_owners(actor, &e.id).await?);
                }
            }
        }
        Level::Experiment => {
            let experiment = scope.experiment(path)?;
            preview.what = "session";
            preview.label = scope
                .experiment_label()
                .unwrap_or(&experiment.label)
                .to_owned();
            if shared {
                preview.share_of = Some(experiment.project.clone());
            } else {
                preview.sessions = 1;
                owners = experiment_owners(actor, &experiment.id).await?;
            }
        }
        Level::Scan => {
            let experiment = scope.experiment(path)?;
            let scan_id = path.scans.as_ref().and_then(|s| s.single()).unwrap_or("");
            let scan = store
                .scan(&experiment.id, scan_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("scan {scan_id}")))?;
            preview.what = "scan";
            preview.label = scan.scan_id.clone();
            // A scan goes with its session: through a share it is the
            // owner's to delete, as `delete` checks.
            preview.allowed = scope.check(Action::Delete).is_ok();
            owners.push(Owner::Scan(scan.pk));
        }
        _ => return Err(Error::Invalid("name a subject, session or scan".to_owned())),
    }
    for owner in &owners {
        if matches!(owner, Owner::Scan(_)) {
            preview.scans += 1;
        }
        for resource in store.resources(owner).await? {
            preview.files += resource.file_count;
            preview.bytes += resource.file_size;
        }
    }
    Ok(preview)
}

/// Deletes the project, subject, session or scan `path` names, with its
/// files; a subject or session shared into the path's project loses only
/// that share.
pub async fn delete(actor: &Actor<'_>, path: &ArchivePath) -> Result<()> {
    let store = actor.state.store();
    if !matches!(
        path.level(),
        Level::Project | Level::Subject | Level::Experiment | Level::Scan
    ) {
        return Err(Error::Invalid("name the object to delete".to_owned()));
    }
    let scope = required_scope(actor, path).await?;
    match path.level() {
        Level::Project => {
            scope.check(Action::Delete)?;
            store.delete_project(&scope.project.id).await?;
            remove_dirs(actor.state, vec![scope.project.id.clone()]).await;
        }
        Level::Subject => {
            let Some(subject) = &scope.subject else {
                scope.check(Action::ReadData)?;
                return Err(Error::not_found(format!(
                    "subject {}",
                    path.subject.as_deref().unwrap_or("")
                )));
            };
            if scope.names_shared() {
                return remove_share(actor, path, &scope, ShareKind::Subject, &subject.id).await;
            }
            scope.check(Action::Delete)?;
            let mut owners = vec![Owner::Subject(subject.id.clone())];
            for e in store.experiments(None, Some(&subject.id)).await? {
                owners.extend(experiment_owners(actor, &e.id).await?);
            }
            let dirs = resource_dirs(actor, &owners).await?;
            store.delete_subject(&subject.id).await?;
            remove_dirs(actor.state, dirs).await;
        }
        Level::Experiment => {
            let Some(experiment) = &scope.experiment else {
                scope.check(Action::ReadData)?;
                return Err(Error::not_found(format!(
                    "experiment {}",
                    path.experiment.as_deref().unwrap_or("")
                )));
            };
            if scope.names_shared() {
                return remove_share(actor, path, &scope, ShareKind::Experiment, &experiment.id)
                    .await;
            }
            scope.check(Action::Delete)?;
            let owners = experiment_owners(actor, &experiment.id).await?;
            let dirs = resource_dirs(actor, &owners).await?;
            store.delete_experiment(&experiment.id).await?;
            remove_dirs(actor.state, dirs).await;
        }
        _ => {
            scope.check(Action::ReadData)?;
            let experiment = scope.experiment(path)?;
            let scan_id = path.scans.as_ref().and_then(|s| s.single()).unwrap_or("");
            let scan = store
                .scan(&experiment.id, scan_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("scan {scan_id}")))?;
            scope.check(Action::Delete)?;
            let dirs = resource_dirs(actor, &[Owner::Scan(scan.pk)]).await?;
            store.delete_scan(scan.pk).await?;
            remove_dirs(actor.state, dirs).await;
        }
    }
    Ok(())
}

/// Deleting a shared object through a project it is shared into removes
/// only that share (XNAT deletes "in that project's context"). Through a
/// short form (`/data/experiments/ID`) the project is implicit, so nothing
/// is removed: refused with where to send the DELETE.
async fn remove_share(
    actor: &Actor<'_>,
    path: &ArchivePath,
    scope: &Scope,
    kind: ShareKind,
    id: &str,
) -> Result<()> {
    if path.project.is_none() {
        scope.check(Action::ReadData)?;
        return Err(Error::Forbidden(format!(
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
    actor
        .state
        .store()
        .unshare(kind, id, &scope.project.id)
        .await?;
    Ok(())
}
