//! Bulk export from a subject list: for each listed subject find its
//! sessions, pick scans by the ordered type list, list their files, lay
//! them out under the output folder, download everything in parallel with
//! verification, and write a per-subject report (CSV + JSON) next to the
//! data.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::layout::{DEFAULT_LAYOUTS, LayoutValues, render};
use crate::select::{SessionChoice, TypeSelector, choose_sessions};
use crate::subject_list::ListedSubject;
use xnatkit_client::XnatClient;
use xnatkit_client::archive::{RemoteFile, Scan, Session, Subject, seg, session_path};
use xnatkit_client::download::Manifest;
use xnatkit_client::transfer::{
    FileJob, JobResult, TransferObserver, TransferTotals, run_transfers,
};
use xnatkit_client::{ClientError, Result};

/// File names of the report written into the output folder.
pub const REPORT_CSV: &str = "export-report.csv";
pub const REPORT_JSON: &str = "export-report.json";

/// Everything an export needs.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub project: String,
    pub subjects: Vec<ListedSubject>,
    pub types: TypeSelector,
    pub sessions: SessionChoice,
    pub out: PathBuf,
    /// A `--layout` template; `None` for the default (see [`DEFAULT_LAYOUTS`]).
    pub layout: Option<String>,
    /// Resource labels to export (case-insensitive); empty = every resource
    /// except `SNAPSHOTS`.
    pub resources: Vec<String>,
    pub jobs: usize,
}

/// Outcome for one listed subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStatus {
    Exported,
    SubjectNotFound,
    NoMatchingScanType,
    /// A matching scan has no files in the selected resources.
    NoFiles,
    Failed,
}

impl SubjectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exported => "exported",
            Self::SubjectNotFound => "subject not found",
            Self::NoMatchingScanType => "no matching scan type",
            Self::NoFiles => "no files",
            Self::Failed => "failed",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectReport {
    pub subject: String,
    /// Row in the subject list.
    pub row: usize,
    pub status: SubjectStatus,
    pub matched_types: Vec<String>,
    pub sessions: Vec<String>,
    pub scans: Vec<String>,
    /// Folders (relative to the output folder) holding the files.
    pub folders: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    /// Files that were already complete and verified before this run.
    pub already_present: u64,
    pub message: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub server: String,
    pub project: String,
    pub scan_types: Vec<String>,
    pub output: String,
    pub elapsed_seconds: f64,
    pub totals: TransferTotals,
    pub subjects: Vec<SubjectReport>,
}

impl ExportReport {
    /// True when every listed subject was exported.
    pub fn complete(&self) -> bool {
        self.subjects
            .iter()
            .all(|s| s.status == SubjectStatus::Exported)
    }

    /// Subjects not exported, with their status.
    pub fn incomplete(&self) -> impl Iterator<Item = &SubjectReport> {
        self.subjects
            .iter()
            .filter(|s| s.status != SubjectStatus::Exported)
    }
}

/// Progress of an export (planning, then the transfer).
pub trait ExportObserver: TransferObserver {
    /// A subject was looked up; `report` has its status and matched types.
    fn subject_planned(&self, _report: &SubjectReport) {}
    /// Planning finished: these files will be checked or fetched.
    fn planned(&self, _jobs: &[FileJob]) {}
}

struct PlannedScan {
    session: Session,
    scan: Scan,
    files: Vec<RemoteFile>,
}

struct SubjectPlan {
    report: SubjectReport,
    scans: Vec<PlannedScan>,
}

