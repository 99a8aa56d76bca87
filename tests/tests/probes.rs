//! Probes on real agents with process pods: a hung server is restarted by its liveness
//! probe, a readiness probe decides `Ready` (and `READY` in kubectl), a startup probe holds
//! the others back, and a gRPC health check is answered by a real gRPC server.

use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn setup(dir: &std::path::Path, node: &str) -> (Server, Agent) {
    let server = Server::start_alone(dir);
    let agent = server.join(
        dir,
        node,
        &["--crash-backoff-initial", "1s", "--crash-backoff-max", "4s"],
    );
    (server, agent)
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

fn restarts(pod: &Value) -> u64 {
    container(pod)["restartCount"].as_u64().unwrap_or(0)
}

fn condition(pod: &Value, kind: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

fn events_of(server: &Server, pod: &str, reason: &str) -> Vec<String> {
    server
        .items("events")
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn signal_all(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status();
    }
}

#[test]
fn a_hung_server_is_restarted_by_its_liveness_probe() {
    let dir = tempfile::tempdir().unwrap();
    let (server, agent) = setup(dir.path(), "prober");
    let port = free_port();
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: hangs}}
spec:
  nodeName: prober
  containers:
  - name: web
    command: [python3, -m, http.server, --bind, 127.0.0.1, '{port}']
    ports: [{{name: http, containerPort: {port}}}]
    startupProbe:
      tcpSocket: {{port: http}}
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      httpGet: {{path: /, port: http}}
      periodSeconds: 1
      timeoutSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 1
"
    ));
    // Ready (no readiness probe) once the startup probe found it listening.
    let pod = server.wait_pod("hangs", "listening", T, |p| container(p)["ready"] == true);
    let pod_uid = uid(&pod);
    let before = wait_for("the server's process", T, || {
        let pids = pod_processes(&pod_uid);
        (!pids.is_empty()).then_some(pids)
    });
    // Healthy: several probe periods pass without a restart.
    holds_for("the probe to keep passing", Duration::from_secs(3), || {
        server.pod("hangs").is_some_and(|p| restarts(&p) == 0)
    });
    // Hung: it still holds its socket (connections are accepted by the kernel) and answers
    // nothing; it cannot act on SIGTERM either, so the probe's grace period ends in SIGKILL.
    signal_all(&before, "-STOP");
    let pod = server.wait_pod("hangs", "restarted by its liveness probe", T, |p| {
        restarts(p) == 1 && container(p)["ready"] == true
    });
    assert_eq!(pod["status"]["phase"], "Running");
    let after = pod_processes(&pod_uid);
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|pid| !before.contains(pid)),
        "the hung process still runs: before {before:?}, after {after:?}"
    );
    let unhealthy = events_of(&server, "hangs", "Unhealthy");
    assert!(
        unhealthy
            .iter()
            .any(|m| m.starts_with("Liveness probe failed: ") && m.contains("timeout")),
        "{unhealthy:?}"
    );
    let killing = events_of(&server, "hangs", "Killing");
    assert!(
        killing
            .iter()
            .any(|m| m == "Container web failed liveness probe, will be restarted"),
        "{killing:?}"
    );
    // The agent stayed responsive throughout (a probe that outlasts its period once kept
    // it busy waking itself): its node is Ready.
    assert_eq!(agent.name, "prober");
    assert_eq!(server.ready_status("prober").as_deref(), Some("True"));
    // The restarted server is healthy: no more restarts.
    holds_for("the new process to stay", Duration::from_secs(3), || {
        server.pod("hangs").is_some_and(|p| restarts(&p) == 1)
    });
}

#[test]
fn a_readiness_probe_decides_ready_and_kubectls_ready_column() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path(), "ready-node");
    let flag = dir.path().join("ready-flag");
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: gated}}
spec:
  nodeName: ready-node
  containers:
  - name: app
    command: [sleep, '3600']
    readinessProbe:
      exec: {{command: [test, -f, {flag}]}}
      periodSeconds: 1
      failureThreshold: 1
