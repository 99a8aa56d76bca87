//! The Job reconciler with a hand-held clock: each rule of spec §2.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_proto::manifest::*;

use super::*;

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn job(
    completions: Option<i32>,
    parallelism: Option<i32>,
    backoff_limit: Option<i32>,
    policy: RestartPolicy,
) -> JobSpec {
    let mut spec = JobSpec {
        completions,
        parallelism,
        backoff_limit,
        ..Default::default()
    };
    spec.template.spec.restart_policy = Some(policy);
    spec
}

fn indexed(completions: i32, parallelism: i32) -> JobSpec {
    let mut spec = job(
        Some(completions),
        Some(parallelism),
        None,
        RestartPolicy::Never,
    );
    spec.completion_mode = Some(CompletionMode::Indexed);
    spec
}

/// A Job and its world: pods come from the reconciler's `create`, results go to the ledger.
struct World {
    spec: JobSpec,
    record: JobRecord,
    pods: Vec<JobPod>,
    ledger: Vec<LedgerEntry>,
    dependencies: Dependencies,
    next: u32,
    max_active: u32,
    settings: JobSettings,
}

impl World {
    fn new(spec: JobSpec) -> World {
        World {
            spec,
            record: JobRecord::default(),
            pods: vec![],
            ledger: vec![],
            dependencies: Dependencies::Ready,
            next: 0,
            max_active: 0,
            settings: JobSettings::default(),
        }
    }

    /// One reconcile: records results, creates pods (Running at once), deletes pods.
    fn step(&mut self, now: DateTime<Utc>) -> JobOutcome {
        self.step_active_for(now, None)
    }

    /// A reconcile with the time the Job has been active on the monotonic clock.
    fn step_active_for(
        &mut self,
        now: DateTime<Utc>,
        active_for: Option<chrono::Duration>,
    ) -> JobOutcome {
        let outcome = reconcile(&JobInput {
            namespace: "default",
            spec: &self.spec,
            record: &self.record,
            pods: &self.pods,
            ledger: &self.ledger,
            dependencies: &self.dependencies,
            settings: self.settings,
            now,
            active_for,
            finished_for: None,
        });
        self.ledger.extend(outcome.record.iter().cloned());
        self.record = outcome.status.record.clone();
        for name in &outcome.delete {
            self.pods.retain(|p| &p.name != name);
        }
        for index in &outcome.create {
            self.next += 1;
            self.pods.push(JobPod {
                name: format!("pod-{:03}", self.next),
                uid: format!("uid-{}", self.next),
                index: *index,
                phase: PodPhase::Running,
                ready: true,
                terminating: false,
                deleted_by_controller: false,
                restarts: 0,
                exit_codes: vec![],
                conditions: vec![],
                finished_at: None,
            });
        }
        let active = self
            .pods
            .iter()
            .filter(|p| p.phase == PodPhase::Running)
            .count() as u32;
        self.max_active = self.max_active.max(active);
        outcome
    }

    fn running(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|p| p.phase == PodPhase::Running)
            .map(|p| p.name.clone())
            .collect()
    }

    fn finish(&mut self, name: &str, code: i32, now: DateTime<Utc>) {
        let pod = self.pods.iter_mut().find(|p| p.name == name).unwrap();
        pod.phase = if code == 0 {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
        pod.exit_codes = vec![("main".into(), code)];
        pod.finished_at = Some(now);
    }

    fn finish_all_running(&mut self, code: i32, now: DateTime<Utc>) {
        for name in self.running() {
            self.finish(&name, code, now);
        }
    }

    fn complete(&self) -> bool {
        self.record.conditions.complete.is_some()
    }

    fn failed_reason(&self) -> Option<String> {
        self.record.conditions.failed.as_ref().map(|f| f.1.clone())
    }
}

#[test]
fn completions_8_parallelism_2_runs_in_4_waves_and_completes() {
    let mut w = World::new(job(Some(8), Some(2), None, RestartPolicy::Never));
    let mut waves = 0;
    for s in 0..20 {
        w.step(t(s));
        if w.complete() {
            break;
        }
        if !w.running().is_empty() {
            waves += 1;
            w.finish_all_running(0, t(s));
        }
    }
    assert!(w.complete());
    assert_eq!(waves, 4);
    assert_eq!(w.max_active, 2);
    let status = w.step(t(30)).status;
    assert_eq!((status.succeeded, status.failed, status.active), (8, 0, 0));
    assert!(w.record.completion_time.is_some());
    assert!(w.record.conditions.success_criteria_met.is_some());
    assert!(w.record.conditions.failed.is_none());
}

