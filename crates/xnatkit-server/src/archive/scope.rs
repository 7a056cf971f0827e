//! Turning a parsed path into stored objects. Subjects and experiments are
//! found by accession ID or by label within the project, owned there or
//! shared into it (see [`crate::store::sharing`]); short forms
//! (`/data/subjects/ID`, `/data/experiments/ID`) find their project through
//! the object: its own project when the caller may read it, else a project
//! it is shared into that the caller may read. Permission decisions stay in
//! [`crate::access`]; this module only gathers what they need.

use xnatkit_model::ArchivePath;

use super::Actor;
use super::Error;
use crate::access::{Access, Action};
use crate::store::{Experiment, Owner, Project, Scan, Share, ShareKind, Subject};

/// The project context of a request and the objects named so far.
pub struct Scope {
    /// The project the path goes through (not always the objects' own).
    pub project: Project,
    pub access: Access,
    pub subject: Option<Subject>,
    pub experiment: Option<Experiment>,
    /// The subject's share into `project`, when it is owned elsewhere.
    pub subject_share: Option<Share>,
    /// The experiment's share into `project`, when it is owned elsewhere.
    pub experiment_share: Option<Share>,
    /// When the deepest object the path names is shared into `project`:
    /// its own project and the caller's standing there. Changes go there.
    source: Option<(Project, Access)>,
}

/// The object owning resources at a path, with where its files live.
pub struct ResourceOwner {
    pub owner: Owner,
    /// The project that owns the object (and so its files).
    pub project: String,
    /// Folder (relative to the archive root) holding this owner's resources.
    pub base_dir: String,
    /// `/data/...` URI prefix of this owner, for file URIs.
    pub uri: String,
    /// The scan, when the owner is one.
    pub scan: Option<Scan>,
    /// The assessor's label, when the owner is one.
    pub assessor_label: Option<String>,
}

pub async fn project_access(actor: &Actor<'_>, project: &Project) -> Result<Access, Error> {
    let role = match actor.caller.username() {
        Some(username) => {
            actor
                .state
                .store()
                .project_role(&project.id, username)
                .await?
        }
        None => None,
    };
    Ok(Access::of(actor.caller, project, role))
}

/// Project `id` when the caller may do `action` in it: 404 for an unknown
/// project, and the access rules' 404 or 403 otherwise.
pub async fn checked_project(
    actor: &Actor<'_>,
    id: &str,
    action: crate::access::Action,
) -> Result<Project, Error> {
    let project = load_project(actor, id).await?;
    project_access(actor, &project)
        .await?
        .check(action, &format!("project {id}"))?;
    Ok(project)
}

async fn load_project(actor: &Actor<'_>, id: &str) -> Result<Project, Error> {
    actor
        .state
        .store()
        .project(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("project {id}")))
}

/// The project a short-form path (`/data/experiments/ID`) goes through:
/// the object's own project when the caller may read its data, else the
/// first project it is shared into whose data the caller may read, else
/// its own project (whose checks then refuse).
async fn home_of(
    actor: &Actor<'_>,
    kind: ShareKind,
    id: &str,
    owner: &str,
) -> Result<(Project, Access, Option<Share>), Error> {
    let project = load_project(actor, owner).await?;
    let access = project_access(actor, &project).await?;
    if access.can_read_data() {
        return Ok((project, access, None));
    }
    for share in actor.state.store().shares(kind, id).await? {
        let Some(other) = actor.state.store().project(&share.project).await? else {
            continue;
        };
        let other_access = project_access(actor, &other).await?;
        if other_access.can_read_data() {
            return Ok((other, other_access, Some(share)));
        }
    }
    Ok((project, access, None))
}

