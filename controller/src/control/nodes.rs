//! Node registration, liveness and deletion.

use chrono::{DateTime, Utc};
use drover_proto::manifest::Kind;
use drover_proto::msg::{Heartbeat, Presence, PresenceState};
use drover_proto::topic::NodeTopic;
use tracing::{info, warn};

use super::enroll::LOCAL_TOKEN;
use super::{Control, NodeState};
use crate::metrics::Dropped;
use crate::mqtt::Outgoing;
use crate::nodes::{apply_readiness, recorded_ready_status, registered};
use crate::reconcile::node_lifecycle::{pod_status_for_node, Liveness, Readiness, UnknownCause};

const SOURCE: &str = "node-controller";

impl Control {
    pub(super) fn load_nodes(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        for node in self.store.list(Kind::Node, None)? {
            let recorded = match recorded_ready_status(&node).as_deref() {
                Some("True") => Some(Readiness::Ready),
                Some("False") => Some(Readiness::NotReady),
                Some(_) => Some(Readiness::Unknown(UnknownCause::SilentPastGrace)),
                None => None,
            };
            self.nodes.insert(
                node.name.clone(),
                NodeState {
                    liveness: Liveness::assumed_alive(now, self.mono(now)),
                    recorded,
                },
            );
        }
        Ok(())
    }

