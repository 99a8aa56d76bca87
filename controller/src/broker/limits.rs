//! Rate limits: the per-connection inbound token bucket and log throttling.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many packets a connection may send: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate {
        per_second: f64::INFINITY,
        burst: f64::INFINITY,
    };
}

/// A token bucket; time is passed in, so it is tested without sleeping.
#[derive(Debug)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket {
            rate,
            tokens: rate.burst,
            refilled_at: now,
        }
    }

    /// Takes one token; `Err(wait)` says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate.per_second.is_infinite() {
            return Ok(());
        }
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.rate.per_second <= 0.0 {
            Err(Duration::from_secs(1))
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.rate.per_second,
            ))
        }
    }
}

/// Lets one log line through per period, and counts the ones it held back, so that a
/// repeated error (a flood of denied publishes, a full fd table) cannot flood the log.
#[derive(Debug)]
pub struct LogThrottle {
    period: Duration,
    state: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl LogThrottle {
    pub const fn new(period: Duration) -> Self {
        LogThrottle {
            period,
            state: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were suppressed since the
    /// last one; `None` when this one is to be suppressed.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut last = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < self.period => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(
            Rate {
                per_second: 10.0,
                burst: 3.0,
            },
            start,
        );
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        let wait = bucket.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Ok(()));
        assert!(bucket.take(start + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn bucket_refills_no_further_than_the_burst() {
        let start = Instant::now();
        let rate = Rate {
            per_second: 100.0,
            burst: 2.0,
        };
        let mut bucket = TokenBucket::new(rate, start);
        let later = start + Duration::from_secs(60);
        assert!(bucket.take(later).is_ok());
        assert!(bucket.take(later).is_ok());
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn unlimited_never_waits() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(Rate::UNLIMITED, now);
        for _ in 0..10_000 {
            assert_eq!(bucket.take(now), Ok(()));
        }
    }

    #[test]
    fn throttle_lets_one_line_per_period_and_counts_the_rest() {
        let throttle = LogThrottle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(throttle.allow(start), Some(0));
        assert_eq!(throttle.allow(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(start + Duration::from_secs(9)), None);
        assert_eq!(throttle.allow(start + Duration::from_secs(10)), Some(2));
    }
}
