//! The supervisor with a hand-held clock: restart tables, back-off, stop sequence.

use std::time::Duration;

use drover_proto::msg::{
    DesiredContainer, DesiredPod, WireContainerState, WirePhase, WireRestartPolicy,
};

use super::*;

const S: Millis = 1000;

fn pod(policy: WireRestartPolicy, containers: usize, grace: u32) -> DesiredPod {
    DesiredPod {
        uid: "uid-1".into(),
        namespace: "default".into(),
        name: "web".into(),
        restart_policy: policy,
        termination_grace_seconds: grace,
        containers: (0..containers)
            .map(|i| DesiredContainer {
                name: format!("c{i}"),
                image: None,
                command: vec!["true".into()],
                ..DesiredContainer::default()
            })
            .collect(),
        ..DesiredPod::default()
    }
}

fn starts(actions: &[Action]) -> Vec<usize> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Start(i) = a {
                Some(*i)
            } else {
                None
            }
        })
        .collect()
}

fn wakes(actions: &[Action]) -> Vec<Millis> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::WakeAt(t) = a {
                Some(*t)
            } else {
                None
            }
        })
        .collect()
}

fn running(policy: WireRestartPolicy) -> PodSupervisor {
    let (mut p, actions) = PodSupervisor::new(pod(policy, 1, 30), BackoffPolicy::default(), 0);
    assert_eq!(starts(&actions), vec![0]);
    assert_eq!(p.phase(), WirePhase::Pending);
    p.started(0, 0);
    assert_eq!(p.phase(), WirePhase::Running);
    p
}

