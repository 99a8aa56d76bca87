//! Each node's desired state: one retained snapshot, republished whenever the controller's
//! broker session starts (an embedded broker forgets retained messages).

use chrono::{DateTime, Utc};
use drover_proto::msg::{DesiredPod, DesiredState};
use drover_proto::topic::NodeTopic;
use drover_proto::Message;
use tracing::warn;

use std::collections::BTreeMap;

use drover_proto::manifest::Kind;

use super::Control;
use crate::mqtt::Outgoing;
use crate::pods::{desired_pod, is_terminal, node_name};

/// How many echoes of a node's desired states are awaited at most (an echo lost with a
/// connection is forgotten at the next one).
const AWAITED_ECHOES: usize = 16;

/// A node's pods to run, and its finished pods' (resourceVersion, UID).
type NodePods = (Vec<DesiredPod>, Vec<(u64, String)>);

/// Finished pods listed in a node's desired state, newest first; well below the wire's
/// bound on list lengths, and above any agent's sensible `--max-finished-pods`.
pub const MAX_FINISHED_LISTED: usize = 1000;

impl Control {
    /// Notes that `node`'s desired state may have changed; [`Control::flush_desired`]
    /// publishes it (once, however many changes came before).
    pub(super) fn ensure_desired(&mut self, node: &str) -> anyhow::Result<()> {
        self.desired_dirty.insert(node.to_string());
        Ok(())
    }

    /// Publishes the desired state of every node noted since the last flush whose pods
    /// changed, with a new generation. One pass over the pods serves them all.
    ///
    /// At most [`MAX_FINISHED_LISTED`] finished pods are listed per node.
    pub(super) fn flush_desired(&mut self, now: DateTime<Utc>) {
        if self.desired_dirty.is_empty() {
            return;
        }
        let nodes = std::mem::take(&mut self.desired_dirty);
        let pods = match self.store.list(Kind::Pod, None) {
            Ok(pods) => pods,
            Err(e) => {
                warn!(error = %e, "cannot read pods for desired states");
                self.desired_dirty = nodes;
                return;
            }
        };
        let mut by_node: BTreeMap<&str, NodePods> = nodes
            .iter()
            .map(|n| (n.as_str(), Default::default()))
            .collect();
        // Each node's object, for what the downward API gives its pods.
        let node_objects: BTreeMap<&str, Option<crate::store::StoredObject>> = nodes
            .iter()
            .map(|n| (n.as_str(), self.store.get(Kind::Node, "", n).ok().flatten()))
            .collect();
        let mut unsent = Vec::new();
        for pod in &pods {
            if pod.deletion_timestamp.is_some() {
                continue;
            }
            let Some(node) = node_name(pod) else {
                continue;
            };
            let Some((running, finished)) = by_node.get_mut(node) else {
                continue;
            };
            // A finished pod whose final status came from its agent travels as a UID only:
            // snapshots stay small however many pods a node has finished.
            if is_terminal(pod) && pod.agent_revision > 0 {
                finished.push((pod.resource_version, pod.uid.clone()));
                continue;
            }
            match desired_pod(pod, node_objects.get(node).and_then(Option::as_ref)) {
                Ok(p) => running.push(p),
                Err(e) => {
                    warn!(pod = %pod.name, error = %e, "cannot send a pod to its node");
                    unsent.push((pod.clone(), e));
                }
            }
        }
        // Said on the pod too (a repeat counts up the same event), so `describe` shows why
        // it waits.
        for (pod, why) in unsent {
            let message = format!("Error: not sent to its node: {why}");
            if let Err(e) = self.store.record_event(
                &pod,
                "Warning",
                "Failed",
                &message,
                "drover-controller",
                now,
            ) {
                warn!(pod = %pod.name, error = %e, "cannot record why a pod waits");
            }
        }
        for (node, (pods, mut finished)) in by_node {
            // The newest finished pods only (the latest written last): a node that finished
            // thousands keeps the snapshot within the wire's bounds, and its agent forgets
            // the older ones, whose status the controller keeps.
            finished.sort_unstable_by(|a, b| b.cmp(a));
            finished.truncate(MAX_FINISHED_LISTED);
            let finished = finished.into_iter().map(|(_, uid)| uid).collect();
            if let Err(e) = self.publish_if_changed(
                node,
                DesiredState {
                    generation: 0,
                    pods,
                    finished,
                },
            ) {
                warn!(node, error = %e, "cannot publish the desired state");
            }
        }
    }

