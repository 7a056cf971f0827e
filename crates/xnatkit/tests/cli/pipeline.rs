//! `xnatkit pipeline` against a real `xnatkit serve` with the real dcm2niix:
//! `list`, a `run --local` that converts a project and is skipped on the
//! rerun, the refusals (unknown name, no `--local`), and the server's own
//! engine through `enable`, `launch --wait`, `status`, `logs [--follow]`,
//! `cancel`.

use crate::support::{TestServer, cli, runtime};
use xnatkit_client::sample::seed_story_subjects;
use xnatkit_test_support::ci::tool;

#[test]
fn list_run_and_rerun() {
    if tool("dcm2niix", "dcm2niix").is_none() {
        return;
    }
    let rt = runtime();
    let server = TestServer::start();
    let (user, project) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &seed_story_subjects(&["S1", "S2", "S3"], 4, 32))
            .await;
        (user, project)
    });
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        cli(home.path())
            .args(args)
            .args(["--server", &server.url, "-u", &user.0])
            .env("XNAT_PASS", &user.1)
            .output()
            .unwrap()
    };

    let listed = cli(home.path())
        .args(["pipeline", "list", "--json"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "dcm2niix",
            "qa",
            "t2-map",
            "t1-sr-map",
            "adc-map",
            "mask-average"
        ]
    );

    let work_dir = work.path().to_str().unwrap();
    let args = [
        "pipeline",
        "run",
        "dcm2niix",
        "--project",
        &project,
        "--scan-type",
        "fl_thorax*",
        "--local",
        "--work-dir",
        work_dir,
        "--json",
    ];
    let first = run(&args);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    // S1 and S2 have a thorax scan; S3 (the last) has none.
    assert!(
        stderr.contains("2 scans: 2 processed, 0 already done"),
        "{stderr}"
    );
    let reports: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(
        reports
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "done"),
        "{reports}"
    );
    let nifti = rt.block_on(server.files_of(
        &user,
        &format!("/data/projects/{project}/subjects/S1/experiments/S1_CT1/scans/2/resources/NIFTI"),
    ));
    assert!(
        nifti.iter().any(|f| f.path.ends_with(".nii.gz")),
        "{nifti:?}"
    );

    let again = run(&args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("0 processed, 2 already done"), "{stderr}");

    let unknown = run(&[
        "pipeline",
        "run",
        "matlab",
        "--project",
        &project,
        "--local",
    ]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown pipeline \"matlab\"; the built-in ones are dcm2niix, qa"),
        "{stderr}"
    );

    let remote = run(&["pipeline", "run", "qa", "--project", &project]);
    assert!(!remote.status.success());
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(stderr.contains("add --local"), "{stderr}");
}

