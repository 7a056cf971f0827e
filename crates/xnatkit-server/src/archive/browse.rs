//! What the web pages show, decided by the same rules as the REST API:
//! the projects a caller may see with their counts, one page of a
//! project's sessions, a project's members and their changes, and a
//! session with its scans, resources and assessors. Every function checks
//! through [`crate::access`] (via [`project_access`] or
//! [`Scope::check`]) before it reads, so a page can never show what the
//! matching REST listing would refuse.

use xnatkit_model::{Accessibility, ArchivePath, ProjectRole};

use super::{Actor, Error, Result, Scope, project_access, required_scope};
use crate::access::{Access, Action};
use crate::store::{
    Assessor, Owner, Project, ProjectRoleRow, Resource, Scan, SessionPage, SessionPageQuery,
    Subject,
};

/// A project as the projects page lists it.
#[derive(Debug, Clone)]
pub struct ProjectSummary {
    pub project: Project,
    /// The caller's own role, if any ("mine").
    pub role: Option<ProjectRole>,
    /// Counts, only where the caller may read the project's data.
    pub counts: Option<(i64, i64)>,
}

/// The projects the caller may see: its own first (by ID), then the
/// others it may list (public and protected), by ID. Site admins see
/// every project; those without a role come second.
pub async fn projects_overview(actor: &Actor<'_>) -> Result<Vec<ProjectSummary>> {
    let store = actor.state.store();
    let counts = store.project_counts().await?;
    let mut mine = Vec::new();
    let mut others = Vec::new();
    for project in store.projects().await? {
        let access = project_access(actor, &project).await?;
        if !access.lists_project() {
            continue;
        }
        let counts = access
            .can_read_data()
            .then(|| counts.get(&project.id).copied().unwrap_or_default());
        let summary = ProjectSummary {
            role: access.role,
            counts,
            project,
        };
        if summary.role.is_some() {
            mine.push(summary);
        } else {
            others.push(summary);
        }
    }
    mine.extend(others);
    Ok(mine)
}

/// Creates a new project owned by the caller (the web page's "New
/// project"), through the same rule as `PUT /data/projects/ID`; an ID in
/// use is a conflict here, never an update of that project.
pub async fn create_project(
    actor: &Actor<'_>,
    id: &str,
    name: &str,
    description: &str,
    accessibility: Accessibility,
) -> Result<String> {
    actor.caller.require_user()?;
    if actor.state.store().project(id).await?.is_some() {
        return Err(Error::Conflict(format!(
            "the project ID {id} is already in use; choose another"
        )));
    }
    let changes = super::objects::ProjectChanges {
        name: (!name.trim().is_empty()).then(|| name.trim().to_owned()),
        description: Some(description.trim().to_owned()),
        accessibility: Some(accessibility),
        ..Default::default()
    };
    match super::objects::put_project(actor, id, &changes).await? {
        super::objects::Written::Created(id) | super::objects::Written::Updated(id) => Ok(id),
    }
}

/// A project the caller may read the data of, with its standing there.
pub async fn readable_project(actor: &Actor<'_>, id: &str) -> Result<(Project, Access)> {
    let project = actor
        .state
        .store()
        .project(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("project {id}")))?;
    let access = project_access(actor, &project).await?;
    access.check(Action::ReadData, &format!("project {}", project.id))?;
    Ok((project, access))
}

/// One page of a project's own sessions (the REST listing's rows, paged
/// in SQL), after the read check.
pub async fn project_sessions(
    actor: &Actor<'_>,
    query: &SessionPageQuery<'_>,
) -> Result<(Project, Access, SessionPage)> {
    let (project, access) = readable_project(actor, query.project).await?;
    let page = actor.state.store().session_page(query).await?;
    Ok((project, access, page))
}

/// A project's members with their roles, for those who may read its data
/// (as `GET /data/projects/P/users`).
pub async fn project_members(
    actor: &Actor<'_>,
    id: &str,
) -> Result<(Project, Access, Vec<ProjectRoleRow>)> {
    let (project, access) = readable_project(actor, id).await?;
    let members = actor.state.store().project_roles(&project.id).await?;
    Ok((project, access, members))
}

/// Gives `username` `role` in the project (owners and site admins only).
/// A name that is no account changes nothing and is not reported, as in
/// `PUT /data/projects/P/users/ROLE/USER`.
pub async fn set_member_role(
    actor: &Actor<'_>,
    id: &str,
    username: &str,
    role: ProjectRole,
) -> Result<()> {
    let (project, access) = readable_project(actor, id).await?;
    access.check(Action::Manage, &format!("project {}", project.id))?;
    let store = actor.state.store();
    if store.user(username).await?.is_some() {
        store.set_project_role(&project.id, username, role).await?;
    }
    Ok(())
}

