//! Pods on real agents: restart policies, back-off, stop, logs, offline autonomy, agent
//! restarts. Agents run with a scaled-down crash back-off.

use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

const FAST_BACKOFF: [&str; 4] = ["--crash-backoff-initial", "1s", "--crash-backoff-max", "4s"];

fn setup(dir: &std::path::Path) -> (Server, Agent) {
    let server = Server::start_alone(dir);
    let agent = server.join(dir, "worker", &FAST_BACKOFF);
    (server, agent)
}

/// A node object's `InternalIP` address.
fn internal_ip(node: &Value) -> String {
    node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .expect("an InternalIP address")
        .to_string()
}

fn restarts(pod: &Value) -> u64 {
    container(pod)["restartCount"].as_u64().unwrap_or(0)
}

#[test]
fn restart_policies_against_exit_codes_and_signals() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path());
    // `$$$$` reaches the shell as `$$` (its pid): `$$` is an escaped `$`, as in Kubernetes.
    let cases = [
        ("always-0", "Always", "exit 0"),
        ("always-3", "Always", "exit 3"),
        ("always-kill", "Always", "kill -9 $$$$"),
        ("onfailure-0", "OnFailure", "exit 0"),
        ("onfailure-3", "OnFailure", "exit 3"),
        ("onfailure-kill", "OnFailure", "kill -9 $$$$"),
        ("never-0", "Never", "exit 0"),
        ("never-3", "Never", "exit 3"),
        ("never-kill", "Never", "kill -9 $$$$"),
    ];
    let manifests: Vec<String> = cases
        .iter()
        .map(|(name, policy, script)| {
            process_pod(name, "worker", policy, &format!("sleep 0.2; {script}"), 30)
        })
        .collect();
    server.apply(&manifests.join("---\n"));
    let t = Duration::from_secs(15);
    for (name, _, _) in cases.iter().filter(|(_, policy, _)| *policy != "Never") {
        if *name == "onfailure-0" {
            continue;
        }
        let pod = server.wait_pod(name, "restarted", t, |p| restarts(p) >= 1);
        assert_eq!(phase(&pod), "Running", "{name}");
        let last = &container(&pod)["lastState"]["terminated"];
        let expected = match *name {
            "always-0" => 0,
            "always-3" | "onfailure-3" => 3,
            _ => 137,
        };
        assert_eq!(last["exitCode"], expected, "{name}: {pod}");
    }
    let done = server.wait_pod("onfailure-0", "Succeeded", t, |p| phase(p) == "Succeeded");
    assert_eq!(restarts(&done), 0);
    assert_eq!(
        container(&done)["state"]["terminated"]["reason"],
        "Completed"
    );
    let ok = server.wait_pod("never-0", "Succeeded", t, |p| phase(p) == "Succeeded");
    assert_eq!(container(&ok)["state"]["terminated"]["exitCode"], 0);
    let failed = server.wait_pod("never-3", "Failed", t, |p| phase(p) == "Failed");
    assert_eq!(container(&failed)["state"]["terminated"]["exitCode"], 3);
    assert_eq!(container(&failed)["state"]["terminated"]["reason"], "Error");
    let killed = server.wait_pod("never-kill", "Failed", t, |p| phase(p) == "Failed");
    assert_eq!(container(&killed)["state"]["terminated"]["exitCode"], 137);
    assert_eq!(container(&killed)["state"]["terminated"]["signal"], 9);
    let table = server.cli_ok(&["get", "pods"]);
    for (name, status) in [
        ("never-0", "Completed"),
        ("never-3", "Error"),
        ("onfailure-0", "Completed"),
    ] {
        let line = table.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(line.contains(status), "{line}");
    }
}

