//! CronJobs: runs the pure reconciler against the store; the executor creates and deletes
//! the Jobs it decides.

use chrono::{DateTime, Utc};
use drover_proto::manifest::{CronJobSpec, Kind};
use serde_json::{json, Value};
use std::sync::Arc;
use tracing::warn;

use super::daemonsets::owned_by;
use super::execute::owner_of;
use super::jobs::job_finished;
use super::Control;
use crate::object::{timestamp, timestamp_of as parse_time};
use crate::reconcile::cronjob::jobs::{run_on_each, store_actions, INSTANTIATE, PER_NODE};
use crate::reconcile::cronjob::{reconcile, CronAction, CronInput, CronRun, RunState};
use crate::reconcile::daemonset::nodes_for_one_per_node;
use crate::reconcile::job::pods::PER_NODE_TARGETS;
use crate::store::StoredObject;

const SOURCE: &str = "cronjob-controller";

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
        let per_node = cj.annotations.get(PER_NODE).map(String::as_str) == Some("true");
        let creates = outcome
            .actions
            .iter()
            .any(|a| matches!(a, CronAction::CreateJob { .. }));
        let targets = match per_node && creates {
            true => Some(self.one_per_node_targets(&spec.job_template.spec)?),
            false => None,
        };
        let actions = store_actions(&owner_of(cj), &spec, &outcome.actions, targets.as_deref());
        self.execute(SOURCE, actions, now)?;
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

    /// The nodes one pod of `job_spec` per node runs on.
    fn one_per_node_targets(
        &self,
        job_spec: &drover_proto::manifest::JobSpec,
    ) -> anyhow::Result<Vec<String>> {
        let nodes = self.node_views()?;
        Ok(nodes_for_one_per_node(&job_spec.template.spec, &nodes)
            .into_iter()
            .collect())
    }

    /// A Job created through the API as `kubectl create job --from=cronjob/X` builds it (a
    /// manual run controlled by a CronJob) gets what the CronJob's own runs get: one pod per
    /// node when the CronJob is per-node.
    pub(super) fn expand_manual_run(&self, job: &mut StoredObject) -> anyhow::Result<()> {
        let manual = job
            .annotations
            .get(INSTANTIATE)
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
        let targets = self.one_per_node_targets(&spec)?;
        run_on_each(&mut spec, &mut job.annotations, &targets);
        job.spec = serde_json::to_value(&spec)?;
        Ok(())
    }
}
