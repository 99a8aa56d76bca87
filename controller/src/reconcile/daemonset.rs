//! The DaemonSet reconciler: from a DaemonSet, the nodes, its pods and the time, the pods to
//! create and delete, and the status. No I/O; level-triggered (the same inputs give the same
//! answer, whatever happened before).
//!
//! Rules (spec §4): one pod per eligible node, pinned to it; pods on nodes that left or
//! stopped being eligible go; failed pods are replaced after a back-off of 1 s doubling to
//! 15 min; of two pods on a node the oldest stays; template changes roll out under
//! `maxUnavailable`/`maxSurge`, or wait for deletions with `OnDelete`.

pub mod pods;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_proto::manifest::{
    DaemonSetSpec, IntOrPercent, PodSpec, TaintEffect, Toleration, TolerationOperator,
    UpdateStrategyType,
};

use super::clock::Mono;
use super::scheduler::{unfit_reason, NodeView};

/// Label carrying the hash of the template a pod was made from.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

pub use drover_proto::phase::PodPhase;

/// One pod of the DaemonSet.
#[derive(Debug, Clone, PartialEq)]
pub struct DsPod {
    /// Pod name.
    pub name: String,
    /// Node it is bound to.
    pub node: String,
    /// Its `controller-revision-hash`.
    pub hash: String,
    /// Phase.
    pub phase: PodPhase,
    /// Since when every container has been ready (None: not ready).
    pub ready_since: Option<DateTime<Utc>>,
    /// Creation time (the oldest of two pods on a node stays).
    pub created: DateTime<Utc>,
    /// Being deleted.
    pub terminating: bool,
}

/// Failed-pod replacement back-off on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBackoff {
    /// Failures so far.
    pub failures: u32,
    /// No replacement before this time (monotonic: a wall-clock step neither cuts the
    /// back-off short nor stretches it).
    pub retry_at: Mono,
}

/// First replacement delay after a failed daemon pod.
pub const FAILURE_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest replacement delay.
pub const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

impl FailureBackoff {
    /// The back-off after one more failure at `now`.
    pub fn after_failure(previous: Option<FailureBackoff>, now: Mono) -> FailureBackoff {
        let failures = previous.map_or(0, |b| b.failures) + 1;
        FailureBackoff {
            failures,
            retry_at: now.plus(failure_delay(failures)),
        }
    }

    /// The back-off of `failures` failures, the last at wall time `failed_at`, for a
    /// controller started again at `now` (wall) and `mono`: what remained of the delay then
    /// remains now. The monotonic clock does not survive a restart, so the wall clock
    /// measures the time in between; a clock that stepped back waits at most the whole
    /// delay, one that stepped forward not at all.
    pub fn restored(
        failures: u32,
        failed_at: DateTime<Utc>,
        now: DateTime<Utc>,
        mono: Mono,
    ) -> FailureBackoff {
        let delay = failure_delay(failures);
        let passed = (now - failed_at).to_std().unwrap_or(Duration::ZERO);
        FailureBackoff {
            failures,
            retry_at: mono.plus(delay.saturating_sub(passed)),
        }
    }
}

fn failure_delay(failures: u32) -> Duration {
    super::backoff::exponential(FAILURE_BACKOFF_INITIAL, FAILURE_BACKOFF_MAX, failures)
}

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Its node left the fleet or is no longer eligible.
    NotEligible,
    /// It failed; a replacement follows after the back-off.
    Failed,
    /// A second pod on the node (the oldest stays).
    Duplicate,
    /// Replaced by the rolling update.
    Outdated,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DsAction {
    /// Create a pod of the current template on this node.
    Create {
        /// Node.
        node: String,
    },
    /// Delete this pod.
    Delete {
        /// Pod name.
        pod: String,
        /// Why.
        reason: DeleteReason,
    },
    /// A pod on this node failed: extend its replacement back-off.
    RecordFailure {
        /// Node.
        node: String,
    },
    /// The node's pod is available again: forget its back-off.
    ClearBackoff {
        /// Node.
        node: String,
    },
}

