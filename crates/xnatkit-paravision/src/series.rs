//! One reconstruction (`<expno>/pdata/<procno>`) → one folder of DICOM MR
//! Image Storage files, one single-frame file per 2-D image, as XNAT-PIC's
//! pipelines expect (they count files = frames). A reconstruction with
//! several slice packages (e.g. a localiser, or axial + coronal RARE) gets one
//! series per package: dcm2niix and the pipelines expect one orientation and
//! one run of instance numbers per series.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::uids;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use crate::cest;
use crate::header::{PackageSeries, SeriesTemplate};
use crate::jcamp::ParamFile;
use crate::pixels;
use crate::uid;
use crate::visu::Visu;

/// Why a series could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: is {actual} bytes but visu_pars describes {expected} bytes ({frames} frames of {frame_bytes}); the file is truncated or does not belong to this visu_pars", path.display())]
    SizeMismatch {
        path: PathBuf,
        actual: u64,
        expected: u64,
        frames: usize,
        frame_bytes: usize,
    },
    #[error("{}: {problem}", path.display())]
    Geometry { path: PathBuf, problem: String },
    #[error("{}: cannot encode DICOM: {message}", path.display())]
    Dicom { path: PathBuf, message: String },
}

/// Study-wide facts shared by every series of a study.
#[derive(Debug, Clone)]
pub struct StudyInfo {
    pub study_uid: String,
    /// The study-level `subject` file, when present and readable.
    pub subject: Option<ParamFile>,
}

/// Everything needed to write one reconstruction.
pub struct Reconstruction<'a> {
    pub study: &'a StudyInfo,
    pub expno: &'a str,
    pub procno: &'a str,
    pub visu: &'a Visu,
    pub method: Option<&'a ParamFile>,
    pub acqp: Option<&'a ParamFile>,
    /// `reco` present: primary reconstruction rather than a derived map.
    pub has_reco: bool,
    pub twodseq: &'a Path,
    pub visu_path: &'a Path,
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSummary {
    /// The first series (the only one unless the scan has several slice packages).
    pub series_uid: String,
    pub description: String,
    /// DICOM series written: one per slice package.
    pub series: usize,
    pub images: usize,
    pub twodseq_bytes: u64,
    pub cest: bool,
    /// Pixels stored as the minimum because the source held NaN/infinity.
    pub non_finite_pixels: usize,
}

/// Write the series into `dir` (which must exist and be empty).
pub fn write_series(recon: &Reconstruction<'_>, dir: &Path) -> Result<SeriesSummary, SeriesError> {
    let visu = recon.visu;
    let actual = std::fs::metadata(recon.twodseq)
        .map_err(|source| SeriesError::Io {
            path: recon.twodseq.to_owned(),
            source,
        })?
        .len();
    if actual != visu.expected_bytes() {
        return Err(SeriesError::SizeMismatch {
            path: recon.twodseq.to_owned(),
            actual,
            expected: visu.expected_bytes(),
            frames: visu.frame_count,
            frame_bytes: visu.frame_bytes(),
        });
    }
    let cest = recon
        .method
        .and_then(|method| cest::detect(method, recon.acqp, visu));
    let packages = visu.slice_packages();
    let frame_package: Vec<usize> = (0..visu.frame_count)
        .map(|frame| visu.package_of(&packages, frame))
        .collect();
    let templates: Vec<SeriesTemplate> = packages
        .iter()
        .enumerate()
        .map(|(index, package)| {
            let frames = frame_package.iter().filter(|&&p| p == index).count();
            let series = PackageSeries {
                index,
                count: packages.len(),
                slices: package.slices,
                images: frames * visu.planes_per_frame(),
                slice_distance: visu.package_slice_distance(&packages, index),
            };
            SeriesTemplate::new(recon, cest.as_ref(), &series)
        })
        .collect();
    let file = File::open(recon.twodseq).map_err(|source| SeriesError::Io {
        path: recon.twodseq.to_owned(),
        source,
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut frame_bytes = vec![0u8; visu.frame_bytes()];
    let word_bytes = visu.word_type.bytes();
    let mut image = 0usize;
    let mut instances = vec![0usize; templates.len()];
    let mut non_finite = 0usize;
    let mut written = Vec::with_capacity(visu.frame_count * visu.planes_per_frame());
    for (frame, &package) in frame_package.iter().enumerate() {
        reader
            .read_exact(&mut frame_bytes)
            .map_err(|source| SeriesError::Io {
                path: recon.twodseq.to_owned(),
                source,
            })?;
        let layout = visu.layout(frame);
        let plane_bytes = layout.plane_pixels() * word_bytes;
        let template = &templates[package];
        for plane in 0..layout.planes {
            let raw = &frame_bytes[plane * plane_bytes..(plane + 1) * plane_bytes];
            let stored = pixels::decode(raw, visu.word_type, visu.byte_order);
            let encoded = pixels::encode(&stored, visu.slopes[frame], visu.offsets[frame]);
            non_finite += encoded.non_finite;
            let instance = instances[package];
            instances[package] += 1;
            let object = template.image(recon, cest.as_ref(), frame, plane, instance, encoded)?;
            image += 1;
            let path = dir.join(format!("MRIm{image:05}.dcm"));
            write_file(&object, &path, &template.sop_uid(instance + 1))?;
            written.push(path);
        }
    }
    sync_series(dir, &written)?;
    Ok(SeriesSummary {
        series_uid: templates[0].series_uid.clone(),
        description: templates[0].description.clone(),
        series: templates.len(),
        images: image,
        twodseq_bytes: actual,
        cest: cest.is_some(),
        non_finite_pixels: non_finite,
    })
}

/// Make the written files durable before the series is renamed into place.
/// On Linux one `syncfs` commits them all at once; syncing file by file costs
/// a journal commit each and made conversion I/O-bound at ~40 MB/s.
#[cfg(target_os = "linux")]
fn sync_series(dir: &Path, _files: &[PathBuf]) -> Result<(), SeriesError> {
    File::open(dir)
        .and_then(|d| rustix::fs::syncfs(&d).map_err(std::io::Error::from))
        .map_err(|source| SeriesError::Io {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(not(target_os = "linux"))]
fn sync_series(_dir: &Path, files: &[PathBuf]) -> Result<(), SeriesError> {
    for path in files {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|source| SeriesError::Io {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}

fn write_file(object: &InMemDicomObject, path: &Path, sop_uid: &str) -> Result<(), SeriesError> {
    let dicom_err = |message: String| SeriesError::Dicom {
        path: path.to_owned(),
        message,
    };
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::MR_IMAGE_STORAGE)
        .media_storage_sop_instance_uid(sop_uid)
        .implementation_class_uid(uid::implementation_class_uid())
        .implementation_version_name(concat!("XNATKIT_", env!("CARGO_PKG_VERSION")));
    let file_object = object
        .clone()
        .with_meta(meta)
        .map_err(|e| dicom_err(e.to_string()))?;
    let mut buffer = Vec::new();
    file_object
        .write_all(&mut buffer)
        .map_err(|e| dicom_err(e.to_string()))?;
    let io_err = |source| SeriesError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::create(path).map_err(io_err)?;
    file.write_all(&buffer).map_err(io_err)?;
    Ok(())
}
