//! The one error type of this crate. Every variant that concerns a file names it,
//! so the message can be shown to a user as it is.

use std::path::PathBuf;

/// Errors from reading, dumping and receiving DICOM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read at the operating-system level.
    #[error("{name}: cannot read: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// Neither a `DICM` marker nor a plausible raw data set at the start.
    #[error("{name}: not a DICOM file ({reason})")]
    NotDicom { name: String, reason: String },
    /// The data ended before the header (or the declared pixel data) did.
    #[error("{name}: truncated at byte {offset}")]
    Truncated { name: String, offset: u64 },
    /// The bytes look like DICOM but cannot be parsed.
    #[error("{name}: malformed DICOM: {detail}")]
    Malformed { name: String, detail: String },
    /// The file meta group names a transfer syntax this build cannot parse.
    #[error("{name}: unsupported transfer syntax {uid}")]
    UnsupportedTransferSyntax { name: String, uid: String },
    /// A data set without an attribute every stored instance must have.
    #[error("{name}: missing required attribute {attribute}; the instance cannot be archived")]
    MissingAttribute {
        name: String,
        attribute: &'static str,
    },
    /// A `field` asked of the DICOM dump that is neither a keyword nor `GGGGEEEE`.
    #[error(
        "unknown DICOM field {field:?}: use a keyword such as PatientName or a tag such as 00100010"
    )]
    UnknownField { field: String },
    /// The C-STORE receiver could not use its spool directory.
    #[error("DICOM receiver spool directory {}: {source}", path.display())]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The C-STORE receiver could not accept connections.
    #[error("DICOM receiver: cannot accept connections: {source}")]
    Accept {
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The name of the file this error is about, when it is about one.
    pub fn file_name(&self) -> Option<&str> {
        match self {
            Error::Io { name, .. }
            | Error::NotDicom { name, .. }
            | Error::Truncated { name, .. }
            | Error::Malformed { name, .. }
            | Error::UnsupportedTransferSyntax { name, .. }
            | Error::MissingAttribute { name, .. } => Some(name),
            Error::UnknownField { .. } | Error::Spool { .. } | Error::Accept { .. } => None,
        }
    }

    /// True for problems with the data itself (as opposed to I/O or receiver failures):
    /// what XNAT's `Ignore-Unparsable` lets an import skip.
    pub fn is_unparsable(&self) -> bool {
        matches!(
            self,
            Error::NotDicom { .. }
                | Error::Truncated { .. }
                | Error::Malformed { .. }
                | Error::UnsupportedTransferSyntax { .. }
                | Error::MissingAttribute { .. }
        )
    }
}
