//! The ingest decisions (XNAT 1.8's prearchive REST rules and
//! `PrearcUtils.canModify` / `getPrearcDir`): who may see or change a
//! prearchive session, claim an Unassigned one, put data into a project's
//! prearchive or archive, and read or set a project's `prearchive_code`.
//! Every prearchive and import route, the receiver, and later the web pages
//! and DICOMweb ask these functions; no handler decides on its own.
//!
//! The rules, XNAT's defaults:
//! - a project's prearchive (listing, details, files, and every change:
//!   archive, commit, move away, delete, rebuild) is open to site admins and
//!   to those who may edit the project (owners, members); collaborators and
//!   public/protected visitors do not see it;
//! - Unassigned sessions are admin-only, except that any logged-in user may
//!   move one into a project they may create in
//!   (`allowNonAdminsToClaimUnassignedSessions`, true by default);
//! - putting data into a project (archive, move, import, `dest=/prearchive`)
//!   needs create rights there, and merging into an existing session
//!   (`overwrite=append|delete`) needs edit rights there as well;
//! - the `prearchive_code` is read by whoever sees the project and set by
//!   its owners (a project setting).

use super::{Access, Action};
use crate::access::Caller;
use crate::archive::Error;
use crate::import::Overwrite;
use crate::state::AppState;
use crate::store::{Project, UNASSIGNED};

/// How a request uses a prearchive session (or project) it names as source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceUse {
    /// List, read details, scans, files, zip.
    View,
    /// Archive, commit, build, move away, delete, rebuild.
    Change,
    /// Move out of Unassigned into a project (the destination is decided
    /// by [`may_put_into`]); for project sessions the same as `Change`.
    Claim,
}

/// The caller's standing in a project, or `None` when it does not exist.
pub async fn project_access(
    state: &AppState,
    caller: &Caller,
    project_id: &str,
) -> Result<Option<(Project, Access)>, Error> {
    let store = state.store();
    let Some(project) = store.project(project_id).await? else {
        return Ok(None);
    };
    let role = match caller.username() {
        Some(username) => store.project_role(&project.id, username).await?,
        None => None,
    };
    let access = Access::of(caller, &project, role);
    Ok(Some((project, access)))
}

/// Decides whether `caller` may use the prearchive of `project` (an ID,
/// or `Unassigned`) as `how` says; returns the canonical project ID.
pub async fn prearchive_source(
    state: &AppState,
    caller: &Caller,
    project: &str,
    how: SourceUse,
) -> Result<String, Error> {
    if project == UNASSIGNED {
        return unassigned_source(caller, how).map(|()| UNASSIGNED.to_owned());
    }
    let (found, access) = project_access(state, caller, project)
        .await?
        .ok_or_else(|| Error::not_found(format!("project {project}")))?;
    may_use_prearchive(&access, &found.id)?;
    Ok(found.id)
}

/// XNAT's `canModify`: the prearchive of a project is its editors'.
pub fn may_use_prearchive(access: &Access, project_id: &str) -> Result<(), Error> {
    access.check(
        Action::Edit,
        &format!("the prearchive of project {project_id}"),
    )
}

fn unassigned_source(caller: &Caller, how: SourceUse) -> Result<(), Error> {
    if caller.is_admin() {
        return Ok(());
    }
    caller.require_user()?;
    if how == SourceUse::Claim {
        return Ok(());
    }
    Err(Error::Forbidden(
        "Forbidden: only site administrators may use Unassigned prearchive sessions; move the session into your project first"
            .to_owned(),
    ))
}

/// Decides whether `caller` may put data into `project` (archive, move,
/// import, `dest=/prearchive`); `overwrite` other than `None` may merge into
/// an existing session and so needs edit rights as well. Returns the project.
pub async fn destination(
    state: &AppState,
    caller: &Caller,
    project: &str,
    overwrite: Overwrite,
) -> Result<Project, Error> {
    let (found, access) = project_access(state, caller, project)
        .await?
        .ok_or_else(|| Error::not_found(format!("project {project}")))?;
    may_put_into(&access, &found.id, overwrite)?;
    Ok(found)
}

/// The rule of [`destination`] for a project whose access is known (the
/// import pipeline decides per routing candidate).
pub fn may_put_into(access: &Access, project_id: &str, overwrite: Overwrite) -> Result<(), Error> {
    let what = format!("project {project_id}");
    access.check(Action::Create, &what)?;
    if overwrite != Overwrite::None {
        access.check(Action::Edit, &format!("existing sessions of {what}"))?;
    }
    Ok(())
}

/// Decides whether `caller` may move a prearchive session into `project`
/// (an ID, or `Unassigned`, which only admins may fill by hand); returns
/// the canonical target.
pub async fn move_destination(
    state: &AppState,
    caller: &Caller,
    project: &str,
) -> Result<String, Error> {
    if project == UNASSIGNED {
        return unassigned_source(caller, SourceUse::Change).map(|()| UNASSIGNED.to_owned());
    }
    destination(state, caller, project, Overwrite::None)
        .await
        .map(|p| p.id)
}

/// Who may read (`set == false`) or set a project's `prearchive_code`.
pub async fn prearchive_code_access(
    state: &AppState,
    caller: &Caller,
    project: &str,
    set: bool,
) -> Result<Project, Error> {
    let (found, access) = project_access(state, caller, project)
        .await?
        .ok_or_else(|| Error::not_found(format!("project {project}")))?;
    let action = if set {
        Action::Manage
    } else {
        Action::ReadProject
    };
    access.check(action, &format!("the settings of project {}", found.id))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use xnatkit_model::{Accessibility, ProjectRole};

    use super::*;

    fn access(role: Option<ProjectRole>, accessibility: Accessibility) -> Access {
        Access {
            admin: false,
            anonymous: false,
            role,
            accessibility,
        }
    }

    fn status(result: Result<(), Error>) -> u16 {
        result.map_or_else(
            |e| crate::error::ApiError::from(e).status().as_u16(),
            |()| 200,
        )
    }

    #[test]
    fn prearchive_is_for_editors_only() {
        use Accessibility::*;
        let member = access(Some(ProjectRole::Member), Private);
        assert_eq!(status(may_use_prearchive(&member, "P")), 200);
        let collaborator = access(Some(ProjectRole::Collaborator), Private);
        assert_eq!(status(may_use_prearchive(&collaborator, "P")), 403);
        assert_eq!(status(may_use_prearchive(&access(None, Public), "P")), 403);
        assert_eq!(status(may_use_prearchive(&access(None, Private), "P")), 404);
    }

    #[test]
    fn merging_needs_edit_and_creating_needs_create() {
        let member = access(Some(ProjectRole::Member), Accessibility::Private);
        assert_eq!(status(may_put_into(&member, "P", Overwrite::Replace)), 200);
        let collaborator = access(Some(ProjectRole::Collaborator), Accessibility::Public);
        assert_eq!(
            status(may_put_into(&collaborator, "P", Overwrite::None)),
            403
        );
    }

    #[test]
    fn unassigned_is_claimable_by_users_only() {
        let anonymous = Caller::default();
        assert_eq!(status(unassigned_source(&anonymous, SourceUse::Claim)), 401);
    }
}
