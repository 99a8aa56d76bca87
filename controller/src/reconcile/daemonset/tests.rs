//! The DaemonSet reconciler without I/O: membership, failures, duplicates, and simulated
//! rollouts checked against their bounds at every step.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use drover_proto::manifest::*;

use super::*;
use crate::reconcile::clock::Mono;
use crate::reconcile::scheduler::LABEL_CONTAINER_RUNTIME;

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn node(name: &str) -> NodeView {
    NodeView {
        name: name.into(),
        labels: [("role".to_string(), "sensor".to_string())].into(),
        taints: vec![],
        ready: true,
        unschedulable: false,
    }
}

fn spec(strategy: Option<UpdateStrategy>) -> DaemonSetSpec {
    let mut spec = DaemonSetSpec {
        selector: LabelSelector::default(),
        template: PodTemplate::default(),
        update_strategy: strategy,
        min_ready_seconds: None,
        revision_history_limit: None,
    };
    spec.template
        .spec
        .node_selector
        .insert("role".into(), "sensor".into());
    spec
}

fn rolling(
    max_unavailable: Option<IntOrPercent>,
    max_surge: Option<IntOrPercent>,
) -> Option<UpdateStrategy> {
    Some(UpdateStrategy {
        kind: Some(UpdateStrategyType::RollingUpdate),
        rolling_update: Some(RollingUpdate {
            max_unavailable,
            max_surge,
        }),
    })
}

fn pod(name: &str, node: &str, hash: &str, created: i64) -> DsPod {
    DsPod {
        name: name.into(),
        node: node.into(),
        hash: hash.into(),
        phase: PodPhase::Running,
        ready_since: Some(t(created)),
        created: t(created),
        terminating: false,
    }
}

fn run(spec: &DaemonSetSpec, nodes: &[NodeView], pods: &[DsPod], now: DateTime<Utc>) -> DsOutcome {
    reconcile(&DsInput {
        spec,
        hash: "new",
        nodes,
        pods,
        backoff: &HashMap::new(),
        now,
        mono: Mono::following_wall(now),
    })
}

fn creates(outcome: &DsOutcome) -> Vec<String> {
    outcome
        .actions
        .iter()
        .filter_map(|a| {
            if let DsAction::Create { node } = a {
                Some(node.clone())
            } else {
                None
            }
        })
        .collect()
}

