//! The one place that decides who may do what in a project (XNAT's
//! default project roles and accessibility): site admins everything; owners everything; members read,
//! create and edit; collaborators read. Non-members see public projects
//! read-only, see a protected project's row but none of its data, and do not
//! see private projects at all. Answers follow XNAT: 401 for anonymous
//! writes, 403 when the target is visible but the action is not allowed, 404
//! when the target is not visible. The prearchive and import rules built on
//! these are in [`ingest`].

pub mod ingest;

use xnatkit_model::{Accessibility, ProjectRole};

use crate::archive::Error;
use crate::store::{Project, User};

/// The authenticated user (if any) of one request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub user: Option<User>,
    /// The server-side session this request is bound to.
    pub session_id: Option<String>,
}

impl Caller {
    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.is_admin)
    }

    /// The user, or a refusal for anonymous callers.
    pub fn require_user(&self) -> Result<&User, Error> {
        self.user
            .as_ref()
            .ok_or_else(|| Error::NotLoggedIn("Login required: send credentials".to_owned()))
    }
}

/// What a request wants to do inside a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the project row itself.
    ReadProject,
    /// Read anything below the project (subjects, sessions, files).
    ReadData,
    /// Create a new object below the project.
    Create,
    /// Change an existing object (attributes, fields, labels, files).
    Edit,
    /// Delete data.
    Delete,
    /// Users, accessibility, project deletion.
    Manage,
}

/// A caller's standing in one project.
#[derive(Debug, Clone)]
pub struct Access {
    pub admin: bool,
    pub anonymous: bool,
    pub role: Option<ProjectRole>,
    pub accessibility: Accessibility,
}

impl Access {
    pub fn of(caller: &Caller, project: &Project, role: Option<ProjectRole>) -> Self {
        Self {
            admin: caller.is_admin(),
            anonymous: caller.user.is_none(),
            role,
            accessibility: project.accessibility,
        }
    }

    /// Allows `action` or returns XNAT's refusal.
    pub fn check(&self, action: Action, what: &str) -> Result<(), Error> {
        if self.admin {
            return Ok(());
        }
        let forbidden =
            || Error::Forbidden(format!("Forbidden: you may not {} {what}", verb(action)));
        let hidden = || Error::not_found(what);
        let writes = !matches!(action, Action::ReadProject | Action::ReadData);
        if let Some(role) = self.role {
            let allowed = match action {
                Action::ReadProject | Action::ReadData => true,
                Action::Create | Action::Edit => role.can_edit(),
                Action::Delete | Action::Manage => role.can_delete(),
            };
            return if allowed { Ok(()) } else { Err(forbidden()) };
        }
        if self.anonymous && writes {
            return Err(Error::NotLoggedIn(
                "Login required: send credentials".to_owned(),
            ));
        }
        match (self.accessibility, action) {
            (Accessibility::Public, Action::ReadProject | Action::ReadData) => Ok(()),
            (Accessibility::Public, _) => Err(forbidden()),
            (Accessibility::Protected, Action::ReadProject) => Ok(()),
            (Accessibility::Protected, Action::ReadData | Action::Edit) => Err(hidden()),
            (Accessibility::Protected, _) => Err(forbidden()),
            (Accessibility::Private, _) => Err(hidden()),
        }
    }

    /// May the caller read the data of this project (for site-wide listings)?
    pub fn can_read_data(&self) -> bool {
        self.check(Action::ReadData, "data").is_ok()
    }

    /// Does the project appear in the caller's project listing?
    pub fn lists_project(&self) -> bool {
        self.check(Action::ReadProject, "project").is_ok()
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::ReadProject | Action::ReadData => "read",
        Action::Create => "create in",
        Action::Edit => "edit",
        Action::Delete => "delete",
        Action::Manage => "manage",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(role: Option<ProjectRole>, anonymous: bool, accessibility: Accessibility) -> Access {
        Access {
            admin: false,
            anonymous,
            role,
            accessibility,
        }
    }

    fn code(a: &Access, action: Action) -> u16 {
        match a.check(action, "x") {
            Ok(()) => 200,
            Err(e) => crate::error::ApiError::from(e).status().as_u16(),
        }
    }

    #[test]
    fn matrix_follows_xnat() {
        use Accessibility::*;
        use Action::*;
        let member = access(Some(ProjectRole::Member), false, Private);
        assert_eq!(code(&member, Edit), 200);
        assert_eq!(code(&member, Delete), 403);
        let collaborator = access(Some(ProjectRole::Collaborator), false, Private);
        assert_eq!(code(&collaborator, ReadData), 200);
        assert_eq!(code(&collaborator, Create), 403);
        let other_private = access(None, false, Private);
        assert_eq!(code(&other_private, ReadProject), 404);
        let other_protected = access(None, false, Protected);
        assert_eq!(code(&other_protected, ReadProject), 200);
        assert_eq!(code(&other_protected, ReadData), 404);
        assert_eq!(code(&other_protected, Create), 403);
        let other_public = access(None, false, Public);
        assert_eq!(code(&other_public, ReadData), 200);
        assert_eq!(code(&other_public, Edit), 403);
        let anonymous_public = access(None, true, Public);
        assert_eq!(code(&anonymous_public, ReadData), 200);
        assert_eq!(code(&anonymous_public, Create), 401);
    }
}
