//! Time on a monotonic clock, for durations: how long a node has been silent is measured
//! on a clock a wall-clock step (NTP correcting a device or a server) does not move. Wall
//! time stays for what users read. The pure core takes both as inputs.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A point on the controller's monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(Duration);

impl Mono {
    /// The point `since` after the clock's origin.
    pub fn at(since: Duration) -> Mono {
        Mono(since)
    }

    /// A monotonic reading that follows the wall clock: for tests and inputs that carry
    /// only wall time, where the two may be taken as one.
    pub fn following_wall(now: DateTime<Utc>) -> Mono {
        Mono(Duration::from_millis(now.timestamp_millis().max(0) as u64))
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Mono) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// This point moved forward by `by`.
    pub fn plus(self, by: Duration) -> Mono {
        Mono(self.0.saturating_add(by))
    }
}

/// The process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonoClock(Instant);

impl MonoClock {
    /// A clock whose origin is now.
    pub fn start() -> MonoClock {
        MonoClock(Instant::now())
    }

    /// The current reading.
    pub fn now(&self) -> Mono {
        Mono(self.0.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_never_run_backwards() {
        let a = Mono::at(Duration::from_secs(10));
        let b = a.plus(Duration::from_secs(5));
        assert_eq!(b.since(a), Duration::from_secs(5));
        assert_eq!(a.since(b), Duration::ZERO);
        let clock = MonoClock::start();
        let first = clock.now();
        assert!(clock.now() >= first);
    }
}