#[test]
fn backoff_limit_boundary_with_restart_policy_never() {
    for (limit, failures_to_fail) in [(2, 3), (0, 1), (1, 2)] {
        let mut w = World::new(job(None, None, Some(limit), RestartPolicy::Never));
        w.settings.backoff_initial = Duration::ZERO;
        let mut failures = 0;
        for s in 0..20 {
            w.step(t(s));
            if w.failed_reason().is_some() {
                break;
            }
            if let Some(name) = w.running().first().cloned() {
                w.finish(&name, 1, t(s));
                failures += 1;
            }
        }
        assert_eq!(
            w.failed_reason().as_deref(),
            Some("BackoffLimitExceeded"),
            "limit {limit}"
        );
        assert_eq!(failures, failures_to_fail, "limit {limit}");
        assert_eq!(w.step(t(100)).status.failed, failures_to_fail);
    }
}

#[test]
fn on_failure_jobs_fail_when_restarts_reach_the_limit() {
    let mut w = World::new(job(None, None, Some(3), RestartPolicy::OnFailure));
    w.step(t(0));
    w.pods[0].restarts = 2;
    w.step(t(1));
    assert!(w.record.conditions.failure_target.is_none());
    w.pods[0].restarts = 3;
    w.step(t(2));
    assert_eq!(
        w.record.conditions.failure_target.as_ref().unwrap().1,
        "BackoffLimitExceeded"
    );
    let outcome = w.step(t(3));
    assert!(
        w.failed_reason().is_some(),
        "active pods were stopped, then Failed: {outcome:?}"
    );
}

#[test]
fn replacement_delays_double_from_10s_to_6_minutes() {
    let delays: Vec<u64> = (1..=8)
        .map(|n| replacement_delay(JobSettings::default(), n).as_secs())
        .collect();
    assert_eq!(delays, vec![10, 20, 40, 80, 160, 320, 360, 360]);
    let mut w = World::new(job(None, None, Some(6), RestartPolicy::Never));
    w.step(t(0));
    let name = w.running()[0].clone();
    w.finish(&name, 1, t(5));
    let outcome = w.step(t(5));
    assert!(outcome.create.is_empty());
    assert_eq!(outcome.wake_at, Some(t(15)));
    assert!(w.step(t(14)).create.is_empty());
    assert_eq!(w.step(t(15)).create.len(), 1);
}

#[test]
fn the_deadline_wins_over_the_backoff_limit() {
    let mut spec = job(None, None, Some(0), RestartPolicy::Never);
    spec.active_deadline_seconds = Some(10);
    let mut w = World::new(spec);
    w.step(t(0));
    let name = w.running()[0].clone();
    w.finish(&name, 1, t(10));
    w.step(t(10));
    assert_eq!(
        w.record.conditions.failure_target.as_ref().unwrap().1,
        "DeadlineExceeded"
    );
    assert_eq!(w.failed_reason().as_deref(), Some("DeadlineExceeded"));
}

#[test]
fn the_deadline_counts_active_time_not_wall_clock_steps() {
    let mut spec = job(None, None, None, RestartPolicy::Never);
    spec.active_deadline_seconds = Some(600);
    let mut w = World::new(spec);
    w.step(t(0));
    let secs = chrono::Duration::seconds;
    // The wall clock jumps an hour ahead 15 s into the run: 15 s active is not 600.
    let outcome = w.step_active_for(t(3615), Some(secs(15)));
    assert!(w.record.conditions.failure_target.is_none());
    assert_eq!(
        outcome.wake_at,
        Some(t(3615 + 585)),
        "woken when 600 s are up"
    );
    // An hour back: 600 s active is the deadline, whatever the wall clock says.
    w.step_active_for(t(-3000), Some(secs(600)));
    assert_eq!(
        w.record.conditions.failure_target.as_ref().unwrap().1,
        "DeadlineExceeded"
    );
}

#[test]
fn the_deadline_stops_running_pods() {
    let mut spec = job(None, None, None, RestartPolicy::Never);
    spec.active_deadline_seconds = Some(10);
    let mut w = World::new(spec);
    let outcome = w.step(t(0));
    assert_eq!(outcome.wake_at, Some(t(10)));
    let outcome = w.step(t(10));
    assert_eq!(outcome.delete.len(), 1);
    assert_eq!(
        w.record.conditions.failure_target.as_ref().unwrap().1,
        "DeadlineExceeded"
    );
    assert!(
        w.failed_reason().is_none(),
        "Failed only once its pods are gone"
    );
    w.step(t(11));
    assert_eq!(w.failed_reason().as_deref(), Some("DeadlineExceeded"));
    assert!(
        w.record.completion_time.is_none(),
        "completionTime is set only on success"
    );
}

