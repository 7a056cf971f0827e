//! `xnatkit pipeline`: processing pipelines. `list` shows the built-in
//! commands (or, with `--remote`, the server's wrappers); `enable`,
//! `launch`, `status`, `logs` and `cancel` drive XNAT's Container Service
//! API on the server (xnatkit's own engine or a real XNAT's); `run NAME
//! --project P --local` runs a built-in over a project's scans on this
//! machine against any XNAT (the logic is `xnatkit-pipelines`' local
//! runner). This module parses, shows progress and prints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use xnatkit_client::XnatClient;
use xnatkit_model::container::{Command, Container, TERMINAL_STATUSES, Wrapper};
use xnatkit_pipelines::builtin::Builtin;
use xnatkit_pipelines::local::{LocalRun, Observer, Outcome, ScanReport, find_scans, run_local};

use super::common::ServerArgs;
use crate::interrupt::{FirstCtrlC, cancel_on_ctrl_c};
use crate::printer::Printer;

/// Run processing pipelines (dcm2niix NIfTI conversion, image QA) over a
/// project's scans: on the server's engine (XNAT's Container Service API)
/// or, with `run --local`, on this machine.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the built-in commands, or with --remote the server's wrappers.
    List {
        /// Ask the server for its commands and wrappers (and, with
        /// --project, whether each is enabled there).
        #[arg(long)]
        remote: bool,
        /// With --remote: show enablement in this project.
        #[arg(short = 'p', long)]
        project: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Enable a wrapper in a project (and, with --on-archive, run it on
    /// every session archived into the project from now on).
    #[command(after_help = "\
Examples:
  # Switch on NIfTI conversion for every session that arrives in PROJ:
  xnatkit pipeline enable dcm2niix-scan --project PROJ --on-archive
  # Enable a registered wrapper for the whole site too (admins):
  xnatkit pipeline enable my-fit-scan --project PROJ --site")]
    Enable(EnableArgs),
    /// Disable a wrapper in a project (or, with --site, everywhere).
    Disable(EnableArgs),
    /// Launch a wrapper on scans or sessions through the server's engine.
    #[command(after_help = "\
Examples:
  # dcm2niix on every scan of PROJ, waiting with a progress bar:
  xnatkit pipeline launch dcm2niix-scan --project PROJ --wait
  # Only T1 scans, replacing earlier NIFTI resources:
  xnatkit pipeline launch dcm2niix-scan --project PROJ --scan-type 't1*' --overwrite
  # One scan:
  xnatkit pipeline launch dcm2niix-scan --project PROJ --target /experiments/XNAT_E00001/scans/3

The wrapper is named by name (dcm2niix-scan, qa-scan, t2-map-scan, …) or numeric ID; see
`xnatkit pipeline list --remote`. Exit 1 when a launch is refused or, with
--wait, a run fails.")]
    Launch(LaunchArgs),
    /// Show runs (containers) with their status.
    Status(StatusArgs),
    /// Print a run's stdout (or --stderr) log.
    Logs(LogsArgs),
    /// Kill runs that are queued or running.
    Cancel(CancelArgs),
    /// Run a built-in command over every matching scan of a project.
    #[command(after_help = "\
Examples:
  # NIfTI for every scan of PROJ, here, against any XNAT:
  xnatkit pipeline run dcm2niix --project PROJ --local -s https://xnat.example.org -u alice
  # QA of the T1 and BOLD scans only, 4 at a time:
  xnatkit pipeline run qa --project PROJ --scan-type 't1*' --scan-type '*bold*' -j 4 --local

Each scan's DICOM resource is downloaded, processed, and its output replaced:
the NIFTI scan resource, or for qa the xnat:qcAssessmentData assessor
{session}_QA_{scan} with its QA resource; the provenance record
xnatkit-pipeline.json goes up last. Scans that already have it are skipped unless --overwrite; rerun after
an interruption to finish the rest. Without --local, use `pipeline launch`.")]
    Run(RunArgs),
    /// Run one built-in on a folder of DICOM files, here (what a Slurm job
    /// of `serve --executor slurm` runs on its node).
    #[command(hide = true)]
    ExecBuiltin(ExecBuiltinArgs),
}

#[derive(Debug, clap::Args)]
struct ExecBuiltinArgs {
    /// The built-in's name (dcm2niix, qa, t2-map, t1-sr-map, adc-map, mask-average).
    builtin: String,
    /// The folder of the scan's DICOM files (mask-average: the map's
    /// folder, then again the RTSTRUCT's).
    #[arg(long, required = true)]
    input: Vec<std::path::PathBuf>,
    /// An existing, empty folder for the outputs.
    #[arg(long)]
    output: std::path::PathBuf,
    /// A parameter of the built-in (a command input of the launch),
    /// NAME=VALUE; repeat for several.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct EnableArgs {
    /// The wrapper: its name (dcm2niix-scan, qa-scan) or numeric ID.
    wrapper: String,
    /// The project.
    #[arg(short = 'p', long, required_unless_present = "site")]
    project: Option<String>,
    /// For the whole site (site administrators).
    #[arg(long)]
    site: bool,
    /// Enable only: also launch it on every session archived into the
    /// project from now on (an Event Service subscription).
    #[arg(long, requires = "project")]
    on_archive: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct LaunchArgs {
    /// The wrapper: its name (dcm2niix-scan, qa-scan) or numeric ID.
    wrapper: String,
    /// The project launched in; without --target, every matching scan of it.
    #[arg(short = 'p', long)]
    project: String,
    /// Launch on this object only (a URI such as
    /// /experiments/XNAT_E00001/scans/3); repeat for several.
    #[arg(long, value_name = "URI")]
    target: Vec<String>,
    /// Without --target: only scans whose type matches this glob
    /// (case-insensitive); repeat for several.
    #[arg(long = "scan-type", value_name = "GLOB")]
    scan_types: Vec<String>,
    /// A launch input, NAME=VALUE; repeat for several.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Replace outputs an earlier run filed.
    #[arg(long)]
    overwrite: bool,
    /// Wait until every run has ended, with a progress bar.
    #[arg(long)]
    wait: bool,
    /// Print the launch reports (and with --wait the runs) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// Runs to show (default: all you may see).
    ids: Vec<String>,
    /// Only runs of this project.
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// Print JSON (the containers with their history).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct LogsArgs {
    /// The run (container ID).
    id: String,
    /// Print the stderr log instead of stdout.
    #[arg(long)]
    stderr: bool,
    /// Keep printing the log as the run writes it, until the run ends; the
    /// exit status is then 0 only if the run completed.
    #[arg(short = 'f', long)]
    follow: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct CancelArgs {
    /// The runs (container IDs).
    #[arg(required = true)]
    ids: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
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
    /// Run on this machine (download, compute, upload). Required; to run on
    /// the server's engine, use `pipeline launch`.
    #[arg(long)]
    local: bool,
    /// Redo scans that already have a complete output.
    #[arg(long)]
    overwrite: bool,
    /// A parameter of the command, NAME=VALUE; repeat for several.
    /// t1-sr-map takes time-base=repetition|recovery (default: repetition)
    /// and echo-spacing=MS (needed by the recovery base; see `xnatkit maps
    /// t1-sr --help`).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
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
        Action::List {
            remote: false,
            json,
            ..
        } => list(json, printer),
        Action::List {
            remote: true,
            project,
            json,
            server,
        } => list_remote(project, json, server, printer).await,
        Action::Enable(a) => enable(a, true, printer).await,
        Action::Disable(a) => enable(a, false, printer).await,
        Action::Launch(a) => launch(a, printer).await,
        Action::Status(a) => status(a, printer).await,
        Action::Logs(a) => logs(a, printer).await,
        Action::Cancel(a) => cancel(a, printer).await,
        Action::Run(run_args) => run_pipeline(run_args, printer).await,
        Action::ExecBuiltin(a) => exec_builtin(a, printer).await,
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

async fn exec_builtin(args: ExecBuiltinArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let builtin = Builtin::from_name(&args.builtin)
        .with_context(|| format!("no built-in command is called {:?}", args.builtin))?;
    let params = parse_params(&args.params, false)?;
    // Rendered inside the thread: only the text crosses.
    let outputs = tokio::task::spawn_blocking(move || {
        xnatkit_pipelines::builtin::run_with(builtin, &args.input, &args.output, &params)
            .map_err(|e| anyhow::Error::new(e).context(format!("{} failed", builtin.name())))
    })
    .await
    .context("the built-in stopped")??;
    // The same line the local pool writes to the job's stdout log.
    printer.data(format!(
        "{}: {} file(s)",
        outputs.tool_version,
        outputs.files.len()
    ))?;
    Ok(ExitCode::SUCCESS)
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
            "add --local to run {} on this machine against the server, or launch it on the \
             server's engine with `xnatkit pipeline launch {}-{} --project {}`",
            builtin.name(),
            builtin.name(),
            if builtin == Builtin::MaskAverage {
                "session"
            } else {
                "scan"
            },
            args.project
        );
    }
    let params = parse_params(&args.params, false)?;
    // Refused before any download: a parameter the command does not take,
    // or a value it cannot use.
    xnatkit_pipelines::builtin::map_options(builtin, &params)?;
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
        params,
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
    // Mask-average runs per session, the others per scan.
    let (unit, lacking) = if builtin == Builtin::MaskAverage {
        ("sessions", "a map or an ROI collection")
    } else {
        ("scans", builtin.input_resource())
    };
    printer.status(format_args!(
        "{} over {} in {:.1} s: {} {unit}: {done} processed, {skipped} already done, {no_input} without {lacking}, {failed} failed",
        builtin.name(),
        args.project,
        started.elapsed().as_secs_f64(),
        reports.len(),
    ));
    if failed > 0 {
        printer.warn(format_args!(
            "{failed} scan(s) failed (see above); fix them or rerun: finished scans are skipped"
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A wrapper found on the server, with its command.
struct FoundWrapper {
    command_id: i64,
    wrapper: Wrapper,
    wrapper_id: i64,
}

/// Finds wrapper `name_or_id` among the server's commands.
async fn find_wrapper(client: &XnatClient, name_or_id: &str) -> anyhow::Result<FoundWrapper> {
    let commands: Vec<Command> = client
        .commands()
        .await
        .context("cannot read the server's commands (GET /xapi/commands)")?;
    let mut matches = Vec::new();
    for command in &commands {
        for wrapper in &command.xnat {
            let id = wrapper.id.unwrap_or_default();
            if wrapper.name == name_or_id || id.to_string() == name_or_id {
                matches.push(FoundWrapper {
                    command_id: command.id.unwrap_or_default(),
                    wrapper: wrapper.clone(),
                    wrapper_id: id,
                });
            }
        }
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => {
            let names: Vec<String> = commands
                .iter()
                .flat_map(|c| c.xnat.iter().map(|w| w.name.clone()))
                .collect();
            anyhow::bail!(
                "the server has no wrapper {name_or_id:?}; it has: {} (see `xnatkit pipeline list --remote`)",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )
        }
        n => anyhow::bail!(
            "{n} commands have a wrapper named {name_or_id:?}; name it by its numeric ID (see `xnatkit pipeline list --remote`)"
        ),
    }
}

async fn list_remote(
    project: Option<String>,
    json: bool,
    server: ServerArgs,
    printer: Printer,
) -> anyhow::Result<ExitCode> {
    let client = server.connect().await?;
    let commands = client
        .commands()
        .await
        .context("cannot read the server's commands")?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for command in &commands {
        for wrapper in &command.xnat {
            let id = wrapper.id.unwrap_or_default();
            let enabled = match &project {
                Some(p) => {
                    let report = client.wrapper_enabled_in(p, id).await.ok();
                    report.map(|r| r.enabled_for_site && r.enabled_for_project)
                }
                None => None,
            };
            values.push(serde_json::json!({
                "command-id": command.id,
                "command": command.name,
                "wrapper-id": id,
                "wrapper": wrapper.name,
                "contexts": wrapper.contexts,
                "type": command.kind,
                "enabled": enabled,
                "description": wrapper.description.clone().or(command.description.clone()),
            }));
            rows.push(vec![
                id.to_string(),
                wrapper.name.clone(),
                command.name.clone(),
                wrapper.contexts.join(","),
                enabled.map_or_else(
                    || "-".to_owned(),
                    |e| if e { "yes" } else { "no" }.to_owned(),
                ),
            ]);
        }
    }
    client.disconnect().await;
    if json {
        printer.json(&values)?;
    } else {
        printer.table(&["ID", "WRAPPER", "COMMAND", "CONTEXTS", "ENABLED"], &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn enable(args: EnableArgs, on: bool, printer: Printer) -> anyhow::Result<ExitCode> {
    let client = args.server.connect().await?;
    let found = find_wrapper(&client, &args.wrapper).await?;
    let word = if on { "enabled" } else { "disabled" };
    if args.site {
        client
            .set_wrapper_enabled(found.command_id, found.wrapper_id, None, on)
            .await
            .with_context(|| {
                format!(
                    "cannot set wrapper {} {word} for the site",
                    found.wrapper.name
                )
            })?;
        printer.status(format_args!("{} {word} for the site", found.wrapper.name));
    }
    if let Some(project) = &args.project {
        client
            .set_wrapper_enabled(found.command_id, found.wrapper_id, Some(project), on)
            .await
            .with_context(|| {
                format!(
                    "cannot set wrapper {} {word} in project {project}",
                    found.wrapper.name
                )
            })?;
        printer.status(format_args!(
            "{} {word} in project {project}",
            found.wrapper.name
        ));
        if args.on_archive && on {
            let sub = client
                .subscribe_on_archive(project, found.wrapper_id)
                .await
                .with_context(|| {
                    format!(
                        "cannot subscribe {} to sessions archived into {project}",
                        found.wrapper.name
                    )
                })?;
            printer.status(format_args!(
                "{} now runs on every session archived into {project} (subscription {sub})",
                found.wrapper.name
            ));
        }
    }
    client.disconnect().await;
    Ok(ExitCode::SUCCESS)
}

fn parse_params(raw: &[String], overwrite: bool) -> anyhow::Result<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for p in raw {
        let Some((k, v)) = p.split_once('=') else {
            anyhow::bail!("--param {p:?} is not NAME=VALUE");
        };
        params.insert(k.trim().to_owned(), v.to_owned());
    }
    if overwrite {
        params.insert("overwrite".to_owned(), "true".to_owned());
    }
    Ok(params)
}

async fn launch(args: LaunchArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let client = args.server.connect().await?;
    let found = find_wrapper(&client, &args.wrapper).await?;
    let root = found
        .wrapper
        .external_inputs
        .iter()
        .find(|i| {
            matches!(
                i.kind.as_str(),
                "Scan" | "Session" | "Subject" | "Project" | "Assessor" | "Resource"
            )
        })
        .map(|i| (i.name.clone(), i.kind.clone()))
        .with_context(|| {
            format!(
                "wrapper {} takes no archive object; it cannot be launched here",
                found.wrapper.name
            )
        })?;
    let params = parse_params(&args.params, args.overwrite)?;
    let targets: Vec<String> = if !args.target.is_empty() {
        args.target.clone()
    } else if root.1 == "Scan" {
        let run = LocalRun {
            project: args.project.clone(),
            builtin: Builtin::Dcm2niix,
            scan_types: args.scan_types.clone(),
            overwrite: args.overwrite,
            jobs: 1,
            work_dir: std::env::temp_dir(),
            cancel: tokio_util::sync::CancellationToken::new(),
            params: BTreeMap::new(),
        };
        find_scans(&client, &run)
            .await
            .with_context(|| format!("cannot list the scans of project {}", args.project))?
            .iter()
            .map(|t| t.path().to_owned())
            .collect()
    } else {
        anyhow::bail!(
            "wrapper {} runs on a {}; name them with --target URI",
            found.wrapper.name,
            root.1.to_lowercase()
        );
    };
    if targets.is_empty() {
        anyhow::bail!(
            "nothing to launch on: project {} has no matching scans",
            args.project
        );
    }
    let (ids, refused, reports) = if targets.len() == 1 {
        let mut one = params.clone();
        one.insert(root.0.clone(), targets[0].clone());
        let report = client
            .launch(&args.project, found.wrapper_id, &one)
            .await
            .with_context(|| format!("{} on {}", found.wrapper.name, targets[0]))?;
        let ids: Vec<String> = report.container_id.iter().cloned().collect();
        (ids, Vec::new(), serde_json::json!([report]))
    } else {
        let bulk = client
            .bulk_launch(&args.project, found.wrapper_id, &root.0, &targets, &params)
            .await
            .with_context(|| {
                format!("bulk launch of {} in {}", found.wrapper.name, args.project)
            })?;
        let ids = bulk
            .successes
            .iter()
            .filter_map(|r| r.container_id.clone())
            .collect();
        let refused: Vec<String> = bulk
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.params.get(&root.0).cloned().unwrap_or_default(),
                    f.message.clone().unwrap_or_default()
                )
            })
            .collect();
        let value = serde_json::to_value(&bulk)?;
        (ids, refused, value)
    };
    for line in &refused {
        printer.warn(format_args!("refused: {line}"));
    }
    printer.status(format_args!(
        "{}: {} launched, {} refused in project {}",
        found.wrapper.name,
        ids.len(),
        refused.len(),
        args.project
    ));
    if !args.wait {
        if args.json {
            printer.json(&reports)?;
        } else {
            for id in &ids {
                printer.data(id)?;
            }
        }
        client.disconnect().await;
        return Ok(if refused.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let finished = wait_for_runs(&client, &args.project, &ids, printer).await?;
    client.disconnect().await;
    let failed: Vec<&Container> = finished.iter().filter(|c| c.status != "Complete").collect();
    if args.json {
        printer.json(&finished)?;
    }
    for c in &failed {
        printer.warn(format_args!(
            "run {} {}: {}",
            c.id,
            c.status,
            last_message(c)
        ));
    }
    printer.status(format_args!(
        "{}: {} complete, {} failed or killed",
        found.wrapper.name,
        finished.len() - failed.len(),
        failed.len()
    ));
    Ok(if failed.is_empty() && refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn last_message(c: &Container) -> String {
    c.history
        .iter()
        .rev()
        .find_map(|h| h.message.clone())
        .unwrap_or_default()
}

/// Run records fetched at once once they have ended.
const WAIT_FETCH_CONCURRENCY: usize = 8;

/// How long `--wait` sleeps between polls: a twentieth of the time waited
/// so far, between 25 ms and 2 s — short runs are seen ending at once, long
/// ones do not keep the server busy answering. Each poll is one request
/// (the project's unfinished runs), whatever the number of runs.
fn wait_poll_interval(waited: Duration) -> Duration {
    (waited / 20).clamp(Duration::from_millis(25), Duration::from_secs(2))
}

/// Waits until each run has ended, with a bar over them: polls the
/// project's unfinished runs, and fetches each run's final record once it
/// has left that list.
async fn wait_for_runs(
    client: &XnatClient,
    project: &str,
    ids: &[String],
    printer: Printer,
) -> anyhow::Result<Vec<Container>> {
    let bar = ProgressBar::with_draw_target(Some(ids.len() as u64), printer.progress_target());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} runs ended {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let cancel = cancel_on_ctrl_c(
        printer,
        FirstCtrlC::Cancel,
        "no longer waiting (the runs go on)",
    );
    let mut ended: BTreeMap<String, Container> = BTreeMap::new();
    let started = Instant::now();
    while ended.len() < ids.len() {
        let mut unfinished = std::collections::HashSet::new();
        for c in client
            .unfinished_containers(project)
            .await
            .with_context(|| format!("cannot list the unfinished runs of project {project}"))?
        {
            // A server that ignores `nonfinalized` lists ended runs too.
            if TERMINAL_STATUSES.contains(&c.status.as_str()) {
                continue;
            }
            unfinished.insert(c.id.to_string());
            unfinished.insert(c.container_id);
        }
        let left: Vec<&String> = ids
            .iter()
            .filter(|id| !ended.contains_key(*id) && !unfinished.contains(*id))
            .collect();
        let mut fetches = futures::stream::iter(left)
            .map(|id| async move {
                client
                    .container(id)
                    .await
                    .with_context(|| format!("cannot read run {id}"))
                    .map(|c| (id, c))
            })
            .buffer_unordered(WAIT_FETCH_CONCURRENCY);
        while let Some(fetched) = fetches.next().await {
            let (id, c) = fetched?;
            // Listed as unfinished a moment ago but ended since, or the
            // other way round: only a terminal record counts.
            if TERMINAL_STATUSES.contains(&c.status.as_str()) {
                bar.inc(1);
                ended.insert(id.clone(), c);
            }
        }
        drop(fetches);
        if ended.len() == ids.len() {
            break;
        }
        tokio::select! {
            () = cancel.cancelled() => {
                bar.finish_and_clear();
                anyhow::bail!("stopped waiting; the runs go on: follow them with `xnatkit pipeline status`");
            }
            () = tokio::time::sleep(wait_poll_interval(started.elapsed())) => {}
        }
    }
    bar.finish_and_clear();
    Ok(ids.iter().filter_map(|id| ended.remove(id)).collect())
}

async fn status(args: StatusArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let client = args.server.connect().await?;
    let runs: Vec<Container> = if args.ids.is_empty() {
        client
            .containers(args.project.as_deref())
            .await
            .context("cannot list the runs")?
    } else {
        let mut v = Vec::new();
        for id in &args.ids {
            v.push(
                client
                    .container(id)
                    .await
                    .with_context(|| format!("cannot read run {id}"))?,
            );
        }
        v
    };
    client.disconnect().await;
    if args.json {
        printer.json(&runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|c| {
            let target = c
                .inputs
                .iter()
                .find(|i| i.kind == "wrapper-external" && i.value.starts_with('/'))
                .map(|i| i.value.clone())
                .unwrap_or_default();
            vec![
                c.id.to_string(),
                c.status.clone(),
                c.project.clone(),
                target,
                c.workflow_id.clone(),
                last_message(c),
            ]
        })
        .collect();
    printer.table(
        &["ID", "STATUS", "PROJECT", "TARGET", "WORKFLOW", "MESSAGE"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn logs(args: LogsArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let client = args.server.connect().await?;
    let stream = if args.stderr { "stderr" } else { "stdout" };
    if args.follow {
        let code = follow_log(&client, &args.id, stream, &printer).await;
        client.disconnect().await;
        return code;
    }
    let text = client
        .container_log(&args.id, stream)
        .await
        .with_context(|| format!("cannot read the {stream} log of run {}", args.id))?;
    client.disconnect().await;
    printer.data(text.trim_end())?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the log as it grows (polling `logSince`) until the run ends;
/// succeeds only if the run completed.
async fn follow_log(
    client: &xnatkit_client::XnatClient,
    id: &str,
    stream: &str,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut since: Option<String> = None;
    let mut printed = 0usize;
    loop {
        let poll = client
            .container_log_since(id, stream, since.as_deref())
            .await
            .with_context(|| format!("cannot follow the {stream} log of run {id}"))?;
        let ended = poll.timestamp == xnatkit_model::container::LOG_COMPLETE_TIMESTAMP;
        // The last answer is the whole log again: print what was not yet.
        let new = if ended && poll.from_file {
            poll.content.get(printed..).unwrap_or_default()
        } else {
            poll.content.as_str()
        };
        let mut out = std::io::stdout().lock();
        out.write_all(new.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the log to stdout")?;
        printed += new.len();
        if ended {
            break;
        }
        since = Some(poll.timestamp);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let run = client
        .container(id)
        .await
        .with_context(|| format!("cannot read the status of run {id}"))?;
    if run.status == "Complete" {
        Ok(ExitCode::SUCCESS)
    } else {
        printer.warn(format_args!(
            "run {id} ended {}: {}",
            run.status,
            last_message(&run)
        ));
        Ok(ExitCode::FAILURE)
    }
}

async fn cancel(args: CancelArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let client = args.server.connect().await?;
    for id in &args.ids {
        client
            .kill_container(id)
            .await
            .with_context(|| format!("cannot cancel run {id}"))?;
        printer.status(format_args!("run {id}: kill requested"));
    }
    client.disconnect().await;
    Ok(ExitCode::SUCCESS)
}
