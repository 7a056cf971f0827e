//! One async lock per session key (project + label, or prearchive study), so
//! concurrent imports of the same study queue up and end as one consistent
//! session instead of racing on folders and rows.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

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