#[test]
fn an_index_is_counted_once_however_often_it_succeeds() {
    let mut w = World::new(indexed(3, 3));
    w.step(t(0));
    assert_eq!(
        w.pods.iter().map(|p| p.index.unwrap()).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    // Index 0 succeeds through two pods (e.g. an eviction's replacement, and the evicted
    // pod itself): the second success is superseded.
    w.finish("pod-001", 0, t(1));
    w.pods.push(JobPod {
        name: "pod-extra".into(),
        uid: "uid-extra".into(),
        index: Some(0),
        ..w.pods[0].clone()
    });
    let outcome = w.step(t(2));
    assert_eq!(outcome.status.succeeded, 1);
    assert_eq!(outcome.status.completed_indexes, "0");
    assert_eq!(outcome.superseded.len(), 1);

    // A pod still running for an index that has succeeded has nothing left to do.
    w.pods.push(JobPod {
        name: "pod-late".into(),
        uid: "uid-late".into(),
        index: Some(0),
        phase: PodPhase::Running,
        ..w.pods[0].clone()
    });
    assert_eq!(w.step(t(2)).delete, vec!["pod-late".to_string()]);
    w.finish_all_running(0, t(3));
    let status = w.step(t(3)).status;
    assert_eq!(status.succeeded, 3);
    assert_eq!(status.completed_indexes, "0-2");
    assert!(w.complete());
}

#[test]
fn work_queue_jobs_complete_when_one_succeeded_and_none_is_active() {
    let mut w = World::new(job(None, Some(3), None, RestartPolicy::Never));
    assert_eq!(w.step(t(0)).create.len(), 3);
    w.finish("pod-001", 0, t(1));
    let outcome = w.step(t(1));
    assert!(outcome.create.is_empty(), "no new pods once one succeeded");
    assert!(!w.complete());
    w.finish("pod-002", 0, t(2));
    w.finish("pod-003", 0, t(2));
    w.step(t(2));
    assert!(w.complete());
}

#[test]
fn a_job_created_suspended_starts_nothing_and_resuming_resets_start_time() {
    let mut spec = job(Some(2), Some(2), None, RestartPolicy::Never);
    spec.suspend = Some(true);
    let mut w = World::new(spec);
    let outcome = w.step(t(0));
    assert!(outcome.create.is_empty());
    assert!(w.record.start_time.is_none());
    assert!(w.record.conditions.suspended.is_some());
    w.spec.suspend = Some(false);
    w.step(t(50));
    assert_eq!(w.record.start_time, Some(t(50)));
    assert_eq!(w.running().len(), 2);
    // Suspending a running Job stops its pods without counting failures.
    w.spec.suspend = Some(true);
    let outcome = w.step(t(60));
    assert_eq!(outcome.delete.len(), 2);
    assert_eq!(outcome.status.failed, 0);
    w.spec.suspend = Some(false);
    w.step(t(70));
    assert_eq!(w.record.start_time, Some(t(70)));
}

#[test]
fn ttl_after_finished_deletes_the_job() {
    let mut spec = job(None, None, None, RestartPolicy::Never);
    spec.ttl_seconds_after_finished = Some(30);
    let mut w = World::new(spec);
    w.step(t(0));
    w.finish_all_running(0, t(1));
    let outcome = w.step(t(1));
    assert!(w.complete());
    assert_eq!(outcome.wake_at, Some(t(31)));
    assert!(!w.step(t(30)).delete_job);
    assert!(w.step(t(31)).delete_job);
}

#[test]
fn pod_failure_policy_ignore_does_not_count_and_fail_job_fails_at_once() {
    let mut spec = job(Some(1), None, Some(0), RestartPolicy::Never);
    spec.pod_failure_policy = Some(PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: PodFailurePolicyAction::Ignore,
                on_exit_codes: None,
                on_pod_conditions: vec![OnPodCondition {
                    kind: "DisruptionTarget".into(),
                    status: None,
                }],
            },
            PodFailurePolicyRule {
                action: PodFailurePolicyAction::FailJob,
                on_exit_codes: Some(OnExitCodes {
                    container_name: None,
                    operator: ExitCodeOperator::In,
                    values: vec![42],
                }),
                on_pod_conditions: vec![],
            },
        ],
    });
    let mut w = World::new(spec);
    w.step(t(0));
    // Evicted: ignored, replaced without back-off.
    w.pods[0].phase = PodPhase::Failed;
    w.pods[0].conditions.push("DisruptionTarget".into());
    w.pods[0].finished_at = Some(t(1));
    let outcome = w.step(t(1));
    assert_eq!(outcome.status.failed, 0);
    assert_eq!(outcome.record[0].outcome, Outcome::Ignored);
    assert_eq!(outcome.create.len(), 1);
    // Exit 42: FailJob, even though backoffLimit 0 would also fail it.
    let name = w.running()[0].clone();
    w.finish(&name, 42, t(2));
    w.step(t(2));
    assert_eq!(w.failed_reason().as_deref(), Some("PodFailurePolicy"));
}