/// The DaemonSet's status counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DsStatus {
    /// Eligible nodes.
    pub desired_number_scheduled: u32,
    /// Eligible nodes running a pod.
    pub current_number_scheduled: u32,
    /// Eligible nodes with a ready pod.
    pub number_ready: u32,
    /// Eligible nodes with a pod ready for `minReadySeconds`.
    pub number_available: u32,
    /// Eligible nodes with a pod of the current template.
    pub updated_number_scheduled: u32,
    /// Ineligible nodes running a pod.
    pub number_misscheduled: u32,
}

/// The reconciler's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DsOutcome {
    /// Actions, in order.
    pub actions: Vec<DsAction>,
    /// Status after observing (before the actions take effect).
    pub status: DsStatus,
    /// When to reconcile again even if nothing changes (back-offs, minReadySeconds).
    pub wake_at: Option<DateTime<Utc>>,
}

/// Everything the reconciler looks at.
pub struct DsInput<'a> {
    /// The DaemonSet's spec.
    pub spec: &'a DaemonSetSpec,
    /// Hash of its current template.
    pub hash: &'a str,
    /// Every node of the fleet.
    pub nodes: &'a [NodeView],
    /// Its pods.
    pub pods: &'a [DsPod],
    /// Replacement back-off per node.
    pub backoff: &'a HashMap<String, FailureBackoff>,
    /// Now.
    pub now: DateTime<Utc>,
    /// Now on the monotonic clock, for failure back-offs.
    pub mono: Mono,
}

/// The tolerations every daemon pod gets, so that NotReady, unreachable and cordoned nodes
/// keep their daemon pods (as Kubernetes adds them).
pub fn daemon_tolerations() -> Vec<Toleration> {
    let exists = |key: &str, effect: TaintEffect| Toleration {
        key: Some(key.into()),
        operator: Some(TolerationOperator::Exists),
        value: None,
        effect: Some(effect),
        toleration_seconds: None,
    };
    vec![
        exists("node.kubernetes.io/not-ready", TaintEffect::NoExecute),
        exists("node.kubernetes.io/unreachable", TaintEffect::NoExecute),
        exists("node.kubernetes.io/unschedulable", TaintEffect::NoSchedule),
    ]
}

/// Resolves an int-or-percent against `total`, percentages rounded up.
pub fn resolve(value: Option<&IntOrPercent>, default: i64, total: u32) -> u32 {
    match value {
        None => default.max(0) as u32,
        Some(IntOrPercent::Int(i)) => (*i).max(0) as u32,
        Some(IntOrPercent::Percent(p)) => (u64::from(*p) * u64::from(total)).div_ceil(100) as u32,
    }
}

/// The nodes a DaemonSet's pods belong on: those that fit the template (selector,
/// affinity, taints, a container engine for a template of containers).
pub fn eligible_nodes(spec: &DaemonSetSpec, nodes: &[NodeView]) -> BTreeSet<String> {
    nodes_for_one_per_node(&spec.template.spec, nodes)
}

/// The nodes a pod of `template` run once on every node belongs on (a DaemonSet's, a
/// per-node CronJob run's): those it fits with the tolerations daemon pods get.
pub fn nodes_for_one_per_node(template: &PodSpec, nodes: &[NodeView]) -> BTreeSet<String> {
    let mut pod_spec = template.clone();
    pod_spec.tolerations.extend(daemon_tolerations());
    nodes
        .iter()
        .filter(|n| unfit_reason(&pod_spec, n).is_none())
        .map(|n| n.name.clone())
        .collect()
}

/// The nodes where a DaemonSet's pods that already run may go on running: those that match
/// its selector and affinity and whose `NoExecute` taints it tolerates. A `NoSchedule`
/// taint keeps new pods off, but, as in Kubernetes, evicts nobody.
pub fn nodes_to_stay_on(spec: &DaemonSetSpec, nodes: &[NodeView]) -> BTreeSet<String> {
    let mut pod_spec = spec.template.spec.clone();
    pod_spec.tolerations.extend(daemon_tolerations());
    nodes
        .iter()
        .filter(|n| {
            let mut view = (*n).clone();
            view.taints.retain(|t| t.effect == TaintEffect::NoExecute);
            unfit_reason(&pod_spec, &view).is_none()
        })
        .map(|n| n.name.clone())
        .collect()
}

