//! The pipeline engine through its HTTP API against the real server and
//! the real dcm2niix: XNAT's Container Service routes (commands, enable,
//! launch, bulk launch, containers, logs, kill), outputs filed all or
//! nothing, the real error for a bad launch, a restart in the middle of a
//! job (the job ends Failed, once, and is never re-run; a queued job runs
//! after the restart), two servers on one PostgreSQL (no job claimed
//! twice), and runs on archive (a series pushed with storescu ends with a
//! NIFTI resource; a session uploaded file by file runs once it settles),
//! and what XNAT's launcher and history table read (the launch form, a
//! paged history, a log polled while it grows, finalize), and the site's
//! and projects' wrapper configurations that launches resolve.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use xnatkit_server::import::DicomReceiverConfig;

use crate::harness::{Auth, Backend, TestServer, entries_of, study, zip_of};

xnatkit_test_support::on_both_backends!(
    dcm2niix_on_a_scan_files_a_nifti_resource,
    bad_launches_answer_the_real_error,
    registered_commands_run_on_the_worker,
    a_killed_job_attaches_nothing,
    bulk_launch_over_twenty_sessions,
    qa_on_a_scan_files_its_report,
    container_service_housekeeping,
    launch_forms_and_the_history_table,
    wrapper_configurations_fill_launches,
    legacy_command_automation_runs_on_archive,
    mask_average_measures_a_map_inside_an_roi_collection,
);

fn dcm2niix_missing() -> bool {
    xnatkit_test_support::ci::tool("dcm2niix", "dcm2niix").is_none()
}

