//! The one error type of this crate. Every variant names the file, archive
//! or entry involved, so a caller can print it as a single line.

use std::io;
use std::path::PathBuf;

/// Errors of the xnatkit-fileio crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client-supplied name (upload file name, archive entry) would escape
    /// its directory or is not a usable relative path.
    #[error(
        "unsafe file name {name:?}: {reason}; use a relative path with '/' \
         separators and no '..'"
    )]
    UnsafePath {
        /// The name as supplied.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A size or count limit was exceeded.
    #[error(
        "{what} {} exceeds the limit of {limit}; raise the limit or send less",
        path.display()
    )]
    TooLarge {
        /// What was being measured (`file`, `number of entries in archive`).
        what: String,
        /// The file or archive it was measured on.
        path: PathBuf,
        /// The limit that was exceeded (bytes, or entries for entry counts).
        limit: u64,
    },

    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The zip reader refused the archive or one of its entries.
    #[error("zip archive {archive}{}: {source}", entry_suffix(entry.as_deref()))]
    Zip {
        /// The archive file.
        archive: PathBuf,
        /// The entry being read, when the error is about one entry.
        entry: Option<String>,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },

    /// The tar (or gzip) reader refused the archive or one of its entries.
    #[error("tar archive {archive}{}: {source}", entry_suffix(entry.as_deref()))]
    Tar {
        /// The archive file.
        archive: PathBuf,
        /// The entry being read, when the error is about one entry.
        entry: Option<String>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file is neither a zip, a tar nor a gzip-compressed tar.
    #[error(
        "{path} is not a zip, tar or tar.gz archive; upload one of those \
         formats"
    )]
    NotAnArchive {
        /// The file that was inspected.
        path: PathBuf,
    },

    /// An entry decompresses to far more than its compressed size: refused
    /// as a decompression bomb.
    #[error(
        "archive {archive}, entry {entry:?}: expands more than {max_ratio} \
         times its compressed size ({compressed} bytes); refused as a \
         decompression bomb"
    )]
    ArchiveBomb {
        /// The archive file.
        archive: PathBuf,
        /// The offending entry.
        entry: String,
        /// Compressed size of the entry (or of the whole archive for tar.gz).
        compressed: u64,
        /// The ratio limit in force.
        max_ratio: u64,
    },

    /// The byte stream feeding a file failed.
    #[error("receiving data for {path} failed: {source}")]
    Stream {
        /// The destination file.
        path: PathBuf,
        /// The stream's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The write was abandoned before completion (the caller went away);
    /// nothing was stored.
    #[error("writing {path} was cancelled; nothing was stored")]
    Cancelled {
        /// The destination file.
        path: PathBuf,
    },
}

fn entry_suffix(entry: Option<&str>) -> String {
    entry.map(|e| format!(", entry {e:?}")).unwrap_or_default()
}

impl Error {
    /// The error as one line for a remote client, who knows the file it
    /// sent as `upload` and nothing of this machine: the local paths of
    /// this error (spool files, staging folders) are replaced by `upload`;
    /// entry names, which the client chose, are kept.
    pub fn client_message(&self, upload: &str) -> String {
        match self {
            Self::UnsafePath { .. } => self.to_string(),
            Self::TooLarge { what, limit, .. } => {
                format!("{what} {upload} exceeds the limit of {limit}; send less")
            }
            Self::Io { source, .. } => format!("storing {upload} failed: {source}"),
            Self::Zip { entry, source, .. } => format!(
                "zip archive {upload}{}: {source}",
                entry_suffix(entry.as_deref())
            ),
            Self::Tar { entry, source, .. } => format!(
                "tar archive {upload}{}: {source}",
                entry_suffix(entry.as_deref())
            ),
            Self::NotAnArchive { .. } => {
                format!("{upload} is not a zip, tar or tar.gz archive; upload one of those formats")
            }
            Self::ArchiveBomb {
                entry,
                compressed,
                max_ratio,
                ..
            } => format!(
                "archive {upload}, entry {entry:?}: expands more than {max_ratio} times its \
                 compressed size ({compressed} bytes); refused as a decompression bomb"
            ),
            Self::Stream { source, .. } => format!(
                "the request body for {upload} broke off or is malformed ({source}); nothing was \
                 stored, send it again"
            ),
            Self::Cancelled { .. } => {
                format!("receiving {upload} was cancelled; nothing was stored")
            }
        }
    }

    /// The `io::ErrorKind` of an underlying I/O error, if that is what this is.
    pub fn io_error_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// The `io::ErrorKind` that best describes this error, for callers that
    /// must squeeze it through `std::io::Write`.
    pub(crate) fn io_kind(&self) -> io::ErrorKind {
        match self {
            Self::Io { source, .. } | Self::Tar { source, .. } => source.kind(),
            Self::UnsafePath { .. } => io::ErrorKind::InvalidInput,
            Self::TooLarge { .. } => io::ErrorKind::FileTooLarge,
            Self::Cancelled { .. } => io::ErrorKind::Interrupted,
            _ => io::ErrorKind::InvalidData,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        io::Error::new(err.io_kind(), err)
    }
}
