//! `xnatkit upload {init,scan,run}`: the two-pass spreadsheet uploader
//! (xnatuploader-compatible). The logic lives in the `xnatkit-upload` crate; this
//! module parses arguments, logs in, shows progress and handles Ctrl-C.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use xnatkit_upload::run::{RunObserver, RunOptions};

use super::common::ServerArgs;
use crate::interrupt::{EXIT_INTERRUPTED, FirstCtrlC, cancel_on_ctrl_c};
use crate::printer::Printer;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: UploadCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UploadCommand {
    /// Write a new workbook with the default Configuration worksheet.
    Init(InitArgs),
    /// Pass 1: match the files under --dir and list them in the Files worksheet.
    Scan(ScanArgs),
    /// Pass 2: upload the selected rows and write each row's status back.
    #[command(alias = "upload", after_help = RUN_EXAMPLES)]
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Workbook to create (.xlsx).
    #[arg(long, default_value = "files.xlsx")]
    spreadsheet: PathBuf,
    /// Replace an existing workbook.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct ScanArgs {
    #[arg(long, default_value = "files.xlsx")]
    spreadsheet: PathBuf,
    /// Folder to scan.
    #[arg(long, default_value = "./")]
    dir: PathBuf,
    /// Also list files that no pattern matched, with the reason (not selected).
    #[arg(long)]
    unmatched: bool,
    /// Threads reading DICOM headers.
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(long, default_value = "files.xlsx")]
    spreadsheet: PathBuf,
    /// The scanned folder (relative File cells are looked up here).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Project ID (overrides the worksheet's).
    #[arg(long)]
    project: Option<String>,
    /// Send nothing; print what would be created and sent.
    #[arg(long)]
    test: bool,
    /// Replace files already on the server whose content differs.
    #[arg(long)]
    overwrite: bool,
    /// Create the project if it does not exist.
    #[arg(long)]
    create_project: bool,
    /// Files in flight at once (16 measured ~2x faster than 8 on loopback).
    #[arg(long, default_value_t = 16)]
    jobs: usize,
    /// Do not ask the server to pull header data / fix scan types afterwards.
    #[arg(long)]
    no_pipeline: bool,
    /// Folder for the log file (xnatkit-upload.log).
    #[arg(long)]
    logdir: Option<PathBuf>,
    /// --server overrides the Server of the workbook's Configuration
    /// worksheet, which is used before $XNAT_HOST.
    #[command(flatten)]
    server: ServerArgs,
}

const RUN_EXAMPLES: &str = "\
Examples:
  xnatkit upload run --spreadsheet files.xlsx --dir /data/scans -u alice
  xnatkit upload run --test                          # show what would be sent
  XNAT_PASS=... xnatkit upload run -u alice --server https://xnat.example.org \\
      --ca-bundle site-ca.pem --project LUNG --create-project

Each row is marked success only once the server's MD5 matches. Ctrl-C (asked
to confirm on a terminal) finishes the files in flight, marks the rest
\"Upload interrupted by user\" and exits 130; a second Ctrl-C stops at once.
Run the same command again to continue.";

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    match args.command {
        UploadCommand::Init(a) => init(a, printer),
        UploadCommand::Scan(a) => scan(a, printer).await,
        UploadCommand::Run(a) => upload(a, printer).await,
    }
}

fn init(args: InitArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    xnatkit_upload::write_default(&args.spreadsheet, args.force)?;
    printer.status(format_args!(
        "Initialised spreadsheet at {}",
        args.spreadsheet.display()
    ));
    Ok(ExitCode::SUCCESS)
}

async fn scan(args: ScanArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let options = xnatkit_upload::ScanOptions {
        include_unmatched: args.unmatched,
        jobs: args.jobs.max(1),
    };
    let summary = tokio::task::spawn_blocking(move || {
        xnatkit_upload::scan_to_workbook(&args.spreadsheet, &args.dir, &options)
            .map(|s| (s, args.spreadsheet))
    })
    .await
    .context("the scan stopped unexpectedly")??;
    let (s, path) = summary;
    printer.status(format_args!(
        "Saved {} file(s) in {} session(s), {} scan(s) to {} ({} of {} file(s) unmatched{})",
        s.matched,
        s.sessions,
        s.scans,
        path.display(),
        s.unmatched,
        s.files_seen,
        if s.unmatched > 0 {
            "; rerun with --unmatched to list them"
        } else {
            ""
        }
    ));
    Ok(ExitCode::SUCCESS)
}