/// Resolves the project (and subject/experiment where named). `Ok(None)`
/// for site-wide paths such as `/data/experiments`.
pub async fn scope(actor: &Actor<'_>, path: &ArchivePath) -> Result<Option<Scope>, Error> {
    let store = actor.state.store();
    let mut subject: Option<(Subject, Option<Share>)> = None;
    let mut experiment: Option<(Experiment, Option<Share>)> = None;
    let (project, access) = if let Some(p) = &path.project {
        let project = load_project(actor, p).await?;
        let access = project_access(actor, &project).await?;
        (project, access)
    } else if let Some(s) = &path.subject {
        let found = store
            .subject_by_id(s)
            .await?
            .ok_or_else(|| Error::not_found(format!("subject {s}")))?;
        let (project, access, share) =
            home_of(actor, ShareKind::Subject, &found.id, &found.project).await?;
        subject = Some((found, share));
        (project, access)
    } else if let Some(e) = &path.experiment {
        let found = store
            .experiment_by_id(e)
            .await?
            .ok_or_else(|| Error::not_found(format!("experiment {e}")))?;
        let (project, access, share) =
            home_of(actor, ShareKind::Experiment, &found.id, &found.project).await?;
        experiment = Some((found, share));
        (project, access)
    } else {
        return Ok(None);
    };
    if subject.is_none()
        && let Some(s) = &path.subject
    {
        subject = actor.state.store().subject_in(&project.id, s).await?;
    }
    if experiment.is_none()
        && let Some(e) = &path.experiment
    {
        experiment = actor.state.store().experiment_in(&project.id, e).await?;
        if let (Some((exp, _)), Some((subj, _))) = (&experiment, &subject)
            && exp.subject_id != subj.id
        {
            experiment = None;
        }
    }
    if subject.is_none()
        && let Some((exp, _)) = &experiment
        && let Some(found) = store.subject_by_id(&exp.subject_id).await?
    {
        let share = if found.project == project.id {
            None
        } else {
            store
                .share_into(ShareKind::Subject, &found.id, &project.id)
                .await?
        };
        subject = Some((found, share));
    }
    // The deepest named object decides where changes go.
    let owner_elsewhere = match (&experiment, &subject) {
        (Some((exp, _)), _) if path.experiment.is_some() => {
            (exp.project != project.id).then(|| exp.project.clone())
        }
        (_, Some((subj, _))) if path.subject.is_some() => {
            (subj.project != project.id).then(|| subj.project.clone())
        }
        _ => None,
    };
    let source = match owner_elsewhere {
        Some(id) => {
            let owner = load_project(actor, &id).await?;
            let owner_access = project_access(actor, &owner).await?;
            Some((owner, owner_access))
        }
        None => None,
    };
    let (subject, subject_share) = match subject {
        Some((s, share)) => (Some(s), share),
        None => (None, None),
    };
    let (experiment, experiment_share) = match experiment {
        Some((e, share)) => (Some(e), share),
        None => (None, None),
    };
    Ok(Some(Scope {
        project,
        access,
        subject,
        experiment,
        subject_share,
        experiment_share,
        source,
    }))
}

/// Like [`scope`] but the path must have a project context.
pub async fn required_scope(actor: &Actor<'_>, path: &ArchivePath) -> Result<Scope, Error> {
    scope(actor, path)
        .await?
        .ok_or_else(|| Error::NotFound("Not Found".to_owned()))
}

impl Scope {
    /// Allows `action` on what the path names or refuses as XNAT does.
    /// Reads are decided by the project the path goes through; changes to
    /// data shared into it need the right in the data's own project, and
    /// are refused with 403 (the data is visible here) when that is missing.
    pub fn check(&self, action: Action) -> Result<(), Error> {
        let what = format!("project {}", self.project.id);
        let Some((owner, owner_access)) = &self.source else {
            return self.access.check(action, &what);
        };
        if matches!(action, Action::ReadProject | Action::ReadData) {
            return self.access.check(action, &what);
        }
        self.access.check(Action::ReadData, &what)?;
        owner_access
            .check(action, &format!("project {}", owner.id))
            .map_err(|err| match err {
                Error::NotFound(_) => Error::Forbidden(format!(
                    "Forbidden: this is shared into project {} from project {}; it can only be changed there",
                    self.project.id, owner.id
                )),
                other => other,
            })
    }

    /// Is the deepest object the path names shared into the project the
    /// path goes through (owned elsewhere)?
    pub fn names_shared(&self) -> bool {
        self.source.is_some()
    }

