//! `xnatkit maps ...`: parametric maps and ROI statistics on local folders,
//! no server. The work is in xnatkit-maps; this module parses arguments and
//! prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use xnatkit_maps::{MapKind, Options, TimeBase};

use crate::printer::Printer;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: MapsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MapsCommand {
    /// T2 map of a multi-echo series (MSME): S(TE) = M0·exp(−TE/T2) + C,
    /// least squares in the signal domain (variable projection, with
    /// Levenberg–Marquardt where it does not settle), every slice.
    ///
    /// Writes T2_map, R2_map (1000/T2, 1/s), T2_M0, T2_valid and T2_residual
    /// as NIfTI (.nii.gz, DICOM geometry), T2_map_dicom/ and R2_map_dicom/
    /// (a new series of the same study), PNG previews and maps.json (model,
    /// echo times, Otsu threshold). The background (below Otsu's threshold of
    /// the first echo) is not fitted.
    #[command(after_help = T2_EXAMPLES)]
    T2(MapArgs),
    /// T1 map of a saturation-recovery series (RARE-VTR and similar):
    /// S(t) = A·(1 − exp(−t/T1)) [+ C with --offset], t the recovery time or
    /// the repetition time of each image (--time-base; maps.json records
    /// which, and where the values came from).
    ///
    /// Writes T1_map, R1_map (1000/T1, 1/s), T1_A, T1_valid and T1_residual
    /// as NIfTI, T1_map_dicom/ and R1_map_dicom/, PNG previews and
    /// maps.json. The background (below Otsu's threshold of the longest
    /// recovery) is not fitted.
    #[command(name = "t1-sr", after_help = T1_EXAMPLES)]
    T1Sr(MapArgs),
    /// ADC map of a diffusion series: S(b) = S0·exp(−b·ADC) over every
    /// b-value; directions at one b-value are combined by their geometric
    /// mean (trace). ADC in mm²/s (DICOM: stored in 10⁻⁶ mm²/s).
    Adc(MapArgs),
    /// Statistics of a map inside the ROIs of an RTSTRUCT, rasterised on the
    /// map's own grid in patient coordinates.
    ///
    /// Writes rois.json, rois.csv, statistics.txt (XNAT-PIC's layout), the
    /// masked map, one mask per ROI and a PNG with the ROI outlines. SD is
    /// the sample SD (ddof 1). Warnings (ROIs clipped at the image edge, open
    /// contours skipped) go to stderr and into --json.
    #[command(name = "mask-average", after_help = MASK_EXAMPLES)]
    MaskAverage(MaskArgs),
}

const T2_EXAMPLES: &str = "\
Examples:
  xnatkit maps t2 MSME_series/ -o t2-out
  xnatkit maps t2 study/5 -o t2-out --drop-first-echo      # a ParaVision scan folder
  xnatkit maps adc DWI_series/ -o adc-out --json

Inputs: a folder with one DICOM series (classic or enhanced multi-frame), or a
ParaVision scan folder (converted to DICOM on the fly). Frames are grouped by
slice position and echo time from the headers, never by file order.";

const T1_EXAMPLES: &str = "\
Examples:
  xnatkit maps t1-sr study/7 -o t1-out                      # a ParaVision RARE-VTR scan folder
  xnatkit maps t1-sr study/7 -o t1-out --time-base repetition
  xnatkit maps t1-sr RAREVTR_series/ -o t1-out --time-base recovery --echo-spacing 10

Time base: a RARE readout spends its echo train after each excitation, and the
longitudinal magnetisation recovers only from the train's last refocusing pulse,
so the recovery time is t = TR − echo spacing × (echoes per excitation − ½), as
ParaVision's RAREVTR method defines it (ACQ_recov_time). Fitting against the
nominal TR instead (XNAT-PIC's choice) overestimates T1 when the train is long
against the shortest TR. A ParaVision scan folder is fitted against its method's
recovery times by default (MultiRepTime, PVM_EchoTime, PVM_RareFactor,
PVM_NEchoImages); a DICOM series against its TRs, unless --time-base recovery is
given with the echo spacing (EchoTrainLength (0018,0091) comes from the headers).";

const MASK_EXAMPLES: &str = "\
Examples:
  xnatkit maps mask-average --map t2-out/T2_map.nii.gz --rois kidneys.dcm -o stats
  xnatkit maps mask-average --map t2-out/T2_map_dicom --rois kidneys.dcm -o stats --json

An RTSTRUCT whose image references do not resolve to the map is matched by
frame of reference and slice position; a different frame of reference is refused.";

#[derive(Debug, clap::Args)]
struct MapArgs {
    /// A DICOM series folder or a ParaVision scan folder.
    input: PathBuf,
    /// Output folder (created; files in it are replaced whole).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// T2 only: leave out the first echo (stimulated echoes in MSME).
    #[arg(long)]
    drop_first_echo: bool,
    /// T1 only: fit a constant offset C as well (three recovery times or more).
    #[arg(long)]
    offset: bool,
    /// T1 only: what t is in the fit [default: recovery for a ParaVision
    /// scan folder whose method defines an echo train, repetition for a
    /// DICOM series].
    #[arg(long, value_name = "BASE", value_enum)]
    time_base: Option<TimeBaseArg>,
    /// T1 only, with --time-base recovery on a DICOM series: the echo
    /// spacing in ms (the protocol's echo spacing, ParaVision's
    /// PVM_EchoTime). No standard DICOM header holds it; a ParaVision scan
    /// folder's comes from its method file.
    #[arg(long, value_name = "MS")]
    echo_spacing: Option<f64>,
    /// Print the run's summary as JSON (what maps.json holds).
    #[arg(long)]
    json: bool,
}

/// The T1 time base, as `--time-base` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TimeBaseArg {
    /// t = the repetition time of each image (RepetitionTime; for a
    /// ParaVision scan the method's MultiRepTime). XNAT-PIC's choice: use it
    /// to compare with XNAT-PIC, or when the readout has no echo train.
    Repetition,
    /// t = TR − echo spacing × (echoes per excitation − ½): the time the
    /// magnetisation really recovers after the echo train. Use it for
    /// RARE-VTR and other echo-train readouts.
    Recovery,
}

