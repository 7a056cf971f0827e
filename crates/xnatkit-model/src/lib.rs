//! # xnatkit-model
//!
//! The vocabulary that the xnatkit client and server share, so the two cannot
//! drift apart. No I/O lives here: only types, parsing and (de)serialisation.
//!
//! - [`label`]: XNAT's label/ID character rules and DICOM-derived sanitising.
//! - [`clock`]: the one `now_ms`.
//! - [`accession`]: site-wide accession IDs (`XNAT_S00001`, `XNAT_E00001`).
//! - [`xsi`]: xsi types of projects, subjects, sessions, scans and resources.
//! - [`assessor`]: image assessor types and the fields each carries.
//! - [`path`]: the archive URI grammar (`/data/projects/P/subjects/S/...`),
//!   accepting every prefix and short form real clients use.
//! - [`uri`]: the one spelling (`/data`) of XNAT's three REST roots.
//! - [`resultset`]: the JSON `ResultSet` listing shape (all values strings) and
//!   its CSV twin used by pyxnat.
//! - [`items`]: the single-object `{"items": [...]}` shape xnatpy reads.
//! - [`access`]: project accessibility levels and project roles.
//! - [`container`]: the Container Service's command JSON and run documents
//!   (launch reports, containers with their history).

pub mod access;
pub mod accession;
pub mod assessor;
pub mod assessor_xml;
pub mod clock;
pub mod container;
pub mod items;
pub mod label;
pub mod path;
pub mod resultset;
pub mod uri;
pub mod xsi;

pub use access::{Accessibility, ProjectRole};
pub use accession::{AccessionKind, accession_id, site_prefix};
pub use assessor::AssessorType;
pub use clock::now_ms;
pub use items::{ItemChild, ItemMeta, ItemsDocument, ObjectItem};
pub use label::{Label, LabelError, sanitize_label};
pub use path::{
    ArchivePath, FileSelector, Level, ParentPath, PathError, ScanSelector, encode_segment,
};
pub use resultset::{ResultSet, ResultSetDocument, Row};
pub use xsi::{SessionModality, XsiType};
