//! Lifecycle hooks on real agents, for process pods and engine containers: `preStop` runs
//! before the container is sent SIGTERM when its pod is deleted, and a failing `postStart`
//! kills the container, which its restart policy then restarts. The engine tests need the
//! local test image (`scripts/test-image`).

use std::path::Path;
use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

const FAST_BACKOFF: [&str; 4] = ["--crash-backoff-initial", "1s", "--crash-backoff-max", "4s"];
const T: Duration = Duration::from_secs(60);

fn events_of(server: &Server, pod: &str, reason: &str) -> Vec<String> {
    server
        .items("events")
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

/// A pod whose container records what happens to it in `<dir>/journal` (seen as `/out`
/// inside an engine container).
fn journaled_pod(name: &str, node: &str, engine: bool, dir: &Path, lifecycle: &str) -> String {
    let (image, mounts, volumes, out) = if engine {
        (
            format!("    image: {}\n", test_image()),
            "    volumeMounts: [{name: out, mountPath: /out}]\n".to_string(),
            format!(
                "  volumes: [{{name: out, hostPath: {{path: {}, type: Directory}}}}]\n",
                dir.display()
            ),
            "/out".to_string(),
        )
    } else {
        (
            String::new(),
            String::new(),
            String::new(),
            dir.display().to_string(),
        )
    };
    let lifecycle = lifecycle.replace("OUT", &out);
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 20
{volumes}  containers:
  - name: main
{image}    command: [sh, -c, 'trap \"echo got SIGTERM >> {out}/journal; exit 0\" TERM; echo started >> {out}/journal; while true; do sleep 0.1; done']
{mounts}    lifecycle:
{lifecycle}"
    )
}

fn journal(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn pre_stop_runs_before_sigterm(engine: bool) {
    let node = if engine {
        "hooks-engine"
    } else {
        "hooks-process"
    };
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The engine container may run as another user than the test.
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    let hook = "      preStop:
        exec:
          command: [sh, -c, 'echo preStop begins >> OUT/journal; sleep 1; echo preStop ends >> OUT/journal']
";
    server.apply(&journaled_pod("graceful", node, engine, &out, hook));
    wait_for("the container to start", T, || {
        journal(&out).contains(&"started".to_string()).then_some(())
    });
    server.kubectl_ok(&["delete", "pod", "graceful", "--wait=false"]);
    wait_for("the pod to be gone", T, || {
        server.pod("graceful").is_none().then_some(())
    });
    assert_eq!(
        journal(&out),
        ["started", "preStop begins", "preStop ends", "got SIGTERM"],
        "the hook ran whole before SIGTERM"
    );
}

#[test]
fn pre_stop_runs_before_sigterm_for_a_process_pod() {
    pre_stop_runs_before_sigterm(false);
}

#[test]
fn pre_stop_runs_before_sigterm_in_the_engine() {
    pre_stop_runs_before_sigterm(true);
}

fn a_failing_post_start_kills_and_restarts(engine: bool) {
    let node = if engine {
        "poststart-engine"
    } else {
        "poststart-process"
    };
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    // The hook fails on the first run and succeeds from the second on.
    let hook = "      postStart:
        exec:
          command: [sh, -c, 'echo postStart >> OUT/journal; [ $(grep -c postStart OUT/journal) -ge 2 ]']
";
    server.apply(&journaled_pod("hooked", node, engine, &out, hook));
    let pod: Value = server.wait_pod("hooked", "ready after a restart", T, |p| {
        container(p)["restartCount"].as_u64() == Some(1) && container(p)["ready"] == true
    });
    assert_eq!(phase(&pod), "Running");
    let failed = events_of(&server, "hooked", "FailedPostStartHook");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let lines = journal(&out);
    assert_eq!(
        lines.iter().filter(|l| *l == "postStart").count(),
        2,
        "{lines:?}"
    );
    // Whether the first run saw SIGTERM is a race: the hook runs beside the command, as in
    // Kubernetes, and may fail (and the kill come) before the command has set its trap.
}

#[test]
fn a_failing_post_start_kills_and_restarts_a_process_pod() {
    a_failing_post_start_kills_and_restarts(false);
}

#[test]
fn a_failing_post_start_kills_and_restarts_in_the_engine() {
    a_failing_post_start_kills_and_restarts(true);
}
