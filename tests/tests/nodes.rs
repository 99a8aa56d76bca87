//! Fleet membership end to end: registration, readiness, crash, clean stop, identity,
//! with the embedded broker and with Mosquitto.

use std::time::Duration;

use drover_e2e::*;

/// Two agents join a server (whose own agent is the third node); one is killed and comes
/// back with the same identity; one stops cleanly.
fn membership_scenario(server: &Server, dir: &std::path::Path) {
    let mut a = Agent::start(dir, &server.broker, "edge-a", &["--label", "zone=north"]);
    let b = Agent::start(dir, &server.broker, "edge-b", &[]);
    for node in ["server-node", "edge-a", "edge-b"] {
        server.wait_ready_status(node, "True", Duration::from_secs(10));
    }
    let table = server.cli_ok(&["get", "nodes"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains(" Ready ")).count(),
        3,
        "{table}"
    );

    let edge_a = server.node("edge-a").unwrap();
    let uid = edge_a["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(edge_a["metadata"]["labels"]["zone"], "north");

    // A crash: NotReady within the grace period (+1 s).
    a.proc.signal("KILL");
    let took = server.wait_ready_status("edge-a", "Unknown", GRACE + Duration::from_secs(1));
    assert!(took <= GRACE + Duration::from_secs(1), "{took:?}");
    let node = server.node("edge-a").unwrap();
    assert!(
        node["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"),
        "{node}"
    );
    assert!(server
        .cli_ok(&["get", "nodes"])
        .lines()
        .any(|l| l.starts_with("edge-a") && l.contains("NotReady")));

    // Back, with the same identity.
    a.restart();
    server.wait_ready_status("edge-a", "True", Duration::from_secs(10));
    let node = server.node("edge-a").unwrap();
    assert_eq!(node["metadata"]["uid"], uid.as_str());
    assert!(node["spec"]["taints"].is_null(), "{node}");

    // A clean stop: NotReady at once.
    b.proc.signal("TERM");
    let took = server.wait_ready_status("edge-b", "False", Duration::from_secs(2));
    assert!(took < Duration::from_secs(1), "clean stop took {took:?}");
    let node = server.node("edge-b").unwrap();
    assert!(
        node["spec"]["taints"][0]["key"] == "node.kubernetes.io/not-ready",
        "{node}"
    );
    assert_eq!(server.ready_status("edge-a").as_deref(), Some("True"));
}

#[test]
fn fleet_membership_with_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ServerOptions::default());
    membership_scenario(&server, dir.path());
}

#[test]
fn fleet_membership_with_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(dir.path());
    let server = Server::start(
        dir.path(),
        ServerOptions {
            external_broker: Some(mosquitto.external.clone()),
            ..Default::default()
        },
    );
    membership_scenario(&server, dir.path());
}

#[test]
fn a_silent_agent_goes_unknown_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let agent = server.join(dir.path(), "frozen", &[]);
    // Frozen, its TCP connection stays open: no last will, only the grace period tells.
    agent.proc.signal("STOP");
    let took = server.wait_ready_status("frozen", "Unknown", GRACE + Duration::from_secs(2));
    assert!(
        took >= GRACE - Duration::from_secs(1),
        "went Unknown too early: {took:?}"
    );
    agent.proc.signal("CONT");
    server.wait_ready_status("frozen", "True", Duration::from_secs(5));
}

#[test]
fn garbage_from_an_enrolled_node_is_counted_and_the_controller_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "noisy", &[]);
    // The node's own credentials, on its own topics: the broker lets the bytes through,
    // the controller checks them. The broker refuses the node's client id while its agent
    // holds it, so the agent goes first.
    let login = Login {
        client_id: "drover-agent-noisy".into(),
        ..Login::node(&agent)
    };
    agent.proc.kill();
    let mut raw = wait_for(
        "the node's credentials accepted",
        Duration::from_secs(5),
        || {
            let mut raw = RawClient::new(&server.broker.url, &server_ca(&server), &login);
            raw.connected().is_ok().then_some(raw)
        },
    );
    raw.publish(
        "drover/v1/nodes/noisy/status",
        b"\xff\x00garbage".to_vec(),
        false,
    )
    .unwrap();
    // A wrong protocol version with a large body, unsigned.
    raw.publish("drover/v1/nodes/noisy/heartbeat", vec![7; 70_000], false)
        .unwrap();
    raw.publish(
        "drover/v1/nodes/noisy/presence",
        vec![2, 0xff, 0xff, 0xff, 0xff, 0x0f],
        false,
    )
    .unwrap();
    wait_for("three drops for bad seals", Duration::from_secs(5), || {
        (server.counter("drover_mqtt_messages_dropped_total{reason=\"signature\"}") >= 3)
            .then_some(())
    });
    assert!(server.output_contains("dropped an MQTT message"));
    // Still serving: once the raw client is gone, the agent connects again and the node is
    // Ready again.
    drop(raw);
    agent.restart();
    server.wait_ready_status("noisy", "True", Duration::from_secs(10));
}