    /// A node's presence; `retained` when the broker delivered it from its store (an old
    /// announcement, e.g. from a broker restored from a snapshot, says nothing about two
    /// agents running now).
    pub(super) fn on_presence(
        &mut self,
        node: &str,
        presence: Presence,
        retained: bool,
        now: DateTime<Utc>,
    ) {
        if let PresenceState::Online(info) = &presence.state {
            if info.name != node {
                self.metrics.dropped(Dropped::Mismatch);
                warn!(node, claimed = %info.name, "dropped: presence names another node");
                return;
            }
        } else if !self.nodes.contains_key(node) {
            self.metrics.dropped(Dropped::UnknownNode);
            return;
        }
        let mono = self.mono(now);
        let state = self
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeState {
                liveness: Liveness::assumed_alive(now, mono),
                recorded: None,
            });
        let conflict = state
            .liveness
            .name_conflict(&presence)
            .filter(|_| !retained);
        let taken = state.liveness.on_presence(&presence, now, mono);
        if let Some(current) = conflict {
            // Said whether the announcement was taken (a copy with the same start and a
            // later connection number is) or not (an older start).
            self.name_conflict(node, presence.session.agent_start, current.agent_start, now);
        }
        if !taken {
            self.metrics.dropped(Dropped::Stale);
            return;
        }
        if let PresenceState::Online(info) = &presence.state {
            if let Err(e) = self.register(node, info, now) {
                warn!(node, error = %e, "cannot record node registration");
            }
        }
        self.refresh_readiness(node, now);
    }

    /// Two agents run under one name: an external broker (Mosquitto) lets each take the
    /// other's connection over, where the embedded one refuses the second. Said as a
    /// Warning event on the node (counted, not repeated, while they go on).
    fn name_conflict(&mut self, node: &str, older: u64, newer: u64, now: DateTime<Utc>) {
        warn!(node, older, newer, "two agents are connected as this node");
        let which = if older == newer {
            format!("another agent process of start {older} announced itself")
        } else {
            format!("agent start {older} announced itself after start {newer}")
        };
        let message = format!("two agents are connected as node {node}: {which} (a second agent with this node's name or a copy of its data directory); stop one of them");
        let recorded = self
            .store
            .get(Kind::Node, "", node)
            .and_then(|stored| match stored {
                Some(stored) => self.store.record_event(
                    &stored,
                    "Warning",
                    "NodeNameConflict",
                    &message,
                    SOURCE,
                    now,
                ),
                None => Ok(()),
            });
        if let Err(e) = recorded {
            warn!(node, error = %e, "cannot record the node name conflict");
        }
    }

    fn register(
        &mut self,
        node: &str,
        info: &drover_proto::msg::NodeInfo,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let existing = self.store.get(Kind::Node, "", node)?;
        let credential = self.store.credential(node)?;
        // The server's own agent is trusted with any label (its control-plane role).
        let trusted = credential.as_ref().is_some_and(|c| c.token == LOCAL_TOKEN);
        let mut updated = registered(existing.as_ref(), info, trusted, now);
        // Labels from the join token the node enrolled with: set by the operator, not by
        // the device.
        if let Some(credential) = credential {
            updated.labels.extend(credential.labels);
        }
        let stored = self.store.put(&updated)?;
        match existing {
            None => {
                info!(node, uid = %info.uid, "node registered");
                self.store.record_event(
                    &stored,
                    "Normal",
                    "RegisteredNode",
                    &format!("Node {node} registered"),
                    SOURCE,
                    now,
                )?;
            }
            Some(previous) if previous.uid != info.uid => {
                warn!(node, old = %previous.uid, new = %info.uid, "node identity changed");
                self.store.record_event(
                    &stored,
                    "Warning",
                    "NodeIdentityChanged",
                    &format!("an agent with identity {} replaced {} under this name (a reinstalled device, or two devices sharing a name)", info.uid, previous.uid),
                    SOURCE,
                    now,
                )?;
            }
            Some(_) => {}
        }
        if !info.container_runtime_problem.is_empty() {
            self.store.record_event(
                &stored,
                "Warning",
                "ContainerEngineUnavailable",
                &format!(
                    "pods with images cannot run here: {}",
                    info.container_runtime_problem
                ),
                SOURCE,
                now,
            )?;
        }
        self.ensure_desired(node)?;
        // A change of the node (its disk has space again, say) may let pending pods go
        // there: the scheduling pass of settle looks.
        self.workloads_changed();
        Ok(())
    }

    pub(super) fn on_heartbeat(&mut self, node: &str, heartbeat: Heartbeat, now: DateTime<Utc>) {
        let mono = self.mono(now);
        let Some(state) = self.nodes.get_mut(node) else {
            self.metrics.dropped(Dropped::UnknownNode);
            return;
        };
        if !state.liveness.on_heartbeat(&heartbeat, now, mono) {
            self.metrics.dropped(Dropped::Stale);
            return;
        }
        self.refresh_readiness(node, now);
    }

    /// Writes the node's readiness to the store when it changed.
    pub(super) fn refresh_readiness(&mut self, node: &str, now: DateTime<Utc>) {
        let Some(state) = self.nodes.get(node) else {
            return;
        };
        let readiness = state
            .liveness
            .readiness(self.mono(now), self.settings.node_monitor_grace_period);
        if state.recorded == Some(readiness) {
            return;
        }
        match self.record_readiness(node, readiness, now) {
            Ok(()) => {
                if let Some(state) = self.nodes.get_mut(node) {
                    state.recorded = Some(readiness);
                }
                if readiness == Readiness::Ready {
                    // Pending pods may go there now.
                    self.workloads_changed();
                }
            }
            Err(e) => warn!(node, error = %e, "cannot record node readiness"),
        }
    }

    fn record_readiness(
        &mut self,
        node: &str,
        readiness: Readiness,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(mut object) = self.store.get(Kind::Node, "", node)? else {
            return Ok(());
        };
        if !apply_readiness(&mut object, readiness, now) {
            return Ok(());
        }
        let stored = self.store.put(&object)?;
        self.mark_pods_of_node(node, readiness == Readiness::Ready)?;
        let (status, _, message) = readiness.condition();
        info!(node, ready = status, message, "node readiness changed");
        let (kind, reason) = match readiness {
            Readiness::Ready => ("Normal", "NodeReady"),
            _ => ("Warning", "NodeNotReady"),
        };
        self.store.record_event(
            &stored,
            kind,
            reason,
            &format!("Node {node} status is now: {reason} ({message})"),
            SOURCE,
            now,
        )?;
        Ok(())
    }

    /// Pods on a node that is not Ready are not ready; back on it, they are again.
    fn mark_pods_of_node(&mut self, node: &str, node_ready: bool) -> anyhow::Result<()> {
        let mut changed = false;
        for pod in self.store.list(Kind::Pod, None)? {
            if crate::pods::node_name(&pod) != Some(node) {
                continue;
            }
            let terminating = pod.deletion_timestamp.is_some();
            if let Some(status) = pod_status_for_node(&pod.status, node_ready, terminating) {
                let mut pod = std::sync::Arc::unwrap_or_clone(pod);
                pod.status = status;
                self.store.put(&pod)?;
                changed = true;
            }
        }
        if changed {
            self.workloads_changed();
        }
        Ok(())
    }

    /// The time the controller last heard from a node.
    pub(super) fn last_heard(&self, node: &str) -> Option<DateTime<Utc>> {
        self.nodes.get(node).map(|s| s.liveness.last_heard)
    }

    /// Removes a node from the fleet and revokes its credentials. Its retained presence is
    /// cleared so that a restarted controller does not resurrect it; to come back, its
    /// agent must enroll again with a new join token.
    pub(super) fn forget_node(&mut self, node: &str) -> anyhow::Result<()> {
        self.nodes.remove(node);
        self.desired_dirty.remove(node);
        self.awaited_echoes.remove(node);
        // Credentials first: whatever fails below, the node can no longer log in.
        self.revoke(node)?;
        // The agent may still run: an empty desired state (retained) stops its pods before
        // its connection is closed. It stays stored as the name's last generation, so an
        // older snapshot of the name can never pass for the newest.
        let previous = self.store.desired_state(node)?.map_or(0, |(g, _)| g);
        let generation = self.store.next_desired_generation(previous)?;
        let payload = self.publisher.send_sealed(
            NodeTopic::Desired.for_node(node),
            &drover_proto::Message::Desired(drover_proto::msg::DesiredState {
                generation,
                pods: Vec::new(),
                finished: Vec::new(),
            }),
            true,
        )?;
        self.store.set_desired_state(node, generation, &payload)?;
        self.publisher.send(Outgoing {
            topic: NodeTopic::Presence.for_node(node),
            payload: Vec::new(),
            retain: true,
        });
        Ok(())
    }
}
