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
    let agent = server.join(dir.path(), "noisy", &[]);
    // The node's own credentials, on its own topics: the broker lets the bytes through,
    // the controller checks them.
    let mut raw = RawClient::new(
        &server.broker.url,
        &server_ca(&server),
        &Login {
            client_id: "drover-agent-noisy".into(),
            ..Login::node(&agent)
        },
    );
    raw.connected()
        .expect("the node's credentials are accepted");
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
    // Still serving; the raw client took the agent's client id, so the agent reconnects
    // and the node is Ready again.
    drop(raw);
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
}
