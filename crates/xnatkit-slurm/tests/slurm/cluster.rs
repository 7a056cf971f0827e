//! Jobs on the real single-node Slurm: success, failure with an exit code,
//! cancel, a node whose slurmd dies mid-job, and a controller that is not
//! there. These tests share one cluster and one of them kills slurmd, so
//! they run one at a time (the `slurm` test group in .config/nextest.toml,
//! and a file lock for plain `cargo test`).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use xnatkit_slurm::{
    ExitStatus, JobScript, JobStatus, SlurmCluster, SlurmError, SlurmJobId, SlurmJobInfo,
    SlurmJobState,
};
use xnatkit_test_support::ci;

use xnatkit_test_support::slurm::COMPLETION_LOG;
const POLL: Duration = Duration::from_millis(300);
/// A hang guard, not a speed check: a job here finishes in about a second,
/// and a dead node is noticed after SlurmdTimeout (10 s in the test conf) plus
/// the controller's ping cycle (about 30 s measured).
const GIVE_UP: Duration = Duration::from_secs(240);

struct Slurm {
    cluster: SlurmCluster,
    dir: TempDir,
    _serial: File,
}

/// The running cluster, or a skip (a failure under CI) naming the fix.
async fn slurm() -> Option<Slurm> {
    ci::tool("sbatch", "slurm-client")?;
    // One test at a time across processes: one of them takes the node down.
    let lock = tokio::task::spawn_blocking(xnatkit_test_support::slurm::node_lock)
        .await
        .unwrap();
    let cluster = SlurmCluster::new().with_completion_log(COMPLETION_LOG);
    if let Err(err) = cluster.ping().await {
        return ci::skip(&format!(
            "Slurm is not running ({err}); start it with `sudo scripts/setup-slurm.sh`"
        ));
    }
    Some(Slurm {
        cluster,
        dir: tempfile::tempdir().unwrap(),
        _serial: lock,
    })
}

impl Slurm {
    fn job(&self, name: &str, body: &str) -> JobScript {
        let dir = self.dir.path();
        JobScript::new(
            format!("xnatkit-test-{name}"),
            dir,
            body,
            dir.join(format!("{name}.out")),
            dir.join(format!("{name}.err")),
        )
    }

    async fn wait(&self, id: &SlurmJobId) -> SlurmJobInfo {
        tokio::time::timeout(GIVE_UP, self.cluster.wait(id, POLL))
            .await
            .unwrap_or_else(|_| panic!("job {id} did not finish within {GIVE_UP:?}"))
            .unwrap()
    }

    async fn wait_running(&self, id: &SlurmJobId) {
        let running = async {
            loop {
                match self.cluster.status(id).await.unwrap() {
                    JobStatus::Running => return,
                    JobStatus::Queued => tokio::time::sleep(POLL).await,
                    other => panic!("job {id} ended before it ran: {other:?}"),
                }
            }
        };
        tokio::time::timeout(GIVE_UP, running)
            .await
            .unwrap_or_else(|_| panic!("job {id} did not start within {GIVE_UP:?}"));
    }
}

#[tokio::test]
async fn a_job_that_exits_0_is_complete_and_wrote_its_file() {
    let Some(slurm) = slurm().await else { return };
    let mut job = slurm.job(
        "complete",
        "echo \"$GREETING\" > result.txt\necho \"ran on $SLURM_JOB_NODELIST\"",
    );
    // Characters sbatch's --export=NAME=value list could not carry.
    job.env
        .push(("GREETING".into(), "hello, 'world' \"x\"".into()));
    let id = slurm.cluster.submit(&job).await.unwrap();
    let info = slurm.wait(&id).await;
    assert_eq!(info.status(), JobStatus::Complete, "{info:?}");
    assert_eq!(info.exit, Some(ExitStatus { code: 0, signal: 0 }));
    let written = std::fs::read_to_string(slurm.dir.path().join("result.txt")).unwrap();
    assert_eq!(written, "hello, 'world' \"x\"\n");
    let stdout = std::fs::read_to_string(slurm.dir.path().join("complete.out")).unwrap();
    assert!(stdout.starts_with("ran on "), "{stdout}");
}

