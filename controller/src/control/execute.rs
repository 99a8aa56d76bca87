//! The executor: carries out, in order, the actions the rules in `reconcile/` decide
//! ([`Action`]). It knows how to do each one on the store and nothing about why.

use chrono::{DateTime, Utc};
use drover_proto::manifest::Kind;
use drover_proto::phase::PodPhase;
use serde_json::{json, Value};

use super::daemonsets::{controller_reference_to, name_suffix};
use super::jobs::DELETED_BY_CONTROLLER;
use super::Control;
use crate::pods::{node_name, scheduled_status, unschedulable_status};
use crate::reconcile::action::{Action, NewJob, NewPod, ObjectKey, Owner};
use crate::reconcile::garbage_collection::{cascade, Dependent, Propagation};
use crate::store::StoredObject;

/// Random suffixes tried for a pod's name before giving up (each is taken with a chance of
/// about one in 14 million per pod of the namespace).
const MAX_NAME_ATTEMPTS: usize = 8;

/// Events of the garbage collector name it as their source.
const GARBAGE_COLLECTOR: &str = "garbage-collector";

/// The owner as actions name it.
pub(super) fn owner_of(object: &StoredObject) -> Owner {
    Owner {
        key: key_of(object),
        uid: object.uid.clone(),
    }
}

/// The object's key.
pub(super) fn key_of(object: &StoredObject) -> ObjectKey {
    ObjectKey::new(object.kind, &object.namespace, &object.name)
}

impl Control {
    /// Carries out `actions` in order; events they record name `source`.
    pub(super) fn execute(
        &mut self,
        source: &str,
        actions: Vec<Action>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        for action in actions {
            self.execute_one(source, action, now)?;
        }
        Ok(())
    }

    fn execute_one(
        &mut self,
        source: &str,
        action: Action,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        match action {
            Action::CreatePod(pod) => self.create_pod(source, pod, now),
            Action::DeletePod { pod, never_counted } => {
                let Some(mut stored) = self.fetch(&pod)? else {
                    return Ok(());
                };
                if never_counted && !stored.annotations.contains_key(DELETED_BY_CONTROLLER) {
                    stored
                        .annotations
                        .insert(DELETED_BY_CONTROLLER.into(), "true".into());
                    stored = self.store.put(&stored)?;
                }
                self.delete_pod(stored, now)?;
                Ok(())
            }
            Action::Bind { pod, node } => {
                if let Some(mut stored) = self.fetch(&pod)? {
                    stored.spec["nodeName"] = json!(node);
                    stored.status = scheduled_status();
                    self.store.put(&stored)?;
                    self.ensure_desired(&node)?;
                }
                Ok(())
            }
            Action::MarkUnschedulable { pod, message } => {
                if let Some(mut stored) = self.fetch(&pod)? {
                    stored.status = unschedulable_status(&message);
                    self.store.put(&stored)?;
                }
                Ok(())
            }
            Action::Evict {
                pod,
                taint,
                failed_at_once,
            } => self.evict(&pod, &taint, failed_at_once, now),
            Action::CreateJob(job) => self.create_job(source, job, now),
            Action::DeleteWithDependents(key) => {
                if let Some(object) = self.fetch(&key)? {
                    self.delete_with_dependents(&object, Propagation::Background, now)?;
                }
                Ok(())
            }
            Action::Orphan {
                dependent,
                owner_uid,
            } => {
                if let Some(mut object) = self.fetch(&dependent)? {
                    if let Some(refs) = object.owner_references.as_array_mut() {
                        refs.retain(|r| r["uid"] != owner_uid.as_str());
                    }
                    self.store.put(&object)?;
                }
                Ok(())
            }
            Action::Remove { object, uid } => {
                self.store
                    .delete(object.kind, &object.namespace, &object.name)?;
                self.store.delete_revisions(&uid)?;
                self.store.delete_job_results(&uid)?;
                self.store.delete_daemon_failures(&uid)?;
                self.ds_backoff.remove(&uid);
                Ok(())
            }
            Action::Event {
                on,
                event_type,
                reason,
                message,
            } => {
                if let Some(object) = self.fetch(&on)? {
                    self.store.record_event(
                        &object,
                        event_type.as_str(),
                        &reason,
                        &message,
                        source,
                        now,
                    )?;
                }
                Ok(())
            }
        }
    }

    fn fetch(&self, key: &ObjectKey) -> anyhow::Result<Option<StoredObject>> {
        Ok(self.store.get(key.kind, &key.namespace, &key.name)?)
    }

    /// Deletes `owner` and does to what it owns what `propagation` says
    /// ([`crate::reconcile::garbage_collection`]).
    pub(super) fn delete_with_dependents(
        &mut self,
        owner: &StoredObject,
        propagation: Propagation,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let candidates = self.dependent_candidates(&owner.namespace)?;
        let actions = cascade(&owner_of(owner), propagation, &candidates);
        self.execute(GARBAGE_COLLECTOR, actions, now)
    }