",
        flag = flag.display()
    ));
    let pod = server.wait_pod("gated", "running", T, |p| {
        container(p)["state"]["running"].is_object()
    });
    // Running, not ready: the probe fails while the file is missing.
    holds_for("the pod to stay unready", Duration::from_secs(3), || {
        server
            .pod("gated")
            .is_some_and(|p| container(&p)["ready"] == false && condition(&p, "Ready") == "False")
    });
    let table = server.kubectl(&["get", "pod", "gated"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("0/1") && text.contains("Running"), "{text}");
    std::fs::write(&flag, "").unwrap();
    let ready = server.wait_pod("gated", "ready", T, |p| condition(p, "Ready") == "True");
    assert_eq!(container(&ready)["ready"], true);
    assert_eq!(restarts(&ready), 0);
    let table = server.kubectl(&["get", "pod", "gated"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("1/1"), "{text}");
    // The condition says when it became ready.
    let transition = ready["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(str::to_string);
    assert!(transition.is_some(), "{}", ready["status"]);
    // Unready again, and never restarted for it.
    std::fs::remove_file(&flag).unwrap();
    let unready = server.wait_pod("gated", "unready again", T, |p| {
        condition(p, "Ready") == "False"
    });
    assert_eq!(restarts(&unready), 0);
    assert_eq!(uid(&unready), uid(&pod));
    let unhealthy = events_of(&server, "gated", "Unhealthy");
    assert!(
        unhealthy
            .iter()
            .any(|m| m.starts_with("Readiness probe failed")),
        "{unhealthy:?}"
    );
}

#[test]
fn a_startup_probe_holds_back_liveness_until_the_app_has_started() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path(), "slow-node");
    let started = dir.path().join("started");
    // Liveness would fail (and kill) at once; the startup probe keeps it from running until
    // the app says it started, after which liveness passes.
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: slow}}
spec:
  nodeName: slow-node
  containers:
  - name: app
    command: [sh, -c, 'sleep 3; touch {started}; sleep 3600']
    startupProbe:
      exec: {{command: [test, -f, {started}]}}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      exec: {{command: [test, -f, {started}]}}
      periodSeconds: 1
      failureThreshold: 1
",
        started = started.display()
    ));
    let pod = server.wait_pod("slow", "started and ready", T, |p| {
        container(p)["ready"] == true
    });
    assert_eq!(restarts(&pod), 0);
    assert_eq!(container(&pod)["started"], true);
    holds_for("no restart once started", Duration::from_secs(2), || {
        server.pod("slow").is_some_and(|p| restarts(&p) == 0)
    });
    assert!(events_of(&server, "slow", "Killing").is_empty());
}

/// A gRPC health server from the Python `grpcio-health-checking` package, or `None` where
/// the test's Python lacks it (it is installed by `scripts/test`).
fn grpc_python() -> Option<String> {
    let python = std::env::var("DROVER_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = std::process::Command::new(&python)
        .args(["-c", "import grpc, grpc_health.v1.health"])
        .status()
        .is_ok_and(|s| s.success());
    found.then_some(python)
}

#[test]
fn a_grpc_probe_asks_a_real_grpc_server_and_follows_its_serving_status() {
    let Some(python) = grpc_python() else {
        panic!("the gRPC probe test needs grpcio-health-checking in DROVER_PYTHON (scripts/test installs it)");
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path(), "grpc-node");
    let port = free_port();
    let flag = dir.path().join("not-serving");
    let script = dir.path().join("health.py");
    std::fs::write(
        &script,
        format!(
            r#"import os, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
service = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(service, server)
server.add_insecure_port("127.0.0.1:{port}")
server.start()
while True:
    status = health_pb2.HealthCheckResponse.NOT_SERVING if os.path.exists("{flag}") else health_pb2.HealthCheckResponse.SERVING
    service.set("", status)
    service.set("app", status)
    time.sleep(0.2)
"#,
            flag = flag.display()
        ),
    )
    .unwrap();
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: grpc}}
spec:
  nodeName: grpc-node
  containers:
  - name: app
    command: [{python}, {script}]
    readinessProbe:
      grpc: {{port: {port}, service: app}}
      periodSeconds: 1
      failureThreshold: 1
",
        script = script.display()
    ));
    server.wait_pod("grpc", "ready by its gRPC health", T, |p| {
        condition(p, "Ready") == "True"
    });
    std::fs::write(&flag, "").unwrap();
    server.wait_pod("grpc", "unready once NOT_SERVING", T, |p| {
        condition(p, "Ready") == "False"
    });
    let unhealthy = events_of(&server, "grpc", "Unhealthy");
    assert!(
        unhealthy
            .iter()
            .any(|m| m.contains("service unhealthy (responded with \"NOT_SERVING\")")),
        "{unhealthy:?}"
    );
    std::fs::remove_file(&flag).unwrap();
    server.wait_pod("grpc", "ready again", T, |p| {
        condition(p, "Ready") == "True"
    });
}
