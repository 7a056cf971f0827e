//! Integration tests: the real server on 127.0.0.1:0, driven over HTTP with
//! reqwest, once on SQLite (temp dir) and once on PostgreSQL (a fresh
//! database created on the server-admin URL in `XNATKIT_TEST_DATABASE_URL`).

mod harness;

mod connect;
mod files;
mod hierarchy;
mod security;
