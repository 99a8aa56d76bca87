use drover_proto::msg::{DesiredContainer, WireProbe, WireProbeHandler};

use super::*;

fn probe(delay: u32, period: u32, successes: u32, failures: u32) -> WireProbe {
    WireProbe {
        handler: WireProbeHandler::Exec {
            command: vec!["true".into()],
        },
        initial_delay_seconds: delay,
        period_seconds: period,
        timeout_seconds: 1,
        success_threshold: successes,
        failure_threshold: failures,
        termination_grace_seconds: None,
    }
}

fn container(
    startup: Option<WireProbe>,
    liveness: Option<WireProbe>,
    readiness: Option<WireProbe>,
) -> DesiredContainer {
    DesiredContainer {
        name: "app".into(),
        command: vec!["app".into()],
        startup_probe: startup,
        liveness_probe: liveness,
        readiness_probe: readiness,
        ..Default::default()
    }
}

/// Runs what is due at `now` and feeds every probe the same outcome.
fn tick(
    prober: &mut ContainerProber,
    c: &DesiredContainer,
    now: Millis,
    success: bool,
) -> Vec<(ProbeKind, Verdict)> {
    prober
        .due(c, now)
        .into_iter()
        .map(|kind| (kind, prober.outcome(c, kind, success)))
        .collect()
}

#[test]
fn without_probes_a_container_is_ready_at_once_and_nothing_is_due() {
    let c = container(None, None, None);
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    assert!(prober.ready() && prober.started());
    assert_eq!(prober.next_at(), None);
    assert!(prober.due(&c, 1_000_000).is_empty());
}

#[test]
fn probes_wait_for_their_initial_delay_then_run_every_period() {
    let c = container(None, Some(probe(5, 10, 1, 3)), None);
    let mut prober = ContainerProber::default();
    prober.start(&c, 1_000);
    assert_eq!(prober.next_at(), Some(6_000));
    assert!(prober.due(&c, 5_999).is_empty());
    assert_eq!(tick(&mut prober, &c, 6_000, true).len(), 1);
    assert_eq!(prober.next_at(), Some(16_000));
    assert!(prober.due(&c, 15_999).is_empty());
    assert_eq!(tick(&mut prober, &c, 16_000, true).len(), 1);
}

#[test]
fn liveness_kills_after_failure_threshold_failures_in_a_row_only() {
    let c = container(None, Some(probe(0, 10, 1, 3)), None);
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    let mut now = 0;
    // Two failures, a success, two failures: never three in a row.
    for success in [false, false, true, false, false] {
        let verdicts = tick(&mut prober, &c, now, success);
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].1.failed, !success);
        assert!(!verdicts[0].1.kill);
        now += 10_000;
    }
    let verdicts = tick(&mut prober, &c, now, false);
    assert!(verdicts[0].1.kill);
    // Killed: nothing is probed until the container runs again.
    assert_eq!(prober.next_at(), None);
    assert!(!prober.ready());
    prober.start(&c, now + 5);
    assert_eq!(prober.next_at(), Some(now + 5));
}

#[test]
fn readiness_needs_its_success_threshold_and_is_lost_at_its_failure_threshold() {
    let c = container(None, None, Some(probe(0, 5, 2, 2)));
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    assert!(
        !prober.ready(),
        "not ready before its readiness probe succeeded"
    );
    assert_eq!(tick(&mut prober, &c, 0, true)[0].1.ready, None);
    assert_eq!(tick(&mut prober, &c, 5_000, true)[0].1.ready, Some(true));
    assert!(prober.ready());
    assert_eq!(tick(&mut prober, &c, 10_000, false)[0].1.ready, None);
    let verdict = &tick(&mut prober, &c, 15_000, false)[0].1;
    assert_eq!(verdict.ready, Some(false));
    assert!(!verdict.kill, "a readiness failure never kills");
    assert!(!prober.ready());
    // It keeps probing and comes back.
    tick(&mut prober, &c, 20_000, true);
    assert_eq!(tick(&mut prober, &c, 25_000, true)[0].1.ready, Some(true));
}

