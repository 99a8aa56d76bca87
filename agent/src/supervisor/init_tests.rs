//! Init containers and native sidecars: start order, restart rules, the pod's phase, and
//! the order of stopping.

use drover_proto::msg::{
    DesiredContainer, DesiredInitContainer, DesiredPod, WireContainerState, WirePhase, WireProbe,
    WireProbeHandler, WireRestartPolicy,
};

use super::*;

const S: Millis = 1000;

fn container(name: &str) -> DesiredContainer {
    DesiredContainer {
        name: name.into(),
        command: vec!["true".into()],
        ..DesiredContainer::default()
    }
}

/// A pod whose init containers are `init` (name, sidecar?) and whose app containers are
/// `app`.
fn pod(policy: WireRestartPolicy, init: &[(&str, bool)], app: &[&str]) -> PodSupervisor {
    let spec = DesiredPod {
        uid: "uid-1".into(),
        namespace: "default".into(),
        name: "job-0".into(),
        restart_policy: policy,
        termination_grace_seconds: 30,
        containers: app.iter().map(|n| container(n)).collect(),
        init_containers: init
            .iter()
            .map(|(n, sidecar)| DesiredInitContainer {
                container: container(n),
                sidecar: *sidecar,
            })
            .collect(),
        ..DesiredPod::default()
    };
    let (p, actions) = PodSupervisor::new(spec, BackoffPolicy::default(), 0);
    assert_eq!(
        starts(&actions),
        vec![0],
        "the first init container starts alone"
    );
    p
}

fn starts(actions: &[Action]) -> Vec<usize> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Start(i) => Some(*i),
            _ => None,
        })
        .collect()
}

fn signals(actions: &[Action]) -> Vec<(usize, StopSignal)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal(i, s) => Some((*i, *s)),
            _ => None,
        })
        .collect()
}

fn waiting_reason(state: &WireContainerState) -> &str {
    match state {
        WireContainerState::Waiting { reason, .. } => reason,
        _ => "",
    }
}

#[test]
fn init_containers_run_one_at_a_time_to_success_before_the_app() {
    let mut p = pod(
        WireRestartPolicy::Always,
        &[("a", false), ("b", false)],
        &["main"],
    );
    let status = p.status();
    assert_eq!(status.init_containers.len(), 2);
    assert_eq!(status.containers.len(), 1);
    assert_eq!(
        waiting_reason(&status.init_containers[1].state),
        "PodInitializing"
    );
    assert_eq!(
        waiting_reason(&status.containers[0].state),
        "PodInitializing"
    );
    assert_eq!(p.phase(), WirePhase::Pending);

    assert!(
        starts(&p.started(0, S)).is_empty(),
        "b waits for a to finish"
    );
    assert_eq!(starts(&p.exited(0, 0, 0, false, 2 * S)), vec![1]);
    assert!(starts(&p.started(1, 3 * S)).is_empty());
    assert_eq!(p.phase(), WirePhase::Pending);
    assert_eq!(starts(&p.exited(1, 0, 0, false, 4 * S)), vec![2]);
    p.started(2, 5 * S);
    assert_eq!(p.phase(), WirePhase::Running);
    let status = p.status();
    assert!(status.containers[0].ready);
    for init in &status.init_containers {
        assert!(!init.ready, "a finished init container is never ready");
        assert!(matches!(
            &init.state,
            WireContainerState::Terminated { reason, .. } if reason == "Completed"
        ));
    }
    // An app restart under Always does not run the init containers again.
    assert_eq!(starts(&p.exited(2, 1, 0, false, 6 * S)), vec![2]);
}

#[test]
fn a_failing_init_container_is_retried_unless_the_pod_says_never() {
    for policy in [WireRestartPolicy::Always, WireRestartPolicy::OnFailure] {
        let mut p = pod(policy, &[("setup", false)], &["main"]);
        p.started(0, 0);
        let actions = p.exited(0, 2, 0, false, S);
        assert_eq!(
            starts(&actions),
            vec![0],
            "{policy:?}: retried, not the app"
        );
        assert_eq!(p.status().init_containers[0].restart_count, 1);
        p.started(0, 2 * S);
        // The second failure backs off, shown as the init container's own reason.
        let actions = p.exited(0, 2, 0, false, 3 * S);
        assert!(starts(&actions).is_empty());
        assert_eq!(
            waiting_reason(&p.status().init_containers[0].state),
            "CrashLoopBackOff"
        );
        assert_eq!(p.phase(), WirePhase::Pending);
    }
    let mut p = pod(WireRestartPolicy::Never, &[("setup", false)], &["main"]);
    p.started(0, 0);
    let actions = p.exited(0, 2, 0, false, S);
    assert!(starts(&actions).is_empty(), "the app never runs");
    assert_eq!(p.phase(), WirePhase::Failed);
    assert!(p.is_terminal());
    assert_eq!(p.finished_at(), Some(S));
    assert_eq!(
        waiting_reason(&p.status().containers[0].state),
        "PodInitializing"
    );
}

