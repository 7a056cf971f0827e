//! `xnatkit export`: one scan type per subject of a list, downloaded in
//! parallel, verified, resumable; a report in the output folder.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use xnatkit_client::ClientError;
use xnatkit_client::download::{ByteSink, FileOutcome};
use xnatkit_client::transfer::{FileJob, TransferObserver};
use xnatkit_export::export::{
    ExportObserver, ExportOptions, REPORT_CSV, SubjectReport, SubjectStatus, export,
};
use xnatkit_export::select::{SessionChoice, TypeSelector};
use xnatkit_export::subject_list::read_subject_list;

use super::common::{ServerArgs, human_bytes};
use crate::interrupt::{FirstCtrlC, cancel_on_ctrl_c};
use crate::printer::Printer;

/// Export one scan type for every subject in a list (CSV or XLSX).
///
/// For each subject the first of the -t types present in a session wins
/// (glob patterns allowed). Files go to OUT/SUBJECT/SCAN TYPE/ (see
/// --layout), each downloaded to NAME.part, checked against the server's
/// MD5 and only then renamed (a scan of which nothing is on disk yet comes
/// as one zip, each entry checked the same way). Run the same command again
/// to resume: verified files are skipped, damaged ones fetched again,
/// partial ones continued.
/// export-report.csv/.json in OUT list every subject's outcome.
/// Exit status: 0 when every listed subject was exported, 2 when some were
/// not (see the summary), 1 on errors that stop the whole run (wrong
/// login, unknown project, a full disk).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Subject list: .csv/.tsv/.txt or .xlsx/.xls/.ods (first sheet).
    #[arg(short = 'f', long = "file", value_name = "LIST")]
    list: PathBuf,
    /// Output folder (created if needed).
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    out: PathBuf,
    /// Project ID.
    #[arg(short = 'p', long, value_name = "PROJECT")]
    project: String,
    /// Scan type, in order of preference; repeat for fallbacks. Globs
    /// (`Fl_Thorax*`) allowed.
    #[arg(short = 't', long = "type", value_name = "TYPE", required = true)]
    types: Vec<String>,
    /// Match scan types ignoring case.
    #[arg(long)]
    ignore_case: bool,
    /// Subject column: header text, letter (B) or number (2). Default: found
    /// by header (subject, subject_label, PatientID, ...).
    #[arg(long, value_name = "COLUMN")]
    column: Option<String>,
    /// Only the most recent session of each subject, by session date (the
    /// label breaks ties). Default: every session; a subject with several
    /// then gets one OUT/SUBJECT/SESSION/SCAN TYPE folder per session.
    #[arg(long)]
    latest: bool,
    /// Folder layout below OUT, from {subject} {session} {scan_id}
    /// {scan_type} {resource}. Default: {subject}/{scan_type}, adding the
    /// session (and scan ID) only where a subject needs it.
    #[arg(long, value_name = "TEMPLATE")]
    layout: Option<String>,
    /// Resource to export; repeat for several, `*` for all.
    #[arg(long = "resource", value_name = "LABEL", default_value = "DICOM")]
    resources: Vec<String>,
    /// Files downloaded at the same time.
    #[arg(short = 'j', long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    // Check everything local before asking for a password.
    let subjects = read_subject_list(&args.list, args.column.as_deref())?;
    let types = TypeSelector::new(&args.types, args.ignore_case)?;
    if let Some(t) = &args.layout {
        xnatkit_export::layout::validate_template(t)?;
    }
    let client = args.server.connect().await?;
    let labels: Vec<String> = subjects.iter().map(|s| s.label.clone()).collect();
    printer.status(format_args!(
        "exporting {} subject(s) of project {} from {} to {}",
        labels.len(),
        args.project,
        client.server(),
        args.out.display()
    ));
    let options = ExportOptions {
        project: args.project.clone(),
        subjects,
        types,
        sessions: if args.latest {
            SessionChoice::Latest
        } else {
            SessionChoice::All
        },
        out: args.out.clone(),
        layout: args.layout.clone(),
        resources: args.resources.clone(),
        jobs: usize::from(args.jobs),
    };
    let progress = Progress::new(labels, printer);
    let cancel = cancel_on_ctrl_c(printer, FirstCtrlC::Cancel, FINISHING_FILES);
    let result = export(&client, &options, &progress, cancel).await;
    progress.finish();
    client.disconnect().await;
    // A full disk stops the whole run: one line says so, whatever else
    // failed after it (the report may not fit either).
    let disk_full = progress.disk_full().map(|path| {
        anyhow::anyhow!(
            "the disk holding {} is full (no space left while writing {}); free some space and \
             run the same command again: verified files are kept and partial ones resume",
            args.out.display(),
            path.display()
        )
    });
    let report = match result {
        Ok(report) => report,
        Err(err) => return Err(disk_full.unwrap_or_else(|| err.into())),
    };

    let t = report.totals;
    let secs = report.elapsed_seconds.max(0.001);
    #[allow(clippy::cast_precision_loss)]
    let fetched_mb = progress.bytes.load(Ordering::Relaxed) as f64 / 1e6;
    let exported = report
        .subjects
        .iter()
        .filter(|s| s.status == SubjectStatus::Exported)
        .count();
    printer.status(format_args!(
        "done in {secs:.1} s: {exported}/{} subjects exported; {} files ({}): {} downloaded, {} already verified, {} repaired, {} failed; {:.1} MB/s",
        report.subjects.len(),
        t.downloaded + t.already_verified + t.repaired,
        human_bytes(t.bytes),
        t.downloaded,
        t.already_verified,
        t.repaired,
        t.failed,
        fetched_mb / secs,
    ));
    printer.status(format_args!(
        "report: {}",
        args.out.join(REPORT_CSV).display()
    ));
    if args.json {
        printer.json(&report)?;
    }
    if let Some(full) = disk_full {
        return Err(full);
    }
    if report.complete() {
        return Ok(ExitCode::SUCCESS);
    }
    let rest: Vec<String> = report
        .incomplete()
        .map(|s| format!("{} ({})", s.subject, s.status.as_str()))
        .collect();
    printer.warn(format_args!("not exported: {}", rest.join(", ")));
    Ok(ExitCode::from(2))
}

