//! The built-in commands. Each runs on the files of one scan in a local
//! folder and writes its outputs into another; the caller decides where
//! the inputs come from and where the outputs go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use xnatkit_maps::{MapKind, Options as MapOptions, TimeBase};

use crate::Error;

/// A command that ships with xnatkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `dcm2niix -z y -b y`: the scan as NIfTI with its BIDS sidecar (and
    /// `.bval`/`.bvec` for diffusion) in a `NIFTI` resource.
    Dcm2niix,
    /// Template-free image QA (`xnatkit-qa`) of the scan's NIfTI image(s),
    /// as a `QA` resource (of a QC assessor when run over a project):
    /// `qa.json`, `qa.csv`, `montage.png`.
    Qa,
    /// T2 map of a multi-echo scan (`xnatkit-maps`) as a `T2MAP` resource.
    T2Map,
    /// T1 saturation-recovery map as a `T1MAP` resource.
    T1SrMap,
    /// ADC map of a diffusion scan as an `ADCMAP` resource.
    AdcMap,
    /// XNAT-PIC's "Mask Average": the statistics of a map (a `T2MAP`,
    /// `T1MAP` or `ADCMAP` resource) inside the ROIs of an RTSTRUCT (an ROI
    /// collection's `RTSTRUCT` resource), as a `ROISTATS` resource. Takes
    /// two inputs: the map's folder, then the RTSTRUCT's.
    MaskAverage,
}

impl Builtin {
    pub const ALL: [Self; 6] = [
        Self::Dcm2niix,
        Self::Qa,
        Self::T2Map,
        Self::T1SrMap,
        Self::AdcMap,
        Self::MaskAverage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Dcm2niix => "dcm2niix",
            Self::Qa => "qa",
            Self::T2Map => "t2-map",
            Self::T1SrMap => "t1-sr-map",
            Self::AdcMap => "adc-map",
            Self::MaskAverage => "mask-average",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The scan resource the outputs go into (also its `format`).
    pub fn output_resource(self) -> &'static str {
        match self {
            Self::Dcm2niix => "NIFTI",
            Self::Qa => "QA",
            Self::T2Map => "T2MAP",
            Self::T1SrMap => "T1MAP",
            Self::AdcMap => "ADCMAP",
            Self::MaskAverage => "ROISTATS",
        }
    }

    /// How many input folders it reads.
    pub fn input_count(self) -> usize {
        match self {
            Self::MaskAverage => 2,
            _ => 1,
        }
    }

    /// The scan resource read.
    pub fn input_resource(self) -> &'static str {
        "DICOM"
    }

    /// The parameters it takes (its command's inputs, by name): the T1
    /// map's time base and echo spacing; the others take none.
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::T1SrMap => &[TIME_BASE, ECHO_SPACING],
            _ => &[],
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Dcm2niix => {
                "DICOM to NIfTI with dcm2niix (-z y -b y): .nii.gz, BIDS .json, .bval/.bvec for diffusion"
            }
            Self::Qa => {
                "image QA: head mask, SNR, EFC, FBER, tSNR and drift for 4-D series, a montage"
            }
            Self::T2Map => {
                "T2 map (M0·exp(-TE/T2) + C, every slice): NIfTI, DICOM series, PNG, maps.json"
            }
            Self::T1SrMap => {
                "T1 saturation-recovery map (A·(1 - exp(-t/T1)), t the TR or the recovery time TR - echo train): NIfTI, DICOM series, PNG, maps.json"
            }
            Self::AdcMap => {
                "ADC map (mono-exponential, directions by geometric mean): NIfTI, DICOM series, PNG, maps.json"
            }
            Self::MaskAverage => {
                "ROI statistics of a map inside an RTSTRUCT's ROIs: rois.json, rois.csv, statistics.txt, masks, a preview"
            }
        }
    }
}

/// The T1 map's parameter: `repetition` or `recovery`; empty for the
/// input's default (a DICOM scan: repetition).
pub const TIME_BASE: &str = "time-base";
/// The T1 map's parameter: the echo spacing in ms, for the recovery base
/// (no standard DICOM header holds it); empty for none.
pub const ECHO_SPACING: &str = "echo-spacing";

/// Parameter values by name (the engine's command inputs, `--param
/// NAME=VALUE` on the command line). An empty value means "not given".
pub type Params = BTreeMap<String, String>;

