//! Shared state of a running server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::ServerConfig;
use crate::credential_cache::CredentialCache;
use crate::error::ServerError;
use crate::passwords;
use crate::store::{NewUser, Store};

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: ServerConfig,
    archive_root: PathBuf,
    staging_root: PathBuf,
    credentials: CredentialCache,
    hasher: passwords::Hasher,
    /// The held lock on `DATA/.xnatkit.lock` (see [`DATA_LOCK_FILE`]).
    data_lock: Mutex<Option<std::fs::File>>,
}

/// File in the data folder that one running server holds an exclusive lock
/// on. Start-up recovery and the write protocol assume they are alone with
/// the data folder (recovery rolls back in-flight moves and clears staging),
/// so a second server on the same folder must not start.
pub const DATA_LOCK_FILE: &str = ".xnatkit.lock";

/// Takes the exclusive lock on the data folder, or says who holds it.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, ServerError> {
    let path = data_dir.join(DATA_LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServerError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(ServerError::DataDirInUse(data_dir.to_owned()))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(ServerError::DataDir { path, source }),
    }
}

/// What start-up did that the operator must learn about.
#[derive(Debug, Clone)]
pub struct StartupReport {
    /// Set when the admin account was created with a generated password.
    pub generated_admin_password: Option<String>,
}

impl AppState {
    /// Opens the database (running migrations), prepares the data folder and
    /// creates the site admin on first start.
    pub async fn open(mut config: ServerConfig) -> Result<(Self, StartupReport), ServerError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        // An absolute path keeps the SQLite URL and file paths independent of
        // the working directory.
        config.data_dir =
            std::fs::canonicalize(&data_dir).map_err(|source| ServerError::DataDir {
                path: data_dir,
                source,
            })?;
        let data_lock = lock_data_dir(&config.data_dir)?;
        let archive_root = config.data_dir.join("archive");
        let staging_root = config.data_dir.join("staging");
        for dir in [&archive_root, &staging_root] {
            std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        let store = Store::open(&config.database_url()).await?;
        let mut report = StartupReport {
            generated_admin_password: None,
        };
        if store.user("admin").await?.is_none() {
            let password = match &config.admin_password {
                Some(p) => p.clone(),
                None => {
                    let generated = passwords::random_secret(20);
                    report.generated_admin_password = Some(generated.clone());
                    generated
                }
            };
            let hash = passwords::hash(&password).map_err(ServerError::Hash)?;
            store
                .create_user(
                    &NewUser {
                        username: "admin".to_owned(),
                        email: "admin@localhost".to_owned(),
                        first_name: "Site".to_owned(),
                        last_name: "Admin".to_owned(),
                        enabled: true,
                        verified: true,
                        is_admin: true,
                    },
                    &hash,
                )
                .await?;
        }
        let hasher = passwords::Hasher::new().map_err(ServerError::Hash)?;
        Ok((
            Self {
                inner: Arc::new(Inner {
                    store,
                    config,
                    archive_root,
                    staging_root,
                    credentials: CredentialCache::default(),
                    hasher,
                    data_lock: Mutex::new(Some(data_lock)),
                }),
            },
            report,
        ))
    }

    /// Gives up the data folder at the end of [`crate::run`], so a new
    /// server may start on it at once, even while stray clones of the state
    /// are still being dropped.
    pub fn release_data_dir(&self) {
        if let Ok(mut lock) = self.inner.data_lock.lock() {
            lock.take();
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// Recently verified passwords and token secrets.
    pub fn credentials(&self) -> &CredentialCache {
        &self.inner.credentials
    }

    /// The bounded pool every request-driven password hash runs in.
    pub fn hasher(&self) -> &passwords::Hasher {
        &self.inner.hasher
    }

    /// `DATA/archive`: every resource folder lives below it.
    pub fn archive_root(&self) -> &Path {
        &self.inner.archive_root
    }

    /// Where uploads are spooled before they are moved into place; on the
    /// same file system as the archive so the final move is a rename.
    pub fn staging_root(&self) -> &Path {
        &self.inner.staging_root
    }
}
