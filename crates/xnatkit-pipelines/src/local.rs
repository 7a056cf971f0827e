//! The local runner: a built-in command over a project's scans, on this
//! machine, against any XNAT (it needs nothing but the REST API).
//!
//! For each matching scan with a `DICOM` resource: download (verified,
//! resumable), run the command in a blocking thread, replace the output
//! resource, upload every output and then the provenance record.
//! Mask-average works per session instead: the map of its first matching
//! scan with a `T2MAP`/`T1MAP`/`ADCMAP` resource, the RTSTRUCT of its
//! newest ROI collection, the statistics as a `ROISTATS` session resource.
//! QA files an `xnat:qcAssessmentData` assessor `{session}_QA_{scan}` with
//! the scan's statistics and the reports as its `QA` resource. A scan
//! whose output resource already holds the provenance record is skipped
//! unless `overwrite`; one whose record is missing (an interrupted upload)
//! is redone. A failed scan is reported and the others go on; a fatal
//! error (login lost, disk full, tool missing, cancelled) stops the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use xnatkit_client::archive::{seg, session_path};
use xnatkit_client::download::{FileOutcome, download_file};
use xnatkit_client::{ClientError, Method, Request, RequestBody, XnatClient};
use xnatkit_fileio::SafeRelPath;
use xnatkit_model::AssessorType;
use xnatkit_model::assessor::output_assessor_label;
use xnatkit_model::assessor_xml::AssessorDocument;
use xnatkit_model::sanitize_label;

use crate::Error;
use crate::builtin::{self, Builtin};

/// The record uploaded last into an output resource: which command and
/// tool made it, from which inputs, when. Its presence means "complete".
pub const PROVENANCE_FILE: &str = "xnatkit-pipeline.json";

/// What to run, where.
#[derive(Debug, Clone)]
pub struct LocalRun {
    pub project: String,
    pub builtin: Builtin,
    /// Glob patterns on the scan type (case-insensitive); empty = every scan.
    pub scan_types: Vec<String>,
    pub overwrite: bool,
    /// Scans processed at once.
    pub jobs: usize,
    /// Downloads and outputs live here while a scan is processed.
    pub work_dir: PathBuf,
    pub cancel: CancellationToken,
    /// The built-in's parameters ([`Builtin::parameters`]), e.g. the T1
    /// map's `time-base`; recorded in the provenance record.
    pub params: builtin::Params,
}

/// One scan the run looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanTarget {
    pub subject: String,
    pub session: String,
    pub scan: String,
    pub scan_type: String,
    #[serde(skip)]
    path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Computed and uploaded: this many files (with the provenance record).
    Done {
        files: usize,
    },
    /// The output resource was already complete.
    AlreadyDone,
    /// The scan has no input resource.
    NoInput,
    Failed {
        error: String,
    },
    /// Not started: the run was cancelled or stopped by a fatal error.
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    #[serde(flatten)]
    pub target: ScanTarget,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Hears about progress (for progress bars); every method has a no-op default.
pub trait Observer: Send + Sync {
    fn planned(&self, _scans: usize) {}
    fn finished(&self, _report: &ScanReport) {}
}

impl Observer for () {}

