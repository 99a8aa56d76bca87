//! DaemonSets on real agents: membership, node removal, relabelling and a rolling update
//! watched continuously.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

fn daemonset(script: &str, max_unavailable: u32, min_ready_seconds: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: probe
spec:
  minReadySeconds: {min_ready_seconds}
  selector:
    matchLabels: {{app: probe}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: {max_unavailable}}}
  template:
    metadata:
      labels: {{app: probe}}
    spec:
      nodeSelector: {{role: sensor}}
      terminationGracePeriodSeconds: 1
      containers:
      - name: probe
        command: [sh, -c, {script:?}]
"
    )
}

fn pods_by_node(server: &Server) -> BTreeMap<String, Vec<Value>> {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for pod in server.items("pods") {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        map.entry(node).or_default().push(pod);
    }
    map
}

fn ready_pod(snapshot: &BTreeMap<String, Vec<Value>>, node: &str) -> Option<Value> {
    snapshot
        .get(node)?
        .iter()
        .find(|p| {
            phase(p) == "Running"
                && container(p)["ready"] == true
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .cloned()
}

fn running_on(server: &Server, node: &str) -> Option<Value> {
    ready_pod(&pods_by_node(server), node)
}

fn sensors(server: &Server, dir: &std::path::Path, names: &[&str]) -> Vec<Agent> {
    let agents: Vec<Agent> = names
        .iter()
        .map(|n| Agent::start(dir, &server.broker, n, &["--label", "role=sensor"]))
        .collect();
    for n in names {
        server.wait_ready_status(n, "True", Duration::from_secs(10));
    }
    agents
}

#[test]
fn one_pod_per_node_following_membership() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let _agents = sensors(&server, dir.path(), &["s1", "s2", "s3"]);
    server.apply(&daemonset("while true; do sleep 1; done", 1, 0));
    for node in ["s1", "s2", "s3"] {
        wait_for(&format!("probe on {node}"), Duration::from_secs(10), || {
            running_on(&server, node)
        });
    }
    let ds = server.items("ds")[0].clone();
    wait_for("status", Duration::from_secs(5), || {
        let ds = &server.items("ds")[0];
        (ds["status"]["numberReady"] == 3).then_some(())
    });
    assert_eq!(ds["status"]["desiredNumberScheduled"], 3);

    // A fourth device joins: its pod runs within a second of its registration.
    let _fourth = Agent::start(
        dir.path(),
        &server.broker,
        "s4",
        &["--label", "role=sensor"],
    );
    server.wait_ready_status("s4", "True", Duration::from_secs(10));
    let registered = Instant::now();
    let pod = wait_for("probe on s4", Duration::from_secs(5), || {
        running_on(&server, "s4")
    });
    let took = registered.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "pod ran {took:?} after registration"
    );
    let labels = &pod["metadata"]["labels"];
    assert!(labels["controller-revision-hash"].is_string(), "{pod}");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);

    // Deleting a node takes its pod off the device.
    let s2_uid = running_on(&server, "s2").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!pod_processes(&s2_uid).is_empty());
    server.cli_ok(&["delete", "node", "s2"]);
    wait_for(
        "the s2 pod's processes to stop",
        Duration::from_secs(10),
        || pod_processes(&s2_uid).is_empty().then_some(()),
    );
    wait_for("no pod bound to s2", Duration::from_secs(5), || {
        (!pods_by_node(&server).contains_key("s2")).then_some(())
    });

    // Relabelled out of the selector: the pod goes.
    let s3_uid = running_on(&server, "s3").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    server.cli_ok(&["label", "node", "s3", "role=gateway", "--overwrite"]);
    wait_for("the s3 pod to go", Duration::from_secs(10), || {
        (pod_processes(&s3_uid).is_empty() && !pods_by_node(&server).contains_key("s3"))
            .then_some(())
    });
    wait_for("desired 2", Duration::from_secs(5), || {
        (server.items("ds")[0]["status"]["desiredNumberScheduled"] == 2).then_some(())
    });

    // Deleting the DaemonSet removes its pods everywhere.
    server.cli_ok(&["delete", "ds", "probe"]);
    wait_for("every pod to go", Duration::from_secs(10), || {
        server.items("pods").is_empty().then_some(())
    });
}