/// What a run of a built-in made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// Files in the output folder, by name.
    pub files: Vec<PathBuf>,
    /// The version of the tool that made them (for the provenance record).
    pub tool_version: String,
}

/// Runs `builtin` on its input folders (the DICOM files of a scan; for
/// mask-average the map's folder and then the RTSTRUCT's), writing into
/// `out_dir` (which must exist and be empty), with its defaults. Blocking:
/// call it from a blocking thread.
pub fn run(builtin: Builtin, inputs: &[PathBuf], out_dir: &Path) -> Result<Outputs, Error> {
    run_with(builtin, inputs, out_dir, &Params::new())
}

/// [`run`] with parameters (see [`Builtin::parameters`]); a parameter the
/// built-in does not take, or a value it cannot use, is refused before
/// anything runs.
pub fn run_with(
    builtin: Builtin,
    inputs: &[PathBuf],
    out_dir: &Path,
    params: &Params,
) -> Result<Outputs, Error> {
    let options = map_options(builtin, params)?;
    if inputs.len() != builtin.input_count() {
        return Err(Error::Input(format!(
            "{} takes {} input folder(s), and {} were given",
            builtin.name(),
            builtin.input_count(),
            inputs.len()
        )));
    }
    let first = &inputs[0];
    match builtin {
        Builtin::Dcm2niix => dcm2niix(first, out_dir),
        Builtin::Qa => qa(first, out_dir),
        Builtin::T2Map => map(MapKind::T2, first, out_dir, options),
        Builtin::T1SrMap => map(MapKind::T1Sr, first, out_dir, options),
        Builtin::AdcMap => map(MapKind::Adc, first, out_dir, options),
        Builtin::MaskAverage => mask_average(first, &inputs[1], out_dir),
    }
}

/// The maps a map resource may hold, most wanted first (the rates R2/R1
/// are derived from T2/T1 and not measured on their own).
const MAP_NAMES: [&str; 3] = ["T2_map", "T1_map", "ADC_map"];

/// The map in a map resource's folder: its DICOM series (which keeps the
/// frame of reference, so a foreign RTSTRUCT is refused), else its NIfTI.
pub fn find_map(dir: &Path) -> Result<PathBuf, Error> {
    for name in MAP_NAMES {
        let series = dir.join(format!("{name}_dicom"));
        if series.is_dir() {
            return Ok(series);
        }
        let nifti = dir.join(format!("{name}.nii.gz"));
        if nifti.is_file() {
            return Ok(nifti);
        }
    }
    let images: Vec<PathBuf> = listed(dir)?.into_iter().filter(|f| is_nifti(f)).collect();
    match images.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Error::Input(format!(
            "{} holds no map: expected T2_map, T1_map or ADC_map (the T2MAP, T1MAP or ADCMAP resource of a map run) or a single NIfTI image",
            dir.display()
        ))),
    }
}

/// The RTSTRUCT file in an ROI collection's resource folder: its only
/// file, or its only `.dcm` file.
pub fn find_rtstruct(dir: &Path) -> Result<PathBuf, Error> {
    let files: Vec<PathBuf> = listed(dir)?
        .into_iter()
        .filter(|f| {
            !f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    if let [one] = files.as_slice() {
        return Ok(one.clone());
    }
    let dicom: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("dcm")))
        .collect();
    match dicom.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Input(format!(
            "{} holds no RTSTRUCT file: store the ROI collection's RTSTRUCT resource first",
            dir.display()
        ))),
        _ => Err(Error::Input(format!(
            "{} holds {} DICOM files; an ROI collection's RTSTRUCT resource holds one",
            dir.display(),
            dicom.len()
        ))),
    }
}

fn mask_average(map_dir: &Path, rois_dir: &Path, out_dir: &Path) -> Result<Outputs, Error> {
    let map = find_map(map_dir)?;
    let rtstruct = find_rtstruct(rois_dir)?;
    let report = xnatkit_maps::run_mask_average(&map, &rtstruct, out_dir)
        .map_err(|e| Error::Maps(Box::new(e)))?;
    Ok(Outputs {
        files: report.files,
        tool_version: format!("xnatkit-maps {}", env!("CARGO_PKG_VERSION")),
    })
}

