//! Locks that hold across every server on one database: one per session key
//! (project + label, or prearchive study), so concurrent imports of the same
//! study queue up and end as one consistent session instead of racing on
//! folders and rows; and the use lock of a resource, so that the clean-up of
//! a failed upload removes a resource it created only while no other upload
//! uses it.
//!
//! Every lock is first taken in this process (a tokio mutex or rwlock per
//! key), so waiters inside one server queue without touching the database.
//! On PostgreSQL the holder then takes a session-level advisory lock on the
//! key (a stable 64-bit hash of it), which is what excludes the other
//! servers. SQLite runs one server per data folder by design (see
//! [`crate::state::DATA_LOCK_FILE`]), so there the in-process lock is all.
//!
//! The advisory locks live on one connection per server, taken out of the
//! pool for good: holding a pooled connection per held or awaited lock would
//! let waiters use up the pool that the holders need for their queries. That
//! connection only ever runs the non-blocking `pg_try_advisory_lock*`, so a
//! waiter polls with a short back-off; contention between servers on one key
//! is rare (two uploads of one study through two servers at once). A lock
//! is given back by its guard's `Drop`, which spawns the unlock; a try whose
//! caller went away before it answered unlocks at once, so no lock can stay
//! held without a guard. Should that connection break, PostgreSQL drops its
//! locks; the next lock opens a new connection.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::{
    Mutex as AsyncMutex, OwnedMutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
};

/// Longest pause between two tries of a lock another server holds.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The advisory-lock key of `name`: stable across processes and versions
/// (unlike `std`'s hasher), prefixed so it cannot meet another
/// application's keys by accident.
pub fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("xnatkit/{name}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// One entry per key while someone holds or awaits it.
struct KeyedLocks<K, L> {
    map: Mutex<HashMap<K, Weak<L>>>,
}

impl<K: Eq + Hash + Clone, L: Default> KeyedLocks<K, L> {
    fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Arc<L> {
        // A poisoned map only means another thread panicked between two
        // plain map operations; the map itself is still consistent.
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, weak| weak.strong_count() > 0);
        match map.get(key).and_then(Weak::upgrade) {
            Some(existing) => existing,
            None => {
                let fresh = Arc::new(L::default());
                map.insert(key.clone(), Arc::downgrade(&fresh));
                fresh
            }
        }
    }
}

/// The locks of one [`super::Store`].
pub struct Locks {
    sessions: KeyedLocks<String, AsyncMutex<()>>,
    resources: KeyedLocks<i64, RwLock<()>>,
    /// `None` on SQLite.
    advisory: Option<Arc<Advisory>>,
}

impl std::fmt::Debug for Locks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locks")
            .field("cross_server", &self.advisory.is_some())
            .finish()
    }
}

impl Locks {
    pub(super) fn in_process() -> Self {
        Self {
            sessions: KeyedLocks::new(),
            resources: KeyedLocks::new(),
            advisory: None,
        }
    }

    pub(super) fn postgres(pool: AnyPool) -> Self {
        Self {
            advisory: Some(Arc::new(Advisory {
                pool,
                conn: AsyncMutex::new(None),
            })),
            ..Self::in_process()
        }
    }

    /// Waits for and holds the lock of `key` until the guard is dropped.
    pub async fn lock(&self, key: &str) -> Result<SessionLock, sqlx::Error> {
        let local = self.sessions.get(&key.to_owned()).lock_owned().await;
        let remote = match &self.advisory {
            Some(advisory) => Some(advisory.wait(advisory_key(key), Mode::Exclusive).await?),
            None => None,
        };
        Ok(SessionLock {
            _remote: remote,
            _local: local,
        })
    }

    /// Held by every upload into the resource for as long as it runs.
    pub async fn use_resource(&self, resource_id: i64) -> Result<ResourceUse, sqlx::Error> {
        let local = self.resources.get(&resource_id).read_owned().await;
        let remote = match &self.advisory {
            Some(advisory) => Some(
                advisory
                    .wait(resource_key(resource_id), Mode::Shared)
                    .await?,
            ),
            None => None,
        };
        Ok(ResourceUse {
            _remote: remote,
            _local: local,
        })
    }

    /// The resource when no upload (on any server) uses it at this moment,
    /// else `None`.
    pub async fn resource_unused(
        &self,
        resource_id: i64,
    ) -> Result<Option<ResourceUnused>, sqlx::Error> {
        let Ok(local) = self.resources.get(&resource_id).try_write_owned() else {
            return Ok(None);
        };
        let remote = match &self.advisory {
            Some(advisory) => {
                match advisory
                    .try_once(resource_key(resource_id), Mode::Exclusive)
                    .await?
                {
                    Some(held) => Some(held),
                    None => return Ok(None),
                }
            }
            None => None,
        };
        Ok(Some(ResourceUnused {
            _remote: remote,
            _local: local,
        }))
    }

