//! `xnatkit convert ...`: format converters. The work is in the converter crates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use xnatkit_client::services::{ImportDestination, ImportOptions};

use super::common::ServerArgs;
use crate::printer::Printer;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    converter: Converter,
}

#[derive(Debug, clap::Subcommand)]
enum Converter {
    /// Convert a Bruker ParaVision study (PV 5.1, 6.0.1, 360) or one scan
    /// folder to DICOM MR images: one series per reconstruction (per slice
    /// package when a scan has several).
    ///
    /// Scans that were never acquired (no fid/rawdata and no 2dseq) are
    /// skipped with a warning. Exit status: 0 when every acquired
    /// reconstruction was converted (and uploaded, with --upload); 2 when
    /// some acquired reconstruction could not be converted (the others are
    /// written, nothing is uploaded); 1 when the command could not run or
    /// nothing was converted.
    Paravision(ParavisionArgs),
}

#[derive(Debug, clap::Args)]
struct ParavisionArgs {
    /// The study folder (holding numbered scan folders) or a single scan folder.
    study_dir: PathBuf,
    /// Where to write the DICOM series [default: STUDY_DIR followed by `_dicom`].
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// After converting, send the DICOM study to this XNAT project (import
    /// service, to the archive) and attach the raw ParaVision folder, zipped,
    /// as the session resource PARAVISION. Scans never acquired are left
    /// out; nothing is sent if any acquired reconstruction failed.
    #[arg(long, value_name = "PROJECT")]
    upload: Option<String>,
    /// Subject label for --upload (default: from the DICOM headers).
    #[arg(long, requires = "upload")]
    subject: Option<String>,
    /// Session label for --upload (default: from the DICOM headers).
    #[arg(long, requires = "upload")]
    session: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Exit status when some acquired reconstruction could not be converted.
const EXIT_SOME_FAILED: u8 = 2;

/// One line per reconstruction: where it went (stdout), or why it was not
/// converted (stderr).
fn print_outcome(
    printer: Printer,
    outcome: Result<&xnatkit_paravision::Written, &xnatkit_paravision::Failure>,
) {
    match outcome {
        Ok(written) => {
            // Nothing to do about a failed write to stdout mid-conversion;
            // the summary line after it reports the same data.
            let _ = printer.data(format_args!(
                "scan {} reconstruction {}: {} images -> {}{}{}",
                written.scan,
                written.reco,
                written.summary.images,
                written.dir.display(),
                if written.summary.series > 1 {
                    format!(
                        " ({} series, one per slice package)",
                        written.summary.series
                    )
                } else {
                    String::new()
                },
                if written.summary.cest { " (CEST)" } else { "" }
            ));
            if written.summary.non_finite_pixels > 0 {
                printer.warn(format_args!(
                    "warning: scan {} reconstruction {}: {} NaN/infinite pixels stored as the image minimum",
                    written.scan, written.reco, written.summary.non_finite_pixels
                ));
            }
        }
        Err(failure) => printer.warn(format_args!("error: {failure}")),
    }
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    match args.converter {
        Converter::Paravision(args) => paravision(args, printer).await,
    }
}

async fn paravision(args: ParavisionArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    // Conversion is file I/O and CPU: keep it off the async workers.
    let (study_dir, out) = (args.study_dir.clone(), args.out.clone());
    let report = tokio::task::spawn_blocking(move || {
        xnatkit_paravision::convert(&study_dir, out.as_deref(), |outcome| {
            print_outcome(printer, outcome);
        })
    })
    .await
    .context("the conversion task stopped unexpectedly")?
    .context("cannot convert the ParaVision study")?;
    let seconds = started.elapsed().as_secs_f64();
    let megabytes = report.twodseq_bytes() as f64 / 1e6;
    for skipped in &report.skipped {
        printer.warn(format_args!("warning: {skipped}"));
    }
    if report.written.is_empty() && report.failures.is_empty() {
        anyhow::bail!(
            "{}: nothing to convert, no scan of this study was acquired",
            args.study_dir.display()
        );
    }
    let series: usize = report.written.iter().map(|w| w.summary.series).sum();
    printer.data(format_args!(
        "{} reconstruction(s) converted into {series} series in {} ({megabytes:.1} MB of 2dseq in {seconds:.2} s){}",
        report.written.len(),
        report.out_dir.display(),
        if report.skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; {} scan(s) or reconstruction(s) skipped as never acquired or never reconstructed",
                report.skipped.len()
            )
        }
    ))?;
    if !report.failures.is_empty() {
        printer.warn(format_args!(
            "error: {} acquired reconstruction(s) not converted (see above){}; fix or remove them and run again",
            report.failures.len(),
            if args.upload.is_some() {
                ", nothing uploaded"
            } else {
                ""
            }
        ));
        return Ok(ExitCode::from(EXIT_SOME_FAILED));
    }
    if let Some(project) = &args.upload {
        upload(&args, project, &report.out_dir, printer).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Import the converted series as one session, then attach the raw study.
async fn upload(
    args: &ParavisionArgs,
    project: &str,
    out_dir: &Path,
    printer: Printer,
) -> anyhow::Result<()> {
    let client = args.server.connect().await?;
    let options = ImportOptions {
        destination: ImportDestination::Archive,
        project: project.to_owned(),
        subject: args.subject.clone(),
        session: args.session.clone(),
        overwrite: None,
    };
    let session_uri = client
        .import(out_dir, &options)
        .await
        .with_context(|| format!("cannot import {} into project {project}", out_dir.display()))?;
    printer.data(format_args!("imported into {session_uri}"))?;

    let resource = format!("{session_uri}/resources/PARAVISION");
    client
        .put_object(
            &resource,
            &[("format", "ZIP"), ("content", "RAW")],
            "resource PARAVISION",
        )
        .await
        .context("cannot create the PARAVISION session resource")?;
    let study_name = args
        .study_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "paravision".to_owned());
    let zip_name = format!("{study_name}.zip");
    let staging = tempfile::tempdir().context("cannot create a temporary folder for the zip")?;
    let zip_path = staging.path().join(&zip_name);
    let mut entries = Vec::new();
    list_files(&args.study_dir, &study_name, &mut entries)?;
    xnatkit_fileio::write_stream_atomic(&zip_path, xnatkit_fileio::zip_stream(entries), None)
        .await
        .with_context(|| format!("cannot zip {}", args.study_dir.display()))?;
    client
        .upload_file(&resource, &zip_name, &zip_path)
        .await
        .with_context(|| format!("cannot upload {zip_name} to {resource}"))?;
    printer.data(format_args!("attached {zip_name} to {resource}"))?;
    Ok(())
}

/// Every file under `dir`, named `prefix/<relative path>` in the zip.
fn list_files(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<xnatkit_fileio::ArchiveEntry>,
) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            list_files(&path, &name, out)?;
        } else if meta.is_file() {
            out.push(xnatkit_fileio::ArchiveEntry {
                name,
                source: path,
                size: meta.len(),
                modified: None,
            });
        }
    }
    Ok(())
}
