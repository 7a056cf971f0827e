//! One async lock per session key (project + label, or prearchive study), so
//! concurrent imports of the same study queue up and end as one consistent
//! session instead of racing on folders and rows; and the use lock of a
//! resource, so that the clean-up of a failed upload removes a resource it
//! created only while no other upload uses it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::{
    Mutex as AsyncMutex, OwnedMutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
};

type LockMap = Mutex<HashMap<String, Weak<AsyncMutex<()>>>>;

// Process-wide rather than per server: keys include the project and label,
// and two servers in one process (tests) only ever wait a little longer.
static LOCKS: LazyLock<LockMap> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Waits for and holds the lock of `key` until the guard is dropped.
pub async fn lock_session(key: String) -> OwnedMutexGuard<()> {
    let lock = {
        // A poisoned map only means another thread panicked between two
        // plain map operations; the map itself is still consistent.
        let mut map = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, weak| weak.strong_count() > 0);
        match map.get(&key).and_then(Weak::upgrade) {
            Some(existing) => existing,
            None => {
                let fresh = Arc::new(AsyncMutex::new(()));
                map.insert(key, Arc::downgrade(&fresh));
                fresh
            }
        }
    };
    lock.lock_owned().await
}

type UseMap = Mutex<HashMap<i64, Weak<RwLock<()>>>>;

static RESOURCE_USE: LazyLock<UseMap> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn resource_use_lock(resource_id: i64) -> Arc<RwLock<()>> {
    let mut map = RESOURCE_USE.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, weak| weak.strong_count() > 0);
    match map.get(&resource_id).and_then(Weak::upgrade) {
        Some(existing) => existing,
        None => {
            let fresh = Arc::new(RwLock::new(()));
            map.insert(resource_id, Arc::downgrade(&fresh));
            fresh
        }
    }
}

/// An upload's hold on its resource.
pub type ResourceUse = OwnedRwLockReadGuard<()>;

/// Held by every upload into the resource for as long as it runs.
pub async fn use_resource(resource_id: i64) -> ResourceUse {
    resource_use_lock(resource_id).read_owned().await
}

/// The resource when no upload uses it at this moment, else `None`.
pub fn resource_unused(resource_id: i64) -> Option<OwnedRwLockWriteGuard<()>> {
    resource_use_lock(resource_id).try_write_owned().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_key_waits_other_key_does_not() {
        let held = lock_session("a".to_owned()).await;
        let other = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            lock_session("b".to_owned()),
        )
        .await;
        assert!(other.is_ok());
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            lock_session("a".to_owned()),
        )
        .await;
        assert!(same.is_err());
        drop(held);
        let _again = lock_session("a".to_owned()).await;
    }
}