impl From<TimeBaseArg> for TimeBase {
    fn from(arg: TimeBaseArg) -> TimeBase {
        match arg {
            TimeBaseArg::Repetition => TimeBase::Repetition,
            TimeBaseArg::Recovery => TimeBase::Recovery,
        }
    }
}

#[derive(Debug, clap::Args)]
struct MaskArgs {
    /// The map: a DICOM series folder (one image per slice) or a NIfTI file.
    #[arg(long, value_name = "MAP")]
    map: PathBuf,
    /// The RTSTRUCT file.
    #[arg(long, value_name = "RTSTRUCT")]
    rois: PathBuf,
    /// Output folder.
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Print the statistics as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitCode> {
    match args.command {
        MapsCommand::T2(a) => map(a, MapKind::T2, printer).await,
        MapsCommand::T1Sr(a) => map(a, MapKind::T1Sr, printer).await,
        MapsCommand::Adc(a) => map(a, MapKind::Adc, printer).await,
        MapsCommand::MaskAverage(a) => mask_average(a, printer).await,
    }
}

async fn map(args: MapArgs, kind: MapKind, printer: Printer) -> anyhow::Result<ExitCode> {
    if args.drop_first_echo && kind != MapKind::T2 {
        anyhow::bail!("--drop-first-echo applies to `maps t2` only");
    }
    if args.offset && kind != MapKind::T1Sr {
        anyhow::bail!("--offset applies to `maps t1-sr` only");
    }
    if kind != MapKind::T1Sr && (args.time_base.is_some() || args.echo_spacing.is_some()) {
        anyhow::bail!("--time-base and --echo-spacing apply to `maps t1-sr` only");
    }
    let options = Options {
        drop_first_echo: args.drop_first_echo,
        t1_offset: args.offset,
        t1_time_base: args.time_base.map(TimeBase::from),
        echo_spacing_ms: args.echo_spacing,
    };
    printer.status(format_args!(
        "fitting {} in {} ...",
        kind.quantity(),
        args.input.display()
    ));
    let started = std::time::Instant::now();
    let (input, out) = (args.input.clone(), args.out.clone());
    // CPU-bound (it spreads over every core itself): off the async workers.
    let report = tokio::task::spawn_blocking(move || {
        xnatkit_maps::run_map(&input, kind, options, &out).map_err(anyhow::Error::from)
    })
    .await
    .context("the fitting task stopped unexpectedly")?
    .with_context(|| format!("cannot make the {} map", kind.quantity()))?;
    if args.json {
        printer.json(&report)?;
    } else {
        let [c, r, s] = report.dims;
        // T1 has two time bases: say which one the times are.
        let base = match (kind, &report.timing.echo_train) {
            (MapKind::T1Sr, Some(train)) => format!(
                ", time base recovery (TR − {} ms echo train)",
                train.duration_ms
            ),
            (MapKind::T1Sr, None) => format!(", time base {}", report.timing.time_base),
            _ => String::new(),
        };
        printer.data(format_args!(
            "{} map: {c}×{r}×{s} voxels, {} fitted (Otsu mask), {} valid, {} time points ({}){base} in {:.2} s -> {}",
            kind.quantity(),
            report.fitted_voxels,
            report.valid_voxels,
            report.times.len(),
            report
                .times
                .iter()
                .map(|t| format!("{t}"))
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64(),
            report.out_dir.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn mask_average(args: MaskArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let (map, rois, out) = (args.map.clone(), args.rois.clone(), args.out.clone());
    let report = tokio::task::spawn_blocking(move || {
        xnatkit_maps::run_mask_average(&map, &rois, &out).map_err(anyhow::Error::from)
    })
    .await
    .context("the mask-average task stopped unexpectedly")?
    .context("cannot compute the ROI statistics")?;
    for warning in &report.warnings {
        printer.warn(format_args!("warning: {warning}"));
    }
    if args.json {
        printer.json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let fmt = |v: Option<f64>| {
        v.map(|x| format!("{x:.4}"))
            .unwrap_or_else(|| "-".to_owned())
    };
    let rows: Vec<Vec<String>> = report
        .rois
        .iter()
        .map(|r| {
            let s = r.stats.as_ref();
            vec![
                r.roi.clone(),
                r.voxels.to_string(),
                r.values.to_string(),
                fmt(s.map(|x| x.mean)),
                fmt(s.map(|x| x.sd)),
                fmt(s.map(|x| x.median)),
                fmt(s.map(|x| x.min)),
                fmt(s.map(|x| x.max)),
            ]
        })
        .collect();
    let unit = if report.unit.is_empty() {
        String::new()
    } else {
        format!(" ({})", report.unit)
    };
    printer.table(
        &[
            "ROI",
            "voxels",
            "values",
            &format!("mean{unit}"),
            "sd",
            "median",
            "min",
            "max",
        ],
        &rows,
    )?;
    printer.status(format_args!(
        "ROIs placed by {}; statistics in {}",
        report.matched_by,
        report.out_dir.display()
    ));
    Ok(ExitCode::SUCCESS)
}
