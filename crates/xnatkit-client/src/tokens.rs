//! Stored logins: the alias token `xnatkit login` obtains, kept per server in
//! a JSON file readable only by its owner. The password itself is never
//! stored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};

/// Env override for the configuration directory (keeps tests hermetic).
pub const CONFIG_DIR_ENV: &str = "XNATKIT_CONFIG_DIR";
const TOKENS_FILE: &str = "tokens.json";

/// One stored login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredToken {
    /// The user the token was issued to (for messages only).
    pub user: String,
    pub alias: String,
    pub secret: String,
    /// Milliseconds since the epoch, as XNAT reports it; `None` if unknown.
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
}

impl StoredToken {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|t| t <= now_ms)
    }
}

/// The token file: server URL (normalised, no trailing slash) → token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenStore {
    #[serde(default)]
    pub servers: BTreeMap<String, StoredToken>,
}

/// The directory holding xnatkit's configuration.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("org", "xnatkit", "xnatkit")
        .map(|d| d.config_dir().to_path_buf())
        .ok_or_else(|| {
            ClientError::Invalid(format!(
                "cannot determine a configuration directory (no home directory); set {CONFIG_DIR_ENV}"
            ))
        })
}

/// The token file's path.
pub fn tokens_path() -> Result<PathBuf> {
    Ok(config_dir()?.join(TOKENS_FILE))
}

impl TokenStore {
    /// Loads the store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(ClientError::io(path, e)),
        };
        serde_json::from_str(&text).map_err(|e| ClientError::BadConfig {
            path: path.to_owned(),
            reason: format!("not a valid token file ({e})"),
        })
    }

    /// Writes the store atomically (temp file, fsync, rename) with mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io(dir, e))?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| ClientError::BadConfig {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(|e| ClientError::io(&tmp, e))?;
        #[cfg(unix)]
        {
            // `mode` only applies when the file is created; a leftover temp
            // file from a crash keeps its old bits otherwise.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| ClientError::io(&tmp, e))?;
        }
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| ClientError::io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| ClientError::io(path, e))
    }

    pub fn get(&self, server: &str) -> Option<&StoredToken> {
        self.servers.get(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(TOKENS_FILE);
        let mut store = TokenStore::default();
        store.servers.insert(
            "http://127.0.0.1:8080".into(),
            StoredToken {
                user: "u".into(),
                alias: "a".into(),
                secret: "s".into(),
                expires_at_ms: Some(5),
            },
        );
        store.save(&path).unwrap();
        assert_eq!(TokenStore::load(&path).unwrap(), store);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.servers["http://127.0.0.1:8080"].is_expired(10));
    }
}