#[test]
fn exit_table_by_restart_policy() {
    use WireRestartPolicy::*;
    // (policy, exit code, signal, restarts?, phase after, terminated reason)
    let table = [
        (Always, 0, 0, true, WirePhase::Running, ""),
        (Always, 3, 0, true, WirePhase::Running, ""),
        (Always, 137, 9, true, WirePhase::Running, ""),
        (OnFailure, 0, 0, false, WirePhase::Succeeded, "Completed"),
        (OnFailure, 3, 0, true, WirePhase::Running, ""),
        (OnFailure, 143, 15, true, WirePhase::Running, ""),
        (Never, 0, 0, false, WirePhase::Succeeded, "Completed"),
        (Never, 3, 0, false, WirePhase::Failed, "Error"),
        (Never, 137, 9, false, WirePhase::Failed, "Error"),
    ];
    for (policy, code, signal, restarts, phase, reason) in table {
        let mut p = running(policy);
        let actions = p.exited(0, code, signal, false, 5 * S);
        assert_eq!(
            !starts(&actions).is_empty(),
            restarts,
            "{policy:?} exit {code}"
        );
        assert_eq!(p.phase(), phase, "{policy:?} exit {code}");
        let status = p.status();
        let c = &status.containers[0];
        if restarts {
            assert_eq!(c.restart_count, 1);
            assert!(
                matches!(&c.last_state, Some(WireContainerState::Terminated { exit_code, signal: s, .. }) if *exit_code == code && *s == signal)
            );
        } else {
            assert_eq!(c.restart_count, 0);
            match &c.state {
                WireContainerState::Terminated {
                    exit_code,
                    reason: r,
                    ..
                } => {
                    assert_eq!((*exit_code, r.as_str()), (code, reason));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn crash_loop_delays_grow_10s_doubling_to_300s() {
    let mut p = running(WireRestartPolicy::Always);
    let mut now = 0;
    let mut delays = vec![];
    for _ in 0..9 {
        now += S; // ran one second
        let actions = p.exited(0, 1, 0, false, now);
        match starts(&actions).first() {
            Some(_) => delays.push(0),
            None => {
                let at = wakes(&actions)[0];
                delays.push((at - now) / S);
                let status = p.status();
                assert!(
                    matches!(&status.containers[0].state, WireContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff")
                );
                assert!(p.wake(at - 1).is_empty(), "not before the delay");
                now = at;
                assert_eq!(starts(&p.wake(now)), vec![0]);
            }
        }
        p.started(0, now);
    }
    assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(p.status().containers[0].restart_count, 9);
}

#[test]
fn back_off_resets_after_ten_minutes_of_running() {
    let mut p = running(WireRestartPolicy::Always);
    p.exited(0, 1, 0, false, S);
    p.started(0, S);
    let actions = p.exited(0, 1, 0, false, 2 * S);
    let at = wakes(&actions)[0];
    assert_eq!(at - 2 * S, 10 * S);
    p.wake(at);
    p.started(0, at);
    // Runs for exactly ten minutes: the next restart is immediate again.
    let actions = p.exited(0, 1, 0, false, at + 600 * S);
    assert_eq!(starts(&actions), vec![0]);
}

#[test]
fn back_off_delays_are_configurable() {
    let backoff = BackoffPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        reset_after: Duration::from_secs(1),
    };
    let delays: Vec<u128> = (1..=6).map(|n| backoff.delay(n).as_millis()).collect();
    assert_eq!(delays, vec![0, 100, 200, 400, 400, 400]);
}

#[test]
fn stop_sends_term_then_kill_after_the_grace_period() {
    let mut p = running(WireRestartPolicy::Always);
    let actions = p.stop(100 * S);
    assert!(actions.contains(&Action::Signal(0, StopSignal::Term)));
    assert_eq!(wakes(&actions), vec![130 * S]);
    assert!(p.wake(129 * S).is_empty());
    assert_eq!(p.wake(130 * S), vec![Action::Signal(0, StopSignal::Kill)]);
    // Killed: the exit does not restart it, and the pod is removed.
    let actions = p.exited(0, 137, 9, false, 130 * S);
    assert!(starts(&actions).is_empty());
    assert!(actions.contains(&Action::Removed));
    assert!(p.is_removed());
    assert!(p.status().removed);
}

#[test]
fn a_process_that_honours_sigterm_is_not_killed() {
    let mut p = running(WireRestartPolicy::Always);
    p.stop(0);
    let actions = p.exited(0, 143, 15, false, 2 * S);
    assert!(actions.contains(&Action::Removed));
    assert!(p.wake(30 * S).is_empty());
}

#[test]
fn zero_grace_kills_at_once() {
    let (mut p, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Always, 1, 0),
        BackoffPolicy::default(),
        0,
    );
    p.started(0, 0);
    let actions = p.stop(S);
    assert!(actions.contains(&Action::Signal(0, StopSignal::Kill)));
    assert!(wakes(&actions).is_empty());
}

#[test]
fn stopping_a_backing_off_pod_removes_it_at_once() {
    let mut p = running(WireRestartPolicy::Always);
    p.exited(0, 1, 0, false, S);
    p.started(0, S);
    p.exited(0, 1, 0, false, 2 * S);
    let actions = p.stop(3 * S);
    assert!(actions.contains(&Action::Removed));
    assert!(p.wake(100 * S).is_empty(), "a stopped pod never restarts");
}

#[test]
fn a_command_that_cannot_run_is_reported_with_its_reason() {
    let (mut p, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Never, 1, 30),
        BackoffPolicy::default(),
        0,
    );
    let actions = p.start_failed(0, "no such file or directory: sleeep".into(), 0);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Event {
            reason: "Failed",
            ..
        }
    )));
    assert_eq!(p.phase(), WirePhase::Failed);
    match &p.status().containers[0].state {
        WireContainerState::Terminated {
            reason, message, ..
        } => {
            assert_eq!(reason, "ContainerCannotRun");
            assert!(message.contains("no such file"));
        }
        other => panic!("{other:?}"),
    }
    // With Always it crash-loops instead.
    let (mut p, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Always, 1, 30),
        BackoffPolicy::default(),
        0,
    );
    assert_eq!(starts(&p.start_failed(0, "x".into(), 0)), vec![0]);
    let actions = p.start_failed(0, "x".into(), 0);
    assert!(starts(&actions).is_empty());
    assert!(
        matches!(&p.status().containers[0].state, WireContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff")
    );
}

#[test]
fn pod_phase_with_two_containers() {
    let (mut p, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Never, 2, 30),
        BackoffPolicy::default(),
        0,
    );
    p.started(0, 0);
    assert_eq!(p.phase(), WirePhase::Pending, "not every container started");
    p.started(1, 0);
    assert_eq!(p.phase(), WirePhase::Running);
    p.exited(0, 0, 0, false, S);
    assert_eq!(p.phase(), WirePhase::Running, "one still runs");
    p.exited(1, 2, 0, false, S);
    assert_eq!(p.phase(), WirePhase::Failed);
    assert!(p.is_terminal());
}

