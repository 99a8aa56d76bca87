//! Evicting Job pods from nodes that stay unreachable (spec §5), so they run elsewhere.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_proto::manifest::{
    JobSpec, Kind, PodReplacementPolicy, PodSpec, TaintEffect, TolerationOperator,
};
use serde_json::{json, Value};
use tracing::info;

use super::Control;
use crate::pods::node_name;
use crate::reconcile::node_lifecycle::{TAINT_NOT_READY, TAINT_UNREACHABLE};

/// How long a pod stays on an unreachable node: its own `NoExecute` toleration's
/// `tolerationSeconds`, or the default.
fn toleration_for(spec: &PodSpec, key: &str, default: Duration) -> Option<Duration> {
    for t in &spec.tolerations {
        let key_matches = match t.operator.unwrap_or(TolerationOperator::Equal) {
            TolerationOperator::Exists => t.key.as_deref().is_none_or(|k| k.is_empty() || k == key),
            TolerationOperator::Equal => t.key.as_deref() == Some(key),
        };
        if key_matches && t.effect.is_none_or(|e| e == TaintEffect::NoExecute) {
            // Tolerated for good, or for a while.
            return t
                .toleration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64));
        }
    }
    Some(default)
}

impl Control {
    /// Evicts Job pods whose node has been unreachable (or not ready) longer than they
    /// tolerate. Nothing is evicted when every node is unreachable at once: then the
    /// controller's own link is the likelier fault.
    pub(super) fn evict_from_lost_nodes(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        if self.nodes.is_empty() || !self.nodes.keys().any(|n| self.node_ready(n)) {
            return Ok(());
        }
        let mut lost: Vec<(String, &'static str, DateTime<Utc>)> = Vec::new();
        for node in self.store.list(Kind::Node, None)? {
            if self.node_ready(&node.name) {
                continue;
            }
            for taint in node.spec["taints"].as_array().into_iter().flatten() {
                let key = match taint["key"].as_str() {
                    Some(TAINT_UNREACHABLE) => TAINT_UNREACHABLE,
                    Some(TAINT_NOT_READY) => TAINT_NOT_READY,
                    _ => continue,
                };
                let since = taint["timeAdded"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map_or(now, |t| t.with_timezone(&Utc));
                lost.push((node.name.clone(), key, since));
            }
        }
        // Each taint's age on the monotonic clock: a wall-clock step evicts nothing early.
        let mono = self.mono(now);
        self.taint_elapsed.retain(|key| {
            lost.iter()
                .any(|(node, taint, _)| key == format!("{node}/{taint}"))
        });
        let lost: Vec<(String, &'static str, chrono::Duration)> = lost
            .into_iter()
            .map(|(node, taint, since)| {
                let age = self
                    .taint_elapsed
                    .since(&format!("{node}/{taint}"), since, now, mono);
                (node, taint, age)
            })
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        for pod in self.store.list(Kind::Pod, None)? {
            let owned_by_job = pod
                .owner_references
                .as_array()
                .is_some_and(|r| r.iter().any(|o| o["kind"] == "Job"));
            let phase = pod.status["phase"].as_str().unwrap_or("");
            if !owned_by_job
                || pod.deletion_timestamp.is_some()
                || phase == "Succeeded"
                || phase == "Failed"
            {
                continue;
            }
            let Some(node) = node_name(&pod).map(str::to_string) else {
                continue;
            };
            let Some((_, key, age)) = lost.iter().find(|(n, _, _)| *n == node) else {
                continue;
            };
            let Ok(spec) = serde_json::from_value::<PodSpec>(pod.spec.clone()) else {
                continue;
            };
            let replacement = self.replacement_policy_of(&pod)?;
            let Some(tolerated) = toleration_for(&spec, key, self.settings.unreachable_toleration)
            else {
                continue;
            };
            if *age < chrono::Duration::from_std(tolerated).unwrap_or(chrono::Duration::MAX) {
                continue;
            }
            info!(pod = %pod.name, node, "evicting a Job pod from a lost node");
            let mut pod = std::sync::Arc::unwrap_or_clone(pod);
            let mut conditions: Vec<Value> = pod.status["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            conditions.retain(|c| c["type"] != "DisruptionTarget");
            conditions.push(json!({
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": format!("Taint manager: deleting due to NoExecute taint {key}"),
                "lastTransitionTime": crate::object::timestamp(now),
            }));
            if replacement == PodReplacementPolicy::TerminatingOrFailed {
                // Replaced at once: shown as failed until its node reports what happened.
                pod.status["phase"] = json!("Failed");
                pod.status["reason"] = json!("Evicted");
            }
            // Under `Failed` the pod stays terminating, in its place, until its node
            // reports it stopped or the node is deleted: no second copy runs meanwhile.
            pod.status["conditions"] = Value::Array(conditions);
            // Out of the node's desired state: when the node returns, its agent stops the pod.
            pod.deletion_timestamp = Some(now);
            let stored = self.store.put(&pod)?;
            self.store.record_event(
                &stored,
                "Normal",
                "TaintManagerEviction",
                &format!("Marking for deletion Pod {}/{}", pod.namespace, pod.name),
                "taint-eviction-controller",
                now,
            )?;
            self.ensure_desired(&node)?;
            self.workloads_changed();
        }
        Ok(())
    }
}

impl Control {
    /// The `podReplacementPolicy` of the Job that owns a pod.
    fn replacement_policy_of(
        &self,
        pod: &crate::store::StoredObject,
    ) -> anyhow::Result<PodReplacementPolicy> {
        let job = match pod.labels.get("batch.kubernetes.io/controller-uid") {
            Some(uid) => self.store.get_by_uid(uid)?,
            None => None,
        };
        Ok(job
            .filter(|job| job.kind == Kind::Job)
            .and_then(|job| serde_json::from_value::<JobSpec>(job.spec.clone()).ok())
            .map_or(PodReplacementPolicy::TerminatingOrFailed, |spec| {
                spec.replacement_policy()
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::manifest::Toleration;

    #[test]
    fn tolerations_decide_how_long_a_pod_stays() {
        let default = Duration::from_secs(300);
        let mut spec = PodSpec::default();
        assert_eq!(
            toleration_for(&spec, TAINT_UNREACHABLE, default),
            Some(default)
        );
        spec.tolerations.push(Toleration {
            key: Some(TAINT_UNREACHABLE.into()),
            operator: Some(TolerationOperator::Exists),
            value: None,
            effect: Some(TaintEffect::NoExecute),
            toleration_seconds: Some(5),
        });
        assert_eq!(
            toleration_for(&spec, TAINT_UNREACHABLE, default),
            Some(Duration::from_secs(5))
        );
        spec.tolerations[0].toleration_seconds = None;
        assert_eq!(
            toleration_for(&spec, TAINT_UNREACHABLE, default),
            None,
            "tolerated forever"
        );
    }
}
