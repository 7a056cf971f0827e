//! Project accessibility and project roles, as XNAT defines them.

use std::fmt;
use std::str::FromStr;

/// Who can see a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accessibility {
    /// Only members see it; others get 404.
    Private,
    /// Listed to every user, data readable only by members.
    Protected,
    /// Readable by everyone, including anonymous users.
    Public,
}

impl Accessibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Protected => "protected",
            Self::Public => "public",
        }
    }
}

impl fmt::Display for Accessibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no accessibility level or role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}: expected one of {expected}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for Accessibility {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "private" => Ok(Self::Private),
            "protected" => Ok(Self::Protected),
            "public" => Ok(Self::Public),
            _ => Err(UnknownValue {
                what: "accessibility",
                value: s.to_owned(),
                expected: "private, protected, public",
            }),
        }
    }
}

/// A user's role in a project, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjectRole {
    Owner,
    Member,
    Collaborator,
}

impl ProjectRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
            Self::Collaborator => "collaborator",
        }
    }

    /// XNAT's display name for the role's group.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Owner => "Owners",
            Self::Member => "Members",
            Self::Collaborator => "Collaborators",
        }
    }

    /// Members and owners may create and edit data; collaborators only read.
    pub fn can_edit(self) -> bool {
        matches!(self, Self::Owner | Self::Member)
    }

    /// Only owners delete data and manage the project.
    pub fn can_delete(self) -> bool {
        matches!(self, Self::Owner)
    }
}

impl fmt::Display for ProjectRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProjectRole {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // XNAT accepts the group display names and the short names.
        match s.to_ascii_lowercase().trim_end_matches('s') {
            "owner" => Ok(Self::Owner),
            "member" => Ok(Self::Member),
            "collaborator" => Ok(Self::Collaborator),
            _ => Err(UnknownValue {
                what: "project role",
                value: s.to_owned(),
                expected: "owner, member, collaborator",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_roles_and_levels() {
        assert_eq!("Owners".parse::<ProjectRole>(), Ok(ProjectRole::Owner));
        assert_eq!("member".parse::<ProjectRole>(), Ok(ProjectRole::Member));
        assert!("admin".parse::<ProjectRole>().is_err());
        assert_eq!("PUBLIC".parse::<Accessibility>(), Ok(Accessibility::Public));
    }
}
