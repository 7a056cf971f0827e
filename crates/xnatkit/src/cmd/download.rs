//! `xnatkit download`: a session, subject or project in XNAT's folder
//! structure, file by file, verified and resumable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use xnatkit_client::download::Manifest;
use xnatkit_client::transfer::{TransferTotals, run_transfers};
use xnatkit_export::tree::{TreeTarget, plan_tree};

use super::common::{ServerArgs, human_bytes};
use super::export::{FINISHING_FILES, Progress};
use crate::interrupt::{FirstCtrlC, cancel_on_ctrl_c};
use crate::printer::Printer;

/// Download a session, subject or project into XNAT's folder structure
/// (SESSION/scans/ID-TYPE/resources/LABEL/files/...), like xnatpy's
/// download_dir. Rerun to resume; verified files are skipped.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// PROJECT, PROJECT/SUBJECT or PROJECT/SUBJECT/SESSION (labels or IDs).
    target: String,
    /// Output folder.
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Files downloaded at the same time.
    #[arg(short = 'j', long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    let target = TreeTarget::parse(&args.target)?;
    let client = args.server.connect().await?;
    let started = Instant::now();
    let (jobs, labels) = plan_tree(&client, &target, &args.out).await?;
    if jobs.is_empty() {
        printer.status(format_args!("{}: no files to download", args.target));
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(labels, printer);
    progress.set_jobs(&jobs);
    let manifest = Manifest::open(&args.out)?;
    let cancel = cancel_on_ctrl_c(printer, FirstCtrlC::Cancel, FINISHING_FILES);
    let results = run_transfers(
        &client,
        jobs,
        Some(&manifest),
        usize::from(args.jobs),
        &progress,
        cancel,
    )
    .await;
    progress.finish();
    client.disconnect().await;
    let t = TransferTotals::from_results(&results);
    printer.status(format_args!(
        "done in {:.1} s: {} files ({}) in {}: {} downloaded, {} already verified, {} repaired, {} failed",
        started.elapsed().as_secs_f64(),
        t.downloaded + t.already_verified + t.repaired,
        human_bytes(t.bytes),
        args.out.display(),
        t.downloaded,
        t.already_verified,
        t.repaired,
        t.failed
    ));
    if let Some(path) = progress.disk_full() {
        anyhow::bail!(
            "the disk holding {} is full (no space left while writing {}); free some space and \
             run the same command again: verified files are kept and partial ones resume",
            args.out.display(),
            path.display()
        );
    }
    if let Some(err) = results.iter().find_map(|r| r.result.as_ref().err()) {
        anyhow::bail!(
            "{} file(s) not downloaded; first error: {err}; run again to resume",
            t.failed
        );
    }
    Ok(ExitCode::SUCCESS)
}
