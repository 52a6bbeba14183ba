//! What this process's dispatcher handed off, for `/metrics`: the hand-offs by channel and
//! outcome, and how late the accepted ones were (hand-off time minus due time) as a histogram.
//!
//! Counters of one process, like every Prometheus counter: with several workers sharing a
//! database, the scraper sums them across processes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;
use rappel_channels::ChannelError;
use rappel_domain::notification::Channel;

/// Upper bounds, in seconds, of the lateness histogram's buckets (`+Inf` comes after).
pub const LATENESS_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 60.0, 300.0, 3600.0];

/// A snapshot of the dispatcher's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DispatchMetrics {
    /// Hand-offs by channel and outcome: `sent` (accepted by the provider), `retry` (a
    /// transient error: tried again later) or `failed` (a permanent error, or an address gone).
    pub handoffs: BTreeMap<(&'static str, &'static str), u64>,
    /// For each bound of [`LATENESS_BUCKETS`], the accepted hand-offs at most that late
    /// (cumulative, as Prometheus histograms count).
    pub lateness_buckets: [u64; LATENESS_BUCKETS.len()],
    /// Accepted hand-offs, and the sum of their lateness in seconds.
    pub lateness_count: u64,
    pub lateness_sum_seconds: f64,
}

#[derive(Default)]
pub(crate) struct DispatchStats {
    // A std Mutex: held for a few additions, never across an await.
    metrics: Mutex<DispatchMetrics>,
}

impl DispatchStats {
    /// Counts one hand-off of a message due at `due` that ended at `now`.
    pub fn record(
        &self,
        channel: Channel,
        outcome: Result<(), &ChannelError>,
        due: Timestamp,
        now: Timestamp,
    ) {
        let mut m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let label = match outcome {
            Ok(()) => "sent",
            Err(ChannelError::Transient { .. }) => "retry",
            Err(ChannelError::Permanent(_) | ChannelError::Gone(_)) => "failed",
        };
        *m.handoffs.entry((channel.as_str(), label)).or_default() += 1;
        if outcome.is_ok() {
            // A message sent before its due time (never, but a clock may step) counts as on time.
            let late = now.duration_since(due).as_secs_f64().max(0.0);
            for (bucket, bound) in m.lateness_buckets.iter_mut().zip(LATENESS_BUCKETS) {
                if late <= bound {
                    *bucket += 1;
                }
            }
            m.lateness_count += 1;
            m.lateness_sum_seconds += late;
        }
    }

    pub fn snapshot(&self) -> DispatchMetrics {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_offs_are_counted_by_outcome_and_lateness_is_cumulative() {
        let stats = DispatchStats::default();
        let due: Timestamp = "2026-03-04T12:00:00Z".parse().unwrap();
        let at = |ms: i64| due + jiff::SignedDuration::from_millis(ms);
        stats.record(Channel::Email, Ok(()), due, at(50));
        stats.record(Channel::Email, Ok(()), due, at(2_000));
        stats.record(Channel::Sms, Ok(()), due, at(-10));
        let transient = ChannelError::Transient {
            reason: "SMTP 451".into(),
            retry_after: None,
        };
        stats.record(Channel::Email, Err(&transient), due, at(10));
        stats.record(
            Channel::Push,
            Err(&ChannelError::Gone("410".into())),
            due,
            at(10),
        );
        let m = stats.snapshot();
        assert_eq!(m.handoffs[&("email", "sent")], 2);
        assert_eq!(m.handoffs[&("email", "retry")], 1);
        assert_eq!(m.handoffs[&("push", "failed")], 1);
        assert_eq!(m.handoffs[&("sms", "sent")], 1);
        assert_eq!(m.lateness_count, 3, "accepted hand-offs only");
        assert_eq!(
            m.lateness_buckets[0], 2,
            "≤ 0.1 s: the early one and the 50 ms one"
        );
        assert_eq!(m.lateness_buckets[3], 2, "≤ 1 s");
        assert_eq!(m.lateness_buckets[4], 3, "≤ 2.5 s");
        assert!((m.lateness_sum_seconds - 2.05).abs() < 1e-9);
    }
}
