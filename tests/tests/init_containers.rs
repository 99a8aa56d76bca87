//! Init containers and native sidecars on real agents: the documentation's Indexed Job
//! picking its input in an init container (engine containers sharing an `emptyDir`), Job
//! pods with a sidecar completing (process pods and engine containers), and the `Init:`
//! statuses `kubectl get pods` shows. The engine tests need the local test image
//! (`scripts/test-image`).

use std::path::Path;
use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

const FAST_BACKOFF: [&str; 4] = ["--crash-backoff-initial", "1s", "--crash-backoff-max", "4s"];
const T: Duration = Duration::from_secs(60);

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

fn kubectl_status(server: &Server, pod: &str) -> String {
    let out = server.kubectl(&["get", "pod", pod, "--no-headers"]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or("")
        .to_string()
}

/// The documentation's Indexed Job, with the test image for its two images and POSIX `sh`
/// for the init container's bash array (the test image has no bash). Otherwise as
/// published: five indexes, three at a time, the input written into an `emptyDir`.
#[test]
fn the_documentations_indexed_job_reads_what_its_init_container_wrote() {
    let node = "init-indexed";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    let image = test_image();
    server.apply(&format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: 'indexed-job'
spec:
  completions: 5
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - name: 'input'
        image: '{image}'
        command:
        - "sh"
        - "-c"
        - |
          set -- foo bar baz qux xyz
          shift $JOB_COMPLETION_INDEX
          echo $1 > /input/data.txt
        volumeMounts:
        - mountPath: /input
          name: input
      containers:
      - name: 'worker'
        image: '{image}'
        command:
        - "rev"
        - "/input/data.txt"
        volumeMounts:
        - mountPath: /input
          name: input
      volumes:
      - name: input
        emptyDir: {{}}
"#
    ));
    let out = server.kubectl(&[
        "wait",
        "--for=condition=Complete",
        "job/indexed-job",
        "--timeout=120s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut outputs: Vec<(String, String)> = server
        .job_pods("indexed-job")
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            let index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let init = &p["status"]["initContainerStatuses"][0];
            assert_eq!(init["name"], "input", "{p}");
            assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{p}");
            // The only app container is the default, its init container aside.
            let logs = server.kubectl_ok(&["logs", name]);
            (index, logs.trim().to_string())
        })
        .collect();
    outputs.sort();
    let expected: Vec<(String, String)> = ["oof", "rab", "zab", "xuq", "zyx"]
        .iter()
        .enumerate()
        .map(|(i, out)| (i.to_string(), out.to_string()))
        .collect();
    assert_eq!(outputs, expected);
    // Each pod's last line of `get pods` reads Completed, as on a cluster.
    for p in server.job_pods("indexed-job") {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        assert_eq!(kubectl_status(&server, name), "Completed");
    }
}

/// A Job whose pod has a sidecar that runs until told to stop: the app waits for the
/// sidecar's first tick, exits 0, and the pod completes with the sidecar stopped.
fn sidecar_job(name: &str, engine: bool, shared: &Path) -> String {
    let (image, mounts, volumes, ticks) = if engine {
        (
            format!("        image: {}\n", test_image()),
            "        volumeMounts: [{name: shared, mountPath: /shared}]\n".to_string(),
            "      volumes: [{name: shared, emptyDir: {}}]\n".to_string(),
            "/shared/ticks".to_string(),
        )
    } else {
        (
            String::new(),
            String::new(),
            String::new(),
            shared.join("ticks").display().to_string(),
        )
    };
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 5
{volumes}      initContainers:
      - name: ticker
{image}        restartPolicy: Always
        command: [sh, -c, 'trap \"exit 0\" TERM; while true; do echo tick >> {ticks}; sleep 0.2; done']
{mounts}      containers:
      - name: main
{image}        command: [sh, -c, 'until [ -s {ticks} ]; do sleep 0.1; done; echo saw the sidecar']
{mounts}"
    )
}

fn a_job_pod_with_a_sidecar_completes(engine: bool) {
    let node = if engine {
        "sidecar-engine"
    } else {
        "sidecar-process"
    };
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    server.apply(&sidecar_job("with-sidecar", engine, dir.path()));
    let out = server.kubectl(&[
        "wait",
        "--for=condition=Complete",
        "job/with-sidecar",
        "--timeout=60s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pods = server.job_pods("with-sidecar");
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod = &pods[0];
    assert_eq!(phase(pod), "Succeeded", "{pod}");
    let sidecar = &pod["status"]["initContainerStatuses"][0];
    assert_eq!(sidecar["name"], "ticker");
    assert!(
        sidecar["state"]["terminated"].is_object(),
        "the sidecar was stopped: {pod}"
    );
    assert_eq!(sidecar["restartCount"], 0, "and not restarted: {pod}");
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let logs = server.kubectl_ok(&["logs", name, "-c", "main"]);
    assert!(logs.contains("saw the sidecar"), "{logs}");
    assert_eq!(kubectl_status(&server, name), "Completed");
    if engine {
        let running: Vec<_> = engine_containers(&format!("drover.io/node={node}"))
            .into_iter()
            .filter(|(_, state)| state == "running")
            .collect();
        assert!(running.is_empty(), "{running:?}");
    } else {
        assert!(pod_processes(&uid(pod)).is_empty(), "nothing of it runs");
    }
}

#[test]
fn a_job_pod_with_a_native_sidecar_completes_as_processes() {
    a_job_pod_with_a_sidecar_completes(false);
}

#[test]
fn a_job_pod_with_a_native_sidecar_completes_in_the_engine() {
    a_job_pod_with_a_sidecar_completes(true);
}

#[test]
fn kubectl_shows_init_progress_and_init_failures() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "init-status", &FAST_BACKOFF);
    let gate = dir.path().join("gate");
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: staged
spec:
  nodeName: init-status
  initContainers:
  - name: wait-for-gate
    command: [sh, -c, 'until [ -f {gate} ]; do sleep 0.1; done']
  - name: migrate
    command: [sh, -c, 'echo migration failed; exit 3']
  containers:
  - name: app
    command: [sleep, '3600']
",
        gate = gate.display()
    ));
    wait_for("Init:0/2", T, || {
        (kubectl_status(&server, "staged") == "Init:0/2").then_some(())
    });
    std::fs::write(&gate, "").unwrap();
    // The second init container fails and is retried (the pod says Always): Init:Error,
    // then Init:CrashLoopBackOff while it backs off.
    let seen = wait_for("an init failure", T, || {
        let status = kubectl_status(&server, "staged");
        ["Init:Error", "Init:CrashLoopBackOff"]
            .contains(&status.as_str())
            .then_some(status)
    });
    assert!(seen.starts_with("Init:"), "{seen}");
    let pod = server.wait_pod("staged", "a retried init container", T, |p| {
        p["status"]["initContainerStatuses"][1]["restartCount"]
            .as_u64()
            .is_some_and(|r| r >= 1)
    });
    assert_eq!(phase(&pod), "Pending", "{pod}");
    assert_eq!(
        pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing",
        "{pod}"
    );
    let initialized = pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Initialized").cloned())
        .unwrap_or_default();
    assert_eq!(initialized["status"], "False", "{pod}");
    let logs = server.kubectl_ok(&["logs", "staged", "-c", "migrate"]);
    assert!(logs.contains("migration failed"), "{logs}");
    assert!(
        pod_processes(&uid(&pod))
            .iter()
            .all(
                |pid| !std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .contains("3600")
            ),
        "the app never started"
    );
}
