//! The trust model end to end: enrollment with join tokens, broker authentication and
//! ACLs (embedded broker and Mosquitto), desired states that only the controller can
//! write, revocation, and abuse of the embedded broker while real agents are served.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use drover_agent::credentials::Credentials;
use drover_e2e::*;
use drover_proto::keys::SigningKey;
use drover_proto::msg::{
    DesiredContainer, DesiredPod, DesiredState, StatusReport, WireContainerState,
    WireContainerStatus, WirePhase, WirePodStatus,
};
use drover_proto::topic::NodeTopic;
use drover_proto::Message;
use serde_json::Value;

/// Most a node may take to enroll and become Ready.
const JOIN: Duration = Duration::from_secs(15);
/// How long a pod applied to a healthy agent may take to run.
const RUNS: Duration = Duration::from_secs(10);
/// How long "never happens" is watched.
const WINDOW: Duration = Duration::from_secs(3);

fn credentials(agent: &Agent) -> Credentials {
    Credentials::load(&agent.data_dir)
        .expect("readable credentials")
        .expect("the agent has enrolled")
}

/// Applies a long-running process pod pinned to `node` and waits until it runs; returns
/// its UID and process ids.
fn run_pod(server: &Server, name: &str, node: &str) -> (String, Vec<u32>) {
    server.apply(&process_pod(
        name,
        node,
        "Always",
        &format!("exec sleep 600 # {name}"),
        1,
    ));
    let pod = server.wait_pod(name, "Running", RUNS, |p| phase(p) == "Running");
    let uid = pod["metadata"]["uid"].as_str().expect("uid").to_string();
    let pids = wait_for(&format!("processes of pod {name}"), RUNS, || {
        let pids = pod_processes(&uid);
        (!pids.is_empty()).then_some(pids)
    });
    (uid, pids)
}

/// How long a pod applied to a served agent may take from apply to Running (the issue's
/// budget for a broker under abuse).
const SERVED: Duration = Duration::from_secs(1);

/// A new pod created on `node` is Running within [`SERVED`] of its creation, its
/// processes run, and the server is still alive: the broker still serves the real agent.
/// Created and watched over one HTTPS connection polled every 10 ms, so the figure is the
/// server's and the agent's, not the time a debug CLI takes to start on a busy machine.
fn still_serving(server: &mut Server, pod: &str, node: &str) {
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "command": ["sh", "-c", format!("exec sleep 600 # {pod}")]}],
        },
    });
    let started = Instant::now();
    server
        .api_post("/api/v1/namespaces/default/pods")
        .send_json(&body)
        .unwrap_or_else(|e| panic!("create pod {pod}: {e}"));
    let created = started.elapsed();
    let path = format!("/api/v1/namespaces/default/pods/{pod}");
    let running = loop {
        let current: Option<Value> = server
            .api_get(&path)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json().ok());
        if let Some(current) = current.filter(|p| phase(p) == "Running") {
            break current;
        }
        assert!(
            started.elapsed() < RUNS,
            "pod {pod} not Running after {RUNS:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    eprintln!("{pod}: created after {created:?}, Running after {took:?}");
    assert!(
        took < SERVED,
        "pod {pod} took {took:?} from its creation to Running (the create request itself {created:?})"
    );
    let uid = running["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    // Running is reported once the pod's keeper is spawned; its command follows.
    wait_for(&format!("processes of pod {pod}"), RUNS, || {
        (!pod_processes(&uid).is_empty()).then_some(())
    });
    assert!(server.proc.is_running(), "the server died");
}

/// A raw client connected as `login`. The embedded broker refuses a node's client id while
/// another connection holds it, so right after its agent was killed, or the previous raw
/// client dropped, it may take the broker a moment to see that connection end.
fn connected(server: &Server, login: &Login) -> RawClient {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut client = RawClient::new(&server.broker.url, &server_ca(server), login);
        match client.connected() {
            Ok(()) => return client,
            Err(e) if e.contains("BadClientId") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{} was refused: {e}", login.client_id),
        }
    }
}

fn refused(server: &Server, login: &Login) -> String {
    let mut client = RawClient::new(&server.broker.url, &server_ca(server), login);
    match client.connected() {
        Ok(()) => panic!("{login:?} was let in"),
        Err(e) => e,
    }
}

fn with_mosquitto(dir: &Path) -> (Mosquitto, Server) {
    let mosquitto = Mosquitto::start(dir);
    let server = Server::start(
        dir,
        ServerOptions {
            external_broker: Some(mosquitto.external.clone()),
            disable_agent: true,
            ..Default::default()
        },
    );
    (mosquitto, server)
}

fn occurrences(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// How many times `agent` has connected to the broker.
fn broker_connections(agent: &Agent) -> usize {
    occurrences(&agent.proc.output(), "INFO drover_agent::link: connected")
}

/// `agent` keeps the broker connection it had when it had connected `before` times.
fn keeps_its_connection(agent: &Agent, before: usize) {
    assert!(before >= 1, "{} logged no connection", agent.name);
    holds_for(
        &format!("{} keeping its broker connection", agent.name),
        Duration::from_secs(2),
        || broker_connections(agent) == before,
    );
}

// --- Enrollment ----------------------------------------------------------------------

#[test]
fn a_node_enrolled_with_a_labelled_token_has_the_label_and_runs_pods() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let broker = Broker {
        url: server.broker.url.clone(),
        token: server.create_token(&["--label", "zone=north"]),
    };
    let _agent = Agent::start(dir.path(), &broker, "north-1", &[]);
    server.wait_ready_status("north-1", "True", JOIN);

    let node = server.node("north-1").unwrap();
    assert_eq!(node["metadata"]["labels"]["zone"], "north", "{node}");
    run_pod(&server, "labelled", "north-1");
}

/// The agent exits non-zero, its output contains `says`, and the node never appears.
fn assert_refused(server: &Server, agent: &mut Agent, says: &[&str]) {
    let code = agent.proc.wait_exit(JOIN);
    let output = agent.proc.output();
    assert!(
        code.is_some_and(|c| c != 0),
        "exit code {code:?}; output:\n{output}"
    );
    for text in says {
        assert!(output.contains(text), "no {text:?} in:\n{output}");
    }
    assert!(server.node(&agent.name).is_none());
}

