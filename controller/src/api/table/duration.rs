//! Ages and durations as Kubernetes prints them (apimachinery's `HumanDuration`): about two
//! significant figures, `45s`, `3m2s`, `12m`, `5h3m`, `9h`, `3d4h`, `12d`, `2y30d`, `9y`.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// Kubernetes' `HumanDuration`.
pub fn human(d: Duration) -> String {
    let seconds = d.num_seconds();
    // Two clocks may disagree by a second; only more than that is shown as invalid.
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

/// An RFC 3339 timestamp, if `value` holds one.
pub use crate::object::timestamp_of as parse;

/// Time since `timestamp` at `now`, or `<unknown>` when there is none (a zero time in Go).
pub fn since(timestamp: &Value, now: DateTime<Utc>) -> String {
    parse(timestamp).map_or_else(|| "<unknown>".into(), |t| human(now - t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_like_apimachinery() {
        for (s, text) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 120, "3h2m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 3599, "47h"),
            (48 * 3600, "2d"),
            (3 * 86_400 + 3600, "3d1h"),
            (8 * 86_400, "8d"),
            (729 * 86_400, "729d"),
            (730 * 86_400, "2y"),
            (731 * 86_400, "2y1d"),
            (8 * 365 * 86_400, "8y"),
            (9 * 365 * 86_400 + 86_400, "9y"),
        ] {
            assert_eq!(human(Duration::seconds(s)), text, "{s}");
        }
    }

    #[test]
    fn missing_timestamps_are_unknown() {
        let now = Utc::now();
        assert_eq!(since(&Value::Null, now), "<unknown>");
        assert_eq!(since(&Value::from("yesterday"), now), "<unknown>");
        assert_eq!(
            since(
                &Value::from("2026-01-01T00:00:00Z"),
                parse(&"2026-01-01T00:05:03Z".into()).unwrap_or(now)
            ),
            "5m3s"
        );
    }
}
