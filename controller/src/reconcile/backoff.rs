//! Exponential back-off, and the per-object retry schedule of the control loop: an object
//! whose reconciliation failed is tried again after a delay that doubles with each failure
//! in a row, rather than when some unrelated input happens to arrive.

use std::collections::HashMap;
use std::time::Duration;

use super::clock::Mono;

pub use drover_proto::backoff::exponential;

/// First retry of an object whose reconciliation failed.
pub const RETRY_INITIAL: Duration = Duration::from_millis(500);
/// Longest delay between retries of an object that keeps failing.
pub const RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// One object's failures in a row and when it is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Failures in a row.
    pub failures: u32,
    /// When it is tried again.
    pub at: Mono,
}

/// Per-object retries, keyed by UID (or by a pass's name when a whole pass failed). In
/// memory: after a restart every object is reconciled anyway.
#[derive(Debug, Clone, Default)]
pub struct Retries {
    by_key: HashMap<String, Retry>,
}

impl Retries {
    /// Notes a failure of `key` at `now`; returns when it is tried again.
    pub fn failed(&mut self, key: &str, now: Mono) -> Mono {
        let failures = self.by_key.get(key).map_or(0, |r| r.failures) + 1;
        let at = now.plus(exponential(RETRY_INITIAL, RETRY_MAX, failures));
        self.by_key.insert(key.to_string(), Retry { failures, at });
        at
    }

    /// Notes that `key` was reconciled: its back-off starts over.
    pub fn succeeded(&mut self, key: &str) {
        self.by_key.remove(key);
    }

    /// Whether some object is due for its retry at `now`.
    pub fn due(&self, now: Mono) -> bool {
        self.by_key.values().any(|r| r.at <= now)
    }

    /// The retry of `key`, if it is failing.
    pub fn get(&self, key: &str) -> Option<Retry> {
        self.by_key.get(key).copied()
    }

    /// Forgets the objects `keep` rejects (they no longer exist).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.by_key.retain(|k, _| keep(k));
    }
}

/// Whether the periodic resync is due: `period` since the last one (or since the start),
/// never when `period` is zero (disabled).
pub fn resync_due(last: Mono, now: Mono, period: Duration) -> bool {
    !period.is_zero() && now.since(last) >= period
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_object_is_retried_later_each_time_and_starts_over_once_it_succeeds() {
        let mut retries = Retries::default();
        let t0 = Mono::at(Duration::from_secs(100));
        let first = retries.failed("job-a", t0);
        assert_eq!(first, t0.plus(RETRY_INITIAL));
        assert!(!retries.due(t0));
        assert!(retries.due(first));
        let second = retries.failed("job-a", first);
        assert_eq!(second, first.plus(RETRY_INITIAL * 2));
        assert_eq!(retries.get("job-a").unwrap().failures, 2);
        let mut at = second;
        for _ in 0..30 {
            let next = retries.failed("job-a", at);
            assert!(next.since(at) <= RETRY_MAX);
            at = next;
        }
        assert_eq!(retries.failed("job-a", at).since(at), RETRY_MAX, "capped");
        retries.succeeded("job-a");
        assert_eq!(retries.get("job-a"), None);
        assert!(!retries.due(at.plus(RETRY_MAX)));
        assert_eq!(retries.failed("job-a", at), at.plus(RETRY_INITIAL));
    }

    #[test]
    fn objects_back_off_independently_and_gone_ones_are_forgotten() {
        let mut retries = Retries::default();
        let t0 = Mono::at(Duration::from_secs(1));
        retries.failed("a", t0);
        retries.failed("a", t0);
        retries.failed("b", t0);
        assert_eq!(retries.get("a").unwrap().failures, 2);
        assert_eq!(retries.get("b").unwrap().failures, 1);
        retries.retain(|k| k != "a");
        assert_eq!(retries.get("a"), None);
        assert!(retries.get("b").is_some());
    }

    #[test]
    fn the_resync_is_due_once_per_period_and_never_when_disabled() {
        let last = Mono::at(Duration::from_secs(10));
        let period = Duration::from_secs(30);
        assert!(!resync_due(
            last,
            last.plus(Duration::from_secs(29)),
            period
        ));
        assert!(resync_due(last, last.plus(period), period));
        assert!(!resync_due(
            last,
            last.plus(Duration::from_secs(3600)),
            Duration::ZERO
        ));
    }
}
