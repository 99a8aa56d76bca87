//! The Job reconciler: from a Job, its pods, the ledger of results already counted and the
//! time, the pods to create and delete, the results to record and the status. No I/O.
//!
//! Exactness: a pod's terminal result enters the ledger once (keyed by pod UID, recorded
//! before anything else happens), and every count is derived from the ledger, so duplicated
//! reports, reconnects and controller restarts cannot count a pod twice, and `succeeded` and
//! `failed` never decrease.

pub mod dependencies;
pub mod pods;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use drover_proto::manifest::{
    CompletionMode, ExitCodeOperator, JobSpec, PodFailurePolicyAction, PodReplacementPolicy,
    RestartPolicy,
};

/// A pod of the Job, as the reconciler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPod {
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Completion index (Indexed mode).
    pub index: Option<u32>,
    /// Phase.
    pub phase: PodPhase,
    /// All containers ready.
    pub ready: bool,
    /// Being deleted.
    pub terminating: bool,
    /// Deleted by the Job controller itself (excess, suspend, finish): never counted.
    pub deleted_by_controller: bool,
    /// Sum of container restarts (OnFailure pods).
    pub restarts: u32,
    /// (container, exit code) of terminated containers.
    pub exit_codes: Vec<(String, i32)>,
    /// Pod conditions with status True (e.g. `DisruptionTarget`).
    pub conditions: Vec<String>,
    /// When it finished (or now, if unknown).
    pub finished_at: Option<DateTime<Utc>>,
}

pub use drover_proto::phase::PodPhase;

/// How a finished pod counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted as a success.
    Succeeded,
    /// Counted as a failure.
    Failed,
    /// A failure that `podFailurePolicy` says to ignore.
    Ignored,
    /// A failure that fails the Job (`FailJob`).
    FailJob,
    /// A failure that fails its index (`FailIndex`).
    FailIndex,
    /// A success for an index that another pod had already completed: kept in the ledger
    /// so it is seen once, counted nowhere.
    Superseded,
}

/// A result that arrived for a pod whose place was already taken: it is recorded and
/// reported, and counts for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superseded {
    /// Pod UID.
    pub pod_uid: String,
    /// Pod name.
    pub pod_name: String,
    /// Completion index.
    pub index: Option<u32>,
    /// Why it does not count.
    pub reason: SupersededReason,
}

/// Why a result is superseded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupersededReason {
    /// The pod succeeded after it had been counted as failed (when it was deleted or
    /// evicted from a lost node, and replaced; or stopped because its Job failed).
    SucceededAfterCountedAs(Outcome),
    /// The pod succeeded for an index another pod had already completed.
    IndexAlreadySucceeded,
}

impl Superseded {
    /// The event message (namespace/name as Kubernetes names pods).
    pub fn message(&self, namespace: &str) -> String {
        let pod = format!("{namespace}/{}", self.pod_name);
        let index = self
            .index
            .map_or_else(String::new, |i| format!(" (index {i})"));
        match self.reason {
            SupersededReason::SucceededAfterCountedAs(counted) => format!(
                "Pod {pod}{index} reported Succeeded after it had been counted as {counted:?}; its success is not counted"
            ),
            SupersededReason::IndexAlreadySucceeded => format!(
                "Pod {pod}{index} succeeded after another pod had completed its index; its success is not counted"
            ),
        }
    }
}

/// One counted result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Pod UID.
    pub pod_uid: String,
    /// Completion index.
    pub index: Option<u32>,
    /// Outcome.
    pub outcome: Outcome,
    /// When the pod finished.
    pub at: DateTime<Utc>,
}

