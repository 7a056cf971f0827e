//! Slurm's job states and what they mean to an engine. Slurm has some twenty
//! states spread over squeue, scontrol, sacct and the completion log, each
//! printed slightly differently; the engine needs five. The parsers for each
//! source live here so they can be checked against recorded output without a
//! cluster.

use std::fmt;

use crate::SlurmJobId;

/// A Slurm job state as the tools print it (`squeue %T`, `scontrol`'s
/// `JobState=`, `sacct`'s `State`), see `squeue(1)` "JOB STATE CODES".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmJobState {
    BootFail,
    Cancelled,
    Completed,
    Completing,
    Configuring,
    Deadline,
    Failed,
    NodeFail,
    OutOfMemory,
    Pending,
    Preempted,
    Requeued,
    RequeueFed,
    RequeueHold,
    Resizing,
    ResvDelHold,
    Revoked,
    Running,
    Signaling,
    SpecialExit,
    StageOut,
    Stopped,
    Suspended,
    Timeout,
    /// A state this crate does not know (a newer Slurm); kept verbatim.
    Other(String),
}

impl SlurmJobState {
    /// Parses one state word. sacct appends the canceller (`CANCELLED by 0`)
    /// and squeue may append flags after `+`, so only the first word counts.
    pub fn parse(text: &str) -> Self {
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches('+');
        match word.to_ascii_uppercase().as_str() {
            "BOOT_FAIL" => Self::BootFail,
            "CANCELLED" => Self::Cancelled,
            "COMPLETED" => Self::Completed,
            "COMPLETING" => Self::Completing,
            "CONFIGURING" => Self::Configuring,
            "DEADLINE" => Self::Deadline,
            "FAILED" => Self::Failed,
            "NODE_FAIL" => Self::NodeFail,
            "OUT_OF_MEMORY" => Self::OutOfMemory,
            "PENDING" => Self::Pending,
            "PREEMPTED" => Self::Preempted,
            "REQUEUED" => Self::Requeued,
            "REQUEUE_FED" => Self::RequeueFed,
            "REQUEUE_HOLD" => Self::RequeueHold,
            "RESIZING" => Self::Resizing,
            "RESV_DEL_HOLD" => Self::ResvDelHold,
            "REVOKED" => Self::Revoked,
            "RUNNING" => Self::Running,
            "SIGNALING" => Self::Signaling,
            "SPECIAL_EXIT" => Self::SpecialExit,
            "STAGE_OUT" => Self::StageOut,
            "STOPPED" => Self::Stopped,
            "SUSPENDED" => Self::Suspended,
            "TIMEOUT" => Self::Timeout,
            _ => Self::Other(text.trim().to_owned()),
        }
    }

    /// True when Slurm will not change the state again on its own.
    pub fn is_final(&self) -> bool {
        !matches!(self.coarse(), Coarse::Queued | Coarse::Running)
    }

    fn coarse(&self) -> Coarse {
        use SlurmJobState as S;
        match self {
            S::Pending
            | S::Configuring
            | S::Requeued
            | S::RequeueFed
            | S::RequeueHold
            | S::ResvDelHold => Coarse::Queued,
            // COMPLETING: the script ended but the node is still cleaning up;
            // its final state (which may be FAILED) comes after. SUSPENDED
            // and STOPPED jobs have started and will resume.
            S::Running
            | S::Completing
            | S::Signaling
            | S::StageOut
            | S::Resizing
            | S::Suspended
            | S::Stopped => Coarse::Running,
            S::Completed => Coarse::Complete,
            S::Cancelled | S::Revoked => Coarse::Killed,
            S::BootFail
            | S::Deadline
            | S::Failed
            | S::NodeFail
            | S::OutOfMemory
            | S::Preempted
            | S::SpecialExit
            | S::Timeout
            | S::Other(_) => Coarse::Failed,
        }
    }
}

impl fmt::Display for SlurmJobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SlurmJobState as S;
        let text = match self {
            S::BootFail => "BOOT_FAIL",
            S::Cancelled => "CANCELLED",
            S::Completed => "COMPLETED",
            S::Completing => "COMPLETING",
            S::Configuring => "CONFIGURING",
            S::Deadline => "DEADLINE",
            S::Failed => "FAILED",
            S::NodeFail => "NODE_FAIL",
            S::OutOfMemory => "OUT_OF_MEMORY",
            S::Pending => "PENDING",
            S::Preempted => "PREEMPTED",
            S::Requeued => "REQUEUED",
            S::RequeueFed => "REQUEUE_FED",
            S::RequeueHold => "REQUEUE_HOLD",
            S::Resizing => "RESIZING",
            S::ResvDelHold => "RESV_DEL_HOLD",
            S::Revoked => "REVOKED",
            S::Running => "RUNNING",
            S::Signaling => "SIGNALING",
            S::SpecialExit => "SPECIAL_EXIT",
            S::StageOut => "STAGE_OUT",
            S::Stopped => "STOPPED",
            S::Suspended => "SUSPENDED",
            S::Timeout => "TIMEOUT",
            S::Other(text) => text,
        };
        f.write_str(text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coarse {
    Queued,
    Running,
    Complete,
    Failed,
    Killed,
}

/// Slurm's `ExitCode=code:signal` of a batch script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The script's exit code.
    pub code: i32,
    /// The signal that ended it, 0 when none.
    pub signal: i32,
}