#[test]
fn a_controller_restart_keeps_nodes_and_they_stay_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), ServerOptions::default());
    let _agent = Agent::start(dir.path(), &server.broker, "edge-c", &[]);
    server.wait_ready_status("edge-c", "True", Duration::from_secs(10));
    let uid = server.node("edge-c").unwrap()["metadata"]["uid"].clone();
    server.restart();
    // The agent reconnects to the restarted embedded broker and re-announces itself.
    server.wait_ready_status("edge-c", "True", Duration::from_secs(10));
    assert_eq!(server.node("edge-c").unwrap()["metadata"]["uid"], uid);
    // Ready stays true past a grace period: heartbeats flow again.
    holds_for("edge-c Ready", GRACE + Duration::from_secs(1), || {
        server.ready_status("edge-c").as_deref() == Some("True")
    });
}

#[test]
fn pods_on_a_node_that_is_not_ready_are_not_ready_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "edge", &[]);
    server.apply(&process_pod("watched", "edge", "Always", "sleep 600", 1));
    let ready = |p: &serde_json::Value| {
        p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .map(|c| c["status"].as_str().unwrap_or("").to_string())
    };
    server.wait_pod("watched", "Ready", Duration::from_secs(10), |p| {
        ready(p).as_deref() == Some("True") && container(p)["ready"] == true
    });
    agent.proc.signal("KILL");
    server.wait_ready_status("edge", "Unknown", GRACE + Duration::from_secs(1));
    server.wait_pod("watched", "not Ready", Duration::from_secs(5), |p| {
        ready(p).as_deref() == Some("False") && container(p)["ready"] == false
    });
    let table = server.cli_ok(&["get", "pods"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("watched") && l.contains("0/1")),
        "{table}"
    );
    agent.restart();
    server.wait_ready_status("edge", "True", Duration::from_secs(10));
    server.wait_pod("watched", "Ready again", Duration::from_secs(15), |p| {
        ready(p).as_deref() == Some("True") && container(p)["ready"] == true
    });
    // A clean stop (NotReady at once, not Unknown) too; the pod keeps running meanwhile.
    agent.proc.signal("TERM");
    server.wait_ready_status("edge", "False", Duration::from_secs(5));
    server.wait_pod(
        "watched",
        "not Ready after a clean stop",
        Duration::from_secs(5),
        |p| ready(p).as_deref() == Some("False") && container(p)["ready"] == false,
    );
    agent.restart();
    server.wait_ready_status("edge", "True", Duration::from_secs(10));
    server.wait_pod("watched", "Ready once more", Duration::from_secs(15), |p| {
        ready(p).as_deref() == Some("True") && container(p)["ready"] == true
    });
    let pod = server.pod("watched").unwrap();
    assert_eq!(container(&pod)["restartCount"], 0, "it never stopped");
}

/// How many times `agent` has connected to the broker.
fn broker_connections(agent: &Agent) -> usize {
    agent
        .proc
        .output()
        .matches("INFO drover_agent::link: connected")
        .count()
}

#[test]
fn a_second_agent_for_a_connected_node_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut first = server.join(dir.path(), "twin", &[]);
    let (uid, main, processes) = running_solo(&server, "twin");
    let connections = broker_connections(&first);

    // On the same data directory: it exits at once, naming the first.
    let mut same_dir = first.twin(first.data_dir.clone(), "same-dir");
    let code = same_dir.proc.wait_exit(Duration::from_secs(5));
    assert_ne!(code, Some(0));
    let said = same_dir.proc.output();
    assert!(
        said.contains(&format!(
            "another agent (pid {}) is running with the data directory",
            first.proc.pid()
        )),
        "{said}"
    );

    // With a copy of it (the node's credentials, as on a cloned SD card): the broker
    // refuses it while the first is connected. (On this machine the copy adopts the pod
    // processes its records name, the first agent's, rather than starting them again.)
    let copy = copy_of_data_dir(&first, dir.path(), "agent-twin-copy");
    let mut second = first.twin(copy, "copy");
    wait_for(
        "the second agent to be refused",
        Duration::from_secs(10),
        || {
            second
                .proc
                .output()
                .contains("the broker refused node twin: another connection holds twin's client id")
                .then_some(())
        },
    );
    holds_for(
        "the first agent keeping its connection and its pod",
        Duration::from_secs(2),
        || {
            broker_connections(&first) == connections
                && pod_main_process(&uid) == Some(main)
                && sorted_pod_processes(&uid) == processes
                && server.ready_status("twin").as_deref() == Some("True")
        },
    );
    assert!(second.proc.is_running(), "it retries");
    assert_eq!(broker_connections(&second), 0);

    // Once the first is gone, the second gets in.
    first.proc.kill();
    wait_for(
        "the second agent to connect",
        Duration::from_secs(10),
        || (broker_connections(&second) == 1).then_some(()),
    );
    server.wait_ready_status("twin", "True", Duration::from_secs(10));
    second.proc.kill();
    kill_pod_processes(&uid);
}