fn deletes(outcome: &DsOutcome) -> Vec<(String, DeleteReason)> {
    outcome
        .actions
        .iter()
        .filter_map(|a| {
            if let DsAction::Delete { pod, reason } = a {
                Some((pod.clone(), *reason))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn every_eligible_node_gets_one_pod() {
    let nodes = [node("a"), node("b"), node("c")];
    let outcome = run(&spec(None), &nodes, &[], t(0));
    assert_eq!(creates(&outcome), vec!["a", "b", "c"]);
    assert_eq!(outcome.status.desired_number_scheduled, 3);
    let pods = [
        pod("p-a", "a", "new", 0),
        pod("p-b", "b", "new", 0),
        pod("p-c", "c", "new", 0),
    ];
    let steady = run(&spec(None), &nodes, &pods, t(10));
    assert!(steady.actions.is_empty(), "{:?}", steady.actions);
    assert_eq!(
        steady.status,
        DsStatus {
            desired_number_scheduled: 3,
            current_number_scheduled: 3,
            number_ready: 3,
            number_available: 3,
            updated_number_scheduled: 3,
            number_misscheduled: 0,
        }
    );
}

#[test]
fn a_node_that_joins_gets_its_pod_and_one_that_leaves_loses_it() {
    let pods = [pod("p-a", "a", "new", 0), pod("p-b", "b", "new", 0)];
    let joined = run(&spec(None), &[node("a"), node("b"), node("c")], &pods, t(1));
    assert_eq!(creates(&joined), vec!["c"]);
    let left = run(&spec(None), &[node("a")], &pods, t(1));
    assert_eq!(
        deletes(&left),
        vec![("p-b".to_string(), DeleteReason::NotEligible)]
    );
    assert_eq!(
        left.status.number_misscheduled, 0,
        "a deleted node is not misscheduled"
    );
}

fn tainted(name: &str, effect: TaintEffect) -> NodeView {
    let mut n = node(name);
    n.taints.push(Taint {
        key: "dedicated".into(),
        value: None,
        effect,
        time_added: None,
    });
    n
}

#[test]
fn relabelled_and_no_execute_tainted_nodes_lose_their_pods() {
    let pods = [pod("p-a", "a", "new", 0), pod("p-b", "b", "new", 0)];
    let mut relabelled = node("a");
    relabelled.labels.insert("role".into(), "gateway".into());
    let nodes = [relabelled, tainted("b", TaintEffect::NoExecute)];
    let outcome = run(&spec(None), &nodes, &pods, t(1));
    assert_eq!(deletes(&outcome).len(), 2);
    assert_eq!(outcome.status.number_misscheduled, 2);
    assert_eq!(outcome.status.desired_number_scheduled, 0);
}

#[test]
fn a_no_schedule_taint_keeps_the_running_pod_but_places_no_new_one() {
    let nodes = [
        tainted("a", TaintEffect::NoSchedule),
        tainted("b", TaintEffect::NoSchedule),
    ];
    let pods = [pod("p-a", "a", "new", 0), pod("p-a2", "a", "new", 1)];
    let outcome = run(&spec(None), &nodes, &pods, t(2));
    assert_eq!(
        deletes(&outcome),
        vec![("p-a2".to_string(), DeleteReason::NotEligible)],
        "the oldest stays; a second pod does not"
    );
    assert!(creates(&outcome).is_empty(), "nothing new on either node");
    assert_eq!(outcome.status.desired_number_scheduled, 0);
    assert_eq!(outcome.status.number_misscheduled, 1);
    // Once it has failed, it goes and nothing replaces it.
    let mut failed = pod("p-a", "a", "new", 0);
    failed.phase = PodPhase::Failed;
    let outcome = run(&spec(None), &nodes, &[failed], t(3));
    assert_eq!(deletes(&outcome).len(), 1);
    assert!(creates(&outcome).is_empty());
}

#[test]
fn cordoned_not_ready_and_unreachable_nodes_keep_their_pods() {
    let mut cordoned = node("a");
    cordoned.unschedulable = true;
    cordoned.taints.push(Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        value: None,
        effect: TaintEffect::NoSchedule,
        time_added: None,
    });
    let mut unreachable = node("b");
    unreachable.ready = false;
    unreachable.taints.push(Taint {
        key: "node.kubernetes.io/unreachable".into(),
        value: None,
        effect: TaintEffect::NoExecute,
        time_added: None,
    });
    let mut stopped = node("c");
    stopped.ready = false;
    stopped.taints.push(Taint {
        key: "node.kubernetes.io/not-ready".into(),
        value: None,
        effect: TaintEffect::NoExecute,
        time_added: None,
    });
    let nodes = [cordoned, unreachable, stopped, node("d")];
    let pods = [
        pod("p-a", "a", "new", 0),
        pod("p-b", "b", "new", 0),
        pod("p-c", "c", "new", 0),
    ];
    let outcome = run(&spec(None), &nodes, &pods, t(1));
    assert_eq!(deletes(&outcome), vec![]);
    assert_eq!(
        creates(&outcome),
        vec!["d"],
        "a new cordoned-or-not node still gets its pod"
    );
}

#[test]
fn a_failed_pod_is_replaced_after_a_growing_back_off() {
    let mut failed = pod("p-a", "a", "new", 0);
    failed.phase = PodPhase::Failed;
    let outcome = run(&spec(None), &[node("a")], &[failed], t(5));
    assert!(outcome.actions.contains(&DsAction::Delete {
        pod: "p-a".into(),
        reason: DeleteReason::Failed
    }));
    assert!(outcome
        .actions
        .contains(&DsAction::RecordFailure { node: "a".into() }));

    let mono = |s: u64| Mono::at(std::time::Duration::from_secs(s));
    let mut backoff = None;
    let mut delays = vec![];
    for _ in 0..12 {
        let b = FailureBackoff::after_failure(backoff, mono(0));
        delays.push(b.retry_at.since(mono(0)).as_secs());
        backoff = Some(b);
    }
    assert_eq!(
        delays,
        vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    );

    // The back-off runs on the monotonic clock: the wall clock jumping an hour either
    // way neither ends it early nor stretches it.
    let backoffs = HashMap::from([(
        "a".to_string(),
        FailureBackoff::after_failure(None, mono(100)),
    )]);
    let spec = spec(None);
    let at = |wall: DateTime<Utc>, m: u64| {
        reconcile(&DsInput {
            spec: &spec,
            hash: "new",
            nodes: &[node("a")],
            pods: &[],
            backoff: &backoffs,
            now: wall,
            mono: mono(m),
        })
    };
    let waiting = at(t(3605), 100);
    assert!(creates(&waiting).is_empty());
    assert_eq!(waiting.wake_at, Some(t(3606)), "one second from now");
    assert_eq!(creates(&at(t(-3594), 101)), vec!["a"]);
}

#[test]
fn of_two_pods_on_a_node_the_oldest_stays() {
    let pods = [pod("young", "a", "new", 10), pod("old", "a", "new", 1)];
    let outcome = run(&spec(None), &[node("a")], &pods, t(20));
    assert_eq!(
        deletes(&outcome),
        vec![("young".to_string(), DeleteReason::Duplicate)]
    );
}

#[test]
fn no_new_pod_while_the_old_one_is_terminating() {
    let mut old = pod("old", "a", "old", 0);
    old.terminating = true;
    let outcome = run(&spec(None), &[node("a")], &[old], t(1));
    assert!(creates(&outcome).is_empty());
}

#[test]
fn percentages_round_up() {
    assert_eq!(resolve(Some(&IntOrPercent::Percent(30)), 1, 10), 3);
    assert_eq!(resolve(Some(&IntOrPercent::Percent(25)), 1, 10), 3);
    assert_eq!(resolve(Some(&IntOrPercent::Percent(1)), 1, 10), 1);
    assert_eq!(resolve(Some(&IntOrPercent::Int(2)), 1, 10), 2);
    assert_eq!(resolve(None, 1, 10), 1);
    assert_eq!(resolve(None, 0, 10), 0);
}

#[test]
fn on_delete_replaces_only_pods_someone_deleted() {
    let strategy = Some(UpdateStrategy {
        kind: Some(UpdateStrategyType::OnDelete),
        rolling_update: None,
    });
    let pods = [pod("p-a", "a", "old", 0), pod("p-b", "b", "old", 0)];
    let outcome = run(
        &spec(strategy.clone()),
        &[node("a"), node("b")],
        &pods,
        t(10),
    );
    assert!(outcome.actions.is_empty(), "{:?}", outcome.actions);
    assert_eq!(outcome.status.updated_number_scheduled, 0);
    let outcome = run(&spec(strategy), &[node("a"), node("b")], &pods[1..], t(10));
    assert_eq!(creates(&outcome), vec!["a"]);
}

/// A small world: applies the reconciler's actions, and lets pods become ready and
/// terminating pods disappear one step later, as agents would.
fn simulate_rollout(
    spec: &DaemonSetSpec,
    nodes: usize,
    max_unavailable: u32,
    max_surge: u32,
) -> usize {
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i:02}")).collect();
    let views: Vec<NodeView> = names.iter().map(|n| node(n)).collect();
    let mut pods: Vec<DsPod> = names
        .iter()
        .map(|n| pod(&format!("old-{n}"), n, "old", 0))
        .collect();
    let mut next = 0;
    for step in 1..500 {
        let now = t(step);
        // Agents: pods started last step are ready now; terminating pods are gone.
        pods.retain(|p| !p.terminating);
        for p in pods.iter_mut() {
            if p.ready_since.is_none() {
                p.ready_since = Some(now);
                p.phase = PodPhase::Running;
            }
        }
        let outcome = reconcile(&DsInput {
            spec,
            hash: "new",
            nodes: &views,
            pods: &pods,
            backoff: &HashMap::new(),
            now,
            mono: Mono::following_wall(now),
        });
        let unavailable = outcome.status.desired_number_scheduled - outcome.status.number_available;
        assert!(
            unavailable <= max_unavailable,
            "step {step}: {unavailable} unavailable > {max_unavailable}"
        );
        let live = pods.iter().filter(|p| !p.terminating).count();
        assert!(
            live <= nodes + max_surge as usize,
            "step {step}: {live} pods > {nodes} + {max_surge}"
        );
        if outcome.status.updated_number_scheduled == nodes as u32
            && outcome.status.number_available == nodes as u32
            && pods.iter().all(|p| p.hash == "new")
        {
            return step as usize;
        }
        for action in outcome.actions {
            match action {
                DsAction::Create { node } => {
                    next += 1;
                    pods.push(DsPod {
                        name: format!("new-{next}"),
                        node,
                        hash: "new".into(),
                        phase: PodPhase::Pending,
                        ready_since: None,
                        created: now,
                        terminating: false,
                    });
                }
                DsAction::Delete { pod, .. } => {
                    if let Some(p) = pods.iter_mut().find(|p| p.name == pod) {
                        p.terminating = true;
                    }
                }
                _ => {}
            }
        }
    }
    panic!("the rollout did not finish");
}

#[test]
fn rolling_update_with_max_unavailable_1_never_exceeds_it() {
    let steps = simulate_rollout(&spec(rolling(None, None)), 10, 1, 0);
    assert!(
        steps > 10,
        "one node at a time takes more than 10 steps: {steps}"
    );
}

#[test]
fn rolling_update_with_30_percent_of_10_replaces_3_at_a_time() {
    let steps = simulate_rollout(
        &spec(rolling(Some(IntOrPercent::Percent(30)), None)),
        10,
        3,
        0,
    );
    let one_at_a_time = simulate_rollout(&spec(rolling(None, None)), 10, 1, 0);
    assert!(steps < one_at_a_time, "{steps} vs {one_at_a_time}");
}

#[test]
fn rolling_update_with_surge_1_and_no_unavailability() {
    simulate_rollout(
        &spec(rolling(
            Some(IntOrPercent::Int(0)),
            Some(IntOrPercent::Int(1)),
        )),
        5,
        0,
        1,
    );
}

#[test]
fn min_ready_seconds_delays_availability_and_asks_to_be_woken() {
    let mut spec = spec(rolling(None, None));
    spec.min_ready_seconds = Some(30);
    let pods = [pod("p-a", "a", "new", 100)];
    let outcome = run(&spec, &[node("a")], &pods, t(110));
    assert_eq!(outcome.status.number_ready, 1);
    assert_eq!(outcome.status.number_available, 0);
    assert_eq!(outcome.wake_at, Some(t(130)));
}

#[test]
fn an_unavailable_old_pod_is_replaced_at_once() {
    let mut broken = pod("old-a", "a", "old", 0);
    broken.ready_since = None;
    broken.phase = PodPhase::Pending;
    let pods = [
        broken,
        pod("old-b", "b", "old", 0),
        pod("old-c", "c", "old", 0),
    ];
    let outcome = run(
        &spec(rolling(None, None)),
        &[node("a"), node("b"), node("c")],
        &pods,
        t(10),
    );
    // a is replaced for free; b would make two unavailable, so it waits.
    assert_eq!(
        deletes(&outcome),
        vec![("old-a".to_string(), DeleteReason::Outdated)]
    );
}

fn with_runtime(name: &str, runtime: Option<&str>) -> NodeView {
    let mut n = node(name);
    if let Some(runtime) = runtime {
        n.labels
            .insert(LABEL_CONTAINER_RUNTIME.into(), runtime.into());
    }
    n
}

fn runtime_nodes() -> [NodeView; 3] {
    [
        with_runtime("docker", Some("docker")),
        with_runtime("none", Some("none")),
        with_runtime("unreported", None),
    ]
}

#[test]
fn a_daemonset_of_containers_leaves_out_nodes_without_an_engine() {
    let mut containers = spec(None);
    containers.template.spec.containers.push(Container {
        name: "c".into(),
        image: Some("busybox:1".into()),
        ..Default::default()
    });
    let nodes = runtime_nodes();
    let outcome = run(&containers, &nodes, &[], t(0));
    assert_eq!(creates(&outcome), vec!["docker", "unreported"]);
    assert_eq!(
        outcome.status.desired_number_scheduled, 2,
        "excluded as for a selector"
    );
    let pods = [
        pod("p-d", "docker", "new", 0),
        pod("p-u", "unreported", "new", 0),
    ];
    let steady = run(&containers, &nodes, &pods, t(10));
    assert!(steady.actions.is_empty(), "{:?}", steady.actions);
    assert_eq!(steady.status.number_available, 2);
    assert_eq!(steady.status.updated_number_scheduled, 2);
}

#[test]
fn a_daemon_container_on_a_node_that_lost_its_engine_is_deleted() {
    let mut containers = spec(None);
    containers.template.spec.containers.push(Container {
        name: "c".into(),
        image: Some("busybox:1".into()),
        ..Default::default()
    });
    let pods = [pod("p-n", "none", "new", 0)];
    let outcome = run(&containers, &runtime_nodes(), &pods, t(1));
    assert_eq!(
        deletes(&outcome),
        vec![("p-n".to_string(), DeleteReason::NotEligible)]
    );
}

#[test]
fn a_daemonset_of_host_processes_runs_on_nodes_without_an_engine() {
    let mut processes = spec(None);
    processes.template.spec.containers.push(Container {
        name: "c".into(),
        command: vec!["sleep".into(), "1000".into()],
        ..Default::default()
    });
    let outcome = run(&processes, &runtime_nodes(), &[], t(0));
    assert_eq!(creates(&outcome), vec!["docker", "none", "unreported"]);
    let mut process_class = processes.clone();
    process_class.template.spec.containers[0].image = Some("busybox:1".into());
    process_class.template.spec.runtime_class_name = Some("process".into());
    let outcome = run(&process_class, &runtime_nodes(), &[], t(0));
    assert_eq!(outcome.status.desired_number_scheduled, 3);
}

#[test]
fn a_failure_back_off_restored_after_a_restart_keeps_what_remained_of_its_delay() {
    let failed_at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let started = Mono::at(Duration::from_secs(5));
    // Three failures: a 4 s delay, of which 1 s had passed.
    let restored = FailureBackoff::restored(
        3,
        failed_at,
        failed_at + chrono::Duration::seconds(1),
        started,
    );
    assert_eq!(restored.failures, 3);
    assert_eq!(restored.retry_at, started.plus(Duration::from_secs(3)));
    let later = FailureBackoff::restored(
        3,
        failed_at,
        failed_at + chrono::Duration::hours(1),
        started,
    );
    assert_eq!(later.retry_at, started, "long over: no wait");
    let stepped_back = FailureBackoff::restored(
        3,
        failed_at,
        failed_at - chrono::Duration::hours(1),
        started,
    );
    assert_eq!(
        stepped_back.retry_at,
        started.plus(Duration::from_secs(4)),
        "a clock that went back waits the whole delay, no more"
    );
    let next = FailureBackoff::after_failure(Some(restored), started);
    assert_eq!(next.failures, 4, "the count goes on from where it was");
}