/// The Job's conditions, as times at which they became true.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobConditions {
    /// `Suspended`.
    pub suspended: Option<DateTime<Utc>>,
    /// `Suspended` with status False (`JobResumed`): Kubernetes keeps the condition after a
    /// resume rather than dropping it.
    pub resumed: Option<DateTime<Utc>>,
    /// `SuccessCriteriaMet`, with reason and message (`Complete` repeats them).
    pub success_criteria_met: Option<(DateTime<Utc>, String, String)>,
    /// `FailureTarget`, with reason and message.
    pub failure_target: Option<(DateTime<Utc>, String, String)>,
    /// `Complete`.
    pub complete: Option<DateTime<Utc>>,
    /// `Failed`, with reason and message.
    pub failed: Option<(DateTime<Utc>, String, String)>,
    /// Waiting for the Jobs it depends on.
    pub waiting_for_dependencies: Option<String>,
}

/// What the Job recorded so far (from its status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRecord {
    /// When it started running (unset while suspended or waiting).
    pub start_time: Option<DateTime<Utc>>,
    /// When it completed.
    pub completion_time: Option<DateTime<Utc>>,
    /// Conditions.
    pub conditions: JobConditions,
}

/// The state of a Job's dependencies (`drover.io/depends-on`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependencies {
    /// None, or all Complete.
    Ready,
    /// Some not finished yet (their names).
    Waiting(Vec<String>),
    /// One failed.
    Failed(String),
}

/// Tunable delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSettings {
    /// Replacement delay after the first failure (then doubling).
    pub backoff_initial: Duration,
    /// Longest replacement delay.
    pub backoff_max: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(360),
        }
    }
}

/// Everything the reconciler looks at.
pub struct JobInput<'a> {
    /// The Job's namespace, which is its pods' (messages name pods `namespace/name`).
    pub namespace: &'a str,
    /// Spec.
    pub spec: &'a JobSpec,
    /// What was recorded.
    pub record: &'a JobRecord,
    /// Its pods (including finished ones).
    pub pods: &'a [JobPod],
    /// Results already counted.
    pub ledger: &'a [LedgerEntry],
    /// Dependencies.
    pub dependencies: &'a Dependencies,
    /// Settings.
    pub settings: JobSettings,
    /// Now.
    pub now: DateTime<Utc>,
    /// How long the Job has been active since its recorded start, on a monotonic clock
    /// (a wall-clock step must not fail its deadline early or late); `None`: from the wall
    /// clock.
    pub active_for: Option<chrono::Duration>,
    /// How long ago the Job finished, on a monotonic clock (for its TTL); `None`: from the
    /// wall clock.
    pub finished_for: Option<chrono::Duration>,
}

/// The Job's status after reconciling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStatus {
    /// Pods running or starting.
    pub active: u32,
    /// Of those, ready.
    pub ready: u32,
    /// Counted successes.
    pub succeeded: u32,
    /// Counted failures.
    pub failed: u32,
    /// Pods being deleted.
    pub terminating: u32,
    /// Start, completion and conditions.
    pub record: JobRecord,
    /// Indexed: succeeded indexes, compact.
    pub completed_indexes: String,
    /// Indexed with backoffLimitPerIndex: failed indexes, compact.
    pub failed_indexes: Option<String>,
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutcome {
    /// Results to record before anything else (new terminal pods).
    pub record: Vec<LedgerEntry>,
    /// Pods to create: their completion index (None when not Indexed).
    pub create: Vec<Option<u32>>,
    /// Pods to delete (by name); the controller deleted them, they are never counted.
    pub delete: Vec<String>,
    /// Results that count for nothing because the pod's place was taken (to report).
    pub superseded: Vec<Superseded>,
    /// The status.
    pub status: JobStatus,
    /// Reconcile again at this time even if nothing changes.
    pub wake_at: Option<DateTime<Utc>>,
    /// The Job's TTL after finishing has passed: delete it and its pods.
    pub delete_job: bool,
}

/// `"1,3-5,7"` from a set of indexes; as Kubernetes writes them, a range only from three
/// consecutive indexes on (`0,1`, `0-2`).
pub fn compact_indexes(indexes: &BTreeSet<u32>) -> String {
    let mut parts = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        match end - start {
            0 => parts.push(start.to_string()),
            1 => {
                parts.push(start.to_string());
                parts.push(end.to_string());
            }
            _ => parts.push(format!("{start}-{end}")),
        }
    }
    parts.join(",")
}

