//! Lifecycle hooks: postStart holds probes back and kills on failure; preStop comes before
//! SIGTERM, within the grace period, on a delete and on a liveness kill.

use drover_proto::msg::{
    DesiredContainer, DesiredInitContainer, DesiredPod, WireHook, WireProbe, WireProbeHandler,
    WireRestartPolicy,
};

use super::*;

const S: Millis = 1000;

fn exec_hook() -> Option<WireHook> {
    Some(WireHook::Check(WireProbeHandler::Exec {
        command: vec!["hook".into()],
    }))
}

fn probe(failures: u32) -> WireProbe {
    WireProbe {
        handler: WireProbeHandler::Exec {
            command: vec!["check".into()],
        },
        initial_delay_seconds: 0,
        period_seconds: 10,
        timeout_seconds: 1,
        success_threshold: 1,
        failure_threshold: failures,
        termination_grace_seconds: None,
    }
}

fn pod_with(container: DesiredContainer, grace: u32) -> PodSupervisor {
    let spec = DesiredPod {
        uid: "uid-1".into(),
        namespace: "default".into(),
        name: "web".into(),
        restart_policy: WireRestartPolicy::Always,
        termination_grace_seconds: grace,
        containers: vec![container],
        ..DesiredPod::default()
    };
    PodSupervisor::new(spec, BackoffPolicy::default(), 0).0
}

fn container() -> DesiredContainer {
    DesiredContainer {
        name: "main".into(),
        command: vec!["serve".into()],
        ..DesiredContainer::default()
    }
}

fn hooks(actions: &[Action]) -> Vec<(usize, HookKind)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Hook(i, k) => Some((*i, *k)),
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

fn events(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn post_start_holds_readiness_and_probes_back_until_it_is_done() {
    let mut p = pod_with(
        DesiredContainer {
            post_start: exec_hook(),
            readiness_probe: Some(probe(1)),
            ..container()
        },
        30,
    );
    let actions = p.started(0, 0);
    assert_eq!(hooks(&actions), vec![(0, HookKind::PostStart)]);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::WakeAt(_))),
        "{actions:?}"
    );
    assert!(p.wake(20 * S).is_empty(), "no probe runs meanwhile");
    assert!(!p.status().containers[0].ready);
    let actions = p.hooked(0, HookKind::PostStart, true, "", 20 * S);
    assert!(actions.contains(&Action::WakeAt(20 * S)), "{actions:?}");
    assert!(p
        .wake(20 * S)
        .contains(&Action::Probe(0, ProbeKind::Readiness)));
    // An answer nobody asked for changes nothing.
    assert!(p
        .hooked(0, HookKind::PostStart, false, "late", 21 * S)
        .is_empty());
}

#[test]
fn a_failed_post_start_kills_the_container_and_its_restart_policy_decides() {
    let mut p = pod_with(
        DesiredContainer {
            post_start: exec_hook(),
            ..container()
        },
        5,
    );
    p.started(0, 0);
    let actions = p.hooked(0, HookKind::PostStart, false, "exit status 2", S);
    assert_eq!(events(&actions), vec!["FailedPostStartHook", "Killing"]);
    assert!(actions.contains(&Action::StopContainer {
        index: 0,
        grace_seconds: 5
    }));
    assert_eq!(
        signals(&p.wake(6 * S)),
        vec![(0, StopSignal::Kill)],
        "killed when its grace period ends"
    );
    let actions = p.exited(0, 137, 9, false, 6 * S);
    assert!(actions.contains(&Action::Start(0)), "{actions:?}");
    assert_eq!(p.status().containers[0].restart_count, 1);
}

#[test]
fn pre_stop_runs_before_sigterm_and_sigkill_ends_the_grace_period() {
    for success in [true, false] {
        let mut p = pod_with(
            DesiredContainer {
                pre_stop: exec_hook(),
                ..container()
            },
            10,
        );
        p.started(0, 0);
        let actions = p.stop(S);
        assert_eq!(hooks(&actions), vec![(0, HookKind::PreStop)]);
        assert!(signals(&actions).is_empty(), "no SIGTERM before the hook");
        let actions = p.hooked(0, HookKind::PreStop, success, "exit status 1", 3 * S);
        assert_eq!(signals(&actions), vec![(0, StopSignal::Term)]);
        assert_eq!(
            events(&actions).contains(&"FailedPreStopHook"),
            !success,
            "{actions:?}"
        );
        let actions = p.exited(0, 143, 15, false, 4 * S);
        assert!(actions.contains(&Action::Removed));
    }
    // A hook outlasting the grace period: SIGKILL at its end, as without one.
    let mut p = pod_with(
        DesiredContainer {
            pre_stop: exec_hook(),
            ..container()
        },
        10,
    );
    p.started(0, 0);
    p.stop(0);
    assert_eq!(signals(&p.wake(10 * S)), vec![(0, StopSignal::Kill)]);
    assert_eq!(
        signals(&p.hooked(0, HookKind::PreStop, false, "killed", 10 * S)),
        vec![(0, StopSignal::Kill)]
    );
}

#[test]
fn a_zero_grace_period_skips_pre_stop() {
    let mut p = pod_with(
        DesiredContainer {
            pre_stop: exec_hook(),
            ..container()
        },
        0,
    );
    p.started(0, 0);
    let actions = p.stop(S);
    assert!(hooks(&actions).is_empty());
    assert_eq!(signals(&actions), vec![(0, StopSignal::Kill)]);
}