impl ExitStatus {
    /// Parses `3:0`.
    pub fn parse(text: &str) -> Option<Self> {
        let (code, signal) = text.trim().split_once(':')?;
        Some(Self {
            code: code.parse().ok()?,
            signal: signal.parse().ok()?,
        })
    }
}

/// Where a [`SlurmJobInfo`] came from, from the most to the least live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    Squeue,
    Scontrol,
    Sacct,
    CompletionLog,
}

/// What Slurm says about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJobInfo {
    pub id: SlurmJobId,
    pub state: SlurmJobState,
    /// Slurm's `Reason` (why pending, why it ended: `NodeDown`,
    /// `NonZeroExitCode`, ...); `None` when Slurm says `None`.
    pub reason: Option<String>,
    /// The batch script's exit, when Slurm reported one.
    pub exit: Option<ExitStatus>,
    pub source: StateSource,
}

/// The engine's view of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for resources (or requeued).
    Queued,
    /// Started and not finished.
    Running,
    /// The script exited 0.
    Complete,
    /// It ended without success; `reason` is one sentence for the user,
    /// `exit_code` the script's own exit code when it exited by itself.
    Failed {
        reason: String,
        exit_code: Option<i32>,
    },
    /// Someone cancelled it (scancel, the engine, an admin).
    Killed { reason: String },
}

impl JobStatus {
    /// True for Complete, Failed and Killed.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl SlurmJobInfo {
    /// The engine's status, with a reason a user can read.
    pub fn status(&self) -> JobStatus {
        use SlurmJobState as S;
        let slurm_reason = || {
            self.reason
                .as_deref()
                .map(|r| format!(" (Slurm: {r})"))
                .unwrap_or_default()
        };
        // Only a script that exited by itself has an exit code worth
        // showing: Slurm reports 0:15 for a TIMEOUT and 0:0 for a NODE_FAIL.
        let exit_code = match (&self.state, self.exit) {
            (S::Failed | S::OutOfMemory, Some(ExitStatus { code, signal: 0 })) => Some(code),
            _ => None,
        };
        let failed = |reason: String| JobStatus::Failed { reason, exit_code };
        match self.state.coarse() {
            Coarse::Queued => JobStatus::Queued,
            Coarse::Running => JobStatus::Running,
            Coarse::Complete => JobStatus::Complete,
            Coarse::Killed => JobStatus::Killed {
                reason: match self.state {
                    S::Revoked => "the job was revoked (a sibling cluster ran it)".into(),
                    _ => "the job was cancelled".into(),
                },
            },
            Coarse::Failed => match &self.state {
                S::Failed => match self.exit {
                    Some(ExitStatus { signal, .. }) if signal != 0 => failed(format!(
                        "the job script was killed by signal {signal}{}",
                        slurm_reason()
                    )),
                    Some(ExitStatus { code, .. }) => {
                        failed(format!("the job script exited with code {code}"))
                    }
                    None => failed(format!("the job failed{}", slurm_reason())),
                },
                S::NodeFail => failed(format!(
                    "the node running the job stopped answering and the job was ended{}",
                    slurm_reason()
                )),
                S::Timeout => failed("the job reached its time limit".into()),
                S::OutOfMemory => failed("the job ran out of memory".into()),
                S::BootFail => failed(format!("the node failed to boot{}", slurm_reason())),
                S::Deadline => failed("the job reached its deadline before finishing".into()),
                S::Preempted => failed("the job was preempted by another job".into()),
                S::SpecialExit => failed(format!(
                    "the job ended in Slurm's SPECIAL_EXIT state{}",
                    slurm_reason()
                )),
                other => failed(format!("Slurm reported an unknown job state {other}")),
            },
        }
    }
}

/// `squeue --noheader --format=%i|%T|%r` output for job `id`.
pub(crate) fn parse_squeue(output: &str, id: &SlurmJobId) -> Option<SlurmJobInfo> {
    output.lines().find_map(|line| {
        let mut fields = line.trim().splitn(3, '|');
        let job = fields.next()?.trim();
        // Array/het jobs print `id_index`; ours are plain batch jobs.
        if job != id.to_string() {
            return None;
        }
        let state = SlurmJobState::parse(fields.next()?);
        Some(SlurmJobInfo {
            id: id.clone(),
            state,
            reason: fields.next().and_then(meaningful_reason),
            exit: None,
            source: StateSource::Squeue,
        })
    })
}

