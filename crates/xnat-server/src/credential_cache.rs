//! Remembers recently verified credentials. Clients such as pyxnat and curl
//! send HTTP Basic on every request; running argon2 (deliberately slow, ~19
//! MiB of memory per hash) for each of them would cap throughput and grow
//! the server's memory. A hit needs the same password (compared through a
//! keyed SHA-256, never stored in clear), the same stored hash (a password
//! change invalidates it) and an entry younger than [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
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
}

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

    pub fn forget(&self, who: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(who);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
