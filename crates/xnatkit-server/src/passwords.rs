//! Password and secret hashing (argon2id), the bounded hashing pool every
//! request-driven hash goes through, and random secrets.
//!
//! argon2 needs ~19 MiB per hash by design. Run unbounded, a flood of bad
//! logins multiplies that by the number of requests, and glibc keeps the
//! freed blocks in per-thread arenas long after the flood. [`Hasher`] allows
//! only a few hashes at a time, lets a bounded number of callers wait, turns
//! everyone beyond that away with [`HashingBusy`], and reuses a fixed set of
//! argon2 memory buffers so memory stays flat whatever the traffic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::sync::Semaphore;

/// Seconds a caller turned away by [`Hasher`] is told to wait.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Largest argon2 memory (in 1 KiB blocks) a stored hash may ask for: a
/// corrupt or hostile row must not make one verification allocate gigabytes.
const MAX_BLOCKS: usize = 256 * 1024;

/// Most hashes running at once, whatever the core count.
const MAX_CONCURRENT_HASHES: usize = 4;

/// Callers allowed to queue per running hash before new ones are refused.
const WAITERS_PER_PERMIT: usize = 16;

/// Too many password checks are already running or queued.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("server busy checking credentials; retry in {BUSY_RETRY_AFTER_SECS} s")]
pub struct HashingBusy;

/// Hashes a password into a PHC string with the default argon2id
/// parameters. Slow by design: request paths use [`Hasher::hash`].
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// True when `password` matches the stored PHC hash.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut memory = Vec::new();
    verify_with_memory(password, stored, &mut memory)
}

/// [`verify`] computing into `memory` (grown as needed, reusable).
fn verify_with_memory(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt_bytes,
        &mut computed,
        &mut memory[..blocks],
    );
    hashed.is_ok() && constant_time_eq(&computed, expected.as_bytes())
}

/// [`hash`] computing into `memory` (grown as needed, reusable).
fn hash_with_memory(password: &str, memory: &mut Vec<Block>) -> Result<String, String> {
    let params = Params::default();
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt_bytes,
            &mut out,
            &mut memory[..blocks],
        )
        .map_err(|e| e.to_string())?;
    let output = Output::new(&out).map_err(|e| e.to_string())?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        output
    ))
}

/// argon2's own `verify_password` compares in constant time, but it also
/// allocates its memory per call, which is what [`Hasher`] avoids; so the
/// comparison is done here, without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bounded hashing pool of one server (see the module docs). Cheap to
/// clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct Hasher {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    permits: Arc<Semaphore>,
    /// Callers admitted (running or waiting for a permit).
    admitted: AtomicUsize,
    max_admitted: usize,
    /// argon2 memory, at most one buffer per permit, reused for every hash.
    buffers: Mutex<Vec<Vec<Block>>>,
    /// A hash of a random secret: unknown users and locked accounts are
    /// checked against it so they cost the same as a wrong password.
    dummy_hash: String,
}

impl Hasher {
    /// A pool sized from the machine: at most [`MAX_CONCURRENT_HASHES`]
    /// argon2 runs (~19 MiB each) at once.
    pub fn new() -> Result<Self, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_concurrency(cores.clamp(1, MAX_CONCURRENT_HASHES))
    }

    pub fn with_concurrency(concurrency: usize) -> Result<Self, String> {
        let concurrency = concurrency.max(1);
        Ok(Self {
            pool: Arc::new(Pool {
                permits: Arc::new(Semaphore::new(concurrency)),
                admitted: AtomicUsize::new(0),
                max_admitted: concurrency * (1 + WAITERS_PER_PERMIT),
                buffers: Mutex::new(Vec::new()),
                dummy_hash: hash(&random_secret(32))?,
            }),
        })
    }

    /// Verifies `password` against `stored` within the pool's bounds.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, HashingBusy> {
        let (password, stored) = (password.to_owned(), stored.to_owned());
        self.run(move |memory| verify_with_memory(&password, &stored, memory))
            .await
    }

    /// The same work as a wrong password, for callers that must not learn
    /// whether an account exists or is locked.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashingBusy> {
        let dummy = self.pool.dummy_hash.clone();
        let password = password.to_owned();
        self.run(move |memory| verify_with_memory(&password, &dummy, memory))
            .await
            .map(|_| ())
    }

    /// Hashes a new password or secret within the pool's bounds.
    pub async fn hash(&self, password: &str) -> Result<Result<String, String>, HashingBusy> {
        let password = password.to_owned();
        self.run(move |memory| hash_with_memory(&password, memory))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashingBusy> {
        let admission = Admission::enter(&self.pool)?;
        let permit = self
            .pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashingBusy)?;
        let pool = self.pool.clone();
        // The permit, the admission and the buffer move into the blocking
        // task: a caller that goes away (client disconnect) must not free
        // its slot while its hash still runs.
        tokio::task::spawn_blocking(move || {
            let mut memory = pool
                .buffers
                .lock()
                .ok()
                .and_then(|mut buffers| buffers.pop())
                .unwrap_or_default();
            let out = work(&mut memory);
            if let Ok(mut buffers) = pool.buffers.lock() {
                buffers.push(memory);
            }
            drop(permit);
            drop(admission);
            out
        })
        .await
        // A panicking hash: the caller is refused rather than let in.
        .map_err(|_| HashingBusy)
    }
}