/// Removes `username` from the project, never its last owner.
pub async fn remove_member(actor: &Actor<'_>, id: &str, username: &str) -> Result<()> {
    let (project, access) = readable_project(actor, id).await?;
    access.check(Action::Manage, &format!("project {}", project.id))?;
    let store = actor.state.store();
    let members = store.project_roles(&project.id).await?;
    let Some(member) = members.iter().find(|m| m.username == username) else {
        return Err(Error::not_found(format!(
            "user {username} in project {}",
            project.id
        )));
    };
    let owners = members
        .iter()
        .filter(|m| m.role == ProjectRole::Owner)
        .count();
    if member.role == ProjectRole::Owner && owners <= 1 {
        return Err(Error::Conflict(format!(
            "cannot remove the last owner of project {}",
            project.id
        )));
    }
    store.remove_project_role(&project.id, username).await?;
    Ok(())
}

/// Changes the project's accessibility (owners and site admins only).
pub async fn set_accessibility(actor: &Actor<'_>, id: &str, level: Accessibility) -> Result<()> {
    let (project, access) = readable_project(actor, id).await?;
    access.check(Action::Manage, &format!("project {}", project.id))?;
    actor
        .state
        .store()
        .set_accessibility(&project.id, level)
        .await?;
    Ok(())
}

/// A subject page: the subject and its sessions as the project sees them.
pub async fn subject_view(
    actor: &Actor<'_>,
    path: &ArchivePath,
) -> Result<(Scope, Subject, Vec<(String, String)>)> {
    let scope = required_scope(actor, path).await?;
    scope.check(Action::ReadData)?;
    let subject = scope.subject(path)?.clone();
    let store = actor.state.store();
    let project = scope.project.id.clone();
    let mut sessions: Vec<(String, String)> = Vec::new();
    if subject.project == project {
        sessions.extend(
            store
                .experiments(None, Some(&subject.id))
                .await?
                .into_iter()
                .filter(|e| e.project == project)
                .map(|e| (e.id, e.label)),
        );
    }
    sessions.extend(
        store
            .experiments_shared_into(&project)
            .await?
            .into_iter()
            .filter(|(e, _)| e.subject_id == subject.id)
            .map(|(e, share)| (e.id, share.label)),
    );
    sessions.sort_by(|a, b| a.1.cmp(&b.1));
    Ok((scope, subject, sessions))
}

/// A scan with its resources.
#[derive(Debug, Clone)]
pub struct ScanView {
    pub scan: Scan,
    pub resources: Vec<Resource>,
}

/// An assessor with its resources.
#[derive(Debug, Clone)]
pub struct AssessorView {
    pub assessor: Assessor,
    pub resources: Vec<Resource>,
}

/// Everything the session page shows.
pub struct SessionView {
    pub scope: Scope,
    pub scans: Vec<ScanView>,
    pub resources: Vec<Resource>,
    pub assessors: Vec<AssessorView>,
}

/// A session with its scans, session resources and assessors, after the
/// read check of the project the path goes through.
pub async fn session_view(actor: &Actor<'_>, path: &ArchivePath) -> Result<SessionView> {
    let scope = required_scope(actor, path).await?;
    scope.check(Action::ReadData)?;
    let experiment = scope.experiment(path)?.clone();
    let store = actor.state.store();
    let mut scans = Vec::new();
    for scan in store.scans(&experiment.id).await? {
        let resources = store.resources(&Owner::Scan(scan.pk)).await?;
        scans.push(ScanView { scan, resources });
    }
    let resources = store
        .resources(&Owner::Experiment(experiment.id.clone()))
        .await?;
    let mut assessors = Vec::new();
    for assessor in store.assessors(&experiment.id).await? {
        let resources = store
            .resources(&Owner::Assessor(assessor.id.clone()))
            .await?;
        assessors.push(AssessorView {
            assessor,
            resources,
        });
    }
    Ok(SessionView {
        scope,
        scans,
        resources,
        assessors,
    })
}

/// The custom variables of the subject or session `path` names (sorted by
/// name) and whether the caller may change them, in a `scope` the caller
/// may read ([`subject_view`] and [`session_view`] return it, checked).
pub async fn custom_fields(
    actor: &Actor<'_>,
    scope: &Scope,
    path: &ArchivePath,
) -> Result<(Vec<(String, String)>, bool)> {
    scope.check(Action::ReadData)?;
    let owner = super::objects::field_owner(scope, path)?;
    let fields = actor.state.store().custom_fields(&owner).await?;
    Ok((fields, scope.check(Action::Edit).is_ok()))
}