/// Indexes from `"1,3-5,7"`; None when malformed.
pub fn parse_indexes(text: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                if a > b {
                    return None;
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(part.parse().ok()?);
            }
        }
    }
    Some(set)
}

/// The first `podFailurePolicy` rule a failed pod matches: its index, action and
/// Kubernetes' message naming what matched (`ns/pod` is the pod's namespace and name).
pub fn policy_match(
    spec: &JobSpec,
    namespace: &str,
    pod: &JobPod,
) -> Option<(usize, PodFailurePolicyAction, String)> {
    if pod.phase == PodPhase::Succeeded {
        return None;
    }
    let policy = spec.pod_failure_policy.as_ref()?;
    let action_name = |action: PodFailurePolicyAction| match action {
        PodFailurePolicyAction::FailJob => "FailJob",
        PodFailurePolicyAction::Ignore => "Ignore",
        PodFailurePolicyAction::Count => "Count",
        PodFailurePolicyAction::FailIndex => "FailIndex",
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched = if let Some(codes) = &rule.on_exit_codes {
            pod.exit_codes.iter().find(|(container, code)| {
                let right_container = codes
                    .container_name
                    .as_deref()
                    .is_none_or(|c| c == container);
                let listed = codes.values.contains(code);
                right_container
                    && *code != 0
                    && match codes.operator {
                        ExitCodeOperator::In => listed,
                        ExitCodeOperator::NotIn => !listed,
                    }
            })
            .map(|(container, code)| {
                format!(
                    "Container {container} for pod {namespace}/{} failed with exit code {code} matching {} rule at index {i}",
                    pod.name,
                    action_name(rule.action)
                )
            })
        } else {
            rule.on_pod_conditions
                .iter()
                .find(|c| {
                    c.status.as_deref().unwrap_or("True") == "True"
                        && pod.conditions.contains(&c.kind)
                })
                .map(|c| {
                    format!(
                        "Pod {namespace}/{} has condition {} matching {} rule at index {i}",
                        pod.name,
                        c.kind,
                        action_name(rule.action)
                    )
                })
        };
        if let Some(message) = matched {
            return Some((i, rule.action, message));
        }
    }
    None
}

/// How a finished (or deleted) pod counts under the Job's `podFailurePolicy`.
pub fn classify(spec: &JobSpec, pod: &JobPod) -> Outcome {
    if pod.phase == PodPhase::Succeeded {
        return Outcome::Succeeded;
    }
    match policy_match(spec, "", pod).map(|(_, action, _)| action) {
        Some(PodFailurePolicyAction::FailJob) => Outcome::FailJob,
        Some(PodFailurePolicyAction::Ignore) => Outcome::Ignored,
        Some(PodFailurePolicyAction::FailIndex) => Outcome::FailIndex,
        Some(PodFailurePolicyAction::Count) | None => Outcome::Failed,
    }
}

/// The result a pod counts for, once it has one. A finished pod counts by its phase. Under
/// `podReplacementPolicy: TerminatingOrFailed`, a pod deleted by anyone but the Job
/// controller (a user, an eviction from a lost node) counts as failed from the moment of
/// deletion, as Kubernetes counts deleted pods: it is replaced at once, and may vanish
/// from the store before its node ever reports it finished. Under `Failed` it counts only
/// once it has finished (or left the store: `removed`).
pub fn pod_result(
    spec: &JobSpec,
    pod: &JobPod,
    removed: bool,
    now: DateTime<Utc>,
) -> Option<LedgerEntry> {
    let gone = removed
        || (pod.terminating
            && spec.replacement_policy() == PodReplacementPolicy::TerminatingOrFailed);
    if pod.deleted_by_controller || !(is_terminal(pod) || gone) {
        return None;
    }
    Some(LedgerEntry {
        pod_uid: pod.uid.clone(),
        index: pod.index,
        outcome: classify(spec, pod),
        at: pod.finished_at.unwrap_or(now),
    })
}