/// One caller counted in [`Pool::admitted`] until dropped.
struct Admission(Arc<Pool>);

impl Admission {
    fn enter(pool: &Arc<Pool>) -> Result<Self, HashingBusy> {
        let mut current = pool.admitted.load(Ordering::Relaxed);
        loop {
            if current >= pool.max_admitted {
                return Err(HashingBusy);
            }
            match pool.admitted.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Self(pool.clone())),
                Err(seen) => current = seen,
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A random alphanumeric string (session IDs, token secrets, generated
/// admin passwords).
pub fn random_secret(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A session ID in XNAT's style: 32 upper-case hex digits.
pub fn session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes);
    hex::encode_upper(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash("s3cret").unwrap();
        let b = hash("s3cret").unwrap();
        assert_ne!(a, b);
        assert!(verify("s3cret", &a));
        assert!(!verify("wrong", &a));
        assert!(!a.contains("s3cret"));
        assert_eq!(session_id().len(), 32);
    }

    #[test]
    fn pooled_hashes_are_standard_phc_strings() {
        let mut memory = Vec::new();
        let pooled = hash_with_memory("s3cret", &mut memory).unwrap();
        // The argon2 crate's own verifier accepts what the pool writes…
        let parsed = PasswordHash::new(&pooled).unwrap();
        assert!(
            argon2::PasswordVerifier::verify_password(&Argon2::default(), b"s3cret", &parsed)
                .is_ok()
        );
        // …and the pool accepts what the crate writes, reusing its memory.
        let standard = hash("other").unwrap();
        assert!(verify_with_memory("other", &standard, &mut memory));
        assert!(!verify_with_memory("s3cret", &standard, &mut memory));
        assert!(verify_with_memory("s3cret", &pooled, &mut memory));
        assert!(!verify_with_memory("x", "not a hash", &mut memory));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pool_refuses_callers_beyond_its_bound() {
        let hasher = Hasher::with_concurrency(1).unwrap();
        let stored = hash("pw").unwrap();
        // Hold the only permit so every admitted caller has to wait.
        let held = hasher.pool.permits.acquire().await.unwrap();
        let mut waiting = Vec::new();
        for _ in 0..hasher.pool.max_admitted {
            let hasher = hasher.clone();
            let stored = stored.clone();
            waiting.push(tokio::spawn(async move {
                hasher.verify("wrong", &stored).await
            }));
        }
        while hasher.pool.admitted.load(Ordering::Acquire) < hasher.pool.max_admitted {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.verify("pw", &stored).await,
            Err(HashingBusy)
        ));
        assert!(matches!(hasher.verify_dummy("pw").await, Err(HashingBusy)));
        drop(held);
        for task in waiting {
            assert!(!task.await.unwrap().unwrap());
        }
        assert!(hasher.verify("pw", &stored).await.unwrap());
        assert_eq!(hasher.pool.admitted.load(Ordering::Acquire), 0);
        assert!(hasher.pool.buffers.lock().unwrap().len() <= 1);
    }
}