impl ScanTarget {
    /// The scan's server path (`/data/projects/P/subjects/S/experiments/E/scans/ID`).
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Every scan of the project whose type matches `run.scan_types`.
pub async fn find_scans(client: &XnatClient, run: &LocalRun) -> Result<Vec<ScanTarget>, Error> {
    let matcher = scan_type_matcher(&run.scan_types)?;
    let mut found = Vec::new();
    for subject in client.subjects(&run.project).await? {
        for session in client.sessions(&run.project, &subject.label).await? {
            let base = session_path(&run.project, &subject.label, &session.label);
            let scans = client
                .scans(&run.project, &subject.label, &session.label)
                .await?
                .into_iter()
                .filter(|scan| {
                    matcher
                        .as_ref()
                        .is_none_or(|m| m.is_match(scan.scan_type.to_lowercase()))
                });
            if run.builtin == Builtin::MaskAverage {
                // One target per session: the first matching scan with a
                // map (none: the session is reported as lacking input).
                let mut map_scan = None;
                for scan in scans {
                    let resources = client
                        .resources(&format!("{base}/scans/{}", seg(&scan.id)))
                        .await?;
                    if resources
                        .iter()
                        .any(|r| MAP_RESOURCES.contains(&r.label.as_str()))
                    {
                        map_scan = Some(scan);
                        break;
                    }
                }
                found.push(ScanTarget {
                    subject: subject.label.clone(),
                    session: session.label.clone(),
                    path: base.clone(),
                    scan: map_scan.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
                    scan_type: map_scan.map(|s| s.scan_type).unwrap_or_default(),
                });
                continue;
            }
            for scan in scans {
                found.push(ScanTarget {
                    subject: subject.label.clone(),
                    session: session.label.clone(),
                    path: format!("{base}/scans/{}", seg(&scan.id)),
                    scan: scan.id,
                    scan_type: scan.scan_type,
                });
            }
        }
    }
    Ok(found)
}

fn scan_type_matcher(patterns: &[String]) -> Result<Option<GlobSet>, Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(&pattern.to_lowercase()).map_err(|e| Error::BadPattern {
            pattern: pattern.clone(),
            reason: e.to_string(),
        })?;
        set.add(glob);
    }
    set.build().map(Some).map_err(|e| Error::BadPattern {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

/// Runs `run` over every matching scan; the reports come in the order the
/// scans finished. `Err` only for what stops the whole run.
pub async fn run_local(
    client: &XnatClient,
    run: &LocalRun,
    observer: &dyn Observer,
) -> Result<Vec<ScanReport>, Error> {
    if matches!(run.builtin, Builtin::Dcm2niix | Builtin::Qa) {
        // Fail before the first download when the tool is missing.
        builtin::dcm2niix_version()?;
    }
    let targets = find_scans(client, run).await?;
    observer.planned(targets.len());
    let stop = run.cancel.child_token();
    let fatal: Arc<std::sync::Mutex<Option<Error>>> = Arc::default();
    let mut reports = Vec::with_capacity(targets.len());
    let mut results = futures::stream::iter(targets)
        .map(|target| {
            let stop = stop.clone();
            let fatal = Arc::clone(&fatal);
            async move {
                if stop.is_cancelled() {
                    return ScanReport {
                        target,
                        outcome: Outcome::NotRun,
                    };
                }
                let outcome = match process_scan(client, run, &target, &stop).await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        let message = error.to_string();
                        if error.is_fatal() {
                            stop.cancel();
                            let mut slot = fatal.lock().unwrap_or_else(|p| p.into_inner());
                            slot.get_or_insert(error);
                        }
                        Outcome::Failed { error: message }
                    }
                };
                ScanReport { target, outcome }
            }
        })
        .buffer_unordered(run.jobs.max(1));
    while let Some(report) = results.next().await {
        observer.finished(&report);
        reports.push(report);
    }
    let first_fatal = fatal.lock().unwrap_or_else(|p| p.into_inner()).take();
    match first_fatal {
        Some(error) => Err(error),
        None if run.cancel.is_cancelled() => Err(ClientError::Cancelled.into()),
        None => Ok(reports),
    }
}