/// A pod whose result was counted already and that now reports a success: superseded,
/// unless the success is what was counted.
pub fn late_success(entry: &LedgerEntry, pod: &JobPod) -> Option<Superseded> {
    let counted_otherwise = !matches!(entry.outcome, Outcome::Succeeded | Outcome::Superseded);
    (pod.phase == PodPhase::Succeeded && counted_otherwise).then(|| Superseded {
        pod_uid: pod.uid.clone(),
        pod_name: pod.name.clone(),
        index: pod.index,
        reason: SupersededReason::SucceededAfterCountedAs(entry.outcome),
    })
}

/// Replacement delay after `n` failures since the last success.
pub fn replacement_delay(settings: JobSettings, n: u32) -> Duration {
    super::backoff::exponential(settings.backoff_initial, settings.backoff_max, n)
}

fn is_terminal(pod: &JobPod) -> bool {
    matches!(pod.phase, PodPhase::Succeeded | PodPhase::Failed)
}

/// Reconciles one Job.
pub fn reconcile(input: &JobInput) -> JobOutcome {
    let JobInput {
        namespace,
        spec,
        record,
        pods,
        ledger,
        dependencies,
        settings,
        now,
        active_for,
        finished_for,
    } = *input;
    let mut out = JobOutcome::default();
    let mut record = record.clone();

    // 1. Record new results (once per pod UID). An index keeps its first success; a pod
    // whose result was counted before and that succeeds now (it had been evicted and
    // replaced) is reported as superseded.
    let indexed = spec.completion_mode == Some(CompletionMode::Indexed);
    let counted: BTreeMap<&str, &LedgerEntry> =
        ledger.iter().map(|e| (e.pod_uid.as_str(), e)).collect();
    let mut completed: BTreeSet<u32> = ledger
        .iter()
        .filter(|e| e.outcome == Outcome::Succeeded)
        .filter_map(|e| e.index)
        .collect();
    for pod in pods {
        if let Some(entry) = counted.get(pod.uid.as_str()) {
            out.superseded.extend(late_success(entry, pod));
            continue;
        }
        let Some(mut entry) = pod_result(spec, pod, false, now) else {
            continue;
        };
        if indexed && entry.outcome == Outcome::Succeeded {
            if let Some(index) = entry.index.filter(|i| !completed.insert(*i)) {
                entry.outcome = Outcome::Superseded;
                out.superseded.push(Superseded {
                    pod_uid: pod.uid.clone(),
                    pod_name: pod.name.clone(),
                    index: Some(index),
                    reason: SupersededReason::IndexAlreadySucceeded,
                });
            }
        }
        out.record.push(entry);
    }
    let all: Vec<LedgerEntry> = ledger.iter().chain(out.record.iter()).cloned().collect();

    // 2. Counts, from the ledger only.
    let succeeded_entries: Vec<&LedgerEntry> = all
        .iter()
        .filter(|e| e.outcome == Outcome::Succeeded)
        .collect();
    let succeeded_indexes: BTreeSet<u32> =
        succeeded_entries.iter().filter_map(|e| e.index).collect();
    let failures: Vec<&LedgerEntry> = all
        .iter()
        .filter(|e| {
            matches!(
                e.outcome,
                Outcome::Failed | Outcome::FailJob | Outcome::FailIndex
            )
        })
        .collect();
    let succeeded = if indexed {
        succeeded_indexes.len() as u32
    } else {
        succeeded_entries.len() as u32
    };
    let failed = failures.len() as u32;

    let mut index_failures: BTreeMap<u32, u32> = BTreeMap::new();
    let mut failed_indexes: BTreeSet<u32> = BTreeSet::new();
    for e in &failures {
        if let Some(i) = e.index {
            *index_failures.entry(i).or_default() += 1;
            if e.outcome == Outcome::FailIndex {
                failed_indexes.insert(i);
            }
        }
    }
    if let Some(limit) = spec.backoff_limit_per_index {
        for (i, n) in &index_failures {
            if *n > limit.max(0) as u32 && !succeeded_indexes.contains(i) {
                failed_indexes.insert(*i);
            }
        }
    }
    failed_indexes.retain(|i| !succeeded_indexes.contains(i));

    let live: Vec<&JobPod> = pods
        .iter()
        .filter(|p| !is_terminal(p) && !p.terminating)
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| p.terminating && !is_terminal(p))
        .count() as u32;
    // The pods that hold a place: under `Failed`, a terminating pod keeps its place (and
    // its index) until it has stopped.
    let replace_terminating =
        spec.replacement_policy() == PodReplacementPolicy::TerminatingOrFailed;
    let placed: Vec<&JobPod> = pods
        .iter()
        .filter(|p| !(is_terminal(p) || (replace_terminating && p.terminating)))
        .collect();

    let completions = spec.completions.map(|c| c.max(0) as u32);
    let work_queue = completions.is_none() && spec.parallelism.is_some();
    let completions_target = completions.unwrap_or(1);
    let parallelism = spec.parallelism.map_or(1, |p| p.max(0) as u32);
    let backoff_limit = spec.backoff_limit.map_or(6, |b| b.max(0) as u32);
    let finished = record.conditions.complete.is_some() || record.conditions.failed.is_some();

    let mut status = JobStatus {
        active: live.len() as u32,
        ready: live.iter().filter(|p| p.ready).count() as u32,
        succeeded,
        failed,
        terminating,
        record: record.clone(),
        completed_indexes: if indexed {
            compact_indexes(&succeeded_indexes)
        } else {
            String::new()
        },
        failed_indexes: spec
            .backoff_limit_per_index
            .map(|_| compact_indexes(&failed_indexes)),
    };

    let wake = |at: DateTime<Utc>, out: &mut JobOutcome| {
        if out.wake_at.is_none_or(|w| at < w) {
            out.wake_at = Some(at);
        }
    };

    if finished {
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            let finished_at = record
                .conditions
                .complete
                .or(record.conditions.failed.as_ref().map(|f| f.0))
                .unwrap_or(now);
            let finished_for = finished_for.unwrap_or(now - finished_at);
            let left = chrono::Duration::seconds(i64::from(ttl)) - finished_for;
            if left <= chrono::Duration::zero() {
                out.delete_job = true;
            } else {
                wake(now + left, &mut out);
            }
        }
        // A finished Job runs nothing.
        out.delete.extend(live.iter().map(|p| p.name.clone()));
        status.record = record;
        out.status = status;
        return out;
    }

    // 3. Dependencies.
    match dependencies {
        Dependencies::Waiting(names) => {
            record.conditions.waiting_for_dependencies = Some(names.join(","));
            status.record = record;
            out.status = status;
            return out;
        }
        Dependencies::Failed(name) => {
            record.conditions.waiting_for_dependencies = None;
            let message = format!("Job {name} it depends on failed");
            record.conditions.failure_target =
                Some((now, "DependencyFailed".into(), message.clone()));
            record.conditions.failed = Some((now, "DependencyFailed".into(), message));
            status.record = record;
            out.status = status;
            return out;
        }
        Dependencies::Ready => record.conditions.waiting_for_dependencies = None,
    }

    // 4. Suspension.
    if spec.suspend == Some(true) {
        if record.conditions.suspended.is_none() {
            record.conditions.suspended = Some(now);
            record.conditions.resumed = None;
        }
        out.delete.extend(live.iter().map(|p| p.name.clone()));
        status.record = record;
        out.status = status;
        return out;
    }
    if record.conditions.suspended.is_some() {
        // Resumed: the deadline counts from now.
        record.conditions.suspended = None;
        record.conditions.resumed = Some(now);
        record.start_time = None;
    }
    let active_for = match record.start_time {
        Some(start) => active_for.unwrap_or(now - start),
        None => chrono::Duration::zero(),
    };
    if record.start_time.is_none() {
        record.start_time = Some(now);
    }

    // 5. Has it failed, or succeeded? (A decision, once taken, stays.)
    if record.conditions.failure_target.is_none()
        && record.conditions.success_criteria_met.is_none()
    {
        // Checked: `Duration::seconds` and `+` panic on the largest i64 values a spec can
        // hold; a deadline past chrono's range is no deadline.
        let deadline = spec.active_deadline_seconds.and_then(|s| {
            chrono::Duration::try_seconds(s)
                .and_then(|d| d.checked_sub(&active_for))
                .and_then(|left| now.checked_add_signed(left))
        });
        let restarts: u32 = live.iter().map(|p| p.restarts).sum();
        let on_failure = spec.template.spec.restart_policy == Some(RestartPolicy::OnFailure);
        let max_failed = spec.max_failed_indexes.map(|m| m.max(0) as u32);
        let failure = if deadline.is_some_and(|d| now >= d) {
            Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline".to_string(),
            ))
        } else if let Some(e) = all.iter().find(|e| e.outcome == Outcome::FailJob) {
            // The pod may be gone by now (its result outlives it): then only its UID is known.
            let message = pods
                .iter()
                .find(|p| p.uid == e.pod_uid)
                .and_then(|p| policy_match(spec, namespace, p))
                .map_or_else(
                    || {
                        format!(
                            "Pod {} matched a FailJob rule of the podFailurePolicy",
                            e.pod_uid
                        )
                    },
                    |(_, _, message)| message,
                );
            Some(("PodFailurePolicy", message))
        } else if max_failed.is_some_and(|m| failed_indexes.len() as u32 > m) {
            Some((
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes".to_string(),
            ))
        } else if spec.backoff_limit_per_index.is_none()
            && (failed > backoff_limit
                || (on_failure && backoff_limit > 0 && restarts >= backoff_limit)
                || (on_failure && backoff_limit == 0 && restarts > 0))
        {
            Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".to_string(),
            ))
        } else if indexed
            && spec.backoff_limit_per_index.is_some()
            && !failed_indexes.is_empty()
            && succeeded_indexes.len() + failed_indexes.len() >= completions_target as usize
        {
            Some(("FailedIndexes", "Job has failed indexes".to_string()))
        } else {
            None
        };
        if let Some((reason, message)) = failure {
            record.conditions.failure_target = Some((now, reason.into(), message));
        } else if let Some((reason, message)) = success_met(
            spec,
            indexed,
            work_queue,
            completions_target,
            succeeded,
            &succeeded_indexes,
            live.len(),
        ) {
            record.conditions.success_criteria_met = Some((now, reason.into(), message));
        } else if let Some(d) = deadline {
            wake(d, &mut out);
        }
    }

    // 6. A decided Job stops its pods, then finishes. Pods stopped because it failed count
    // as failures, as in Kubernetes (a Job past its deadline shows the pods it cut short).
    if record.conditions.failure_target.is_some()
        || record.conditions.success_criteria_met.is_some()
    {
        if record.conditions.failure_target.is_some() {
            for pod in &live {
                if !all.iter().any(|e| e.pod_uid == pod.uid) {
                    out.record.push(LedgerEntry {
                        pod_uid: pod.uid.clone(),
                        index: pod.index,
                        outcome: Outcome::Failed,
                        at: now,
                    });
                    status.failed += 1;
                }
            }
        }
        out.delete.extend(live.iter().map(|p| p.name.clone()));
        if live.is_empty() && terminating == 0 {
            if let Some((_, reason, message)) = record.conditions.failure_target.clone() {
                record.conditions.failed = Some((now, reason, message));
            } else {
                record.conditions.complete = Some(now);
                record.completion_time = Some(now);
            }
            if let Some(ttl) = spec.ttl_seconds_after_finished {
                wake(now + chrono::Duration::seconds(i64::from(ttl)), &mut out);
            }
        }
        status.active = 0;
        status.ready = 0;
        status.record = record;
        out.status = status;
        return out;
    }

    // 7. Start pods, after the replacement back-off of recent failures.
    let failures_since_success = {
        let last_success = succeeded_entries.iter().map(|e| e.at).max();
        failures
            .iter()
            .filter(|e| last_success.is_none_or(|s| e.at > s))
            .collect::<Vec<_>>()
    };
    if let Some(last) = failures_since_success.iter().map(|e| e.at).max() {
        let delay = replacement_delay(settings, failures_since_success.len() as u32);
        let allowed = last + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        if now < allowed {
            wake(allowed, &mut out);
            status.record = record;
            out.status = status;
            return out;
        }
    }
    let active = placed.len() as u32;
    if indexed {
        // Another pod of an index that has succeeded has nothing left to do.
        out.delete.extend(
            live.iter()
                .filter(|p| p.index.is_some_and(|i| succeeded_indexes.contains(&i)))
                .map(|p| p.name.clone()),
        );
        let running: BTreeSet<u32> = placed.iter().filter_map(|p| p.index).collect();
        let pending: Vec<u32> = (0..completions_target)
            .filter(|i| {
                !succeeded_indexes.contains(i)
                    && !failed_indexes.contains(i)
                    && !running.contains(i)
            })
            .collect();
        let room = parallelism.saturating_sub(active) as usize;
        out.create.extend(pending.into_iter().take(room).map(Some));
    } else if work_queue {
        if succeeded == 0 {
            let room = parallelism.saturating_sub(active);
            out.create.extend((0..room).map(|_| None));
        }
    } else {
        let wanted = parallelism.min(completions_target.saturating_sub(succeeded));
        let running = live.len() as u32;
        if running > wanted {
            // Parallelism went down: the newest running pods go. A terminating pod that
            // holds a place (`Failed`) is going already; stopping a running one for it
            // would leave nothing running while its node is lost.
            let mut excess: Vec<&&JobPod> = live.iter().collect();
            excess.sort_by(|a, b| b.name.cmp(&a.name));
            out.delete.extend(
                excess
                    .iter()
                    .take((running - wanted) as usize)
                    .map(|p| p.name.clone()),
            );
        } else {
            out.create
                .extend((0..wanted.saturating_sub(active)).map(|_| None));
        }
    }
    status.record = record;
    out.status = status;
    out
}