#[tokio::test]
async fn a_job_that_exits_3_is_failed_with_its_exit_code() {
    let Some(slurm) = slurm().await else { return };
    let job = slurm.job("exit3", "echo about to fail >&2\nexit 3");
    let id = slurm.cluster.submit(&job).await.unwrap();
    let info = slurm.wait(&id).await;
    assert_eq!(info.state, SlurmJobState::Failed);
    assert_eq!(info.exit, Some(ExitStatus { code: 3, signal: 0 }));
    assert_eq!(
        info.status(),
        JobStatus::Failed {
            reason: "the job script exited with code 3".into(),
            exit_code: Some(3)
        }
    );
    let stderr = std::fs::read_to_string(slurm.dir.path().join("exit3.err")).unwrap();
    assert_eq!(stderr, "about to fail\n");
    // The record that outlives MinJobAge says the same.
    let record = slurm.cluster.completion_record(&id).await.unwrap().unwrap();
    assert_eq!(record.state, SlurmJobState::Failed);
    assert_eq!(record.exit, info.exit);
    assert_eq!(record.status(), info.status());
}

#[tokio::test]
async fn a_cancelled_job_is_killed_and_cancelling_again_is_fine() {
    let Some(slurm) = slurm().await else { return };
    let job = slurm.job("cancel", "sleep 600");
    let id = slurm.cluster.submit(&job).await.unwrap();
    slurm.wait_running(&id).await;
    slurm.cluster.cancel(&id).await.unwrap();
    let info = slurm.wait(&id).await;
    assert_eq!(info.state, SlurmJobState::Cancelled);
    assert!(
        matches!(info.status(), JobStatus::Killed { .. }),
        "{info:?}"
    );
    slurm.cluster.cancel(&id).await.unwrap();
}

/// Slurm 22.05 ends a job over its `--time` as TIMEOUT (reason TimeLimit,
/// ExitCode 0:15) at its next time-limit check, about 75 s after the start
/// for a one-minute limit (measured here).
#[tokio::test]
async fn a_job_over_its_time_limit_fails_with_timeout() {
    let Some(slurm) = slurm().await else { return };
    let mut job = slurm.job("timeout", "sleep 600");
    job.time_limit = Some(Duration::from_secs(1)); // rounded up to one minute
    let id = slurm.cluster.submit(&job).await.unwrap();
    let info = slurm.wait(&id).await;
    assert_eq!(info.state, SlurmJobState::Timeout, "{info:?}");
    assert_eq!(
        info.status(),
        JobStatus::Failed {
            reason: "the job reached its time limit".into(),
            exit_code: None
        }
    );
}

#[tokio::test]
async fn a_job_no_node_can_hold_is_rejected_at_submission() {
    let Some(slurm) = slurm().await else { return };
    let mut job = slurm.job("too-big", "true");
    job.mem_mb = Some(1 << 40);
    let err = slurm.cluster.submit(&job).await.unwrap_err();
    assert!(matches!(err, SlurmError::Rejected { .. }), "{err}");
    assert!(err.to_string().contains("xnatkit-test-too-big"), "{err}");
}

#[tokio::test]
async fn an_unknown_job_id_is_a_typed_error() {
    let Some(slurm) = slurm().await else { return };
    let err = slurm
        .cluster
        .info(&SlurmJobId::from(60_000_000))
        .await
        .unwrap_err();
    assert!(matches!(err, SlurmError::UnknownJob { .. }), "{err}");
    let err = slurm
        .cluster
        .cancel(&SlurmJobId::from(60_000_000))
        .await
        .unwrap_err();
    assert!(matches!(err, SlurmError::UnknownJob { .. }), "{err}");
}