#[test]
fn a_sidecar_lets_the_next_start_once_running_and_is_always_restarted() {
    let mut p = pod(
        WireRestartPolicy::Never,
        &[("proxy", true), ("setup", false)],
        &["main"],
    );
    assert_eq!(
        starts(&p.started(0, 0)),
        vec![1],
        "the next starts beside it"
    );
    assert_eq!(starts(&p.exited(1, 0, 0, false, S)), vec![2]);
    p.started(2, 2 * S);
    assert_eq!(p.phase(), WirePhase::Running);
    // A sidecar exiting, even with 0 and under Never, is restarted.
    assert_eq!(starts(&p.exited(0, 0, 0, false, 3 * S)), vec![0]);
    p.started(0, 4 * S);
    let status = p.status();
    assert!(
        status.init_containers[0].ready,
        "a running sidecar is ready"
    );
    assert_eq!(status.init_containers[0].restart_count, 1);
    assert!(!status.init_containers[1].ready);
}

#[test]
fn a_sidecars_startup_probe_holds_the_next_init_container_back() {
    let mut spec = pod(WireRestartPolicy::Always, &[("proxy", true)], &["main"]).spec;
    spec.init_containers[0].container.startup_probe = Some(WireProbe {
        handler: WireProbeHandler::Exec {
            command: vec!["check".into()],
        },
        initial_delay_seconds: 0,
        period_seconds: 1,
        timeout_seconds: 1,
        success_threshold: 1,
        failure_threshold: 30,
        termination_grace_seconds: None,
    });
    let (mut p, _) = PodSupervisor::new(spec, BackoffPolicy::default(), 0);
    assert!(starts(&p.started(0, 0)).is_empty(), "not started yet");
    let actions = p.wake(0);
    assert!(actions.contains(&Action::Probe(0, ProbeKind::Startup)));
    assert!(starts(&p.probed(0, ProbeKind::Startup, false, "no", 10)).is_empty());
    assert!(p.wake(S).contains(&Action::Probe(0, ProbeKind::Startup)));
    assert_eq!(
        starts(&p.probed(0, ProbeKind::Startup, true, "", S + 10)),
        vec![1],
        "the app starts once the sidecar has started"
    );
}

#[test]
fn a_job_pod_completes_when_its_app_does_and_its_sidecar_is_stopped() {
    let mut p = pod(WireRestartPolicy::Never, &[("proxy", true)], &["main"]);
    assert_eq!(starts(&p.started(0, 0)), vec![1]);
    p.started(1, S);
    let actions = p.exited(1, 0, 0, false, 2 * S);
    assert_eq!(signals(&actions), vec![(0, StopSignal::Term)]);
    assert!(actions.contains(&Action::WakeAt(32 * S)), "{actions:?}");
    assert_eq!(
        p.phase(),
        WirePhase::Running,
        "not done while the sidecar runs"
    );
    assert!(!p.is_terminal());
    // A sidecar ignoring SIGTERM is killed when the grace period ends.
    assert!(signals(&p.wake(10 * S)).is_empty());
    assert_eq!(signals(&p.wake(32 * S)), vec![(0, StopSignal::Kill)]);
    // Its exit is not restarted, and does not decide the pod's phase.
    let actions = p.exited(0, 137, 9, false, 33 * S);
    assert!(starts(&actions).is_empty(), "{actions:?}");
    assert_eq!(p.phase(), WirePhase::Succeeded);
    assert_eq!(p.finished_at(), Some(33 * S));
    assert!(!actions.contains(&Action::Removed), "kept until deleted");

    let mut failed = pod(WireRestartPolicy::Never, &[("proxy", true)], &["main"]);
    failed.started(0, 0);
    failed.started(1, S);
    failed.exited(1, 3, 0, false, 2 * S);
    failed.exited(0, 143, 15, false, 3 * S);
    assert_eq!(failed.phase(), WirePhase::Failed);
}

#[test]
fn a_failed_init_container_under_never_stops_the_sidecars_before_it() {
    let mut p = pod(
        WireRestartPolicy::Never,
        &[("proxy", true), ("setup", false)],
        &["main"],
    );
    p.started(0, 0);
    p.started(1, 0);
    let actions = p.exited(1, 1, 0, false, S);
    assert_eq!(signals(&actions), vec![(0, StopSignal::Term)]);
    assert!(starts(&actions).is_empty());
    assert_eq!(p.phase(), WirePhase::Pending, "the sidecar still runs");
    p.exited(0, 143, 15, false, 2 * S);
    assert_eq!(p.phase(), WirePhase::Failed);
}

