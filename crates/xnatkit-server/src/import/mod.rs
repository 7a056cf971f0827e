//! DICOM ingestion: everything between "some bytes arrived" (an upload to
//! `/data/services/import`, or a study assembled by the C-STORE receiver)
//! and "a session exists in the archive or the prearchive".
//!
//! - [`options`]: the import parameters XNAT clients send;
//! - [`stage`]: spooled upload → staged instance files (archives extracted
//!   with limits, a single DICOM body taken as it is);
//! - [`pipeline`]: headers (in parallel, pixel data never read) → routing
//!   with the caller's project rights → one group per study and destination
//!   → archive or prearchive, per request and project setting;
//! - [`archive`]: writing one study into the archive tree and the database
//!   in one transaction, merging into an existing session when allowed;
//! - [`locks`]: serialising work on one session across concurrent imports;
//! - [`receiver`]: the `--dicom-listen` C-STORE receiver feeding the pipeline.
//!
//! The DICOM side (parsing, sorting, naming, routing rules) is `xnatkit-dicom`'s.

pub mod archive;
pub mod locks;
pub mod options;
pub mod pipeline;
pub mod receiver;
pub mod stage;

pub use options::{Destination, ImportHandler, ImportOptions, Overwrite};
pub use pipeline::{ProjectScope, import_instances, import_instances_in, import_staged};
pub use receiver::{
    AllowedPeer, DicomReceiverConfig, ReceiverHandle, run_receiver, start_receiver,
};
