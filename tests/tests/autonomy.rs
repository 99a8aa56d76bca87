//! Offline autonomy: pods keep running without the controller or the broker, and what
//! happens meanwhile is reported once they are back. With `--stop-pods-on-exit` (the old
//! behaviour), an agent restart restarts process pods and leaves no unmanaged process
//! behind; by default pods outlive it (tests/tests/agent_restart.rs).

use std::time::Duration;

use drover_e2e::*;

fn setup(dir: &std::path::Path) -> (Server, Agent) {
    let server = Server::start_alone(dir);
    let agent = server.join(dir, "edge", &[]);
    (server, agent)
}

fn setup_stopping_pods_on_exit(dir: &std::path::Path) -> (Server, Agent) {
    let server = Server::start_alone(dir);
    let agent = server.join(dir, "edge", &["--stop-pods-on-exit"]);
    (server, agent)
}

fn uid(pod: &serde_json::Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap().to_string()
}

#[test]
fn an_agent_started_while_the_broker_is_down_runs_its_cached_pods() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, mut agent) = setup(dir.path());
    server.apply(&process_pod(
        "keeper",
        "edge",
        "Always",
        "while true; do echo alive; sleep 0.2; done",
        1,
    ));
    let pod = server.wait_pod("keeper", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let uid = uid(&pod);
    let before = wait_for("the pod's main process", Duration::from_secs(5), || {
        pod_main_process(&uid)
    });

    server.kill();
    agent.proc.kill();
    agent.restart();
    // No broker: the agent adopts the pod from its records, and it ran on all along.
    wait_for(
        "the restarted agent to adopt the pod",
        Duration::from_secs(10),
        || agent_log_contains(&agent, "adopted the process pods").then_some(()),
    );
    assert_eq!(
        pod_main_process(&uid),
        Some(before),
        "the same process runs"
    );

    server.start_again();
    let pod = server.wait_pod(
        "keeper",
        "reported after reconnecting",
        Duration::from_secs(15),
        |p| phase(p) == "Running" && container(p)["ready"] == true,
    );
    assert_eq!(container(&pod)["restartCount"], 0);
    assert_eq!(pod_main_process(&uid), Some(before));
}

fn agent_log_contains(agent: &Agent, text: &str) -> bool {
    std::fs::read_to_string(&agent.proc.log).is_ok_and(|log| log.contains(text))
}

#[test]
fn a_cached_pod_restarts_when_the_agent_stops_pods_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, mut agent) = setup_stopping_pods_on_exit(dir.path());
    server.apply(&process_pod(
        "keeper",
        "edge",
        "Always",
        "while true; do echo alive; sleep 0.2; done",
        1,
    ));
    let pod = server.wait_pod("keeper", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let uid = uid(&pod);

    server.kill();
    agent.proc.kill();
    agent.restart();
    // No broker: the agent runs the pod from its stored desired state.
    let running = wait_for(
        "the pod to run again from the cache",
        Duration::from_secs(10),
        || {
            let pids = pod_processes(&uid);
            (!pids.is_empty()).then_some(pids)
        },
    );
    assert!(!running.is_empty());

    server.start_again();
    let pod = server.wait_pod(
        "keeper",
        "reported after reconnecting",
        Duration::from_secs(15),
        |p| phase(p) == "Running" && container(p)["restartCount"].as_u64() >= Some(1),
    );
    assert_eq!(
        container(&pod)["lastState"]["terminated"]["reason"],
        "AgentRestart"
    );
    assert_eq!(container(&pod)["ready"], true);
}