#[test]
fn an_agent_without_a_token_exits_saying_it_is_not_enrolled_and_how_to_get_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let log = dir.path().join("no-token.log");
    let mut child = std::process::Command::new(binary("drover-agent"))
        .args(["--broker", &server.broker.url, "--node-name", "lost"])
        .arg("--data-dir")
        .arg(dir.path().join("agent-lost"))
        .env("DROVER_AGENT_CONFIG", "/dev/null")
        .env_remove("DROVER_TOKEN")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("no-token.err")).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for("the agent to exit", JOIN, || child.try_wait().unwrap());
    let output = std::fs::read_to_string(&log).unwrap()
        + &std::fs::read_to_string(dir.path().join("no-token.err")).unwrap();
    assert!(!status.success(), "{status:?}: {output}");
    for text in ["not enrolled", "--token", "drover token create"] {
        assert!(output.contains(text), "no {text:?} in:\n{output}");
    }
    assert!(server.node("lost").is_none());
}

fn an_expired_token_is_refused_by(server: &Server, dir: &Path) {
    let created = Instant::now();
    let token = server.create_token(&["--ttl", "1s"]);
    // Expiry is a point in time, not an event: it has passed once a second has.
    wait_for("the token to expire", Duration::from_secs(3), || {
        (created.elapsed() > Duration::from_millis(1200)).then_some(())
    });
    let broker = Broker {
        url: server.broker.url.clone(),
        token,
    };
    let mut agent = Agent::start(dir, &broker, "late", &[]);
    assert_refused(server, &mut agent, &["enrollment refused", "expired"]);
}

#[test]
fn an_expired_token_is_refused_by_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    an_expired_token_is_refused_by(&server, dir.path());
}

#[test]
fn an_expired_token_is_refused_by_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let (_mosquitto, server) = with_mosquitto(dir.path());
    an_expired_token_is_refused_by(&server, dir.path());
}

fn a_used_up_token_is_refused_by(server: &Server, dir: &Path) {
    let broker = Broker {
        url: server.broker.url.clone(),
        token: server.create_token(&["--uses", "1"]),
    };
    let _first = Agent::start(dir, &broker, "first", &[]);
    server.wait_ready_status("first", "True", JOIN);
    let mut second = Agent::start(dir, &broker, "second", &[]);
    assert_refused(server, &mut second, &["enrollment refused", "used up"]);
}

#[test]
fn a_used_up_token_is_refused_by_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    a_used_up_token_is_refused_by(&server, dir.path());
}

#[test]
fn a_used_up_token_is_refused_by_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let (_mosquitto, server) = with_mosquitto(dir.path());
    a_used_up_token_is_refused_by(&server, dir.path());
}

fn a_deleted_token_is_refused_by(server: &Server, dir: &Path) {
    let token = server.create_token(&[]);
    let id = token.split('.').nth(2).expect("drv1.<ca>.<id>.<secret>");
    let parsed: drover_proto::token::JoinToken = token.parse().unwrap();
    let enrolling = Login {
        client_id: parsed.mqtt_username(),
        credentials: Some((parsed.mqtt_username(), parsed.mqtt_password())),
    };
    // The broker takes the token before it is deleted…
    wait_for("the broker to take the token", RUNS, || {
        RawClient::new(&server.broker.url, &server_ca(server), &enrolling)
            .connected()
            .ok()
    });
    server.cli_ok(&["token", "delete", id]);
    // …and refuses it once it is.
    wait_for("the broker to refuse the deleted token", RUNS, || {
        RawClient::new(&server.broker.url, &server_ca(server), &enrolling)
            .connected()
            .err()
    });
    let broker = Broker {
        url: server.broker.url.clone(),
        token: token.clone(),
    };
    let mut agent = Agent::start(dir, &broker, "orphan", &[]);
    assert_refused(server, &mut agent, &["refused", "deleted"]);
}

#[test]
fn a_deleted_token_is_refused_by_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    a_deleted_token_is_refused_by(&server, dir.path());
}

#[test]
fn a_deleted_token_is_refused_by_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let (_mosquitto, server) = with_mosquitto(dir.path());
    a_deleted_token_is_refused_by(&server, dir.path());
}

#[test]
fn a_token_with_a_wrong_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let token = server.create_token(&[]);
    let (rest, secret) = token.rsplit_once('.').unwrap();
    let wrong: String = secret
        .chars()
        .map(|c| if c == 'a' { 'b' } else { 'a' })
        .collect();
    let broker = Broker {
        url: server.broker.url.clone(),
        token: format!("{rest}.{wrong}"),
    };
    let mut agent = Agent::start(dir.path(), &broker, "guesser", &[]);
    assert_refused(&server, &mut agent, &["refused", "join token"]);
}

#[test]
fn a_second_device_claiming_an_enrolled_name_is_refused_and_the_first_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let first = server.join(dir.path(), "edge", &[]);
    let uid = server.node("edge").unwrap()["metadata"]["uid"].clone();
    let (pod_uid, pids) = run_pod(&server, "kept", "edge");

    let elsewhere = dir.path().join("impostor");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut impostor = Agent::start(&elsewhere, &server.broker, "edge", &[]);
    let code = impostor.proc.wait_exit(JOIN);
    let output = impostor.proc.output();
    assert!(code.is_some_and(|c| c != 0), "{code:?}: {output}");
    for text in [
        "already enrolled with another key",
        "drover delete node edge",
    ] {
        assert!(output.contains(text), "no {text:?} in:\n{output}");
    }
    assert_eq!(server.node("edge").unwrap()["metadata"]["uid"], uid);
    assert_eq!(server.ready_status("edge").as_deref(), Some("True"));
    assert_eq!(pod_processes(&pod_uid), pids);
    assert!(Login::node(&first).credentials.is_some());
}

