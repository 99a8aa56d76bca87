//! Jobs: runs the pure reconciler against the store. Results are recorded in the ledger
//! before anything else is done with them.

use chrono::{DateTime, Utc};
use drover_proto::manifest::{job_spec_bounds, CompletionMode, JobSpec, Kind};
use serde_json::{json, Value};
use std::sync::Arc;
use tracing::{info, warn};

use super::daemonsets::owned_by;
use super::execute::owner_of;
use super::Control;
use crate::object::{timestamp, timestamp_of as parse_time};
use crate::reconcile::job::dependencies::{resolve, DEPENDS_ON};
use crate::reconcile::job::pods::{store_actions, INDEX_KEY};
use crate::reconcile::job::{
    late_success, pod_result, reconcile, Dependencies, JobConditions, JobInput, JobPod, JobRecord,
    JobStatus, Superseded,
};
use crate::reconcile::ownership::job_selector;
use crate::store::StoredObject;

const SOURCE: &str = "job-controller";
/// Annotation on pods the Job controller deleted (they are never counted).
pub(super) const DELETED_BY_CONTROLLER: &str = "drover.io/deleted-by-controller";

/// What a Job's stored status says about its start, completion and conditions.
fn record_from_status(status: &Value) -> JobRecord {
    let mut conditions = JobConditions::default();
    for c in status["conditions"].as_array().into_iter().flatten() {
        let at = parse_time(&c["lastTransitionTime"]).unwrap_or_else(Utc::now);
        if c["status"] != "True" {
            if c["type"] == "Suspended" && c["reason"] == "JobResumed" {
                conditions.resumed = Some(at);
            }
            continue;
        }
        let reason = c["reason"].as_str().unwrap_or("").to_string();
        let message = c["message"].as_str().unwrap_or("").to_string();
        match c["type"].as_str() {
            Some("Suspended") => conditions.suspended = Some(at),
            Some("SuccessCriteriaMet") => {
                conditions.success_criteria_met = Some((at, reason, message))
            }
            Some("FailureTarget") => conditions.failure_target = Some((at, reason, message)),
            Some("Complete") => conditions.complete = Some(at),
            Some("Failed") => conditions.failed = Some((at, reason, message)),
            Some("Waiting") => conditions.waiting_for_dependencies = Some(message),
            _ => {}
        }
    }
    JobRecord {
        start_time: parse_time(&status["startTime"]),
        completion_time: parse_time(&status["completionTime"]),
        conditions,
    }
}

fn condition(kind: &str, at: DateTime<Utc>, reason: &str, message: &str) -> Value {
    condition_with_status(kind, "True", at, reason, message)
}

fn condition_with_status(
    kind: &str,
    status: &str,
    at: DateTime<Utc>,
    reason: &str,
    message: &str,
) -> Value {
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(at),
        "lastProbeTime": timestamp(at),
    })
}

fn status_json(status: &JobStatus, indexed: bool) -> Value {
    let r = &status.record;
    let c = &r.conditions;
    let mut conditions = Vec::new();
    if let Some(names) = &c.waiting_for_dependencies {
        conditions.push(condition(
            "Waiting",
            Utc::now(),
            "WaitingForDependencies",
            names,
        ));
    }
    if let Some(at) = c.suspended {
        conditions.push(condition("Suspended", at, "JobSuspended", "Job suspended"));
    } else if let Some(at) = c.resumed {
        conditions.push(condition_with_status(
            "Suspended",
            "False",
            at,
            "JobResumed",
            "Job resumed",
        ));
    }
    if let Some((at, reason, message)) = &c.failure_target {
        conditions.push(condition("FailureTarget", *at, reason, message));
    }
    if let Some((at, reason, message)) = &c.success_criteria_met {
        conditions.push(condition("SuccessCriteriaMet", *at, reason, message));
    }
    if let Some((at, reason, message)) = &c.failed {
        conditions.push(condition("Failed", *at, reason, message));
    }
    if let Some(at) = c.complete {
        // Kubernetes copies the reason and message of the criteria that were met.
        let (reason, message) = c.success_criteria_met.as_ref().map_or(
            (
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ),
            |(_, reason, message)| (reason.as_str(), message.as_str()),
        );
        conditions.push(condition("Complete", at, reason, message));
    }
    let mut value = json!({
        "active": status.active,
        "ready": status.ready,
        "succeeded": status.succeeded,
        "failed": status.failed,
        "terminating": status.terminating,
        "conditions": conditions,
    });
    if let Some(t) = r.start_time {
        value["startTime"] = json!(timestamp(t));
    }
    if let Some(t) = r.completion_time {
        value["completionTime"] = json!(timestamp(t));
    }
    if indexed {
        value["completedIndexes"] = json!(status.completed_indexes);
    }
    if let Some(failed) = &status.failed_indexes {
        value["failedIndexes"] = json!(failed);
    }
    value
}

