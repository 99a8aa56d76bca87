//! Capped exponential back-off with jitter, so a fleet that lost its broker does not
//! reconnect in lockstep.

use std::time::Duration;

/// Reconnection delays: `initial`, doubling up to `max`, each scaled by a factor in
/// [0.5, 1.0).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// A back-off whose jitter is seeded by `seed` (e.g. a hash of the node UID).
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // xorshift64: enough to spread reconnects; nothing here needs real randomness.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = 0.5 + (self.rng % 1000) as f64 / 2000.0;
        base.mul_f64(fraction)
    }

    /// Back to the initial delay after a successful connection.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 42);
        let mut bases = vec![];
        for _ in 0..8 {
            bases.push(b.next_delay());
        }
        let expected_base = [100u64, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (delay, base) in bases.iter().zip(expected_base) {
            let base = Duration::from_millis(base);
            assert!(
                *delay >= base / 2 && *delay < base,
                "{delay:?} for base {base:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(100));
    }
}