#[test]
fn oom_kills_are_reported_as_oomkilled() {
    let mut p = running(WireRestartPolicy::Never);
    p.exited(0, 137, 9, true, S);
    assert!(
        matches!(&p.status().containers[0].state, WireContainerState::Terminated { reason, exit_code: 137, .. } if reason == "OOMKilled")
    );
}

#[test]
fn an_agent_restart_counts_as_a_restart_or_fails_a_never_pod() {
    let mut p = running(WireRestartPolicy::Always);
    let actions = p.lost_to_agent_restart(0, "agent restarted", 9 * S);
    assert_eq!(starts(&actions), vec![0]);
    assert!(
        matches!(&p.status().containers[0].last_state, Some(WireContainerState::Terminated { reason, .. }) if reason == "AgentRestart")
    );
    let mut p = running(WireRestartPolicy::Never);
    p.lost_to_agent_restart(0, "agent restarted", 9 * S);
    assert_eq!(p.phase(), WirePhase::Failed);
}

#[test]
fn agent_restarts_never_put_a_container_into_back_off() {
    let mut p = running(WireRestartPolicy::Always);
    // A crash, then two agent restarts soon after: each restart starts it again at once.
    p.exited(0, 1, 0, false, S);
    let crashes = p.containers[0].crashes;
    for at in [2 * S, 3 * S] {
        let _ = p.wake(at);
        p.started(0, at);
        let actions = p.lost_to_agent_restart(0, "agent restarted", at + 1);
        assert_eq!(starts(&actions), vec![0], "{actions:?}");
        assert!(!actions.iter().any(|a| matches!(a, Action::WakeAt(_))));
        p.started(0, at + 1);
    }
    assert_eq!(p.containers[0].crashes, crashes, "not counted as crashes");
}

#[test]
fn shifting_times_moves_every_deadline_and_timestamp_alike() {
    let mut p = running(WireRestartPolicy::Always);
    p.exited(0, 1, 0, false, 5 * S);
    let mut shifted = p.clone();
    shifted.shift_times(1000 * S);
    // A wake at the shifted time does what a wake at the original time did.
    assert_eq!(
        starts(&p.clone().wake(60 * S)),
        starts(&shifted.clone().wake(1060 * S))
    );
    assert_eq!(
        shifted.status().start_time_ms,
        p.status().start_time_ms + 1000 * S
    );
}

#[test]
fn the_supervisor_survives_serialization() {
    let mut p = running(WireRestartPolicy::Always);
    p.exited(0, 1, 0, false, S);
    let bytes = postcard::to_stdvec(&p).unwrap();
    let back: PodSupervisor = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, p);
}

#[test]
fn restart_count_counts_restarts_done_not_restarts_planned() {
    let mut p = running(WireRestartPolicy::Always);
    p.exited(0, 1, 0, false, S);
    assert_eq!(
        p.status().containers[0].restart_count,
        1,
        "the immediate restart happened"
    );
    p.started(0, S);
    let actions = p.exited(0, 1, 0, false, 2 * S);
    assert_eq!(
        p.status().containers[0].restart_count,
        1,
        "still backing off"
    );
    let at = wakes(&actions)[0];
    p.wake(at);
    assert_eq!(p.status().containers[0].restart_count, 2);
}

fn waiting_reason(sup: &PodSupervisor, index: usize) -> String {
    match &sup.containers[index].phase {
        ContainerPhase::Waiting { reason, .. } => reason.clone(),
        other => panic!("not waiting: {other:?}"),
    }
}