#[test]
fn a_rolling_update_never_exceeds_max_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let names = ["r1", "r2", "r3", "r4", "r5"];
    let _agents = sensors(&server, dir.path(), &names);
    server.apply(&daemonset("while true; do sleep 1; done", 1, 1));
    wait_for(
        "the first revision everywhere",
        Duration::from_secs(15),
        || {
            names
                .iter()
                .all(|n| running_on(&server, n).is_some())
                .then_some(())
        },
    );
    // Available everywhere first (ready for minReadySeconds): an unavailable old pod would
    // be replaced at once, whatever maxUnavailable says.
    wait_for(
        "the first revision available everywhere",
        Duration::from_secs(15),
        || (server.items("ds")[0]["status"]["numberAvailable"] == 5).then_some(()),
    );
    let old_hash = running_on(&server, "r1").unwrap()["metadata"]["labels"]
        ["controller-revision-hash"]
        .clone();

    // minReadySeconds makes each node's turn last a second, so the rollout can be watched.
    server.apply(&daemonset("while true; do sleep 2; done", 1, 1));
    let mut partial_observations = 0;
    let mut worst_status = 0;
    let mut worst_pods = 0;
    wait_for(
        "every node on the new revision",
        Duration::from_secs(60),
        || {
            let ds = server.items("ds")[0].clone();
            let unavailable = ds["status"]["desiredNumberScheduled"].as_i64().unwrap()
                - ds["status"]["numberAvailable"].as_i64().unwrap();
            worst_status = worst_status.max(unavailable);
            let updated = ds["status"]["updatedNumberScheduled"].as_i64().unwrap();
            if (1..5).contains(&updated) {
                partial_observations += 1;
            }
            assert!(
                unavailable <= 1,
                "status shows {unavailable} unavailable: {ds}"
            );
            // One consistent view of the pods per observation.
            let snapshot = pods_by_node(&server);
            let unready = names
                .iter()
                .filter(|n| ready_pod(&snapshot, n).is_none())
                .count();
            worst_pods = worst_pods.max(unready);
            assert!(
                unready <= 1,
                "{unready} nodes without a ready pod: {snapshot:?}"
            );
            let done = names.iter().all(|n| {
                ready_pod(&snapshot, n).is_some_and(|p| {
                    p["metadata"]["labels"]["controller-revision-hash"] != old_hash
                })
            }) && ds["status"]["updatedNumberScheduled"] == 5
                && ds["status"]["numberAvailable"] == 5;
            done.then_some(())
        },
    );
    assert!(worst_pods <= 1);
    assert!(
        partial_observations >= 3,
        "the rollout was hardly observed: {partial_observations}"
    );
    assert_eq!(server.items("pods").len(), 5);
    let out = server.cli_ok(&["rollout", "status", "ds/probe", "--timeout", "10s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let history = server.cli_ok(&["rollout", "history", "ds/probe"]);
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );
}

