//! Durations the way kubectl prints ages: `45s`, `3m2s`, `12m`, `5h3m`, `9h`, `3d4h`, `12d`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::table::duration;

/// kubectl's human duration (the API server's rules, in `api::table::duration`).
pub fn human(seconds: i64) -> String {
    duration::human(chrono::Duration::seconds(seconds))
}

/// Age of an RFC 3339 timestamp at `now`, or `<unknown>`.
pub fn since(timestamp: &Value, now: DateTime<Utc>) -> String {
    duration::since(timestamp, now)
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