    /// May the caller remove the share of what the path names from the
    /// project it goes through? The owners of either project may.
    pub fn check_unshare(&self) -> Result<(), Error> {
        let what = format!("project {}", self.project.id);
        self.access.check(Action::ReadData, &what)?;
        if let Some((_, owner_access)) = &self.source
            && owner_access.check(Action::Delete, "data").is_ok()
        {
            return Ok(());
        }
        self.access.check(Action::Delete, &what)
    }

    /// The subject's label in the project the path goes through.
    pub fn subject_label(&self) -> Option<&str> {
        match (&self.subject_share, &self.subject) {
            (Some(share), _) => Some(&share.label),
            (None, Some(subject)) => Some(&subject.label),
            _ => None,
        }
    }

    /// The experiment's label in the project the path goes through.
    pub fn experiment_label(&self) -> Option<&str> {
        match (&self.experiment_share, &self.experiment) {
            (Some(share), _) => Some(&share.label),
            (None, Some(experiment)) => Some(&experiment.label),
            _ => None,
        }
    }

    /// The subject the path names; 404 when it names none that exists.
    pub fn subject(&self, path: &ArchivePath) -> Result<&Subject, Error> {
        self.subject.as_ref().ok_or_else(|| {
            Error::not_found(format!("subject {}", path.subject.as_deref().unwrap_or("")))
        })
    }

    pub fn experiment(&self, path: &ArchivePath) -> Result<&Experiment, Error> {
        self.experiment.as_ref().ok_or_else(|| {
            Error::not_found(format!(
                "experiment {}",
                path.experiment.as_deref().unwrap_or("")
            ))
        })
    }

    /// The owner of the resources addressed by `path`.
    pub async fn resource_owner(
        &self,
        actor: &Actor<'_>,
        path: &ArchivePath,
    ) -> Result<ResourceOwner, Error> {
        let p = &self.project.id;
        if let Some(key) = &path.assessor {
            let exp = self.experiment(path)?;
            let assessor = actor
                .state
                .store()
                .assessor_in(&exp.id, key)
                .await?
                .ok_or_else(|| Error::not_found(format!("assessor {key}")))?;
            return Ok(super::assessors::resource_owner(exp, &assessor));
        }
        if let Some(scans) = &path.scans {
            let exp = self.experiment(path)?;
            let scan_id = scans
                .single()
                .ok_or_else(|| Error::Invalid("name exactly one scan for resources".to_owned()))?;
            let scan = actor
                .state
                .store()
                .scan(&exp.id, scan_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("scan {scan_id}")))?;
            return Ok(ResourceOwner {
                owner: Owner::Scan(scan.pk),
                project: exp.project.clone(),
                base_dir: format!(
                    "{}/arc001/{}/SCANS/{}",
                    exp.project, exp.label, scan.scan_id
                ),
                uri: format!(
                    "/data/experiments/{}/scans/{}",
                    exp.id,
                    xnatkit_model::encode_segment(&scan.scan_id)
                ),
                scan: Some(scan),
                assessor_label: None,
            });
        }
        if path.experiment.is_some() {
            let exp = self.experiment(path)?;
            return Ok(ResourceOwner {
                owner: Owner::Experiment(exp.id.clone()),
                project: exp.project.clone(),
                base_dir: format!("{}/arc001/{}/RESOURCES", exp.project, exp.label),
                uri: format!("/data/experiments/{}", exp.id),
                scan: None,
                assessor_label: None,
            });
        }
        if path.subject.is_some() {
            let subj = self.subject(path)?;
            return Ok(ResourceOwner {
                owner: Owner::Subject(subj.id.clone()),
                project: subj.project.clone(),
                base_dir: format!("{}/subjects/{}/resources", subj.project, subj.label),
                uri: format!("/data/projects/{p}/subjects/{}", subj.id),
                scan: None,
                assessor_label: None,
            });
        }
        Ok(ResourceOwner {
            owner: Owner::Project(p.clone()),
            project: p.clone(),
            base_dir: format!("{p}/resources"),
            uri: format!("/data/projects/{p}"),
            scan: None,
            assessor_label: None,
        })
    }
}