    /// Publishes `state`, sealed (its generation is assigned here), unless it equals the
    /// last one.
    fn publish_if_changed(&mut self, node: &str, mut state: DesiredState) -> anyhow::Result<()> {
        let topic = NodeTopic::Desired.for_node(node);
        let previous = self.store.desired_state(node)?;
        if let Some((generation, payload)) = &previous {
            // The same content under the same generation seals to the same bytes
            // (Ed25519 signatures are deterministic).
            state.generation = *generation;
            if self
                .security
                .session
                .seal(&topic, &Message::Desired(state.clone()))?
                == *payload
            {
                return Ok(());
            }
        }
        let generation = self
            .store
            .next_desired_generation(previous.map_or(0, |(g, _)| g))?;
        state.generation = generation;
        let payload = self
            .security
            .session
            .seal(&topic, &Message::Desired(state))?;
        self.store.set_desired_state(node, generation, &payload)?;
        self.await_echo(node, generation);
        self.publish_desired(node, payload);
        Ok(())
    }

    /// Notes that the broker will hand back the desired state of `generation` just
    /// published for `node`.
    fn await_echo(&mut self, node: &str, generation: u64) {
        let awaited = self.awaited_echoes.entry(node.to_string()).or_default();
        awaited.push_back(generation);
        if awaited.len() > AWAITED_ECHOES {
            awaited.pop_front();
        }
    }

    /// `node`'s retained desired state was cleared: an agent that connects later would get
    /// nothing, so the controller's own goes out again.
    pub(super) fn on_desired_cleared(&mut self, node: &str) {
        match self.store.desired_state(node) {
            Ok(Some((_, payload))) => {
                self.metrics.dropped_reason("foreign_desired");
                warn!(
                    node,
                    "the node's desired state was cleared on the broker; publishing it again"
                );
                self.publish_desired(node, payload);
            }
            Ok(None) => {}
            Err(e) => warn!(node, error = %e, "cannot read the desired state"),
        }
    }

    /// A desired state appeared on `node`'s topic: unless it is the controller's newest,
    /// the controller's own goes out again (a forged or replayed one is counted).
    pub(super) fn on_desired_seen(&mut self, node: &str, ours: Option<DesiredState>) {
        let stored = match self.store.desired_state(node) {
            Ok(stored) => stored,
            Err(e) => {
                warn!(node, error = %e, "cannot read the desired state");
                return;
            }
        };
        let newest = stored.as_ref().map_or(0, |(g, _)| *g);
        let generation = ours.as_ref().map(|d| d.generation);
        let current = generation.is_some_and(|g| g >= newest);
        // The broker hands the controller each of its publishes back once, possibly after a
        // newer one was stored: that echo is not a replay, a second copy is.
        let echo = generation.is_some_and(|g| {
            self.awaited_echoes.get_mut(node).is_some_and(|awaited| {
                let found = awaited.iter().position(|a| *a == g);
                found.map(|i| awaited.remove(i)).is_some()
            })
        });
        if current || echo {
            return;
        }
        self.metrics.dropped_reason(if ours.is_some() {
            "stale_desired"
        } else {
            "foreign_desired"
        });
        warn!(node, "a desired state the controller did not publish (or an older one) is on the node's topic; publishing the controller's own");
        match stored {
            Some((_, payload)) => self.publish_desired(node, payload),
            None => self.publisher.send(Outgoing {
                topic: NodeTopic::Desired.for_node(node),
                payload: Vec::new(),
                retain: true,
            }),
        }
    }

    fn publish_desired(&self, node: &str, payload: Vec<u8>) {
        self.publisher.send(Outgoing {
            topic: NodeTopic::Desired.for_node(node),
            payload,
            retain: true,
        });
    }

    pub(super) fn republish_all_desired(&mut self) {
        // A new broker session: echoes of the last one will not come.
        self.awaited_echoes.clear();
        match self.store.desired_states() {
            Ok(states) => {
                for (node, generation, payload) in states {
                    self.await_echo(&node, generation);
                    self.publish_desired(&node, payload);
                }
            }
            Err(e) => warn!(error = %e, "cannot read desired states to republish"),
        }
    }
}
