//! Bulk upload of folder trees into XNAT, driven by a spreadsheet that is
//! compatible with xnatuploader 1.1.9 in both directions.
//!
//! Two passes, each a separate command:
//!
//! 1. [`scan::scan_to_workbook`] walks a folder, matches every file against the
//!    pattern sets of the Configuration worksheet ([`config`], [`pattern`]),
//!    reads DICOM headers, and writes one row per file into the Files worksheet
//!    ([`files_sheet`]) for the user to review.
//! 2. [`run`] reads the Files worksheet back, plans subjects, sessions, scans
//!    and resources ([`plan`]), sends the selected files, verifies each MD5
//!    against the server's digest and writes each row's status back into the
//!    same workbook ([`workbook`] saves atomically).
//!
//! This crate owns the spreadsheet model, the matching and the upload plan;
//! all HTTP goes through `xnatkit-client`.

pub mod config;
pub mod dicom_values;
pub mod error;
pub mod files_sheet;
pub mod pattern;
pub mod plan;
pub mod run;
pub mod scan;
pub mod workbook;

pub use config::{Config, write_default};
pub use error::Error;
pub use scan::{ScanOptions, ScanSummary, scan_to_workbook};
