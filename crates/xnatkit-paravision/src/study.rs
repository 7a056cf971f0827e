//! Walking a study (or a single scan folder), converting each reconstruction
//! into its own output folder, and isolating failures per reconstruction.
//!
//! Each series is written into a hidden temporary folder beside its final
//! place and renamed into place only when complete, so a failure or a crash
//! never leaves a partial series, and a rerun replaces the previous output.

use std::path::{Path, PathBuf};

use crate::jcamp::{JcampError, ParamFile};
use crate::series::{self, Reconstruction, SeriesError, SeriesSummary, StudyInfo};
use crate::uid;
use crate::visu::{Visu, VisuError};

/// The study as a whole could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("{}: not found or not a directory; give the path of a ParaVision study or scan folder", .0.display())]
    NotADirectory(PathBuf),
    #[error(
        "{}: no ParaVision reconstructions found (expected <scan>/pdata/<n>/ folders); point at a study folder or a scan folder",
        .0.display()
    )]
    NoScans(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why one reconstruction failed; always names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error("{} is missing", .0.display())]
    Missing(PathBuf),
    #[error("{}: {source}", path.display())]
    Params { path: PathBuf, source: JcampError },
    #[error("{}: {source}", path.display())]
    Visu { path: PathBuf, source: VisuError },
    #[error(transparent)]
    Series(#[from] SeriesError),
    #[error("{}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A reconstruction that was not converted.
#[derive(Debug)]
pub struct Failure {
    pub scan: String,
    pub reco: String,
    pub error: ReconError,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scan {} reconstruction {}: {}",
            self.scan, self.reco, self.error
        )
    }
}

/// A scan or reconstruction that was left out because it was never
/// acquired (or never reconstructed): not an error.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub scan: String,
    /// `None` when the whole scan has no reconstruction.
    pub reco: Option<String>,
    pub reason: &'static str,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reco {
            Some(reco) => write!(
                f,
                "scan {} reconstruction {reco}: {}",
                self.scan, self.reason
            ),
            None => write!(f, "scan {}: {}", self.scan, self.reason),
        }
    }
}

const NEVER_ACQUIRED: &str = "skipped: never acquired (no fid or rawdata, no 2dseq)";
const NEVER_RECONSTRUCTED: &str = "skipped: acquired but never reconstructed (no pdata/<n>/2dseq); reconstruct it in ParaVision to convert it";

/// A series that was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub scan: String,
    pub reco: String,
    pub dir: PathBuf,
    pub summary: SeriesSummary,
}

/// Outcome of converting a study.
#[derive(Debug)]
pub struct Report {
    pub out_dir: PathBuf,
    pub written: Vec<Written>,
    pub failures: Vec<Failure>,
    /// Scans that were never acquired or never reconstructed.
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// Total `2dseq` bytes converted.
    pub fn twodseq_bytes(&self) -> u64 {
        self.written.iter().map(|w| w.summary.twodseq_bytes).sum()
    }
}

/// Default output folder: the input path with `_dicom` appended, beside it.
pub fn default_out_dir(input: &Path) -> PathBuf {
    let text = input.as_os_str().to_string_lossy();
    let trimmed = text.trim_end_matches(std::path::MAIN_SEPARATOR);
    PathBuf::from(format!("{trimmed}_dicom"))
}

