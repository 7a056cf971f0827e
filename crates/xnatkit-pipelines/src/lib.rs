//! # xnatkit-pipelines
//!
//! Processing that turns archived scans into derived data:
//!
//! - [`builtin`]: the built-in commands — `dcm2niix` (a scan's DICOM to a
//!   `NIFTI` resource: `.nii.gz`, the BIDS `.json` sidecar, `.bval`/`.bvec`
//!   for diffusion) and `qa` (image quality metrics from `xnatkit-qa`, as a
//!   `QA` resource with the numbers and a montage) — run on one scan's files
//!   on this machine;
//! - [`nifti_gzip`]: dcm2niix's plain images gzipped in-process (faster
//!   than dcm2niix's built-in miniz; the engine's local pool uses it too);
//! - [`local`]: the local runner — find a project's matching scans on any
//!   XNAT, download, compute in parallel, upload the results, skip scans
//!   that already have them, continue after an interruption.
//!
//! A scan counts as done only when its output resource holds the
//! provenance record [`local::PROVENANCE_FILE`], uploaded after every other
//! output: an interrupted upload is redone, never taken for a result.

pub mod builtin;
mod error;
pub mod local;
pub mod nifti_gzip;

pub use error::Error;
