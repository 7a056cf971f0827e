//! `xnatkit upload {init,scan,run}`: the two-pass spreadsheet uploader
//! (xnatuploader-compatible). The logic lives in the `xnatkit-upload` crate; this
//! module parses arguments, logs in, shows progress and handles Ctrl-C.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;
use xnatkit_client::auth::{AuthInput, resolve_credentials};
use xnatkit_client::{ClientOptions, XnatClient};
use xnatkit_upload::run::{RunObserver, RunOptions};

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
    #[command(alias = "upload")]
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
    /// XNAT server URL (overrides the worksheet's).
    #[arg(long)]
    server: Option<String>,
    /// User name (password from XNAT_PASS, ~/.netrc or a prompt); without it a
    /// stored `xnatkit login` token or a ~/.netrc entry is used.
    #[arg(long, short = 'u')]
    user: Option<String>,
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
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        UploadCommand::Init(a) => init(a),
        UploadCommand::Scan(a) => scan(a).await,
        UploadCommand::Run(a) => upload(a).await,
    }
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    xnatkit_upload::write_default(&args.spreadsheet, args.force)?;
    eprintln!("Initialised spreadsheet at {}", args.spreadsheet.display());
    Ok(ExitCode::SUCCESS)
}

async fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
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
    eprintln!(
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
    );
    Ok(ExitCode::SUCCESS)
}

async fn upload(args: RunArgs) -> anyhow::Result<ExitCode> {
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
            println!("{line}");
        }
        println!(
            "test mode: {} file(s) in {} session(s) would be sent; nothing was sent",
            prepared.plan.file_count(),
            prepared.plan.sessions.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let server = args
        .server
        .clone()
        .or_else(|| prepared.config.xnat_value("Server").map(str::to_owned));
    let input = AuthInput {
        server,
        user: args.user.clone(),
        password: None,
    };
    let prompt = |server: &str, user: &str| -> Option<String> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(format!("Password for {user} at {server}: ")).ok()
    };
    let (server, credentials, _) = resolve_credentials(&input, &prompt)?;
    let client = XnatClient::connect(&server, credentials, ClientOptions::default()).await?;

    let log = match &args.logdir {
        Some(dir) => Some(open_log(dir)?),
        None => None,
    };
    let observer = Bars::new(log);
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(watch_ctrl_c(cancel.clone()));
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
    watcher.abort();
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
    eprintln!("{summary}");
    if report.cancelled {
        eprintln!("Interrupted: rerun the same command to continue.");
        return Ok(ExitCode::from(130));
    }
    if report.failed > 0 {
        eprintln!(
            "Some files failed (see the Status column); rerun the same command to retry them."
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

/// Ctrl-C: on a terminal ask first (uploads keep going while asking);
/// without one stop at once. Either way requests in flight finish.
async fn watch_ctrl_c(cancel: CancellationToken) {
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            cancel.cancel();
            return;
        }
        let confirmed = tokio::task::spawn_blocking(|| {
            eprint!("\nAre you sure that you want to quit uploading? [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).is_ok()
                && answer.trim().eq_ignore_ascii_case("y")
        })
        .await
        .unwrap_or(true);
        if confirmed {
            cancel.cancel();
            return;
        }
    }
}

/// Two progress bars (datasets, files of the current dataset) and the log file.
struct Bars {
    multi: MultiProgress,
    datasets: ProgressBar,
    files: ProgressBar,
    log: Option<Mutex<std::fs::File>>,
}

impl Bars {
    fn new(log: Option<std::fs::File>) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template("{prefix:>9} {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let datasets = multi.add(
            ProgressBar::new(0)
                .with_style(style.clone())
                .with_prefix("datasets"),
        );
        let files = multi.add(ProgressBar::new(0).with_style(style).with_prefix("files"));
        Self {
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
        let _ = self.multi.println(line);
        if self.multi.is_hidden() {
            eprintln!("{line}");
        }
    }
}
