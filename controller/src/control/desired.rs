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
use crate::pods::{desired_pod, node_name};

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
        let mut by_node: BTreeMap<&str, Vec<DesiredPod>> =
            nodes.iter().map(|n| (n.as_str(), Vec::new())).collect();
        for pod in &pods {
            if pod.deletion_timestamp.is_some() {
                continue;
            }
            let Some(list) = node_name(pod).and_then(|n| by_node.get_mut(n)) else {
                continue;
            };
            match desired_pod(pod) {
                Ok(p) => list.push(p),
                Err(e) => warn!(pod = %pod.name, error = %e, "cannot send a pod to its node"),
            }
        }
        for (node, pods) in by_node {
            if let Err(e) = self.publish_if_changed(node, pods) {
                warn!(node, error = %e, "cannot publish the desired state");
            }
        }
    }

    fn publish_if_changed(&mut self, node: &str, pods: Vec<DesiredPod>) -> anyhow::Result<()> {
        let previous = self.store.desired_state(node)?;
        let generation = match previous {
            Some((generation, payload)) => {
                // Same pods encode to the same bytes under the same generation.
                let same = encode(&Message::Desired(DesiredState {
                    generation,
                    pods: pods.clone(),
                }))?;
                if same == payload {
                    return Ok(());
                }
                generation + 1
            }
            None => 1,
        };
        let payload = encode(&Message::Desired(DesiredState { generation, pods }))?;
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