#[test]
fn image_pull_failures_back_off_without_counting_restarts() {
    let (mut sup, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Never, 1, 30),
        BackoffPolicy::default(),
        0,
    );
    let first = sup.image_failed(0, "ErrImagePull", "denied".into(), 0);
    assert_eq!(wakes(&first), vec![10 * S]);
    assert_eq!(waiting_reason(&sup, 0), "ErrImagePull");
    assert_eq!(sup.phase(), WirePhase::Pending);
    assert_eq!(starts(&sup.wake(10 * S)), vec![0]);
    let second = sup.image_failed(0, "ErrImagePull", "denied".into(), 10 * S);
    assert_eq!(wakes(&second), vec![30 * S]);
    assert_eq!(waiting_reason(&sup, 0), "ImagePullBackOff");
    assert_eq!(starts(&sup.wake(30 * S)), vec![0]);
    sup.started(0, 31 * S);
    assert_eq!(sup.containers[0].restart_count, 0);
    assert_eq!(sup.phase(), WirePhase::Running);
}

#[test]
fn never_pull_keeps_its_reason_and_pod_stays_pending() {
    let (mut sup, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Never, 1, 30),
        BackoffPolicy::default(),
        0,
    );
    for attempt in 0..3 {
        let now = attempt * 400 * S;
        sup.image_failed(0, "ErrImageNeverPull", "not present".into(), now);
        assert_eq!(waiting_reason(&sup, 0), "ErrImageNeverPull");
        sup.wake(now + 300 * S);
    }
    assert_eq!(sup.phase(), WirePhase::Pending);
    assert!(!sup.is_terminal());
}

#[test]
fn a_pod_waiting_for_its_image_stops_at_once() {
    let (mut sup, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Always, 1, 30),
        BackoffPolicy::default(),
        0,
    );
    sup.image_failed(0, "ErrImagePull", "denied".into(), 0);
    let actions = sup.stop(S);
    assert!(actions.contains(&Action::Removed), "{actions:?}");
    assert!(sup.is_removed());
}

#[test]
fn an_image_failure_during_a_stop_completes_the_stop() {
    let (mut sup, _) = PodSupervisor::new(
        pod(WireRestartPolicy::Always, 1, 30),
        BackoffPolicy::default(),
        0,
    );
    let stop = sup.stop(S);
    assert!(!stop.contains(&Action::Removed));
    let actions = sup.image_failed(0, "ErrImagePull", "denied".into(), 2 * S);
    assert!(actions.contains(&Action::Removed), "{actions:?}");
}

fn probed_pod(policy: WireRestartPolicy, probe_grace: Option<u32>) -> PodSupervisor {
    use drover_proto::msg::{WireProbe, WireProbeHandler};
    let probe = |failures| WireProbe {
        handler: WireProbeHandler::Exec {
            command: vec!["check".into()],
        },
        initial_delay_seconds: 0,
        period_seconds: 10,
        timeout_seconds: 1,
        success_threshold: 1,
        failure_threshold: failures,
        termination_grace_seconds: probe_grace,
    };
    let mut spec = pod(policy, 1, 30);
    spec.containers[0].liveness_probe = Some(probe(2));
    spec.containers[0].readiness_probe = Some(probe(1));
    let (mut p, _) = PodSupervisor::new(spec, BackoffPolicy::default(), 0);
    p.started(0, 0);
    p
}

fn probes_asked(actions: &[Action]) -> Vec<ProbeKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Probe(0, kind) => Some(*kind),
            _ => None,
        })
        .collect()
}

#[test]
fn readiness_follows_the_readiness_probe_into_the_status() {
    let mut p = probed_pod(WireRestartPolicy::Always, None);
    assert!(
        !p.status().containers[0].ready,
        "not ready before the probe"
    );
    let asked = probes_asked(&p.wake(0));
    assert_eq!(asked, vec![ProbeKind::Liveness, ProbeKind::Readiness]);
    p.probed(0, ProbeKind::Liveness, true, "", 0);
    p.probed(0, ProbeKind::Readiness, true, "", 0);
    assert!(p.status().containers[0].ready);
    probes_asked(&p.wake(10 * S));
    let actions = p.probed(
        0,
        ProbeKind::Readiness,
        false,
        "HTTP probe failed with statuscode: 503",
        10 * S,
    );
    assert!(!p.status().containers[0].ready);
    assert!(actions.iter().any(|a| matches!(a, Action::Event { reason: "Unhealthy", message, .. } if message == "Readiness probe failed: HTTP probe failed with statuscode: 503")));
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::StopContainer { .. })));
}

