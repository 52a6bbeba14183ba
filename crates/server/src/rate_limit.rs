//! A token bucket per key (an API key, a client address for sign-ins), in memory. Each process limits on its own: with several
//! `rappel` processes behind a load balancer a key gets up to that many times the rate, which
//! is acceptable for its purpose (keeping one runaway integration from starving the others).
//!
//! It measures real time (`Instant`), not the engine's clock: it protects the server, which
//! lives in real time even when a test simulates the practice's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// Keys a limiter remembers before it forgets those it can.
const MAX_KEYS: usize = 100_000;

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
    /// The map holds one entry per key seen: few for API keys, but client addresses are many,
    /// so past [`MAX_KEYS`] the full buckets (which a new key would get anyway) are dropped.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate_per_second, self.burst);
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
                b.tokens + elapsed * rate < burst
            });
            // Still full: so many keys are being refilled at once that forgetting them all is
            // the lesser harm (the limits that hold every key together still apply).
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
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

/// The client's address as a rate-limit key: an IPv4 address, or the /64 network of an IPv6
/// address (one subscriber usually holds a whole /64). Requests served without the connection
/// loop of `listen.rs` (none in production) share one key.
pub(crate) struct ClientAddress(Option<IpAddr>);

impl ClientAddress {
    pub fn key(&self) -> String {
        match self.0 {
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = ip.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
            None => "unknown".to_string(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
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
    fn an_ipv6_client_counts_by_its_network() {
        let key = |ip: &str| ClientAddress(Some(ip.parse().unwrap())).key();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn past_the_key_limit_full_buckets_are_forgotten_and_spent_ones_kept() {
        let limiter = RateLimiter::new(1.0, 1);
        let start = Instant::now();
        for n in 0..MAX_KEYS {
            assert_eq!(limiter.check_at(&n.to_string(), start), Ok(()));
        }
        // Ten seconds later every bucket is full again: the map is swept for the new key.
        let later = start + Duration::from_secs(10);
        assert_eq!(limiter.check_at("new", later), Ok(()));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
        assert!(
            limiter.check_at("new", later).is_err(),
            "its own bucket is kept"
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
