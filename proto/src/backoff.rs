//! Exponential back-off, the one rule behind every retry delay in Drover (a crashed
//! container's restart, a failed Job or daemon pod's replacement, a failed
//! reconciliation's retry).

use std::time::Duration;

/// The delay after `n` failures in a row: zero for none, then `initial · 2^(n−1)`, at most
/// `max`.
pub fn exponential(initial: Duration, max: Duration, n: u32) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    initial.saturating_mul(1u32 << (n - 1).min(20)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_the_initial_one_up_to_the_cap() {
        let (initial, max) = (Duration::from_secs(10), Duration::from_secs(360));
        let delays: Vec<u64> = (0..8)
            .map(|n| exponential(initial, max, n).as_secs())
            .collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 320, 360]);
        assert_eq!(
            exponential(initial, max, u32::MAX),
            max,
            "no overflow however many failures"
        );
        assert_eq!(
            exponential(Duration::from_secs(u64::MAX / 2), Duration::MAX, 30),
            Duration::MAX,
            "saturates"
        );
    }
}
