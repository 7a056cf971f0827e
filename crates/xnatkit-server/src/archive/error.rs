//! [`Error`]: why a rule of the archive refused or failed. It says what
//! went wrong in the archive's terms and keeps the underlying error as its
//! source; the HTTP edge ([`crate::error::ApiError`]) turns it into a status
//! code and XNAT's text, the pipeline engine and the web pages into their
//! own messages.

use xnatkit_model::LabelError;

/// A refusal or failure of the archive's rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    Invalid(String),
    /// The caller is anonymous where a user is needed.
    #[error("{0}")]
    NotLoggedIn(String),
    /// Visible, but the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// Clashes with what is stored (a name in use, a busy session).
    #[error("{0}")]
    Conflict(String),
    /// Larger than the server accepts.
    #[error("{0}")]
    TooLarge(String),
    /// A label, ID or resource name breaks XNAT's character rules.
    #[error("{0}")]
    InvalidLabel(String),
    /// The database failed (or refused a value, see the HTTP edge).
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
    /// Writing, reading or unpacking what the client calls `name` failed.
    #[error("{name}: {source}")]
    Files {
        name: String,
        // Boxed: the error is a large enum, and this one is rare.
        #[source]
        source: Box<xnatkit_fileio::Error>,
    },
    /// A fault of the server itself; the text names server paths and goes
    /// to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result of an archive rule.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("Not Found: {what}"))
    }

    /// A failed `xnatkit-fileio` operation on what the client calls `name`
    /// (its file or entry name): what the client caused becomes a refusal
    /// whose message never names the server's own paths; the rest keeps
    /// its source for the log.
    pub fn from_fileio(source: xnatkit_fileio::Error, name: &str) -> Self {
        use xnatkit_fileio::Error as E;
        match &source {
            E::UnsafePath { .. }
            | E::NotAnArchive { .. }
            | E::ArchiveBomb { .. }
            | E::Zip { .. }
            | E::Tar { .. }
            | E::Stream { .. }
            | E::Cancelled { .. } => Self::Invalid(source.client_message(name)),
            E::TooLarge { .. } => Self::TooLarge(source.client_message(name)),
            _ => match source.io_error_kind() {
                Some(kind) if client_caused(kind) => {
                    Self::from_io_kind(kind, name, source.to_string())
                }
                _ => Self::Files {
                    name: name.to_owned(),
                    source: Box::new(source),
                },
            },
        }
    }

    /// A failed file-system operation on what the client calls `name`: the
    /// failures a request can cause get their own kind, the rest is
    /// internal (`detail`, with server paths, goes to the log only).
    pub fn from_io_kind(kind: std::io::ErrorKind, name: &str, detail: String) -> Self {
        use std::io::ErrorKind as K;
        match kind {
            K::NotADirectory | K::IsADirectory | K::DirectoryNotEmpty | K::AlreadyExists => {
                Self::Conflict(format!(
                    "{name}: a file and a folder would have the same name; rename it or delete \
                     the other one first"
                ))
            }
            K::InvalidFilename => Self::Invalid(format!(
                "{name}: the name is too long for the file system; use a shorter name"
            )),
            _ => Self::Internal(detail),
        }
    }
}

/// File-system failures that a request's names cause (see
/// [`Error::from_io_kind`]).
fn client_caused(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::NotADirectory
            | K::IsADirectory
            | K::DirectoryNotEmpty
            | K::AlreadyExists
            | K::InvalidFilename
    )
}

impl From<LabelError> for Error {
    fn from(err: LabelError) -> Self {
        Self::InvalidLabel(err.to_string())
    }
}

impl From<xnatkit_fileio::Error> for Error {
    fn from(source: xnatkit_fileio::Error) -> Self {
        Self::from_fileio(source, "the upload")
    }
}
