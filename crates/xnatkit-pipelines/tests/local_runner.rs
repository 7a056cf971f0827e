//! The local runner against a real xnatkit server on loopback, with the
//! real dcm2niix: conversion and QA (a QC assessor per scan) over a
//! project, skipping what is done,
//! redoing what an interruption left incomplete, and a scan that is not an
//! image series failing alone with dcm2niix's own message.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test's failure

use tokio_util::sync::CancellationToken;
use xnatkit_client::sample::{SampleScan, SampleSession, SampleSubject, upload_sample};
use xnatkit_client::{Method, Request, XnatClient};
use xnatkit_pipelines::builtin::Builtin;
use xnatkit_pipelines::local::{LocalRun, Outcome, PROVENANCE_FILE, ScanReport, run_local};
use xnatkit_test_support::ci::tool;
use xnatkit_test_support::{Backend, TestServer};

fn dcm2niix_missing() -> bool {
    tool("dcm2niix", "dcm2niix").is_none()
}

/// A server with project PIPE holding the sample subjects; the folder the
/// sample DICOM was generated in.
async fn project_with_samples() -> (TestServer, XnatClient, tempfile::TempDir) {
    let server = TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let client = server.client(&server.admin()).await;
    client
        .put_object("/data/projects/PIPE", &[], "project")
        .await
        .unwrap();
    let gen_dir = tempfile::tempdir().unwrap();
    upload_sample(&client, "PIPE", &subjects(), gen_dir.path(), 4)
        .await
        .unwrap();
    (server, client, gen_dir)
}

fn subjects() -> Vec<SampleSubject> {
    ["S1", "S2"]
        .iter()
        .map(|label| SampleSubject {
            label: (*label).to_owned(),
            sessions: vec![SampleSession {
                label: format!("{label}_CT"),
                date: "2024-03-01".to_owned(),
                scans: vec![
                    SampleScan {
                        id: "1".to_owned(),
                        scan_type: "Topogram".to_owned(),
                        slices: 1,
                        side: 32,
                    },
                    SampleScan {
                        id: "2".to_owned(),
                        scan_type: "Thorax 3.0".to_owned(),
                        slices: 12,
                        side: 64,
                    },
                ],
            }],
        })
        .collect()
}

fn run(builtin: Builtin, work: &std::path::Path) -> LocalRun {
    LocalRun {
        project: "PIPE".to_owned(),
        builtin,
        scan_types: vec!["thorax*".to_owned()],
        overwrite: false,
        jobs: 2,
        work_dir: work.to_owned(),
        cancel: CancellationToken::new(),
        params: Default::default(),
    }
}