/// SIGKILLs what is left of pod `uid` (its processes and keepers) once its agents are gone.
fn kill_pod_processes(uid: &str) {
    for pid in pod_processes(uid).into_iter().chain(pod_keepers(uid)) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// A copy of `agent`'s data directory (the node's credentials, as on a cloned SD card).
fn copy_of_data_dir(agent: &Agent, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let copy = dir.join(name);
    let copied = std::process::Command::new("cp")
        .args(["-a"])
        .arg(&agent.data_dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    copy
}

/// A process pod on `node`, running; its UID, main process and processes.
fn running_solo(server: &Server, node: &str) -> (String, u32, Vec<u32>) {
    server.apply(&process_pod("solo", node, "Always", "exec sleep 3600", 1));
    let pod = server.wait_pod("solo", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let main = wait_for("the pod's main process", Duration::from_secs(5), || {
        pod_main_process(&uid)
    });
    (uid.clone(), main, sorted_pod_processes(&uid))
}

fn sorted_pod_processes(uid: &str) -> Vec<u32> {
    let mut processes = pod_processes(uid);
    processes.sort();
    processes
}

fn name_conflicts(server: &Server, node: &str) -> Vec<serde_json::Value> {
    server
        .items("events")
        .into_iter()
        .filter(|e| e["reason"] == "NodeNameConflict" && e["involvedObject"]["name"] == node)
        .collect()
}

#[test]
fn two_agents_for_one_node_through_mosquitto_raise_a_node_name_conflict_warning() {
    // Mosquitto lets the newer connection take the older one over, so it cannot refuse the
    // second agent; the controller sees the two take turns and says so.
    let dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(dir.path());
    let server = Server::start(
        dir.path(),
        ServerOptions {
            external_broker: Some(mosquitto.external.clone()),
            disable_agent: true,
            ..Default::default()
        },
    );
    let mut first = server.join(dir.path(), "twin-m", &[]);
    let copy = copy_of_data_dir(&first, dir.path(), "agent-twin-m-copy");
    let mut second = first.twin(copy, "copy");
    let event = wait_for(
        "the NodeNameConflict event",
        Duration::from_secs(20),
        || name_conflicts(&server, "twin-m").into_iter().next(),
    );
    assert_eq!(event["type"], "Warning");
    let message = event["message"].as_str().unwrap_or("");
    assert!(
        message.contains("two agents are connected as node twin-m"),
        "{message}"
    );
    second.proc.kill();
    first.proc.kill();
}

#[test]
fn a_copy_the_embedded_broker_keeps_refusing_stops_its_pods_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut first = server.join(dir.path(), "twin-e", &[]);
    let (uid, main, processes) = running_solo(&server, "twin-e");
    let copy = copy_of_data_dir(&first, dir.path(), "agent-twin-e-copy");
    // On another device (its own PID namespace), refused by the broker, the copy runs the
    // pod its records name, for at most the timeout.
    let timeout = ["--name-held-timeout", "3s"];
    let mut second = first.twin_elsewhere(copy.clone(), "copy", &timeout);
    wait_for("the copy's pod processes", Duration::from_secs(10), || {
        (sorted_pod_processes(&uid).len() > processes.len()).then_some(())
    });
    let code = second.proc.wait_exit(Duration::from_secs(20));
    let said = second.proc.output();
    assert_eq!(code, Some(78), "{said}");
    assert!(
        said.contains("the broker refused node twin-e's client id for 3s: another agent holds it"),
        "{said}"
    );
    let mark = copy.join("name-held");
    assert!(
        said.contains(&format!(
            "will not start again while {} exists",
            mark.display()
        )),
        "{said}"
    );
    // Its copies are gone; the first agent's pod never stopped.
    wait_for(
        "only the first agent's pod processes",
        Duration::from_secs(10),
        || (sorted_pod_processes(&uid) == processes).then_some(()),
    );
    assert_eq!(pod_main_process(&uid), Some(main));
    assert_eq!(server.ready_status("twin-e").as_deref(), Some("True"));
    let pod = server.pod("solo").unwrap();
    assert_eq!(container(&pod)["restartCount"], 0);

    // Started again (a reboot), the copy runs nothing: it left a mark.
    let mut again = first.twin_elsewhere(copy.clone(), "copy-again", &timeout);
    let code = again.proc.wait_exit(Duration::from_secs(10));
    let said = again.proc.output();
    assert_eq!(code, Some(78), "{said}");
    assert!(!said.contains("starting pod"), "{said}");
    assert!(!said.contains("drover_agent::link: connected"), "{said}");
    assert_eq!(sorted_pod_processes(&uid), processes);

    // Once the first is gone and the mark removed, the copy has the node and runs its pod.
    first.proc.kill();
    kill_pod_processes(&uid);
    std::fs::remove_file(&mark).unwrap();
    let mut successor = first.twin_elsewhere(copy, "successor", &timeout);
    server.wait_ready_status("twin-e", "True", Duration::from_secs(60));
    let replacement = wait_for("the pod running again", Duration::from_secs(20), || {
        pod_main_process(&uid)
    });
    assert_ne!(replacement, main);
    successor.proc.kill();
    kill_pod_processes(&uid);
}
