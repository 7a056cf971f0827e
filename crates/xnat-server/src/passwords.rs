//! Password and secret hashing (argon2id) and random secrets.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distr::Alphanumeric;

/// Hashes a password into a PHC string. Slow by design: call it from a
/// blocking thread in async code (see [`hash_blocking`]).
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
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

pub async fn hash_blocking(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| e.to_string())?
}

pub async fn verify_blocking(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, &stored))
        .await
        .unwrap_or(false)
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
}
