//! Wall-clock steps (libfaketime, as NTP correcting a clock would step it: the monotonic
//! clock goes on). On the controller, an hour ahead or back flaps no node and fails no Job
//! before its deadline, and a node that goes silent is still noticed within its grace
//! period; on an agent, it neither stretches a back-off nor cuts a grace period. Needs
//! Debian's `faketime`.

use std::path::Path;
use std::time::Duration;

use drover_e2e::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// libfaketime's settings for a clock offset read from `file` at every call.
fn faketime_env(file: &Path) -> Vec<(String, String)> {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "libfaketime is needed: apt-get install faketime"
    );
    vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

fn step_clock(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n")).unwrap();
}

fn job_failed(server: &Server, name: &str) -> bool {
    let out = server.cli(&["get", "job", name, "-o", "json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|job| {
        job["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Failed" && c["status"] == "True")
        })
    })
}

fn wait_job_pod_running(server: &Server, job: &str) {
    wait_for("the Job's pod running", Duration::from_secs(15), || {
        server
            .items("pods")
            .iter()
            .any(|p| p["metadata"]["labels"]["job-name"] == job && phase(p) == "Running")
            .then_some(())
    });
}

#[test]
fn controller_clock_steps_flap_no_node_fail_no_deadline_and_hide_no_silent_node() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("faketime");
    step_clock(&clock, "+0");
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            env: faketime_env(&clock),
            ..Default::default()
        },
    );
    let agent = server.join(dir.path(), "edge", &[]);
    server.apply(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: patient
spec:
  activeDeadlineSeconds: 600
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: [sleep, '120']
",
    );
    wait_job_pod_running(&server, "patient");
    let ready_and_not_failed = || {
        server.ready_status("edge").as_deref() == Some("True") && !job_failed(&server, "patient")
    };

    // A change to the Job makes the controller look at it again at once.
    let touch = |value: &str| {
        let out = server.kubectl(&[
            "annotate",
            "job",
            "patient",
            &format!("step={value}"),
            "--overwrite",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    step_clock(&clock, "+1h");
    touch("ahead");
    holds_for(
        "Ready, and the Job within its deadline, after a step an hour ahead",
        GRACE * 2,
        ready_and_not_failed,
    );
    step_clock(&clock, "-1h");
    touch("back");
    holds_for(
        "Ready, and the Job within its deadline, after a step an hour back",
        GRACE * 2,
        ready_and_not_failed,
    );

    // Frozen with its connection open, the agent is noticed by the grace period alone.
    agent.proc.signal("STOP");
    let took = server.wait_ready_status("edge", "Unknown", GRACE + Duration::from_secs(3));
    assert!(
        took >= GRACE - Duration::from_secs(1),
        "went Unknown too early: {took:?}"
    );
    agent.proc.signal("CONT");
    server.wait_ready_status("edge", "True", Duration::from_secs(5));
}

#[test]
fn agent_clock_steps_neither_stretch_a_back_off_nor_cut_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("faketime");
    step_clock(&clock, "+0");
    let server = Server::start_alone(dir.path());
    let _agent = Agent::start_with_env(
        dir.path(),
        &server.broker,
        "edge",
        &["--crash-backoff-initial", "2s"],
        faketime_env(&clock),
    );
    server.wait_ready_status("edge", "True", Duration::from_secs(10));
    server.apply(&process_pod("crasher", "edge", "Always", "exit 1", 1));
    server.apply(&process_pod(
        "stubborn",
        "edge",
        "Always",
        "trap '' TERM; while true; do sleep 0.1; done",
        4,
    ));
    server.wait_pod("crasher", "backing off", Duration::from_secs(15), |p| {
        container(p)["restartCount"].as_u64() >= Some(1)
    });
    server.wait_pod("stubborn", "Running", Duration::from_secs(15), |p| {
        phase(p) == "Running"
    });
    // An hour back: a 2-4 s back-off must not become an hour.
    step_clock(&clock, "-1h");
    let restarts = |server: &Server| {
        server
            .pod("crasher")
            .and_then(|p| container(&p)["restartCount"].as_u64())
            .unwrap_or(0)
    };
    let now = restarts(&server);
    wait_for(
        "the crasher to restart again",
        Duration::from_secs(15),
        || (restarts(&server) >= now + 2).then_some(()),
    );

    // An hour ahead: the 4 s grace period of a pod that ignores SIGTERM still holds.
    step_clock(&clock, "+1h");
    let uid = server.pod("stubborn").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = std::time::Instant::now();
    server.cli_ok(&["delete", "pod", "stubborn"]);
    wait_for(
        "the pod's processes to end",
        Duration::from_secs(15),
        || pod_processes(&uid).is_empty().then_some(()),
    );
    let took = deleted.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "killed after {took:?}, before its grace period"
    );
}

#[test]
fn controller_clock_steps_expire_no_ttl_early_and_evict_nothing_early() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("faketime");
    step_clock(&clock, "+0");
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            env: faketime_env(&clock),
            ..Default::default()
        },
    );
    let edge = server.join(dir.path(), "edge", &["--label", "site=edge"]);
    let _spare = server.join(dir.path(), "spare", &[]);
    server.wait_ready_status("spare", "True", Duration::from_secs(10));
    server.apply(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: kept
spec:
  ttlSecondsAfterFinished: 600
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: ['true']
---
apiVersion: batch/v1
kind: Job
metadata:
  name: tolerant
spec:
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {site: edge}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 8}
      containers:
      - name: main
        command: [sleep, '120']
",
    );
    wait_for("the Job kept to complete", Duration::from_secs(15), || {
        (server.job_status("kept")["succeeded"] == 1).then_some(())
    });
    wait_job_pod_running(&server, "tolerant");
    let evicted = || {
        server.items("pods").iter().any(|p| {
            p["metadata"]["labels"]["job-name"] == "tolerant"
                && p["metadata"]["deletionTimestamp"].is_string()
        })
    };

    // The node goes silent, then the controller's clock jumps an hour ahead: the Job's
    // TTL and the pod's toleration both run on, neither ends.
    edge.proc.signal("STOP");
    server.wait_ready_status("edge", "Unknown", GRACE + Duration::from_secs(3));
    let lost_at = std::time::Instant::now();
    step_clock(&clock, "+1h");
    holds_for(
        "the finished Job kept and the tolerant pod in place, after a step an hour ahead",
        Duration::from_secs(5),
        || !server.job_status("kept").is_null() && !evicted(),
    );
    // The toleration does end, on time.
    wait_for("the eviction", Duration::from_secs(10), || {
        evicted().then_some(())
    });
    let took = lost_at.elapsed();
    // timeAdded is in whole seconds and `lost_at` follows a CLI poll: up to 2 s of slack;
    // a step that moved the toleration's clock would have evicted at once.
    assert!(
        took >= Duration::from_secs(6),
        "evicted {took:?} after the node was lost, before its 8 s toleration"
    );
    assert!(
        !server.job_status("kept").is_null(),
        "the TTL is 10 minutes"
    );
    edge.proc.signal("CONT");
}