#[test]
fn stopping_a_pod_stops_its_sidecars_after_its_app_the_last_started_first() {
    let mut p = pod(
        WireRestartPolicy::Always,
        &[("log", true), ("proxy", true)],
        &["main"],
    );
    assert_eq!(starts(&p.started(0, 0)), vec![1]);
    assert_eq!(starts(&p.started(1, 0)), vec![2]);
    p.started(2, 0);
    let actions = p.stop(S);
    assert_eq!(
        signals(&actions),
        vec![(2, StopSignal::Term)],
        "the app first"
    );
    let actions = p.exited(2, 143, 15, false, 2 * S);
    assert_eq!(
        signals(&actions),
        vec![(1, StopSignal::Term), (0, StopSignal::Term)]
    );
    assert!(starts(&actions).is_empty());
    p.exited(1, 143, 15, false, 3 * S);
    let actions = p.exited(0, 143, 15, false, 3 * S);
    assert!(
        starts(&actions).is_empty(),
        "no sidecar restarts while stopping"
    );
    assert!(actions.contains(&Action::Removed));

    // The grace period is the pod's: what still runs at its end is killed, sidecars too.
    let mut p = pod(WireRestartPolicy::Always, &[("proxy", true)], &["main"]);
    p.started(0, 0);
    p.started(1, 0);
    p.stop(0);
    let killed = signals(&p.wake(30 * S));
    assert!(killed.contains(&(0, StopSignal::Kill)), "{killed:?}");
    assert!(killed.contains(&(1, StopSignal::Kill)), "{killed:?}");
}

#[test]
fn stopping_a_pod_still_initializing_stops_what_runs_and_starts_nothing() {
    let mut p = pod(WireRestartPolicy::Always, &[("setup", false)], &["main"]);
    p.started(0, 0);
    let actions = p.stop(S);
    assert_eq!(signals(&actions), vec![(0, StopSignal::Term)]);
    let actions = p.exited(0, 0, 0, false, 2 * S);
    assert!(starts(&actions).is_empty(), "the app is not started");
    assert!(actions.contains(&Action::Removed));
}

#[test]
fn a_pod_with_init_containers_survives_serialization_mid_way() {
    let mut p = pod(
        WireRestartPolicy::OnFailure,
        &[("proxy", true), ("setup", false)],
        &["main"],
    );
    p.started(0, 0);
    let bytes = postcard::to_stdvec(&p).unwrap();
    let mut back: PodSupervisor = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, p);
    assert_eq!(starts(&back.started(1, S)), Vec::<usize>::new());
    assert_eq!(starts(&back.exited(1, 0, 0, false, 2 * S)), vec![2]);
}

#[test]
fn a_stop_while_an_app_image_pull_fails_still_stops_the_sidecars() {
    for grace in [0, 30] {
        let mut spec = pod(WireRestartPolicy::Always, &[("proxy", true)], &["main"]).spec;
        spec.termination_grace_seconds = grace;
        let (mut p, _) = PodSupervisor::new(spec, BackoffPolicy::default(), 0);
        assert_eq!(starts(&p.started(0, 0)), vec![1]);
        // The app's pull is in flight when the pod is deleted.
        let actions = p.stop(S);
        assert!(signals(&actions).is_empty(), "grace {grace}: {actions:?}");
        let actions = p.image_failed(1, "ErrImagePull", "no registry".into(), 2 * S);
        let expected = if grace == 0 {
            StopSignal::Kill
        } else {
            StopSignal::Term
        };
        assert_eq!(signals(&actions), vec![(0, expected)], "grace {grace}");
        let actions = p.exited(0, 143, 15, false, 3 * S);
        assert!(
            actions.contains(&Action::Removed),
            "grace {grace}: {actions:?}"
        );
    }
}

#[test]
fn a_sidecar_still_starting_when_the_app_finishes_is_stopped_and_killed_in_time() {
    let mut p = pod(WireRestartPolicy::Never, &[("proxy", true)], &["main"]);
    p.started(0, 0);
    p.started(1, 0);
    // The sidecar crashes and is being started again as the app finishes.
    assert_eq!(starts(&p.exited(0, 1, 0, false, S)), vec![0]);
    let actions = p.exited(1, 0, 0, false, 2 * S);
    assert!(signals(&actions).is_empty(), "nothing runs to signal yet");
    assert!(actions.contains(&Action::WakeAt(32 * S)), "{actions:?}");
    let actions = p.started(0, 3 * S);
    assert_eq!(signals(&actions), vec![(0, StopSignal::Term)]);
    assert_eq!(signals(&p.wake(32 * S)), vec![(0, StopSignal::Kill)]);
    p.exited(0, 137, 9, false, 33 * S);
    assert_eq!(p.phase(), WirePhase::Succeeded);
    assert_eq!(p.finished_at(), Some(33 * S));
    assert!(!p.may_start(0), "held starts of the sidecar are not made");
}

#[test]
fn a_sidecar_failing_its_image_after_the_app_finished_lets_the_pod_finish() {
    let mut p = pod(WireRestartPolicy::Never, &[("proxy", true)], &["main"]);
    p.started(0, 0);
    p.started(1, 0);
    p.exited(0, 1, 0, false, S);
    p.exited(1, 0, 0, false, 2 * S);
    let actions = p.image_failed(0, "ErrImagePull", "gone".into(), 3 * S);
    assert!(starts(&actions).is_empty());
    assert!(!wake_starts(&mut p, 400 * S), "not retried");
    assert_eq!(p.phase(), WirePhase::Succeeded);
    assert_eq!(p.finished_at(), Some(2 * S));
}

fn wake_starts(p: &mut PodSupervisor, now: Millis) -> bool {
    !starts(&p.wake(now)).is_empty()
}