#[test]
fn backoff_limit_per_index_fails_indexes_and_max_failed_indexes_fails_early() {
    let mut spec = indexed(4, 4);
    spec.backoff_limit_per_index = Some(0);
    spec.max_failed_indexes = Some(1);
    let mut w = World::new(spec);
    w.settings.backoff_initial = Duration::ZERO;
    w.step(t(0));
    w.finish("pod-001", 1, t(1));
    let status = w.step(t(1)).status;
    assert_eq!(status.failed_indexes.as_deref(), Some("0"));
    assert!(
        w.record.conditions.failure_target.is_none(),
        "one failed index is allowed"
    );
    w.finish("pod-002", 1, t(2));
    w.step(t(2));
    assert_eq!(
        w.record.conditions.failure_target.as_ref().unwrap().1,
        "MaxFailedIndexesExceeded"
    );
}

#[test]
fn failed_indexes_fail_the_job_once_every_index_is_done() {
    let mut spec = indexed(2, 2);
    spec.backoff_limit_per_index = Some(0);
    let mut w = World::new(spec);
    w.step(t(0));
    w.finish("pod-001", 1, t(1));
    w.finish("pod-002", 0, t(1));
    w.step(t(1));
    assert_eq!(w.failed_reason().as_deref(), Some("FailedIndexes"));
}

#[test]
fn success_policy_completes_early_and_stops_the_rest() {
    let mut spec = indexed(5, 5);
    spec.success_policy = Some(SuccessPolicy {
        rules: vec![SuccessPolicyRule {
            succeeded_indexes: Some("0".into()),
            succeeded_count: None,
        }],
    });
    let mut w = World::new(spec);
    w.step(t(0));
    w.finish("pod-001", 0, t(1));
    let outcome = w.step(t(1));
    assert_eq!(
        w.record.conditions.success_criteria_met.as_ref().unwrap().1,
        "SuccessPolicy"
    );
    assert_eq!(outcome.delete.len(), 4);
    assert!(
        !w.complete(),
        "Complete only once the remaining pods are gone"
    );
    w.step(t(2));
    assert!(w.complete());
}

#[test]
fn results_are_recorded_once_per_pod() {
    let mut w = World::new(job(Some(2), Some(1), None, RestartPolicy::Never));
    w.step(t(0));
    w.finish("pod-001", 0, t(1));
    let first = w.step(t(1));
    assert_eq!(first.record.len(), 1);
    // The same terminal pod seen again (a duplicate report, a restart) records nothing.
    let again = w.step(t(2));
    assert!(again.record.is_empty());
    assert_eq!(again.status.succeeded, 1);
}

#[test]
fn a_finished_job_never_has_both_complete_and_failed() {
    let mut w = World::new(job(Some(1), None, Some(0), RestartPolicy::Never));
    w.step(t(0));
    w.finish_all_running(0, t(1));
    w.step(t(1));
    assert!(w.complete());
    // A late failure (e.g. a pod evicted after the fact) changes nothing.
    w.pods.push(JobPod {
        name: "late".into(),
        uid: "late".into(),
        phase: PodPhase::Failed,
        ..w.pods[0].clone()
    });
    let outcome = w.step(t(2));
    assert!(w.record.conditions.failed.is_none());
    assert_eq!(outcome.status.succeeded, 1);
}