#[test]
fn a_crash_looping_pod_backs_off_with_growing_delays() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path());
    server.apply(&process_pod("crasher", "worker", "Always", "exit 1", 30));
    let mut seen: Vec<(u64, Instant)> = vec![];
    let mut saw_backoff = false;
    wait_for("five restarts", Duration::from_secs(30), || {
        let pod = server.pod("crasher")?;
        let n = restarts(&pod);
        if container(&pod)["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
            saw_backoff = true;
        }
        if seen.last().is_none_or(|(last, _)| n > *last) {
            seen.push((n, Instant::now()));
        }
        (n >= 5).then_some(())
    });
    assert!(saw_backoff, "CrashLoopBackOff was never shown");
    // Back-off 1 s doubling to 4 s: restarts 2..5 come after 1, 2, 4, 4 s.
    let gaps: Vec<f64> = seen
        .windows(2)
        .filter(|w| w[0].0 >= 1)
        .map(|w| (w[1].1 - w[0].1).as_secs_f64())
        .collect();
    assert!(gaps.len() >= 3, "{seen:?}");
    assert!(gaps[0] >= 0.8 && gaps[0] < 2.0, "{gaps:?}");
    assert!(gaps[1] >= 1.8 && gaps[1] < 3.0, "{gaps:?}");
    assert!(gaps[2] >= 3.8 && gaps[2] < 5.0, "{gaps:?}");
    let described = server.cli_ok(&["describe", "pod", "crasher"]);
    assert!(
        described.contains("BackOff") && described.contains("Started"),
        "{described}"
    );
}

#[test]
fn a_pod_that_ignores_sigterm_is_killed_after_its_grace_period_and_nothing_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path());
    let script = "trap '' TERM; sleep 300 & sleep 300 & while true; do sleep 1; done";
    server.apply(&process_pod("stubborn", "worker", "Always", script, 2));
    let pod = server.wait_pod("stubborn", "Running", Duration::from_secs(10), |p| {
        container(p)["ready"] == true
    });
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    wait_for("the pod's processes", Duration::from_secs(5), || {
        (pod_processes(&uid).len() >= 3).then_some(())
    });
    let started = Instant::now();
    server.cli_ok(&["delete", "pod", "stubborn"]);
    let terminating = server.cli_ok(&["get", "pods"]);
    assert!(terminating.contains("Terminating"), "{terminating}");
    wait_for("the pod to be gone", Duration::from_secs(10), || {
        server.pod("stubborn").is_none().then_some(())
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "deleted after {took:?}, before its grace period"
    );
    assert!(
        pod_processes(&uid).is_empty(),
        "processes survived: {:?}",
        pod_processes(&uid)
    );
}

#[test]
fn logs_tail_previous_and_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path());
    let script = "i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); sleep 0.05; done";
    server.apply(&process_pod("talker", "worker", "Always", script, 1));
    server.apply(&process_pod(
        "twice",
        "worker",
        "Always",
        "echo run at $(date +%s%N); exit 1",
        1,
    ));
    wait_for("output", Duration::from_secs(10), || {
        server
            .cli_ok(&["logs", "talker"])
            .contains("line 3")
            .then_some(())
    });
    let tail = server.cli_ok(&["logs", "talker", "--tail", "2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");

    assert_log_follow_streams(&server, "talker");

    server.wait_pod("twice", "restarted", Duration::from_secs(10), |p| {
        restarts(p) >= 1
    });
    let previous = server.cli_ok(&["logs", "twice", "--previous"]);
    assert!(previous.starts_with("run at "), "{previous}");
    let out = server.cli(&["logs", "talker", "-c", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("container nope is not valid"));
}

#[test]
fn a_command_that_does_not_exist_fails_with_a_reason_and_the_agent_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let (server, agent) = setup(dir.path());
    server.apply(
        &process_pod("typo", "worker", "Never", "true", 30)
            .replace("command: [sh, -c, \"true\"]", "command: [sleeep, \"1\"]"),
    );
    let pod = server.wait_pod("typo", "Failed", Duration::from_secs(10), |p| {
        phase(p) == "Failed"
    });
    let terminated = &container(&pod)["state"]["terminated"];
    assert_eq!(terminated["reason"], "ContainerCannotRun");
    assert!(
        terminated["message"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "{terminated}"
    );
    assert!(server
        .cli_ok(&["get", "pods"])
        .contains("ContainerCannotRun"));
    assert_eq!(server.ready_status("worker").as_deref(), Some("True"));
    let mut agent = agent;
    assert!(agent.proc.is_running(), "the agent exited");
}

#[test]
fn unplaceable_pods_stay_pending_until_a_node_fits() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path());
    server.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: picky}\nspec:\n  nodeSelector: {role: sensor}\n  containers:\n  - name: c\n    command: [sleep, '300']\n",
    );
    let pod = server.wait_pod("picky", "unschedulable", Duration::from_secs(5), |p| {
        p["status"]["conditions"][0]["reason"] == "Unschedulable"
    });
    assert_eq!(phase(&pod), "Pending");
    assert!(pod["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap()
        .contains("0/1 nodes are available"));
    server.cli_ok(&["label", "node", "worker", "role=sensor"]);
    let pod = server.wait_pod("picky", "running on worker", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    assert_eq!(pod["spec"]["nodeName"], "worker");
    let described = server.cli_ok(&["describe", "pod", "picky"]);
    assert!(
        described.contains("FailedScheduling") && described.contains("Scheduled"),
        "{described}"
    );
    let wide = server.cli_ok(&["get", "pods", "-o", "wide"]);
    assert!(
        wide.lines().next().unwrap().contains("NODE") && wide.contains("worker"),
        "{wide}"
    );
}

#[test]
fn the_downward_api_gives_a_process_pod_its_own_fields_and_expands_them_in_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agent) = setup(dir.path());
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: downward
  labels: {app: web}
  annotations: {team: edge}
