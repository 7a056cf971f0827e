//! # xnatkit-client
//!
//! An async XNAT client and the bulk-export engine behind `xnatkit`.
//!
//! It owns:
//! - the **connection** ([`XnatClient`]): login with a password or alias
//!   token, session cookie reuse, transparent re-login when the session
//!   expires mid-run, retries with exponential backoff and jitter (only for
//!   requests that are safe to repeat), custom CA bundles;
//! - **credential lookup** ([`auth`]): `XNAT_HOST`/`XNAT_USER`/`XNAT_PASS`,
//!   `.netrc` by `host:port` ([`netrc`]), and tokens stored by
//!   `xnatkit login` ([`tokens`]);
//! - **typed access** to projects, subjects, sessions, scans, resources and
//!   files ([`archive`]) and to the services: import, prearchive, DICOM
//!   dump, custom fields, tokens ([`services`]);
//! - the **resumable, verified downloader** ([`download`], [`transfer`]):
//!   `.part` files, MD5 while streaming, HTTP Range resume, a manifest so
//!   reruns skip verified files;
//! - **bulk export** from a subject list ([`subject_list`], [`select`],
//!   [`layout`], [`export`]) and XNAT-tree downloads ([`tree`]).
//!
//! Listing and object shapes come from `xnatkit-model`, shared with the server.

pub mod archive;
pub mod auth;
mod client;
pub mod download;
mod error;
pub mod export;
pub mod layout;
pub mod netrc;
pub mod retry;
#[cfg(feature = "sample-data")]
pub mod sample;
pub mod select;
pub mod services;
pub mod subject_list;
pub mod tokens;
pub mod transfer;
pub mod tree;
mod zip_fetch;

pub use client::{ClientOptions, Credentials, Request, RequestBody, XnatClient, normalize_server};
pub use error::{ClientError, Result};
/// The HTTP method type used in [`Request`].
pub use reqwest::Method;
