//! Shared state of a running server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::ServerConfig;
use crate::credential_cache::CredentialCache;
use crate::error::ServerError;
use crate::passwords;
use crate::store::locks::InstanceHold;
use crate::store::{Backend, NewUser, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// The held lock on `DATA/.xnatkit.lock` (see [`DATA_LOCK_FILE`]);
    /// SQLite only.
    data_lock: Mutex<Option<std::fs::File>>,
    /// The connection that tells other servers this one is alive;
    /// PostgreSQL only.
    instance_hold: Option<InstanceHold>,
    /// Work that must finish before the server stops: the sweeps, and the
    /// archive and commit tasks that run on after their request went away.
    tasks: TaskTracker,
    /// Cancelled when the server starts to stop; long-running tasks watch
    /// it and end at their next safe point.
    shutdown: CancellationToken,
    /// The pipeline engine: its executor and the jobs this server runs.
    engine: crate::engine::Engine,
}

/// Folder below `DATA/staging` holding one staging folder per running
/// server on PostgreSQL, named by its instance ID. A server removes its own
/// when it stops gracefully, so one left behind by a server that is gone
/// marks a crash (see [`crate::recovery`]).
pub const INSTANCES_DIR: &str = "instances";

/// File in the data folder that a server on SQLite holds an exclusive lock
/// on. SQLite is the one-server setup: its start-up recovery assumes it is
/// alone with the data folder (it rolls back every in-flight move and
/// clears all of staging), so a second server on the same folder must not
/// start. Servers on PostgreSQL share the folder and coordinate through
/// the database instead (see [`crate::recovery`]).
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
        let url = config.database_url();
        let data_lock = if url.starts_with("sqlite:") {
            Some(lock_data_dir(&config.data_dir)?)
        } else {
            None
        };
        let store = Store::open(&url, config.db_pool_size).await?;
        let instance_hold = match store.backend() {
            Backend::Sqlite => None,
            Backend::Postgres => Some(InstanceHold::open(store.pool(), store.instance()).await?),
        };
        let archive_root = config.data_dir.join("archive");
        let staging_root = match store.backend() {
            Backend::Sqlite => config.data_dir.join("staging"),
            Backend::Postgres => config
                .data_dir
                .join("staging")
                .join(INSTANCES_DIR)
                .join(store.instance()),
        };
        for dir in [&archive_root, &staging_root] {
            std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
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
            let created = store
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
            if created.is_none() {
                // Another server starting next to this one created it first.
                report.generated_admin_password = None;
            }
        }
        let hasher = passwords::Hasher::new().map_err(ServerError::Hash)?;
        let engine = crate::engine::Engine::new(&config.pipelines);
        Ok((
            Self {
                inner: Arc::new(Inner {
                    store,
                    config,
                    archive_root,
                    staging_root,
                    credentials: CredentialCache::default(),
                    hasher,
                    data_lock: Mutex::new(data_lock),
                    instance_hold,
                    tasks: TaskTracker::new(),
                    shutdown: CancellationToken::new(),
                    engine,
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

    /// Gives up this server's instance lock (PostgreSQL) at the very end of
    /// [`crate::run`]: from then on other servers may recover what it left.
    pub async fn release_instance(&self) {
        if let Some(hold) = &self.inner.instance_hold {
            hold.close().await;
        }
    }

    /// The instance connection (PostgreSQL), for cluster-wide shared locks
    /// held for the whole run.
    pub fn instance_hold(&self) -> Option<&InstanceHold> {
        self.inner.instance_hold.as_ref()
    }

    /// Runs `task` to completion even when whoever awaits it goes away,
    /// and makes the server's stop wait for it.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.tasks.spawn(task)
    }

    /// The tasks started by [`AppState::spawn`].
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// Cancelled when the server starts to stop.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The pipeline engine.
    pub fn engine(&self) -> &crate::engine::Engine {
        &self.inner.engine
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
    /// same file system as the archive so the final move is a rename. On
    /// PostgreSQL each server has its own (see [`INSTANCES_DIR`]).
    pub fn staging_root(&self) -> &Path {
        &self.inner.staging_root
    }
}
