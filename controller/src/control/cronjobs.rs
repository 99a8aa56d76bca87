//! CronJobs: runs the pure reconciler against the store and creates Jobs from the template.

use chrono::{DateTime, Utc};
use drover_proto::manifest::{CompletionMode, CronJobSpec, Kind};
use serde_json::{json, Value};
use std::sync::Arc;
use tracing::warn;

use super::daemonsets::{controller_reference, owned_by};
use super::jobs::{job_finished, PER_NODE_TARGETS};
use super::Control;
use crate::object::{timestamp, timestamp_of as parse_time};
use crate::reconcile::cronjob::{reconcile, CronAction, CronInput, CronRun, RunState};
use crate::reconcile::daemonset::nodes_for_one_per_node;
use crate::store::StoredObject;

const SOURCE: &str = "cronjob-controller";
/// Annotation that makes a CronJob run one pod on every eligible node at each run.
pub const PER_NODE: &str = "drover.io/per-node";
/// Annotation with a Job's nominal run time.
const SCHEDULED_AT: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

fn run_of(job: &StoredObject) -> CronRun {
    let state = match job_finished(job) {
        Some(true) => RunState::Succeeded,
        Some(false) => RunState::Failed,
        None => RunState::Active,
    };
    let finished_at = job.status["completionTime"]
        .as_str()
        .map(|_| &job.status["completionTime"])
        .and_then(parse_time)
        .or_else(|| {
            job.status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| {
                    (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                })
                .and_then(|c| parse_time(&c["lastTransitionTime"]))
        });
    CronRun {
        name: job.name.clone(),
        state,
        finished_at,
        created: job.created_at,
    }
}

impl Control {
    /// Reconciles every CronJob.
    pub(super) fn reconcile_cronjobs(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let cronjobs = self.store.list(Kind::CronJob, None)?;
        self.cron_wake = None;
        if cronjobs.is_empty() {
            return Ok(());
        }
        let jobs = self.store.list(Kind::Job, None)?;
        // One being deleted (foreground) starts nothing new.
        for cj in cronjobs.iter().filter(|cj| cj.deletion_timestamp.is_none()) {
            let result = self.reconcile_cronjob(cj, &jobs, now);
            self.object_result(cj, result, now);
        }
        Ok(())
    }

