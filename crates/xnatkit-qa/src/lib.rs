//! # xnatkit-qa
//!
//! Image quality metrics that need no template, for one NIfTI image (what
//! dcm2niix makes of a scan), as the `qa` pipeline stores them:
//!
//! - [`Volume`]: a 3-D or 4-D image read from NIfTI (`.nii`, `.nii.gz`);
//! - [`head_mask`]: an intensity-derived head mask (Otsu threshold on the
//!   mean image, largest connected component, holes filled);
//! - [`assess`]: SNR, EFC and FBER on the (mean) image, and for 4-D series
//!   the tSNR map with its mean and median inside the mask and the signal
//!   drift — each formula is written next to its function in [`metrics`]
//!   and in `docs/pipelines.md`;
//! - [`montage_png`]: the middle slices with the mask outline, because
//!   people look before they read;
//! - [`QaReport`]: the numbers, as JSON or CSV.
//!
//! The numbers are checked against an independent numpy/scipy
//! implementation on real data (`tests/crosscheck.rs`).

mod error;
mod mask;
pub mod metrics;
mod montage;
mod report;
mod volume;

pub use error::Error;
pub use mask::{
    Mask, OtsuHistogram, head_mask, otsu_threshold, otsu_threshold_in, otsu_threshold_of,
};
pub use montage::montage_png;
pub use report::{QaReport, assess, csv_metrics, write_outputs};
pub use volume::Volume;