#[test]
fn dependencies_hold_the_job_and_a_failed_one_fails_it() {
    let mut w = World::new(job(None, None, None, RestartPolicy::Never));
    w.dependencies = Dependencies::Waiting(vec!["a".into()]);
    let outcome = w.step(t(0));
    assert!(outcome.create.is_empty());
    assert!(w.record.start_time.is_none());
    assert_eq!(
        w.record.conditions.waiting_for_dependencies.as_deref(),
        Some("a")
    );
    w.dependencies = Dependencies::Ready;
    assert_eq!(w.step(t(1)).create.len(), 1);

    let mut w = World::new(job(None, None, None, RestartPolicy::Never));
    w.dependencies = Dependencies::Failed("a".into());
    w.step(t(0));
    assert_eq!(w.failed_reason().as_deref(), Some("DependencyFailed"));
}

#[test]
fn lowering_parallelism_deletes_the_newest_pods() {
    let mut w = World::new(job(Some(10), Some(4), None, RestartPolicy::Never));
    w.step(t(0));
    w.spec.parallelism = Some(1);
    let outcome = w.step(t(1));
    assert_eq!(outcome.delete, vec!["pod-004", "pod-003", "pod-002"]);
}

#[test]
fn compact_index_strings() {
    let set: BTreeSet<u32> = [1, 3, 4, 5, 7].into();
    assert_eq!(compact_indexes(&set), "1,3-5,7");
    assert_eq!(parse_indexes("1,3-5,7"), Some(set));
    assert_eq!(parse_indexes("5-3"), None);
    assert_eq!(compact_indexes(&BTreeSet::new()), "");
}

#[test]
fn the_largest_active_deadline_is_no_deadline_and_no_panic() {
    let mut spec = job(Some(1), None, None, RestartPolicy::Never);
    spec.active_deadline_seconds = Some(i64::MAX);
    let mut world = World::new(spec);
    let outcome = world.step(t(0));
    assert_eq!(outcome.create.len(), 1);
    world.step(t(1_000_000));
    assert!(world.record.conditions.failed.is_none());
}

#[test]
fn pods_stopped_at_the_deadline_count_as_failed() {
    let mut spec = job(Some(2), Some(2), None, RestartPolicy::Never);
    spec.active_deadline_seconds = Some(10);
    let mut w = World::new(spec);
    w.step(t(0));
    let outcome = w.step(t(10));
    assert_eq!(outcome.delete.len(), 2);
    assert_eq!(outcome.status.failed, 2);
    assert_eq!(outcome.record.len(), 2);
    // Counted once: the stopped pods' own reports add nothing.
    let outcome = w.step(t(11));
    assert!(outcome.record.is_empty());
    assert_eq!(outcome.status.failed, 2);
    assert_eq!(w.failed_reason().as_deref(), Some("DeadlineExceeded"));
}

#[test]
fn pods_stopped_at_the_deadline_count_as_failed_under_either_replacement_policy() {
    for policy in [
        PodReplacementPolicy::TerminatingOrFailed,
        PodReplacementPolicy::Failed,
    ] {
        let mut spec = job(Some(3), Some(2), Some(6), RestartPolicy::Never);
        spec.active_deadline_seconds = Some(10);
        spec.pod_replacement_policy = Some(policy);
        let mut w = World::new(spec);
        w.step(t(0));
        let outcome = w.step(t(10));
        assert_eq!(outcome.delete.len(), 2, "{policy:?}");
        assert_eq!(outcome.status.failed, 2, "{policy:?}");
        assert!(
            outcome.create.is_empty(),
            "{policy:?}: nothing replaces them"
        );
        // Their reports once stopped add nothing.
        for pod in &mut w.pods {
            pod.terminating = true;
            pod.phase = PodPhase::Failed;
        }
        assert_eq!(w.step(t(11)).status.failed, 2, "{policy:?}");
        assert_eq!(w.failed_reason().as_deref(), Some("DeadlineExceeded"));
    }
}

#[test]
fn pods_stopped_on_success_are_not_counted() {
    let mut spec = indexed(3, 3);
    spec.success_policy = Some(SuccessPolicy {
        rules: vec![SuccessPolicyRule {
            succeeded_indexes: Some("0".into()),
            succeeded_count: None,
        }],
    });
    let mut w = World::new(spec);
    w.step(t(0));
    w.finish("pod-001", 0, t(1));
    let outcome = w.step(t(1));
    assert_eq!(outcome.delete.len(), 2);
    assert_eq!(outcome.status.failed, 0);
}

