//! DICOM ingestion: generated DICOM sent as zip, tar.gz and single files;
//! the prearchive; bad input; concurrent imports; the dicomdump service; the
//! C-STORE receiver driven by dcmtk's `storescu`.

mod authz_matrix;
mod bad_input;
mod import;
mod limits;
mod prearchive;
mod receiver;
mod sharing;
mod sweep;