/// Stored statuses carry a `Waiting` condition whose time is "now": compare without times.
fn same_status(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(conditions) = v["conditions"].as_array_mut() {
            for c in conditions {
                if c["type"] == "Waiting" {
                    c["lastTransitionTime"] = Value::Null;
                    c["lastProbeTime"] = Value::Null;
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

fn job_pod(pod: &StoredObject) -> JobPod {
    let status = &pod.status;
    let containers = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Init containers' restarts count towards backoffLimit and their exit codes are
    // matched by a podFailurePolicy, as in Kubernetes; readiness is the app's.
    let init = status["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let terminated_at = containers
        .iter()
        .filter_map(|c| parse_time(&c["state"]["terminated"]["finishedAt"]))
        .max();
    JobPod {
        name: pod.name.clone(),
        uid: pod.uid.clone(),
        index: pod.labels.get(INDEX_KEY).and_then(|i| i.parse().ok()),
        phase: crate::pods::phase(pod),
        ready: !containers.is_empty() && containers.iter().all(|c| c["ready"] == true),
        terminating: pod.deletion_timestamp.is_some(),
        deleted_by_controller: pod.annotations.contains_key(DELETED_BY_CONTROLLER),
        restarts: containers
            .iter()
            .chain(&init)
            .map(|c| c["restartCount"].as_u64().unwrap_or(0) as u32)
            .sum(),
        exit_codes: containers
            .iter()
            .chain(&init)
            .filter_map(|c| {
                let code = c["state"]["terminated"]["exitCode"].as_i64()?;
                Some((c["name"].as_str().unwrap_or("").to_string(), code as i32))
            })
            .collect(),
        conditions: status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] == "True")
            .filter_map(|c| c["type"].as_str().map(str::to_string))
            .collect(),
        finished_at: terminated_at,
    }
}

/// Whether a stored Job has finished, and how.
pub fn job_finished(job: &StoredObject) -> Option<bool> {
    let conditions = job.status["conditions"].as_array()?;
    let has = |t: &str| {
        conditions
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    if has("Complete") {
        Some(true)
    } else if has("Failed") {
        Some(false)
    } else {
        None
    }
}

impl Control {
    fn dependencies(&self, job: &StoredObject, jobs: &[Arc<StoredObject>]) -> Dependencies {
        resolve(
            job.annotations.get(DEPENDS_ON).map(String::as_str),
            |name| {
                jobs.iter()
                    .find(|j| j.name == name && j.namespace == job.namespace)
                    .and_then(|j| job_finished(j))
            },
        )
    }

    /// Reconciles every Job.
    pub(super) fn reconcile_jobs(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let jobs = self.store.list(Kind::Job, None)?;
        self.job_elapsed.retain(|key| {
            let uid = key.split_once('/').map_or(key, |(uid, _)| uid);
            jobs.iter().any(|job| job.uid == uid)
        });
        if jobs.is_empty() {
            return Ok(());
        }
        let pods = self.store.list(Kind::Pod, None)?;
        self.jobs_wake = None;
        // One being deleted (foreground) starts nothing new. The pods it creates are placed
        // by the scheduling pass that follows in settle.
        for job in jobs.iter().filter(|job| job.deletion_timestamp.is_none()) {
            let result = self.reconcile_job(job, &jobs, &pods, now);
            self.object_result(job, result, now);
        }
        Ok(())
    }

    /// Returns whether pods were created.
    fn reconcile_job(
        &mut self,
        job: &StoredObject,
        jobs: &[Arc<StoredObject>],
        pods: &[Arc<StoredObject>],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let spec: JobSpec = serde_json::from_value(job.spec.clone())?;
        if let Some((field, message)) = job_spec_bounds("spec", &spec).first() {
            // Accepted by an older version: the reconciler would allocate per index or
            // create pods by the billion. Leave it alone until it is deleted or re-applied.
            warn!(job = %format!("{}/{}", job.namespace, job.name), field, message, "not reconciling a Job whose spec is out of bounds");
            return Ok(());
        }
        // Orphans with the Job's controller-uid are adopted, its pods relabelled out of
        // it released, before anything is counted; a finished Job claims nothing, as in
        // Kubernetes (its counts are final).
        let claimed = if job_finished(job).is_some() {
            pods.iter()
                .filter(|p| owned_by(p, &job.uid))
                .cloned()
                .collect()
        } else {
            self.claim_pods(job, &job_selector(&job.uid), pods)?
        };
        let owned: Vec<&StoredObject> = claimed.iter().map(|p| p.as_ref()).collect();
        let views: Vec<JobPod> = owned.iter().map(|p| job_pod(p)).collect();
        let ledger = self.store.job_results(&job.uid)?;
        let record = record_from_status(&job.status);
        let dependencies = self.dependencies(job, jobs);
        // Durations on the monotonic clock, from the recorded (wall-clock) instants.
        let mono = self.mono(now);
        let active_for = record.start_time.map(|start| {
            self.job_elapsed
                .since(&format!("{}/active", job.uid), start, now, mono)
        });
        let finished_at = record.conditions.complete.or(record
            .conditions
            .failed
            .as_ref()
            .map(|f| f.0));
        let finished_for = finished_at.map(|at| {
            self.job_elapsed
                .since(&format!("{}/finished", job.uid), at, now, mono)
        });
        let outcome = reconcile(&JobInput {
            namespace: &job.namespace,
            spec: &spec,
            record: &record,
            pods: &views,
            ledger: &ledger,
            dependencies: &dependencies,
            settings: self.settings.job,
            now,
            active_for,
            finished_for,
        });
        // Persist results first: whatever happens next, they are counted exactly once.
        self.store.record_job_results(&job.uid, &outcome.record)?;
        for superseded in &outcome.superseded {
            self.note_superseded(job, superseded, now)?;
        }
        let actions = store_actions(&owner_of(job), &job.annotations, &spec, &outcome);
        self.execute(SOURCE, actions, now)?;
        if outcome.delete_job {
            return Ok(());
        }
        if let Some(at) = outcome.wake_at {
            let at = self.mono_wake(at, now);
            if self.jobs_wake.is_none_or(|w| at < w) {
                self.jobs_wake = Some(at);
            }
        }
        let indexed = spec.completion_mode == Some(CompletionMode::Indexed);
        let status = status_json(&outcome.status, indexed);
        if !same_status(&job.status, &status) {
            let was_finished = job_finished(job);
            let mut updated = job.clone();
            updated.status = status;
            let stored = self.store.put(&updated)?;
            if was_finished != job_finished(&stored) {
                // Dependents and the owning CronJob look again.
                self.dirty = true;
            }
            match (was_finished, job_finished(&stored)) {
                (None, Some(true)) => {
                    self.store.record_event(
                        &stored,
                        "Normal",
                        "Completed",
                        "Job completed",
                        SOURCE,
                        now,
                    )?;
                }
                (None, Some(false)) => {
                    let reason = outcome
                        .status
                        .record
                        .conditions
                        .failed
                        .as_ref()
                        .map_or("Failed", |f| f.1.as_str());
                    let message = outcome
                        .status
                        .record
                        .conditions
                        .failed
                        .as_ref()
                        .map_or("", |f| f.2.as_str());
                    self.store
                        .record_event(&stored, "Warning", reason, message, SOURCE, now)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Counts a Job pod that leaves the store before the Job controller could see it
    /// terminating (forced deletion, a node that cannot confirm, a removed node): what a
    /// Kubernetes Job's tracking finalizer guarantees.
    pub(super) fn count_removed_job_pod(
        &mut self,
        pod: &StoredObject,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(job_uid) = pod.labels.get("batch.kubernetes.io/controller-uid") else {
            return Ok(());
        };
        let Some(job) = self.store.get_by_uid(job_uid)? else {
            return Ok(());
        };
        if job.kind != Kind::Job || !owned_by(pod, &job.uid) || job.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Ok(spec) = serde_json::from_value::<JobSpec>(job.spec.clone()) else {
            return Ok(());
        };
        let mut view = job_pod(pod);
        view.terminating = true;
        if let Some(entry) = self
            .store
            .job_results(&job.uid)?
            .into_iter()
            .find(|e| e.pod_uid == view.uid)
        {
            // Its last report may have been a success the Job could not count any more.
            if let Some(superseded) = late_success(&entry, &view) {
                self.note_superseded(&job, &superseded, now)?;
            }
            return Ok(());
        }
        if let Some(entry) = pod_result(&spec, &view, true, now) {
            self.store.record_job_results(&job.uid, &[entry])?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Records a superseded result once, with a warning event on the Job.
    fn note_superseded(
        &mut self,
        job: &StoredObject,
        superseded: &Superseded,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if self
            .store
            .record_superseded(&job.uid, &superseded.pod_uid)?
        {
            let message = superseded.message(&job.namespace);
            info!(job = %format!("{}/{}", job.namespace, job.name), "{message}");
            self.store
                .record_event(job, "Warning", "SupersededResult", &message, SOURCE, now)?;
        }
        Ok(())
    }
}