#[test]
fn a_running_pod_a_user_deletes_counts_as_failed_and_uses_up_the_backoff_limit() {
    let mut w = World::new(job(Some(1), None, Some(1), RestartPolicy::Never));
    w.settings.backoff_initial = Duration::ZERO;
    w.step(t(0));
    w.pods[0].terminating = true;
    let outcome = w.step(t(1));
    assert_eq!(outcome.status.failed, 1);
    assert_eq!(outcome.record[0].outcome, Outcome::Failed);
    assert_eq!(outcome.create.len(), 1, "replaced");
    assert_eq!(outcome.status.terminating, 1);
    // Its own report later changes nothing.
    w.pods[0].phase = PodPhase::Failed;
    assert!(w.step(t(2)).record.is_empty());
    let name = w.running()[0].clone();
    w.pods
        .iter_mut()
        .find(|p| p.name == name)
        .unwrap()
        .terminating = true;
    w.step(t(3));
    assert_eq!(
        w.record.conditions.failure_target.as_ref().unwrap().1,
        "BackoffLimitExceeded"
    );
}

#[test]
fn pods_the_controller_deletes_are_never_counted() {
    let mut w = World::new(job(Some(1), None, None, RestartPolicy::Never));
    w.step(t(0));
    w.pods[0].terminating = true;
    w.pods[0].deleted_by_controller = true;
    assert_eq!(w.step(t(1)).status.failed, 0);
}

#[test]
fn a_resumed_job_keeps_suspended_as_resumed() {
    let mut spec = job(Some(1), None, None, RestartPolicy::Never);
    spec.suspend = Some(true);
    let mut w = World::new(spec);
    w.step(t(0));
    assert_eq!(w.record.conditions.suspended, Some(t(0)));
    w.spec.suspend = Some(false);
    w.step(t(5));
    assert_eq!(w.record.conditions.suspended, None);
    assert_eq!(w.record.conditions.resumed, Some(t(5)));
    w.spec.suspend = Some(true);
    w.step(t(6));
    assert_eq!(w.record.conditions.suspended, Some(t(6)));
    assert_eq!(w.record.conditions.resumed, None);
}

#[test]
fn a_matched_success_policy_names_its_rule() {
    let mut spec = indexed(3, 3);
    spec.success_policy = Some(SuccessPolicy {
        rules: vec![
            SuccessPolicyRule {
                succeeded_indexes: Some("2".into()),
                succeeded_count: None,
            },
            SuccessPolicyRule {
                succeeded_indexes: None,
                succeeded_count: Some(1),
            },
        ],
    });
    let mut w = World::new(spec);
    w.step(t(0));
    w.finish("pod-001", 0, t(1));
    w.step(t(1));
    let (_, reason, message) = w.record.conditions.success_criteria_met.clone().unwrap();
    assert_eq!(reason, "SuccessPolicy");
    assert_eq!(message, "Matched rules at index 1");
}

#[test]
fn completions_reached_without_a_matching_rule() {
    let mut w = World::new(job(Some(1), None, None, RestartPolicy::Never));
    w.step(t(0));
    w.finish_all_running(0, t(1));
    w.step(t(1));
    let (_, reason, message) = w.record.conditions.success_criteria_met.clone().unwrap();
    assert_eq!(reason, "CompletionsReached");
    assert_eq!(message, "Reached expected number of succeeded pods");
}

#[test]
fn a_fail_job_match_says_which_container_pod_code_and_rule() {
    let mut spec = job(Some(1), None, Some(6), RestartPolicy::Never);
    spec.pod_failure_policy = Some(PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: PodFailurePolicyAction::FailJob,
            on_exit_codes: Some(OnExitCodes {
                container_name: None,
                operator: ExitCodeOperator::In,
                values: vec![42],
            }),
            on_pod_conditions: vec![],
        }],
    });
    let mut w = World::new(spec);
    w.step(t(0));
    w.finish("pod-001", 42, t(1));
    w.step(t(1));
    let (_, reason, message) = w.record.conditions.failure_target.clone().unwrap();
    assert_eq!(reason, "PodFailurePolicy");
    assert_eq!(
        message,
        "Container main for pod default/pod-001 failed with exit code 42 matching FailJob rule at index 0"
    );
}

#[test]
fn index_lists_use_ranges_from_three_indexes_on() {
    let cases: &[(&[u32], &str)] = &[
        (&[0], "0"),
        (&[0, 1], "0,1"),
        (&[0, 1, 2], "0-2"),
        (&[0, 1, 3, 4, 5, 7], "0,1,3-5,7"),
        (&[5, 6, 9, 10], "5,6,9,10"),
    ];
    for (indexes, text) in cases {
        let set: BTreeSet<u32> = indexes.iter().copied().collect();
        assert_eq!(compact_indexes(&set), *text);
        assert_eq!(parse_indexes(text), Some(set));
    }
}