#[test]
fn an_agent_restarted_with_stored_credentials_makes_one_broker_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "edge", &[]);
    // Every CONNECT the embedded broker accepted (the controller's own is among them).
    let connects =
        |server: &Server| server.counter("drover_broker_events_total{event=\"connected\"}");
    let open = |server: &Server| server.counter("drover_broker_connections");
    let (before, open_before) = (connects(&server), open(&server));
    assert!(
        before >= 2,
        "the controller and the agent connected: {before}"
    );
    // Gone from the broker before it starts again, so that its one connection is not
    // measured against the old one's.
    agent.proc.kill();
    wait_for("the broker to drop the stopped agent", JOIN, || {
        (open(&server) < open_before).then_some(())
    });
    agent.restart();
    wait_for("the restarted agent to connect", JOIN, || {
        (broker_connections(&agent) == 1).then_some(())
    });
    server.wait_ready_status("edge", "True", JOIN);
    holds_for(
        "the broker to see exactly one new connection",
        Duration::from_secs(2),
        || connects(&server) == before + 1,
    );
    assert!(
        !agent.proc.output().contains("enrolling"),
        "the restart enrolled again"
    );
}

#[test]
fn the_server_keeps_its_data_directory_private() {
    let dir = tempfile::tempdir().unwrap();
    // Made world-readable beforehand, as an installer's mkdir would.
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "edge", &[]);
    assert_eq!(server.data_dir, data);
    let mode = drover_agent::private_fs::mode_of(&data) & 0o777;
    assert_eq!(mode, 0o700, "the server's data directory is {mode:o}");
    // Nothing in it is readable by other users.
    let mut open = Vec::new();
    let mut pending = vec![data.clone()];
    while let Some(path) = pending.pop() {
        let mode = drover_agent::private_fs::mode_of(&path) & 0o777;
        if mode & 0o077 != 0 {
            open.push(format!("{} {mode:o}", path.display()));
        }
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

/// An account of the operator's own on Mosquitto (what a broker whose accounts are managed
/// outside Drover has): allowed node `node`'s topics and the enrollment topics of token
/// `token_id`, nothing else; created through the dynamic-security API with the controller's
/// account.
fn operator_account(
    server: &Server,
    mosquitto: &Mosquitto,
    user: &str,
    password: &str,
    node: &str,
    token_id: &str,
) {
    use drover::mosquitto::acl::{enroll_acls, node_acls};
    let admin = Login {
        client_id: "drover-controller-operator".into(),
        credentials: Some((
            "drover-controller".into(),
            std::fs::read_to_string(&mosquitto.external.password_file)
                .unwrap()
                .trim()
                .to_string(),
        )),
    };
    let mut acls = node_acls(node);
    acls.extend(enroll_acls(token_id));
    let role = format!("{user}-role");
    let commands = serde_json::json!({"commands": [
        {"command": "createRole", "rolename": role, "acls": acls},
        {"command": "createClient", "username": user, "password": password,
         "roles": [{"rolename": role, "priority": 0}]},
    ]});
    let mut client = connected(server, &admin);
    let response = "$CONTROL/dynamic-security/v1/response";
    client.subscribe(response).unwrap();
    client
        .publish(
            "$CONTROL/dynamic-security/v1",
            serde_json::to_vec(&commands).unwrap(),
            false,
        )
        .unwrap();
    let answer = wait_for("Mosquitto to answer the commands", RUNS, || {
        client
            .received_within(Duration::from_millis(500))
            .into_iter()
            .find(|p| p.topic == response)
    });
    let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
    assert!(
        answer["responses"]
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|r| r.get("error").is_none())),
        "{answer}"
    );
}

#[test]
fn an_agent_logs_in_with_the_user_and_password_of_its_broker_url_to_enroll_and_to_run_pods() {
    let dir = tempfile::tempdir().unwrap();
    let (mosquitto, server) = with_mosquitto(dir.path());
    let token = server.create_token(&[]);
    let id = token
        .split('.')
        .nth(2)
        .expect("drv1.<ca>.<id>.<secret>")
        .to_string();
    // A password with an '@' and a percent-encoded ':' in it.
    operator_account(&server, &mosquitto, "site-7", "s3cret@pa:ss", "edge", &id);
    let port = server.broker.url.rsplit(':').next().unwrap();
    let broker = Broker {
        url: format!("mqtts://site-7:s3cret@pa%3Ass@127.0.0.1:{port}"),
        token,
    };
    let mut agent = Agent::start(dir.path(), &broker, "edge", &[]);
    server.wait_ready_status("edge", "True", JOIN);
    run_pod(&server, "by-url-login", "edge");

    // Mosquitto saw the operator's account, for the enrollment and for the node's session,
    // never the login the node got at enrollment.
    let seen = mosquitto.proc.output();
    for client in [
        format!("drover-enroll-{id}"),
        "drover-agent-edge".to_string(),
    ] {
        assert!(
            seen.lines()
                .any(|l| l.contains(&format!(" as {client} ")) && l.contains("u'site-7'")),
            "{client} did not log in as site-7:\n{seen}"
        );
    }
    assert!(!seen.contains("u'edge'"), "{seen}");

    // Restarted, it logs in with the URL's account again and keeps running pods.
    agent.restart();
    wait_for("the restarted agent to connect", JOIN, || {
        (broker_connections(&agent) == 1).then_some(())
    });
    run_pod(&server, "after-restart", "edge");
    assert!(!mosquitto.proc.output().contains("u'edge'"));
}

#[test]
fn an_agent_whose_broker_url_has_a_login_the_broker_refuses_is_told_so_at_enrollment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let port = server.broker.url.rsplit(':').next().unwrap();
    let broker = Broker {
        url: format!("mqtts://someone:guess@127.0.0.1:{port}"),
        token: server.broker.token.clone(),
    };
    let mut agent = Agent::start(dir.path(), &broker, "edge", &[]);
    assert_refused(
        &server,
        &mut agent,
        &[
            "enrollment refused",
            "user name and password in the broker URL",
        ],
    );
}

// --- Broker authentication -----------------------------------------------------------

fn anonymous_and_wrong_passwords_are_refused(server: &Server, agent: &Agent) {
    let connections = broker_connections(agent);
    refused(server, &Login::anonymous());
    let real = Login::node(agent);
    let (user, _) = real.credentials.clone().unwrap();
    refused(
        server,
        &Login {
            credentials: Some((user, "not-the-password".into())),
            ..real.clone()
        },
    );
    refused(
        server,
        &Login {
            client_id: "drover-controller-guess".into(),
            credentials: Some(("drover-controller".into(), "guess".into())),
        },
    );
    // The real node (whose client id the wrong password came with) was not disturbed.
    keeps_its_connection(agent, connections);
    assert_eq!(server.ready_status(&agent.name).as_deref(), Some("True"));
}

