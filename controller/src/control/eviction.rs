//! Evicting Job pods from nodes that stay unreachable: the decision, and what it asks of the
//! store, are [`crate::reconcile::eviction`]'s; the executor carries it out.

use chrono::{DateTime, Utc};
use drover_proto::manifest::{JobSpec, Kind, PodReplacementPolicy, PodSpec};
use tracing::info;

use super::Control;
use crate::pods::node_name;
use crate::reconcile::action::ObjectKey;
use crate::reconcile::eviction::{eviction_actions, evictions, LostNode, PodOnNode};
use crate::reconcile::node_lifecycle::{TAINT_NOT_READY, TAINT_UNREACHABLE};

impl Control {
    /// Evicts Job pods whose node has been unreachable (or not ready) longer than they
    /// tolerate.
    pub(super) fn evict_from_lost_nodes(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let any_node_ready = self.nodes.keys().any(|n| self.node_ready(n));
        if !any_node_ready {
            return Ok(());
        }
        let mut tainted: Vec<(String, &'static str, DateTime<Utc>)> = Vec::new();
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
                let since = crate::object::timestamp_of(&taint["timeAdded"]).unwrap_or(now);
                tainted.push((node.name.clone(), key, since));
            }
        }
        // Each taint's age on the monotonic clock: a wall-clock step evicts nothing early.
        let mono = self.mono(now);
        self.taint_elapsed.retain(|key| {
            tainted
                .iter()
                .any(|(node, taint, _)| key == format!("{node}/{taint}"))
        });
        let lost: Vec<LostNode> = tainted
            .into_iter()
            .map(|(name, taint, since)| {
                let age = self
                    .taint_elapsed
                    .since(&format!("{name}/{taint}"), since, now, mono);
                LostNode {
                    name,
                    taint,
                    lost_for: age.to_std().unwrap_or_default(),
                }
            })
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        let pods = self.store.list(Kind::Pod, None)?;
        // Pods named `namespace/name`, so two namespaces' pods of one name stay apart.
        let on_lost_nodes: Vec<(String, &crate::store::StoredObject, &str, PodSpec)> = pods
            .iter()
            .filter_map(|pod| {
                let node = node_name(pod)?;
                lost.iter().any(|n| n.name == node).then_some(())?;
                let spec = serde_json::from_value::<PodSpec>(pod.spec.clone()).ok()?;
                let key = format!("{}/{}", pod.namespace, pod.name);
                Some((key, pod.as_ref(), node, spec))
            })
            .collect();
        let views: Vec<PodOnNode> = on_lost_nodes
            .iter()
            .map(|(key, pod, node, spec)| PodOnNode {
                name: key,
                node,
                owned_by_job: pod
                    .owner_references
                    .as_array()
                    .is_some_and(|r| r.iter().any(|o| o["kind"] == "Job")),
                deleting: pod.deletion_timestamp.is_some(),
                finished: crate::pods::is_terminal(pod),
                tolerations: &spec.tolerations,
            })
            .collect();
        let decided = evictions(
            &lost,
            &views,
            any_node_ready,
            self.settings.unreachable_toleration,
        );
        let mut actions = Vec::new();
        for eviction in decided {
            let Some((_, pod, node, _)) = on_lost_nodes
                .iter()
                .find(|(key, _, _, _)| *key == eviction.pod)
            else {
                continue;
            };
            let policy = self
                .replacement_policy_of(pod)?
                .unwrap_or(PodReplacementPolicy::TerminatingOrFailed);
            info!(pod = %pod.name, node, "evicting a Job pod from a lost node");
            let key = ObjectKey::new(Kind::Pod, &pod.namespace, &pod.name);
            actions.extend(eviction_actions(&key, eviction.taint, policy));
        }
        self.execute("taint-eviction-controller", actions, now)
    }
}

impl Control {
    /// The `podReplacementPolicy` of the Job that owns a pod; None for a pod no Job owns.
    pub(super) fn replacement_policy_of(
        &self,
        pod: &crate::store::StoredObject,
    ) -> anyhow::Result<Option<PodReplacementPolicy>> {
        let job = match pod.labels.get("batch.kubernetes.io/controller-uid") {
            Some(uid) => self.store.get_by_uid(uid)?,
            None => None,
        };
        Ok(job
            .filter(|job| job.kind == Kind::Job && super::daemonsets::owned_by(pod, &job.uid))
            .and_then(|job| serde_json::from_value::<JobSpec>(job.spec.clone()).ok())
            .map(|spec| spec.replacement_policy()))
    }
}
