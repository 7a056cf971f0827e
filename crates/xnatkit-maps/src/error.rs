//! One error type for the crate: every variant a user can cause names the
//! file (or folder) and says what to do, and keeps its source.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot keep the fit results in a temporary file ({source}); free space in the temporary folder or point TMPDIR elsewhere"
    )]
    Scratch {
        #[source]
        source: std::io::Error,
    },

    #[error("{}: not a readable DICOM file: {reason}", path.display())]
    Dicom { path: PathBuf, reason: String },

    #[error("{}: {what} is missing or unreadable; {hint}", path.display())]
    MissingAttribute {
        path: PathBuf,
        what: &'static str,
        hint: &'static str,
    },

    #[error("{}: no DICOM images found; pass a folder holding one series (or a ParaVision scan folder)", path.display())]
    NoImages { path: PathBuf },

    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },

    #[error(
        "{}: the images are not one series ({reason}); pass a folder holding a single series",
        path.display()
    )]
    MixedSeries { path: PathBuf, reason: String },

    #[error(
        "{}: no {what} in the headers; a {map} map needs one per image ({tags})",
        path.display()
    )]
    MissingTime {
        path: PathBuf,
        what: &'static str,
        map: &'static str,
        tags: &'static str,
    },

    #[error(
        "{}: only {found} distinct {what} value(s) ({values}); a {map} map needs at least {needed}",
        path.display()
    )]
    TooFewTimePoints {
        path: PathBuf,
        what: &'static str,
        map: &'static str,
        found: usize,
        needed: usize,
        values: String,
    },

    #[error(
        "{}: slice {slice} has no image at {what} {value}; every slice needs every {what}",
        path.display()
    )]
    IncompleteGrid {
        path: PathBuf,
        what: &'static str,
        slice: usize,
        value: f64,
    },

    #[error("{}: {reason}; the input image is empty or corrupt", path.display())]
    BadPixels { path: PathBuf, reason: String },

    #[error("{}: not a NIfTI map: {reason}", path.display())]
    Nifti { path: PathBuf, reason: String },

    #[error("{}: not an RTSTRUCT: {reason}", path.display())]
    RtStruct { path: PathBuf, reason: String },

    #[error(
        "{}: the ROIs are drawn in frame of reference {rois} but the map is in {map}, and their image references do not resolve to the map; draw the ROIs on a series of the same session (same frame of reference)",
        path.display()
    )]
    FrameOfReference {
        path: PathBuf,
        rois: String,
        map: String,
    },

    #[error("{}: no ROI lies on the map ({reason})", path.display())]
    NoRoiOnMap { path: PathBuf, reason: String },

    #[error("{}: {reason}", path.display())]
    TimeBase { path: PathBuf, reason: String },

    #[error(
        "{}: the images at repetition time {repetition} ms have an effective recovery time of {recovery} ms (TR − {train} ms echo train), which is not positive; check the echo spacing and echo train length, or use --time-base repetition",
        path.display()
    )]
    RecoveryNotPositive {
        path: PathBuf,
        repetition: f64,
        recovery: f64,
        train: f64,
    },

    #[error("ParaVision conversion of {} failed: {reason}", path.display())]
    ParaVision { path: PathBuf, reason: String },

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: xnatkit_fileio::Error,
    },

    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },
}
