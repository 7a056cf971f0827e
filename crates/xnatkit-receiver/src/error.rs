//! The receiver's errors: only the two that stop it as a whole. A failure
//! inside one association is answered on that association (a DIMSE status or
//! an abort) and logged; it never ends the receiver.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
