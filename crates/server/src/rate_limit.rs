//! A token bucket per API key, in memory. Each process limits on its own: with several
//! `rappel` processes behind a load balancer a key gets up to that many times the rate, which
//! is acceptable for its purpose (keeping one runaway integration from starving the others).
//!
//! It measures real time (`Instant`), not the engine's clock: it protects the server, which
//! lives in real time even when a test simulates the practice's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub(crate) struct RateLimiter {
    rate_per_second: f64,
    burst: f64,
    // A std Mutex: the critical section is a few arithmetic operations and never awaits.
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate_per_second: rate_per_second.max(0.0),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `key`'s bucket, or says in how many whole seconds one will be there.
    /// The map holds one entry per valid API key that was used, so it stays small.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = if self.rate_per_second > 0.0 {
            ((1.0 - bucket.tokens) / self.rate_per_second).ceil()
        } else {
            3600.0
        };
        Err((wait as u64).clamp(1, 3600))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_for_the_refill_and_other_keys_are_unaffected() {
        let limiter = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at("a", start), Ok(()));
        }
        assert_eq!(limiter.check_at("a", start), Err(1));
        assert_eq!(limiter.check_at("b", start), Ok(()));
        // Half a second at 2 tokens per second gives one token back.
        assert_eq!(
            limiter.check_at("a", start + Duration::from_millis(500)),
            Ok(())
        );
        assert_eq!(
            limiter.check_at("a", start + Duration::from_millis(500)),
            Err(1)
        );
    }

    #[test]
    fn the_bucket_never_holds_more_than_the_burst() {
        let limiter = RateLimiter::new(100.0, 2);
        let start = Instant::now();
        assert_eq!(limiter.check_at("a", start), Ok(()));
        let later = start + Duration::from_secs(60);
        assert_eq!(limiter.check_at("a", later), Ok(()));
        assert_eq!(limiter.check_at("a", later), Ok(()));
        assert!(limiter.check_at("a", later).is_err());
    }
}
