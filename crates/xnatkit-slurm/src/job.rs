//! What a job is to Slurm: a batch script plus `sbatch` options. Kept apart
//! from the process plumbing so the argument list and the script text can be
//! checked without a cluster.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::SlurmError;

/// A Slurm job ID as `sbatch --parsable` printed it (the cluster part of
/// `id;cluster` is dropped: one engine talks to one cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlurmJobId(u64);

impl SlurmJobId {
    /// The numeric ID.
    pub fn get(&self) -> u64 {
        self.0
    }

    /// Parses `sbatch --parsable` output: `id` or `id;cluster`, possibly
    /// after warning lines (sbatch prints those on stdout in some versions),
    /// so the last non-empty line counts.
    pub fn from_parsable(output: &str) -> Option<Self> {
        let line = output
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())?;
        let id = line.split(';').next()?.trim();
        id.parse().ok().map(Self)
    }
}

impl From<u64> for SlurmJobId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl std::str::FromStr for SlurmJobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(Self)
    }
}

impl fmt::Display for SlurmJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One job: the shell body runs with `bash` on the node, in `workdir`, with
/// its output in `stdout`/`stderr` (paths the node must be able to write;
/// on a single-node site they are local paths).
#[derive(Debug, Clone)]
pub struct JobScript {
    /// `--job-name`; the engine uses it to find its jobs in `squeue`.
    pub name: String,
    /// `--chdir`.
    pub workdir: PathBuf,
    /// Shell commands, run by `bash` (without `-e`: the job's exit code is
    /// its last command's unless the body exits itself).
    pub body: String,
    /// `--output`.
    pub stdout: PathBuf,
    /// `--error`.
    pub stderr: PathBuf,
    /// `--time`; Slurm ends the job as TIMEOUT after it. Rounded up to a minute.
    pub time_limit: Option<Duration>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--mem` in MiB.
    pub mem_mb: Option<u64>,
    /// Environment variables for the job, on top of the few the cluster
    /// passes through (the server's own environment is not exported).
    pub env: Vec<(String, String)>,
}

impl JobScript {
    /// A job with no resource requests: Slurm's defaults apply.
    pub fn new(
        name: impl Into<String>,
        workdir: impl Into<PathBuf>,
        body: impl Into<String>,
        stdout: impl Into<PathBuf>,
        stderr: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name: name.into(),
            workdir: workdir.into(),
            body: body.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            time_limit: None,
            cpus: None,
            mem_mb: None,
            env: Vec::new(),
        }
    }

    /// The batch script sbatch reads on stdin.
    pub(crate) fn script_text(&self) -> String {
        format!(
            "#!/bin/bash\n# submitted by xnatkit: {}\n{}\n",
            self.name, self.body
        )
    }

    /// The `sbatch` options for this job (without `--parsable`, partition
    /// and the other cluster-wide ones). Rejects what sbatch would misread
    /// instead of failing later on the node.
    pub(crate) fn sbatch_args(&self) -> Result<Vec<String>, SlurmError> {
        let invalid = |problem: String| SlurmError::InvalidJob {
            name: self.name.clone(),
            problem,
        };
        if self.name.is_empty() || self.name.chars().any(char::is_control) {
            return Err(invalid(
                "the name is empty or has control characters".into(),
            ));
        }
        for (key, _) in &self.env {
            let mut chars = key.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(invalid(format!(
                    "environment variable name {key:?} is not a shell name"
                )));
            }
        }
        let path = |p: &PathBuf, what: &str| {
            p.to_str()
                .filter(|s| !s.is_empty() && !s.contains('\n'))
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("the {what} path {p:?} is empty or not UTF-8")))
        };
        // `%` starts a filename pattern in --output/--error (%j = job id);
        // doubling keeps a literal percent sign in a path literal.
        let literal = |s: String| s.replace('%', "%%");
        let mut args = vec![
            format!("--job-name={}", self.name),
            format!("--chdir={}", path(&self.workdir, "workdir")?),
            format!("--output={}", literal(path(&self.stdout, "stdout")?)),
            format!("--error={}", literal(path(&self.stderr, "stderr")?)),
        ];
        if let Some(limit) = self.time_limit {
            if limit.is_zero() {
                return Err(invalid("the time limit is zero".into()));
            }
            args.push(format!("--time={}", slurm_minutes(limit)));
        }
        if let Some(cpus) = self.cpus {
            if cpus == 0 {
                return Err(invalid("cpus is zero".into()));
            }
            args.push(format!("--cpus-per-task={cpus}"));
        }
        if let Some(mem) = self.mem_mb {
            if mem == 0 {
                return Err(invalid("mem is zero".into()));
            }
            args.push(format!("--mem={mem}M"));
        }
        Ok(args)
    }
}

/// `--time` in whole minutes, rounded up: Slurm's scheduler works in minutes
/// and a limit shorter than asked would kill a job that was promised more.
fn slurm_minutes(limit: Duration) -> u64 {
    limit.as_secs().div_ceil(60).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsable_output_with_and_without_cluster() {
        assert_eq!(SlurmJobId::from_parsable("42\n").map(|i| i.get()), Some(42));
        assert_eq!(
            SlurmJobId::from_parsable("sbatch: warning: x\n17;xnatkit\n").map(|i| i.get()),
            Some(17)
        );
        assert_eq!(SlurmJobId::from_parsable(""), None);
        assert_eq!(SlurmJobId::from_parsable("Submitted batch job 5"), None);
    }

    #[test]
    fn arguments_round_time_up_and_escape_percent() {
        let mut job = JobScript::new("n", "/w", "true", "/o/100%.out", "/o/err");
        job.time_limit = Some(Duration::from_secs(61));
        job.cpus = Some(2);
        job.mem_mb = Some(512);
        let args = job.sbatch_args().unwrap_or_default();
        assert!(args.contains(&"--output=/o/100%%.out".to_owned()));
        assert!(args.contains(&"--time=2".to_owned()));
        assert!(args.contains(&"--cpus-per-task=2".to_owned()));
        assert!(args.contains(&"--mem=512M".to_owned()));
    }

    #[test]
    fn bad_environment_names_are_rejected() {
        let mut job = JobScript::new("n", "/w", "true", "/o", "/e");
        job.env.push(("A-B".into(), "x".into()));
        assert!(matches!(
            job.sbatch_args(),
            Err(SlurmError::InvalidJob { .. })
        ));
    }
}