fn outcomes(reports: &[ScanReport]) -> Vec<(String, Outcome)> {
    let mut v: Vec<(String, Outcome)> = reports
        .iter()
        .map(|r| (r.target.subject.clone(), r.outcome.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

async fn file_names(client: &XnatClient, path: &str) -> Vec<String> {
    let mut names: Vec<String> = client
        .files(path)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcm2niix_and_qa_over_a_project() {
    if dcm2niix_missing() {
        return;
    }
    let (_server, client, _gen_dir) = project_with_samples().await;
    let work = tempfile::tempdir().unwrap();
    let s1_nifti = "/data/projects/PIPE/subjects/S1/experiments/S1_CT/scans/2/resources/NIFTI";

    // First run: both thorax scans converted, the topograms left alone.
    let reports = run_local(&client, &run(Builtin::Dcm2niix, work.path()), &())
        .await
        .unwrap();
    assert_eq!(reports.len(), 2, "{reports:?}");
    for (_, outcome) in outcomes(&reports) {
        assert!(matches!(outcome, Outcome::Done { .. }), "{outcome:?}");
    }
    let names = file_names(&client, s1_nifti).await;
    assert!(names.iter().any(|n| n.ends_with(".nii.gz")), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.ends_with(".json") && n != PROVENANCE_FILE),
        "{names:?}"
    );
    assert!(names.contains(&PROVENANCE_FILE.to_owned()), "{names:?}");
    let topogram = client
        .resources("/data/projects/PIPE/subjects/S1/experiments/S1_CT/scans/1")
        .await
        .unwrap();
    assert!(topogram.iter().all(|r| r.label != "NIFTI"));

    // A rerun finds both complete; an interrupted upload (no provenance
    // record yet) is redone.
    rerun_then_resume(&client, Builtin::Dcm2niix, work.path(), s1_nifti, "S1").await;
    assert_eq!(
        file_names(&client, s1_nifti).await,
        names,
        "replaced, not merged"
    );

    // QA: an xnat:qcAssessmentData assessor per scan, as the server's
    // engine files it, with the scan's statistics and the reports.
    let qa = run_local(&client, &run(Builtin::Qa, work.path()), &())
        .await
        .unwrap();
    assert!(
        outcomes(&qa)
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Done { .. })),
        "{qa:?}"
    );
    let s2_qa = "/data/projects/PIPE/subjects/S2/experiments/S2_CT/assessors/S2_CT_QA_2";
    let qa_files = file_names(&client, &format!("{s2_qa}/resources/QA")).await;
    assert_eq!(
        qa_files,
        ["montage.png", "qa.csv", "qa.json", PROVENANCE_FILE]
    );
    let item = client
        .send(&Request::get(format!("{s2_qa}?format=json"), "assessor"))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let assessor = &item["items"][0];
    assert_eq!(
        assessor["meta"]["xsi:type"], "xnat:qcAssessmentData",
        "{item}"
    );
    let scan = &assessor["children"][0]["items"][0];
    assert_eq!(scan["data_fields"]["id"], "2", "{item}");
    let stats = &scan["children"][0]["items"][0];
    let csv = client
        .send(&Request::get(
            format!("{s2_qa}/resources/QA/files/qa.csv"),
            "qa.csv",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mean = csv
        .lines()
        .find_map(|l| l.strip_prefix("mean,"))
        .unwrap()
        .parse::<f64>()
        .unwrap();
    let stored: f64 = stats["data_fields"]["mean"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(stored, mean, "the report's mean: {stats}");
    let names: Vec<&str> = stats["children"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["data_fields"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"efc") && names.contains(&"snr"),
        "{names:?}"
    );

    // A rerun skips both; an interrupted one (the assessor made, its
    // record never uploaded) is redone; --overwrite replaces the assessor.
    rerun_then_resume(
        &client,
        Builtin::Qa,
        work.path(),
        &format!("{s2_qa}/resources/QA"),
        "S2",
    )
    .await;
    let mut overwrite = run(Builtin::Qa, work.path());
    overwrite.overwrite = true;
    let replaced = run_local(&client, &overwrite, &()).await.unwrap();
    assert!(
        outcomes(&replaced)
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Done { .. })),
        "{replaced:?}"
    );
    let assessors = client.assessors("PIPE", "S2", "S2_CT").await.unwrap();
    assert_eq!(
        assessors
            .iter()
            .map(|a| a.label.as_str())
            .collect::<Vec<_>>(),
        ["S2_CT_QA_2"],
        "one assessor, replaced"
    );
}

/// A rerun of `builtin` finds both subjects' scans complete; once
/// `resource` loses its provenance record (an upload cut short) the next
/// run redoes `subject`'s scan alone.
async fn rerun_then_resume(
    client: &XnatClient,
    builtin: Builtin,
    work: &std::path::Path,
    resource: &str,
    subject: &str,
) {
    let again = run_local(client, &run(builtin, work), &()).await.unwrap();
    assert!(
        outcomes(&again)
            .iter()
            .all(|(_, o)| *o == Outcome::AlreadyDone),
        "{again:?}"
    );
    let record = Request::new(
        Method::DELETE,
        format!("{resource}/files/{PROVENANCE_FILE}"),
        "provenance record",
    );
    client.send(&record).await.unwrap();
    let resumed = run_local(client, &run(builtin, work), &()).await.unwrap();
    for (s, outcome) in outcomes(&resumed) {
        if s == subject {
            assert!(matches!(outcome, Outcome::Done { .. }), "{resumed:?}");
        } else {
            assert_eq!(outcome, Outcome::AlreadyDone, "{resumed:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_that_is_not_an_image_fails_alone() {
    if dcm2niix_missing() {
        return;
    }
    let (_server, client, gen_dir) = project_with_samples().await;
    // S2's thorax scan holds a report, not images.
    let s2_dicom = "/data/projects/PIPE/subjects/S2/experiments/S2_CT/scans/2/resources/DICOM";
    for file in client.files(s2_dicom).await.unwrap() {
        let delete = Request::new(
            Method::DELETE,
            format!("{s2_dicom}/files/{}", file.path),
            "file",
        );
        client.send(&delete).await.unwrap();
    }
    let junk = gen_dir.path().join("report.dcm");
    std::fs::write(&junk, b"not a DICOM file").unwrap();
    client
        .upload_file(s2_dicom, "report.dcm", &junk)
        .await
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let reports = run_local(&client, &run(Builtin::Dcm2niix, work.path()), &())
        .await
        .unwrap();
    let reports = outcomes(&reports);
    assert!(matches!(reports[0].1, Outcome::Done { .. }), "{reports:?}");
    let Outcome::Failed { error } = &reports[1].1 else {
        panic!("{reports:?}");
    };
    assert!(error.starts_with("dcm2niix failed: "), "{error}");
    assert!(error.contains("DICOM"), "dcm2niix's own words: {error}");
    let resources = client
        .resources("/data/projects/PIPE/subjects/S2/experiments/S2_CT/scans/2")
        .await
        .unwrap();
    assert!(
        resources.iter().all(|r| r.label != "NIFTI"),
        "nothing half-attached"
    );
}

/// The map built-ins need no external tool: the real GE DWI
/// (`../shared/data/dwi-ge`) as S1's scan gets an ADCMAP resource (NIfTI,
/// the map's DICOM series in a subfolder, preview, maps.json); S2's CT
/// (no slice geometry) fails alone with the message naming what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adc_map_over_a_project_with_a_real_dwi() {
    let dwi = xnatkit_test_support::fixtures::shared_data().join("dwi-ge/01_Ax_DWI_TENSOR_R2");
    if !dwi.is_dir() {
        xnatkit_test_support::ci::skip::<()>(&format!("the GE DWI is not at {}", dwi.display()));
        return;
    }
    let (_server, client, _gen_dir) = project_with_samples().await;
    let s1_dicom = "/data/projects/PIPE/subjects/S1/experiments/S1_CT/scans/2/resources/DICOM";
    for file in client.files(s1_dicom).await.unwrap() {
        let delete = Request::new(
            Method::DELETE,
            format!("{s1_dicom}/files/{}", file.path),
            "file",
        );
        client.send(&delete).await.unwrap();
    }
    for entry in std::fs::read_dir(&dwi).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        client.upload_file(s1_dicom, &name, &path).await.unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let reports = run_local(&client, &run(Builtin::AdcMap, work.path()), &())
        .await
        .unwrap();
    let reports = outcomes(&reports);
    assert!(matches!(reports[0].1, Outcome::Done { .. }), "{reports:?}");
    let Outcome::Failed { error } = &reports[1].1 else {
        panic!("{reports:?}");
    };
    // The sample CT has no slice geometry: refused, naming file and tag.
    assert!(
        error.contains(".dcm") && error.contains("ImagePositionPatient"),
        "{error}"
    );
    let names = file_names(
        &client,
        "/data/projects/PIPE/subjects/S1/experiments/S1_CT/scans/2/resources/ADCMAP",
    )
    .await;
    for want in [
        "ADC_map.nii.gz",
        "ADC_map.png",
        "maps.json",
        PROVENANCE_FILE,
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(
        names.iter().any(|n| n == "ADC_map_dicom/IM0001.dcm"),
        "the DICOM series keeps its folder: {names:?}"
    );
}
