//! The server's integration tests, one test binary: the real server on
//! 127.0.0.1:0 (`xnatkit_test_support::server`), driven over HTTP with
//! reqwest, once on SQLite (temp dir) and once on PostgreSQL (a fresh
//! database created on the server-admin URL in `XNATKIT_TEST_DATABASE_URL`);
//! `ingest` holds the DICOM ingestion tests.
//!
//! The scenarios are plain async fns run by the `on_both_backends!` macro
//! rather than `#[test]` fns themselves, so clippy's test exemption for
//! `unwrap` does not reach them; a failed step is meant to panic here.
#![allow(clippy::unwrap_used)]

mod harness;

mod advisory_locks;
mod assessor_documents;
mod auth_lockout;
mod auth_sessions;
mod connect;
mod dicomweb;
mod durability;
mod edge;
mod files;
mod hierarchy;
mod http_hygiene;
mod ingest;
mod migrations;
mod pipelines;
mod recovery_guards;
mod security;
mod sharing;
mod traversal;
mod viewer;
mod web;
mod web_download;
mod web_edit;
mod web_pipelines;
mod web_prearchive;
