//! DaemonSets: runs the pure reconciler against the store, keeps its failure back-offs, and
//! hands what it asks of the store to the executor.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use drover_proto::manifest::{DaemonSetSpec, Kind};
use serde_json::{json, Value};

use super::execute::owner_of;
use super::Control;
use crate::pods::node_name;
use crate::reconcile::action::Owner;
use crate::reconcile::clock::Mono;
use crate::reconcile::daemonset::pods::store_actions;
use crate::reconcile::daemonset::{
    reconcile, DsAction, DsInput, DsPod, DsStatus, FailureBackoff, REVISION_HASH_LABEL,
};
use crate::store::StoredObject;

const SOURCE: &str = "daemonset-controller";

/// A stable short hash of a pod template (FNV-1a over its JSON, whose keys are sorted).
pub fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let hash = drover_proto::hash::fnv1a64(text.as_bytes());
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

/// Whether `pod` is owned by the object with `uid`.
pub fn owned_by(pod: &StoredObject, uid: &str) -> bool {
    pod.owner_references
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

/// The owner reference a controller puts on the objects it creates.
pub fn controller_reference_to(owner: &Owner) -> Value {
    json!([{
        "apiVersion": owner.key.kind.api_version(),
        "kind": owner.key.kind.as_str(),
        "name": owner.key.name,
        "uid": owner.uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// A random-looking 5-character pod name suffix, as Kubernetes generates.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let uid = drover_proto::random::new_uid().unwrap_or_default();
    uid.bytes()
        .filter(u8::is_ascii_hexdigit)
        .collect::<Vec<u8>>()
        .chunks(2)
        .take(5)
        .map(|pair| {
            let value =
                u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("0"), 16).unwrap_or(0);
            ALPHABET[usize::from(value) % ALPHABET.len()] as char
        })
        .collect()
}

/// Since when every container of a pod has been ready: its `Ready` condition's last
/// transition, or (without one) the latest start among its containers.
fn ready_since(pod: &StoredObject) -> Option<DateTime<Utc>> {
    let statuses = pod.status.get("containerStatuses")?.as_array()?;
    if statuses.is_empty() || !statuses.iter().all(|c| c["ready"] == true) {
        return None;
    }
    let ready = pod.status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready" && c["status"] == "True");
    if let Some(since) = ready.and_then(|c| crate::object::timestamp_of(&c["lastTransitionTime"])) {
        return Some(since);
    }
    statuses
        .iter()
        .filter_map(|c| crate::object::timestamp_of(&c["state"]["running"]["startedAt"]))
        .max()
}

fn ds_pod(pod: &StoredObject) -> Option<DsPod> {
    Some(DsPod {
        name: pod.name.clone(),
        node: node_name(pod)?.to_string(),
        hash: pod
            .labels
            .get(REVISION_HASH_LABEL)
            .cloned()
            .unwrap_or_default(),
        phase: crate::pods::phase(pod),
        ready_since: ready_since(pod),
        created: pod.created_at,
        terminating: pod.deletion_timestamp.is_some(),
    })
}

fn status_json(status: &DsStatus, generation: i64) -> Value {
    json!({
        "desiredNumberScheduled": status.desired_number_scheduled,
        "currentNumberScheduled": status.current_number_scheduled,
        "numberReady": status.number_ready,
        "numberAvailable": status.number_available,
        "numberUnavailable": status.desired_number_scheduled.saturating_sub(status.number_available),
        "updatedNumberScheduled": status.updated_number_scheduled,
        "numberMisscheduled": status.number_misscheduled,
        "observedGeneration": generation,
    })
}

impl Control {
    /// Reconciles every DaemonSet.
    pub(super) fn reconcile_daemonsets(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let daemonsets = self.store.list(Kind::DaemonSet, None)?;
        if daemonsets.is_empty() {
            return Ok(());
        }
        let nodes = self.node_views()?;
        let pods = self.store.list(Kind::Pod, None)?;
        self.ds_wake = None;
        // One being deleted (foreground) places nothing new.
        for ds in daemonsets
            .iter()
            .filter(|ds| ds.deletion_timestamp.is_none())
        {
            let result = self.reconcile_daemonset(ds, &nodes, &pods, now);
            self.object_result(ds, result, now);
        }
        Ok(())
    }

    fn reconcile_daemonset(
        &mut self,
        ds: &StoredObject,
        nodes: &[crate::reconcile::scheduler::NodeView],
        pods: &[Arc<StoredObject>],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let spec: DaemonSetSpec = serde_json::from_value(ds.spec.clone())?;
        let template = ds.spec.get("template").cloned().unwrap_or(Value::Null);
        let hash = template_hash(&template);
        self.store.record_revision(&ds.uid, &hash, &template)?;
        self.store.prune_revisions(
            &ds.uid,
            spec.revision_history_limit.unwrap_or(10).max(0) as u64,
        )?;
        // Orphans its selector matches are adopted, its pods relabelled out of it
        // released (the node then gets a new pod), before anything is counted.
        let claimed = self.claim_pods(ds, &spec.selector, pods)?;
        let owned: Vec<&StoredObject> = claimed.iter().map(|p| p.as_ref()).collect();
        let views: Vec<DsPod> = owned.iter().filter_map(|p| ds_pod(p)).collect();
        let backoff = self.ds_backoff.get(&ds.uid).cloned().unwrap_or_default();
        let outcome = reconcile(&DsInput {
            spec: &spec,
            hash: &hash,
            nodes,
            pods: &views,
            backoff: &backoff,
            now,
            mono: self.mono(now),
        });
        let owner = owner_of(ds);
        // In the reconciler's order: a failed pod is deleted before its failure is noted.
        for action in &outcome.actions {
            match action {
                DsAction::Create { .. } | DsAction::Delete { .. } => {
                    let actions =
                        store_actions(&owner, &spec.template, &hash, std::slice::from_ref(action));
                    self.execute(SOURCE, actions, now)?;
                }
                DsAction::RecordFailure { node } => {
                    let mono = self.mono(now);
                    let entry = self.ds_backoff.entry(ds.uid.clone()).or_default();
                    let next = FailureBackoff::after_failure(entry.get(node).copied(), mono);
                    entry.insert(node.clone(), next);
                    // Kept, so that a restart does not replace a crashing pod at once.
                    self.store
                        .record_daemon_failures(&ds.uid, node, next.failures, now)?;
                    self.store.record_event(
                        ds,
                        "Warning",
                        "FailedDaemonPod",
                        &format!("Found failed daemon pod on node {node}, will try to kill it"),
                        SOURCE,
                        now,
                    )?;
                    self.note_wake(next.retry_at);
                }
                DsAction::ClearBackoff { node } => {
                    if let Some(entry) = self.ds_backoff.get_mut(&ds.uid) {
                        entry.remove(node);
                    }
                    self.store.clear_daemon_failures(&ds.uid, node)?;
                }
            }
        }
        if let Some(at) = outcome.wake_at {
            let at = self.mono_wake(at, now);
            self.note_wake(at);
        }
        let status = status_json(&outcome.status, ds.generation);
        if ds.status != status {
            let mut updated = ds.clone();
            updated.status = status;
            self.store.put(&updated)?;
        }
        Ok(())
    }

    fn note_wake(&mut self, at: Mono) {
        if self.ds_wake.is_none_or(|w| at < w) {
            self.ds_wake = Some(at);
        }
    }
}

/// Per-DaemonSet, per-node replacement back-off.
pub type DsBackoff = HashMap<String, HashMap<String, FailureBackoff>>;

impl Control {
    /// The back-offs the store kept, as they stand at `now` (the controller's start).
    pub(super) fn load_daemon_failures(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let mono = self.mono(now);
        for kept in self.store.daemon_failures()? {
            let backoff = FailureBackoff::restored(kept.failures, kept.failed_at, now, mono);
            self.ds_backoff
                .entry(kept.ds_uid)
                .or_default()
                .insert(kept.node, backoff);
            self.note_wake(backoff.retry_at);
        }
        Ok(())
    }
}