/// The map options `params` ask for (the defaults where they are empty).
pub fn map_options(builtin: Builtin, params: &Params) -> Result<MapOptions, Error> {
    let mut options = MapOptions::default();
    for (name, value) in params {
        if !builtin.parameters().contains(&name.as_str()) {
            return Err(Error::Input(format!(
                "{} takes no parameter {name:?}{}",
                builtin.name(),
                match builtin.parameters() {
                    [] => String::new(),
                    known => format!(" (it takes {})", known.join(", ")),
                }
            )));
        }
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match name.as_str() {
            TIME_BASE => {
                options.t1_time_base = Some(TimeBase::parse(value).ok_or_else(|| {
                    Error::Input(format!(
                        "{TIME_BASE} is {value:?}; it is repetition or recovery"
                    ))
                })?);
            }
            ECHO_SPACING => {
                let ms = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| {
                        Error::Input(format!(
                            "{ECHO_SPACING} is {value:?}; it is a positive number of ms"
                        ))
                    })?;
                options.echo_spacing_ms = Some(ms);
            }
            _ => {}
        }
    }
    Ok(options)
}

/// A parametric map (the DICOM series of the map in a subfolder of
/// `out_dir`).
fn map(
    kind: MapKind,
    dicom_dir: &Path,
    out_dir: &Path,
    options: MapOptions,
) -> Result<Outputs, Error> {
    let report = xnatkit_maps::run_map(dicom_dir, kind, options, out_dir)
        .map_err(|e| Error::Maps(Box::new(e)))?;
    Ok(Outputs {
        files: report.files,
        tool_version: format!("xnatkit-maps {}", env!("CARGO_PKG_VERSION")),
    })
}

/// The first line dcm2niix prints about itself (`dcm2niix -v`).
pub fn dcm2niix_version() -> Result<String, Error> {
    let out = Command::new("dcm2niix")
        .arg("-v")
        .output()
        .map_err(|e| Error::ToolMissing {
            tool: "dcm2niix",
            package: "dcm2niix",
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `-v` prints the banner and then the bare version (`v1.0.20220720`).
    Ok(text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("unknown")
        .trim()
        .to_owned())
}

/// Whether the NIfTI images dcm2niix makes are gzipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    /// `.nii.gz`, as the `NIFTI` resource holds them.
    Gzip,
    /// Plain `.nii`, for a scratch image that is read once and removed.
    Plain,
}

fn dcm2niix(dicom_dir: &Path, out_dir: &Path) -> Result<Outputs, Error> {
    dcm2niix_packed(dicom_dir, out_dir, Packing::Gzip)
}

fn dcm2niix_packed(dicom_dir: &Path, out_dir: &Path, packing: Packing) -> Result<Outputs, Error> {
    let tool_version = dcm2niix_version()?;
    let out = Command::new("dcm2niix")
        // -z n: plain images, gzipped below when wanted (see nifti_gzip
        // for why not dcm2niix's own -z y); -b y: BIDS sidecar; -f: series
        // number and protocol, unique within a scan; -w 1: overwrite
        // rather than rename on a rerun into the same folder.
        .args(["-z", "n", "-b", "y", "-w", "1", "-f", "%s_%p", "-o"])
        .arg(out_dir)
        .arg(dicom_dir)
        .output()
        .map_err(|e| Error::ToolMissing {
            tool: "dcm2niix",
            package: "dcm2niix",
            reason: e.to_string(),
        })?;
    let made_image = listed(out_dir)?.iter().any(|f| is_nifti(f));
    if !out.status.success() || !made_image {
        return Err(Error::ToolFailed {
            tool: "dcm2niix",
            message: last_words(&out.stdout, &out.stderr, made_image),
        });
    }
    if packing == Packing::Gzip {
        crate::nifti_gzip::gzip_nifti_images(out_dir)?;
    }
    let files = listed(out_dir)?;
    Ok(Outputs {
        files,
        tool_version: format!("dcm2niix {tool_version}"),
    })
}

/// QA needs an image: dcm2niix makes it in a scratch folder beside the
/// outputs, and each NIfTI it makes is assessed.
fn qa(dicom_dir: &Path, out_dir: &Path) -> Result<Outputs, Error> {
    let scratch = out_dir.with_extension("nifti-scratch");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    }
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    let converted = dcm2niix_packed(dicom_dir, &scratch, Packing::Plain);
    let result = converted.and_then(|nifti| {
        let images: Vec<&PathBuf> = nifti.files.iter().filter(|f| is_nifti(f)).collect();
        for image in &images {
            let prefix = if images.len() == 1 {
                String::new()
            } else {
                format!("{}_", nifti_stem(image))
            };
            assess_one(image, out_dir, &prefix)?;
        }
        Ok(Outputs {
            files: listed(out_dir)?,
            tool_version: format!(
                "xnatkit-qa {} ({})",
                env!("CARGO_PKG_VERSION"),
                nifti.tool_version
            ),
        })
    });
    // The scratch images are not outputs; a failure to remove them only
    // leaves a folder in the work area.
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn assess_one(image: &Path, out_dir: &Path, prefix: &str) -> Result<(), Error> {
    let qa_err = |source| Error::Qa {
        image: image.to_owned(),
        source: Box::new(source),
    };
    let volume = xnatkit_qa::Volume::read(image).map_err(qa_err)?;
    let (report, mask, mean) = xnatkit_qa::assess(&volume).map_err(qa_err)?;
    let png = xnatkit_qa::montage_png(&mean, &mask).map_err(|e| Error::ToolFailed {
        tool: "png encoder",
        message: e.to_string(),
    })?;
    if prefix.is_empty() {
        return xnatkit_qa::write_outputs(out_dir, &report, &png).map_err(qa_err);
    }
    // Several images of one scan (echoes, phases): one report each.
    let staging = out_dir.join(format!(".{prefix}qa"));
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    xnatkit_qa::write_outputs(&staging, &report, &png).map_err(qa_err)?;
    for name in ["qa.json", "qa.csv", "montage.png"] {
        let to = out_dir.join(format!("{prefix}{name}"));
        std::fs::rename(staging.join(name), &to).map_err(|e| Error::io(&to, e))?;
    }
    std::fs::remove_dir(&staging).map_err(|e| Error::io(&staging, e))
}

fn is_nifti(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".nii.gz") || name.ends_with(".nii")
}