/// What Slurm 22.05 does when slurmd dies under a running job: the
/// controller marks the node "not responding" and then DOWN after
/// SlurmdTimeout, and (with JobRequeue=0) ends the job as NODE_FAIL with
/// reason NodeDown.
#[tokio::test]
async fn a_job_whose_slurmd_dies_ends_as_failed_with_a_message() {
    let Some(slurm) = slurm().await else { return };
    if !rustix::process::geteuid().is_root() {
        ci::skip::<()>("killing and restarting slurmd needs root");
        return;
    }
    let Some(pid) = xnatkit_test_support::slurm::slurmd_pid() else {
        ci::skip::<()>(
            "slurmd's pid file is not readable (not started by scripts/setup-slurm.sh?)",
        );
        return;
    };
    let job = slurm.job("node-fail", "sleep 600");
    let id = slurm.cluster.submit(&job).await.unwrap();
    slurm.wait_running(&id).await;

    let _restart = xnatkit_test_support::slurm::RestartSlurmd;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {pid} (slurmd)");

    let info = slurm.wait(&id).await;
    assert_eq!(info.state, SlurmJobState::NodeFail, "{info:?}");
    match info.status() {
        JobStatus::Failed { reason, .. } => {
            assert!(reason.contains("stopped answering"), "{reason}");
            assert!(reason.contains("NodeDown"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// A copy of the live conf whose controller is 127.0.0.1:`port`.
fn conf_pointing_at(port: u16, dir: &Path) -> PathBuf {
    let conf = std::env::var("SLURM_CONF").unwrap_or_else(|_| "/etc/slurm/slurm.conf".into());
    let text = std::fs::read_to_string(conf).unwrap();
    let mut out: String = text
        .lines()
        .filter(|l| !l.starts_with("SlurmctldPort=") && !l.starts_with("SlurmctldHost="))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!(
        "SlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={port}\n"
    ));
    let path = dir.join("elsewhere.conf");
    std::fs::write(&path, out).unwrap();
    path
}

#[tokio::test]
async fn a_controller_that_accepts_but_never_answers_times_out() {
    let Some(slurm) = slurm().await else { return };
    // Accepts connections (the kernel does, from the backlog) and never reads.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let cluster = SlurmCluster::new()
        .with_conf(conf_pointing_at(port, slurm.dir.path()))
        .with_command_timeout(Duration::from_secs(3));
    let err = cluster.status(&SlurmJobId::from(1)).await.unwrap_err();
    assert!(matches!(err, SlurmError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("slurmctld"), "{err}");
    let err = cluster
        .submit(&slurm.job("nowhere", "true"))
        .await
        .unwrap_err();
    assert!(matches!(err, SlurmError::Timeout { .. }), "{err}");
    drop(silent);
}

#[tokio::test]
async fn a_controller_port_that_refuses_is_unreachable() {
    let Some(slurm) = slurm().await else { return };
    // A TCP socket bound but never listening: the port stays ours and
    // every connection to it is refused.
    let bound = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    let any_port = rustix::net::SocketAddrV4::new(rustix::net::Ipv4Addr::LOCALHOST, 0);
    rustix::net::bind(&bound, &any_port).unwrap();
    let port = rustix::net::SocketAddrV4::try_from(rustix::net::getsockname(&bound).unwrap())
        .unwrap()
        .port();
    let cluster = SlurmCluster::new()
        .with_conf(conf_pointing_at(port, slurm.dir.path()))
        // squeue retries a refused connection for about 18 s before it
        // gives up; the limit is above that so its own answer is seen.
        .with_command_timeout(Duration::from_secs(60));
    let err = cluster.ping().await.unwrap_err();
    assert!(
        matches!(err, SlurmError::ControllerUnreachable { .. }),
        "{err}"
    );
    let err = cluster.status(&SlurmJobId::from(1)).await.unwrap_err();
    assert!(
        matches!(err, SlurmError::ControllerUnreachable { .. }),
        "{err}"
    );
    drop(bound);
}

#[tokio::test]
async fn missing_tools_are_a_typed_error() {
    let empty = tempfile::tempdir().unwrap();
    let cluster = SlurmCluster::new().with_bin_dir(empty.path());
    let job = JobScript::new("x", empty.path(), "true", "/dev/null", "/dev/null");
    let err = cluster.submit(&job).await.unwrap_err();
    assert!(matches!(err, SlurmError::ToolMissing { .. }), "{err}");
    assert!(err.to_string().contains("slurm-client"), "{err}");
}