#[test]
fn results_produced_while_offline_are_reported_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _agent) = setup(dir.path());
    server.apply(&process_pod(
        "finisher",
        "edge",
        "Never",
        "sleep 2; echo finished",
        30,
    ));
    server.apply(&process_pod(
        "failer",
        "edge",
        "Never",
        "sleep 2; exit 4",
        30,
    ));
    let a = server.wait_pod("finisher", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let b = server.wait_pod("failer", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    server.kill();
    wait_for(
        "both pods to finish offline",
        Duration::from_secs(10),
        || (pod_processes(&uid(&a)).is_empty() && pod_processes(&uid(&b)).is_empty()).then_some(()),
    );
    server.start_again();
    let a = server.wait_pod("finisher", "Succeeded", Duration::from_secs(15), |p| {
        phase(p) == "Succeeded"
    });
    let b = server.wait_pod("failer", "Failed", Duration::from_secs(15), |p| {
        phase(p) == "Failed"
    });
    assert_eq!(container(&a)["state"]["terminated"]["exitCode"], 0);
    assert_eq!(container(&b)["state"]["terminated"]["exitCode"], 4);
    for pod in [&a, &b] {
        assert_eq!(container(pod)["restartCount"], 0);
    }
    // The agent resends until acknowledged; the controller applied each result once.
    let described = server.cli_ok(&["describe", "pod", "finisher"]);
    let started = described
        .lines()
        .filter(|l| l.contains("Started container"))
        .count();
    assert_eq!(started, 1, "{described}");
    assert!(!described.contains("(x2"), "{described}");
    // Results stay put across another controller restart.
    server.restart();
    let again = server.wait_pod(
        "finisher",
        "still Succeeded",
        Duration::from_secs(10),
        |p| phase(p) == "Succeeded",
    );
    assert_eq!(again["metadata"]["uid"], a["metadata"]["uid"]);
}

#[test]
fn kill_9_of_an_agent_stopping_pods_on_exit_restarts_them_and_leaves_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut agent) = setup_stopping_pods_on_exit(dir.path());
    server.apply(&process_pod(
        "family",
        "edge",
        "Always",
        "sleep 300 & sleep 300 & wait",
        1,
    ));
    server.apply(&process_pod("single-run", "edge", "Never", "sleep 300", 1));
    let family = server.wait_pod("family", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    server.wait_pod("single-run", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let family_uid = uid(&family);
    let before = wait_for("the pod's processes", Duration::from_secs(5), || {
        let pids = pod_processes(&family_uid);
        (pids.len() >= 3).then_some(pids)
    });

    agent.proc.signal("KILL");
    agent.proc.wait_exit(Duration::from_secs(5));
    agent.restart();

    let family = server.wait_pod("family", "restarted", Duration::from_secs(15), |p| {
        phase(p) == "Running" && container(p)["restartCount"] == 1 && container(p)["ready"] == true
    });
    assert_eq!(
        container(&family)["lastState"]["terminated"]["reason"],
        "AgentRestart"
    );
    let after = wait_for(
        "the restarted pod's processes",
        Duration::from_secs(5),
        || {
            let pids = pod_processes(&family_uid);
            (pids.len() >= 3).then_some(pids)
        },
    );
    assert!(
        before.iter().all(|pid| !after.contains(pid)),
        "old processes survived: {before:?} {after:?}"
    );
    assert_eq!(
        after.len(),
        3,
        "exactly one generation of the pod runs: {after:?}"
    );

    let single = server.wait_pod("single-run", "Failed", Duration::from_secs(10), |p| {
        phase(p) == "Failed"
    });
    assert_eq!(
        container(&single)["state"]["terminated"]["reason"],
        "AgentRestart"
    );
    assert!(pod_processes(&uid(&single)).is_empty());
}

#[test]
fn a_clean_stop_of_an_agent_stopping_pods_on_exit_stops_them_and_a_start_brings_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut agent) = setup_stopping_pods_on_exit(dir.path());
    server.apply(&process_pod(
        "svc",
        "edge",
        "Always",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        5,
    ));
    let pod = server.wait_pod("svc", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let uid = uid(&pod);
    agent.proc.signal("TERM");
    assert_eq!(agent.proc.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(pod_processes(&uid).is_empty());
    agent.restart();
    server.wait_pod("svc", "running again", Duration::from_secs(10), |p| {
        container(p)["ready"] == true && container(p)["restartCount"] == 1
    });
}
