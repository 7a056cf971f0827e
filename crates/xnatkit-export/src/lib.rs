//! # xnatkit-export
//!
//! Bulk transfers out of an XNAT archive, built on `xnatkit-client`:
//!
//! - **export from a subject list** ([`subject_list`] reads the CSV or
//!   spreadsheet, [`select`] picks scans by an ordered list of types,
//!   [`layout`] places files under the output folder, [`export`] runs it all
//!   with a summary CSV);
//! - **XNAT-tree downloads** ([`tree`]): a session, subject or project in
//!   XNAT's own folder structure.
//!
//! The transfers themselves (resume, MD5 verification, the parallel pool, the
//! manifest) are the client's ([`xnatkit_client::transfer`]); this crate
//! decides *what* to fetch and *where* it goes. It reports problems as
//! [`xnatkit_client::ClientError`]: every one of them is about a server, an
//! object or a file the client already names, and bad input (an unreadable
//! subject list cell, an unknown layout placeholder) is its `Invalid` case.

pub mod export;
pub mod layout;
pub mod select;
pub mod subject_list;
pub mod tree;
