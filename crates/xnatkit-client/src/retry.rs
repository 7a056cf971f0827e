//! When and how long to wait before repeating a request.
//!
//! Hand-written (≈40 lines) instead of `reqwest-retry`/`backon`: the rules
//! depend on XNAT-specific facts the middleware cannot see (which requests
//! are safe to repeat, re-login on 401 in between), so the loop lives in
//! [`crate::XnatClient`] and only the arithmetic lives here.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts including the first one.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// Longest `Retry-After` we honour. A server asking for more is not waited
/// for and not asked again: the request fails at once with the server's
/// answer and its requested delay in the message, rather than a run
/// stalling for as long as the header says.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 0): the
    /// server's `Retry-After` when it is at most [`MAX_RETRY_AFTER`], else a
    /// random duration up to `base · 2^attempt`, capped. Full jitter spreads
    /// out many parallel downloads that failed at the same moment.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after
            && wait <= MAX_RETRY_AFTER
        {
            return wait;
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(rand::rng().random_range(millis / 4..=millis))
    }
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is
/// rare for APIs and falls back to normal backoff).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let policy = RetryPolicy::default();
        for attempt in 0..30 {
            let d = policy.delay(attempt, None);
            assert!(d <= policy.max_delay, "{d:?}");
        }
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(policy.delay(2, Some(MAX_RETRY_AFTER)), MAX_RETRY_AFTER);
        // Beyond the cap the header is not honoured (not even up to the
        // cap): the normal, much shorter backoff applies.
        for attempt in 0..30 {
            let d = policy.delay(attempt, Some(Duration::from_secs(3600)));
            assert!(d <= policy.max_delay, "{d:?}");
        }
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