async fn upload(args: RunArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let spreadsheet = args.spreadsheet.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        xnatkit_upload::run::prepare(&spreadsheet, !args.test).map(|p| (p, args))
    })
    .await
    .context("reading the workbook stopped unexpectedly")??;
    let (prepared, args) = prepared;
    let project = xnatkit_upload::run::resolve_project(&prepared, args.project.as_deref())?;
    if args.test {
        for line in xnatkit_upload::run::describe(&prepared.plan, &prepared.rows, &project) {
            printer.data(line)?;
        }
        printer.data(format_args!(
            "test mode: {} file(s) in {} session(s) would be sent; nothing was sent",
            prepared.plan.file_count(),
            prepared.plan.sessions.len()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let client = args
        .server
        .connect_or(prepared.config.xnat_value("Server"))
        .await?;

    let log = match &args.logdir {
        Some(dir) => Some(open_log(dir)?),
        None => None,
    };
    let observer = Bars::new(log, printer);
    let cancel = cancel_on_ctrl_c(
        printer,
        FirstCtrlC::ConfirmOnTerminal,
        "finishing the uploads in flight",
    );
    let options = RunOptions {
        dir: args.dir.clone(),
        project: Some(project),
        jobs: args.jobs.max(1),
        overwrite: args.overwrite,
        create_project: args.create_project,
        trigger_pipelines: !args.no_pipeline,
    };
    let result =
        xnatkit_upload::run::run(&client, prepared, &options, &observer, cancel.clone()).await;
    observer.finish();
    client.disconnect().await;
    let report = result?;
    let summary = format!(
        "{}: {} uploaded and verified, {} already uploaded, {} failed, {} interrupted, {} not selected; statuses saved in {}",
        report.project,
        report.uploaded,
        report.already_done,
        report.failed,
        report.interrupted,
        report.not_selected,
        args.spreadsheet.display()
    );
    observer.log(&summary);
    printer.status(&summary);
    if report.cancelled {
        printer.warn("Interrupted: rerun the same command to continue.");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if report.failed > 0 {
        printer.warn(
            "Some files failed (see the Status column); rerun the same command to retry them.",
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn open_log(dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create log folder {}", dir.display()))?;
    let path = dir.join("xnatkit-upload.log");
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open log file {}", path.display()))
}

/// Two progress bars (datasets, files of the current dataset) and the log file.
struct Bars {
    printer: Printer,
    multi: MultiProgress,
    datasets: ProgressBar,
    files: ProgressBar,
    log: Option<Mutex<std::fs::File>>,
}

impl Bars {
    fn new(log: Option<std::fs::File>, printer: Printer) -> Self {
        let multi = MultiProgress::with_draw_target(printer.progress_target());
        let style = ProgressStyle::with_template("{prefix:>9} {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let datasets = multi.add(
            ProgressBar::new(0)
                .with_style(style.clone())
                .with_prefix("datasets"),
        );
        let files = multi.add(ProgressBar::new(0).with_style(style).with_prefix("files"));
        Self {
            printer,
            multi,
            datasets,
            files,
            log: log.map(Mutex::new),
        }
    }

    fn log(&self, line: &str) {
        if let Some(log) = &self.log
            && let Ok(mut file) = log.lock()
        {
            let _ = writeln!(file, "{line}");
        }
    }

    fn finish(&self) {
        self.files.finish_and_clear();
        self.datasets.finish_and_clear();
    }
}

impl RunObserver for Bars {
    fn datasets(&self, count: usize) {
        self.datasets.set_length(count as u64);
    }
    fn dataset_started(&self, name: &str, files: usize) {
        self.datasets.set_message(name.to_owned());
        self.files.reset();
        self.files.set_length(files as u64);
        self.log(&format!("dataset {name}: {files} file(s)"));
    }
    fn file_done(&self) {
        self.files.inc(1);
    }
    fn dataset_done(&self) {
        self.datasets.inc(1);
    }
    fn note(&self, line: &str) {
        self.log(line);
        if self.multi.is_hidden() {
            self.printer.warn(line);
        } else {
            let _ = self.multi.println(line);
        }
    }
}
