//! The pipelines' errors: one line each, naming the scan, tool or file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool the command needs is not installed.
    #[error(
        "{tool} is not installed or not on PATH: {reason}; install it (Debian: apt install {package})"
    )]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
        reason: String,
    },
    /// A parametric map could not be made (bad input, say which).
    #[error("{0}")]
    Maps(Box<xnatkit_maps::Error>),
    /// The input folders do not hold what the command reads.
    #[error("{0}")]
    Input(String),
    /// The tool ran and failed; `message` is its own last words.
    #[error("{tool} failed: {message}")]
    ToolFailed { tool: &'static str, message: String },
    /// Image QA could not assess the image.
    #[error("QA of {}: {source}", image.display())]
    Qa {
        image: PathBuf,
        #[source]
        source: Box<xnatkit_qa::Error>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A talk with the server failed.
    // Boxed: the client's error is large and most results here are Ok.
    #[error(transparent)]
    Client(Box<xnatkit_client::ClientError>),
    /// The server listed a file name that would leave the work folder.
    #[error("the server listed an unsafe file name {0:?}: {1}")]
    UnsafeName(String, #[source] xnatkit_fileio::Error),
    /// A scan-type pattern that is not a valid glob.
    #[error("scan type pattern {pattern:?}: {reason}")]
    BadPattern { pattern: String, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Errors after which no other scan can succeed either (the login is
    /// gone, the disk is full, the run was cancelled, a tool is missing).
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::ToolMissing { .. } => true,
            Self::Client(e) => matches!(
                **e,
                xnatkit_client::ClientError::LoginFailed { .. }
                    | xnatkit_client::ClientError::DiskFull { .. }
                    | xnatkit_client::ClientError::Cancelled
                    | xnatkit_client::ClientError::Unreachable { .. }
            ),
            _ => false,
        }
    }
}

impl From<xnatkit_client::ClientError> for Error {
    fn from(error: xnatkit_client::ClientError) -> Self {
        Self::Client(Box::new(error))
    }
}