/// Convert every reconstruction under `input` (a study or one scan folder)
/// into `out_dir` (default: [`default_out_dir`]). Per-reconstruction
/// failures are collected in the report; the others are still converted.
/// `progress` is called after each reconstruction.
pub fn convert(
    input: &Path,
    out_dir: Option<&Path>,
    mut progress: impl FnMut(Result<&Written, &Failure>),
) -> Result<Report, StudyError> {
    if !input.is_dir() {
        return Err(StudyError::NotADirectory(input.to_owned()));
    }
    let (study_dir, scans) = if input.join("pdata").is_dir() {
        let parent = input
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (parent.to_owned(), vec![(name, input.to_owned())])
    } else {
        (input.to_owned(), numbered_dirs(input)?)
    };
    let mut recons: Vec<(String, PathBuf, String, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    for (expno, dir) in &scans {
        let acquired = has_raw_data(dir);
        let pdata = dir.join("pdata");
        let found = if pdata.is_dir() {
            numbered_dirs(&pdata)?
        } else {
            Vec::new()
        };
        if found.is_empty() {
            skipped.push(Skipped {
                scan: expno.clone(),
                reco: None,
                reason: if acquired {
                    NEVER_RECONSTRUCTED
                } else {
                    NEVER_ACQUIRED
                },
            });
            continue;
        }
        for (procno, recon) in found {
            // A reconstruction folder without 2dseq in a scan without raw
            // data is what ParaVision leaves for a scan that was set up but
            // never run; with raw data, a missing 2dseq is a real failure.
            if !acquired && !recon.join("2dseq").exists() {
                skipped.push(Skipped {
                    scan: expno.clone(),
                    reco: Some(procno),
                    reason: NEVER_ACQUIRED,
                });
                continue;
            }
            recons.push((expno.clone(), dir.clone(), procno, recon));
        }
    }
    if recons.is_empty() && skipped.is_empty() {
        return Err(StudyError::NoScans(input.to_owned()));
    }
    let out_dir = out_dir.map_or_else(|| default_out_dir(input), Path::to_owned);
    if recons.is_empty() {
        // Nothing was acquired: no empty output folder either.
        return Ok(Report {
            out_dir,
            written: Vec::new(),
            failures: Vec::new(),
            skipped,
        });
    }
    std::fs::create_dir_all(&out_dir).map_err(|source| StudyError::Io {
        path: out_dir.clone(),
        source,
    })?;

    let study = study_info(&study_dir, &recons);
    let mut report = Report {
        out_dir: out_dir.clone(),
        written: Vec::new(),
        failures: Vec::new(),
        skipped,
    };
    for (expno, scan_dir, procno, recon_dir) in &recons {
        let dest = out_dir.join(expno).join(procno);
        let outcome = convert_one(&study, expno, scan_dir, procno, recon_dir, &dest);
        if outcome.is_err()
            && let Some(scan_out) = dest.parent()
        {
            // Only succeeds when empty: never removes another reconstruction's series.
            let _ = std::fs::remove_dir(scan_out);
        }
        match outcome {
            Ok(summary) => {
                let written = Written {
                    scan: expno.clone(),
                    reco: procno.clone(),
                    dir: dest,
                    summary,
                };
                progress(Ok(&written));
                report.written.push(written);
            }
            Err(error) => {
                let failure = Failure {
                    scan: expno.clone(),
                    reco: procno.clone(),
                    error,
                };
                progress(Err(&failure));
                report.failures.push(failure);
            }
        }
    }
    Ok(report)
}

/// The scan holds raw data: `fid` (PV5/6), `rawdata.job<n>` (PV6 job based,
/// PV360) or `ser` (TopSpin export).
fn has_raw_data(scan_dir: &Path) -> bool {
    ["fid", "ser"]
        .iter()
        .any(|name| scan_dir.join(name).is_file())
        || std::fs::read_dir(scan_dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("rawdata."))
        })
}