#[test]
fn the_embedded_broker_refuses_anonymous_clients_and_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let agent = server.join(dir.path(), "edge", &[]);
    anonymous_and_wrong_passwords_are_refused(&server, &agent);
}

#[test]
fn mosquitto_refuses_anonymous_clients_and_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let (_mosquitto, server) = with_mosquitto(dir.path());
    let agent = server.join(dir.path(), "edge", &[]);
    anonymous_and_wrong_passwords_are_refused(&server, &agent);
}

// --- Node confinement ----------------------------------------------------------------

fn job_pinned_to(name: &str, node: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  template:
    spec:
      nodeName: {node}
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        command: [sh, -c, 'exec sleep 600']
"
    )
}

fn job_complete(server: &Server, name: &str) -> bool {
    let out = server.cli_ok(&["get", "job", name, "-o", "json"]);
    let job: Value = serde_json::from_str(&out).unwrap();
    job["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
    })
}

/// A status saying pod `uid` succeeded.
fn succeeded(uid: &str) -> Message {
    let now = 1_800_000_000_000;
    Message::Status(StatusReport {
        pods: vec![WirePodStatus {
            uid: uid.into(),
            revision: 1_000_000,
            phase: WirePhase::Succeeded,
            reason: "Completed".into(),
            message: String::new(),
            start_time_ms: now,
            containers: vec![WireContainerStatus {
                name: "main".into(),
                state: WireContainerState::Terminated {
                    exit_code: 0,
                    signal: 0,
                    reason: "Completed".into(),
                    message: String::new(),
                    started_at_ms: now,
                    finished_at_ms: now + 1,
                },
                last_state: None,
                restart_count: 0,
                ready: false,
            }],
            removed: false,
            init_containers: Vec::new(),
        }],
        full: false,
        events: Vec::new(),
    })
}

/// Node `a` (whose agent is stopped, so its login can be borrowed) cannot publish a status
/// for `b`, read `b`'s desired state, or connect as `b`.
fn a_node_is_confined_to_its_own_topics(server: &Server, dir: &Path) {
    let mut a = server.join(dir, "node-a", &[]);
    let b = server.join(dir, "node-b", &[]);
    server.apply(&job_pinned_to("b-work", "node-b"));
    let pod = wait_for("the Job's pod to run", RUNS, || {
        server.items("pods").into_iter().find(|p| {
            p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "b-work"
                && phase(p) == "Running"
        })
    });
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let key_a = credentials(&a).signing_key();
    let login_a = Login::node(&a);
    a.proc.kill();

    // A status for B's pod, sealed by A, on B's status topic.
    let mut client = connected(server, &login_a);
    let topic = NodeTopic::Status.for_node("node-b");
    let forged = drover_proto::seal(&topic, &succeeded(&uid), &key_a).unwrap();
    let published = client.publish(&topic, forged, false);
    drop(client);
    // Desired states written by A, for B and for itself (retained, as the controller's are).
    for node in ["node-b", "node-a"] {
        let topic = NodeTopic::Desired.for_node(node);
        let state = Message::Desired(DesiredState {
            generation: 1_000_000,
            pods: Vec::new(),
            finished: Vec::new(),
        });
        let mut client = connected(server, &login_a);
        let _ = client.publish(
            &topic,
            drover_proto::seal(&topic, &state, &key_a).unwrap(),
            true,
        );
    }
    holds_for("the Job stays incomplete", WINDOW, || {
        !job_complete(server, "b-work")
            && server
                .pod(&pod_name)
                .is_some_and(|p| phase(&p) == "Running")
    });
    // Had it reached the controller, it would have been dropped for its signature.
    assert_eq!(
        server.counter("drover_mqtt_messages_dropped_total{reason=\"signature\"}"),
        0,
        "the broker let A's publish on B's topic through ({published:?})"
    );
    // Had they reached the controller or B, they would have been counted and rejected.
    assert_eq!(
        server.counter("drover_mqtt_messages_dropped_total{reason=\"foreign_desired\"}"),
        0,
        "the broker let A publish a desired state"
    );
    assert!(!b
        .proc
        .output()
        .contains("rejected a message that the controller did not sign"));

    // B's desired state (retained: B runs a pod) is not readable by A.
    let mut client = connected(server, &login_a);
    for filter in [
        "drover/v1/nodes/node-b/desired",
        "drover/v1/nodes/+/desired",
    ] {
        let codes = client.subscribe(filter).unwrap();
        assert_eq!(
            codes,
            vec![rumqttc::SubscribeReasonCode::Failure],
            "{filter}"
        );
    }
    let received = client.received_within(WINDOW);
    assert!(received.is_empty(), "A received {received:?}");
    drop(client);

    // A's credentials under B's client id: refused, and B keeps its connection.
    let connections = broker_connections(&b);
    refused(
        server,
        &Login {
            client_id: "drover-agent-node-b".into(),
            ..login_a
        },
    );
    keeps_its_connection(&b, connections);
    assert_eq!(server.ready_status("node-b").as_deref(), Some("True"));
}

#[test]
fn a_node_can_neither_publish_for_nor_read_nor_impersonate_another_with_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    a_node_is_confined_to_its_own_topics(&server, dir.path());
}

#[test]
fn a_node_can_neither_publish_for_nor_read_nor_impersonate_another_with_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let (_mosquitto, server) = with_mosquitto(dir.path());
    a_node_is_confined_to_its_own_topics(&server, dir.path());
}

// --- Desired states only the controller writes ----------------------------------------

/// A node `edge` joined to a server, and the broker's own controller account: what a
/// compromised broker (embedded, or Mosquitto) could publish with.
struct Compromised {
    server: Server,
    agent: Agent,
    credentials: Credentials,
    mosquitto: Option<Mosquitto>,
}