fn available(pod: &DsPod, min_ready: chrono::Duration, now: DateTime<Utc>) -> bool {
    !pod.terminating
        && pod
            .ready_since
            .is_some_and(|since| now - since >= min_ready)
}

/// Reconciles one DaemonSet.
pub fn reconcile(input: &DsInput) -> DsOutcome {
    let DsInput {
        spec,
        hash,
        nodes,
        pods,
        backoff,
        now,
        mono,
    } = *input;
    let eligible = eligible_nodes(spec, nodes);
    let may_stay = nodes_to_stay_on(spec, nodes);
    let known: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let min_ready = chrono::Duration::seconds(i64::from(spec.min_ready_seconds.unwrap_or(0)));
    let mut actions = Vec::new();
    let mut wake_at: Option<DateTime<Utc>> = None;
    let mut wake = |at: DateTime<Utc>| {
        if wake_at.is_none_or(|w| at < w) {
            wake_at = Some(at);
        }
    };
    let mut status = DsStatus {
        desired_number_scheduled: eligible.len() as u32,
        ..Default::default()
    };

    let mut by_node: BTreeMap<&str, Vec<&DsPod>> = BTreeMap::new();
    for pod in pods {
        by_node.entry(pod.node.as_str()).or_default().push(pod);
    }
    for list in by_node.values_mut() {
        list.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    }

    // Pods on nodes that left the fleet or are no longer eligible.
    for (node, list) in &by_node {
        if eligible.contains(*node) {
            continue;
        }
        let live: Vec<&&DsPod> = list.iter().filter(|p| !p.terminating).collect();
        if !live.is_empty() && known.contains(node) {
            status.number_misscheduled += 1;
        }
        // Where it may stay, the oldest running pod does (nothing replaces it once it ends).
        let mut staying = None;
        if may_stay.contains(*node) {
            staying = live
                .iter()
                .find(|p| matches!(p.phase, PodPhase::Running | PodPhase::Pending))
                .map(|p| p.name.as_str());
        }
        for pod in live {
            if Some(pod.name.as_str()) != staying {
                actions.push(DsAction::Delete {
                    pod: pod.name.clone(),
                    reason: DeleteReason::NotEligible,
                });
            }
        }
    }

    let strategy = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.kind)
        .unwrap_or(UpdateStrategyType::RollingUpdate);
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let desired = status.desired_number_scheduled;
    let max_surge = resolve(rolling.and_then(|r| r.max_surge.as_ref()), 0, desired);
    let max_unavailable = resolve(rolling.and_then(|r| r.max_unavailable.as_ref()), 1, desired);

    // Per eligible node: the live pods that stay after failures and duplicates are handled.
    let mut kept: BTreeMap<&str, Vec<&DsPod>> = BTreeMap::new();
    let empty = Vec::new();
    for node in &eligible {
        let list = by_node.get(node.as_str()).unwrap_or(&empty);
        let mut live = Vec::new();
        for pod in list.iter().filter(|p| !p.terminating) {
            if pod.phase == PodPhase::Failed || pod.phase == PodPhase::Succeeded {
                actions.push(DsAction::Delete {
                    pod: pod.name.clone(),
                    reason: DeleteReason::Failed,
                });
                actions.push(DsAction::RecordFailure { node: node.clone() });
            } else {
                live.push(*pod);
            }
        }
        // Of several pods of one revision, the oldest stays; an old and a new pod may
        // coexist only while surging.
        let mut seen_hashes = BTreeSet::new();
        let mut survivors = Vec::new();
        for pod in live {
            let duplicate =
                !seen_hashes.insert(pod.hash.as_str()) || (max_surge == 0 && !survivors.is_empty());
            if duplicate {
                actions.push(DsAction::Delete {
                    pod: pod.name.clone(),
                    reason: DeleteReason::Duplicate,
                });
            } else {
                survivors.push(pod);
            }
        }
        if survivors.len() > 2 || (survivors.len() == 2 && survivors.iter().all(|p| p.hash != hash))
        {
            // Two old revisions: keep the oldest.
            for pod in survivors.drain(1..) {
                actions.push(DsAction::Delete {
                    pod: pod.name.clone(),
                    reason: DeleteReason::Duplicate,
                });
            }
        }
        let terminating = list.iter().any(|p| p.terminating);
        if !survivors.is_empty() {
            status.current_number_scheduled += 1;
        }
        if survivors.iter().any(|p| p.ready_since.is_some()) {
            status.number_ready += 1;
        }
        if survivors.iter().any(|p| available(p, min_ready, now)) {
            status.number_available += 1;
            if backoff.contains_key(node) {
                actions.push(DsAction::ClearBackoff { node: node.clone() });
            }
        }
        for pod in &survivors {
            if let Some(since) = pod.ready_since {
                if now - since < min_ready {
                    wake(since + min_ready);
                }
            }
        }
        if survivors.iter().any(|p| p.hash == hash) {
            status.updated_number_scheduled += 1;
        }
        if survivors.is_empty() {
            // A stopping pod goes first: two daemon processes on one node may clash.
            if terminating {
                continue;
            }
            match backoff.get(node.as_str()) {
                Some(b) if b.retry_at > mono => wake(
                    now + chrono::Duration::from_std(b.retry_at.since(mono))
                        .unwrap_or(chrono::Duration::MAX),
                ),
                _ => actions.push(DsAction::Create { node: node.clone() }),
            }
            continue;
        }
        kept.insert(node.as_str(), survivors);
    }

    if strategy == UpdateStrategyType::RollingUpdate {
        roll(
            &kept,
            hash,
            max_surge,
            max_unavailable,
            desired,
            min_ready,
            now,
            &mut actions,
            &by_node,
        );
    }

    DsOutcome {
        actions,
        status,
        wake_at,
    }
}

