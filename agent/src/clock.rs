//! The agent's clocks. Durations (crash back-off, grace periods) run on the boot-time
//! clock, which a wall-clock step does not move: a device without a real-time clock steps
//! its wall clock at every boot, once NTP answers. Wall time is added only to what users
//! read, when a status or event is reported.

use crate::supervisor::Millis;

/// Milliseconds since boot (suspend included): the clock the supervisor runs on.
pub fn mono_ms() -> Millis {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        // time_t and the nanoseconds are 32 bits on armv7.
        .map_or(0, |t| {
            t.tv_sec() as Millis * 1000 + t.tv_nsec() as Millis / 1_000_000
        })
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// What to add to a boot-clock time for the wall time, now.
pub fn wall_offset_ms() -> Millis {
    wall_ms() - mono_ms()
}

/// The kernel's id of this boot: boot-clock times from another boot mean nothing here.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Which boot-clock a record's times are on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockStamp {
    /// The boot they were taken in.
    pub boot_id: String,
    /// [`wall_offset_ms`] when they were written.
    pub wall_offset_ms: Millis,
}

impl ClockStamp {
    /// Whether both were taken in one boot (an unreadable boot id never matches).
    pub fn same_boot(&self, other: &ClockStamp) -> bool {
        !self.boot_id.is_empty() && self.boot_id == other.boot_id
    }

    /// This boot, now.
    pub fn now() -> ClockStamp {
        ClockStamp {
            boot_id: boot_id(),
            wall_offset_ms: wall_offset_ms(),
        }
    }

    /// What to add to times stamped `self` to put them on the clock of `current`: nothing
    /// within one boot; across a reboot, through the wall time they stood for.
    pub fn shift_to(&self, current: &ClockStamp) -> Millis {
        if self.same_boot(current) {
            0
        } else {
            self.wall_offset_ms - current.wall_offset_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_clock_runs_and_the_offset_gives_the_wall_time() {
        let a = mono_ms();
        assert!(a > 0);
        assert!(mono_ms() >= a);
        assert!((mono_ms() + wall_offset_ms() - wall_ms()).abs() < 1000);
        assert!(!boot_id().is_empty());
    }

    #[test]
    fn times_move_between_boots_through_the_wall_clock() {
        let then = ClockStamp {
            boot_id: "a".into(),
            wall_offset_ms: 1_000_000,
        };
        let same_boot = ClockStamp {
            boot_id: "a".into(),
            wall_offset_ms: 5_000_000,
        };
        assert_eq!(
            then.shift_to(&same_boot),
            0,
            "a step within a boot moves nothing"
        );
        let next_boot = ClockStamp {
            boot_id: "b".into(),
            wall_offset_ms: 1_600_000,
        };
        // 100 on the old boot clock was wall 1_000_100, which is -500_000 + 100 now.
        assert_eq!(100 + then.shift_to(&next_boot), 1_000_100 - 1_600_000);
    }
}