impl Compromised {
    fn start(dir: &Path, with_mosquitto: bool) -> Compromised {
        let (mosquitto, server) = match with_mosquitto {
            true => {
                let (mosquitto, server) = self::with_mosquitto(dir);
                (Some(mosquitto), server)
            }
            false => (None, Server::start_alone(dir)),
        };
        let agent = server.join(dir, "edge", &[]);
        Compromised {
            credentials: credentials(&agent),
            server,
            agent,
            mosquitto,
        }
    }

    /// The broker's controller account, under a client id of its own.
    fn account(&self, client_id: &str) -> Login {
        match &self.mosquitto {
            None => Login::controller(&self.server, client_id),
            Some(mosquitto) => Login {
                client_id: format!("drover-controller-{client_id}"),
                credentials: Some((
                    "drover-controller".into(),
                    std::fs::read_to_string(&mosquitto.external.password_file)
                        .expect("the controller's Mosquitto password")
                        .trim()
                        .to_string(),
                )),
            },
        }
    }

    /// The retained desired state of `edge`, as a fresh subscriber with the controller's
    /// account sees it, once `accept` takes it.
    fn retained_desired(&self, accept: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let topic = NodeTopic::Desired.for_node("edge");
        wait_for("the retained desired state", RUNS, || {
            let mut client = connected(&self.server, &self.account("reader"));
            client.subscribe(&topic).unwrap();
            client
                .received_within(Duration::from_millis(500))
                .into_iter()
                .find(|p| p.topic == topic && accept(&p.payload))
                .map(|p| p.payload.to_vec())
        })
    }

    /// The generation of a desired state of `edge` sealed by the controller.
    fn generation(&self, payload: &[u8]) -> Option<u64> {
        let topic = NodeTopic::Desired.for_node("edge");
        match drover_proto::open(&topic, payload, &self.credentials.controller_key) {
            Ok(Message::Desired(d)) => Some(d.generation),
            _ => None,
        }
    }
}

fn a_forged_desired_state_is_rejected_and_replaced(with_mosquitto: bool) {
    let dir = tempfile::tempdir().unwrap();
    let setup = Compromised::start(dir.path(), with_mosquitto);
    let (server, agent) = (&setup.server, &setup.agent);
    let (legit_uid, legit_pids) = run_pod(server, "legit", "edge");
    let topic = NodeTopic::Desired.for_node("edge");

    let forged_uid = "f0f0f0f0-0000-4000-8000-000000000001";
    let forged = Message::Desired(DesiredState {
        generation: 1_000_000,
        pods: vec![DesiredPod {
            uid: forged_uid.into(),
            namespace: "default".into(),
            name: "forged".into(),
            termination_grace_seconds: 1,
            containers: vec![DesiredContainer {
                name: "main".into(),
                command: vec!["sh".into(), "-c".into(), "exec sleep 4242".into()],
                ..Default::default()
            }],
            ..Default::default()
        }],
        finished: Vec::new(),
    });
    let other_key = SigningKey::from_seed([7; 32]);
    let payloads = [
        (
            "sealed with another key",
            drover_proto::seal(&topic, &forged, &other_key).unwrap(),
        ),
        ("unsigned", drover_proto::encode(&forged).unwrap()),
    ];
    let mut attacker = connected(server, &setup.account("attacker"));
    for (n, (what, payload)) in payloads.into_iter().enumerate() {
        attacker.publish(&topic, payload, true).unwrap();
        wait_for(
            &format!("the agent to reject the {what} desired state"),
            RUNS,
            || {
                (occurrences(
                    &agent.proc.output(),
                    "rejected a message that the controller did not sign for this node",
                ) > n)
                    .then_some(())
            },
        );
        wait_for(
            "the controller to count the foreign desired state",
            RUNS,
            || {
                (server.counter("drover_mqtt_messages_dropped_total{reason=\"foreign_desired\"}")
                    > n as u64)
                    .then_some(())
            },
        );
    }
    holds_for(
        "the forged pod never runs; the legitimate one keeps running",
        WINDOW,
        || pod_processes(forged_uid).is_empty() && pod_processes(&legit_uid) == legit_pids,
    );
    // What a node now finds retained is the controller's own state again.
    setup.retained_desired(|p| setup.generation(p).is_some());
    assert_eq!(phase(&server.pod("legit").unwrap()), "Running");
}

#[test]
fn a_forged_desired_state_from_a_compromised_embedded_broker_is_rejected_and_replaced() {
    a_forged_desired_state_is_rejected_and_replaced(false);
}

#[test]
fn a_forged_desired_state_from_a_compromised_mosquitto_is_rejected_and_replaced() {
    a_forged_desired_state_is_rejected_and_replaced(true);
}

fn a_replayed_older_desired_state_is_refused_and_replaced(with_mosquitto: bool) {
    let dir = tempfile::tempdir().unwrap();
    let setup = Compromised::start(dir.path(), with_mosquitto);
    let (server, agent) = (&setup.server, &setup.agent);
    let topic = NodeTopic::Desired.for_node("edge");
    let (first_uid, first_pids) = run_pod(server, "first", "edge");
    let old = setup.retained_desired(|p| setup.generation(p).is_some());
    let old_generation = setup.generation(&old).unwrap();

    let (second_uid, second_pids) = run_pod(server, "second", "edge");
    let mut attacker = connected(server, &setup.account("replay"));
    attacker.publish(&topic, old, true).unwrap();
    wait_for("the agent to refuse the replay", RUNS, || {
        agent
            .proc
            .output()
            .contains("refused a desired state older than the one already applied")
            .then_some(())
    });
    wait_for(
        "the controller to count the stale desired state",
        RUNS,
        || {
            (server.counter("drover_mqtt_messages_dropped_total{reason=\"stale_desired\"}") >= 1)
                .then_some(())
        },
    );
    holds_for("both pods keep running, unrestarted", WINDOW, || {
        pod_processes(&second_uid) == second_pids && pod_processes(&first_uid) == first_pids
    });
    setup.retained_desired(|p| setup.generation(p).is_some_and(|g| g > old_generation));
}

#[test]
fn a_replayed_older_desired_state_is_refused_and_replaced_with_the_embedded_broker() {
    a_replayed_older_desired_state_is_refused_and_replaced(false);
}

#[test]
fn a_replayed_older_desired_state_is_refused_and_replaced_with_mosquitto() {
    a_replayed_older_desired_state_is_refused_and_replaced(true);
}

