//! Each node's desired state: one retained snapshot, republished whenever the controller's
//! broker session starts (an embedded broker forgets retained messages).

use drover_proto::msg::{DesiredPod, DesiredState};
use drover_proto::topic::NodeTopic;
use drover_proto::{decode, encode, Message};
use tracing::warn;

use drover_proto::manifest::Kind;

use super::Control;
use crate::mqtt::Outgoing;
use crate::pods::{desired_pod, node_name};

impl Control {
    /// The pods `node` should run: those bound to it and not being deleted.
    fn desired_pods(&self, node: &str) -> anyhow::Result<Vec<DesiredPod>> {
        let mut pods = Vec::new();
        for pod in self.store.list(Kind::Pod, None)? {
            if node_name(&pod) != Some(node) || pod.deletion_timestamp.is_some() {
                continue;
            }
            match desired_pod(&pod) {
                Ok(p) => pods.push(p),
                Err(e) => warn!(pod = %pod.name, error = %e, "cannot send a pod to its node"),
            }
        }
        Ok(pods)
    }

    /// Publishes the node's desired state if it changed (or was never published), with a
    /// new generation.
    pub(super) fn ensure_desired(&mut self, node: &str) -> anyhow::Result<()> {
        let pods = self.desired_pods(node)?;
        let previous = self.store.desired_state(node)?;
        let generation = match &previous {
            Some((generation, payload)) => match decode(payload) {
                Ok(Message::Desired(d)) if d.pods == pods => return Ok(()),
                _ => generation + 1,
            },
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
