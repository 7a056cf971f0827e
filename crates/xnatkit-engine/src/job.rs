//! The life of a run: `Created` (queued) → `Running` → `Complete`,
//! `Failed` or `Killed`, the Container Service's own status words, so
//! xnatctl's `--wait` sees its terminal states. Terminal states never
//! change again: a late kill or a second finish of the same job is refused
//! here, and the store applies each move only from the state it expects
//! (compare-and-set), so two workers can never both finish one job.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    Created,
    Running,
    Complete,
    Failed,
    Killed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Running => "Running",
            Self::Complete => "Complete",
            Self::Failed => "Failed",
            Self::Killed => "Killed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Running,
            Self::Complete,
            Self::Failed,
            Self::Killed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Killed)
    }

    /// Whether a job in `self` may move to `next`.
    pub fn can_move_to(self, next: Self) -> bool {
        match self {
            Self::Created => matches!(next, Self::Running | Self::Failed | Self::Killed),
            Self::Running => next.is_terminal(),
            Self::Complete | Self::Failed | Self::Killed => false,
        }
    }

    /// The `wrk:workflowData` status XNAT shows for a container in this
    /// state.
    pub fn workflow_status(self) -> &'static str {
        match self {
            Self::Created => "Queued",
            Self::Running => "Running",
            Self::Complete => "Complete",
            Self::Failed => "Failed",
            Self::Killed => "Killed",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_are_final() {
        for end in [JobStatus::Complete, JobStatus::Failed, JobStatus::Killed] {
            assert!(end.is_terminal());
            assert!(!end.can_move_to(JobStatus::Running));
            assert!(!end.can_move_to(JobStatus::Failed));
            assert_eq!(JobStatus::parse(end.as_str()), Some(end));
        }
        assert!(JobStatus::Created.can_move_to(JobStatus::Running));
        assert!(JobStatus::Created.can_move_to(JobStatus::Killed));
        assert!(!JobStatus::Created.can_move_to(JobStatus::Complete));
        assert!(JobStatus::Running.can_move_to(JobStatus::Complete));
    }
}