    /// Whether the server with instance ID `id` is gone; while it is, the
    /// returned hold keeps it from coming back under that ID (it never
    /// would: IDs are fresh per start) and keeps two recoveries apart.
    pub async fn instance_gone(&self, id: &str) -> Result<Option<AdvisoryHold>, sqlx::Error> {
        match &self.advisory {
            Some(advisory) => advisory.try_once(instance_key(id), Mode::Exclusive).await,
            None => Ok(None),
        }
    }

    /// Tries the cluster-wide lock `name` once (PostgreSQL only; `None`
    /// when another server holds it). For whole-archive work at start-up.
    pub async fn try_cluster(
        &self,
        name: &str,
        mode: Mode,
    ) -> Result<Option<AdvisoryHold>, sqlx::Error> {
        match &self.advisory {
            Some(advisory) => advisory.try_once(advisory_key(name), mode).await,
            None => Ok(None),
        }
    }

    /// Waits for the cluster-wide lock `name` (PostgreSQL only).
    pub async fn wait_cluster(
        &self,
        name: &str,
        mode: Mode,
    ) -> Result<Option<AdvisoryHold>, sqlx::Error> {
        match &self.advisory {
            Some(advisory) => advisory.wait(advisory_key(name), mode).await.map(Some),
            None => Ok(None),
        }
    }
}

/// The connection that says "this server is alive" to the others: it holds
/// the advisory lock of the server's instance ID (and any shared
/// cluster-wide lock the server takes) for the server's whole run, and runs
/// nothing else, so nothing can break it but the server going away.
pub struct InstanceHold {
    conn: AsyncMutex<Option<AnyConnection>>,
}

impl std::fmt::Debug for InstanceHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceHold")
    }
}

impl InstanceHold {
    /// Opens the connection and locks `instance/{id}` on it (PostgreSQL).
    pub async fn open(pool: &AnyPool, id: &str) -> Result<Self, sqlx::Error> {
        let hold = Self {
            conn: AsyncMutex::new(Some(pool.acquire().await?.detach())),
        };
        if !hold
            .run(Mode::Exclusive.try_sql(), instance_key(id))
            .await?
        {
            return Err(sqlx::Error::Protocol(format!(
                "instance ID {id} is already in use by another server"
            )));
        }
        Ok(hold)
    }

    /// Takes the shared lock `name` for the rest of the run.
    pub async fn share(&self, name: &str) -> Result<bool, sqlx::Error> {
        self.run(Mode::Shared.try_sql(), advisory_key(name)).await
    }

    async fn run(&self, sql: &'static str, key: i64) -> Result<bool, sqlx::Error> {
        let mut slot = self.conn.lock().await;
        let Some(conn) = slot.as_mut() else {
            return Err(sqlx::Error::PoolClosed);
        };
        sqlx::query(sql)
            .bind(key)
            .fetch_one(&mut *conn)
            .await?
            .try_get::<bool, _>("done")
    }

    /// Ends the connection, and with it every lock it holds. The locks are
    /// released explicitly first: PostgreSQL frees a closed connection's
    /// locks only once its backend process has exited, a moment after the
    /// client has gone, and the other instances should see a clean shutdown
    /// at once.
    pub async fn close(&self) {
        if let Some(mut conn) = self.conn.lock().await.take() {
            use sqlx::Connection;
            if let Err(err) = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut conn)
                .await
            {
                tracing::warn!("releasing the instance locks: {err}");
            }
            if let Err(err) = conn.close().await {
                tracing::warn!("closing the instance connection: {err}");
            }
        }
    }
}

/// The advisory-lock key a live server with instance ID `id` holds.
pub fn instance_key(id: &str) -> i64 {
    advisory_key(&format!("instance/{id}"))
}

fn resource_key(resource_id: i64) -> i64 {
    advisory_key(&format!("resource-use/{resource_id}"))
}

/// Exclusive, or shared with other shared holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exclusive,
    Shared,
}

impl Mode {
    fn try_sql(self) -> &'static str {
        match self {
            Self::Exclusive => "SELECT pg_try_advisory_lock($1) AS done",
            Self::Shared => "SELECT pg_try_advisory_lock_shared($1) AS done",
        }
    }

    fn unlock_sql(self) -> &'static str {
        match self {
            Self::Exclusive => "SELECT pg_advisory_unlock($1) AS done",
            Self::Shared => "SELECT pg_advisory_unlock_shared($1) AS done",
        }
    }
}

/// The server's own lock connection (PostgreSQL).
struct Advisory {
    pool: AnyPool,
    conn: AsyncMutex<Option<AnyConnection>>,
}