/// Imports a session of `series` CT series (`slices` 32×32 slices each)
/// into the archive; returns its accession ID.
async fn import_session(
    server: &TestServer,
    project: &str,
    subject: &str,
    session: &str,
    series: usize,
    slices: usize,
) -> String {
    let generated = study(series, slices, |i| {
        i.modality = "CT".to_owned();
        i.rows = 32;
        i.cols = 32;
    });
    let entries = entries_of(generated.dir.path(), &generated.files);
    let (status, body) = server
        .import(
            &format!("dest=/archive&project={project}&subject={subject}&session={session}"),
            zip_of(&entries),
            &server.admin(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let exp = server
        .json(
            &format!("/data/projects/{project}/experiments/{session}?format=json"),
            &server.admin(),
        )
        .await;
    exp["items"][0]["data_fields"]["ID"]
        .as_str()
        .expect("session ID")
        .to_owned()
}

/// The ID of wrapper `name`, read from `GET /xapi/commands`.
async fn wrapper_id(server: &TestServer, name: &str) -> i64 {
    let commands = server.json("/xapi/commands", &server.admin()).await;
    for command in commands.as_array().expect("array") {
        for wrapper in command["xnat"].as_array().expect("wrappers") {
            if wrapper["name"] == name {
                return wrapper["id"].as_i64().expect("wrapper id");
            }
        }
    }
    panic!("no wrapper {name} in {commands}");
}

async fn enable(server: &TestServer, project: &str, wid: i64) {
    let r = server
        .put(
            &format!("/xapi/projects/{project}/wrappers/{wid}/enabled"),
            &server.admin(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn post_json(
    server: &TestServer,
    path: &str,
    auth: &Auth,
    body: &Value,
) -> (StatusCode, Value) {
    let r = server
        .req(Method::POST, path, Some(auth))
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status();
    let text = r.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Waits until container `id` is in a terminal state (or `until`).
async fn wait_for(server: &TestServer, id: &str, until: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let c = server
            .json(&format!("/xapi/containers/{id}"), &server.admin())
            .await;
        let status = c["status"].as_str().unwrap_or_default();
        if until.contains(&status) {
            return c;
        }
        assert!(Instant::now() < deadline, "container {id} stuck: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const DONE: [&str; 3] = ["Complete", "Failed", "Killed"];

async fn file_names(server: &TestServer, uri: &str) -> Vec<String> {
    let r = server
        .get(&format!("{uri}/files?format=json"), &server.admin())
        .await;
    if r.status() == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    let rows: Value = r.json().await.expect("json");
    rows["ResultSet"]["Result"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|f| f["Name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn dcm2niix_on_a_scan_files_a_nifti_resource(server: &TestServer) {
    if dcm2niix_missing() {
        return;
    }
    let admin = server.admin();
    server.create_project("PIPE").await;
    let session = import_session(server, "PIPE", "S1", "S1_CT", 2, 6).await;
    let wid = wrapper_id(server, "dcm2niix-scan").await;

    // Not enabled in the project yet: refused with what to do.
    let scan = format!("/experiments/{session}/scans/1");
    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/PIPE/wrappers/{wid}/root/scan/launch"),
        &admin,
        &json!({ "scan": scan }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{report}");
    assert_eq!(report["status"], "failure");
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("not enabled in project PIPE"),
        "{report}"
    );

    enable(server, "PIPE", wid).await;
    let enabled = server
        .json(
            &format!("/xapi/projects/PIPE/wrappers/{wid}/enabled"),
            &admin,
        )
        .await;
    assert_eq!(
        enabled,
        json!({"enabled-for-site": true, "enabled-for-project": true, "project": "PIPE"})
    );

    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/PIPE/wrappers/{wid}/root/scan/launch"),
        &admin,
        &json!({ "scan": scan }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "success");
    let workflow = report["workflow-id"].as_i64().expect("numeric workflow-id");
    let id = report["container-id"].as_str().unwrap().to_owned();
    let done = wait_for(server, &id, &DONE).await;
    assert_eq!(done["status"], "Complete", "{done}");
    assert_eq!(done["workflow-id"], workflow.to_string());
    let statuses: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Created", "Running", "Complete"]);

    let names = file_names(
        server,
        &format!("/data/experiments/{session}/scans/1/resources/NIFTI"),
    )
    .await;
    assert!(names.iter().any(|n| n.ends_with(".nii.gz")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".json")), "{names:?}");
    // Scan 2 was not asked for.
    assert!(
        file_names(
            server,
            &format!("/data/experiments/{session}/scans/2/resources/NIFTI")
        )
        .await
        .is_empty()
    );

    // dcm2niix's own words in the log.
    let log = server
        .get(&format!("/xapi/containers/{id}/logs/stdout"), &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(log.contains("Convert"), "{log}");

    // The listing and the workflow show the run.
    let listed = server.json("/xapi/projects/PIPE/containers", &admin).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"].as_i64().map(|v| v.to_string()) == Some(id.clone()))
    );
    let wf = server
        .json(
            "/data/services/workflows/dcm2niix-scan?project=PIPE&experiment=S1_CT&display=ALL&format=json",
            &admin,
        )
        .await;
    let rows = wf["ResultSet"]["Result"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{wf}");
    assert_eq!(rows[0]["status"], "Complete");
    assert_eq!(rows[0]["wrk_workflowData_id"], workflow.to_string());
    assert_eq!(rows[0]["scan_id"], "1");

    // A rerun does not replace the output unless asked.
    let (_, again) = post_json(
        server,
        &format!("/xapi/projects/PIPE/wrappers/{wid}/launch"),
        &admin,
        &json!({ "scan": scan }),
    )
    .await;
    let again = wait_for(server, again["container-id"].as_str().unwrap(), &DONE).await;
    assert_eq!(again["status"], "Failed", "{again}");
    let history = again["history"].as_array().unwrap();
    let message = history.last().unwrap()["message"].as_str().unwrap();
    assert!(message.contains("overwrite=true"), "{message}");
    let (_, replaced) = post_json(
        server,
        &format!("/xapi/projects/PIPE/wrapper/{wid}/root/scan/launch?overwrite=true"),
        &admin,
        &json!({ "scan": scan }),
    )
    .await;
    let replaced = wait_for(server, replaced["container-id"].as_str().unwrap(), &DONE).await;
    assert_eq!(replaced["status"], "Complete", "{replaced}");
    let after = file_names(
        server,
        &format!("/data/experiments/{session}/scans/1/resources/NIFTI"),
    )
    .await;
    assert_eq!(after.len(), names.len(), "{after:?} vs {names:?}");
}

async fn bad_launches_answer_the_real_error(server: &TestServer) {
    let admin = server.admin();
    server.create_project("BAD").await;
    let session = import_session(server, "BAD", "S1", "S1_CT", 1, 2).await;
    let wid = wrapper_id(server, "dcm2niix-scan").await;
    enable(server, "BAD", wid).await;

    // Unknown wrapper: 404 with a failure report, not a fake success.
    let (status, report) = post_json(
        server,
        "/xapi/projects/BAD/wrappers/999999/launch",
        &admin,
        &json!({ "scan": format!("/experiments/{session}/scans/1") }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{report}");
    assert_eq!(report["status"], "failure");

    // A scan without DICOM: refused, nothing queued.
    let r = server
        .put(
            &format!("/data/experiments/{session}/scans/77?xsiType=xnat:ctScanData"),
            &admin,
        )
        .await;
    assert!(r.status().is_success());
    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/BAD/wrappers/{wid}/launch"),
        &admin,
        &json!({ "scan": format!("/experiments/{session}/scans/77") }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{report}");
    assert!(
        report["message"].as_str().unwrap().contains("DICOM"),
        "{report}"
    );

    // Someone who may not edit the session: 404 for a stranger, 403 for a
    // member who may only read.
    let stranger = server.create_user("stranger").await;
    let (status, _) = post_json(
        server,
        &format!("/xapi/projects/BAD/wrappers/{wid}/launch"),
        &stranger,
        &json!({ "scan": format!("/experiments/{session}/scans/1") }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let reader = server.create_user("reader").await;
    let r = server
        .put("/data/projects/BAD/users/Collaborators/reader", &admin)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let (status, _) = post_json(
        server,
        &format!("/xapi/projects/BAD/wrappers/{wid}/launch"),
        &reader,
        &json!({ "scan": format!("/experiments/{session}/scans/1") }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An input the wrapper does not have.
    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/BAD/wrappers/{wid}/launch"),
        &admin,
        &json!({ "scan": format!("/experiments/{session}/scans/1"), "bogus": "1" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{report}");
    // Nothing was queued by any of these.
    let listed = server.json("/xapi/projects/BAD/containers", &admin).await;
    assert_eq!(listed, json!([]));
}

/// A command line registered by an admin: inputs and outputs as folders.
fn listing_command(name: &str, line: &str) -> Value {
    json!({
        "name": name,
        "type": "xnatkit",
        "command-line": line,
        "mounts": [
            {"name": "in", "writable": false, "path": "/input"},
            {"name": "out", "writable": true, "path": "/output"}
        ],
        "outputs": [{"name": "listing", "mount": "out"}],
        "xnat": [{
            "name": format!("{name}-scan"),
            "contexts": ["xnat:imageScanData"],
            "external-inputs": [{"name": "scan", "type": "Scan", "required": true}],
            "derived-inputs": [{"name": "dicom", "type": "Resource", "matcher": "@.label == 'DICOM'",
                                "derived-from-wrapper-input": "scan", "provides-files-for-command-mount": "in"}],
            "output-handlers": [{"name": "h", "type": "Resource", "accepts-command-output": "listing",
                                 "as-a-child-of-wrapper-input": "scan", "label": "LISTING"}]
        }]
    })
}

/// Subscribes wrapper `wid` to sessions archived into `project`.
async fn subscribe(server: &TestServer, project: &str, name: &str, wid: i64) -> reqwest::Response {
    server
        .req(
            Method::POST,
            &format!("/xapi/projects/{project}/events/subscription"),
            Some(&server.admin()),
        )
        .json(&json!({
            "name": name,
            "active": true,
            "action-key": format!("org.nrg.containers.services.CommandActionProvider:{wid}"),
            "event-filter": {"event-type": "org.nrg.xnat.eventservice.events.SessionEvent", "status": "CREATED"},
            "act-as-event-user": false
        }))
        .send()
        .await
        .unwrap()
}

async fn register(server: &TestServer, command: &Value) -> i64 {
    let (status, body) = post_json(server, "/xapi/commands", &server.admin(), command).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body.as_i64().expect("bare ID")
}

async fn registered_commands_run_on_the_worker(server: &TestServer) {
    let admin = server.admin();
    server.create_project("REG").await;
    let session = import_session(server, "REG", "S1", "S1_CT", 1, 3).await;
    let scan = format!("/experiments/{session}/scans/1");

    // Docker images are refused with what to do; only admins register.
    let mut docker = listing_command("dock", "x");
    docker["type"] = json!("docker");
    docker["image"] = json!("xnat/dcm2niix:1.6");
    let (status, body) = post_json(server, "/xapi/commands", &admin, &docker).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("container runtime") && text.contains("\"xnatkit\""),
        "{text}"
    );
    let user = server.create_user("plain").await;
    let (status, _) = post_json(server, "/xapi/commands", &user, &listing_command("x", "ls")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The output's glob picks what is filed: the listing, not the log
    // beside it nor the file in a subfolder.
    let mut lister = listing_command(
        "lister",
        "ls /input > /output/listing.txt; echo log > /output/debug.log; mkdir /output/sub; echo x > /output/sub/deep.txt",
    );
    lister["outputs"][0]["glob"] = json!("*.txt");
    let good = register(server, &lister).await;
    let missing = register(
        server,
        &listing_command("broken", "no-such-program-xnatkit /input /output"),
    )
    .await;
    let mut picky = listing_command("picky", "echo x > /output/notes.txt");
    picky["outputs"][0]["glob"] = json!("*.nii.gz");
    picky["outputs"][0]["required"] = json!(true);
    register(server, &picky).await;
    let mut bad_glob = listing_command("badglob", "true");
    bad_glob["outputs"][0]["glob"] = json!("[a-");
    let (status, body) = post_json(server, "/xapi/commands", &admin, &bad_glob).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("not a valid pattern"), "{body}");
    let command = server.json(&format!("/xapi/commands/{good}"), &admin).await;
    assert_eq!(
        command["xnat"][0]["output-handlers"][0]["as-a-child-of"],
        "scan"
    );

    for (name, expect) in [
        ("lister-scan", "Complete"),
        ("broken-scan", "Failed"),
        ("picky-scan", "Failed"),
    ] {
        let wid = wrapper_id(server, name).await;
        let r = server
            .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        enable(server, "REG", wid).await;
        let (status, report) = post_json(
            server,
            &format!("/xapi/projects/REG/wrappers/{wid}/launch"),
            &admin,
            &json!({ "scan": scan }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let done = wait_for(server, report["container-id"].as_str().unwrap(), &DONE).await;
        assert_eq!(done["status"], expect, "{done}");
        let last = done["history"].as_array().unwrap().last().unwrap().clone();
        let message = last["message"].as_str().unwrap_or_default();
        if name == "broken-scan" {
            assert!(
                message.contains("127") && message.contains("not found"),
                "{message}"
            );
            assert_eq!(last["exitCode"], "127");
        }
        if name == "picky-scan" {
            assert!(
                message.contains("no files matching \"*.nii.gz\"")
                    && message.contains("nothing was attached"),
                "{message}"
            );
        }
    }
    let listing = file_names(
        server,
        &format!("/data/experiments/{session}/scans/1/resources/LISTING"),
    )
    .await;
    assert_eq!(listing, ["listing.txt"]);
    let _ = missing;
    // Delete, then it is gone.
    let r = server
        .delete(&format!("/xapi/commands/{good}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server
            .get(&format!("/xapi/commands/{good}"), &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn a_killed_job_attaches_nothing(server: &TestServer) {
    let admin = server.admin();
    server.create_project("KILL").await;
    let session = import_session(server, "KILL", "S1", "S1_CT", 1, 2).await;
    register(
        server,
        &listing_command("sleeper", "ls /input > /output/listing.txt; sleep 600"),
    )
    .await;
    let wid = wrapper_id(server, "sleeper-scan").await;
    server
        .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    enable(server, "KILL", wid).await;
    let (_, report) = post_json(
        server,
        &format!("/xapi/projects/KILL/wrappers/{wid}/launch"),
        &admin,
        &json!({ "scan": format!("/experiments/{session}/scans/1") }),
    )
    .await;
    let id = report["container-id"].as_str().unwrap().to_owned();
    wait_for(server, &id, &["Running"]).await;
    let r = server
        .post(&format!("/xapi/projects/KILL/containers/{id}/kill"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = wait_for(server, &id, &DONE).await;
    assert_eq!(done["status"], "Killed", "{done}");
    assert!(
        file_names(
            server,
            &format!("/data/experiments/{session}/scans/1/resources/LISTING")
        )
        .await
        .is_empty()
    );
    // Killing again changes nothing; an unknown one is 404.
    assert_eq!(
        server
            .post(&format!("/xapi/containers/{id}/kill"), &admin)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(wait_for(server, &id, &DONE).await["status"], "Killed");
    assert_eq!(
        server
            .post("/xapi/containers/424242/kill", &admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn bulk_launch_over_twenty_sessions(server: &TestServer) {
    if dcm2niix_missing() {
        return;
    }
    let admin = server.admin();
    server.create_project("BULK").await;
    let mut targets = Vec::new();
    for n in 1..=20 {
        let session =
            import_session(server, "BULK", &format!("S{n}"), &format!("S{n}_CT"), 1, 3).await;
        targets.push(format!("/experiments/{session}/scans/1"));
    }
    let wid = wrapper_id(server, "dcm2niix-scan").await;
    enable(server, "BULK", wid).await;
    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/BULK/wrappers/{wid}/root/scan/bulklaunch"),
        &admin,
        &json!({ "scan": serde_json::to_string(&targets).unwrap() }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["successes"].as_array().unwrap().len(),
        20,
        "{report}"
    );
    assert_eq!(report["failures"], json!([]));
    for success in report["successes"].as_array().unwrap() {
        let done = wait_for(server, success["container-id"].as_str().unwrap(), &DONE).await;
        assert_eq!(done["status"], "Complete", "{done}");
    }
    for target in &targets {
        let names = file_names(server, &format!("/data{target}/resources/NIFTI")).await;
        assert!(
            names.iter().any(|n| n.ends_with(".nii.gz")),
            "{target}: {names:?}"
        );
    }
}

/// A graceful stop in the middle of a job ends it Failed (once, never
/// re-run); a job still queued then runs after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_job_fails_it_once_and_keeps_the_queue() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let one_worker = |config: &mut xnatkit_server::ServerConfig| {
        config.data_dir = dir.clone();
        config.pipelines.executor = xnatkit_server::engine::ExecutorChoice::Local { workers: 1 };
    };
    let server = TestServer::start_with(Backend::Sqlite, one_worker)
        .await
        .unwrap();
    let admin = server.admin();
    server.create_project("RST").await;
    let session = import_session(&server, "RST", "S1", "S1_CT", 1, 2).await;
    register(&server, &listing_command("sleeper", "sleep 600")).await;
    register(
        &server,
        &listing_command("quick", "ls /input > /output/listing.txt"),
    )
    .await;
    let mut ids = Vec::new();
    for name in ["sleeper-scan", "quick-scan"] {
        let wid = wrapper_id(&server, name).await;
        server
            .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
            .await;
        enable(&server, "RST", wid).await;
        let (_, report) = post_json(
            &server,
            &format!("/xapi/projects/RST/wrappers/{wid}/launch"),
            &admin,
            &json!({ "scan": format!("/experiments/{session}/scans/1") }),
        )
        .await;
        ids.push(report["container-id"].as_str().unwrap().to_owned());
    }
    wait_for(&server, &ids[0], &["Running"]).await;
    assert_eq!(
        server
            .json(&format!("/xapi/containers/{}", ids[1]), &admin)
            .await["status"],
        "Created"
    );
    server.stop().await;

    let server = TestServer::start_with(Backend::Sqlite, one_worker)
        .await
        .unwrap();
    let stopped = wait_for(&server, &ids[0], &DONE).await;
    assert_eq!(stopped["status"], "Failed", "{stopped}");
    let runs = stopped["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "Running")
        .count();
    assert_eq!(runs, 1, "never re-run: {stopped}");
    let message = stopped["history"].as_array().unwrap().last().unwrap()["message"].clone();
    assert!(message.as_str().unwrap().contains("stopped"), "{message}");
    let queued = wait_for(&server, &ids[1], &DONE).await;
    assert_eq!(queued["status"], "Complete", "{queued}");
    server.stop().await;
}

/// Two servers on one PostgreSQL database and data folder share the
/// queue: every job runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_never_double_claim() {
    let Some(admin_url) = xnatkit_test_support::server::postgres_admin_url() else {
        return;
    };
    let (url, _name) = xnatkit_test_support::server::fresh_postgres_database(&admin_url).await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let shared = |config: &mut xnatkit_server::ServerConfig| {
        config.data_dir = dir.clone();
        config.database_url = Some(url.clone());
        config.pipelines.executor = xnatkit_server::engine::ExecutorChoice::Local { workers: 2 };
    };
    let a = TestServer::start_with(Backend::Sqlite, shared)
        .await
        .unwrap();
    let b = TestServer::start_with(Backend::Sqlite, shared)
        .await
        .unwrap();
    let admin = a.admin();
    a.create_project("TWO").await;
    let session = import_session(&a, "TWO", "S1", "S1_CT", 1, 2).await;
    register(
        &a,
        &listing_command(
            "echoer",
            "echo $XNATKIT_JOB_ID > /output/job.txt; sleep 0.2",
        ),
    )
    .await;
    let wid = wrapper_id(&a, "echoer-scan").await;
    a.put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    enable(&a, "TWO", wid).await;
    let scan = format!("/experiments/{session}/scans/1");
    let mut ids = Vec::new();
    for n in 0..16 {
        let server = if n % 2 == 0 { &a } else { &b };
        let (status, report) = post_json(
            server,
            &format!("/xapi/projects/TWO/wrappers/{wid}/launch"),
            &admin,
            &json!({ "scan": scan, "overwrite": "true" }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        ids.push(report["container-id"].as_str().unwrap().to_owned());
    }
    let mut backends = std::collections::BTreeSet::new();
    for id in &ids {
        let done = wait_for(&a, id, &DONE).await;
        let history = done["history"].as_array().unwrap();
        let runs: Vec<&Value> = history
            .iter()
            .filter(|h| h["status"] == "Running")
            .collect();
        assert_eq!(runs.len(), 1, "claimed once: {done}");
        backends.insert(runs[0]["entity-id"].as_str().unwrap_or_default().to_owned());
        assert!(DONE.contains(&done["status"].as_str().unwrap()), "{done}");
    }
    b.stop().await;
    a.stop().await;
    let _ = backends;
}

/// Runs on archive: a subscription on the project, then a series pushed
/// with storescu ends, with no further action, with a NIFTI resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_series_gets_nifti_and_qa_through_subscriptions() {
    let Some(storescu) = xnatkit_test_support::ci::tool("storescu", "dcmtk") else {
        return;
    };
    if dcm2niix_missing() {
        return;
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.dicom_receiver = Some(DicomReceiverConfig::new(
            format!("127.0.0.1:{port}").parse().unwrap(),
            "XNAT",
            Duration::from_millis(700),
        ));
    })
    .await
    .unwrap();
    let admin = server.admin();
    server.create_project("AUTO").await;
    let r = server
        .req(
            Method::PUT,
            "/data/projects/AUTO/prearchive_code/4",
            Some(&admin),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let wid = wrapper_id(&server, "dcm2niix-scan").await;
    enable(&server, "AUTO", wid).await;
    let r = subscribe(&server, "AUTO", "nifti-on-archive", wid).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = r.text().await.unwrap();
    assert!(created.starts_with("nifti-on-archive:"), "{created}");
    let qa = wrapper_id(&server, "qa-scan").await;
    enable(&server, "AUTO", qa).await;
    let r = subscribe(&server, "AUTO", "qa-on-archive", qa).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let subs = server
        .json("/xapi/projects/AUTO/events/subscriptions", &admin)
        .await;
    assert_eq!(subs.as_array().unwrap().len(), 2);

    let generated = study(2, 4, |i| {
        i.modality = "CT".to_owned();
        i.rows = 32;
        i.cols = 32;
        i.patient_comments = Some("Project: AUTO Subject: RX1 Session: RX1_CT".to_owned());
    });
    let sent = Command::new(&storescu)
        .args(["-aec", "AUTO", "127.0.0.1", &port.to_string()])
        .args(generated.files.iter())
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&sent.stderr)
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let containers = server.json("/xapi/projects/AUTO/containers", &admin).await;
        let list = containers.as_array().unwrap();
        let done = list.iter().filter(|c| c["status"] == "Complete").count();
        if done == 4 {
            break;
        }
        assert!(
            !list.iter().any(|c| c["status"] == "Failed"),
            "{containers}"
        );
        assert!(Instant::now() < deadline, "no NIfTI yet: {containers}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exp = server
        .json("/data/projects/AUTO/experiments?format=json", &admin)
        .await;
    let id = exp["ResultSet"]["Result"][0]["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    for scan in ["1", "2"] {
        let names = file_names(
            &server,
            &format!("/data/experiments/{id}/scans/{scan}/resources/NIFTI"),
        )
        .await;
        assert!(
            names.iter().any(|n| n.ends_with(".nii.gz")),
            "scan {scan}: {names:?}"
        );
        let report = file_names(
            &server,
            &format!("/data/experiments/{id}/assessors/RX1_CT_QA_{scan}/resources/QA"),
        )
        .await;
        assert!(
            report.iter().any(|n| n == "qa.json"),
            "scan {scan}: {report:?}"
        );
    }
    server.stop().await;
}

async fn qa_on_a_scan_files_its_report(server: &TestServer) {
    if dcm2niix_missing() {
        return;
    }
    let admin = server.admin();
    server.create_project("QAP").await;
    let session = import_session(server, "QAP", "S1", "S1_CT", 1, 8).await;
    let wid = wrapper_id(server, "qa-scan").await;
    enable(server, "QAP", wid).await;
    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/QAP/wrappers/{wid}/root/scan/launch"),
        &admin,
        &json!({ "scan": format!("/experiments/{session}/scans/1") }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let done = wait_for(server, report["container-id"].as_str().unwrap(), &DONE).await;
    assert_eq!(done["status"], "Complete", "{done}");
    // An xnat:qcAssessmentData assessor of the session, for scan 1, with
    // the numbers as its scan statistics and the report as its resource.
    let mut names = file_names(
        server,
        &format!("/data/experiments/{session}/assessors/S1_CT_QA_1/resources/QA"),
    )
    .await;
    names.sort();
    assert_eq!(names, ["montage.png", "qa.csv", "qa.json"]);
    let listed: Value = server
        .get(
            &format!("/data/experiments/{session}/assessors?format=json"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let rows = listed["ResultSet"]["Result"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["xsiType"], "xnat:qcAssessmentData", "{listed}");
    let item: Value = server
        .get(
            &format!("/data/experiments/{session}/assessors/S1_CT_QA_1?format=json"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let text = item.to_string();
    for wanted in ["scanStatistics", "\"snr\"", "efc", "fber", "\"id\":\"1\""] {
        assert!(text.contains(wanted), "{wanted} missing: {text}");
    }
    // No QA resource on the scan itself.
    assert!(
        file_names(
            server,
            &format!("/data/experiments/{session}/scans/1/resources/QA")
        )
        .await
        .is_empty()
    );

    // A second launch without overwrite is refused and keeps the first.
    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/QAP/wrappers/{wid}/root/scan/launch"),
        &admin,
        &json!({ "scan": format!("/experiments/{session}/scans/1") }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let again = wait_for(server, report["container-id"].as_str().unwrap(), &DONE).await;
    assert_eq!(again["status"], "Failed", "{again}");
    assert!(again.to_string().contains("overwrite=true"), "{again}");
    assert_eq!(
        file_names(
            server,
            &format!("/data/experiments/{session}/assessors/S1_CT_QA_1/resources/QA")
        )
        .await
        .len(),
        3
    );
}

/// The Container Service's housekeeping routes: add a wrapper to a command
/// and delete it, the logs as a zip, deleting a finished container (a
/// running one must be killed first).
async fn container_service_housekeeping(server: &TestServer) {
    let admin = server.admin();
    server.create_project("HOUSE").await;
    let session = import_session(server, "HOUSE", "S1", "S1_CT", 1, 2).await;
    let scan = format!("/experiments/{session}/scans/1");
    let command = register(
        server,
        &listing_command(
            "house",
            "echo hello-from-the-job > /output/said.txt; echo hello-from-the-job",
        ),
    )
    .await;

    // A second wrapper on the same command, then gone again.
    let mut extra = listing_command("house", "x")["xnat"][0].clone();
    extra["name"] = json!("house-extra");
    let (status, body) = post_json(
        server,
        &format!("/xapi/commands/{command}/wrappers"),
        &admin,
        &extra,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let extra_id = body.as_i64().expect("bare wrapper ID");
    let listed = server
        .json(&format!("/xapi/commands/{command}"), &admin)
        .await;
    assert_eq!(listed["xnat"].as_array().unwrap().len(), 2, "{listed}");
    let (status, _) = post_json(
        server,
        &format!("/xapi/commands/{command}/wrappers"),
        &admin,
        &extra,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "the same name twice");
    let user = server.create_user("houseguest").await;
    let r = server
        .delete(&format!("/xapi/wrappers/{extra_id}"), &user)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = server
        .delete(&format!("/xapi/wrappers/{extra_id}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let listed = server
        .json(&format!("/xapi/commands/{command}"), &admin)
        .await;
    assert_eq!(listed["xnat"].as_array().unwrap().len(), 1, "{listed}");
    let builtin = wrapper_id(server, "dcm2niix-scan").await;
    let r = server
        .delete(&format!("/xapi/wrappers/{builtin}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "built-ins stay");

    // A finished run: its logs as a zip, then deleted.
    let wid = wrapper_id(server, "house-scan").await;
    let r = server
        .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    enable(server, "HOUSE", wid).await;
    let launch = |wid: i64| {
        let scan = scan.clone();
        let admin = admin.clone();
        async move {
            let (status, report) = post_json(
                server,
                &format!("/xapi/projects/HOUSE/wrappers/{wid}/launch"),
                &admin,
                &json!({ "scan": scan }),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{report}");
            report["container-id"].as_str().unwrap().to_owned()
        }
    };
    let id = launch(wid).await;
    let done = wait_for(server, &id, &DONE).await;
    assert_eq!(done["status"], "Complete", "{done}");
    let r = server
        .get(&format!("/xapi/containers/{id}/logs"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("stdout.log").unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("hello-from-the-job"), "{stdout}");
    let r = server
        .delete(&format!("/xapi/containers/{id}"), &user)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "an outsider does not see it"
    );
    let r = server
        .delete(&format!("/xapi/projects/HOUSE/containers/{id}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = server.get(&format!("/xapi/containers/{id}"), &admin).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A running one is refused until it is killed.
    register(server, &listing_command("napper", "sleep 60")).await;
    let nap = wrapper_id(server, "napper-scan").await;
    let r = server
        .put(&format!("/xapi/wrappers/{nap}/enabled"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    enable(server, "HOUSE", nap).await;
    let id = launch(nap).await;
    wait_for(server, &id, &["Running"]).await;
    let r = server
        .delete(&format!("/xapi/containers/{id}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let (status, _) = post_json(
        server,
        &format!("/xapi/containers/{id}/kill"),
        &admin,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_for(server, &id, &DONE).await;
    let r = server
        .delete(&format!("/xapi/containers/{id}"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// Runs on archive for a session built file by file over REST, as
/// xnatuploader and xnatutils do: nothing runs while files keep coming;
/// once they have settled, the subscription runs once, on every file.
async fn rest_uploads_run_on_archive_once_settled(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, |config| {
        config.pipelines.upload_settle = Duration::from_millis(1500);
    })
    .await
    else {
        return;
    };
    let admin = server.admin();
    server.create_project("SETTLE").await;
    register(
        &server,
        &listing_command("settled", "ls /input > /output/listing.txt"),
    )
    .await;
    let wid = wrapper_id(&server, "settled-scan").await;
    let r = server
        .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    enable(&server, "SETTLE", wid).await;
    let r = subscribe(&server, "SETTLE", "list-on-upload", wid).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let session = "/data/projects/SETTLE/subjects/U1/experiments/U1_MR";
    for path in [
        "/data/projects/SETTLE/subjects/U1".to_owned(),
        format!("{session}?xsiType=xnat:mrSessionData"),
        format!("{session}/scans/1?xsiType=xnat:mrScanData"),
        format!("{session}/scans/1/resources/DICOM?format=DICOM"),
    ] {
        let r = server.put(&path, &admin).await;
        assert!(r.status().is_success(), "PUT {path}: {}", r.status());
    }
    let names = ["a.dcm", "b.dcm", "c.dcm"];
    for name in names {
        let r = server
            .req(
                Method::PUT,
                &format!("{session}/scans/1/resources/DICOM/files/{name}"),
                Some(&admin),
            )
            .body(format!("bytes of {name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs = || async {
        server
            .json("/xapi/projects/SETTLE/containers", &admin)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        runs().await.is_empty(),
        "nothing runs while files still arrive"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        if let Some(run) = runs().await.into_iter().next() {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "no run after the uploads settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = run["id"].as_i64().expect("container id").to_string();
    let done = wait_for(&server, &id, &DONE).await;
    assert_eq!(done["status"], "Complete", "{done}");
    let listing = server
        .get(
            &format!("{session}/scans/1/resources/LISTING/files/listing.txt"),
            &admin,
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(listing.lines().collect::<Vec<_>>(), names, "{listing}");
    // One burst of uploads, one run: the stamp was claimed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(runs().await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_uploads_run_on_archive_once_settled_sqlite() {
    rest_uploads_run_on_archive_once_settled(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_uploads_run_on_archive_once_settled_postgres() {
    rest_uploads_run_on_archive_once_settled(Backend::Postgres).await;
}

/// Uploads `bytes` as file `name` of the resource at `resource`.
async fn upload(server: &TestServer, resource: &str, name: &str, bytes: Vec<u8>) {
    let r = server
        .req(
            Method::PUT,
            &format!("{resource}/files/{name}"),
            Some(&server.admin()),
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{resource}/files/{name}");
}

/// XNAT-PIC's Mask Average as a session-level engine command, on real
/// data (rt-utils' CT slices with their RTSTRUCT): the map is a scan's map
/// resource, the ROIs an ROI collection's RTSTRUCT; the statistics land as
/// a ROISTATS resource of the session, with the voxel count the offline
/// `xnatkit maps mask-average` and rt-utils agree on (1,443).
async fn mask_average_measures_a_map_inside_an_roi_collection(server: &TestServer) {
    let data = xnatkit_test_support::fixtures::shared_data().join("rtstruct-rtutils/mock_data");
    if !data.is_dir() {
        xnatkit_test_support::ci::skip::<()>(&format!("{} is missing", data.display()));
        return;
    }
    let admin = server.admin();
    server.create_project("MASK").await;
    let session = "/data/projects/MASK/subjects/M1/experiments/M1_CT";
    let r = server.put("/data/projects/MASK/subjects/M1", &admin).await;
    assert!(r.status().is_success());
    let r = server
        .put(&format!("{session}?xsiType=xnat:ctSessionData"), &admin)
        .await;
    assert!(r.status().is_success());
    let id = r.text().await.unwrap().trim().to_owned();
    for scan in ["1", "2"] {
        let r = server
            .put(
                &format!("{session}/scans/{scan}?xsiType=xnat:ctScanData"),
                &admin,
            )
            .await;
        assert!(r.status().is_success());
    }
    let map = format!("{session}/scans/1/resources/T2MAP");
    assert!(server.put(&map, &admin).await.status().is_success());
    for name in ["ct_1.dcm", "ct_2.dcm"] {
        let bytes = std::fs::read(data.join(name)).unwrap();
        upload(server, &map, &format!("T2_map_dicom/{name}"), bytes).await;
    }

    let wid = wrapper_id(server, "mask-average-session").await;
    let r = server
        .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    enable(server, "MASK", wid).await;
    let launch = |params: Value| async move {
        post_json(
            server,
            &format!("/xapi/projects/MASK/wrappers/{wid}/launch"),
            &server.admin(),
            &params,
        )
        .await
    };

    // No ROI collection yet: refused, naming what is missing.
    let (status, report) = launch(json!({ "session": format!("/experiments/{id}") })).await;
    assert_ne!(status, StatusCode::OK, "{report}");
    let text = report.to_string();
    assert!(text.contains("roi-collection"), "{text}");

    let rois = format!("/data/experiments/{id}/assessors/M1_ROIS");
    let r = server
        .put(&format!("{rois}?xsiType=icr:roiCollectionData"), &admin)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert!(
        server
            .put(&format!("{rois}/resources/RTSTRUCT"), &admin)
            .await
            .status()
            .is_success()
    );
    let rt = std::fs::read(data.join("rt.dcm")).unwrap();
    upload(server, &format!("{rois}/resources/RTSTRUCT"), "rt.dcm", rt).await;

    // A scan without a map, named in the launch: refused.
    let (status, report) = launch(json!({
        "session": format!("/experiments/{id}"), "map-scan": "2"
    }))
    .await;
    assert_ne!(status, StatusCode::OK, "{report}");
    assert!(report.to_string().contains("map-scan"), "{report}");

    let (status, report) = launch(json!({ "session": format!("/experiments/{id}") })).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let done = wait_for(server, report["container-id"].as_str().unwrap(), &DONE).await;
    assert_eq!(done["status"], "Complete", "{done}");
    let stats: Value = server
        .json(
            &format!("/data/experiments/{id}/resources/ROISTATS/files/rois.json"),
            &admin,
        )
        .await;
    assert_eq!(stats[0]["roi"], "ROI-1", "{stats}");
    assert_eq!(stats[0]["voxels"], 1443, "{stats}");
    let names = file_names(
        server,
        &format!("/data/experiments/{id}/resources/ROISTATS"),
    )
    .await;
    assert!(names.iter().any(|n| n == "statistics.txt"), "{names:?}");
}

/// A command that says hello, then (when told to wait) keeps running.
fn talker_command() -> Value {
    let mut command = listing_command(
        "talker",
        "echo said > /output/said.txt; echo first-#NOTE#; sleep 1; echo second-line; if [ #NOTE# = wait ]; then sleep 60; fi",
    );
    command["inputs"] = json!([
        {"name": "LEVEL", "type": "select-one", "select-values": ["low", "high"], "default-value": "low"},
        {"name": "NOTE", "type": "string", "required": true}
    ]);
    command
}

fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn get_json(server: &TestServer, path: &str, auth: &Auth) -> (StatusCode, Value) {
    let r = server.get(path, auth).await;
    let status = r.status();
    let text = r.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn launch_forms_and_the_history_table(server: &TestServer) {
    let admin = server.admin();
    server.create_project("FORMS").await;
    let session = import_session(server, "FORMS", "S1", "S1_CT", 1, 2).await;
    let scan = format!("/experiments/{session}/scans/1");
    let command = register(server, &talker_command()).await;
    let wid = wrapper_id(server, "talker-scan").await;
    let r = server
        .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The form with no object: the inputs, open; a parameter's default.
    let form = server
        .json(&format!("/xapi/wrappers/{wid}/launch"), &admin)
        .await;
    assert_eq!(form["meta"]["wrapper-id"], wid, "{form}");
    assert_eq!(form["meta"]["command-id"], command);
    let names: Vec<_> = form["input-config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["scan", "LEVEL", "NOTE"], "{form}");
    assert_eq!(form["input-config"][0]["children"][0]["name"], "dicom");
    assert_eq!(
        form["input-config"][1]["select-values"],
        json!(["low", "high"])
    );
    assert_eq!(form["input-values"][1]["values"][0]["value"], "low");

    // On an object, the same checks as a launch: not enabled in the
    // project yet, then the values it resolves to.
    let query = format!("scan={}", query_value(&scan));
    let (status, body) = get_json(
        server,
        &format!("/xapi/projects/FORMS/wrappers/{wid}/launch?{query}"),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.to_string().contains("not enabled in project FORMS"),
        "{body}"
    );
    enable(server, "FORMS", wid).await;
    let open = server
        .json(
            &format!("/xapi/projects/FORMS/wrappers/{wid}/launch?{query}"),
            &admin,
        )
        .await;
    assert_eq!(open["input-config"][0]["input-type"], "static", "{open}");
    let reason = open["input-config"][0]["derived-value-message"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("NOTE"), "the missing parameter: {open}");
    assert_eq!(open["input-values"][0]["values"][0]["label"], "1");
    for path in [
        format!("/xapi/projects/FORMS/wrappers/{wid}/launch?{query}&NOTE=hi"),
        format!("/xapi/wrapper/{wid}/root/scan/launch?{query}&NOTE=hi"),
        format!("/xapi/commands/{command}/wrappers/talker-scan/launch?{query}&NOTE=hi"),
        format!(
            "/xapi/projects/FORMS/wrappers/{wid}/bulklaunch?scan={}&NOTE=hi",
            query_value(&json!([scan]).to_string())
        ),
    ] {
        let resolved = server.json(&path, &admin).await;
        let root = &resolved["input-values"][0]["values"][0];
        assert!(
            root["value"].as_str().unwrap().ends_with("/scans/1"),
            "{path}: {resolved}"
        );
        assert!(
            root["children"][0]["values"][0]["value"]
                .as_str()
                .unwrap()
                .ends_with("/resources/DICOM"),
            "{path}: {resolved}"
        );
        assert_eq!(resolved["input-values"][2]["values"][0]["value"], "hi");
    }
    let outsider = server.create_user("formoutsider").await;
    let (status, _) = get_json(
        server,
        &format!("/xapi/wrappers/{wid}/launch?{query}&NOTE=hi"),
        &outsider,
    )
    .await;
    assert!(
        matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
        "an outsider sees nothing of the session: {status}"
    );

    // Two runs: one that ends, one that waits.
    let launch = |note: &'static str| {
        let scan = scan.clone();
        let admin = admin.clone();
        async move {
            let (status, report) = post_json(
                server,
                &format!("/xapi/projects/FORMS/wrappers/{wid}/launch"),
                &admin,
                &json!({ "scan": scan, "NOTE": note }),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{report}");
            report["container-id"].as_str().unwrap().to_owned()
        }
    };
    let quick = launch("quick").await;
    let done = wait_for(server, &quick, &DONE).await;
    assert_eq!(done["status"], "Complete", "{done}");
    let waiting = launch("wait").await;
    wait_for(server, &waiting, &["Running"]).await;

    // The log polled while it grows: every line once, in order.
    let mut seen = String::new();
    let mut since: Option<String> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains("second-line") {
        assert!(Instant::now() < deadline, "no second line: {seen:?}");
        let path = match &since {
            Some(token) => format!(
                "/xapi/containers/{waiting}/logSince/stdout?since={}",
                query_value(token)
            ),
            None => format!("/xapi/containers/{waiting}/logSince/stdout"),
        };
        let poll = server.json(&path, &admin).await;
        assert_eq!(poll["fromFile"], false, "{poll}");
        let token = poll["timestamp"].as_str().unwrap().to_owned();
        assert_ne!(token, "-1", "still running: {poll}");
        seen.push_str(poll["content"].as_str().unwrap());
        since = Some(token);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, "first-wait\nsecond-line\n");
    let (status, _) = get_json(
        server,
        &format!("/xapi/containers/{waiting}/logSince/stdout?since=soon"),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unreadable since");

    // Finalize: refused while it runs, not offered to outsiders.
    let (status, body) = post_json(
        server,
        &format!("/xapi/containers/{waiting}/finalize"),
        &admin,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = post_json(
        server,
        &format!("/xapi/containers/{quick}/finalize"),
        &outsider,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The history table's pages.
    let page = |body: Value, auth: Auth| async move {
        let (status, rows) = post_json(server, "/xapi/containers", &auth, &body).await;
        assert_eq!(status, StatusCode::OK, "{rows}");
        rows.as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].to_string())
            .collect::<Vec<_>>()
    };
    let project = json!({"project": {"operator": "eq", "value": "FORMS", "backend": "hibernate"}});
    let ask = |page: i64, dir: &str| json!({"filters": project, "sort_col": "id", "sort_dir": dir, "page": page, "size": 1});
    assert_eq!(
        page(ask(1, "asc"), admin.clone()).await,
        vec![quick.clone()]
    );
    assert_eq!(
        page(ask(2, "asc"), admin.clone()).await,
        vec![waiting.clone()]
    );
    assert_eq!(
        page(ask(1, "desc"), admin.clone()).await,
        vec![waiting.clone()]
    );
    assert_eq!(
        page(ask(3, "asc"), admin.clone()).await,
        Vec::<String>::new()
    );
    let running = json!({"filters": {"status": {"like": "runn"}, "project": project["project"]}});
    assert_eq!(page(running, admin.clone()).await, vec![waiting.clone()]);
    assert!(
        page(json!({"filters": project}), outsider.clone())
            .await
            .is_empty(),
        "an outsider's history has none of FORMS"
    );
    let (status, body) = post_json(
        server,
        "/xapi/containers",
        &admin,
        &json!({"sort_col": "password"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) =
        post_json(server, "/xapi/projects/NOPE/containers", &admin, &json!({})).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unknown project's history: {body}"
    );

    // Killed, the log is read whole from its file and the poll ends.
    let (status, _) = post_json(
        server,
        &format!("/xapi/containers/{waiting}/kill"),
        &admin,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_for(server, &waiting, &DONE).await;
    let last = server
        .json(
            &format!(
                "/xapi/projects/FORMS/containers/{waiting}/logSince/stdout?since={}",
                query_value(since.as_deref().unwrap())
            ),
            &admin,
        )
        .await;
    assert_eq!(last["fromFile"], true, "{last}");
    assert_eq!(last["timestamp"], "-1");
    assert_eq!(last["content"], "first-wait\nsecond-line\n");
    let (status, body) = post_json(
        server,
        &format!("/xapi/containers/{waiting}/finalize"),
        &admin,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let version = server.json("/xapi/containers/version", &admin).await;
    assert_eq!(version["compatible"], true, "{version}");
}

async fn delete_status(server: &TestServer, path: &str, auth: &Auth) -> StatusCode {
    server
        .req(Method::DELETE, path, Some(auth))
        .send()
        .await
        .unwrap()
        .status()
}

/// The site's and a project's wrapper configuration (`…/config`): who may
/// read and set them, what a GET merges, and a launch that leaves an input
/// out gets the project's default and files under the project's label.
async fn wrapper_configurations_fill_launches(server: &TestServer) {
    let admin = server.admin();
    let owner = server.create_user("cfgowner").await;
    let member = server.create_user("cfgmember").await;
    let outsider = server.create_user("cfgoutsider").await;
    server.create_project("CFG").await;
    let r = server
        .put("/data/projects/CFG/users/owner/cfgowner", &admin)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = server
        .put("/data/projects/CFG/users/member/cfgmember", &admin)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let session = import_session(server, "CFG", "S1", "S1_CT", 1, 2).await;
    let scan = format!("/experiments/{session}/scans/1");
    let mut command = listing_command("leveller", "echo #LEVEL# > /output/level.txt");
    command["inputs"] = json!([{"name": "LEVEL", "type": "string", "default-value": "low"}]);
    let command_id = register(server, &command).await;
    let wid = wrapper_id(server, "leveller-scan").await;
    let site = format!("/xapi/wrappers/{wid}/config");
    let project = format!("/xapi/projects/CFG/wrappers/{wid}/config");

    // Unconfigured: the command's own values, for any user.
    let (status, base) = get_json(server, &site, &member).await;
    assert_eq!(status, StatusCode::OK, "{base}");
    assert_eq!(base["inputs"]["LEVEL"]["default-value"], "low", "{base}");
    assert_eq!(base["outputs"]["h"]["label"], "LISTING", "{base}");

    // Only admins set the site's; the body names only what the wrapper has.
    let medium = json!({"inputs": {"LEVEL": {"default-value": "medium"}}});
    let (status, body) = post_json(server, &site, &owner, &medium).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post_json(
        server,
        &site,
        &admin,
        &json!({"inputs": {"LEVL": {"default-value": "x"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("no input LEVL"), "{body}");
    let (status, body) = post_json(server, &format!("{site}?enable=false"), &admin, &medium).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let enabled = server
        .json(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    assert_eq!(enabled, json!(false), "enable=false leaves it disabled");
    let by_name = format!("/xapi/commands/{command_id}/wrappers/leveller-scan/config");
    let (status, body) = post_json(server, &by_name, &admin, &medium).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let enabled = server
        .json(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    assert_eq!(enabled, json!(true), "a POST enables by default");

    // A project's: set by its owner (enabling it there), read by those who
    // edit it, hidden from others; a GET lays it over the site's.
    let high = json!({
        "inputs": {"LEVEL": {"default-value": "high"}},
        "outputs": {"h": {"label": "LEVELS"}}
    });
    let (status, body) = post_json(server, &project, &member, &high).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post_json(server, &project, &owner, &high).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, merged) = get_json(server, &project, &member).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["inputs"]["LEVEL"]["default-value"], "high");
    assert_eq!(merged["outputs"]["h"]["label"], "LEVELS");
    let (status, _) = get_json(server, &project, &outsider).await;
    assert!(
        matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
        "an outsider reads nothing of the project: {status}"
    );
    let (_, site_view) = get_json(server, &site, &member).await;
    assert_eq!(site_view["inputs"]["LEVEL"]["default-value"], "medium");

    // The launch form and a launch use the project's values.
    let query = format!("scan={}", query_value(&scan));
    let form = server
        .json(
            &format!("/xapi/projects/CFG/wrappers/{wid}/launch?{query}"),
            &member,
        )
        .await;
    assert_eq!(
        form["input-values"][1]["values"][0]["value"], "high",
        "{form}"
    );
    let (status, report) = post_json(
        server,
        &format!("/xapi/projects/CFG/wrappers/{wid}/launch"),
        &member,
        &json!({"scan": scan}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let id = report["container-id"].as_str().expect("container id");
    let done = wait_for(server, id, &DONE).await;
    assert_eq!(done["status"], "Complete", "{done}");
    let level = server
        .get(
            &format!("/data{scan}/resources/LEVELS/files/level.txt"),
            &member,
        )
        .await;
    assert_eq!(level.status(), StatusCode::OK);
    assert_eq!(level.text().await.unwrap().trim(), "high");

    // Deleting the project's brings the site's back; deleting twice is 404.
    assert_eq!(
        delete_status(server, &project, &member).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        delete_status(server, &project, &owner).await,
        StatusCode::NO_CONTENT
    );
    let (_, merged) = get_json(server, &project, &member).await;
    assert_eq!(merged["inputs"]["LEVEL"]["default-value"], "medium");
    assert_eq!(merged["outputs"]["h"]["label"], "LISTING");
    assert_eq!(
        delete_status(server, &project, &owner).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete_status(server, &by_name, &admin).await,
        StatusCode::NO_CONTENT
    );
    let (_, base_again) = get_json(server, &site, &member).await;
    assert_eq!(base_again, base);
}

/// The legacy `/xapi/commandeventmapping` (XNAT 1.7's Command Automation):
/// a project owner's mapping runs the wrapper on every session archived
/// into the project, shows among its subscriptions, can be disabled and
/// converted; what would never fire, or has no project, is refused.
async fn legacy_command_automation_runs_on_archive(server: &TestServer) {
    let admin = server.admin();
    let owner = server.create_user("automator").await;
    let outsider = server.create_user("automation-outsider").await;
    server.create_project("AUTO").await;
    for path in [
        "/data/projects/AUTO/users/owner/automator",
        "/data/projects/AUTO/accessibility/private",
    ] {
        let r = server.put(path, &admin).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let command = register(
        server,
        &listing_command("auto", "ls /input > /output/listing.txt"),
    )
    .await;
    let wid = wrapper_id(server, "auto-scan").await;
    let r = server
        .put(&format!("/xapi/wrappers/{wid}/enabled"), &admin)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    enable(server, "AUTO", wid).await;

    let mapping = json!({"event-type": "SessionArchived", "command-id": command,
                         "xnat-command-wrapper": "auto-scan", "project": "AUTO"});
    let (status, _) = post_json(server, "/xapi/commandeventmapping", &outsider, &mapping).await;
    assert!(
        matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
        "{status}"
    );
    for (bad, says) in [
        (
            json!({"event-type": "Merged", "command-id": command, "xnat-command-wrapper": "auto-scan", "project": "AUTO"}),
            "never fires",
        ),
        (
            json!({"event-type": "SessionArchived", "command-id": command, "xnat-command-wrapper": "auto-scan"}),
            "names no project",
        ),
        (
            json!({"command-id": command, "xnat-command-wrapper": "auto-scan", "project": "AUTO"}),
            "Event type must be defined",
        ),
    ] {
        let (status, body) = post_json(server, "/xapi/commandeventmapping", &owner, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains(says), "{says}: {body}");
    }
    let (status, made) = post_json(server, "/xapi/commandeventmapping", &owner, &mapping).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["event-type"], "SessionArchived");
    assert_eq!(made["xnat-command-wrapper"], "auto-scan");
    assert_eq!(made["subscription-user-name"], "automator");
    assert_eq!(made["enabled"], true);
    let id = made["id"].as_i64().expect("id");
    let listed = server.json("/xapi/commandeventmapping", &owner).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (_, hidden) = get_json(server, "/xapi/commandeventmapping", &outsider).await;
    assert_eq!(hidden, json!([]), "an outsider sees no mapping of AUTO");
    let subs = server
        .json("/xapi/projects/AUTO/events/subscriptions", &owner)
        .await;
    assert_eq!(subs[0]["id"], id, "it runs as a subscription: {subs}");

    // Archiving a session runs the wrapper on its scan.
    let session = import_session(server, "AUTO", "S1", "S1_CT", 1, 2).await;
    let listing = format!("/data/experiments/{session}/scans/1/resources/LISTING");
    let deadline = Instant::now() + Duration::from_secs(60);
    while file_names_or_none(server, &listing).await.is_none() {
        assert!(Instant::now() < deadline, "no LISTING after archiving");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Disabled, it does not run; converted, it is a plain subscription.
    let r = server
        .put(&format!("/xapi/commandeventmapping/{id}/disable"), &owner)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let again = server
        .json(&format!("/xapi/commandeventmapping/{id}"), &owner)
        .await;
    assert_eq!(again["enabled"], false);
    let quiet = import_session(server, "AUTO", "S2", "S2_CT", 1, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = server.json("/xapi/projects/AUTO/containers", &admin).await;
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| !r.to_string().contains(&quiet)),
        "a disabled mapping launched: {runs}"
    );
    let r = server
        .req(
            Method::POST,
            &format!("/xapi/commandeventmapping/{id}/convert"),
            Some(&owner),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = get_json(server, &format!("/xapi/commandeventmapping/{id}"), &owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let subs = server
        .json("/xapi/projects/AUTO/events/subscriptions", &owner)
        .await;
    assert_eq!(subs[0]["id"], id, "still a subscription: {subs}");
    assert!(subs[0].get("command-event-mapping").is_none(), "{subs}");
}

async fn file_names_or_none(server: &TestServer, resource: &str) -> Option<Vec<String>> {
    let r = server
        .get(&format!("{resource}/files?format=json"), &server.admin())
        .await;
    if r.status() != StatusCode::OK {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    let names: Vec<String> = v["ResultSet"]["Result"]
        .as_array()?
        .iter()
        .filter_map(|f| f["Name"].as_str().map(str::to_owned))
        .collect();
    (!names.is_empty()).then_some(names)
}