/// Sub-folders whose names are decimal numbers, in numeric order.
fn numbered_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, StudyError> {
    let entries = std::fs::read_dir(dir).map_err(|source| StudyError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut found: Vec<(u64, String, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if let Ok(number) = name.parse::<u64>()
            && path.is_dir()
            && name.bytes().all(|b| b.is_ascii_digit())
        {
            found.push((number, name, path));
        }
    }
    found.sort();
    Ok(found
        .into_iter()
        .map(|(_, name, path)| (name, path))
        .collect())
}

/// Study UID and subject file, shared by every series.
fn study_info(study_dir: &Path, recons: &[(String, PathBuf, String, PathBuf)]) -> StudyInfo {
    let subject_path = study_dir.join("subject");
    let subject = if subject_path.is_file() {
        match ParamFile::read(&subject_path) {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::warn!(
                    "{}: {error}; patient identity comes from visu_pars only",
                    subject_path.display()
                );
                None
            }
        }
    } else {
        None
    };
    // The scanner's study UID when any visu_pars has a valid one, so our
    // series join the same study as the scanner's own DICOM export.
    let scanner_uid = recons.iter().find_map(|(_, _, _, recon)| {
        let visu = ParamFile::read(&recon.join("visu_pars")).ok()?;
        visu.str("VisuStudyUid")
            .filter(|u| uid::is_valid(u))
            .map(str::to_owned)
    });
    let study_uid = scanner_uid
        .or_else(|| {
            subject
                .as_ref()
                .and_then(|s| s.str("SUBJECT_study_instance_uid"))
                .filter(|u| uid::is_valid(u))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            let name = study_dir
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            let subject_id = subject
                .as_ref()
                .and_then(|s| s.str("SUBJECT_id"))
                .unwrap_or_default();
            uid::derive(&["study", &name, subject_id])
        });
    StudyInfo { study_uid, subject }
}

fn read_params(path: &Path, required: bool) -> Result<Option<ParamFile>, ReconError> {
    if !path.exists() {
        return if required {
            Err(ReconError::Missing(path.to_owned()))
        } else {
            Ok(None)
        };
    }
    ParamFile::read(path)
        .map(Some)
        .map_err(|source| ReconError::Params {
            path: path.to_owned(),
            source,
        })
}

fn convert_one(
    study: &StudyInfo,
    expno: &str,
    scan_dir: &Path,
    procno: &str,
    recon_dir: &Path,
    dest: &Path,
) -> Result<SeriesSummary, ReconError> {
    let visu_path = recon_dir.join("visu_pars");
    let twodseq = recon_dir.join("2dseq");
    let visu_params =
        read_params(&visu_path, true)?.ok_or_else(|| ReconError::Missing(visu_path.clone()))?;
    if !twodseq.is_file() {
        return Err(ReconError::Missing(twodseq));
    }
    let visu = Visu::from_params(visu_params).map_err(|source| ReconError::Visu {
        path: visu_path.clone(),
        source,
    })?;
    let method = read_params(&scan_dir.join("method"), false)?;
    let acqp = read_params(&scan_dir.join("acqp"), false)?;
    let recon = Reconstruction {
        study,
        expno,
        procno,
        visu: &visu,
        method: method.as_ref(),
        acqp: acqp.as_ref(),
        has_reco: recon_dir.join("reco").is_file(),
        twodseq: &twodseq,
        visu_path: &visu_path,
    };
    let parent = dest.parent().unwrap_or(Path::new("."));
    let output_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ReconError::Output { path, source }
    };
    std::fs::create_dir_all(parent).map_err(output_err(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{procno}.partial-"))
        .tempdir_in(parent)
        .map_err(output_err(parent))?;
    // On error `staging` is dropped and removes everything written so far.
    let summary = series::write_series(&recon, staging.path())?;
    replace_dir(staging.keep(), dest).map_err(output_err(dest))?;
    Ok(summary)
}

/// Move a finished series into place, replacing an earlier run's output.
fn replace_dir(finished: PathBuf, dest: &Path) -> std::io::Result<()> {
    let result = (|| {
        if dest.exists() {
            let old = tempfile::Builder::new()
                .prefix(".old-")
                .tempdir_in(dest.parent().unwrap_or(Path::new(".")))?;
            let old_path = old.path().join("series");
            std::fs::rename(dest, &old_path)?;
            std::fs::rename(&finished, dest)?;
            drop(old);
        } else {
            std::fs::rename(&finished, dest)?;
        }
        if let Some(parent) = dest.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() && finished.exists() {
        let _ = std::fs::remove_dir_all(&finished);
    }
    result
}
