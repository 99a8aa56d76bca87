//! Counters the controller exposes at `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an incoming MQTT message was dropped (the label of
/// `drover_mqtt_messages_dropped_total`).
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

impl Dropped {
    fn reason(self) -> &'static str {
        match self {
            Dropped::Topic => "topic",
            Dropped::Decode => "decode",
            Dropped::Mismatch => "mismatch",
            Dropped::Stale => "stale",
            Dropped::UnknownNode => "unknown_node",
        }
    }
}

/// Every drop reason, in the order they are printed.
const REASONS: [&str; 10] = [
    "topic",
    "decode",
    "mismatch",
    "stale",
    "unknown_node",
    "signature",
    "foreign_desired",
    "stale_desired",
    "unrequested_log",
    "foreign_event",
];

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    received: AtomicU64,
    dropped: [AtomicU64; REASONS.len()],
    enrollments_refused: AtomicU64,
    /// The embedded broker, whose own counters are shown too.
    broker: std::sync::OnceLock<crate::broker::BrokerHandle>,
}

impl Metrics {
    /// Counts a received message.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a dropped message.
    pub fn dropped(&self, why: Dropped) {
        self.dropped_reason(why.reason());
    }

    /// Counts a dropped message by the name of its reason (one of [`REASONS`]).
    pub fn dropped_reason(&self, reason: &str) {
        if let Some(index) = REASONS.iter().position(|r| *r == reason) {
            self.dropped[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Shows the embedded broker's counters from now on.
    pub fn watch_broker(&self, broker: crate::broker::BrokerHandle) {
        let _ = self.broker.set(broker);
    }

    /// Counts a refused enrollment.
    pub fn enrollment_refused(&self) {
        self.enrollments_refused.fetch_add(1, Ordering::Relaxed);
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
        for (reason, count) in REASONS.iter().zip(&self.dropped) {
            let _ = writeln!(
                out,
                "drover_mqtt_messages_dropped_total{{reason=\"{reason}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP drover_enrollments_refused_total Enrollment requests the controller refused."
        );
        let _ = writeln!(out, "# TYPE drover_enrollments_refused_total counter");
        let _ = writeln!(
            out,
            "drover_enrollments_refused_total {}",
            self.enrollments_refused.load(Ordering::Relaxed)
        );
        if let Some(broker) = self.broker.get() {
            let stats = broker.stats();
            let _ = writeln!(
                out,
                "# HELP drover_broker_connections Connections open on the embedded broker."
            );
            let _ = writeln!(out, "# TYPE drover_broker_connections gauge");
            let _ = writeln!(out, "drover_broker_connections {}", stats.connections_now);
            let _ = writeln!(
                out,
                "# HELP drover_broker_events_total What the embedded broker did and refused, by kind."
            );
            let _ = writeln!(out, "# TYPE drover_broker_events_total counter");
            for (event, count) in stats.named() {
                if event != "connections_now" {
                    let _ = writeln!(
                        out,
                        "drover_broker_events_total{{event=\"{event}\"}} {count}"
                    );
                }
            }
        }
        out
    }
}