/// Mosquitto (with persistence) is restored to a snapshot taken while pod `doomed` still
/// ran, after the pod was deleted; with `restart_agent`, the agent restarts meanwhile (and
/// knows only what it stored).
fn an_older_mosquitto_snapshot_does_not_restart_a_deleted_pod(restart_agent: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut mosquitto = Mosquitto::start_persistent(dir.path());
    let server = Server::start(
        dir.path(),
        ServerOptions {
            external_broker: Some(mosquitto.external.clone()),
            disable_agent: true,
            ..Default::default()
        },
    );
    let mut agent = server.join(dir.path(), "edge", &[]);
    let (uid, _) = run_pod(&server, "doomed", "edge");
    let db = mosquitto.persistence_file.clone().unwrap();

    // A snapshot that still holds the desired state with the pod in it.
    mosquitto.stop();
    let snapshot = dir.path().join("mosquitto.db.old");
    std::fs::copy(&db, &snapshot).expect("Mosquitto saved its persistence file");
    mosquitto.start_again();

    server.cli_ok(&["delete", "pod", "doomed"]);
    wait_for(
        "the pod's processes to end",
        Duration::from_secs(20),
        || (pod_processes(&uid).is_empty() && server.pod("doomed").is_none()).then_some(()),
    );

    mosquitto.stop();
    std::fs::copy(&snapshot, &db).unwrap();
    chown_to_mosquitto(&db);
    if restart_agent {
        agent.restart();
    }
    let connected = "INFO drover_agent::link: connected";
    let started = "starting pod pod=default/doomed";
    let before = agent.proc.output();
    let (connections, starts) = (
        occurrences(&before, connected),
        occurrences(&before, started),
    );
    mosquitto.start_again();
    wait_for("the agent to reconnect", Duration::from_secs(20), || {
        (occurrences(&agent.proc.output(), connected) > connections).then_some(())
    });
    holds_for("the deleted pod stays gone", WINDOW, || {
        pod_processes(&uid).is_empty()
    });
    let output = agent.proc.output();
    assert_eq!(
        occurrences(&output, started),
        starts,
        "the agent started the deleted pod again:\n{output}"
    );
    assert!(server.pod("doomed").is_none());
}

#[test]
fn mosquitto_restored_from_an_older_snapshot_does_not_restart_a_deleted_pod() {
    an_older_mosquitto_snapshot_does_not_restart_a_deleted_pod(false);
}

#[test]
fn mosquitto_restored_from_an_older_snapshot_does_not_restart_a_deleted_pod_after_an_agent_restart()
{
    an_older_mosquitto_snapshot_does_not_restart_a_deleted_pod(true);
}

// --- Revocation ------------------------------------------------------------------------

fn a_deleted_node_is_disconnected_at_once_and_refused(server: &Server, dir: &Path) {
    let agent = server.join(dir, "doomed", &[]);
    let login = Login::node(&agent);

    let deleted = Instant::now();
    server.cli_ok(&["delete", "node", "doomed"]);
    wait_for("the agent to be refused", Duration::from_secs(5), || {
        agent
            .proc
            .output()
            .contains("refused this node's credentials")
            .then_some(())
    });
    assert!(
        deleted.elapsed() < Duration::from_secs(2),
        "refused only after {:?}",
        deleted.elapsed()
    );
    refused(server, &login);
    assert!(server.node("doomed").is_none());
}

#[test]
fn a_deleted_node_is_disconnected_at_once_and_its_credentials_refused_by_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    a_deleted_node_is_disconnected_at_once_and_refused(&server, dir.path());
}

#[test]
fn a_deleted_node_is_disconnected_at_once_and_its_credentials_refused_by_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let (_mosquitto, server) = with_mosquitto(dir.path());
    a_deleted_node_is_disconnected_at_once_and_refused(&server, dir.path());
}

#[test]
fn a_node_deleted_while_mosquitto_is_down_is_refused_once_mosquitto_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut mosquitto = Mosquitto::start(dir.path());
    let server = Server::start(
        dir.path(),
        ServerOptions {
            external_broker: Some(mosquitto.external.clone()),
            disable_agent: true,
            ..Default::default()
        },
    );
    let agent = server.join(dir.path(), "doomed", &[]);
    let login = Login::node(&agent);

    mosquitto.stop();
    server.cli_ok(&["delete", "node", "doomed"]);
    mosquitto.start_again();
    wait_for("the agent to be refused", Duration::from_secs(15), || {
        agent
            .proc
            .output()
            .contains("refused this node's credentials")
            .then_some(())
    });
    refused(&server, &login);
}

#[test]
fn a_node_deleted_while_mosquitto_is_down_stays_refused_across_a_controller_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut mosquitto = Mosquitto::start(dir.path());
    let mut server = Server::start(
        dir.path(),
        ServerOptions {
            external_broker: Some(mosquitto.external.clone()),
            disable_agent: true,
            ..Default::default()
        },
    );
    let agent = server.join(dir.path(), "doomed", &[]);
    let login = Login::node(&agent);

    // The revocation cannot reach Mosquitto now, and the controller restarts before it can.
    mosquitto.stop();
    server.cli_ok(&["delete", "node", "doomed"]);
    server.restart();
    mosquitto.start_again();
    wait_for(
        "Mosquitto to refuse the deleted node's credentials",
        Duration::from_secs(10),
        || {
            RawClient::new(&server.broker.url, &server_ca(&server), &login)
                .connected()
                .is_err()
                .then_some(())
        },
    );
    wait_for("the agent to be refused", Duration::from_secs(5), || {
        agent
            .proc
            .output()
            .contains("refused this node's credentials")
            .then_some(())
    });
}

// --- Abuse of the embedded broker ------------------------------------------------------