#[test]
fn a_failed_liveness_probe_stops_the_container_and_its_restart_policy_restarts_it() {
    let mut p = probed_pod(WireRestartPolicy::Always, Some(5));
    for at in [0, 10 * S] {
        p.wake(at);
        p.probed(0, ProbeKind::Readiness, true, "", at);
        let actions = p.probed(0, ProbeKind::Liveness, false, "exited with 1", at);
        if at == 0 {
            assert!(!actions
                .iter()
                .any(|a| matches!(a, Action::StopContainer { .. })));
        } else {
            assert!(actions.contains(&Action::StopContainer {
                index: 0,
                grace_seconds: 5
            }));
            assert!(actions.iter().any(|a| matches!(
                a,
                Action::Event {
                    reason: "Killing",
                    ..
                }
            )));
            assert_eq!(wakes(&actions), vec![15 * S]);
        }
    }
    assert!(!p.status().containers[0].ready);
    // Still running at the end of the probe's grace period: SIGKILL.
    let actions = p.wake(15 * S);
    assert!(actions.contains(&Action::Signal(0, StopSignal::Kill)));
    // It ends; Always restarts it at once, counted, and its probes start over.
    let actions = p.exited(0, 137, 9, false, 15 * S);
    assert_eq!(starts(&actions), vec![0]);
    assert_eq!(p.containers[0].restart_count, 1);
    p.started(0, 15 * S);
    assert_eq!(probes_asked(&p.wake(15 * S)).len(), 2);
}

#[test]
fn a_failed_liveness_probe_under_never_ends_the_pod_failed() {
    let mut p = probed_pod(WireRestartPolicy::Never, None);
    for at in [0, 10 * S] {
        p.wake(at);
        p.probed(0, ProbeKind::Liveness, false, "", at);
    }
    let actions = p.exited(0, 143, 15, false, 11 * S);
    assert!(starts(&actions).is_empty());
    assert_eq!(p.phase(), WirePhase::Failed);
}

#[test]
fn no_probe_runs_while_the_pod_stops_and_late_outcomes_change_nothing() {
    let mut p = probed_pod(WireRestartPolicy::Always, None);
    p.wake(0);
    p.stop(S);
    assert!(p.probed(0, ProbeKind::Liveness, false, "", S).is_empty());
    assert!(probes_asked(&p.wake(20 * S)).is_empty());
}

#[test]
fn an_agent_restart_resumes_probes_and_keeps_readiness() {
    let mut p = probed_pod(WireRestartPolicy::Always, None);
    p.wake(0);
    p.probed(0, ProbeKind::Liveness, true, "", 0);
    p.probed(0, ProbeKind::Readiness, true, "", 0);
    p.wake(10 * S);
    // The records keep the supervisor; the probes that ran are gone with the agent.
    let mut restored = p.clone();
    let actions = restored.resume_probes(10 * S);
    assert_eq!(wakes(&actions), vec![20 * S]);
    assert!(restored.status().containers[0].ready);
    assert_eq!(probes_asked(&restored.wake(20 * S)).len(), 2);
}

#[test]
fn a_probe_that_outlasts_its_period_asks_for_no_wake_until_its_outcome() {
    let mut p = probed_pod(WireRestartPolicy::Always, None);
    probes_asked(&p.wake(0));
    // Both probes still run at 10 s: nothing is due, and no wake at or before now.
    let actions = p.wake(10 * S);
    assert!(probes_asked(&actions).is_empty());
    assert!(wakes(&actions).iter().all(|at| *at > 10 * S), "{actions:?}");
    // The late outcome asks for the overdue run.
    let actions = p.probed(0, ProbeKind::Liveness, true, "", 11 * S);
    assert_eq!(wakes(&actions), vec![10 * S]);
    assert_eq!(probes_asked(&p.wake(11 * S)), vec![ProbeKind::Liveness]);
}

#[test]
fn a_probe_that_could_not_run_is_asked_for_again() {
    let mut p = probed_pod(WireRestartPolicy::Always, None);
    assert_eq!(probes_asked(&p.wake(0)).len(), 2);
    let actions = p.probe_not_run(0, ProbeKind::Liveness);
    assert_eq!(wakes(&actions), vec![10 * S]);
}