/// `scontrol show job -o <id>` (one line of `Key=Value` pairs); the same
/// shape as a `jobcomp/filetxt` line, so the completion log reuses it.
pub(crate) fn parse_key_values(
    line: &str,
    id: &SlurmJobId,
    source: StateSource,
) -> Option<SlurmJobInfo> {
    let value = |key: &str| {
        line.split_whitespace()
            .find_map(|token| token.strip_prefix(key)?.strip_prefix('='))
    };
    if value("JobId")? != id.to_string() {
        return None;
    }
    Some(SlurmJobInfo {
        id: id.clone(),
        state: SlurmJobState::parse(value("JobState")?),
        reason: value("Reason").and_then(meaningful_reason),
        exit: value("ExitCode").and_then(ExitStatus::parse),
        source,
    })
}

/// The last record for `id` in a `jobcomp/filetxt` log (a requeued job has
/// several; the newest wins).
pub(crate) fn parse_completion_log(log: &str, id: &SlurmJobId) -> Option<SlurmJobInfo> {
    log.lines()
        .rev()
        .find_map(|line| parse_key_values(line, id, StateSource::CompletionLog))
}

/// `sacct -X --noheader --parsable2 --format=JobIDRaw,State,ExitCode`.
pub(crate) fn parse_sacct(output: &str, id: &SlurmJobId) -> Option<SlurmJobInfo> {
    output.lines().rev().find_map(|line| {
        let mut fields = line.trim().split('|');
        if fields.next()? != id.to_string() {
            return None;
        }
        let state = SlurmJobState::parse(fields.next()?);
        Some(SlurmJobInfo {
            id: id.clone(),
            state,
            reason: None,
            exit: fields.next().and_then(ExitStatus::parse),
            source: StateSource::Sacct,
        })
    })
}

fn meaningful_reason(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text != "None" && text != "(null)").then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> SlurmJobId {
        SlurmJobId::from(n)
    }

    #[test]
    fn squeue_line() {
        let info = parse_squeue("2|NODE_FAIL|NodeDown\n", &id(2));
        assert_eq!(
            info.as_ref().map(|i| &i.state),
            Some(&SlurmJobState::NodeFail)
        );
        assert_eq!(info.and_then(|i| i.reason), Some("NodeDown".into()));
        assert_eq!(parse_squeue("21|RUNNING|None\n", &id(2)), None);
    }

    #[test]
    fn scontrol_and_completion_log_lines() {
        // Recorded from Slurm 22.05 (Debian 12), shortened.
        let line = "JobId=1 UserId=root(0) GroupId=root(0) Name=wrap JobState=FAILED Partition=debug \
                    NodeList=localhost DerivedExitCode=0:0 ExitCode=3:0 ";
        let info = parse_completion_log(line, &id(1));
        assert_eq!(
            info.as_ref().and_then(|i| i.exit),
            Some(ExitStatus { code: 3, signal: 0 })
        );
        assert_eq!(
            info.map(|i| i.status()),
            Some(JobStatus::Failed {
                reason: "the job script exited with code 3".into(),
                exit_code: Some(3)
            })
        );
        let scontrol =
            "JobId=7 JobName=x JobState=CANCELLED Reason=None Dependency=(null) ExitCode=0:15";
        let info = parse_key_values(scontrol, &id(7), StateSource::Scontrol);
        assert!(matches!(
            info.map(|i| i.status()),
            Some(JobStatus::Killed { .. })
        ));
    }

    #[test]
    fn sacct_line_with_canceller() {
        let info = parse_sacct("9|CANCELLED by 0|0:15\n", &id(9));
        assert_eq!(info.map(|i| i.state), Some(SlurmJobState::Cancelled));
    }

    #[test]
    fn every_state_maps() {
        use SlurmJobState as S;
        for (state, want) in [
            (S::Pending, "Queued"),
            (S::Requeued, "Queued"),
            (S::Running, "Running"),
            (S::Completing, "Running"),
            (S::Suspended, "Running"),
            (S::Completed, "Complete"),
            (S::Cancelled, "Killed"),
            (S::NodeFail, "Failed"),
            (S::Timeout, "Failed"),
            (S::OutOfMemory, "Failed"),
            (S::Preempted, "Failed"),
            (S::BootFail, "Failed"),
            (S::Deadline, "Failed"),
            (S::Other("NEW_STATE".into()), "Failed"),
        ] {
            let round_trip = SlurmJobState::parse(&state.to_string());
            assert_eq!(round_trip, state);
            let info = SlurmJobInfo {
                id: id(1),
                state,
                reason: None,
                exit: None,
                source: StateSource::Squeue,
            };
            let got = format!("{:?}", info.status());
            assert!(got.starts_with(want), "{:?} -> {got}", info.state);
        }
    }
}