    /// The objects of `namespace` that can have an owner: pods, and Jobs (a CronJob's).
    pub(super) fn dependent_candidates(&self, namespace: &str) -> anyhow::Result<Vec<Dependent>> {
        let mut candidates = Vec::new();
        for kind in [Kind::Pod, Kind::Job] {
            for object in self.store.list(kind, Some(namespace))? {
                let owners: Vec<String> = object
                    .owner_references
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["uid"].as_str().map(str::to_string))
                    .collect();
                if !owners.is_empty() {
                    candidates.push(Dependent {
                        key: key_of(&object),
                        owners,
                    });
                }
            }
        }
        Ok(candidates)
    }

    fn create_pod(&mut self, source: &str, pod: NewPod, now: DateTime<Utc>) -> anyhow::Result<()> {
        let name = self.free_name(&pod.owner.key.namespace, &pod.generate_name, name_suffix)?;
        let uid = drover_proto::random::new_uid()?;
        let node = pod.spec.node_name.clone();
        let stored = StoredObject {
            labels: pod.labels,
            annotations: pod.annotations,
            owner_references: controller_reference_to(&pod.owner),
            spec: serde_json::to_value(&pod.spec)?,
            status: match node {
                Some(_) => scheduled_status(),
                None => json!({"phase": PodPhase::Pending.as_str()}),
            },
            ..StoredObject::new(Kind::Pod, &pod.owner.key.namespace, name, uid, now)
        };
        let stored = self.store.put(&stored)?;
        self.announce_creation(source, &pod.owner, "pod: ", &stored.name, now)?;
        if let Some(node) = node_name(&stored).map(str::to_string) {
            self.ensure_desired(&node)?;
        }
        Ok(())
    }

    fn evict(
        &mut self,
        pod: &ObjectKey,
        taint: &str,
        failed_at_once: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(mut stored) = self.fetch(pod)? else {
            return Ok(());
        };
        let mut conditions: Vec<Value> = stored.status["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c["type"] != "DisruptionTarget");
        conditions.push(json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": format!("Taint manager: deleting due to NoExecute taint {taint}"),
            "lastTransitionTime": crate::object::timestamp(now),
        }));
        if failed_at_once {
            stored.status["phase"] = json!(PodPhase::Failed.as_str());
            stored.status["reason"] = json!("Evicted");
        }
        stored.status["conditions"] = Value::Array(conditions);
        // Out of the node's desired state: when the node returns, its agent stops the pod.
        stored.deletion_timestamp = Some(now);
        self.store.put(&stored)?;
        if let Some(node) = node_name(&stored).map(str::to_string) {
            self.ensure_desired(&node)?;
        }
        self.workloads_changed();
        Ok(())
    }

    /// `generate_name` with a random suffix no pod of `namespace` has: storing a pod under a
    /// taken name would replace that pod (Kubernetes' generateName tries again too).
    pub(super) fn free_name(
        &self,
        namespace: &str,
        generate_name: &str,
        mut suffix: impl FnMut() -> String,
    ) -> anyhow::Result<String> {
        for _ in 0..MAX_NAME_ATTEMPTS {
            let name = format!("{generate_name}{}", suffix());
            if self.store.get(Kind::Pod, namespace, &name)?.is_none() {
                return Ok(name);
            }
        }
        anyhow::bail!("no free pod name {generate_name}… after {MAX_NAME_ATTEMPTS} tries")
    }

    fn create_job(&mut self, source: &str, job: NewJob, now: DateTime<Utc>) -> anyhow::Result<()> {
        let namespace = job.owner.key.namespace.clone();
        if self.store.get(Kind::Job, &namespace, &job.name)?.is_some() {
            // Job names are deterministic per run: this run exists already.
            return Ok(());
        }
        let uid = drover_proto::random::new_uid()?;
        let stored = StoredObject {
            labels: job.labels,
            annotations: job.annotations,
            owner_references: controller_reference_to(&job.owner),
            spec: serde_json::to_value(&job.spec)?,
            ..StoredObject::new(Kind::Job, &namespace, &job.name, uid, now)
        };
        self.store.put(&stored)?;
        self.announce_creation(source, &job.owner, "job ", &job.name, now)
    }

    /// `SuccessfulCreate` on the owner, worded as Kubernetes' controllers word it
    /// (`Created pod: x`, `Created job x`).
    fn announce_creation(
        &mut self,
        source: &str,
        owner: &Owner,
        what: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if let Some(owner) = self.fetch(&owner.key)? {
            let message = format!("Created {what}{name}");
            self.store
                .record_event(&owner, "Normal", "SuccessfulCreate", &message, source, now)?;
        }
        Ok(())
    }
}
