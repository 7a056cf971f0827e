//! The client's error type. Every variant renders as one line that names the
//! thing involved (server, object, file) and, where the user can act, what to
//! do next; the CLI prints it as it is.

use std::path::PathBuf;

/// Errors of the XNAT client library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server URL given by the user cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidServerUrl { url: String, reason: String },

    /// Nothing answered at the server's address, even after retries.
    #[error(
        "cannot reach the XNAT server at {server}: {reason}; check the URL and that the server is running"
    )]
    Unreachable { server: String, reason: String },

    /// The server's TLS certificate did not verify against the trusted CAs
    /// (the system's plus `--ca-bundle`).
    #[error(
        "the TLS certificate of {server} is not trusted ({reason}); \
         if the server uses a private CA, pass that CA's certificate with --ca-bundle FILE"
    )]
    UntrustedCertificate { server: String, reason: String },

    /// The server refused the credentials.
    #[error("login to {server} as {user:?} failed: wrong username, password or token")]
    LoginFailed { server: String, user: String },

    /// No credentials could be found for the server.
    #[error(
        "no credentials for {server}: run `xnatkit login --server {server} -u USER`, \
         set XNAT_USER and XNAT_PASS, or add the server to ~/.netrc"
    )]
    NoCredentials { server: String },

    /// The object does not exist (or is invisible to this user, which XNAT
    /// reports the same way).
    #[error("{what} not found on {server} (or not visible to this user)")]
    NotFound { what: String, server: String },

    /// The user may not do this.
    #[error("permission denied for {what} on {server}: {message}")]
    Forbidden {
        what: String,
        server: String,
        message: String,
    },

    /// Any other unexpected HTTP status.
    #[error("{method} {url} answered {status}: {message}")]
    Http {
        method: String,
        url: String,
        status: u16,
        message: String,
    },

    /// The connection broke while talking to the server.
    #[error("{method} {url} failed: {reason}")]
    Transport {
        method: String,
        url: String,
        reason: String,
    },

    /// The server answered with something that is not the expected shape.
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },

    /// A local file-system operation failed. The I/O error is part of the
    /// message rather than its `source`, so `{:#}` chains (the CLI's) do not
    /// print it twice.
    #[error("{}: {reason}", path.display())]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },

    /// The disk filled up; partial downloads are kept for a later resume.
    #[error(
        "no space left on the device while writing {}; free some space and run the same command again to resume",
        path.display()
    )]
    DiskFull { path: PathBuf },

    /// A downloaded file does not match the server's checksum, even after a
    /// fresh download.
    #[error("{}: MD5 {actual} does not match the server's digest {expected} (downloaded twice)", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A name that came from the server cannot be used as a local path.
    #[error("{0}")]
    UnsafeName(#[from] xnatkit_fileio::Error),

    /// Stored client configuration (tokens file) is unreadable.
    #[error("{}: {reason}; delete it and run `xnatkit login` again", path.display())]
    BadConfig { path: PathBuf, reason: String },

    /// A caller-supplied argument is not usable.
    #[error("{0}")]
    Invalid(String),

    /// The run was interrupted.
    #[error("interrupted")]
    Cancelled,
}

impl ClientError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            Self::DiskFull { path }
        } else {
            Self::Io {
                path,
                reason: source,
            }
        }
    }

    /// True when retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Transport { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// ENOSPC / EDQUOT: disk or quota full.
pub(crate) fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(err.raw_os_error(), Some(28 | 122))
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;