fn nifti_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.trim_end_matches(".gz")
        .trim_end_matches(".nii")
        .to_owned()
}

/// The regular files directly in `dir`, sorted.
fn listed(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry
            .file_type()
            .map_err(|e| Error::io(entry.path(), e))?
            .is_file()
        {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// What to tell the user when dcm2niix failed: its error lines, else its
/// last line of output.
fn last_words(stdout: &[u8], stderr: &[u8], made_image: bool) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let errors: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("Error") || l.contains("error"))
        .collect();
    if !errors.is_empty() {
        return errors.join("; ");
    }
    let last = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    if made_image {
        last.to_owned()
    } else {
        format!("no image was made (not an image series?): {last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Builtin::ALL {
            assert_eq!(Builtin::from_name(b.name()), Some(b));
        }
        assert_eq!(Builtin::from_name("matlab"), None);
    }

    #[test]
    fn the_t1_map_takes_a_time_base_and_an_echo_spacing() {
        let params = |pairs: &[(&str, &str)]| -> Params {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let options = map_options(
            Builtin::T1SrMap,
            &params(&[("time-base", "recovery"), ("echo-spacing", "10.5")]),
        )
        .unwrap();
        assert_eq!(options.t1_time_base, Some(TimeBase::Recovery));
        assert_eq!(options.echo_spacing_ms, Some(10.5));
        // Empty values are the defaults (what a launch without them sends).
        let options = map_options(
            Builtin::T1SrMap,
            &params(&[("time-base", ""), ("echo-spacing", " ")]),
        )
        .unwrap();
        assert_eq!(options, MapOptions::default());
        for (bad, said) in [
            (("time-base", "nominal"), "repetition or recovery"),
            (("echo-spacing", "-3"), "positive number of ms"),
        ] {
            let err = map_options(Builtin::T1SrMap, &params(&[bad])).unwrap_err();
            assert!(err.to_string().contains(said), "{err}");
        }
        let err = map_options(Builtin::T2Map, &params(&[("time-base", "recovery")])).unwrap_err();
        assert!(
            err.to_string().contains("t2-map takes no parameter"),
            "{err}"
        );
    }

    #[test]
    fn dcm2niix_error_lines_are_kept() {
        let said = last_words(
            b"Chris Rorden's dcm2niiX version v1\n",
            b"Error: Unable to find any DICOM images in /x\n",
            false,
        );
        assert_eq!(said, "Error: Unable to find any DICOM images in /x");
    }
}
