//! Server settings, filled by `xnatkit serve` or by tests.

use std::path::PathBuf;
use std::time::Duration;

use archive_io::ExtractLimits;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds the SQLite database (by default) and the file archive.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; `None` = SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Prefix of accession IDs (`XNAT` → `XNAT_S00001`).
    pub site_id: String,
    /// Idle time after which a JSESSIONID stops working.
    pub session_timeout: Duration,
    /// Password for the site admin `admin` when it is first created;
    /// `None` generates one.
    pub admin_password: Option<String>,
    /// Consecutive failed logins that lock an account.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked.
    pub lockout: Duration,
    /// Largest accepted upload body, in bytes.
    pub max_upload_bytes: u64,
    /// Lifetime of alias tokens.
    pub token_lifetime: Duration,
    /// Limits for `extract=true` uploads.
    pub extract_limits: ExtractLimits,
    /// The C-STORE receiver started next to HTTP (`--dicom-listen`), if any.
    pub dicom_receiver: Option<crate::import::DicomReceiverConfig>,
    /// Serve HTTPS with these PEM files (`--tls-cert`/`--tls-key`);
    /// `None` serves plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            site_id: "XNAT".to_owned(),
            session_timeout: Duration::from_secs(15 * 60),
            admin_password: None,
            max_failed_logins: 5,
            lockout: Duration::from_secs(15 * 60),
            max_upload_bytes: 64 << 30,
            token_lifetime: Duration::from_secs(2 * 24 * 3600),
            extract_limits: ExtractLimits::default(),
            dicom_receiver: None,
            tls: None,
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("xnatkit.sqlite").display()
            ),
        }
    }
}
