//! Errors: [`ApiError`] is what a handler answers (short plain text with
//! XNAT's status codes, never HTML); [`ServerError`] is what stops the server
//! from starting or running.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::archive;

/// An error answer to one request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Visible, but the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No representation the client accepts (DICOMweb's 406).
    #[error("{0}")]
    NotAcceptable(String),
    /// A body of a media type the route does not take (DICOMweb's 415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// XNAT's answer to invalid labels.
    #[error("{0}")]
    InvalidLabel(String),
    #[error("{0}")]
    RangeNotSatisfiable(u64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("Not Found: {what}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidLabel(_) => StatusCode::EXPECTATION_FAILED,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(detail) = &self {
            tracing::error!("{detail}");
        }
        let body = match &self {
            Self::RangeNotSatisfiable(_) => "Requested range not satisfiable".to_owned(),
            // Internal details go to the log, not to the client.
            Self::Internal(_) => "Internal server error".to_owned(),
            other => other.to_string(),
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self {
            Self::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"XNAT\""),
                );
            }
            Self::RangeNotSatisfiable(size) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        // A value PostgreSQL cannot store as text (a NUL character that came
        // in a request body) is the client's input, not a server fault.
        // SQLSTATE 22021: character_not_in_repertoire; 22P05: untranslatable.
        if let sqlx::Error::Database(db) = &err
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return Self::BadRequest(
                "a value in the request holds a character that cannot be stored (such as NUL); remove it"
                    .to_owned(),
            );
        }
        Self::Internal(format!("database: {err}"))
    }
}

impl From<xnatkit_fileio::Error> for ApiError {
    fn from(err: xnatkit_fileio::Error) -> Self {
        Self::from_fileio(err, "the upload")
    }
}

impl ApiError {
    /// The answer to an `xnatkit-fileio` error about what the client calls
    /// `upload`; the archive's rules classify it ([`archive::Error::from_fileio`]).
    pub fn from_fileio(err: xnatkit_fileio::Error, upload: &str) -> Self {
        archive::Error::from_fileio(err, upload).into()
    }

    /// The answer to a failed file-system operation on what the client
    /// calls `name` ([`archive::Error::from_io_kind`]).
    pub fn from_io_kind(kind: std::io::ErrorKind, name: &str, detail: String) -> Self {
        archive::Error::from_io_kind(kind, name, detail).into()
    }
}

/// The edge: the archive's refusals as XNAT's status codes and texts.
impl From<archive::Error> for ApiError {
    fn from(err: archive::Error) -> Self {
        use archive::Error as E;
        match err {
            E::Invalid(m) => Self::BadRequest(m),
            E::NotLoggedIn(m) => Self::Unauthorized(m),
            E::Forbidden(m) => Self::Forbidden(m),
            E::NotFound(m) => Self::NotFound(m),
            E::Conflict(m) => Self::Conflict(m),
            E::TooLarge(m) => Self::PayloadTooLarge(m),
            E::InvalidLabel(m) => Self::InvalidLabel(m),
            E::Store(db) => Self::from(db),
            E::Files { name, source } => Self::Internal(format!("{name}: {source}")),
            E::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<xnatkit_model::LabelError> for ApiError {
    fn from(err: xnatkit_model::LabelError) -> Self {
        Self::InvalidLabel(err.to_string())
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error during start-up: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for DICOM on {addr}: {source}; pick another --dicom-listen address")]
    DicomListen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(
        "cannot listen for the OHIF viewer on {addr}: {source}; pick another --ohif-listen address"
    )]
    OhifListen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--ohif-dir {}: {reason}; install OHIF there with scripts/setup-ohif.sh", path.display())]
    OhifDir {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("TLS file {}: {reason}", path.display())]
    Tls {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot hash the admin password: {0}")]
    Hash(String),
    #[error("start-up recovery failed: {0}; fix the cause and start the server again")]
    Recovery(String),
    #[error(
        "data directory {} is in use by another xnatkit server (it holds {}/.xnatkit.lock); stop that one or give this one another --data",
        .0.display(), .0.display()
    )]
    DataDirInUse(std::path::PathBuf),
}
