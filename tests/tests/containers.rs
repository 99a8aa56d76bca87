//! Pods with images on real agents and the machine's Docker engine: restart policies, exit
//! codes, OOM kills, pull policy errors, volumes, logs, re-adoption after an agent crash,
//! and a DaemonSet of containers. Needs the local test image (`scripts/test-image`).

use std::process::{Command, Stdio};
use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

const FAST_BACKOFF: [&str; 4] = ["--crash-backoff-initial", "1s", "--crash-backoff-max", "4s"];
const T: Duration = Duration::from_secs(30);

/// A one-container pod running `script` with the test image on `node`; `extra` is added
/// to the container, `pod_extra` to the pod spec.
fn container_pod(
    name: &str,
    node: &str,
    policy: &str,
    script: &str,
    extra: &str,
    pod_extra: &str,
) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 2
{pod_extra}  containers:
  - name: main
    image: {image}
    command: [sh, -c, {script:?}]
{extra}",
        image = test_image()
    )
}

fn restarts(pod: &Value) -> u64 {
    container(pod)["restartCount"].as_u64().unwrap_or(0)
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

fn waiting_reason(pod: &Value) -> &str {
    container(pod)["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or("")
}

#[test]
fn restart_policies_and_exit_codes() {
    let node = "ct-policies";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    let cases = [
        ("always-0", "Always", "exit 0"),
        ("always-3", "Always", "exit 3"),
        ("onfailure-0", "OnFailure", "exit 0"),
        ("onfailure-3", "OnFailure", "exit 3"),
        ("never-0", "Never", "exit 0"),
        ("never-3", "Never", "exit 3"),
    ];
    let manifests: Vec<String> = cases
        .iter()
        .map(|(name, policy, script)| {
            container_pod(name, node, policy, &format!("sleep 0.3; {script}"), "", "")
        })
        .collect();
    server.apply(&manifests.join("---\n"));
    for (name, expected) in [("always-0", 0), ("always-3", 3), ("onfailure-3", 3)] {
        let pod = server.wait_pod(name, "restarted", T, |p| restarts(p) >= 1);
        assert_eq!(
            container(&pod)["lastState"]["terminated"]["exitCode"],
            expected,
            "{name}: {pod}"
        );
    }
    let done = server.wait_pod("onfailure-0", "Succeeded", T, |p| phase(p) == "Succeeded");
    assert_eq!(restarts(&done), 0);
    let ok = server.wait_pod("never-0", "Succeeded", T, |p| phase(p) == "Succeeded");
    assert_eq!(container(&ok)["state"]["terminated"]["reason"], "Completed");
    let failed = server.wait_pod("never-3", "Failed", T, |p| phase(p) == "Failed");
    let terminated = &container(&failed)["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3, "{failed}");
    assert_eq!(terminated["reason"], "Error");
    // The engine keeps the finished container, and never restarts anything itself.
    let kept = engine_containers(&format!("drover.io/pod-uid={}", uid(&failed)));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].1, "exited");

    // Deleting a pod stops its container (SIGTERM, then SIGKILL after the grace period)
    // and removes it, with the previous run's container.
    let always = server.pod("always-3").unwrap();
    server.cli_ok(&["delete", "pod", "always-3"]);
    server.cli_ok(&["delete", "pod", "never-3"]);
    wait_for("the pods' containers removed", T, || {
        (engine_containers(&format!("drover.io/pod-uid={}", uid(&always))).is_empty()
            && engine_containers(&format!("drover.io/pod-uid={}", uid(&failed))).is_empty())
        .then_some(())
    });
}

#[test]
fn oom_kill_under_a_memory_limit_is_reported() {
    let node = "ct-oom";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    server.apply(&container_pod(
        "hog",
        node,
        "Never",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo ${#x}",
        "    resources: {limits: {memory: 16Mi}}\n",
        "",
    ));
    let hog = server.wait_pod("hog", "Failed", T, |p| phase(p) == "Failed");
    let terminated = &container(&hog)["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled", "{hog}");
    assert_eq!(terminated["exitCode"], 137, "{hog}");
}

#[test]
fn never_pull_policy_with_a_missing_image_waits_with_a_clear_reason() {
    let node = "ct-never-pull";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    let missing = container_pod("missing", node, "Never", "true", "", "")
        .replace(&test_image(), "drover-test/not-there:1")
        .replace("    command:", "    imagePullPolicy: Never\n    command:");
    server.apply(&missing);
    let pod = server.wait_pod("missing", "ErrImageNeverPull", T, |p| {
        waiting_reason(p) == "ErrImageNeverPull"
    });
    assert_eq!(phase(&pod), "Pending");
    let message = container(&pod)["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains("drover-test/not-there:1"), "{pod}");
    let table = server.cli_ok(&["get", "pods"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("missing") && l.contains("ErrImageNeverPull")),
        "{table}"
    );
    // The agent is unharmed: the node stays Ready and runs the next pod.
    server.apply(&container_pod("fine", node, "Never", "echo fine", "", ""));
    server.wait_pod("fine", "Succeeded", T, |p| phase(p) == "Succeeded");
    assert_eq!(server.ready_status(node).as_deref(), Some("True"));
}

#[test]
fn volumes_are_mounted_host_path_read_only_and_empty_dir_shared_across_runs() {
    let node = "ct-volumes";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let host_dir = dir.path().join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello.txt"), "hello from the host\n").unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    let script = "cat /host/hello.txt; touch /host/x 2>/dev/null || echo host is read-only; \
                  echo run >> /scratch/runs; wc -l < /scratch/runs; \
                  [ $(wc -l < /scratch/runs) -ge 2 ]";
    server.apply(&container_pod(
        "mounts",
        node,
        "OnFailure",
        script,
        "    volumeMounts:\n    - {name: host, mountPath: /host, readOnly: true}\n    - {name: scratch, mountPath: /scratch}\n",
        &format!(
            "  volumes:\n  - {{name: host, hostPath: {{path: {}, type: Directory}}}}\n  - {{name: scratch, emptyDir: {{}}}}\n",
            host_dir.display()
        ),
    ));
    // The first run fails (one line in the emptyDir); the restart sees the same emptyDir.
    let pod = server.wait_pod("mounts", "Succeeded", T, |p| phase(p) == "Succeeded");
    assert_eq!(restarts(&pod), 1, "{pod}");
    let logs = server.cli_ok(&["logs", "mounts"]);
    assert!(logs.contains("hello from the host"), "{logs}");
    assert!(logs.contains("host is read-only"), "{logs}");
    assert!(!host_dir.join("x").exists());
    let previous = server.cli_ok(&["logs", "mounts", "--previous"]);
    assert!(previous.contains("hello from the host"), "{previous}");
}

#[test]
fn logs_tail_follow_and_previous_come_from_the_engine() {
    let node = "ct-logs";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    let script = "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); sleep 0.05; done";
    server.apply(&container_pod("talker", node, "Always", script, "", ""));
    // Until the container runs, `logs` says it is waiting to start.
    wait_for("output", T, || {
        let out = server.cli(&["logs", "talker"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("line 3")
            .then_some(())
    });
    let tail = server.cli_ok(&["logs", "talker", "--tail", "2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert_log_follow_streams(&server, "talker");

    server.apply(&container_pod(
        "twice",
        node,
        "Always",
        "echo run at $(date +%s); sleep 0.2; exit 1",
        "",
        "",
    ));
    server.wait_pod("twice", "restarted", T, |p| restarts(p) >= 1);
    let previous = server.cli_ok(&["logs", "twice", "--previous"]);
    assert!(previous.starts_with("run at "), "{previous}");
}

#[test]
fn agent_killed_and_restarted_readopts_the_running_container() {
    let node = "ct-readopt";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), node, &FAST_BACKOFF);
    server.apply(&container_pod(
        "steady",
        node,
        "Always",
        "echo started; exec sleep 3600",
        "",
        "",
    ));
    let pod = server.wait_pod("steady", "Running", T, |p| phase(p) == "Running");
    let label = format!("drover.io/pod-uid={}", uid(&pod));
    let before = engine_containers(&label);
    assert_eq!(before.len(), 1, "{before:?}");

    agent.restart(); // SIGKILL, then the same data directory
    server.wait_ready_status(node, "True", T);
    // The agent reports again, and nothing is duplicated or restarted while it settles.
    wait_for("the restarted agent's report", T, || {
        agent
            .proc
            .output()
            .contains("re-adopted container")
            .then_some(())
    });
    holds_for(
        "one running container, unchanged",
        Duration::from_secs(3),
        || engine_containers(&label) == before,
    );
    let after = server.pod("steady").unwrap();
    assert_eq!(phase(&after), "Running");
    assert_eq!(restarts(&after), 0, "{after}");
    assert_eq!(before[0].1, "running");

    // The adopted container is still supervised: its exit is seen and restarts it.
    let status = Command::new("docker")
        .args(["kill", &before[0].0])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    server.wait_pod("steady", "restarted after the kill", T, |p| {
        restarts(p) == 1 && phase(p) == "Running"
    });
}

#[test]
fn a_daemonset_of_a_container_image_runs_on_three_agents() {
    let nodes = ["ct-ds-a", "ct-ds-b", "ct-ds-c"];
    let _cleanup = EngineCleanup(nodes.iter().map(|n| n.to_string()).collect());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agents: Vec<Agent> = nodes
        .iter()
        .map(|n| server.join(dir.path(), n, &FAST_BACKOFF))
        .collect();
    server.apply(&format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: exporter
spec:
  selector:
    matchLabels: {{app: exporter}}
  template:
    metadata:
      labels: {{app: exporter}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: exporter
        image: {}
        command: [sh, -c, 'echo serving on $DROVER_NODE_NAME; exec sleep 3600']
",
        test_image()
    ));
    wait_for("a running container on every node", T, || {
        nodes
            .iter()
            .all(|n| {
                let running = engine_containers(&format!("drover.io/node={n}"));
                running.len() == 1 && running[0].1 == "running"
            })
            .then_some(())
    });
    wait_for("three Running pods", T, || {
        let pods = server.items("pods");
        (pods.len() == 3 && pods.iter().all(|p| phase(p) == "Running")).then_some(())
    });
    let pods = server.items("pods");
    let name = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let node = pods[0]["spec"]["nodeName"].as_str().unwrap().to_string();
    let logs = server.cli_ok(&["logs", &name]);
    assert_eq!(logs.trim(), format!("serving on {node}"));

    server.cli_ok(&["delete", "daemonset", "exporter"]);
    wait_for("every container removed", T, || {
        nodes
            .iter()
            .all(|n| engine_containers(&format!("drover.io/node={n}")).is_empty())
            .then_some(())
    });
}

#[test]
fn a_node_without_an_engine_says_so_and_still_runs_processes() {
    let node = "ct-no-engine";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let missing = dir.path().join("no-engine.sock");
    let _agent = server.join(
        dir.path(),
        node,
        &["--container-engine-socket", missing.to_str().unwrap()],
    );
    // The node registers without waiting for the engine; the verdict follows.
    let described = wait_for("the engine verdict", T, || {
        let text = server.cli_ok(&["describe", "node", node]);
        text.contains("ContainerEngineUnavailable").then_some(text)
    });
    assert!(described.contains("no-engine.sock"), "{described}");
    let registered = server.node(node).unwrap();
    assert_eq!(
        registered["status"]["nodeInfo"]["containerRuntimeVersion"], "",
        "{registered}"
    );
    let pod = |name: &str, class: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n{class}  containers:\n  - name: c\n    image: busybox:1\n    command: [sh, -c, 'exit 0']\n")
    };
    server.apply(&pod("imaged", ""));
    server.apply(&pod("as-process", "  runtimeClassName: process\n"));
    let imaged = server.wait_pod("imaged", "Failed", T, |p| phase(p) == "Failed");
    let terminated = &container(&imaged)["state"]["terminated"];
    assert_eq!(terminated["reason"], "ContainerCannotRun");
    assert!(
        terminated["message"]
            .as_str()
            .unwrap_or("")
            .contains("this node has no container engine"),
        "{terminated}"
    );
    server.wait_pod("as-process", "Succeeded", T, |p| phase(p) == "Succeeded");
}

/// The node's `drover.io/container-runtime` label, as the Kubernetes API shows it.
fn runtime_label(server: &Server, node: &str) -> Option<String> {
    let mut response = server
        .api_get(&format!("/api/v1/nodes/{node}"))
        .call()
        .ok()?;
    let node: Value = response.body_mut().read_json().ok()?;
    node["metadata"]["labels"]["drover.io/container-runtime"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn pods_with_images_are_placed_only_on_nodes_with_an_engine() {
    let (engine, none) = ("ct-place-engine", "ct-place-none");
    let _cleanup = EngineCleanup(vec![engine.into(), none.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let missing = dir.path().join("no-engine.sock");
    let _with = server.join(dir.path(), engine, &FAST_BACKOFF);
    let _without = server.join(
        dir.path(),
        none,
        &["--container-engine-socket", missing.to_str().unwrap()],
    );
    for (node, label) in [(engine, "docker"), (none, "none")] {
        wait_for(&format!("{node} labelled {label}"), T, || {
            (runtime_label(&server, node).as_deref() == Some(label)).then_some(())
        });
    }
    server.apply(&format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: engine-only
spec:
  selector:
    matchLabels: {{app: engine-only}}
  template:
    metadata:
      labels: {{app: engine-only}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        command: [sh, -c, 'exec sleep 3600']
",
        image = test_image()
    ));
    let out = server.cli_ok(&["rollout", "status", "ds/engine-only", "--timeout", "30s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let ds = &server.items("ds")[0];
    assert_eq!(ds["status"]["desiredNumberScheduled"], 1, "{ds}");
    assert_eq!(ds["status"]["numberAvailable"], 1, "{ds}");
    let pods = server.items("pods");
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["spec"]["nodeName"], engine);
    assert_eq!(phase(&pods[0]), "Running");
    assert_eq!(engine_containers(&format!("drover.io/node={none}")), vec![]);

    // The scheduler too: the engine node already runs a pod, so only the rule sends a new
    // pod there rather than to the idle node without an engine.
    server.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: unpinned}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {}\n    command: [sh, -c, 'exec sleep 3600']\n",
        test_image()
    ));
    let pod = server.wait_pod("unpinned", "Running", T, |p| phase(p) == "Running");
    assert_eq!(pod["spec"]["nodeName"], engine, "{pod}");
    holds_for(
        "no pod on the node without an engine",
        Duration::from_secs(1),
        || {
            server
                .items("pods")
                .iter()
                .all(|p| p["spec"]["nodeName"] != none)
        },
    );
}

#[test]
fn the_engine_is_shown_on_the_node() {
    let node = "ct-runtime";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &[]);
    let wide = wait_for("the engine on the node", T, || {
        let wide = server.cli_ok(&["get", "nodes", "-o", "wide"]);
        wide.lines()
            .any(|l| l.starts_with(node) && l.contains("docker://"))
            .then_some(wide)
    });
    let header = wide.lines().next().unwrap_or("");
    assert!(header.contains("CONTAINER-RUNTIME"), "{wide}");
}

#[test]
fn indexed_job_containers_are_named_after_their_index() {
    let node = "ct-indexed";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    server.apply(&format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: shard
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: {}
        command: [sh, -c, 'echo $JOB_COMPLETION_INDEX $(hostname)']
",
        test_image()
    ));
    let out = server.cli(&[
        "wait",
        "--for=condition=Complete",
        "job/shard",
        "--timeout=60s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = server
        .items("pods")
        .iter()
        .map(|p| {
            server
                .cli_ok(&["logs", p["metadata"]["name"].as_str().unwrap()])
                .trim()
                .to_string()
        })
        .collect();
    lines.sort();
    assert_eq!(lines, ["0 shard-0", "1 shard-1"]);
}

#[test]
fn a_hung_engine_does_not_hold_up_registration_or_process_pods() {
    let node = "ct-hung-engine";
    let dir = tempfile::tempdir().unwrap();
    // An "engine" that accepts connections and never answers.
    let socket = dir.path().join("hung.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let server = Server::start_alone(dir.path());
    let _agent = server.join(
        dir.path(),
        node,
        &["--container-engine-socket", socket.to_str().unwrap()],
    );
    server.apply(&process_pod("meanwhile", node, "Never", "echo fine", 5));
    let pod = server.wait_pod("meanwhile", "Succeeded", T, |p| phase(p) == "Succeeded");
    assert_eq!(container(&pod)["state"]["terminated"]["exitCode"], 0);
}

fn docker_exec(id: &str, command: &[&str]) {
    let status = Command::new("docker")
        .arg("exec")
        .arg(id)
        .args(command)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker exec {command:?}");
}

fn ready_condition(pod: &Value) -> &str {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

#[test]
fn probes_run_in_the_container_and_reach_it_at_its_own_address() {
    let node = "ct-probes";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    // httpd listens inside the container's own network namespace: only the container's
    // address reaches it. The liveness command runs through the engine's exec.
    let probes = "    livenessProbe:
      exec: {command: [test, -f, /tmp/alive]}
      periodSeconds: 1
      timeoutSeconds: 5
      failureThreshold: 3
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
      timeoutSeconds: 5
      failureThreshold: 1
";
    server.apply(&container_pod(
        "probed",
        node,
        "Always",
        "mkdir -p /www && echo ok > /www/index.html && touch /tmp/alive && exec httpd -f -p 8080 -h /www",
        probes,
        "",
    ));
    let pod = server.wait_pod("probed", "ready through its httpGet probe", T, |p| {
        ready_condition(p) == "True"
    });
    let label = format!("drover.io/pod-uid={}", uid(&pod));
    let first = engine_containers(&label);
    assert_eq!(first.len(), 1, "{first:?}");
    // The page goes: unready, and not restarted for it.
    docker_exec(&first[0].0, &["rm", "/www/index.html"]);
    let unready = server.wait_pod("probed", "unready", T, |p| ready_condition(p) == "False");
    assert_eq!(restarts(&unready), 0);
    // The liveness file goes: the container is stopped and a new one started.
    docker_exec(&first[0].0, &["rm", "/tmp/alive"]);
    let restarted = server.wait_pod("probed", "restarted and ready again", T, |p| {
        restarts(p) >= 1 && ready_condition(p) == "True"
    });
    assert_eq!(phase(&restarted), "Running");
    let now = engine_containers(&label);
    let running: Vec<&(String, String)> = now.iter().filter(|(_, s)| s == "running").collect();
    assert_eq!(running.len(), 1, "{now:?}");
    assert_ne!(running[0].0, first[0].0, "the same container still runs");
    let killing: Vec<Value> = server
        .items("events")
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == "probed" && e["reason"] == "Killing")
        .collect();
    assert!(
        killing
            .iter()
            .any(|e| e["message"] == "Container main failed liveness probe, will be restarted"),
        "{killing:?}"
    );
}

#[test]
fn a_memory_empty_dir_is_in_memory_shared_by_the_pod_and_gone_with_it() {
    let node = "ct-memory-dir";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &FAST_BACKOFF);
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: scratch
spec:
  nodeName: {node}
  restartPolicy: Never
  volumes: [{{name: cache, emptyDir: {{medium: Memory}}}}]
  initContainers:
  - name: fill
    image: {image}
    command: [sh, -c, 'echo from the init container > /cache/note']
    volumeMounts: [{{name: cache, mountPath: /cache}}]
  containers:
  - name: main
    image: {image}
    command: [sh, -c, 'grep \" /cache \" /proc/mounts | cut -d\" \" -f3; cat /cache/note']
    volumeMounts: [{{name: cache, mountPath: /cache}}]
",
        image = test_image()
    ));
    let pod = server.wait_pod("scratch", "Succeeded", T, |p| phase(p) == "Succeeded");
    let logs = server.cli_ok(&["logs", "scratch"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines, ["tmpfs", "from the init container"], "{logs}");
    let memory = std::path::Path::new("/dev/shm/drover").join(uid(&pod));
    assert!(memory.is_dir(), "the pod's memory directory exists");
    server.cli_ok(&["delete", "pod", "scratch"]);
    wait_for("the memory directory to go with the pod", T, || {
        (!memory.exists()).then_some(())
    });
}
