//! What the controller exposes at `/metrics`, in the OpenMetrics text format through
//! `prometheus-client`: MQTT traffic and drops, enrollments, API requests and watches, the
//! embedded broker, and the fleet as the store sees it at scrape time.

mod broker;
mod fleet;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use fleet::{FleetSnapshot, ObjectProgress};

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

/// Every drop reason; each is exposed (at 0) before it first happens, so alerts can rely on
/// the series existing.
pub const REASONS: [&str; 11] = [
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
    "backlog",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    verb: String,
    resource: String,
}

/// Process-wide metrics.
pub struct Metrics {
    registry: Registry,
    received: Family<TopicLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    enrollments_refused: Counter,
    api_requests: Family<RequestLabels, Counter>,
    api_latency: Family<LatencyLabels, Histogram>,
    watches: Gauge,
    fleet: fleet::FleetGauges,
    /// The embedded broker, whose own counters are shown too.
    broker: Arc<OnceLock<crate::broker::BrokerHandle>>,
    /// One scrape at a time: a scrape replaces the fleet gauges, then encodes them.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("drover");
        let received = Family::<TopicLabels, Counter>::default();
        registry.register(
            "mqtt_messages_received",
            "MQTT messages received by the controller, by topic kind",
            received.clone(),
        );
        let dropped = Family::<ReasonLabels, Counter>::default();
        for reason in REASONS {
            drop(dropped.get_or_create(&ReasonLabels {
                reason: reason.into(),
            }));
        }
        registry.register(
            "mqtt_messages_dropped",
            "MQTT messages dropped, by reason",
            dropped.clone(),
        );
        let enrollments_refused = Counter::default();
        registry.register(
            "enrollments_refused",
            "Enrollment requests the controller refused",
            enrollments_refused.clone(),
        );
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests, by verb, resource and HTTP status code",
            api_requests.clone(),
        );
        let api_latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            // 0.1 ms to about 13 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "api_request_duration_seconds",
            "Time to answer API requests (for watches: until the stream is set up)",
            api_latency.clone(),
        );
        let watches = Gauge::default();
        registry.register("api_watches", "Open watch streams", watches.clone());
        let fleet = fleet::FleetGauges::register(&mut registry);
        let broker = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(broker::BrokerCollector(Arc::clone(&broker))));
        Metrics {
            registry,
            received,
            dropped,
            enrollments_refused,
            api_requests,
            api_latency,
            watches,
            fleet,
            broker,
            scrape: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Counts a received message by its topic kind (`presence`, `status`, `enroll`, …).
    pub fn received(&self, topic: &str) {
        self.received
            .get_or_create(&TopicLabels {
                topic: topic.into(),
            })
            .inc();
    }

    /// Counts a dropped message.
    pub fn dropped(&self, why: Dropped) {
        self.dropped_reason(why.reason());
    }

    /// Counts a dropped message by the name of its reason (one of [`REASONS`]).
    pub fn dropped_reason(&self, reason: &str) {
        if REASONS.contains(&reason) {
            self.dropped
                .get_or_create(&ReasonLabels {
                    reason: reason.into(),
                })
                .inc();
        }
    }

    /// Shows the embedded broker's counters from now on.
    pub fn watch_broker(&self, broker: crate::broker::BrokerHandle) {
        let _ = self.broker.set(broker);
    }

    /// Counts a refused enrollment.
    pub fn enrollment_refused(&self) {
        self.enrollments_refused.inc();
    }

    /// Records an answered API request.
    pub fn api_request(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        self.api_requests
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                resource: resource.into(),
                code: code.to_string(),
            })
            .inc();
        self.api_latency
            .get_or_create(&LatencyLabels {
                verb: verb.into(),
                resource: resource.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// A watch stream opened; it counts until the guard is dropped.
    pub fn watch_opened(self: &Arc<Self>) -> WatchGuard {
        self.watches.inc();
        WatchGuard(Arc::clone(self))
    }

    /// OpenMetrics text: the counters, and the fleet as `fleet` shows it.
    pub fn render(&self, fleet: &FleetSnapshot) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.fleet.replace(fleet);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Keeps a watch counted in `drover_api_watches`.
pub struct WatchGuard(Arc<Metrics>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watches.dec();
    }
}

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests;