#[test]
fn a_liveness_kill_runs_pre_stop_then_stops_within_what_is_left_of_the_grace() {
    let mut p = pod_with(
        DesiredContainer {
            pre_stop: exec_hook(),
            liveness_probe: Some(probe(1)),
            ..container()
        },
        30,
    );
    p.started(0, 0);
    p.wake(0);
    let actions = p.probed(0, ProbeKind::Liveness, false, "refused", 0);
    assert_eq!(hooks(&actions), vec![(0, HookKind::PreStop)]);
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { .. })));
    let actions = p.hooked(0, HookKind::PreStop, true, "", 12_500);
    assert!(
        actions.contains(&Action::StopContainer {
            index: 0,
            grace_seconds: 18
        }),
        "{actions:?}"
    );
}

#[test]
fn a_sidecars_post_start_holds_the_next_container_back() {
    let spec = DesiredPod {
        uid: "uid-1".into(),
        name: "job-0".into(),
        restart_policy: WireRestartPolicy::Never,
        termination_grace_seconds: 30,
        init_containers: vec![DesiredInitContainer {
            container: DesiredContainer {
                name: "proxy".into(),
                post_start: exec_hook(),
                ..container()
            },
            sidecar: true,
        }],
        containers: vec![container()],
        ..DesiredPod::default()
    };
    let (mut p, _) = PodSupervisor::new(spec, BackoffPolicy::default(), 0);
    let actions = p.started(0, 0);
    assert!(!actions.contains(&Action::Start(1)), "{actions:?}");
    let actions = p.hooked(0, HookKind::PostStart, true, "", S);
    assert!(actions.contains(&Action::Start(1)), "{actions:?}");
}

#[test]
fn hooks_lost_to_an_agent_restart_count_as_done() {
    let mut p = pod_with(
        DesiredContainer {
            post_start: exec_hook(),
            pre_stop: exec_hook(),
            ..container()
        },
        30,
    );
    p.started(0, 0);
    let mut back: PodSupervisor = postcard::from_bytes(&postcard::to_stdvec(&p).unwrap()).unwrap();
    back.resume_probes(S);
    assert!(
        back.status().containers[0].ready,
        "its postStart is taken as done"
    );
    back.stop(2 * S);
    let mut again: PodSupervisor =
        postcard::from_bytes(&postcard::to_stdvec(&back).unwrap()).unwrap();
    let actions = again.resume_probes(3 * S);
    assert_eq!(
        signals(&actions),
        vec![(0, StopSignal::Term)],
        "{actions:?}"
    );
}

#[test]
fn a_pre_stop_already_running_is_not_run_again() {
    let mut p = pod_with(
        DesiredContainer {
            pre_stop: exec_hook(),
            liveness_probe: Some(probe(1)),
            ..container()
        },
        30,
    );
    p.started(0, 0);
    p.wake(0);
    let actions = p.probed(0, ProbeKind::Liveness, false, "refused", 0);
    assert_eq!(hooks(&actions), vec![(0, HookKind::PreStop)]);
    // The pod is deleted while that hook runs: no second run, no early SIGTERM.
    let actions = p.stop(S);
    assert!(hooks(&actions).is_empty(), "{actions:?}");
    assert!(signals(&actions).is_empty(), "{actions:?}");
    // Its end sends the SIGTERM the pod's stop asks for.
    let actions = p.hooked(0, HookKind::PreStop, true, "", 2 * S);
    assert_eq!(signals(&actions), vec![(0, StopSignal::Term)]);
}

#[test]
fn a_failed_post_start_goes_through_pre_stop() {
    let mut p = pod_with(
        DesiredContainer {
            post_start: exec_hook(),
            pre_stop: exec_hook(),
            ..container()
        },
        10,
    );
    p.started(0, 0);
    let actions = p.hooked(0, HookKind::PostStart, false, "exit status 1", S);
    assert_eq!(hooks(&actions), vec![(0, HookKind::PreStop)]);
    let actions = p.hooked(0, HookKind::PreStop, true, "", 2 * S);
    assert!(
        actions.contains(&Action::StopContainer {
            index: 0,
            grace_seconds: 9
        }),
        "{actions:?}"
    );
}

#[test]
fn a_container_started_during_a_stop_runs_its_pre_stop_not_its_post_start() {
    let mut p = pod_with(
        DesiredContainer {
            post_start: exec_hook(),
            pre_stop: exec_hook(),
            ..container()
        },
        10,
    );
    p.stop(0);
    let actions = p.started(0, S);
    assert_eq!(hooks(&actions), vec![(0, HookKind::PreStop)]);
}

#[test]
fn a_stop_is_restated_to_an_engine_container_found_after_an_agent_restart() {
    let mut p = pod_with(container(), 10);
    p.started(0, 0);
    assert_eq!(p.restate_stop(0, 0), None, "not being stopped");
    p.stop(0);
    assert_eq!(
        p.restate_stop(0, S),
        Some(Action::Signal(0, StopSignal::Term))
    );
    p.wake(10 * S);
    assert_eq!(
        p.restate_stop(0, 11 * S),
        Some(Action::Signal(0, StopSignal::Kill)),
        "the kill, once its time has passed"
    );
}