/// Whether the Job has succeeded: the reason and message of `SuccessCriteriaMet`.
fn success_met(
    spec: &JobSpec,
    indexed: bool,
    work_queue: bool,
    completions: u32,
    succeeded: u32,
    succeeded_indexes: &BTreeSet<u32>,
    live: usize,
) -> Option<(&'static str, String)> {
    // Kubernetes checks the policy first: a matching rule names itself even when every
    // index has succeeded.
    if let Some(policy) = &spec.success_policy {
        let matched = policy.rules.iter().position(|rule| {
            let wanted = rule
                .succeeded_indexes
                .as_deref()
                .and_then(parse_indexes)
                .unwrap_or_else(|| (0..completions).collect());
            let done = wanted.intersection(succeeded_indexes).count() as u32;
            match rule.succeeded_count {
                Some(count) => done >= count.max(0) as u32,
                None => wanted.is_subset(succeeded_indexes),
            }
        });
        if let Some(i) = matched {
            return Some(("SuccessPolicy", format!("Matched rules at index {i}")));
        }
    }
    let met = if indexed {
        succeeded_indexes.len() as u32 >= completions
    } else if work_queue {
        succeeded > 0 && live == 0
    } else {
        succeeded >= completions
    };
    met.then(|| {
        (
            "CompletionsReached",
            "Reached expected number of succeeded pods".to_string(),
        )
    })
}

#[cfg(test)]
mod tests;