/// Connects `logins` concurrently on 8 threads; returns the broker's answers (the error of
/// each refused client, `None` for each one let in).
fn hostile_clients(
    server: &Server,
    logins: Vec<Login>,
) -> std::thread::JoinHandle<Vec<Option<String>>> {
    let url = server.broker.url.clone();
    let ca = server_ca(server);
    std::thread::spawn(move || {
        let chunk = logins.len().div_ceil(8);
        let threads: Vec<_> = logins
            .chunks(chunk)
            .map(|chunk| {
                let (url, ca, chunk) = (url.clone(), ca.clone(), chunk.to_vec());
                std::thread::spawn(move || {
                    chunk
                        .iter()
                        .map(|login| RawClient::new(&url, &ca, login).connected().err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    })
}

#[test]
fn the_embedded_broker_serves_agents_through_a_flood_of_hostile_client_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_alone(dir.path());
    let agent = server.join(dir.path(), "edge", &[]);
    let real = Login::node(&agent).credentials;
    let connections = broker_connections(&agent);

    // Wildcards and separators in client ids: anonymous, with a wrong password, and with
    // the real node's own credentials (bound to its one client id).
    let odd_ids: Vec<Login> = (0..300)
        .map(|i| Login {
            client_id: format!("e2e{}{i}", ["/", "+", "#"][i % 3]),
            credentials: match i % 3 {
                0 => None,
                1 => Some(("edge".into(), "wrong".into())),
                _ => real.clone(),
            },
        })
        .collect();
    // The real agent's client id, over and over, with a wrong password: no takeover.
    let reused: Vec<Login> = (0..200)
        .map(|_| Login {
            client_id: "drover-agent-edge".into(),
            credentials: Some(("edge".into(), "wrong".into())),
        })
        .collect();
    // The real client id with the real credentials (a copy of the node's data directory):
    // refused while the agent holds the id, where it used to take the agent's place.
    let copies: Vec<Login> = (0..100).map(|_| Login::node(&agent)).collect();
    let flood = Instant::now();
    let odd = hostile_clients(&server, odd_ids);
    let same = hostile_clients(&server, reused);
    let copies = hostile_clients(&server, copies);
    still_serving(&mut server, "during-flood", "edge");
    // Every one is answered with a refusal (a CONNACK, not a dropped socket); the real
    // credentials under a foreign client id, or under the one the agent holds, for that id.
    let odd = odd.join().unwrap();
    let same = same.join().unwrap();
    let copies = copies.join().unwrap();
    for (i, answer) in odd.iter().chain(&same).chain(&copies).enumerate() {
        let answer = answer.as_deref().unwrap_or("let in");
        let expected = if (i < 300 && i % 3 == 2) || i >= 500 {
            "BadClientId"
        } else {
            "Connection refused, return code"
        };
        assert!(answer.contains(expected), "client {i}: {answer}");
    }
    eprintln!("600 hostile connections in {:?}", flood.elapsed());
    still_serving(&mut server, "after-flood", "edge");
    assert_eq!(server.ready_status("edge").as_deref(), Some("True"));
    keeps_its_connection(&agent, connections);
}

#[test]
fn the_embedded_broker_serves_agents_while_connects_stall_and_closes_the_stalled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "edge", &[]);
    let address = server.broker.url.trim_start_matches("mqtts://").to_string();

    // Two bytes of a TLS handshake, and two bytes of a CONNECT after a full handshake.
    let mut raw = std::net::TcpStream::connect(&address).unwrap();
    raw.write_all(&[0x16, 0x03]).unwrap();
    let config = drover_agent::tls::pinned_ca_config(&server_ca(&server)).unwrap();
    let tcp = std::net::TcpStream::connect(&address).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = rustls::ClientConnection::new(config, name.clone()).unwrap();
    let mut half = rustls::StreamOwned::new(tls, tcp);
    half.write_all(&[0x10, 0x20]).unwrap();
    half.flush().unwrap();
    // A whole CONNECT, one byte every 400 ms: never idle, never complete in time.
    let drip = {
        let config = drover_agent::tls::pinned_ca_config(&server_ca(&server)).unwrap();
        let tcp = std::net::TcpStream::connect(&address).unwrap();
        let tls = rustls::ClientConnection::new(config, name.clone()).unwrap();
        std::thread::spawn(move || {
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            let accepted = Instant::now();
            let client_id = b"drip-drip-drip-drip-drip-drip-drip-drip-";
            let mut connect = vec![0x10, 10 + 2 + client_id.len() as u8];
            connect.extend_from_slice(b"\x00\x04MQTT\x04\x02\x00\x3c");
            connect.extend_from_slice(&[0, client_id.len() as u8]);
            connect.extend_from_slice(client_id);
            for byte in connect {
                if stream
                    .write_all(&[byte])
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return Some(accepted.elapsed());
                }
                std::thread::sleep(Duration::from_millis(400));
            }
            None
        })
    };

    still_serving(&mut server, "during-stall", "edge");

    // The broker gives up on both (connect timeout: 10 s from accept).
    let timeout = Some(Duration::from_secs(20));
    raw.set_read_timeout(timeout).unwrap();
    half.sock.set_read_timeout(timeout).unwrap();
    for (what, stream) in [
        ("the stalled handshake", &mut raw as &mut dyn Read),
        ("the half-sent CONNECT", &mut half as &mut dyn Read),
    ] {
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the broker kept {what} open for {timeout:?}"
            ),
            Ok(n) => panic!("the broker answered {what} with {n} bytes"),
        }
    }
    let dripped = drip.join().unwrap();
    assert!(
        dripped.is_some_and(|after| after < Duration::from_secs(15)),
        "the broker let a CONNECT drip in for {dripped:?}"
    );
    still_serving(&mut server, "after-stall", "edge");
}

#[test]
fn the_embedded_broker_closes_a_node_connection_over_the_packet_limit_and_serves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "edge", &[]);
    let mut spare = server.join(dir.path(), "spare", &[]);
    let login = Login::node(&spare);
    spare.proc.kill();

    let mut client = connected(&server, &login);
    // Under the limit, the broker takes it (the controller then drops it as unsigned)…
    let topic = NodeTopic::Status.for_node("spare");
    client.publish(&topic, vec![0u8; 512 << 10], false).unwrap();
    // …over it, the broker closes the connection.
    let oversized = vec![0u8; 2 << 20];
    let answer = client.publish(&topic, oversized, false);
    assert!(answer.is_err(), "a 2 MiB packet was acknowledged");
    still_serving(&mut server, "after-oversized", "edge");
}

