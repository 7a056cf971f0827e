//! Turning a parsed path into stored objects. Subjects and experiments are
//! found by accession ID or by label within the project; short forms
//! (`/data/subjects/ID`, `/data/experiments/ID`) find their project through
//! the object. Permission decisions stay in [`crate::access`]; this module
//! only gathers what they need.

use xnat_model::ArchivePath;

use super::Ctx;
use crate::access::{Access, Action};
use crate::error::ApiError;
use crate::store::{Experiment, Owner, Project, Scan, Subject};

/// The project context of a request and the objects named so far.
pub(crate) struct Scope {
    pub project: Project,
    pub access: Access,
    pub subject: Option<Subject>,
    pub experiment: Option<Experiment>,
}

/// The object owning resources at a path, with where its files live.
pub(crate) struct ResourceOwner {
    pub owner: Owner,
    /// Folder (relative to the archive root) holding this owner's resources.
    pub base_dir: String,
    /// `/data/...` URI prefix of this owner, for file URIs.
    pub uri: String,
    /// The scan, when the owner is one.
    pub scan: Option<Scan>,
}

pub(crate) async fn project_access(ctx: &Ctx, project: &Project) -> Result<Access, ApiError> {
    let role = match ctx.caller.username() {
        Some(username) => {
            ctx.state
                .store()
                .project_role(&project.id, username)
                .await?
        }
        None => None,
    };
    Ok(Access::of(&ctx.caller, project, role))
}

async fn load_project(ctx: &Ctx, id: &str) -> Result<Project, ApiError> {
    ctx.state
        .store()
        .project(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {id}")))
}

/// Resolves the project (and subject/experiment where named). `Ok(None)`
/// for site-wide paths such as `/data/experiments`.
pub(crate) async fn scope(ctx: &Ctx, path: &ArchivePath) -> Result<Option<Scope>, ApiError> {
    let store = ctx.state.store();
    let (project, mut subject, mut experiment) = if let Some(p) = &path.project {
        (load_project(ctx, p).await?, None, None)
    } else if let Some(s) = &path.subject {
        let subject = store
            .subject_by_id(s)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("subject {s}")))?;
        (
            load_project(ctx, &subject.project).await?,
            Some(subject),
            None,
        )
    } else if let Some(e) = &path.experiment {
        let experiment = store
            .experiment_by_id(e)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("experiment {e}")))?;
        (
            load_project(ctx, &experiment.project).await?,
            None,
            Some(experiment),
        )
    } else {
        return Ok(None);
    };
    let access = project_access(ctx, &project).await?;
    if subject.is_none()
        && let Some(s) = &path.subject
    {
        subject = match store.subject_by_id(s).await? {
            Some(found) if found.project == project.id => Some(found),
            _ => store.subject_by_label(&project.id, s).await?,
        };
    }
    if experiment.is_none()
        && let Some(e) = &path.experiment
    {
        experiment = match store.experiment_by_id(e).await? {
            Some(found) if found.project == project.id => Some(found),
            _ => store.experiment_by_label(&project.id, e).await?,
        };
        if let (Some(exp), Some(subj)) = (&experiment, &subject)
            && exp.subject_id != subj.id
        {
            experiment = None;
        }
    }
    if subject.is_none()
        && let Some(exp) = &experiment
    {
        subject = store.subject_by_id(&exp.subject_id).await?;
    }
    Ok(Some(Scope {
        project,
        access,
        subject,
        experiment,
    }))
}

/// Like [`scope`] but the path must have a project context.
pub(crate) async fn required_scope(ctx: &Ctx, path: &ArchivePath) -> Result<Scope, ApiError> {
    scope(ctx, path)
        .await?
        .ok_or_else(|| ApiError::NotFound("Not Found".to_owned()))
}

impl Scope {
    pub fn check(&self, action: Action) -> Result<(), ApiError> {
        self.access
            .check(action, &format!("project {}", self.project.id))
    }

    /// The subject the path names; 404 when it names none that exists.
    pub fn subject(&self, path: &ArchivePath) -> Result<&Subject, ApiError> {
        self.subject.as_ref().ok_or_else(|| {
            ApiError::not_found(format!("subject {}", path.subject.as_deref().unwrap_or("")))
        })
    }

    pub fn experiment(&self, path: &ArchivePath) -> Result<&Experiment, ApiError> {
        self.experiment.as_ref().ok_or_else(|| {
            ApiError::not_found(format!(
                "experiment {}",
                path.experiment.as_deref().unwrap_or("")
            ))
        })
    }

    /// The owner of the resources addressed by `path`.
    pub async fn resource_owner(
        &self,
        ctx: &Ctx,
        path: &ArchivePath,
    ) -> Result<ResourceOwner, ApiError> {
        let p = &self.project.id;
        if let Some(scans) = &path.scans {
            let exp = self.experiment(path)?;
            let scan_id = scans.single().ok_or_else(|| {
                ApiError::BadRequest("name exactly one scan for resources".to_owned())
            })?;
            let scan = ctx
                .state
                .store()
                .scan(&exp.id, scan_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("scan {scan_id}")))?;
            return Ok(ResourceOwner {
                owner: Owner::Scan(scan.pk),
                base_dir: format!("{p}/arc001/{}/SCANS/{}", exp.label, scan.scan_id),
                uri: format!(
                    "/data/experiments/{}/scans/{}",
                    exp.id,
                    super::render::encode_segment(&scan.scan_id)
                ),
                scan: Some(scan),
            });
        }
        if path.experiment.is_some() {
            let exp = self.experiment(path)?;
            return Ok(ResourceOwner {
                owner: Owner::Experiment(exp.id.clone()),
                base_dir: format!("{p}/arc001/{}/RESOURCES", exp.label),
                uri: format!("/data/experiments/{}", exp.id),
                scan: None,
            });
        }
        if path.subject.is_some() {
            let subj = self.subject(path)?;
            return Ok(ResourceOwner {
                owner: Owner::Subject(subj.id.clone()),
                base_dir: format!("{p}/subjects/{}/resources", subj.label),
                uri: format!("/data/projects/{p}/subjects/{}", subj.id),
                scan: None,
            });
        }
        Ok(ResourceOwner {
            owner: Owner::Project(p.clone()),
            base_dir: format!("{p}/resources"),
            uri: format!("/data/projects/{p}"),
            scan: None,
        })
    }
}
