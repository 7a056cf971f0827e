//! Remembers recently verified credentials. Clients such as pyxnat and curl
//! send HTTP Basic on every request; running argon2 (deliberately slow, ~19
//! MiB of memory per hash) for each of them would cap throughput and grow
//! the server's memory. A hit needs the same password (compared through a
//! keyed SHA-256, never stored in clear), the same stored hash (a password
//! change invalidates it) and an entry younger than [`CACHE_TTL`].
//!
//! Also coalesces concurrent checks of the same credentials
//! ([`CredentialCache::single_flight`]): a client opening several
//! connections at once with a correct password counts as one login attempt,
//! not several (which could trip the lockout), and a flood repeating one
//! guess costs one hash.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};

/// How long a verified password is trusted without re-hashing.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// Bound on remembered entries; the cache is cleared when it is reached.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct CredentialCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, Entry>>,
    /// Checks in progress, by (who, keyed digest of the secret); the slot
    /// holds the outcome once the first check finished.
    in_flight: Mutex<HashMap<(String, [u8; 32]), Flight>>,
}

type Flight = Arc<tokio::sync::Mutex<Option<bool>>>;

#[derive(Debug)]
struct Entry {
    digest: [u8; 32],
    stored_hash: String,
    verified_at: Instant,
}

impl Default for CredentialCache {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill(&mut key);
        Self {
            key,
            entries: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl CredentialCache {
    fn digest(&self, secret: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(secret.as_bytes());
        hasher.finalize().into()
    }

    /// True when `secret` was verified against `stored_hash` for `who` recently.
    pub fn hit(&self, who: &str, secret: &str, stored_hash: &str) -> bool {
        let digest = self.digest(secret);
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries.get(who).is_some_and(|e| {
            e.digest == digest
                && e.stored_hash == stored_hash
                && e.verified_at.elapsed() < CACHE_TTL
        })
    }

    pub fn remember(&self, who: &str, secret: &str, stored_hash: &str) {
        let digest = self.digest(secret);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                who.to_owned(),
                Entry {
                    digest,
                    stored_hash: stored_hash.to_owned(),
                    verified_at: Instant::now(),
                },
            );
        }
    }

    /// Runs `check` for (`who`, `secret`) unless the same check is already
    /// running; then waits for it and shares its outcome. An error is not
    /// shared: the next waiter runs its own check.
    pub async fn single_flight<E, Fut>(
        &self,
        who: &str,
        secret: &str,
        check: impl FnOnce() -> Fut,
    ) -> Result<bool, E>
    where
        Fut: Future<Output = Result<bool, E>>,
    {
        let slot_key = (who.to_owned(), self.digest(secret));
        let Some(flight) = self.in_flight.lock().ok().map(|mut flights| {
            flights
                .entry(slot_key.clone())
                .or_insert_with(Flight::default)
                .clone()
        }) else {
            return check().await;
        };
        let mut outcome = flight.lock().await;
        if let Some(shared) = *outcome {
            return Ok(shared);
        }
        let result = check().await;
        if let Ok(matched) = &result {
            *outcome = Some(*matched);
        }
        drop(outcome);
        if let Ok(mut flights) = self.in_flight.lock()
            && flights
                .get(&slot_key)
                .is_some_and(|current| Arc::ptr_eq(current, &flight))
        {
            flights.remove(&slot_key);
        }
        result
    }

    pub fn forget(&self, who: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(who);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_checks_run_once() {
        let cache = Arc::new(CredentialCache::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut checks = Vec::new();
        for _ in 0..8 {
            let (cache, runs, gate) = (cache.clone(), runs.clone(), gate.clone());
            checks.push(tokio::spawn(async move {
                cache
                    .single_flight("user:a", "pw", || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        // Held until every caller has queued behind this one.
                        let _open = gate.acquire().await;
                        Ok::<bool, ()>(true)
                    })
                    .await
            }));
        }
        while cache
            .in_flight
            .lock()
            .unwrap()
            .values()
            .next()
            .is_none_or(|flight| Arc::strong_count(flight) < 9)
        {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        for check in checks {
            assert_eq!(check.await.unwrap(), Ok(true));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(cache.in_flight.lock().unwrap().is_empty());
        // A different secret is a different check.
        let other = cache
            .single_flight("user:a", "other", || async { Ok::<bool, ()>(false) })
            .await;
        assert_eq!(other, Ok(false));
    }

    #[test]
    fn hits_only_the_same_secret_and_hash() {
        let cache = CredentialCache::default();
        cache.remember("alice", "pw", "$argon2$a");
        assert!(cache.hit("alice", "pw", "$argon2$a"));
        assert!(!cache.hit("alice", "pw2", "$argon2$a"));
        assert!(!cache.hit("alice", "pw", "$argon2$b"));
        assert!(!cache.hit("bob", "pw", "$argon2$a"));
        cache.forget("alice");
        assert!(!cache.hit("alice", "pw", "$argon2$a"));
    }
}