/// Replaces old pods under the rolling update's bounds.
#[allow(clippy::too_many_arguments)]
fn roll(
    kept: &BTreeMap<&str, Vec<&DsPod>>,
    hash: &str,
    max_surge: u32,
    max_unavailable: u32,
    desired: u32,
    min_ready: chrono::Duration,
    now: DateTime<Utc>,
    actions: &mut Vec<DsAction>,
    by_node: &BTreeMap<&str, Vec<&DsPod>>,
) {
    // Nodes without an available pod: missing pods (being created or backing off) and
    // pods not ready yet or terminating.
    let available_nodes = kept
        .values()
        .filter(|pods| pods.iter().any(|p| available(p, min_ready, now)))
        .count() as u32;
    let mut unavailable = desired.saturating_sub(available_nodes);
    let mut surging = kept.values().filter(|pods| pods.len() == 2).count() as u32;

    for (node, pods) in kept {
        let old: Vec<&&DsPod> = pods.iter().filter(|p| p.hash != hash).collect();
        let new: Vec<&&DsPod> = pods.iter().filter(|p| p.hash == hash).collect();
        let Some(old_pod) = old.first() else { continue };
        let old_available = available(old_pod, min_ready, now);
        if let Some(new_pod) = new.first() {
            // Surging: the old pod goes once the new one is available.
            if available(new_pod, min_ready, now) {
                actions.push(DsAction::Delete {
                    pod: old_pod.name.clone(),
                    reason: DeleteReason::Outdated,
                });
            }
            continue;
        }
        if !old_available {
            // Already unavailable: replacing it costs nothing.
            actions.push(DsAction::Delete {
                pod: old_pod.name.clone(),
                reason: DeleteReason::Outdated,
            });
            continue;
        }
        if max_surge > 0 && surging < max_surge {
            let terminating_here = by_node
                .get(node)
                .is_some_and(|l| l.iter().any(|p| p.terminating));
            if !terminating_here {
                surging += 1;
                actions.push(DsAction::Create {
                    node: node.to_string(),
                });
            }
            continue;
        }
        if unavailable < max_unavailable {
            unavailable += 1;
            actions.push(DsAction::Delete {
                pod: old_pod.name.clone(),
                reason: DeleteReason::Outdated,
            });
        }
    }
}

#[cfg(test)]
mod tests;
