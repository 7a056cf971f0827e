//! Sample data for `xnatkit demo`, tests and benchmarks (feature
//! `sample-data`): CT sessions of synthetic but well-formed DICOM, put on a
//! server through the REST API exactly as a script would (subject, session,
//! scan, `DICOM` resource, one PUT per file), and subject lists written as
//! real xlsx files.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_series};

use crate::archive::seg;
use crate::client::XnatClient;
use crate::error::{ClientError, Result};

/// One scan to generate.
#[derive(Debug, Clone)]
pub struct SampleScan {
    pub id: String,
    pub scan_type: String,
    pub slices: usize,
    /// Image side in pixels (16-bit samples): 256 → 128 KiB per slice.
    pub side: u16,
}

#[derive(Debug, Clone)]
pub struct SampleSession {
    pub label: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub scans: Vec<SampleScan>,
}

#[derive(Debug, Clone)]
pub struct SampleSubject {
    pub label: String,
    pub sessions: Vec<SampleSession>,
}

/// A cell of a generated subject list.
#[derive(Debug, Clone)]
pub enum ListCell {
    /// Typed as a number, the way Excel stores `125586`.
    Number(f64),
    Text(String),
}

/// Creates the project if needed (the caller owns it afterwards).
pub async fn ensure_project(client: &XnatClient, project: &str) -> Result<()> {
    client
        .put_object(
            &format!("/data/projects/{}", seg(project)),
            &[("name", project)],
            &format!("project {project:?}"),
        )
        .await
        .map(drop)
}

/// Generates the DICOM files under `workdir` and uploads them. Returns the
/// number of bytes uploaded.
pub async fn upload_sample(
    client: &XnatClient,
    project: &str,
    subjects: &[SampleSubject],
    workdir: &Path,
    parallel: usize,
) -> Result<u64> {
    let mut uploads: Vec<(String, String, PathBuf)> = Vec::new();
    for subject in subjects {
        let subject_path = format!(
            "/data/projects/{}/subjects/{}",
            seg(project),
            seg(&subject.label)
        );
        client
            .put_object(
                &subject_path,
                &[("xsiType", "xnat:subjectData")],
                &format!("subject {:?}", subject.label),
            )
            .await?;
        for session in &subject.sessions {
            let session_path = format!("{subject_path}/experiments/{}", seg(&session.label));
            client
                .put_object(
                    &session_path,
                    &[
                        ("xsiType", "xnat:ctSessionData"),
                        ("xnat:ctSessionData/date", &session.date),
                        ("xnat:ctSessionData/modality", "CT"),
                    ],
                    &format!("session {:?}", session.label),
                )
                .await?;
            let study_uid = new_uid();
            for scan in &session.scans {
                let scan_path = format!("{session_path}/scans/{}", seg(&scan.id));
                client
                    .put_object(
                        &scan_path,
                        &[
                            ("xsiType", "xnat:ctScanData"),
                            ("xnat:ctScanData/type", &scan.scan_type),
                            ("xnat:ctScanData/series_description", &scan.scan_type),
                        ],
                        &format!("scan {:?}", scan.id),
                    )
                    .await?;
                let resource_path = format!("{scan_path}/resources/DICOM");
                client
                    .put_object(
                        &resource_path,
                        &[("format", "DICOM"), ("content", "RAW")],
                        "resource DICOM",
                    )
                    .await?;
                let dir = workdir
                    .join(&subject.label)
                    .join(&session.label)
                    .join(&scan.id);
                let template = SyntheticInstance {
                    modality: "CT".into(),
                    series_number: scan.id.parse().ok(),
                    series_description: Some(scan.scan_type.clone()),
                    patient_id: Some(subject.label.clone()),
                    patient_name: Some(format!("Sample^{}", subject.label)),
                    study_description: Some("Thorax CT".into()),
                    study_date: Some(session.date.replace('-', "")),
                    rows: scan.side,
                    cols: scan.side,
                    ..SyntheticInstance::new(&study_uid, &new_uid())
                };
                let slices = scan.slices;
                let dir_for_task = dir.clone();
                let paths = tokio::task::spawn_blocking(move || {
                    write_series(&dir_for_task, &template, slices)
                })
                .await
                .map_err(|e| ClientError::Invalid(format!("sample generator failed: {e}")))?
                .map_err(|e| ClientError::io(&dir, e))?;
                for path in paths {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    uploads.push((resource_path.clone(), name, path));
                }
            }
        }
    }
    let results: Vec<Result<u64>> = futures::stream::iter(uploads)
        .map(|(resource, name, path)| async move {
            client.upload_file(&resource, &name, &path).await?;
            Ok(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0))
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}

/// Writes a one-sheet xlsx with a header cell and one subject per row.
pub fn write_subject_list_xlsx(path: &Path, header: &str, cells: &[ListCell]) -> Result<()> {
    let fail = |e: rust_xlsxwriter::XlsxError| {
        ClientError::Invalid(format!("cannot write {}: {e}", path.display()))
    };
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, header).map_err(fail)?;
    for (i, cell) in cells.iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        match cell {
            ListCell::Number(n) => sheet.write_number(row, 0, *n).map(drop).map_err(fail)?,
            ListCell::Text(t) => sheet.write_string(row, 0, t).map(drop).map_err(fail)?,
        }
    }
    book.save(path).map_err(fail)
}

/// The seed story in miniature: one CT session per subject, most with the
/// preferred type `Fl_Thorax INSP 3.0 Qr36`, every third only the fallback
/// `Fl_Thorax 3.0 Qr36`, the last one neither; every session also has a
/// topogram scan that must not be exported.
pub fn seed_story_subjects(labels: &[&str], slices: usize, side: u16) -> Vec<SampleSubject> {
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            // The last subject lacks both thorax types; every third one
            // has only the fallback.
            let main_type = if i + 1 == labels.len() {
                None
            } else if i % 3 == 1 {
                Some("Fl_Thorax 3.0 Qr36")
            } else {
                Some("Fl_Thorax INSP 3.0 Qr36")
            };
            let mut scans = vec![SampleScan {
                id: "1".into(),
                scan_type: "Topogram 0.6 T20f".into(),
                slices: 2,
                side: side.min(128),
            }];
            if let Some(t) = main_type {
                scans.push(SampleScan {
                    id: "2".into(),
                    scan_type: t.into(),
                    slices,
                    side,
                });
            }
            SampleSubject {
                label: (*label).to_owned(),
                sessions: vec![SampleSession {
                    label: format!("{label}_CT1"),
                    date: format!("2024-0{}-1{}", 1 + i % 9, i % 10),
                    scans,
                }],
            }
        })
        .collect()
}

/// Writes `count` CT instances of one series (study date `YYYYMMDD`) into
/// `dir`, for import tests and demos; returns the file paths.
pub fn write_sample_series(
    dir: &Path,
    patient: &str,
    series_number: i64,
    series_description: &str,
    count: usize,
) -> Result<Vec<PathBuf>> {
    let template = SyntheticInstance {
        modality: "CT".into(),
        series_number: Some(series_number),
        series_description: Some(series_description.into()),
        patient_id: Some(patient.into()),
        patient_name: Some(format!("Sample^{patient}")),
        rows: 32,
        cols: 32,
        ..SyntheticInstance::new(&new_uid(), &new_uid())
    };
    write_series(dir, &template, count).map_err(|e| ClientError::io(dir, e))
}
