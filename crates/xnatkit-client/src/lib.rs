//! # xnatkit-client
//!
//! The async XNAT REST client behind `xnatkit`. Bulk export from a subject
//! list is built on it in `xnatkit-export`.
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
//!   dump, custom fields, tokens ([`services`]), and XNAT's Container
//!   Service API: commands, launches, containers, logs, kill ([`containers`]);
//! - the **resumable, verified downloader** ([`download`], [`transfer`]):
//!   `.part` files, MD5 while streaming, HTTP Range resume, whole resources
//!   as one streamed zip (its entries verified in batches, up to 16 files
//!   hashed at once with `xnatkit_md5`), a bounded parallel pool, a
//!   manifest so reruns skip verified files.
//!
//! Listing and object shapes come from `xnatkit-model`, shared with the server.

pub mod archive;
pub mod auth;
mod client;
pub mod containers;
pub mod download;
mod error;
pub mod netrc;
pub mod retry;
#[cfg(feature = "sample-data")]
pub mod sample;
pub mod services;
pub mod tokens;
pub mod transfer;
mod zip_fetch;

pub use client::{ClientOptions, Credentials, Request, RequestBody, XnatClient, normalize_server};
pub use error::{ClientError, Result};
/// The HTTP method type used in [`Request`].
pub use reqwest::Method;
