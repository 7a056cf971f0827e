//! `xnatkit pipeline`: the built-in processing commands. `list` shows them;
//! `run NAME --project P --local` runs one over a project's scans on this
//! machine against any XNAT (the logic is `xnatkit-pipelines`' local runner;
//! this module parses, shows progress and prints the summary).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use xnatkit_pipelines::builtin::Builtin;
use xnatkit_pipelines::local::{LocalRun, Observer, Outcome, ScanReport, run_local};

use super::common::ServerArgs;
use crate::interrupt::{FirstCtrlC, cancel_on_ctrl_c};
use crate::printer::Printer;

/// Run processing pipelines (dcm2niix NIfTI conversion, image QA) over a
/// project's scans.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the built-in commands.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a built-in command over every matching scan of a project.
    #[command(after_help = "\
Examples:
  # NIfTI for every scan of PROJ, here, against any XNAT:
  xnatkit pipeline run dcm2niix --project PROJ --local -s https://xnat.example.org -u alice
  # QA of the T1 and BOLD scans only, 4 at a time:
  xnatkit pipeline run qa --project PROJ --scan-type 't1*' --scan-type '*bold*' -j 4 --local

Each scan's DICOM resource is downloaded, processed, and its output resource
(NIFTI or QA) replaced; the provenance record xnatkit-pipeline.json goes up
last. Scans that already have it are skipped unless --overwrite; rerun after
an interruption to finish the rest.")]
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The command: dcm2niix or qa (see `xnatkit pipeline list`).
    name: String,
    /// The project whose scans are processed.
    #[arg(short = 'p', long)]
    project: String,
    /// Only scans whose type matches this glob (case-insensitive); repeat for several.
    #[arg(long = "scan-type", value_name = "GLOB")]
    scan_types: Vec<String>,
    /// Run on this machine (download, compute, upload). Required: launching
    /// on the server's engine is not available yet.
    #[arg(long)]
    local: bool,
    /// Redo scans that already have a complete output.
    #[arg(long)]
    overwrite: bool,
    /// Scans processed at the same time.
    #[arg(short = 'j', long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Where downloads and outputs wait while a scan is processed
    /// (default: a folder in the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Print the per-scan report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::List { json } => list(json, printer),
        Action::Run(run_args) => run_pipeline(run_args, printer).await,
    }
}

fn list(json: bool, printer: Printer) -> anyhow::Result<ExitCode> {
    if json {
        let rows: Vec<_> = Builtin::ALL
            .iter()
            .map(|b| {
                serde_json::json!({
                    "name": b.name(),
                    "input": b.input_resource(),
                    "output": b.output_resource(),
                    "description": b.description(),
                })
            })
            .collect();
        printer.json(&rows)?;
    } else {
        let rows: Vec<Vec<String>> = Builtin::ALL
            .iter()
            .map(|b| {
                vec![
                    b.name().to_owned(),
                    b.input_resource().to_owned(),
                    b.output_resource().to_owned(),
                    b.description().to_owned(),
                ]
            })
            .collect();
        printer.table(&["NAME", "INPUT", "OUTPUT", "DESCRIPTION"], &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar over the scans, and one status line per failed scan.
struct ScanProgress {
    bar: ProgressBar,
    printer: Printer,
}

impl Observer for ScanProgress {
    fn planned(&self, scans: usize) {
        self.bar.set_length(scans as u64);
    }

    fn finished(&self, report: &ScanReport) {
        self.bar.inc(1);
        if let Outcome::Failed { error } = &report.outcome {
            let t = &report.target;
            self.bar.suspend(|| {
                self.printer.warn(format_args!(
                    "{}/{} scan {} ({}): {error}",
                    t.subject, t.session, t.scan, t.scan_type
                ));
            });
        }
    }
}

async fn run_pipeline(args: RunArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let Some(builtin) = Builtin::from_name(&args.name) else {
        let known: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
        anyhow::bail!(
            "unknown pipeline {:?}; the built-in ones are {} (see `xnatkit pipeline list`)",
            args.name,
            known.join(", ")
        );
    };
    if !args.local {
        anyhow::bail!(
            "launching on the server's processing engine is not available yet; add --local to \
             run {} on this machine against the server",
            builtin.name()
        );
    }
    let work_dir = match args.work_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join("xnatkit-pipeline"),
    };
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create the work folder {}", work_dir.display()))?;
    let client = args.server.connect().await?;
    let cancel = cancel_on_ctrl_c(printer, FirstCtrlC::Cancel, "finishing the scans under way");
    let run = LocalRun {
        project: args.project.clone(),
        builtin,
        scan_types: args.scan_types,
        overwrite: args.overwrite,
        jobs: usize::from(args.jobs),
        work_dir,
        cancel,
    };
    let bar = ProgressBar::with_draw_target(Some(0), printer.progress_target());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} scans {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = ScanProgress { bar, printer };
    let started = Instant::now();
    let outcome = run_local(&client, &run, &progress).await;
    progress.bar.finish_and_clear();
    client.disconnect().await;
    let reports = outcome.with_context(|| {
        format!(
            "{} over project {} stopped; run the same command again to continue",
            builtin.name(),
            args.project
        )
    })?;
    if args.json {
        printer.json(&reports)?;
    }
    let count = |f: fn(&Outcome) -> bool| reports.iter().filter(|r| f(&r.outcome)).count();
    let done = count(|o| matches!(o, Outcome::Done { .. }));
    let skipped = count(|o| *o == Outcome::AlreadyDone);
    let no_input = count(|o| *o == Outcome::NoInput);
    let failed = count(|o| matches!(o, Outcome::Failed { .. }));
    printer.status(format_args!(
        "{} over {} in {:.1} s: {} scans: {done} processed, {skipped} already done, {no_input} without {}, {failed} failed",
        builtin.name(),
        args.project,
        started.elapsed().as_secs_f64(),
        reports.len(),
        builtin.input_resource(),
    ));
    if failed > 0 {
        printer.warn(format_args!(
            "{failed} scan(s) failed (see above); fix them or rerun: finished scans are skipped"
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
