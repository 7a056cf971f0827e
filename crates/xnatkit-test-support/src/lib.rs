//! What the workspace's integration tests share, so each rule exists once:
//!
//! - [`server`]: the real server in-process on `127.0.0.1:0`, on SQLite or
//!   on a fresh PostgreSQL database (`XNATKIT_TEST_DATABASE_URL`), and the
//!   [`on_both_backends!`] macro that runs a scenario on each;
//! - [`serve`]: `xnatkit serve --listen 127.0.0.1:0` as a child process,
//!   which learns its port from the server's `listening on` line (never a
//!   port picked in advance, which races with other tests);
//! - [`ci`]: the one rule for a missing tool, database or data set — skip
//!   loudly on a developer's machine, fail under CI (`CI` set);
//! - [`fixtures`]: the real data in the shared folder beside the work tree;
//! - [`jcamp`]: ParaVision's JCAMP-DX parameter files, written;
//! - [`paravision`]: a synthetic ParaVision RARE-VTR scan folder with pixel
//!   values the test chooses (T1 saturation-recovery maps);
//! - [`fault_proxy`]: an HTTP proxy that injects 5xx, cut bodies and
//!   replaced bodies between a client and a real server;
//! - [`files`]: MD5, zip/tar.gz builders and directory walks;
//! - [`slurm`]: the lock that makes tests on the one-node Slurm take turns;
//! - [`tools`]: DCMTK's binaries, pydicom's test files, pynetdicom;
//! - [`dicom`]: xnatkit-dicom's synthetic DICOM generator (re-exported; it is
//!   also product code, since `xnatkit demo` builds its sample CT with it).
//!
//! Only ever a dev-dependency (`publish = false`), modelled on uv's
//! `uv-test`. Test support panics on a failed set-up step: that is the test
//! failing, with the step's error as its message.

#![allow(clippy::unwrap_used)]

pub mod ci;
pub mod fault_proxy;
pub mod files;
pub mod fixtures;
pub mod jcamp;
pub mod paravision;
pub mod serve;
pub mod server;
pub mod slurm;
pub mod tools;

pub use server::{ADMIN_PASSWORD, Auth, Backend, TestServer};
pub use xnatkit_dicom::testdata as dicom;