spec:
  nodeName: worker
  containers:
  - name: main
    command: [sh, -c, 'echo "$0 pod=$POD ns=$NS uid=$UID node=$NODE app=$APP team=$TEAM host=$HOST ip=$IP sa=$SA mem=$MEM cpu=$CPU url=$URL"; sleep 3600', '$(POD)']
    resources:
      limits: {memory: 64Mi, cpu: 500m}
    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['team']"}}}
    - {name: HOST, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU, valueFrom: {resourceFieldRef: {containerName: main, resource: limits.cpu, divisor: 1m}}}
    - {name: URL, value: "http://$(POD).$(NS):8080"}
"#;
    // kubectl validates it against the served OpenAPI (--validate=strict by default).
    let file = dir.path().join("downward.yaml");
    std::fs::write(&file, manifest).unwrap();
    let out = server.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod = server.wait_pod("downward", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let node = server.node("worker").unwrap();
    let host = internal_ip(&node);
    let expected = format!(
        "downward pod=downward ns=default uid={uid} node=worker app=web team=edge host={host} ip={host} sa=default mem=64 cpu=500 url=http://downward.default:8080"
    );
    let logs = wait_for("the pod's line", Duration::from_secs(10), || {
        let logs = server.cli_ok(&["logs", "downward"]);
        (!logs.is_empty()).then_some(logs)
    });
    assert_eq!(logs.trim_end(), expected);
    // What the user wrote is what the API shows: the values are resolved for the node only.
    let stored = server.pod("downward").unwrap();
    let env = &stored["spec"]["containers"][0]["env"];
    assert_eq!(
        env[0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert!(
        env[0]["value"].as_str().unwrap_or_default().is_empty(),
        "{env}"
    );
    // A source Drover cannot serve is refused, naming the field.
    let refused = manifest.replace("name: downward", "name: refused").replace(
        "{fieldRef: {fieldPath: metadata.namespace}}",
        "{configMapKeyRef: {name: settings, key: ns}}",
    );
    std::fs::write(&file, refused).unwrap();
    let out = server.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("spec.containers[0].env[1].valueFrom.configMapKeyRef"),
        "{said}"
    );
}

#[test]
fn a_pod_that_needs_its_nodes_address_waits_for_the_node_to_register() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    // Bound to a node that has not joined yet: its address and capacity are not known.
    server.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: early}
spec:
  nodeName: late
  containers:
  - name: main
    command: [sh, -c, 'echo "host=$HOST cpus=$CPUS"; sleep 3600']
    env:
    - {name: HOST, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: CPUS, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
"#,
    );
    // The pod says why it waits.
    let waiting = wait_for("the pod's waiting event", Duration::from_secs(10), || {
        server
            .items("events")
            .into_iter()
            .find(|e| e["involvedObject"]["name"] == "early" && e["reason"] == "Failed")
    });
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not sent to its node") && message.contains("not known yet"),
        "{message}"
    );
    let _agent = server.join(dir.path(), "late", &FAST_BACKOFF);
    server.wait_pod("early", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    let node = server.node("late").unwrap();
    let host = internal_ip(&node);
    let cpus = node["status"]["capacity"]["cpu"]
        .as_str()
        .unwrap()
        .to_string();
    let logs = wait_for("the pod's line", Duration::from_secs(10), || {
        let logs = server.cli_ok(&["logs", "early"]);
        (!logs.is_empty()).then_some(logs)
    });
    assert_eq!(logs.trim_end(), format!("host={host} cpus={cpus}"));
}
