//! `xnatkit serve --executor slurm` on the real single-node Slurm that
//! scripts/setup-slurm.sh starts: a bulk launch over 20 sessions converts
//! every scan through sbatch jobs, a built-in that is Rust code (QA) runs on
//! the node through `pipeline exec-builtin`, a failing command line ends
//! Failed with its own words, and a cancel reaches Slurm (`scancel`) and
//! leaves nothing attached.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use xnatkit_client::{Method, Request, XnatClient};
use xnatkit_slurm::SlurmCluster;
use xnatkit_test_support::ci;
use xnatkit_test_support::slurm::{COMPLETION_LOG, node_lock};

use crate::support::{TestServer, cli, command_line_wrapper, ct_subjects, runtime};

const GIVE_UP: Duration = Duration::from_secs(300);

/// The cluster is up (or the test is skipped, and fails under CI).
fn slurm_is_up(rt: &tokio::runtime::Runtime) -> bool {
    if ci::tool("sbatch", "slurm-client").is_none() || ci::tool("dcm2niix", "dcm2niix").is_none() {
        return false;
    }
    if let Err(err) = rt.block_on(SlurmCluster::new().ping()) {
        ci::skip::<()>(&format!(
            "Slurm is not running ({err}); start it with `sudo scripts/setup-slurm.sh`"
        ));
        return false;
    }
    true
}

fn slurm_server() -> TestServer {
    TestServer::start_args(&[
        "--executor",
        "slurm",
        "--pipeline-workers",
        "8",
        "--slurm-completion-log",
        COMPLETION_LOG,
        "--slurm-time-limit-mins",
        "10",
    ])
}

/// Project `project` with subject C1 and one CT session of two 16-slice
/// scans (C1_CT1, scans 1 and 2).
async fn one_session_project(admin: &XnatClient, project: &str) {
    admin
        .put_object(&format!("/data/projects/{project}"), &[], "project")
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    xnatkit_client::sample::upload_sample(
        admin,
        project,
        &ct_subjects(&["C1"], "T1", 2, 16),
        work.path(),
        2,
    )
    .await
    .unwrap();
}

async fn launch_on(client: &XnatClient, project: &str, wrapper: i64, scan: &str) -> String {
    let params = BTreeMap::from([("scan".to_owned(), scan.to_owned())]);
    client
        .launch(project, wrapper, &params)
        .await
        .unwrap()
        .container_id
        .unwrap()
}

