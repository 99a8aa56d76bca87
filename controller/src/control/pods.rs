//! Bare pods: placement on nodes, agent status reports, and graceful deletion.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use drover_proto::manifest::{Kind, PodReplacementPolicy, Taint};
use drover_proto::msg::{StatusAck, StatusReport};
use drover_proto::topic::NodeTopic;
use drover_proto::Message;
use serde_json::Value;
use tracing::{info, warn};

use super::Control;
use crate::metrics::Dropped;
use crate::pods::{node_name, pod_spec, status_from_report, unschedulable_message};
use crate::reconcile::action::ObjectKey;
use crate::reconcile::node_lifecycle::{pod_status_for_node, Readiness};
use crate::reconcile::pod_deletion::{deletion, Deletion, NodeState};
use crate::reconcile::scheduler::{schedule, NodeView, PendingPod};
use crate::store::StoredObject;

pub(super) const SCHEDULER: &str = "drover-scheduler";

/// Most agent events recorded from one status report; the rest are dropped.
pub(super) const MAX_EVENTS_PER_REPORT: usize = 256;

impl Control {
    /// Whether a node is currently Ready.
    pub(super) fn node_ready(&self, node: &str) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|s| s.recorded == Some(Readiness::Ready))
    }

    pub(super) fn node_views(&self) -> anyhow::Result<Vec<NodeView>> {
        Ok(self
            .store
            .list(Kind::Node, None)?
            .into_iter()
            .map(|n| NodeView {
                ready: self.node_ready(&n.name),
                unschedulable: n
                    .spec
                    .get("unschedulable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                taints: n
                    .spec
                    .get("taints")
                    .and_then(|t| serde_json::from_value::<Vec<Taint>>(t.clone()).ok())
                    .unwrap_or_default(),
                labels: n.labels.clone(),
                name: n.name.clone(),
            })
            .collect())
    }

    /// Places every pod that has no node yet; updates the desired state of nodes that got
    /// pods.
    pub(super) fn schedule_pending(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let pods = self.store.list(Kind::Pod, None)?;
        if !pods
            .iter()
            .any(|p| node_name(p).is_none() && p.deletion_timestamp.is_none())
        {
            return Ok(());
        }
        let nodes = self.node_views()?;
        let mut active: HashMap<String, usize> = HashMap::new();
        for pod in &pods {
            if let Some(node) = node_name(pod) {
                if !crate::pods::is_terminal(pod) {
                    *active.entry(node.to_string()).or_default() += 1;
                }
            }
        }
        let mut waiting = Vec::new();
        for pod in &pods {
            if node_name(pod).is_some() || pod.deletion_timestamp.is_some() {
                continue;
            }
            match pod_spec(pod) {
                Ok(spec) => waiting.push(PendingPod {
                    key: ObjectKey::new(Kind::Pod, &pod.namespace, &pod.name),
                    spec,
                    unschedulable: unschedulable_message(pod),
                }),
                Err(e) => warn!(pod = %pod.name, error = %e, "cannot schedule"),
            }
        }
        let actions = schedule(&waiting, &nodes, active);
        self.execute(SCHEDULER, actions, now)
    }

    /// A pod was applied: bound pods go to their node's desired state, others are placed.
    pub(super) fn pod_applied(&mut self, pod: &StoredObject) -> anyhow::Result<()> {
        match node_name(pod) {
            Some(node) => {
                let node = node.to_string();
                self.ensure_desired(&node)
            }
            None => {
                // Placed by the scheduling pass of this turn's settle.
                self.workloads_changed();
                Ok(())
            }
        }
    }

    /// Deletes a pod as [`deletion`] decides: marked Terminating and out of its node's
    /// desired state (the agent's report that the pod stopped completes the deletion), or
    /// at once.
    pub(super) fn delete_pod(
        &mut self,
        mut pod: StoredObject,
        now: DateTime<Utc>,
    ) -> anyhow::Result<StoredObject> {
        let node = node_name(&pod).map(str::to_string);
        let state = match &node {
            Some(node) if self.node_ready(node) => NodeState::Ready,
            Some(node) if self.nodes.contains_key(node) => NodeState::Unreachable,
            _ => NodeState::None,
        };
        let held = !pod
            .annotations
            .contains_key(super::jobs::DELETED_BY_CONTROLLER)
            && self.replacement_policy_of(&pod)? == Some(PodReplacementPolicy::Failed);
        match (deletion(state, held), node) {
            (Deletion::Graceful, Some(node)) => {
                if pod.deletion_timestamp.is_none() {
                    pod.deletion_timestamp = Some(now);
                    pod = self.store.put(&pod)?;
                    self.ensure_desired(&node)?;
                }
                Ok(pod)
            }
            (_, node) => {
                self.count_removed_job_pod(&pod, now)?;
                self.store.delete(Kind::Pod, &pod.namespace, &pod.name)?;
                if let Some(node) = node {
                    self.ensure_desired(&node)?;
                }
                Ok(pod)
            }
        }
    }

    /// Deletes every pod bound to a node that left the fleet.
    pub(super) fn delete_pods_of_node(
        &mut self,
        node: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        for pod in self.store.list(Kind::Pod, None)? {
            if node_name(&pod) == Some(node) {
                info!(pod = %pod.name, node, "deleting a pod of a removed node");
                self.count_removed_job_pod(&pod, now)?;
                self.store.delete(Kind::Pod, &pod.namespace, &pod.name)?;
            }
        }
        Ok(())
    }

    /// Applies an agent's status report, then acknowledges every revision it has stored
    /// (or already had). Applying is idempotent by pod UID and revision.
    pub(super) fn on_status(&mut self, node: &str, report: StatusReport, now: DateTime<Utc>) {
        if !self.nodes.contains_key(node) {
            self.metrics.dropped(Dropped::UnknownNode);
            return;
        }
        let host_ip = self
            .store
            .get(Kind::Node, "", node)
            .ok()
            .flatten()
            .and_then(|n| {
                n.status["addresses"]
                    .as_array()
                    .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
                    .and_then(|a| a["address"].as_str().map(str::to_string))
            });
        let mut acks = Vec::new();
        let mut owned_pods_changed = false;
        for status in &report.pods {
            owned_pods_changed |= self
                .store
                .get_by_uid(&status.uid)
                .ok()
                .flatten()
                .is_some_and(|p| p.owner_references.as_array().is_some_and(|r| !r.is_empty()));
            match self.apply_pod_status(node, status, host_ip.as_deref(), now) {
                Ok(true) => acks.push((status.uid.clone(), status.revision)),
                Ok(false) => {}
                Err(e) => {
                    warn!(node, uid = %status.uid, error = %e, "cannot store a pod status; it will be resent")
                }
            }
        }
        if owned_pods_changed {
            self.workloads_changed();
        }
        // Events only about this node's own pods, and a bounded number per report.
        for event in report.events.iter().take(MAX_EVENTS_PER_REPORT) {
            if let Ok(Some(pod)) = self.store.get_by_uid(&event.pod_uid) {
                if pod.kind != Kind::Pod || node_name(&pod) != Some(node) {
                    self.metrics.dropped_reason("foreign_event");
                    continue;
                }
                let at = DateTime::<Utc>::from_timestamp_millis(event.at_ms).unwrap_or(now);
                let kind = if event.warning { "Warning" } else { "Normal" };
                let _ = self.store.record_event(
                    &pod,
                    kind,
                    &event.reason,
                    &event.message,
                    &format!("agent/{node}"),
                    at,
                );
            }
        }
        if !acks.is_empty() {
            if let Err(e) = self.publisher.send_sealed(
                NodeTopic::Ack.for_node(node),
                &Message::Ack(StatusAck { pods: acks }),
                false,
            ) {
                warn!(error = %e, "cannot encode an acknowledgement");
            }
        }
    }

    /// Stores one pod status; true when its revision may be acknowledged (stored now or
    /// before), false when the report is not about a pod of this node.
    fn apply_pod_status(
        &mut self,
        node: &str,
        status: &drover_proto::msg::WirePodStatus,
        host_ip: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let Some(mut pod) = self.store.get_by_uid(&status.uid)? else {
            // Deleted meanwhile: acknowledging lets the agent forget it.
            return Ok(true);
        };
        if pod.kind != Kind::Pod || node_name(&pod) != Some(node) {
            self.metrics.dropped(Dropped::Mismatch);
            return Ok(false);
        }
        if status.revision <= pod.agent_revision {
            return Ok(true);
        }
        if status.removed && pod.deletion_timestamp.is_some() {
            // The report's final state decides how a Job counts the pod (it may have
            // finished while its node was out of reach); a DisruptionTarget the controller
            // set stays, for the Job's podFailurePolicy.
            let disruption = pod.status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "DisruptionTarget"))
                .cloned();
            pod.status = status_from_report(status, &pod.spec, host_ip);
            if let Some(disruption) = disruption {
                if let Some(conditions) = pod.status["conditions"].as_array_mut() {
                    conditions.retain(|c| c["type"] != "DisruptionTarget");
                    conditions.push(disruption);
                }
            }
            self.count_removed_job_pod(&pod, now)?;
            self.store.delete(Kind::Pod, &pod.namespace, &pod.name)?;
            return Ok(true);
        }
        let previous = std::mem::replace(
            &mut pod.status,
            status_from_report(status, &pod.spec, host_ip),
        );
        if !self.node_ready(node) {
            // A report that arrives before its node counts as Ready again vouches for
            // nothing yet: the pod is marked ready when the node is.
            let terminating = pod.deletion_timestamp.is_some();
            if let Some(marked) = pod_status_for_node(&pod.status, false, terminating) {
                pod.status = marked;
            }
        }
        crate::pods::stamp_transitions(&mut pod.status, &previous, now);
        pod.agent_revision = status.revision;
        self.store.put(&pod)?;
        Ok(true)
    }
}
