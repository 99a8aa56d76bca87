//! The fleet as gauges: nodes by condition, pods by phase and node, each Job's and each
//! DaemonSet's progress. Taken from the store at scrape time, so a gauge never drifts from
//! what the API shows.

use drover_proto::phase::PodPhase;
use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::store::StoredObject;

/// One Job's or DaemonSet's pod counts (`active`, `succeeded`, … or `desired`, `ready`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectProgress {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// (state, pods).
    pub counts: Vec<(&'static str, i64)>,
}

/// What the store holds, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetSnapshot {
    /// (condition type, status) → nodes.
    pub node_conditions: BTreeMap<(String, String), i64>,
    /// (phase, node; empty when unscheduled) → pods.
    pub pods: BTreeMap<(String, String), i64>,
    /// Per Job.
    pub jobs: Vec<ObjectProgress>,
    /// Per DaemonSet.
    pub daemonsets: Vec<ObjectProgress>,
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn count(status: &Value, field: &str) -> i64 {
    status[field].as_i64().unwrap_or(0)
}

const JOB_STATES: [(&str, &str); 4] = [
    ("active", "active"),
    ("ready", "ready"),
    ("succeeded", "succeeded"),
    ("failed", "failed"),
];

const DAEMONSET_STATES: [(&str, &str); 5] = [
    ("desired", "desiredNumberScheduled"),
    ("current", "currentNumberScheduled"),
    ("ready", "numberReady"),
    ("updated", "updatedNumberScheduled"),
    ("available", "numberAvailable"),
];

impl FleetSnapshot {
    /// Counts nodes, pods, Jobs and DaemonSets as stored.
    pub fn count<'a>(
        nodes: impl IntoIterator<Item = &'a StoredObject>,
        pods: impl IntoIterator<Item = &'a StoredObject>,
        jobs: impl IntoIterator<Item = &'a StoredObject>,
        daemonsets: impl IntoIterator<Item = &'a StoredObject>,
    ) -> FleetSnapshot {
        let mut snapshot = FleetSnapshot::default();
        for node in nodes {
            for condition in node.status["conditions"].as_array().into_iter().flatten() {
                *snapshot
                    .node_conditions
                    .entry((text(&condition["type"]), text(&condition["status"])))
                    .or_default() += 1;
            }
        }
        for pod in pods {
            let phase = match pod.status["phase"].as_str() {
                Some(phase) => phase.to_string(),
                None => PodPhase::Pending.as_str().to_string(),
            };
            *snapshot
                .pods
                .entry((phase, text(&pod.spec["nodeName"])))
                .or_default() += 1;
        }
        let progress = |object: &StoredObject, states: &[(&'static str, &str)]| ObjectProgress {
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            counts: states
                .iter()
                .map(|(state, field)| (*state, count(&object.status, field)))
                .collect(),
        };
        snapshot.jobs = jobs.into_iter().map(|j| progress(j, &JOB_STATES)).collect();
        snapshot.daemonsets = daemonsets
            .into_iter()
            .map(|d| progress(d, &DAEMONSET_STATES))
            .collect();
        snapshot
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    condition: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodLabels {
    phase: String,
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    namespace: String,
    job: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DaemonSetLabels {
    namespace: String,
    daemonset: String,
    state: String,
}

/// The registered gauge families, refilled at each scrape.
pub(super) struct FleetGauges {
    nodes: Family<ConditionLabels, Gauge>,
    pods: Family<PodLabels, Gauge>,
    jobs: Family<JobLabels, Gauge>,
    daemonsets: Family<DaemonSetLabels, Gauge>,
}

impl FleetGauges {
    pub(super) fn register(registry: &mut Registry) -> FleetGauges {
        let gauges = FleetGauges {
            nodes: Family::default(),
            pods: Family::default(),
            jobs: Family::default(),
            daemonsets: Family::default(),
        };
        registry.register(
            "nodes",
            "Nodes by condition type and status",
            gauges.nodes.clone(),
        );
        registry.register(
            "pods",
            "Pods by phase and node (empty node: not scheduled)",
            gauges.pods.clone(),
        );
        registry.register(
            "job_pods",
            "Each Job's pods by state (active, ready, succeeded, failed)",
            gauges.jobs.clone(),
        );
        registry.register(
            "daemonset_pods",
            "Each DaemonSet's pods by state (desired, current, ready, updated, available)",
            gauges.daemonsets.clone(),
        );
        gauges
    }

    /// Replaces every series with the snapshot's, so deleted objects' series go away.
    pub(super) fn replace(&self, snapshot: &FleetSnapshot) {
        self.nodes.clear();
        for ((condition, status), n) in &snapshot.node_conditions {
            self.nodes
                .get_or_create(&ConditionLabels {
                    condition: condition.clone(),
                    status: status.clone(),
                })
                .set(*n);
        }
        self.pods.clear();
        for ((phase, node), n) in &snapshot.pods {
            self.pods
                .get_or_create(&PodLabels {
                    phase: phase.clone(),
                    node: node.clone(),
                })
                .set(*n);
        }
        self.jobs.clear();
        for job in &snapshot.jobs {
            for (state, n) in &job.counts {
                self.jobs
                    .get_or_create(&JobLabels {
                        namespace: job.namespace.clone(),
                        job: job.name.clone(),
                        state: (*state).into(),
                    })
                    .set(*n);
            }
        }
        self.daemonsets.clear();
        for ds in &snapshot.daemonsets {
            for (state, n) in &ds.counts {
                self.daemonsets
                    .get_or_create(&DaemonSetLabels {
                        namespace: ds.namespace.clone(),
                        daemonset: ds.name.clone(),
                        state: (*state).into(),
                    })
                    .set(*n);
            }
        }
    }
}