/// Where a target's inputs come from and its outputs go.
struct Plan {
    /// (folder under the work folder, server resource path) per input,
    /// in the order the built-in takes them.
    inputs: Vec<(&'static str, String)>,
    /// The output resource's server path.
    output_path: String,
    /// It exists already (then it is replaced, never merged).
    has_output: bool,
    /// QA files an `xnat:qcAssessmentData` assessor of the scan's session
    /// (as the server's engine does), whose resource holds the outputs.
    assessor: Option<QcAssessor>,
}

/// The QC assessor a QA run files: `{session}_QA_{scan}`.
struct QcAssessor {
    /// Its server path (`…/experiments/E/assessors/LABEL`).
    path: String,
    label: String,
    scan: String,
}

/// The map resources mask-average measures in, most wanted first.
const MAP_RESOURCES: [&str; 3] = ["T2MAP", "T1MAP", "ADCMAP"];

/// `None` when the target lacks an input (the scan has no DICOM; for
/// mask-average the map or the ROI collection is missing).
async fn plan(
    client: &XnatClient,
    run: &LocalRun,
    target: &ScanTarget,
) -> Result<Option<Plan>, Error> {
    let output = run.builtin.output_resource();
    if run.builtin == Builtin::MaskAverage {
        // The target is the session; `scan` names the map's scan.
        if target.scan.is_empty() {
            return Ok(None);
        }
        let session_path = target.path.clone();
        let scan_path = format!("{session_path}/scans/{}", seg(&target.scan));
        let scan_resources = client.resources(&scan_path).await?;
        let Some(map) = MAP_RESOURCES
            .into_iter()
            .find(|m| scan_resources.iter().any(|r| r.label == *m))
        else {
            return Ok(None);
        };
        let project = &run.project;
        let mut collections: Vec<_> = client
            .assessors(project, &target.subject, &target.session)
            .await?
            .into_iter()
            .filter(|a| a.xsi_type == "icr:roiCollectionData")
            .collect();
        // The newest collection first, as the engine's default.
        collections.sort_by(|a, b| {
            b.insert_date
                .cmp(&a.insert_date)
                .then_with(|| b.id.cmp(&a.id))
        });
        let mut rtstruct = None;
        for collection in collections {
            let path = format!("{session_path}/assessors/{}", seg(&collection.id));
            if client
                .resources(&path)
                .await?
                .iter()
                .any(|r| r.label == "RTSTRUCT")
            {
                rtstruct = Some(format!("{path}/resources/RTSTRUCT"));
                break;
            }
        }
        let Some(rtstruct) = rtstruct else {
            return Ok(None);
        };
        let session_resources = client.resources(&session_path).await?;
        return Ok(Some(Plan {
            inputs: vec![
                ("map", format!("{scan_path}/resources/{}", seg(map))),
                ("rois", rtstruct),
            ],
            output_path: format!("{session_path}/resources/{}", seg(output)),
            has_output: session_resources.iter().any(|r| r.label == output),
            assessor: None,
        }));
    }
    let input = run.builtin.input_resource();
    let resources = client.resources(&target.path).await?;
    if !resources.iter().any(|r| r.label == input) {
        return Ok(None);
    }
    let inputs = vec![("input", format!("{}/resources/{}", target.path, seg(input)))];
    if run.builtin == Builtin::Qa {
        let label = output_assessor_label(&target.session, output, Some(&target.scan));
        let session_path = session_path(&run.project, &target.subject, &target.session);
        let path = format!("{session_path}/assessors/{}", seg(&label));
        let has_output = client
            .assessors(&run.project, &target.subject, &target.session)
            .await?
            .iter()
            .any(|a| a.label == label);
        return Ok(Some(Plan {
            inputs,
            output_path: format!("{path}/resources/{}", seg(output)),
            has_output,
            assessor: Some(QcAssessor {
                path,
                label,
                scan: target.scan.clone(),
            }),
        }));
    }
    Ok(Some(Plan {
        inputs,
        output_path: format!("{}/resources/{}", target.path, seg(output)),
        has_output: resources.iter().any(|r| r.label == output),
        assessor: None,
    }))
}

/// Replaces the QC assessor with one holding the scan's metrics (read
/// from the `qa.csv` QA wrote). Sent as XNAT's XML document, the one form
/// every XNAT takes for per-scan statistics; an earlier assessor is
/// deleted with its files first, so nothing of an older run survives.
async fn file_qc_assessor(
    client: &XnatClient,
    run: &LocalRun,
    assessor: &QcAssessor,
    existed: bool,
    out_dir: &Path,
) -> Result<(), Error> {
    let what = format!("assessor {}", assessor.label);
    if existed {
        let remove = Request::new(Method::DELETE, assessor.path.clone(), what.clone())
            .query("removeFiles", "true");
        client.send(&remove).await?;
    }
    let csv_path = out_dir.join("qa.csv");
    let csv = tokio::fs::read_to_string(&csv_path)
        .await
        .map_err(|e| Error::io(&csv_path, e))?;
    let document = AssessorDocument {
        xsi_type: AssessorType::QcAssessment,
        label: Some(assessor.label.clone()),
        fields: vec![
            ("type".to_owned(), "xnatkit-qa".to_owned()),
            (
                "date".to_owned(),
                chrono::Utc::now().format("%Y-%m-%d").to_string(),
            ),
        ],
        qc_scans: vec![(assessor.scan.clone(), xnatkit_qa::csv_metrics("", &csv))],
    };
    let put = Request::new(Method::PUT, assessor.path.clone(), what)
        .query("inbody", "true")
        .body(RequestBody::Bytes(
            document.to_xml(&run.project).into_bytes().into(),
            "text/xml",
        ));
    client.send(&put).await?;
    Ok(())
}

async fn process_scan(
    client: &XnatClient,
    run: &LocalRun,
    target: &ScanTarget,
    stop: &CancellationToken,
) -> Result<Outcome, Error> {
    let output = run.builtin.output_resource();
    let Some(plan) = plan(client, run, target).await? else {
        return Ok(Outcome::NoInput);
    };
    let output_path = plan.output_path.clone();
    if plan.has_output && !run.overwrite {
        // An assessor whose resource never got made (an interrupted run)
        // is redone, not an error.
        let files = match client.files(&output_path).await {
            Err(ClientError::NotFound { .. }) if plan.assessor.is_some() => Vec::new(),
            other => other?,
        };
        if files.iter().any(|f| f.path == PROVENANCE_FILE) {
            return Ok(Outcome::AlreadyDone);
        }
    }

    let work = scan_work_dir(&run.work_dir, &run.project, target);
    let out_dir = work.join("output");
    let mut input_dirs = Vec::new();
    let mut inputs = Vec::new();
    for (folder, resource) in &plan.inputs {
        let dir = work.join(folder);
        let files = client.files(resource).await?;
        for file in &files {
            if stop.is_cancelled() {
                return Err(ClientError::Cancelled.into());
            }
            // The server's listing is not trusted with our disk.
            let dest = SafeRelPath::parse(&file.path)
                .map_err(|e| Error::UnsafeName(file.path.clone(), e))?
                .under(&dir);
            let _: FileOutcome = download_file(client, file, &dest, None, &|_: u64| {}).await?;
        }
        input_dirs.push(dir);
        inputs.extend(files);
    }
    if out_dir.exists() {
        tokio::fs::remove_dir_all(&out_dir)
            .await
            .map_err(|e| Error::io(&out_dir, e))?;
    }
    tokio::fs::create_dir_all(&out_dir)
        .await
        .map_err(|e| Error::io(&out_dir, e))?;
    let which = run.builtin;
    let out = out_dir.clone();
    let params = run.params.clone();
    let made =
        tokio::task::spawn_blocking(move || builtin::run_with(which, &input_dirs, &out, &params))
            .await
            .map_err(|e| Error::ToolFailed {
                tool: "worker thread",
                message: e.to_string(),
            })??;
    if stop.is_cancelled() {
        return Err(ClientError::Cancelled.into());
    }

    // Replace, never merge: stale files of an earlier run must not survive
    // beside new ones.
    if let Some(assessor) = &plan.assessor {
        file_qc_assessor(client, run, assessor, plan.has_output, &out_dir).await?;
    } else if plan.has_output {
        let remove = Request::new(
            Method::DELETE,
            output_path.clone(),
            format!("resource {output}"),
        )
        .query("removeFiles", "true");
        client.send(&remove).await?;
    }
    client
        .put_object(
            &output_path,
            &[("format", output), ("content", which.name())],
            &format!("resource {output}"),
        )
        .await?;
    for file in &made.files {
        // Outputs in subfolders (a map's DICOM series) keep their folder.
        let name = relative_name(file, &out_dir);
        client.upload_file(&output_path, &name, file).await?;
    }
    let record = provenance(run, target, &inputs, &made, &out_dir);
    let record_path = work.join(PROVENANCE_FILE);
    tokio::fs::write(&record_path, record)
        .await
        .map_err(|e| Error::io(&record_path, e))?;
    client
        .upload_file(&output_path, PROVENANCE_FILE, &record_path)
        .await?;
    // The scan is done; its downloads and outputs are no longer needed.
    let _ = tokio::fs::remove_dir_all(&work).await;
    Ok(Outcome::Done {
        files: made.files.len() + 1,
    })
}

fn provenance(
    run: &LocalRun,
    target: &ScanTarget,
    inputs: &[xnatkit_client::archive::RemoteFile],
    made: &builtin::Outputs,
    out_dir: &Path,
) -> Vec<u8> {
    let record = serde_json::json!({
        "command": run.builtin.name(),
        "tool": made.tool_version,
        "runner": format!("xnatkit {} (local)", env!("CARGO_PKG_VERSION")),
        "finished_ms": xnatkit_model::now_ms(),
        "project": run.project,
        "subject": target.subject,
        "session": target.session,
        "scan": target.scan,
        "params": run.params,
        "inputs": inputs.iter().map(|f| serde_json::json!({
            "name": f.path,
            "md5": f.digest,
        })).collect::<Vec<_>>(),
        "outputs": made.files.iter().map(|f| relative_name(f, out_dir)).collect::<Vec<_>>(),
    });
    // A json! value of strings and numbers always serialises.
    serde_json::to_vec_pretty(&record).unwrap_or_default()
}

fn relative_name(path: &Path, out_dir: &Path) -> String {
    match path.strip_prefix(out_dir) {
        Ok(rel) if rel.components().count() > 1 => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        _ => file_name(path),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `WORK/project/subject/session/scan`, each part made safe as one folder name.
fn scan_work_dir(root: &Path, project: &str, target: &ScanTarget) -> PathBuf {
    [project, &target.subject, &target.session, &target.scan]
        .iter()
        .fold(root.to_owned(), |dir, part| {
            dir.join(sanitize_label(part).unwrap_or_else(|| "_".to_owned()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_folders_are_one_safe_name_per_level() {
        let target = ScanTarget {
            subject: "../x".to_owned(),
            session: "S 1".to_owned(),
            scan: "2".to_owned(),
            scan_type: String::new(),
            path: String::new(),
        };
        assert_eq!(
            scan_work_dir(Path::new("/w"), "P", &target),
            PathBuf::from("/w/P/___x/S_1/2")
        );
    }

    #[test]
    fn scan_types_match_case_insensitively() {
        let m = scan_type_matcher(&["t1*".to_owned()]).unwrap().unwrap();
        assert!(m.is_match("T1_MPRAGE".to_lowercase()));
        assert!(!m.is_match("dwi"));
        assert!(scan_type_matcher(&["[".to_owned()]).is_err());
        assert!(scan_type_matcher(&[]).unwrap().is_none());
    }
}
