//! The embedded broker's own counters, read at scrape time.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::broker::BrokerHandle;

/// Encodes the broker's counters when a broker is running here (not with an external one).
pub(super) struct BrokerCollector(pub(super) Arc<OnceLock<BrokerHandle>>);

impl std::fmt::Debug for BrokerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerCollector")
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(broker) = self.0.get() else {
            return Ok(());
        };
        let stats = broker.stats();
        let connections = ConstGauge::new(stats.connections_now as i64);
        connections.encode(encoder.encode_descriptor(
            "broker_connections",
            "Connections open on the embedded broker",
            None,
            connections.metric_type(),
        )?)?;
        let mut events = encoder.encode_descriptor(
            "broker_events",
            "What the embedded broker did and refused, by kind",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (event, count) in stats.named() {
            if event != "connections_now" {
                ConstCounter::new(count).encode(events.encode_family(&[("event", event)])?)?;
            }
        }
        Ok(())
    }
}