/// A pod as the eviction from a lost node leaves it under `TerminatingOrFailed`.
fn evict(w: &mut World, name: &str) {
    let pod = w.pods.iter_mut().find(|p| p.name == name).unwrap();
    pod.terminating = true;
    pod.phase = PodPhase::Failed;
    pod.conditions = vec!["DisruptionTarget".into()];
}

#[test]
fn a_success_reported_after_the_pod_was_evicted_and_replaced_is_superseded() {
    let mut w = World::new(job(Some(1), None, None, RestartPolicy::Never));
    w.settings.backoff_initial = Duration::ZERO;
    w.step(t(0));
    evict(&mut w, "pod-001");
    let outcome = w.step(t(1));
    assert_eq!(outcome.record[0].outcome, Outcome::Failed);
    assert_eq!(outcome.create.len(), 1, "replaced at once");
    assert!(outcome.superseded.is_empty());

    // The node returns: the pod had finished, and says so.
    let pod = w.pods.iter_mut().find(|p| p.name == "pod-001").unwrap();
    pod.phase = PodPhase::Succeeded;
    let outcome = w.step(t(2));
    assert!(outcome.record.is_empty(), "counted once, as it was");
    assert_eq!(
        outcome.superseded,
        vec![Superseded {
            pod_uid: "uid-1".into(),
            pod_name: "pod-001".into(),
            index: None,
            reason: SupersededReason::SucceededAfterCountedAs(Outcome::Failed),
        }]
    );
    assert_eq!((outcome.status.succeeded, outcome.status.failed), (0, 1));
    assert!(!w.complete(), "the replacement still has to succeed");
    assert_eq!(
        outcome.superseded[0].message("ns"),
        "Pod ns/pod-001 reported Succeeded after it had been counted as Failed; its success is not counted"
    );

    w.pods.retain(|p| p.name != "pod-001");
    w.finish("pod-002", 0, t(3));
    w.step(t(3));
    let status = w.step(t(4)).status;
    assert!(w.complete());
    assert_eq!((status.succeeded, status.failed), (1, 1));
}

#[test]
fn an_index_keeps_its_first_success_and_a_second_is_superseded() {
    let mut w = World::new(indexed(2, 2));
    w.step(t(0));
    let mut twin = w.pods[0].clone();
    twin.name = "pod-twin".into();
    twin.uid = "uid-twin".into();
    w.pods.push(twin);
    w.finish("pod-001", 0, t(1));
    w.finish("pod-twin", 0, t(1));
    let outcome = w.step(t(1));
    let by_uid = |uid: &str| {
        outcome
            .record
            .iter()
            .find(|e| e.pod_uid == uid)
            .unwrap()
            .outcome
    };
    assert_eq!(by_uid("uid-1"), Outcome::Succeeded, "the first in the list");
    assert_eq!(by_uid("uid-twin"), Outcome::Superseded);
    assert_eq!(outcome.superseded.len(), 1);
    assert_eq!(
        outcome.superseded[0].reason,
        SupersededReason::IndexAlreadySucceeded
    );
    assert_eq!(outcome.status.succeeded, 1);
    assert_eq!(outcome.status.failed, 0);
    // Seen again: recorded already, nothing new.
    let outcome = w.step(t(2));
    assert!(outcome.record.is_empty());
    assert!(outcome.superseded.is_empty());
    assert_eq!(outcome.status.completed_indexes, "0");
}

#[test]
fn replacement_policy_failed_keeps_a_terminating_pod_in_its_place_until_it_stops() {
    let mut spec = job(Some(1), None, None, RestartPolicy::Never);
    spec.pod_replacement_policy = Some(PodReplacementPolicy::Failed);
    let mut w = World::new(spec);
    w.step(t(0));
    // Evicted from a lost node: terminating, its fate unknown.
    w.pods[0].terminating = true;
    w.pods[0].conditions = vec!["DisruptionTarget".into()];
    for s in 1..5 {
        let outcome = w.step(t(s));
        assert!(
            outcome.record.is_empty(),
            "not counted while it may still run"
        );
        assert!(
            outcome.create.is_empty(),
            "not replaced while it may still run"
        );
        assert_eq!(outcome.status.terminating, 1);
        assert_eq!(outcome.status.active, 0);
    }
    // Its node returns and reports it finished: it counts, and nothing ran twice.
    w.pods[0].phase = PodPhase::Succeeded;
    w.step(t(5));
    w.pods.clear();
    let status = w.step(t(6)).status;
    assert!(w.complete());
    assert_eq!((status.succeeded, status.failed), (1, 0));
    assert_eq!(w.next, 1, "one pod in all");
}

