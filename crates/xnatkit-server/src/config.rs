//! Server settings, filled by `xnatkit serve` or by tests.

use std::path::PathBuf;
use std::time::Duration;

use xnatkit_fileio::ExtractLimits;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds the SQLite database (by default) and the file archive.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; `None` = SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Most database connections this server opens (`--db-pool-size`).
    /// Servers sharing one PostgreSQL each open this many (plus one that
    /// holds their instance lock), so their sum must stay below the
    /// database's `max_connections`.
    pub db_pool_size: u32,
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
    /// Limits for unpacking uploaded archives (imports and `extract=true`);
    /// see [`ServerConfig::extract_limits_for`] for the per-archive total.
    pub extract_limits: ExtractLimits,
    /// An archive may unpack to at most this many times its own size in
    /// total (beyond [`ServerConfig::extract_ratio_free_bytes`]); real DICOM
    /// zips stay far below 10.
    pub extract_total_ratio: u64,
    /// Bytes any archive may unpack to whatever its ratio (a small zip of
    /// blank images is legitimate).
    pub extract_ratio_free_bytes: u64,
    /// A connection that has not sent a complete request head within this
    /// time is closed (HTTP/1; also bounds idle keep-alive connections).
    pub header_read_timeout: Duration,
    /// A request whose body sends nothing for this long is answered 408 and
    /// its connection closed; a large upload that keeps sending is never
    /// cut off, however long it takes.
    pub body_idle_timeout: Duration,
    /// A request that is not a transfer (no upload body) and has no answer
    /// within this time is answered 503; downloads only need their head
    /// within it, uploads are bounded by `body_idle_timeout` instead.
    pub request_timeout: Duration,
    /// The C-STORE receiver started next to HTTP (`--dicom-listen`), if any.
    pub dicom_receiver: Option<crate::import::DicomReceiverConfig>,
    /// Serve HTTPS with these PEM files (`--tls-cert`/`--tls-key`);
    /// `None` serves plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The pipeline engine's executor (`--executor`, `--pipeline-workers`).
    pub pipelines: crate::engine::PipelineConfig,
    /// The OHIF viewer served on a second listener (`--ohif-dir`), if any.
    pub ohif: Option<crate::viewer::OhifConfig>,
    /// The address people open the site at (`--site-url`), for links in
    /// emails; `None` = the listen address.
    pub site_url: Option<String>,
    /// The mail server of the archive email (`--smtp`); `None` sends none.
    pub smtp: Option<crate::archive_email::SmtpConfig>,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            db_pool_size: crate::store::DEFAULT_POOL_SIZE,
            site_id: "XNAT".to_owned(),
            session_timeout: Duration::from_secs(15 * 60),
            admin_password: None,
            max_failed_logins: 5,
            lockout: Duration::from_secs(15 * 60),
            max_upload_bytes: 64 << 30,
            token_lifetime: Duration::from_secs(2 * 24 * 3600),
            extract_limits: ExtractLimits::default(),
            extract_total_ratio: 100,
            extract_ratio_free_bytes: 256 << 20,
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            dicom_receiver: None,
            tls: None,
            pipelines: crate::engine::PipelineConfig::default(),
            ohif: None,
            site_url: None,
            smtp: None,
        }
    }

    /// The limits for unpacking one archive of `archive_len` bytes: the
    /// configured limits, with the total capped at
    /// `max(archive_len × extract_total_ratio, extract_ratio_free_bytes)`.
    /// Since an upload is at most `max_upload_bytes`, no upload unpacks to
    /// more than `max_upload_bytes × extract_total_ratio`.
    pub fn extract_limits_for(&self, archive_len: u64) -> ExtractLimits {
        let by_ratio = archive_len
            .saturating_mul(self.extract_total_ratio)
            .max(self.extract_ratio_free_bytes);
        let mut limits = self.extract_limits.clone();
        limits.max_total_bytes = limits.max_total_bytes.min(by_ratio);
        limits
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_extraction_follows_the_archive_size() {
        let config = ServerConfig::new("/tmp/unused");
        // 4.8 MB may not become 2 GB.
        assert!(config.extract_limits_for(4_800_000).max_total_bytes < 2_000_000_000);
        // Small archives keep the ratio-free allowance.
        assert_eq!(config.extract_limits_for(1000).max_total_bytes, 256 << 20);
        // Never above the configured ceiling.
        assert_eq!(
            config.extract_limits_for(u64::MAX).max_total_bytes,
            config.extract_limits.max_total_bytes
        );
    }
}
