//! The DICOM side of ingestion into an XNAT-compatible archive, independent of
//! HTTP and of the database:
//!
//! - [`read_header`] / [`read_header_from`] / [`read_headers_parallel`]: the
//!   attributes the archive needs, read from the header only (never the pixel data);
//! - [`route`] / [`route_with`]: project, subject and session from request hints
//!   and DICOM fields, in XNAT's order;
//! - [`sort_instances`] / [`scan_instances_into`]: sessions per study, scans per
//!   series with XNAT's scan IDs, session and scan types, stored file names;
//! - [`dicom_dump`]: the rows of XNAT's `dicomdump` service;
//! - [`scp`]: a C-STORE / C-ECHO receiver that spools instances to disk unchanged
//!   and hands them to the server, plus a [`scp::StudyAssembler`] that batches them
//!   into studies after a quiet period.
//!
//! With the `test-support` feature, [`testdata`] writes synthetic instances for tests.

mod dump;
mod error;
mod header;
mod kind;
mod naming;
mod route;
pub mod scp;
mod sort;
mod source;
#[cfg(any(test, feature = "test-support"))]
pub mod testdata;

pub use dump::{DumpRow, dicom_dump, parse_field};
pub use error::Error;
pub use header::{DicomHeader, read_header, read_header_from, read_headers_parallel};
pub use kind::SessionKind;
pub use naming::stored_file_name;
pub use route::{FALLBACK_SESSION_LABEL, Route, RoutingHints, route, route_with};
pub use sort::{
    ExistingSession, InstanceRef, SortedFile, SortedScan, SortedStudy, compare_scan_ids,
    scan_instances_into, sort_instances, sort_instances_with,
};
