//! Durations the way kubectl prints ages: `45s`, `3m2s`, `12m`, `5h3m`, `9h`, `3d4h`, `12d`.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// kubectl's short human duration.
pub fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=599 => {
            let (m, rest) = (s / 60, s % 60);
            if rest == 0 {
                format!("{m}m")
            } else {
                format!("{m}m{rest}s")
            }
        }
        600..=10_799 => format!("{}m", s / 60),
        10_800..=28_799 => {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            if m == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{m}m")
            }
        }
        28_800..=172_799 => format!("{}h", s / 3600),
        172_800..=691_199 => {
            let (d, h) = (s / 86_400, (s % 86_400) / 3600);
            if h == 0 {
                format!("{d}d")
            } else {
                format!("{d}d{h}h")
            }
        }
        _ => format!("{}d", s / 86_400),
    }
}

/// Age of an RFC 3339 timestamp at `now`, or `<unknown>`.
pub fn since(timestamp: &Value, now: DateTime<Utc>) -> String {
    timestamp
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(
            || "<unknown>".into(),
            |t| human((now - t.with_timezone(&Utc)).num_seconds()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_like_kubectl() {
        for (s, text) in [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (180, "3m"),
            (700, "11m"),
            (3 * 3600 + 120, "3h2m"),
            (10 * 3600, "10h"),
            (3 * 86_400 + 3600, "3d1h"),
            (20 * 86_400, "20d"),
        ] {
            assert_eq!(human(s), text, "{s}");
        }
    }
}
