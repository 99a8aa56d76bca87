//! The Jobs a CronJob creates: its job template, marked with the run's scheduled time (or
//! as a manual run), and for a per-node CronJob one pod pinned to each eligible node.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use drover_proto::manifest::{CompletionMode, CronJobSpec, JobSpec};

use drover_proto::manifest::Kind;

use super::CronAction;
use crate::object::timestamp;
use crate::reconcile::action::{Action, NewJob, ObjectKey, Owner};
use crate::reconcile::job::pods::PER_NODE_TARGETS;

/// Annotation that makes a CronJob run one pod on every eligible node at each run.
pub const PER_NODE: &str = "drover.io/per-node";
/// Annotation with a Job's nominal run time.
pub const SCHEDULED_AT: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Annotation of a run started by hand (`kubectl create job --from=cronjob/…`).
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";

/// The Job `name` of `cj` for the run scheduled at `scheduled` (None: a manual run).
pub fn new_job(
    cj: &Owner,
    spec: &CronJobSpec,
    name: &str,
    scheduled: Option<DateTime<Utc>>,
) -> NewJob {
    let template = &spec.job_template;
    let mut annotations = template.metadata.annotations.clone();
    match scheduled {
        Some(at) => annotations.insert(SCHEDULED_AT.into(), timestamp(at)),
        None => annotations.insert(INSTANTIATE.into(), "manual".into()),
    };
    NewJob {
        owner: cj.clone(),
        name: name.to_string(),
        labels: template.metadata.labels.clone(),
        annotations,
        spec: template.spec.clone(),
    }
}

/// Makes a Job one pod per node of `targets`, each pinned to its node by its index.
pub fn run_on_each(
    spec: &mut JobSpec,
    annotations: &mut BTreeMap<String, String>,
    targets: &[String],
) {
    let count = targets.len() as i32;
    spec.completion_mode = Some(CompletionMode::Indexed);
    spec.completions = Some(count);
    spec.parallelism = Some(count.max(1));
    annotations.insert(PER_NODE_TARGETS.into(), targets.join(","));
}

/// What the reconciler's actions ask of the store, in order. `per_node_targets`: the
/// nodes each run of a per-node CronJob covers (None: it is not one).
pub fn store_actions(
    cj: &Owner,
    spec: &CronJobSpec,
    actions: &[CronAction],
    per_node_targets: Option<&[String]>,
) -> Vec<Action> {
    let mut out = Vec::new();
    for action in actions {
        match action {
            CronAction::CreateJob { name, scheduled } => {
                let mut job = new_job(cj, spec, name, Some(*scheduled));
                if let Some(targets) = per_node_targets {
                    run_on_each(&mut job.spec, &mut job.annotations, targets);
                }
                out.push(Action::CreateJob(job));
            }
            CronAction::DeleteJob { name, reason } => {
                out.push(Action::DeleteWithDependents(ObjectKey::new(
                    Kind::Job,
                    &cj.key.namespace,
                    name,
                )));
                // A run replaced under `Replace` is a deletion; one past the history
                // limits was seen completed.
                let event = if *reason == "replaced" {
                    "SuccessfulDelete"
                } else {
                    "SawCompletedJob"
                };
                out.push(Action::normal(
                    &cj.key,
                    event,
                    format!("Deleted job {name} ({reason})"),
                ));
            }
            CronAction::Normal { reason, message } => {
                out.push(Action::normal(&cj.key, reason, message.clone()));
            }
            CronAction::Warning { reason, message } => {
                out.push(Action::warning(&cj.key, reason, message.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::action::ObjectKey;
    use drover_proto::manifest::Kind;
    use serde_json::json;

    fn cj() -> Owner {
        Owner {
            key: ObjectKey::new(Kind::CronJob, "ops", "backup"),
            uid: "cj-uid".into(),
        }
    }

    fn spec() -> CronJobSpec {
        serde_json::from_value(json!({
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "metadata": {"labels": {"team": "ops"}, "annotations": {"note": "kept"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "main", "command": ["true"]}]}}},
            },
        }))
        .expect("a valid spec")
    }

    #[test]
    fn a_scheduled_run_carries_the_template_and_its_time() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T06:05:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let job = new_job(&cj(), &spec(), "backup-29412365", Some(at));
        assert_eq!(job.name, "backup-29412365");
        assert_eq!(job.owner, cj());
        assert_eq!(job.labels["team"], "ops");
        assert_eq!(job.annotations["note"], "kept");
        assert_eq!(job.annotations[SCHEDULED_AT], "2026-12-02T06:05:00Z");
        assert!(!job.annotations.contains_key(INSTANTIATE));
        assert_eq!(job.spec.backoff_limit, Some(2));
    }

    #[test]
    fn a_manual_run_says_so() {
        let job = new_job(&cj(), &spec(), "backup-manual", None);
        assert_eq!(job.annotations[INSTANTIATE], "manual");
        assert!(!job.annotations.contains_key(SCHEDULED_AT));
    }

    #[test]
    fn a_per_node_run_is_indexed_with_one_completion_per_node() {
        let mut job = new_job(&cj(), &spec(), "backup-1", None);
        let targets = ["n1".to_string(), "n2".to_string(), "n3".to_string()];
        run_on_each(&mut job.spec, &mut job.annotations, &targets);
        assert_eq!(job.spec.completion_mode, Some(CompletionMode::Indexed));
        assert_eq!(job.spec.completions, Some(3));
        assert_eq!(job.spec.parallelism, Some(3));
        assert_eq!(job.annotations[PER_NODE_TARGETS], "n1,n2,n3");
    }

    #[test]
    fn reconciler_actions_become_store_actions_in_order() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T06:05:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let actions = [
            CronAction::DeleteJob {
                name: "backup-1".into(),
                reason: "replaced",
            },
            CronAction::CreateJob {
                name: "backup-2".into(),
                scheduled: at,
            },
            CronAction::Warning {
                reason: "TooManyMissedTimes",
                message: "too many".into(),
            },
        ];
        let targets = ["n1".to_string()];
        let out = store_actions(&cj(), &spec(), &actions, Some(&targets));
        assert_eq!(
            out[0],
            Action::DeleteWithDependents(ObjectKey::new(Kind::Job, "ops", "backup-1"))
        );
        assert_eq!(
            out[1],
            Action::normal(
                &cj().key,
                "SuccessfulDelete",
                "Deleted job backup-1 (replaced)"
            )
        );
        let Action::CreateJob(job) = &out[2] else {
            panic!("{:?}", out[2]);
        };
        assert_eq!(job.name, "backup-2");
        assert_eq!(job.annotations[PER_NODE_TARGETS], "n1");
        assert_eq!(
            out[3],
            Action::warning(&cj().key, "TooManyMissedTimes", "too many")
        );
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn a_job_past_the_history_limit_was_seen_completed() {
        let actions = [CronAction::DeleteJob {
            name: "backup-0".into(),
            reason: "history",
        }];
        let out = store_actions(&cj(), &spec(), &actions, None);
        assert_eq!(
            out[1],
            Action::normal(
                &cj().key,
                "SawCompletedJob",
                "Deleted job backup-0 (history)"
            )
        );
    }

    #[test]
    fn a_per_node_run_with_no_node_completes_with_nothing_to_run() {
        let mut job = new_job(&cj(), &spec(), "backup-1", None);
        run_on_each(&mut job.spec, &mut job.annotations, &[]);
        assert_eq!(job.spec.completions, Some(0));
        assert_eq!(job.spec.parallelism, Some(1));
        assert_eq!(job.annotations[PER_NODE_TARGETS], "");
    }
}