#[test]
fn the_startup_probe_gates_the_others_then_stops() {
    let c = container(
        Some(probe(0, 1, 1, 30)),
        Some(probe(0, 10, 1, 1)),
        Some(probe(0, 10, 1, 1)),
    );
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    assert!(!prober.started());
    // Only the startup probe runs while it fails; a failing liveness probe would have killed.
    for second in 0..5 {
        let verdicts = tick(&mut prober, &c, second * 1_000, false);
        let kinds: Vec<ProbeKind> = verdicts.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, vec![ProbeKind::Startup], "at {second} s");
        assert!(!verdicts[0].1.kill);
    }
    let verdicts = tick(&mut prober, &c, 5_000, true);
    assert!(verdicts[0].1.started);
    assert!(prober.started());
    assert!(!prober.ready(), "readiness is the readiness probe's to say");
    // The others were pushed back by a period while skipped; the startup probe is done.
    let kinds: Vec<ProbeKind> = prober.due(&c, 10_000);
    assert_eq!(kinds, vec![ProbeKind::Liveness, ProbeKind::Readiness]);
}

#[test]
fn a_startup_probe_that_keeps_failing_kills_the_container() {
    let c = container(Some(probe(0, 1, 1, 3)), Some(probe(0, 10, 1, 1)), None);
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    assert!(!tick(&mut prober, &c, 0, false)[0].1.kill);
    assert!(!tick(&mut prober, &c, 1_000, false)[0].1.kill);
    assert!(tick(&mut prober, &c, 2_000, false)[0].1.kill);
}

#[test]
fn without_a_readiness_probe_a_started_container_is_ready() {
    let c = container(Some(probe(0, 1, 1, 3)), None, None);
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    assert!(!prober.ready());
    let verdicts = tick(&mut prober, &c, 0, true);
    assert_eq!(verdicts[0].1.ready, Some(true));
    assert!(prober.ready());
}

#[test]
fn a_probe_still_running_delays_the_next_and_a_stale_outcome_is_ignored() {
    let c = container(None, Some(probe(0, 1, 1, 1)), None);
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    assert_eq!(prober.due(&c, 0), vec![ProbeKind::Liveness]);
    // Still in flight a period later: not handed out twice, and no wake asked for it (a
    // wake due at once would come back at once, forever, and the outcome never arrive).
    assert!(prober.due(&c, 1_000).is_empty());
    assert!(prober.due(&c, 5_000).is_empty());
    assert_eq!(prober.next_at(), None);
    assert!(!prober.outcome(&c, ProbeKind::Liveness, true).failed);
    assert_eq!(prober.due(&c, 5_000), vec![ProbeKind::Liveness]);
    // An outcome of the container's previous run (restarted meanwhile) changes nothing.
    prober.start(&c, 6_000);
    let verdict = prober.outcome(&c, ProbeKind::Liveness, false);
    assert_eq!(verdict, Verdict::default());
}

#[test]
fn an_agent_restart_forgets_what_was_in_flight_and_keeps_readiness() {
    let c = container(None, None, Some(probe(0, 10, 1, 3)));
    let mut prober = ContainerProber::default();
    prober.start(&c, 0);
    tick(&mut prober, &c, 0, true);
    assert_eq!(prober.due(&c, 10_000), vec![ProbeKind::Readiness]);
    prober.forget_in_flight();
    prober.shift(-3_000);
    assert!(prober.ready());
    assert_eq!(prober.next_at(), Some(17_000));
    assert_eq!(prober.due(&c, 17_000), vec![ProbeKind::Readiness]);
}

#[test]
fn every_threshold_and_period_combination_kills_exactly_at_the_threshold() {
    for period in [1, 3, 10] {
        for threshold in 1..=5 {
            let c = container(None, Some(probe(2, period, 1, threshold)), None);
            let mut prober = ContainerProber::default();
            prober.start(&c, 0);
            let mut runs = 0;
            let mut now = 0;
            loop {
                let verdicts = tick(&mut prober, &c, now, false);
                runs += verdicts.len();
                if verdicts.iter().any(|(_, v)| v.kill) {
                    break;
                }
                now = prober.next_at().expect("still probing");
            }
            assert_eq!(runs as u32, threshold);
            // Killed at initialDelay + (threshold - 1) periods.
            assert_eq!(
                now,
                2_000 + Millis::from(threshold - 1) * Millis::from(period) * 1000
            );
        }
    }
}
