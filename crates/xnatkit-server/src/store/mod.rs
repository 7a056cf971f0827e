//! Storage: one [`Store`] over an sqlx `AnyPool`, so SQLite (embedded
//! default) and PostgreSQL run the same hand-written SQL (`$n` placeholders
//! work on both). Each submodule owns the typed functions of one area; every
//! change that touches more than one row runs in one transaction.

mod archive_email;
mod assessors;
mod auth;
mod dicomweb;
mod download;

mod browse;
mod hierarchy;
mod import;
mod jobs;
mod journal;
pub mod locks;
mod prearchive;
mod projects;
mod resources;
mod sharing;
mod upload_settle;
mod user_admin;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use assessors::{Assessor, NewAssessor};
pub use auth::{AliasToken, HttpSession, NewUser, User};
pub use auth::{AttemptClaim, AttemptCounter};
pub use dicomweb::{InstanceRow, NewInstance, SeriesRow, StudyFilter, StudyRow, UnindexedFile};

pub use browse::{SessionPage, SessionPageQuery, SessionRow, SessionSort};
pub use download::{Counted, DownloadSession, SessionFilter};
pub use hierarchy::{
    Experiment, ExperimentAttrs, ExperimentStatus, NewScanTree, NewSessionTree, Scan, ScanAttrs,
    ScanDicomFields, SessionDicomFields, Subject,
};
pub use jobs::{
    CommandRow, Entity, HistoryRow, JobRow, NewJob, RunPage, RunPageQuery, RunRow, SubscriptionRow,
    WorkflowRow, WrapperRow,
};
pub use journal::{COMMITTED, FileMove, JournalCommit, JournalEntry, PENDING};
pub use prearchive::{
    PrearchiveScan, PrearchiveSession, PrearchiveSessionMeta, PrearchiveStatus, UNASSIGNED,
    is_unique_violation,
};
pub use projects::{CreateProjectOutcome, Project, ProjectRoleRow};
pub use resources::{FileRow, NewFile, Owner, Resource};
pub use sharing::{LabelInUse, Share, ShareKind, ShareOutcome};
pub use upload_settle::SettledSession;

use crate::error::ServerError;

/// Which SQL dialect the pool talks, for the few places where DDL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database behind the server.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    locks: std::sync::Arc<locks::Locks>,
    /// This server's instance ID: fresh per start, recorded on the journal
    /// entries and prearchive claims it makes, so that another server's
    /// recovery touches them only once this one is gone.
    instance: std::sync::Arc<str>,
}

/// Database connections a server keeps at most when no size is set.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// Milliseconds since the Unix epoch, the timestamp unit of every table.
pub use xnatkit_model::now_ms;

impl Store {
    /// Opens `url` (`sqlite://…` or `postgres://…`) with at most
    /// `pool_size` connections (at least 2: PostgreSQL keeps one for the
    /// cross-server locks, see [`locks`]) and applies the embedded
    /// migrations of that backend.
    pub async fn open(url: &str, pool_size: u32) -> Result<Self, ServerError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut options = AnyPoolOptions::new().max_connections(pool_size.max(2));
        if backend == Backend::Sqlite {
            // An embedded SQLite connection cannot go stale, and the default
            // test-before-acquire ping costs one extra round trip to its worker
            // thread per query: measured as a large share of the cost of a
            // single-file GET (about ten queries on the request path).
            options = options.test_before_acquire(false);
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run next to the one writer; the busy
                    // timeout makes concurrent writers wait instead of failing.
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(url)
            .await
            .map_err(|source| ServerError::Database {
                url: redact(url),
                source,
            })?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        let locks = match backend {
            Backend::Sqlite => locks::Locks::in_process(),
            Backend::Postgres => locks::Locks::postgres(pool.clone()),
        };
        Ok(Self {
            pool,
            backend,
            locks: std::sync::Arc::new(locks),
            instance: uuid::Uuid::new_v4().to_string().into(),
        })
    }

    /// The locks shared by every server on this database.
    pub fn locks(&self) -> &locks::Locks {
        &self.locks
    }

    /// This server's instance ID (see the field).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock up front: a transaction that reads first and writes later cannot
    /// wait for a busy database (SQLite refuses the upgrade at once), while
    /// one that starts with a write waits up to the busy timeout.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE counters SET value = value WHERE name = 'subject'")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes the next value of an accession counter inside `tx`. A counter row
/// (not `max()+1`) guarantees that IDs of deleted objects are never reused.
async fn next_counter(
    conn: &mut sqlx::AnyConnection,
    name: &'static str,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    row.try_get::<i64, _>("value")
}

fn text(row: &AnyRow, col: &str) -> Result<String, sqlx::Error> {
    row.try_get::<String, _>(col)
}

fn int(row: &AnyRow, col: &str) -> Result<i64, sqlx::Error> {
    row.try_get::<i64, _>(col)
}

/// Hides the password of a database URL for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