#[test]
fn a_no_schedule_taint_keeps_the_running_daemon_pod_and_places_no_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ServerOptions::default());
    server.wait_ready_status("server-node", "True", Duration::from_secs(10));
    server.apply(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: keeper
spec:
  selector:
    matchLabels: {app: keeper}
  template:
    metadata:
      labels: {app: keeper}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        command: [sleep, '600']
",
    );
    let name = |p: &Value| p["metadata"]["name"].as_str().unwrap_or("").to_string();
    let first = wait_for("the daemon pod", Duration::from_secs(20), || {
        running_on(&server, "server-node")
    });
    let kubectl_ok = |args: &[&str]| {
        let out = server.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    kubectl_ok(&["taint", "node", "server-node", "dedicated=x:NoSchedule"]);
    wait_for(
        "the DaemonSet to see the taint",
        Duration::from_secs(10),
        || {
            let out = server.cli_ok(&["get", "ds", "keeper", "-o", "json"]);
            let ds: Value = serde_json::from_str(&out).unwrap();
            (ds["status"]["desiredNumberScheduled"] == 0).then_some(())
        },
    );
    holds_for("the running pod stays", Duration::from_secs(3), || {
        running_on(&server, "server-node").is_some_and(|p| name(&p) == name(&first))
    });
    kubectl_ok(&["delete", "pod", &name(&first), "--wait=false"]);
    wait_for("the pod to go", Duration::from_secs(20), || {
        server.pod(&name(&first)).is_none().then_some(())
    });
    holds_for(
        "no new pod on the tainted node",
        Duration::from_secs(3),
        || {
            pods_by_node(&server)
                .get("server-node")
                .is_none_or(Vec::is_empty)
        },
    );
    kubectl_ok(&["taint", "node", "server-node", "dedicated=x:NoSchedule-"]);
    wait_for(
        "a pod once the taint is gone",
        Duration::from_secs(20),
        || running_on(&server, "server-node"),
    );
}

#[test]
fn a_rollout_whose_new_pods_never_become_ready_stops_at_max_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let names = ["u1", "u2", "u3"];
    let _agents = sensors(&server, dir.path(), &names);
    let with_readiness = |check: &str| {
        daemonset("while true; do sleep 1; done", 1, 0).replace(
            "        command: [sh, -c, \"while true; do sleep 1; done\"]\n",
            &format!(
                "        command: [sh, -c, \"while true; do sleep 1; done\"]\n        readinessProbe:\n          exec: {{command: ['{check}']}}\n          periodSeconds: 1\n          timeoutSeconds: 5\n          failureThreshold: 3\n"
            ),
        )
    };
    let first = with_readiness("true");
    assert!(first.contains("readinessProbe"), "{first}");
    server.apply(&first);
    wait_for(
        "the first revision available",
        Duration::from_secs(20),
        || (server.items("ds")[0]["status"]["numberAvailable"] == 3).then_some(()),
    );
    let old_hash = running_on(&server, "u1").unwrap()["metadata"]["labels"]
        ["controller-revision-hash"]
        .clone();
    server.apply(&with_readiness("false"));
    // One node takes the new revision, whose pod runs and is never ready.
    let new_pod = wait_for(
        "one pod of the new revision",
        Duration::from_secs(20),
        || {
            server.items("pods").into_iter().find(|p| {
                p["metadata"]["labels"]["controller-revision-hash"] != old_hash
                    && phase(p) == "Running"
            })
        },
    );
    let updated_node = new_pod["spec"]["nodeName"].as_str().unwrap().to_string();
    wait_for("the status to count it", Duration::from_secs(20), || {
        let ds = &server.items("ds")[0];
        (ds["status"]["updatedNumberScheduled"] == 1 && ds["status"]["numberAvailable"] == 2)
            .then_some(())
    });
    holds_for(
        "the rollout to stay stopped at maxUnavailable",
        Duration::from_secs(5),
        || {
            let snapshot = pods_by_node(&server);
            let ds = &server.items("ds")[0];
            let old_everywhere_else = names.iter().filter(|n| **n != updated_node).all(|n| {
                ready_pod(&snapshot, n).is_some_and(|p| {
                    p["metadata"]["labels"]["controller-revision-hash"] == old_hash
                })
            });
            old_everywhere_else
                && ready_pod(&snapshot, &updated_node).is_none()
                && ds["status"]["updatedNumberScheduled"] == 1
                && ds["status"]["numberAvailable"] == 2
        },
    );
    let out = server.cli(&["rollout", "status", "ds/probe", "--timeout", "2s"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("1 out of 3 new pods have been updated"),
        "{text}"
    );
}
