//! Each node's desired state: one retained snapshot, republished whenever the controller's
//! broker session starts (an embedded broker forgets retained messages).

use drover_proto::msg::{DesiredPod, DesiredState};
use drover_proto::topic::NodeTopic;
use drover_proto::{encode, Message};
use tracing::warn;

use std::collections::BTreeMap;

use drover_proto::manifest::Kind;

use super::Control;
use crate::mqtt::Outgoing;
use crate::pods::{desired_pod, is_terminal, node_name};

impl Control {
    /// Notes that `node`'s desired state may have changed; [`Control::flush_desired`]
    /// publishes it (once, however many changes came before).
    pub(super) fn ensure_desired(&mut self, node: &str) -> anyhow::Result<()> {
        self.desired_dirty.insert(node.to_string());
        Ok(())
    }

    /// Publishes the desired state of every node noted since the last flush whose pods
    /// changed, with a new generation. One pass over the pods serves them all.
    pub(super) fn flush_desired(&mut self) {
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
        let mut by_node: BTreeMap<&str, (Vec<DesiredPod>, Vec<String>)> = nodes
            .iter()
            .map(|n| (n.as_str(), Default::default()))
            .collect();
        for pod in &pods {
            if pod.deletion_timestamp.is_some() {
                continue;
            }
            let Some((running, finished)) = node_name(pod).and_then(|n| by_node.get_mut(n)) else {
                continue;
            };
            // A finished pod whose final status came from its agent travels as a UID only:
            // snapshots stay small however many pods a node has finished.
            if is_terminal(pod) && pod.agent_revision > 0 {
                finished.push(pod.uid.clone());
                continue;
            }
            match desired_pod(pod) {
                Ok(p) => running.push(p),
                Err(e) => warn!(pod = %pod.name, error = %e, "cannot send a pod to its node"),
            }
        }
        for (node, (pods, finished)) in by_node {
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

    /// Publishes `state` (its generation is assigned here) unless it equals the last one.
    fn publish_if_changed(&mut self, node: &str, mut state: DesiredState) -> anyhow::Result<()> {
        let previous = self.store.desired_state(node)?;
        state.generation = match previous {
            Some((generation, payload)) => {
                // The same content encodes to the same bytes under the same generation.
                state.generation = generation;
                if encode(&Message::Desired(state.clone()))? == payload {
                    return Ok(());
                }
                generation + 1
            }
            None => 1,
        };
        let generation = state.generation;
        let payload = encode(&Message::Desired(state))?;
        self.store.set_desired_state(node, generation, &payload)?;
        self.publish_desired(node, payload);
        Ok(())
    }

    fn publish_desired(&self, node: &str, payload: Vec<u8>) {
        let _ = self.publisher.send(Outgoing {
            topic: NodeTopic::Desired.for_node(node),
            payload,
            retain: true,
        });
    }

    pub(super) fn republish_all_desired(&mut self) {
        match self.store.desired_states() {
            Ok(states) => {
                for (node, _, payload) in states {
                    self.publish_desired(&node, payload);
                }
            }
            Err(e) => warn!(error = %e, "cannot read desired states to republish"),
        }
    }
}