#[test]
fn replacement_policy_failed_replaces_a_terminating_pod_once_it_has_failed() {
    let mut spec = indexed(2, 2);
    spec.pod_replacement_policy = Some(PodReplacementPolicy::Failed);
    let mut w = World::new(spec);
    w.settings.backoff_initial = Duration::ZERO;
    w.step(t(0));
    w.pods[1].terminating = true;
    let outcome = w.step(t(1));
    assert!(outcome.create.is_empty(), "index 1 is still held");
    w.pods[1].phase = PodPhase::Failed;
    let outcome = w.step(t(2));
    assert_eq!(outcome.record[0].outcome, Outcome::Failed);
    assert_eq!(outcome.create, vec![Some(1)]);
}

#[test]
fn a_pod_that_leaves_the_store_counts_under_either_policy() {
    for policy in [
        PodReplacementPolicy::Failed,
        PodReplacementPolicy::TerminatingOrFailed,
    ] {
        let mut spec = job(Some(1), None, None, RestartPolicy::Never);
        spec.pod_replacement_policy = Some(policy);
        let pod = JobPod {
            name: "p".into(),
            uid: "u".into(),
            index: None,
            phase: PodPhase::Running,
            ready: true,
            terminating: true,
            deleted_by_controller: false,
            restarts: 0,
            exit_codes: vec![],
            conditions: vec![],
            finished_at: None,
        };
        let removed = pod_result(&spec, &pod, true, t(0)).map(|e| e.outcome);
        assert_eq!(removed, Some(Outcome::Failed), "{policy:?}");
        let terminating = pod_result(&spec, &pod, false, t(0)).map(|e| e.outcome);
        let expected =
            (policy == PodReplacementPolicy::TerminatingOrFailed).then_some(Outcome::Failed);
        assert_eq!(terminating, expected, "{policy:?}");
    }
}

#[test]
fn the_default_replacement_policy_follows_the_pod_failure_policy() {
    let mut spec = job(Some(1), None, None, RestartPolicy::Never);
    assert_eq!(
        spec.replacement_policy(),
        PodReplacementPolicy::TerminatingOrFailed
    );
    spec.pod_failure_policy = Some(PodFailurePolicy { rules: vec![] });
    assert_eq!(spec.replacement_policy(), PodReplacementPolicy::Failed);
}

#[test]
fn the_ttl_after_finishing_is_measured_on_the_monotonic_clock() {
    let mut spec = job(Some(1), None, None, RestartPolicy::Never);
    spec.ttl_seconds_after_finished = Some(60);
    let mut w = World::new(spec);
    w.step(t(0));
    w.finish_all_running(0, t(0));
    w.step(t(0));
    w.step(t(0));
    assert!(w.complete());
    let at = |wall: DateTime<Utc>, finished_for: i64| {
        reconcile(&JobInput {
            namespace: "default",
            spec: &w.spec,
            record: &w.record,
            pods: &w.pods,
            ledger: &w.ledger,
            dependencies: &w.dependencies,
            settings: w.settings,
            now: wall,
            active_for: None,
            finished_for: Some(chrono::Duration::seconds(finished_for)),
        })
    };
    // The wall clock jumped an hour ahead 10 s after the Job finished: not deleted yet.
    let outcome = at(t(3610), 10);
    assert!(!outcome.delete_job);
    assert_eq!(
        outcome.wake_at,
        Some(t(3660)),
        "in 50 s, whatever the wall clock says"
    );
    // An hour behind, 60 s after: deleted on time.
    assert!(at(t(-3540), 60).delete_job);
}

#[test]
fn replacement_policy_failed_scales_down_without_stopping_the_pod_that_runs() {
    let mut spec = job(Some(3), Some(2), None, RestartPolicy::Never);
    spec.pod_replacement_policy = Some(PodReplacementPolicy::Failed);
    let mut w = World::new(spec);
    w.step(t(0));
    // One pod is on a lost node: terminating, its place held; the other runs.
    w.pods[0].terminating = true;
    assert!(w.step(t(1)).create.is_empty());
    // Parallelism goes down to one: the pod that runs keeps running.
    w.spec.parallelism = Some(1);
    let outcome = w.step(t(2));
    assert!(outcome.delete.is_empty(), "{outcome:?}");
    assert!(outcome.create.is_empty());
}