    fn reconcile_cronjob(
        &mut self,
        cj: &StoredObject,
        jobs: &[Arc<StoredObject>],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let spec: CronJobSpec = serde_json::from_value(cj.spec.clone())?;
        let bounds = drover_proto::manifest::job_spec_bounds(
            "spec.jobTemplate.spec",
            &spec.job_template.spec,
        );
        if let Some((field, message)) = bounds.first() {
            // Accepted by an older version; its Jobs would be refused anyway.
            warn!(cronjob = %format!("{}/{}", cj.namespace, cj.name), field, message, "not reconciling a CronJob whose job template is out of bounds");
            return Ok(());
        }
        let owned: Vec<&StoredObject> = jobs
            .iter()
            .map(|j| j.as_ref())
            .filter(|j| owned_by(j, &cj.uid))
            .collect();
        let runs: Vec<CronRun> = owned.iter().map(|j| run_of(j)).collect();
        let recorded_active: Vec<String> = cj.status["active"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect();
        let outcome = reconcile(&CronInput {
            name: &cj.name,
            spec: &spec,
            created: cj.created_at,
            last_schedule: parse_time(&cj.status["lastScheduleTime"]),
            runs: &runs,
            recorded_active: &recorded_active,
            now,
        });
        for action in outcome.actions {
            match action {
                CronAction::CreateJob { name, scheduled } => {
                    if self.store.get(Kind::Job, &cj.namespace, &name)?.is_none() {
                        self.create_job_from(cj, &spec, &name, Some(scheduled), now)?;
                        self.store.record_event(
                            cj,
                            "Normal",
                            "SuccessfulCreate",
                            &format!("Created job {name}"),
                            SOURCE,
                            now,
                        )?;
                    }
                }
                CronAction::DeleteJob { name, reason } => {
                    if let Some(job) = owned.iter().find(|j| j.name == name) {
                        self.delete_job(job, now)?;
                        let event = if reason == "replaced" {
                            "SuccessfulDelete"
                        } else {
                            "SawCompletedJob"
                        };
                        self.store.record_event(
                            cj,
                            "Normal",
                            event,
                            &format!("Deleted job {name} ({reason})"),
                            SOURCE,
                            now,
                        )?;
                    }
                }
                CronAction::Normal { reason, message } => {
                    self.store
                        .record_event(cj, "Normal", reason, &message, SOURCE, now)?;
                }
                CronAction::Warning { reason, message } => {
                    self.store
                        .record_event(cj, "Warning", reason, &message, SOURCE, now)?;
                }
            }
        }
        if let Some(at) = outcome.wake_at {
            if self.cron_wake.is_none_or(|w| at < w) {
                self.cron_wake = Some(at);
            }
        }
        let active: Vec<Value> = outcome
            .active
            .iter()
            .map(|name| {
                let uid = jobs
                    .iter()
                    .find(|j| &j.name == name && j.namespace == cj.namespace)
                    .map(|j| j.uid.clone())
                    .or_else(|| self.store.get(Kind::Job, &cj.namespace, name).ok().flatten().map(|j| j.uid))
                    .unwrap_or_default();
                json!({"apiVersion": "batch/v1", "kind": "Job", "name": name, "namespace": cj.namespace, "uid": uid})
            })
            .collect();
        let mut status = json!({"active": active});
        if let Some(t) = outcome.last_schedule {
            status["lastScheduleTime"] = json!(timestamp(t));
        }
        if let Some(t) = outcome.last_successful {
            status["lastSuccessfulTime"] = json!(timestamp(t));
        }
        if cj.status != status {
            let mut updated = cj.clone();
            updated.status = status;
            self.store.put(&updated)?;
        }
        Ok(())
    }

    /// Creates a Job from a CronJob's template (a scheduled run, or `create job --from`).
    pub(super) fn create_job_from(
        &mut self,
        cj: &StoredObject,
        spec: &CronJobSpec,
        name: &str,
        scheduled: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<StoredObject> {
        let template = &spec.job_template;
        let mut job_spec = template.spec.clone();
        let mut annotations = template.metadata.annotations.clone();
        match scheduled {
            Some(at) => {
                annotations.insert(SCHEDULED_AT.into(), timestamp(at));
            }
            None => {
                annotations.insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
            }
        }
        if cj.annotations.get(PER_NODE).map(String::as_str) == Some("true") {
            self.expand_per_node(&mut job_spec, &mut annotations)?;
        }
        let uid = drover_proto::random::new_uid()?;
        let job = StoredObject {
            labels: template.metadata.labels.clone(),
            annotations,
            owner_references: controller_reference(cj),
            spec: serde_json::to_value(&job_spec)?,
            ..StoredObject::new(Kind::Job, &cj.namespace, name, uid, now)
        };
        Ok(self.store.put(&job)?)
    }

    /// Makes a Job one pod per eligible node, each pinned to its node by its index.
    fn expand_per_node(
        &self,
        job_spec: &mut drover_proto::manifest::JobSpec,
        annotations: &mut std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let nodes = self.node_views()?;
        let targets: Vec<String> = nodes_for_one_per_node(&job_spec.template.spec, &nodes)
            .into_iter()
            .collect();
        let count = targets.len() as i32;
        job_spec.completion_mode = Some(CompletionMode::Indexed);
        job_spec.completions = Some(count);
        job_spec.parallelism = Some(count.max(1));
        annotations.insert(PER_NODE_TARGETS.into(), targets.join(","));
        Ok(())
    }

    /// A Job created through the API as `kubectl create job --from=cronjob/X` builds it (a
    /// manual run controlled by a CronJob) gets what the CronJob's own runs get: one pod per
    /// node when the CronJob is per-node.
    pub(super) fn expand_manual_run(&self, job: &mut StoredObject) -> anyhow::Result<()> {
        let manual = job
            .annotations
            .get("cronjob.kubernetes.io/instantiate")
            .is_some_and(|v| v == "manual");
        if job.kind != Kind::Job || !manual || job.annotations.contains_key(PER_NODE_TARGETS) {
            return Ok(());
        }
        let owner = job.owner_references.as_array().and_then(|refs| {
            refs.iter()
                .find(|r| r["kind"] == "CronJob" && r["controller"] == true)
                .and_then(|r| r["uid"].as_str())
                .map(str::to_string)
        });
        let Some(owner) = owner else {
            return Ok(());
        };
        let per_node = self
            .store
            .list(Kind::CronJob, Some(&job.namespace))?
            .iter()
            .any(|cj| {
                cj.uid == owner && cj.annotations.get(PER_NODE).map(String::as_str) == Some("true")
            });
        if !per_node {
            return Ok(());
        }
        let mut spec: drover_proto::manifest::JobSpec = serde_json::from_value(job.spec.clone())?;
        self.expand_per_node(&mut spec, &mut job.annotations)?;
        job.spec = serde_json::to_value(&spec)?;
        Ok(())
    }
}
