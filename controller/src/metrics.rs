//! Counters the controller exposes at `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an incoming MQTT message was dropped.
#[derive(Debug, Clone, Copy)]
pub enum Dropped {
    /// Topic outside the scheme.
    Topic,
    /// Payload failed to decode.
    Decode,
    /// Payload type does not belong on its topic, or names another node.
    Mismatch,
    /// From an older session than the newest one seen.
    Stale,
    /// From a node the controller does not know.
    UnknownNode,
}

const REASONS: [(&str, usize); 5] = [
    ("topic", 0),
    ("decode", 1),
    ("mismatch", 2),
    ("stale", 3),
    ("unknown_node", 4),
];

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    received: AtomicU64,
    dropped: [AtomicU64; 5],
}

impl Metrics {
    /// Counts a received message.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a dropped message.
    pub fn dropped(&self, why: Dropped) {
        self.dropped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP drover_mqtt_messages_received_total MQTT messages received by the controller."
        );
        let _ = writeln!(out, "# TYPE drover_mqtt_messages_received_total counter");
        let _ = writeln!(
            out,
            "drover_mqtt_messages_received_total {}",
            self.received.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP drover_mqtt_messages_dropped_total MQTT messages dropped, by reason."
        );
        let _ = writeln!(out, "# TYPE drover_mqtt_messages_dropped_total counter");
        for (reason, index) in REASONS {
            let _ = writeln!(
                out,
                "drover_mqtt_messages_dropped_total{{reason=\"{reason}\"}} {}",
                self.dropped[index].load(Ordering::Relaxed)
            );
        }
        out
    }
}