async fn wait_for(
    client: &XnatClient,
    id: &str,
    wanted: &[&str],
) -> xnatkit_model::container::Container {
    let deadline = Instant::now() + GIVE_UP;
    loop {
        let run = client.container(id).await.unwrap();
        if wanted.contains(&run.status.as_str()) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} is still {} after {GIVE_UP:?}",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The message of a run's last history entry.
fn last_message(run: &xnatkit_model::container::Container) -> String {
    run.history
        .last()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default()
}

/// Nothing was attached: `scan` has no resource `label`.
async fn assert_no_resource(admin: &XnatClient, scan: &str, label: &str) {
    let resources = admin
        .send(&Request::new(
            Method::GET,
            format!("{scan}/resources?format=json"),
            "resources",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!resources.contains(label), "{resources}");
}

/// Slurm jobs of this server that squeue still shows as pending or running.
fn live_slurm_jobs(name: &str) -> String {
    let out = std::process::Command::new("squeue")
        .args(["--noheader", "--format=%j|%T", "--name", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_bulk_launch_over_twenty_sessions_runs_as_slurm_jobs() {
    let rt = runtime();
    if !slurm_is_up(&rt) {
        return;
    }
    let _node = node_lock();
    let server = slurm_server();
    let labels: Vec<String> = (1..=20).map(|i| format!("S{i:02}")).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let (user, project) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &ct_subjects(&labels, "T1", 2, 16))
            .await;
        (user, project)
    });
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = cli(home.path())
            .args(args)
            .args(["--server", &server.url, "-u", &user.0])
            .env("XNAT_PASS", &user.1)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        out
    };

    run(&["pipeline", "enable", "dcm2niix-scan", "--project", &project]);
    let launched = run(&[
        "pipeline",
        "launch",
        "dcm2niix-scan",
        "--project",
        &project,
        "--wait",
        "--json",
    ]);
    let runs: serde_json::Value = serde_json::from_slice(&launched.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 20, "{runs:?}");
    for run in runs {
        assert_eq!(run["status"], "Complete", "{run}");
        assert_eq!(run["backend"], "slurm", "{run}");
    }
    for label in ["S01", "S20"] {
        let nifti = rt.block_on(server.files_of(
            &user,
            &format!(
                "/data/projects/{project}/subjects/{label}/experiments/{label}_CT1/scans/2/resources/NIFTI"
            ),
        ));
        assert!(
            nifti.iter().any(|f| f.path.ends_with(".nii.gz")),
            "{label}: {nifti:?}"
        );
    }

    // QA is Rust code, not a program on the node: the job runs this very
    // binary's `pipeline exec-builtin`.
    run(&["pipeline", "enable", "qa-scan", "--project", &project]);
    let qa = run(&[
        "pipeline",
        "launch",
        "qa-scan",
        "--project",
        &project,
        "--target",
        &format!("/data/projects/{project}/subjects/S03/experiments/S03_CT1/scans/2"),
        "--wait",
        "--json",
    ]);
    let qa: serde_json::Value = serde_json::from_slice(&qa.stdout).unwrap();
    assert_eq!(qa[0]["status"], "Complete", "{qa}");
    let files = rt.block_on(server.files_of(
        &user,
        &format!(
            "/data/projects/{project}/subjects/S03/experiments/S03_CT1/assessors/S03_CT1_QA_2/resources/QA"
        ),
    ));
    assert!(
        files.iter().any(|f| f.path.ends_with("qa.json")),
        "{files:?}"
    );
}

#[test]
fn failures_and_cancels_go_both_ways() {
    let rt = runtime();
    if !slurm_is_up(&rt) {
        return;
    }
    let _node = node_lock();
    let server = slurm_server();
    let scan = "/data/projects/SLURMX/subjects/C1/experiments/C1_CT1/scans/2";
    rt.block_on(async {
        let admin = server.admin().await;
        one_session_project(&admin, "SLURMX").await;

        // A program that fails: the run says so in its own words, and no
        // output resource is attached.
        let failing = command_line_wrapper(
            &admin,
            "SLURMX",
            "failing",
            "echo 'the fit did not converge' >&2; exit 3",
        )
        .await;
        let id = launch_on(&admin, "SLURMX", failing, scan).await;
        let run = wait_for(&admin, &id, &["Failed", "Complete"]).await;
        assert_eq!(run.status, "Failed", "{run:?}");
        let message = last_message(&run);
        assert!(message.contains("the fit did not converge"), "{run:?}");
        assert_no_resource(&admin, scan, "FAILING").await;

        // A long job cancelled through the server: scancel reaches Slurm and
        // the run ends Killed with nothing attached.
        let napper = command_line_wrapper(&admin, "SLURMX", "napper", "sleep 300").await;
        let id = launch_on(&admin, "SLURMX", napper, scan).await;
        wait_for(&admin, &id, &["Running"]).await;
        let job_name = format!("xnatkit-job-{id}");
        let deadline = Instant::now() + GIVE_UP;
        while !live_slurm_jobs(&job_name).contains("RUNNING") {
            assert!(Instant::now() < deadline, "{job_name} never ran on Slurm");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        admin.kill_container(&id).await.unwrap();
        let run = wait_for(&admin, &id, &["Killed", "Failed", "Complete"]).await;
        assert_eq!(run.status, "Killed", "{run:?}");
        let deadline = Instant::now() + GIVE_UP;
        while !live_slurm_jobs(&job_name).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{job_name} still in squeue after the kill: {}",
                live_slurm_jobs(&job_name)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}

/// A server killed while its job runs on Slurm: the restarted server fails
/// the run (it never re-runs it) and cancels the Slurm job, so nothing
/// runs on behind a run that says Failed.
#[test]
fn a_restart_fails_the_run_and_cancels_its_slurm_job() {
    use xnatkit_client::Credentials;
    use xnatkit_test_support::serve::ServeProcess;

    let rt = runtime();
    if !slurm_is_up(&rt) {
        return;
    }
    let _node = node_lock();
    let dir = tempfile::tempdir().unwrap();
    let password = "Adm1n-slurm-restart";
    let serve = || {
        let mut command = std::process::Command::new(crate::support::BIN);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--executor",
                "slurm",
                "--slurm-completion-log",
                COMPLETION_LOG,
                "--data",
            ])
            .arg(dir.path().join("data"))
            .env("XNATKIT_ADMIN_PASSWORD", password);
        ServeProcess::spawn(command, &dir.path().join("server.log"), false)
    };
    let connect = |url: String| {
        rt.block_on(XnatClient::connect(
            &url,
            Credentials::Password {
                user: "admin".into(),
                password: password.into(),
            },
            Default::default(),
        ))
        .unwrap()
    };
    let mut first = serve();
    let admin = connect(first.url());
    let scan = "/data/projects/SLURMR/subjects/C1/experiments/C1_CT1/scans/2";
    let id = rt.block_on(async {
        one_session_project(&admin, "SLURMR").await;
        let napper = command_line_wrapper(&admin, "SLURMR", "longnap", "sleep 300").await;
        let id = launch_on(&admin, "SLURMR", napper, scan).await;
        wait_for(&admin, &id, &["Running"]).await;
        id
    });
    let job_name = format!("xnatkit-job-{id}");
    let deadline = Instant::now() + GIVE_UP;
    while live_slurm_jobs(&job_name).is_empty() {
        assert!(Instant::now() < deadline, "{job_name} never reached Slurm");
        std::thread::sleep(Duration::from_millis(300));
    }
    first.kill();
    assert!(
        !live_slurm_jobs(&job_name).is_empty(),
        "the Slurm job outlives its server"
    );

    let second = serve();
    let admin = connect(second.url());
    let run = rt.block_on(wait_for(&admin, &id, &["Failed", "Complete", "Killed"]));
    assert_eq!(run.status, "Failed", "{run:?}");
    let deadline = Instant::now() + GIVE_UP;
    while !live_slurm_jobs(&job_name).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{job_name} still in squeue after the restart: {}",
            live_slurm_jobs(&job_name)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(second);
}

/// The engine's side of a node that dies under a run: slurmd is killed
/// while a run's job sleeps on it; the controller ends the job NODE_FAIL
/// after SlurmdTimeout, and the server ends the run Failed with a message
/// that says the node stopped answering, with nothing attached.
#[test]
fn a_node_that_dies_mid_run_fails_the_run_with_a_message() {
    let rt = runtime();
    if !slurm_is_up(&rt) {
        return;
    }
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        ci::skip::<()>("killing and restarting slurmd needs root");
        return;
    }
    let _node = node_lock();
    let Some(pid) = xnatkit_test_support::slurm::slurmd_pid() else {
        ci::skip::<()>(
            "slurmd's pid file is not readable (not started by scripts/setup-slurm.sh?)",
        );
        return;
    };
    let server = slurm_server();
    let scan = "/data/projects/SLURMD/subjects/C1/experiments/C1_CT1/scans/2";
    rt.block_on(async {
        let admin = server.admin().await;
        one_session_project(&admin, "SLURMD").await;
        let napper = command_line_wrapper(&admin, "SLURMD", "nodenap", "sleep 300").await;
        let id = launch_on(&admin, "SLURMD", napper, scan).await;
        wait_for(&admin, &id, &["Running"]).await;
        let job_name = format!("xnatkit-job-{id}");
        let deadline = Instant::now() + GIVE_UP;
        while !live_slurm_jobs(&job_name).contains("RUNNING") {
            assert!(Instant::now() < deadline, "{job_name} never ran on Slurm");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        let _restart = xnatkit_test_support::slurm::RestartSlurmd;
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -KILL {pid} (slurmd)");

        let run = wait_for(&admin, &id, &["Failed", "Complete", "Killed"]).await;
        assert_eq!(run.status, "Failed", "{run:?}");
        let message = last_message(&run);
        assert!(
            message.contains("stopped answering") && message.contains("NodeDown"),
            "{run:?}"
        );
        assert_no_resource(&admin, scan, "NODENAP").await;
    });
}