/// The server's engine driven by the CLI: `list --remote`, `enable`,
/// `launch --project --wait` (a bulk launch over the project's thorax
/// scans), `status`, `logs`, `cancel`.
#[test]
fn launch_on_the_servers_engine() {
    if tool("dcm2niix", "dcm2niix").is_none() {
        return;
    }
    let rt = runtime();
    let server = TestServer::start();
    let (user, project) = rt.block_on(async {
        let user = server.create_user().await;
        let project = server
            .project_with(&user, &seed_story_subjects(&["S1", "S2", "S3"], 4, 32))
            .await;
        (user, project)
    });
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        cli(home.path())
            .args(args)
            .args(["--server", &server.url, "-u", &user.0])
            .env("XNAT_PASS", &user.1)
            .output()
            .unwrap()
    };

    // Not enabled in the project yet: the launch is refused with the reason.
    let refused = run(&["pipeline", "launch", "dcm2niix-scan", "--project", &project]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not enabled in project"), "{stderr}");

    let enabled = run(&["pipeline", "enable", "dcm2niix-scan", "--project", &project]);
    assert!(
        enabled.status.success(),
        "{}",
        String::from_utf8_lossy(&enabled.stderr)
    );
    let listed = run(&[
        "pipeline",
        "list",
        "--remote",
        "--project",
        &project,
        "--json",
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let dcm = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["wrapper"] == "dcm2niix-scan")
        .unwrap();
    assert_eq!(dcm["enabled"], true, "{listed}");

    let launched = run(&[
        "pipeline",
        "launch",
        "dcm2niix-scan",
        "--project",
        &project,
        "--scan-type",
        "fl_thorax*",
        "--wait",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&launched.stderr);
    assert!(launched.status.success(), "{stderr}");
    assert!(stderr.contains("2 launched, 0 refused"), "{stderr}");
    let runs: serde_json::Value = serde_json::from_slice(&launched.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["status"] == "Complete"), "{runs:?}");
    let nifti = rt.block_on(server.files_of(
        &user,
        &format!("/data/projects/{project}/subjects/S1/experiments/S1_CT1/scans/2/resources/NIFTI"),
    ));
    assert!(
        nifti.iter().any(|f| f.path.ends_with(".nii.gz")),
        "{nifti:?}"
    );

    let id = runs[0]["id"].to_string();
    let status = run(&["pipeline", "status", "--project", &project, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status.as_array().unwrap().len(), 2);
    let logs = run(&["pipeline", "logs", &id]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("Convert"));
    let followed = run(&["pipeline", "logs", "--follow", &id]);
    assert!(
        followed.status.success(),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout).trim_end(),
        String::from_utf8_lossy(&logs.stdout).trim_end(),
        "an ended run's log, once"
    );
    let cancel = run(&["pipeline", "cancel", &id]);
    assert!(cancel.status.success());
    let after = run(&["pipeline", "status", &id, "--json"]);
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(
        after[0]["status"], "Complete",
        "a finished run stays finished"
    );
}

/// A server killed (SIGKILL) while a job runs: after the restart the job
/// ends Failed with the reason, ran once, and is not run again.
#[test]
fn a_crash_mid_job_fails_it_once() {
    use xnatkit_client::{Credentials, XnatClient};
    use xnatkit_test_support::serve::ServeProcess;

    let dir = tempfile::tempdir().unwrap();
    let password = "Adm1n-crash-test";
    let serve = || {
        let mut command = std::process::Command::new(crate::support::BIN);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--pipeline-workers",
                "1",
                "--data",
            ])
            .arg(dir.path().join("data"))
            .env("XNATKIT_ADMIN_PASSWORD", password);
        ServeProcess::spawn(command, &dir.path().join("server.log"), false)
    };
    let rt = runtime();
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
    let get = |client: &XnatClient, id: &str| -> serde_json::Value {
        let c = rt.block_on(client.container(id)).unwrap();
        serde_json::to_value(c).unwrap()
    };

    let mut first = serve();
    let client = connect(first.url());
    let work = tempfile::tempdir().unwrap();
    rt.block_on(async {
        client
            .put_object("/data/projects/CRASH", &[], "project")
            .await
            .unwrap();
        xnatkit_client::sample::upload_sample(
            &client,
            "CRASH",
            &crate::support::ct_subjects(&["C1"], "T1", 2, 16),
            work.path(),
            2,
        )
        .await
        .unwrap();
    });
    // The sleep outlives the killed server only briefly.
    let id = rt.block_on(async {
        let wid =
            crate::support::command_line_wrapper(&client, "CRASH", "napper", "sleep 20").await;
        let params = std::collections::BTreeMap::from([(
            "scan".to_owned(),
            "/data/projects/CRASH/subjects/C1/experiments/C1_CT1/scans/2".to_owned(),
        )]);
        client
            .launch("CRASH", wid, &params)
            .await
            .unwrap()
            .container_id
            .unwrap()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while get(&client, &id)["status"] != "Running" {
        assert!(std::time::Instant::now() < deadline, "never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    first.kill();

    let second = serve();
    let client = connect(second.url());
    let after = get(&client, &id);
    assert_eq!(after["status"], "Failed", "{after}");
    let history = after["history"].as_array().unwrap();
    assert_eq!(
        history.iter().filter(|h| h["status"] == "Running").count(),
        1,
        "{after}"
    );
    let message = history.last().unwrap()["message"].as_str().unwrap();
    assert!(message.contains("died"), "{message}");
    drop(second);
}

/// `pipeline run mask-average --local`, per session, on real data (rt-utils'
/// CT slices and their RTSTRUCT): the map of the session's scan with a map
/// resource, the RTSTRUCT of its ROI collection, the statistics as a
/// ROISTATS session resource (1,443 voxels, as `xnatkit maps mask-average`
/// and rt-utils count); a session without an ROI collection is reported as
/// lacking input; a rerun skips the finished one.
#[test]
fn mask_average_runs_locally_per_session() {
    let data = xnatkit_test_support::fixtures::shared_data().join("rtstruct-rtutils/mock_data");
    if !data.is_dir() {
        xnatkit_test_support::ci::skip::<()>(&format!("{} is missing", data.display()));
        return;
    }
    let rt = runtime();
    let server = TestServer::start();
    let user = rt.block_on(server.create_user());
    let project = "MASKLOCAL";
    rt.block_on(async {
        let client = server.user_client(&user).await;
        xnatkit_client::sample::ensure_project(&client, project)
            .await
            .unwrap();
        for subject in ["M1", "M2"] {
            let session =
                format!("/data/projects/{project}/subjects/{subject}/experiments/{subject}_CT");
            client
                .put_object(
                    &format!("/data/projects/{project}/subjects/{subject}"),
                    &[],
                    "subject",
                )
                .await
                .unwrap();
            client
                .put_object(&session, &[("xsiType", "xnat:ctSessionData")], "session")
                .await
                .unwrap();
            client
                .put_object(
                    &format!("{session}/scans/1"),
                    &[("xsiType", "xnat:ctScanData")],
                    "scan",
                )
                .await
                .unwrap();
            let map = format!("{session}/scans/1/resources/T2MAP");
            client.put_object(&map, &[], "resource").await.unwrap();
            for name in ["ct_1.dcm", "ct_2.dcm"] {
                client
                    .upload_file(&map, &format!("T2_map_dicom/{name}"), &data.join(name))
                    .await
                    .unwrap();
            }
            if subject == "M1" {
                let rois = format!("{session}/assessors/{subject}_ROIS");
                client
                    .put_object(&rois, &[("xsiType", "icr:roiCollectionData")], "assessor")
                    .await
                    .unwrap();
                let rtstruct = format!("{rois}/resources/RTSTRUCT");
                client.put_object(&rtstruct, &[], "resource").await.unwrap();
                client
                    .upload_file(&rtstruct, "rt.dcm", &data.join("rt.dcm"))
                    .await
                    .unwrap();
            }
        }
    });
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let run = || {
        cli(home.path())
            .args([
                "pipeline",
                "run",
                "mask-average",
                "--project",
                project,
                "--local",
            ])
            .args(["--work-dir", work.path().to_str().unwrap(), "--json"])
            .args(["--server", &server.url, "-u", &user.0])
            .env("XNAT_PASS", &user.1)
            .output()
            .unwrap()
    };
    let first = run();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "2 sessions: 1 processed, 0 already done, 1 without a map or an ROI collection"
        ),
        "{stderr}"
    );
    let stats = rt.block_on(async {
        let client = server.user_client(&user).await;
        client
            .text(&xnatkit_client::Request::get(
                format!("/data/projects/{project}/subjects/M1/experiments/M1_CT/resources/ROISTATS/files/rois.json"),
                "rois.json",
            ))
            .await
            .unwrap()
    });
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats[0]["voxels"], 1443, "{stats}");
    let again = run();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("0 processed, 1 already done"), "{stderr}");
}