impl Advisory {
    /// Runs one lock statement on the lock connection, opening it first if
    /// needed and dropping it when it failed (its locks die with it).
    async fn run(&self, sql: &'static str, key: i64) -> Result<bool, sqlx::Error> {
        let mut slot = self.conn.lock().await;
        if slot.is_none() {
            *slot = Some(self.pool.acquire().await?.detach());
        }
        let Some(conn) = slot.as_mut() else {
            return Err(sqlx::Error::PoolClosed);
        };
        match sqlx::query(sql).bind(key).fetch_one(&mut *conn).await {
            Ok(row) => row.try_get::<bool, _>("done"),
            Err(err) => {
                tracing::warn!("advisory lock connection failed ({err}); opening a new one");
                *slot = None;
                Err(err)
            }
        }
    }

    /// One try, in its own task: if the caller goes away before the answer,
    /// the task gives a lock it got straight back.
    async fn try_once(
        self: &Arc<Self>,
        key: i64,
        mode: Mode,
    ) -> Result<Option<AdvisoryHold>, sqlx::Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let advisory = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = advisory.run(mode.try_sql(), key).await;
            let got = matches!(outcome, Ok(true));
            if tx.send(outcome).is_err() && got {
                let _ = advisory.run(mode.unlock_sql(), key).await;
            }
        });
        let got = rx.await.map_err(|_| sqlx::Error::PoolClosed)??;
        Ok(got.then(|| AdvisoryHold {
            advisory: Arc::clone(self),
            key,
            mode,
            released: false,
        }))
    }

    async fn wait(self: &Arc<Self>, key: i64, mode: Mode) -> Result<AdvisoryHold, sqlx::Error> {
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(held) = self.try_once(key, mode).await? {
                return Ok(held);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }
}

/// A held advisory lock; given back when dropped.
pub struct AdvisoryHold {
    advisory: Arc<Advisory>,
    key: i64,
    mode: Mode,
    /// Set by [`AdvisoryHold::release`], so `Drop` has nothing left to do.
    released: bool,
}

impl AdvisoryHold {
    /// Gives the lock back and returns once the database has it back
    /// (dropping the hold gives it back a moment later instead).
    pub async fn release(mut self) {
        self.released = true;
        if let Err(err) = self.advisory.run(self.mode.unlock_sql(), self.key).await {
            tracing::warn!("giving back advisory lock {}: {err}", self.key);
        }
    }
}

impl Drop for AdvisoryHold {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (advisory, key, mode) = (Arc::clone(&self.advisory), self.key, self.mode);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = advisory.run(mode.unlock_sql(), key).await {
                        tracing::warn!("giving back advisory lock {key}: {err}");
                    }
                });
            }
            // Only when the runtime is gone, i.e. the process is ending:
            // its connection, and with it the lock, goes too.
            Err(_) => tracing::debug!("advisory lock {key} given back with its connection"),
        }
    }
}

/// Holds a session key (see [`Locks::lock`]).
pub struct SessionLock {
    // Field order is drop order: the database lock goes first.
    _remote: Option<AdvisoryHold>,
    _local: OwnedMutexGuard<()>,
}

/// An upload's hold on its resource (see [`Locks::use_resource`]).
pub struct ResourceUse {
    _remote: Option<AdvisoryHold>,
    _local: OwnedRwLockReadGuard<()>,
}

/// Proof that no upload uses a resource (see [`Locks::resource_unused`]).
pub struct ResourceUnused {
    _remote: Option<AdvisoryHold>,
    _local: OwnedRwLockWriteGuard<()>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        // A changed hash would let an old and a new server both take a lock.
        assert_eq!(advisory_key("a"), advisory_key("a"));
        assert_ne!(advisory_key("a"), advisory_key("b"));
        let digest = Sha256::digest(b"xnatkit/a");
        assert_eq!(
            advisory_key("a").to_be_bytes(),
            <[u8; 8]>::try_from(&digest[..8]).unwrap()
        );
    }

    #[tokio::test]
    async fn same_key_waits_other_key_does_not() {
        let locks = Locks::in_process();
        let held = locks.lock("a").await.unwrap();
        let other =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("b")).await;
        assert!(other.is_ok());
        let same =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("a")).await;
        assert!(same.is_err());
        drop(held);
        let _again = locks.lock("a").await.unwrap();
    }

    #[tokio::test]
    async fn a_used_resource_is_not_unused() {
        let locks = Locks::in_process();
        let using = locks.use_resource(7).await.unwrap();
        assert!(locks.resource_unused(7).await.unwrap().is_none());
        drop(using);
        assert!(locks.resource_unused(7).await.unwrap().is_some());
    }
}
