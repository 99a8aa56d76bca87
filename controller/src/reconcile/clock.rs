//! Time on a monotonic clock, for durations: how long a node has been silent is measured
//! on a clock a wall-clock step (NTP correcting a device or a server) does not move. Wall
//! time stays for what users read. The pure core takes both as inputs.

use std::collections::HashMap;
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

/// How long ago wall-clock instants recorded in objects were (a Job's start or finish, a
/// taint's `timeAdded`), measured on the monotonic clock from the moment each was first
/// seen: what had passed by then comes from the wall clock, once; what passes after, from
/// the monotonic clock, so a later wall-clock step changes nothing.
#[derive(Debug, Default)]
pub struct Elapsed {
    anchors: HashMap<String, Anchor>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    at: DateTime<Utc>,
    seen_mono: Mono,
    seen_wall: DateTime<Utc>,
}

impl Elapsed {
    /// Time since `at` (the instant `key` names), as of `now` / `mono`. An instant that
    /// changes (a Job resumed, a taint added again) is measured afresh.
    pub fn since(
        &mut self,
        key: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        mono: Mono,
    ) -> chrono::Duration {
        let fresh = Anchor {
            at,
            seen_mono: mono,
            seen_wall: now,
        };
        let anchor = self.anchors.entry(key.to_string()).or_insert(fresh);
        if anchor.at != at {
            *anchor = fresh;
        }
        let before = (anchor.seen_wall - at).max(chrono::Duration::zero());
        before + chrono::Duration::from_std(mono.since(anchor.seen_mono)).unwrap_or_default()
    }

    /// Forgets the instants whose key `keep` refuses.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.anchors.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn elapsed_time_ignores_wall_clock_steps_after_it_was_first_seen() {
        let mut elapsed = Elapsed::default();
        let mono = |s: u64| Mono::at(Duration::from_secs(s));
        // First seen 5 s after the instant (wall clock), at monotonic 100 s.
        assert_eq!(
            elapsed.since("job", wall(0), wall(5), mono(100)),
            chrono::Duration::seconds(5)
        );
        // 10 s later on the monotonic clock, while the wall clock jumped an hour forward.
        assert_eq!(
            elapsed.since("job", wall(0), wall(3615), mono(110)),
            chrono::Duration::seconds(15)
        );
        // ...or an hour back.
        assert_eq!(
            elapsed.since("job", wall(0), wall(-3585), mono(110)),
            chrono::Duration::seconds(15)
        );
        // A new instant for the same key is measured afresh.
        assert_eq!(
            elapsed.since("job", wall(20), wall(20), mono(120)),
            chrono::Duration::zero()
        );
        // An instant in the future (a clock behind) counts from zero.
        assert_eq!(
            elapsed.since("taint", wall(50), wall(40), mono(120)),
            chrono::Duration::zero()
        );
        elapsed.retain(|key| key == "taint");
        assert_eq!(
            elapsed.since("job", wall(20), wall(30), mono(200)),
            chrono::Duration::seconds(10),
            "forgotten, so seen again for the first time"
        );
    }

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
