//! `xnatkit convert ...`: format converters. The work is in the converter crates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    converter: Converter,
}

#[derive(Debug, clap::Subcommand)]
enum Converter {
    /// Convert a Bruker ParaVision study (PV 5.1, 6.0.1, 360) or one scan
    /// folder to DICOM MR images: one series per reconstruction.
    Paravision(ParavisionArgs),
}

#[derive(Debug, clap::Args)]
struct ParavisionArgs {
    /// The study folder (holding numbered scan folders) or a single scan folder.
    study_dir: PathBuf,
    /// Where to write the DICOM series [default: STUDY_DIR followed by `_dicom`].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// One line per reconstruction: where it went, or why it was not converted.
fn print_outcome(outcome: Result<&paravision::Written, &paravision::Failure>) {
    match outcome {
        Ok(written) => {
            println!(
                "scan {} reconstruction {}: {} images -> {}{}",
                written.scan,
                written.reco,
                written.summary.images,
                written.dir.display(),
                if written.summary.cest { " (CEST)" } else { "" }
            );
            if written.summary.non_finite_pixels > 0 {
                eprintln!(
                    "warning: scan {} reconstruction {}: {} NaN/infinite pixels stored as the image minimum",
                    written.scan, written.reco, written.summary.non_finite_pixels
                );
            }
        }
        Err(failure) => eprintln!("error: {failure}"),
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.converter {
        Converter::Paravision(args) => paravision(args).await,
    }
}

async fn paravision(args: ParavisionArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    // Conversion is file I/O and CPU: keep it off the async workers.
    let report = tokio::task::spawn_blocking(move || {
        paravision::convert(&args.study_dir, args.out.as_deref(), print_outcome)
    })
    .await
    .context("the conversion task stopped unexpectedly")?
    .context("cannot convert the ParaVision study")?;
    let seconds = started.elapsed().as_secs_f64();
    let megabytes = report.twodseq_bytes() as f64 / 1e6;
    println!(
        "{} series written to {} ({megabytes:.1} MB of 2dseq in {seconds:.2} s)",
        report.written.len(),
        report.out_dir.display()
    );
    if report.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} reconstruction(s) not converted (see above); fix or remove them and run again",
            report.failures.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