/// Runs an export. Only errors that make the whole run impossible (project
/// not found, login failure, unwritable output folder) are returned as
/// `Err`; per-subject problems end up in the report.
pub async fn export(
    client: &XnatClient,
    options: &ExportOptions,
    observer: &dyn ExportObserver,
    cancel: CancellationToken,
) -> Result<ExportReport> {
    let started = Instant::now();
    if let Some(t) = &options.layout {
        crate::layout::validate_template(t)?;
    }
    client
        .project(&options.project)
        .await
        .map_err(|e| match e {
            ClientError::NotFound { server, .. } => ClientError::NotFound {
                what: format!("project {:?}", options.project),
                server,
            },
            other => other,
        })?;
    let known: HashMap<String, Subject> = client
        .subjects(&options.project)
        .await?
        .into_iter()
        .map(|s| (s.label.clone(), s))
        .collect();
    let known = &known;

    let mut plans: Vec<SubjectPlan> = futures::stream::iter(options.subjects.iter())
        .map(|listed| async move {
            let plan = plan_subject(client, options, known, listed).await;
            observer.subject_planned(&plan.report);
            plan
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await;

    let mut jobs = Vec::new();
    for (group, plan) in plans.iter_mut().enumerate() {
        match lay_out(options, plan, group) {
            Ok(mut j) => jobs.append(&mut j),
            Err(err) => {
                plan.report.status = SubjectStatus::Failed;
                plan.report.message = err.to_string();
            }
        }
    }
    check_unique_destinations(&jobs)?;
    observer.planned(&jobs);

    std::fs::create_dir_all(&options.out).map_err(|e| ClientError::io(&options.out, e))?;
    let manifest = Manifest::open(&options.out)?;
    let results = run_transfers(
        client,
        jobs,
        Some(&manifest),
        options.jobs,
        observer,
        cancel,
    )
    .await;
    let totals = TransferTotals::from_results(&results);
    apply_results(&mut plans, &results);

    let report = ExportReport {
        server: client.server().to_owned(),
        project: options.project.clone(),
        scan_types: options.types.patterns().map(str::to_owned).collect(),
        output: options.out.display().to_string(),
        elapsed_seconds: started.elapsed().as_secs_f64(),
        totals,
        subjects: plans.into_iter().map(|p| p.report).collect(),
    };
    write_report(&options.out, &report)?;
    Ok(report)
}

async fn plan_subject(
    client: &XnatClient,
    options: &ExportOptions,
    known: &HashMap<String, Subject>,
    listed: &ListedSubject,
) -> SubjectPlan {
    let mut report = SubjectReport {
        subject: listed.label.clone(),
        row: listed.row,
        status: SubjectStatus::Exported,
        matched_types: Vec::new(),
        sessions: Vec::new(),
        scans: Vec::new(),
        folders: Vec::new(),
        files: 0,
        bytes: 0,
        already_present: 0,
        message: String::new(),
    };
    let Some(subject) = known.get(&listed.label) else {
        report.status = SubjectStatus::SubjectNotFound;
        report.message = format!(
            "no subject {:?} in project {:?}",
            listed.label, options.project
        );
        return SubjectPlan {
            report,
            scans: Vec::new(),
        };
    };
    match find_scans(client, options, subject).await {
        Ok((scans, present_types)) => {
            if scans.is_empty() {
                report.status = SubjectStatus::NoMatchingScanType;
                report.message = if present_types.is_empty() {
                    "the subject has no scans".into()
                } else {
                    format!(
                        "scan types present: {}",
                        present_types.into_iter().collect::<Vec<_>>().join(", ")
                    )
                };
            } else if scans.iter().all(|(_, s)| s.files.is_empty()) {
                report.status = SubjectStatus::NoFiles;
                report.message =
                    "the matching scans have no files in the selected resources".into();
            }
            for (pattern, planned) in &scans {
                if !report.matched_types.contains(pattern) {
                    report.matched_types.push(pattern.clone());
                }
                if !report.sessions.contains(&planned.session.label) {
                    report.sessions.push(planned.session.label.clone());
                }
                report
                    .scans
                    .push(format!("{}:{}", planned.session.label, planned.scan.id));
            }
            SubjectPlan {
                report,
                scans: scans.into_iter().map(|(_, p)| p).collect(),
            }
        }
        Err(err) => {
            report.status = SubjectStatus::Failed;
            report.message = err.to_string();
            SubjectPlan {
                report,
                scans: Vec::new(),
            }
        }
    }
}

/// Matching scans (with the pattern that matched) and, for the report, all
/// scan types seen.
async fn find_scans(
    client: &XnatClient,
    options: &ExportOptions,
    subject: &Subject,
) -> Result<(Vec<(String, PlannedScan)>, BTreeSet<String>)> {
    let sessions = choose_sessions(
        client.sessions(&options.project, &subject.id).await?,
        options.sessions,
    );
    let mut found = Vec::new();
    let mut present = BTreeSet::new();
    for session in sessions {
        let scans = client
            .scans(&options.project, &subject.id, &session.id)
            .await?;
        present.extend(scans.iter().map(|s| s.scan_type.clone()));
        let Some((pattern, hits)) = options.types.pick(&scans) else {
            continue;
        };
        let pattern = pattern.to_owned();
        for scan in hits {
            let scan_path = format!(
                "{}/scans/{}",
                session_path(&options.project, &subject.id, &session.id),
                seg(&scan.id)
            );
            let files: Vec<RemoteFile> = client
                .files(&scan_path)
                .await?
                .into_iter()
                .filter(|f| resource_selected(&options.resources, &f.resource))
                .collect();
            found.push((
                pattern.clone(),
                PlannedScan {
                    session: session.clone(),
                    scan: scan.clone(),
                    files,
                },
            ));
        }
    }
    Ok((found, present))
}

fn resource_selected(wanted: &[String], label: &str) -> bool {
    if wanted.is_empty() {
        return !label.eq_ignore_ascii_case("SNAPSHOTS");
    }
    wanted
        .iter()
        .any(|w| w == "*" || w.eq_ignore_ascii_case(label))
}

/// Turns a subject's scans into file jobs under the layout.
fn lay_out(options: &ExportOptions, plan: &mut SubjectPlan, group: usize) -> Result<Vec<FileJob>> {
    if plan.scans.is_empty() {
        return Ok(Vec::new());
    }
    let several_resources = plan
        .scans
        .iter()
        .flat_map(|s| s.files.iter().map(|f| f.resource.as_str()))
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    let candidates: Vec<String> = match &options.layout {
        Some(t) => vec![t.clone()],
        None => DEFAULT_LAYOUTS
            .iter()
            .map(|t| {
                if several_resources {
                    format!("{t}/{{resource}}")
                } else {
                    (*t).to_owned()
                }
            })
            .collect(),
    };
    let mut chosen = candidates.last().cloned().unwrap_or_default();
    for template in &candidates {
        let mut folders = BTreeSet::new();
        let mut unique = true;
        for p in &plan.scans {
            for resource in p
                .files
                .iter()
                .map(|f| f.resource.as_str())
                .collect::<BTreeSet<_>>()
            {
                let dir = render_for(template, &plan.report.subject, p, resource)?;
                unique &= folders.insert(dir);
            }
        }
        if unique {
            chosen = template.clone();
            break;
        }
    }
    let mut jobs = Vec::new();
    let mut folders = BTreeSet::new();
    for p in &plan.scans {
        for file in &p.files {
            let dir = render_for(&chosen, &plan.report.subject, p, &file.resource)?;
            let rel = xnatkit_fileio::safe_relative_path(&file.path)?;
            folders.insert(dir.display().to_string());
            jobs.push(FileJob {
                group,
                remote: file.clone(),
                dest: options.out.join(dir).join(rel),
            });
        }
    }
    plan.report.folders = folders.into_iter().collect();
    Ok(jobs)
}

fn render_for(template: &str, subject: &str, p: &PlannedScan, resource: &str) -> Result<PathBuf> {
    render(
        template,
        &LayoutValues {
            subject,
            session: &p.session.label,
            scan_id: &p.scan.id,
            scan_type: &p.scan.scan_type,
            resource,
        },
    )
}

fn check_unique_destinations(jobs: &[FileJob]) -> Result<()> {
    let mut seen: HashMap<&Path, &str> = HashMap::new();
    for job in jobs {
        if let Some(other) = seen.insert(&job.dest, &job.remote.uri)
            && other != job.remote.uri
        {
            return Err(ClientError::Invalid(format!(
                "the layout puts two different files at {}; add {{session}}, {{scan_id}} or {{resource}} to --layout",
                job.dest.display()
            )));
        }
    }
    Ok(())
}

fn apply_results(plans: &mut [SubjectPlan], results: &[JobResult]) {
    let mut errors: HashMap<usize, (u64, String)> = HashMap::new();
    for r in results {
        let report = &mut plans[r.job.group].report;
        match &r.result {
            Ok(outcome) => {
                report.files += 1;
                report.bytes += r.job.remote.size.unwrap_or(0);
                if *outcome == xnatkit_client::download::FileOutcome::AlreadyVerified {
                    report.already_present += 1;
                }
            }
            Err(err) => {
                let entry = errors.entry(r.job.group).or_insert((0, err.to_string()));
                entry.0 += 1;
            }
        }
    }
    for (group, (count, first)) in errors {
        let report = &mut plans[group].report;
        report.status = SubjectStatus::Failed;
        report.message = if matches!(first.as_str(), "interrupted") {
            format!("{count} file(s) not fetched (run stopped); run again to resume")
        } else {
            format!("{count} file(s) failed; first error: {first}")
        };
    }
}

/// Writes `export-report.csv` and `export-report.json` atomically.
pub fn write_report(out: &Path, report: &ExportReport) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let header = [
        "subject",
        "row",
        "status",
        "matched_type",
        "sessions",
        "scans",
        "folders",
        "files",
        "bytes",
        "already_present",
        "message",
    ];
    let csv_err = |e: csv::Error| ClientError::Invalid(format!("cannot build the report: {e}"));
    csv.write_record(header).map_err(csv_err)?;
    for s in &report.subjects {
        csv.write_record([
            s.subject.as_str(),
            &s.row.to_string(),
            s.status.as_str(),
            &s.matched_types.join("; "),
            &s.sessions.join("; "),
            &s.scans.join("; "),
            &s.folders.join("; "),
            &s.files.to_string(),
            &s.bytes.to_string(),
            &s.already_present.to_string(),
            &s.message,
        ])
        .map_err(csv_err)?;
    }
    let csv_bytes = csv
        .into_inner()
        .map_err(|e| ClientError::Invalid(format!("cannot build the report: {e}")))?;
    write_atomic(&out.join(REPORT_CSV), &csv_bytes)?;
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| ClientError::Invalid(format!("cannot build the report: {e}")))?;
    write_atomic(&out.join(REPORT_JSON), &json)
}

/// Temp name, fsync, rename: a reader never sees half a report.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .map_err(|e| ClientError::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| ClientError::io(path, e)));
    if written.is_err() {
        // A half-written temporary (full disk) must not be left lying around.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
