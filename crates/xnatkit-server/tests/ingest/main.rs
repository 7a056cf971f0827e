//! Integration tests of DICOM ingestion: the real server on 127.0.0.1:0
//! (SQLite, and PostgreSQL when `XNATKIT_TEST_DATABASE_URL` is set) fed with
//! generated DICOM as zip, tar.gz and single files; the prearchive; bad
//! input; concurrent imports; the dicomdump service; the C-STORE receiver
//! driven by dcmtk's `storescu`.

mod harness;

mod authz_matrix;
mod bad_input;
mod import;
mod limits;
mod prearchive;
mod receiver;
mod sharing;
mod sweep;
