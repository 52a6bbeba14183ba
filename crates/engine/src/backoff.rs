//! How long a worker waits after its database failed: doubling from 1 s to at most 60 s, with
//! jitter so that the workers of several processes do not knock together when it comes back.
//!
//! Without it, a worker whose claim fails while the queue says "due now" retries at once, in a
//! hot loop — tens of failed claims a second during an outage, or forever on a database that
//! refuses the claim (a distributed PostgreSQL without `FOR UPDATE` across shards).

use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const LONGEST: Duration = Duration::from_secs(60);

/// The consecutive failures of one worker loop.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// A failure: how long to wait before the next attempt (`jitter` in [0, 1) scales it between
    /// 80 % and 120 %, never past the cap). The first failure of an outage is the one to log.
    pub fn failed(&mut self, jitter: f64) -> (Duration, bool) {
        let first = self.failures == 0;
        let doubling = self.failures.min(6);
        self.failures = self.failures.saturating_add(1);
        let base = FIRST.saturating_mul(1 << doubling).min(LONGEST);
        let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        (base.mul_f64(factor).min(LONGEST), first)
    }

    /// A round that worked: whether it ends an outage (to log that the database is back).
    pub fn succeeded(&mut self) -> bool {
        std::mem::take(&mut self.failures) > 0
    }

    pub fn failing(&self) -> bool {
        self.failures > 0
    }
}

/// A number in [0, 1) from the operating system's randomness, for [`Backoff::failed`].
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_one_second_to_a_minute_and_reset_after_a_success() {
        let mut backoff = Backoff::default();
        let waits: Vec<(u64, bool)> = (0..9)
            .map(|_| {
                let (wait, first) = backoff.failed(0.5);
                (wait.as_secs(), first)
            })
            .collect();
        assert_eq!(
            waits,
            [
                (1, true),
                (2, false),
                (4, false),
                (8, false),
                (16, false),
                (32, false),
                (60, false),
                (60, false),
                (60, false)
            ]
        );
        assert!(backoff.failing());
        assert!(backoff.succeeded(), "the end of an outage is reported once");
        assert!(!backoff.succeeded());
        assert_eq!(backoff.failed(0.5), (Duration::from_secs(1), true));
    }

    #[test]
    fn jitter_spreads_the_wait_but_never_past_the_cap() {
        let mut low = Backoff::default();
        let mut high = Backoff::default();
        assert_eq!(low.failed(0.0).0, Duration::from_millis(800));
        assert_eq!(high.failed(0.999_999).0.as_millis(), 1199);
        let mut capped = Backoff { failures: 20 };
        assert_eq!(capped.failed(0.999_999).0, LONGEST);
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
