//! Bruker ParaVision (5.1, 6.0.1, 360) → DICOM MR Image Storage.
//!
//! This crate owns everything about ParaVision data: the JCAMP-DX parameter
//! reader ([`jcamp`]), what `visu_pars` says about `2dseq` ([`visu`]), where
//! each image lies ([`geometry`]), per-frame timing, inversion and diffusion
//! ([`acquisition`]), pixel
//! decoding and 16-bit requantisation ([`pixels`]), the XNAT-PIC CEST private
//! block ([`cest`]), the DICOM attributes (`header`), writing one series per
//! reconstruction ([`series`]) and walking a study with per-reconstruction
//! failure isolation ([`study`]).
//!
//! Entry point: [`study::convert`].

pub mod acquisition;
pub mod cest;
pub mod dates;
pub mod geometry;
mod header;
pub mod jcamp;
pub mod pixels;
pub mod series;
pub mod study;
pub mod uid;
pub mod visu;

pub use header::PARAVISION_CREATOR;
pub use study::{Failure, Report, Skipped, StudyError, Written, convert, default_out_dir};