/// Lines in the server's log so far.
fn log_lines(server: &Server) -> usize {
    server.proc.output().lines().count()
}

/// User + system CPU time of process `pid` (clock ticks of 10 ms, Linux's USER_HZ).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    // Fields 14 and 15 of stat(5); after_comm starts at field 3.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// The soft "Max open files" limit of process `pid`.
fn open_files_limit(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .expect("/proc limits")
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .expect("a Max open files line")
}

/// Opens up to `n` TCP connections to `address` on 100 threads (each given up after a
/// second: a backlog that takes no more); returns those that connected.
fn open_idle(address: &str, n: usize) -> Vec<std::net::TcpStream> {
    let address: std::net::SocketAddr = address.parse().expect("host:port");
    let threads: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || {
                (0..n.div_ceil(100))
                    .filter_map(|_| {
                        std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn the_server_serves_agents_through_2000_idle_connections_at_a_1024_descriptor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            nofile: Some(1024),
            ..Default::default()
        },
    );
    assert_eq!(open_files_limit(server.proc.pid()), 1024);
    let agent = server.join(dir.path(), "edge", &[]);
    let connections = broker_connections(&agent);
    let address = server.broker.url.trim_start_matches("mqtts://").to_string();
    let lines_before = log_lines(&server);
    let at_limit = |server: &Server| {
        server.counter("drover_broker_events_total{event=\"refused_limit\"}")
            + server.counter("drover_broker_events_total{event=\"accept_errors\"}")
    };

    let opened = Instant::now();
    let idle = open_idle(&address, 2_500);
    eprintln!(
        "{} idle connections open after {:?}",
        idle.len(),
        opened.elapsed()
    );
    assert!(
        idle.len() >= 2_000,
        "only {} connections were opened",
        idle.len()
    );
    // The server reached its descriptor limit (connections it had to refuse or could not
    // accept) and holds the connections it took (the broker closes those that send no
    // CONNECT after 10 s, so this is measured well before)...
    wait_for("the broker to reach its limit", RUNS, || {
        (at_limit(&server) > 0).then_some(())
    });
    let held = server.counter("drover_broker_connections");
    eprintln!(
        "after {:?}: {held} broker connections open, {} refused or not accepted",
        opened.elapsed(),
        at_limit(&server)
    );
    assert!(
        held > 500,
        "the broker holds {held} connections: the test measured no descriptor shortage"
    );
    // ...and still serves the agent and the API, with the connections still held.
    still_serving(&mut server, "during-idle", "edge");
    let still_held = server.counter("drover_broker_connections");
    assert!(
        still_held > 500,
        "only {still_held} connections were left when the pod ran: the test measured no descriptor shortage"
    );

    // Neither a busy loop nor a log that grows while nothing changes.
    let pid = server.proc.pid();
    let (cpu_before, lines_quiet) = (cpu_time(pid), log_lines(&server));
    let window = Instant::now();
    holds_for(
        "the server's log stays quiet",
        Duration::from_secs(2),
        || log_lines(&server) < lines_quiet + 50,
    );
    let share =
        cpu_time(pid).saturating_sub(cpu_before).as_secs_f64() / window.elapsed().as_secs_f64();
    eprintln!(
        "with {} idle connections: server CPU {:.0}% of a core, {} log lines in {:?}",
        idle.len(),
        share * 100.0,
        log_lines(&server) - lines_quiet,
        window.elapsed()
    );
    assert!(share < 0.3, "the server spins: {:.0}% CPU", share * 100.0);

    let idle_count = idle.len();
    drop(idle);
    still_serving(&mut server, "after-idle", "edge");
    assert_eq!(server.ready_status("edge").as_deref(), Some("True"));
    keeps_its_connection(&agent, connections);
    let logged = log_lines(&server) - lines_before;
    eprintln!(
        "{logged} server log lines for {} idle connections ({} broker events at the limit)",
        idle_count,
        at_limit(&server)
    );
    // A handful of throttled warnings, not a line per connection or per accept retry.
    assert!(
        logged < 100,
        "{logged} log lines for {idle_count} idle connections"
    );
}

#[test]
fn the_server_serves_agents_through_a_flood_of_messages_from_an_enrolled_node() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "edge", &[]);
    let mut spare = server.join(dir.path(), "spare", &[]);
    let login = Login::node(&spare);
    let key = credentials(&spare).signing_key();
    spare.proc.kill();

    let received =
        |server: &Server| server.counter("drover_mqtt_messages_received_total{topic=\"status\"}");
    let received_before = received(&server);
    let lines_before = log_lines(&server);
    // As fast as the broker takes them, on the node's own status topic: status reports
    // sealed with its key (what a runaway agent sends) and unsigned bytes (what a stolen
    // password sends).
    let topic = NodeTopic::Status.for_node("spare");
    let sealed = drover_proto::seal(
        &topic,
        &Message::Status(StatusReport {
            pods: Vec::new(),
            full: false,
            events: Vec::new(),
        }),
        &key,
    )
    .unwrap();
    let RawClient {
        client,
        mut connection,
    } = connected(&server, &login);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let reader =
        std::thread::spawn(move || for _ in connection.iter().take_while(Result::is_ok) {});
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                let payload = match n % 2 {
                    0 => sealed.clone(),
                    _ => vec![0x42; 64],
                };
                if client
                    .publish(&topic, rumqttc::QoS::AtMostOnce, false, payload)
                    .is_err()
                {
                    break;
                }
            }
            let _ = client.disconnect();
        })
    };
    wait_for("the flood to reach the controller", RUNS, || {
        (received(&server) > received_before + 2_000).then_some(())
    });
    still_serving(&mut server, "during-message-flood", "edge");
    still_serving(&mut server, "during-message-flood-2", "edge");
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    reader.join().unwrap();
    let delivered = received(&server) - received_before;
    let logged = log_lines(&server) - lines_before;
    eprintln!(
        "{} publishes sent, {delivered} reached the controller, {logged} server log lines",
        sent.load(Ordering::Relaxed)
    );
    still_serving(&mut server, "after-message-flood", "edge");
    assert_eq!(server.ready_status("edge").as_deref(), Some("True"));
    assert!(
        logged < 300,
        "{logged} server log lines for {delivered} flooded messages"
    );
}
