//! The control loop: one task owns the store and the node table and handles, in order, API
//! requests, MQTT messages and timer ticks. No locks: everything that changes state passes
//! through here.

mod api;
mod daemonsets;
mod desired;
mod nodes;
mod pods;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_proto::topic::{parse_node_topic, NodeTopic};
use drover_proto::{decode, Message};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

pub use api::{ApiError, ApiRequest, ApiResult};

use crate::metrics::{Dropped, Metrics};
use crate::mqtt::{MqttInput, Publisher};
use crate::reconcile::node_lifecycle::{Liveness, Readiness};
use crate::store::Store;

/// Everything the control loop reacts to.
#[derive(Debug)]
pub enum Input {
    /// A request from the HTTP API, with where to send the answer.
    Api(ApiRequest, oneshot::Sender<ApiResult>),
    /// Something from the broker.
    Mqtt(MqttInput),
}

/// Settings of the control loop.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// How long a node may stay silent before it is `Ready=Unknown`.
    pub node_monitor_grace_period: Duration,
}

/// What the controller tracks per node in memory.
#[derive(Debug, Clone)]
struct NodeState {
    liveness: Liveness,
    /// Readiness last written to the store.
    recorded: Option<Readiness>,
}

/// The control loop's state.
pub struct Control {
    store: Store,
    nodes: HashMap<String, NodeState>,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    settings: ControlSettings,
    ds_backoff: daemonsets::DsBackoff,
    /// When DaemonSets must be reconciled again without any new input.
    ds_wake: Option<DateTime<Utc>>,
}

/// How often readiness deadlines are checked.
pub const TICK: Duration = Duration::from_millis(250);

impl Control {
    /// Loads the node table from the store; every known node gets one grace period from
    /// `now` to be heard from.
    pub fn new(
        store: Store,
        publisher: Publisher,
        metrics: Arc<Metrics>,
        settings: ControlSettings,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Control> {
        let mut control = Control {
            store,
            nodes: HashMap::new(),
            publisher,
            metrics,
            settings,
            ds_backoff: Default::default(),
            ds_wake: None,
        };
        control.load_nodes(now)?;
        control.reconcile_daemonsets(now)?;
        Ok(control)
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input, now: DateTime<Utc>) {
        match input {
            Input::Api(request, reply) => {
                let result = self.handle_api(request, now);
                let _ = reply.send(result);
            }
            Input::Mqtt(MqttInput::Connected) => self.republish_all_desired(),
            Input::Mqtt(MqttInput::Message { topic, payload }) => {
                self.handle_message(&topic, &payload, now)
            }
        }
    }

    fn handle_message(&mut self, topic: &str, payload: &[u8], now: DateTime<Utc>) {
        self.metrics.received();
        let Some((node, kind)) = parse_node_topic(topic) else {
            self.metrics.dropped(Dropped::Topic);
            warn!(topic, "dropped: topic outside the drover scheme");
            return;
        };
        // An empty retained message is how presence is cleared (e.g. after `delete node`).
        if payload.is_empty() && kind == NodeTopic::Presence {
            return;
        }
        let message = match decode(payload) {
            Ok(m) => m,
            Err(error) => {
                self.metrics.dropped(Dropped::Decode);
                warn!(topic, bytes = payload.len(), %error, "dropped: undecodable payload");
                return;
            }
        };
        match (kind, message) {
            (NodeTopic::Presence, Message::Presence(p)) => self.on_presence(node, p, now),
            (NodeTopic::Heartbeat, Message::Heartbeat(h)) => self.on_heartbeat(node, h, now),
            (NodeTopic::Status, Message::Status(report)) => self.on_status(node, report, now),
            (kind, message) => {
                self.metrics.dropped(Dropped::Mismatch);
                warn!(
                    topic,
                    message = message.name(),
                    expected = kind.leaf(),
                    "dropped: message type does not belong on this topic"
                );
            }
        }
    }

    /// Reconciles the workload controllers after a change of nodes or pods.
    pub(super) fn reconcile_all(&mut self, now: DateTime<Utc>) {
        if let Err(e) = self.reconcile_daemonsets(now) {
            warn!(error = %e, "cannot reconcile daemonsets");
        }
    }

    /// Re-evaluates time-dependent state (node grace periods).
    pub fn tick(&mut self, now: DateTime<Utc>) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.refresh_readiness(&name, now);
        }
        if self.ds_wake.is_some_and(|at| at <= now) {
            self.reconcile_all(now);
        }
    }
}

/// Runs the control loop until the input channel closes.
pub async fn run(mut control: Control, mut inputs: mpsc::Receiver<Input>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => control.handle(input, Utc::now()),
                None => return,
            },
            _ = ticker.tick() => control.tick(Utc::now()),
        }
    }
}

#[cfg(test)]
mod tests;