/// The status line of the first Ctrl-C during a download.
pub const FINISHING_FILES: &str = "finishing the files in flight";

/// Progress display: a bar with bytes, files and the subjects in flight on
/// a terminal; plain lines on stderr otherwise.
pub struct Progress {
    printer: Printer,
    bar: Option<ProgressBar>,
    labels: Vec<String>,
    pub bytes: AtomicU64,
    files_done: AtomicU64,
    files_total: AtomicU64,
    /// Per subject: files left, files failed.
    left: Mutex<HashMap<usize, (u64, u64)>>,
    active: Mutex<BTreeSet<usize>>,
    started: Instant,
    /// The first file that did not fit on the disk.
    disk_full: Mutex<Option<PathBuf>>,
}

impl Progress {
    /// `labels` names the groups (subjects or sessions) of the jobs.
    pub fn new(labels: Vec<String>, printer: Printer) -> Self {
        let bar = printer.shows_progress().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            printer,
            bar,
            labels,
            bytes: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
            left: Mutex::new(HashMap::new()),
            active: Mutex::new(BTreeSet::new()),
            started: Instant::now(),
            disk_full: Mutex::new(None),
        }
    }

    /// The first file that could not be written because the disk was full.
    pub fn disk_full(&self) -> Option<PathBuf> {
        self.disk_full
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A status line, above the bar when there is one.
    pub fn status(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => self.printer.status(line),
        }
    }

    /// A line that `--quiet` keeps (a file that failed), above the bar
    /// when there is one.
    pub fn warn(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => self.printer.warn(line),
        }
    }

    /// Sets the totals before the transfer starts.
    pub fn set_jobs(&self, jobs: &[FileJob]) {
        let mut left = self
            .left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for job in jobs {
            left.entry(job.group).or_insert((0, 0)).0 += 1;
        }
        self.files_total.store(jobs.len() as u64, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(jobs.iter().filter_map(|j| j.remote.size).sum());
        }
    }

    fn refresh(&self) {
        let Some(bar) = &self.bar else { return };
        let active = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names: Vec<&str> = active
            .iter()
            .take(4)
            .filter_map(|g| self.labels.get(*g).map(String::as_str))
            .collect();
        bar.set_message(format!(
            "files {}/{} | {}",
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
            names.join(", ")
        ));
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn label(&self, group: usize) -> &str {
        self.labels.get(group).map_or("?", String::as_str)
    }
}

impl ByteSink for Progress {
    fn add(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }
}

impl TransferObserver for Progress {
    fn file_started(&self, job: &FileJob) {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(job.group);
        self.refresh();
    }

    fn file_finished(&self, job: &FileJob, result: &Result<FileOutcome, ClientError>) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        if let Err(ClientError::DiskFull { path }) = result {
            // Every transfer in flight fails the same way; the caller
            // reports it once.
            self.disk_full
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| path.clone());
        } else if let Err(err) = result
            && !matches!(err, ClientError::Cancelled)
        {
            self.warn(&format!(
                "{}: {}: {err}",
                self.label(job.group),
                job.remote.path
            ));
        }
        let finished = {
            let mut left = self
                .left
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = left.entry(job.group).or_insert((1, 0));
            entry.0 = entry.0.saturating_sub(1);
            if result.is_err() {
                entry.1 += 1;
            }
            (entry.0 == 0).then_some(entry.1)
        };
        if let Some(failed) = finished {
            self.active
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&job.group);
            if self.bar.is_none() {
                let status = if failed == 0 {
                    "done".to_owned()
                } else {
                    format!("{failed} file(s) failed")
                };
                self.status(&format!(
                    "{}: {status} ({:.0} s)",
                    self.label(job.group),
                    self.started.elapsed().as_secs_f64()
                ));
            }
        }
        self.refresh();
    }
}

impl ExportObserver for Progress {
    fn subject_planned(&self, report: &SubjectReport) {
        let line = match report.status {
            SubjectStatus::Exported => format!(
                "{}: {} (session {})",
                report.subject,
                report.matched_types.join(", "),
                report.sessions.join(", ")
            ),
            other => format!(
                "{}: {} ({})",
                report.subject,
                other.as_str(),
                report.message
            ),
        };
        self.status(&line);
    }

    fn planned(&self, jobs: &[FileJob]) {
        self.set_jobs(jobs);
    }
}
