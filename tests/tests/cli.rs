//! The CLI contract end to end: apply, get, describe, delete, label, cordon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn server(dir: &Path) -> Server {
    let server = Server::start(dir, ServerOptions::default());
    server.wait_ready_status("server-node", "True", Duration::from_secs(10));
    server
}

#[test]
fn every_example_applies_and_reapplying_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let examples = examples();
    let out = server.cli_ok(&["apply", "-f", examples.to_str().unwrap()]);
    for line in [
        "cronjob.batch/hello created",
        "daemonset.apps/load-logger created",
        "daemonset.apps/httpd created",
        "job.batch/pi created",
        "pod/hello created",
    ] {
        assert!(out.contains(line), "{out}");
    }
    let again = server.cli_ok(&["apply", "-f", examples.to_str().unwrap()]);
    assert_eq!(again.matches("unchanged").count(), 5, "{again}");
    for kind in ["cronjobs", "cj"] {
        assert_eq!(server.items(kind).len(), 1, "{kind}");
    }
    // The every-minute CronJob may already have created a Job of its own, so
    // count only the Jobs nobody owns.
    for kind in ["jobs", "job"] {
        let unowned = server
            .items(kind)
            .into_iter()
            .filter(|job| job["metadata"]["ownerReferences"].is_null())
            .count();
        assert_eq!(unowned, 1, "{kind}");
    }
    for kind in ["daemonsets", "ds"] {
        assert_eq!(server.items(kind).len(), 2, "{kind}");
    }
    // The Job's pods are there too.
    for kind in ["pods", "po"] {
        assert!(
            server
                .items(kind)
                .iter()
                .any(|p| p["metadata"]["name"] == "hello"),
            "{kind}"
        );
    }
}

#[test]
fn a_spec_change_bumps_generation_and_a_label_change_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let file = dir.path().join("ds.yaml");
    let ds = std::fs::read_to_string(examples().join("daemonset-heartbeat-logger.yaml")).unwrap();
    std::fs::write(&file, &ds).unwrap();
    server.cli_ok(&["apply", "-f", file.to_str().unwrap()]);
    let first = server.items("ds")[0].clone();
    assert_eq!(first["metadata"]["generation"], 1);

    std::fs::write(&file, ds.replacen("app: load-logger", "app: renamed", 1)).unwrap();
    assert!(server
        .cli_ok(&["apply", "-f", file.to_str().unwrap()])
        .contains("daemonset.apps/load-logger configured"));
    let relabelled = server.items("ds")[0].clone();
    assert_eq!(relabelled["metadata"]["generation"], 1);
    assert_eq!(relabelled["metadata"]["labels"]["app"], "renamed");
    assert_ne!(
        relabelled["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );

    std::fs::write(&file, ds.replace("memory: 16Mi", "memory: 32Mi")).unwrap();
    server.cli_ok(&["apply", "-f", file.to_str().unwrap()]);
    let changed = server.items("ds")[0].clone();
    assert_eq!(changed["metadata"]["generation"], 2);
    assert_eq!(changed["metadata"]["uid"], first["metadata"]["uid"]);
}

#[test]
fn a_pods_spec_is_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let pod = std::fs::read_to_string(examples().join("pod-hello.yaml")).unwrap();
    server.apply(&pod);
    let file = dir.path().join("pod.yaml");
    std::fs::write(&file, pod.replace("value: hello", "value: bonjour")).unwrap();
    let out = server.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pod updates may not change fields other than metadata"),
        "{stderr}"
    );
}

#[test]
fn a_file_with_an_error_stores_nothing_and_names_field_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let good = std::fs::read_to_string(examples().join("pod-hello.yaml")).unwrap();
    let bad = good
        .replace("name: hello\n  labels", "name: second\n  labels")
        .replace("restartPolicy: OnFailure", "restartPolicy: Sometimes");
    let file = dir.path().join("two.yaml");
    std::fs::write(&file, format!("{good}---\n{bad}")).unwrap();
    let out = server.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line_of_policy = format!("{good}---\n{bad}")
        .lines()
        .position(|l| l.contains("Sometimes"))
        .unwrap()
        + 1;
    let expected =
        format!("two.yaml:{line_of_policy}:18: document 2 (Pod \"second\"): spec.restartPolicy:");
    assert!(
        stderr.contains(&expected),
        "expected {expected} in: {stderr}"
    );
    assert!(
        server.items("pods").is_empty(),
        "nothing may be stored from a file with an error"
    );
}

#[test]
fn unsupported_fields_kinds_and_bad_names_are_rejected_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    for (text, expected) in [
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n", "kind: unsupported kind \"Deployment\""),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: a, command: [x]}]}\n", "metadata.name: invalid name"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: a, command: [x], envFrom: []}]}\n", "spec.containers[0].envFrom: unknown field"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: a, command: x}]}\n", "spec.containers[0].command: invalid type"),
    ] {
        let mut child = std::process::Command::new(binary("drover"))
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr}");
        assert!(stderr.starts_with("error: -:"), "{stderr}");
    }
}

#[test]
fn json_output_is_kubernetes_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.cli_ok(&[
        "apply",
        "-f",
        examples().join("job-pi.yaml").to_str().unwrap(),
    ]);
    let list: Value = serde_json::from_str(&server.cli_ok(&["get", "jobs", "-o", "json"])).unwrap();
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let job = &list["items"][0];
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "generation",
    ] {
        assert!(
            !job["metadata"][field].is_null(),
            "metadata.{field} missing: {job}"
        );
    }
    assert_eq!(job["metadata"]["namespace"], "default");
    assert_eq!(job["spec"]["completions"], 8);
    let one: Value =
        serde_json::from_str(&server.cli_ok(&["get", "job", "pi", "-o", "json"])).unwrap();
    assert_eq!(one["metadata"]["uid"], job["metadata"]["uid"]);
    let node: Value =
        serde_json::from_str(&server.cli_ok(&["get", "no", "server-node", "-o", "json"])).unwrap();
    assert_eq!(node["kind"], "Node");
    assert!(node["metadata"]["namespace"].is_null());
    assert_eq!(node["status"]["conditions"][0]["type"], "Ready");
    let yaml = server.cli_ok(&["get", "job/pi", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Job\n") && yaml.contains("  completions: 8\n"),
        "{yaml}"
    );
}

#[test]
fn label_cordon_describe_and_selectors_on_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    assert!(server
        .cli_ok(&["label", "node", "server-node", "role=sensor"])
        .contains("labeled"));
    let out = server.cli(&["label", "node", "server-node", "role=gateway"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--overwrite"));
    server.cli_ok(&[
        "label",
        "node",
        "server-node",
        "role=gateway",
        "--overwrite",
    ]);
    assert!(server
        .cli_ok(&["get", "nodes", "-l", "role=gateway"])
        .contains("server-node"));
    assert!(!server
        .cli_ok(&["get", "nodes", "-l", "role=sensor"])
        .contains("server-node"));
    server.cli_ok(&["label", "node", "server-node", "role-"]);
    assert!(server.node("server-node").unwrap()["metadata"]["labels"]["role"].is_null());

    assert!(server
        .cli_ok(&["cordon", "server-node"])
        .contains("cordoned"));
    assert!(server
        .cli_ok(&["get", "nodes"])
        .contains("Ready,SchedulingDisabled"));
    assert_eq!(
        server.node("server-node").unwrap()["spec"]["unschedulable"],
        true
    );
    server.cli_ok(&["uncordon", "server-node"]);
    assert!(server.node("server-node").unwrap()["spec"]["unschedulable"].is_null());

    let described = server.cli_ok(&["describe", "node", "server-node"]);
    for text in [
        "Name:",
        "server-node",
        "Events:",
        "RegisteredNode",
        "NodeReady",
        "NodeNotSchedulable",
        "NodeSchedulable",
    ] {
        assert!(described.contains(text), "{text} missing in:\n{described}");
    }
}

#[test]
fn delete_by_name_by_file_and_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let examples = examples();
    server.cli_ok(&["apply", "-f", examples.to_str().unwrap()]);
    assert!(server
        .cli_ok(&["delete", "pod", "hello"])
        .contains("pod \"hello\" deleted"));
    wait_for("the pod to be gone", Duration::from_secs(10), || {
        server.pod("hello").is_none().then_some(())
    });
    let out = server.cli(&["delete", "pod", "hello"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pods \"hello\" not found"));
    server.cli_ok(&[
        "delete",
        "-f",
        examples.join("job-pi.yaml").to_str().unwrap(),
    ]);
    // The every-minute CronJob may have made a Job of its own meanwhile.
    assert!(server
        .items("jobs")
        .iter()
        .all(|job| !job["metadata"]["ownerReferences"].is_null()));
    assert_eq!(server.items("cronjobs").len(), 1);

    let agent = Agent::start(dir.path(), &server.broker, "leaver", &[]);
    server.wait_ready_status("leaver", "True", Duration::from_secs(10));
    server.cli_ok(&["delete", "node", "leaver"]);
    assert!(server.node("leaver").is_none());
    // Deleting a node revokes it: its connection is closed and its next one refused, so it
    // does not come back, not even after a restart.
    let mut agent = agent;
    wait_for(
        "the deleted node to be refused",
        Duration::from_secs(10),
        || {
            agent
                .proc
                .output()
                .contains("refused this node's credentials")
                .then_some(())
        },
    );
    agent.restart();
    wait_for(
        "the restarted agent to be refused",
        Duration::from_secs(10),
        || {
            agent
                .proc
                .output()
                .contains("refused this node's credentials")
                .then_some(())
        },
    );
    assert!(server.node("leaver").is_none());
    // Enrolled again with a new token, it is back.
    agent.proc.kill();
    std::fs::remove_file(agent.data_dir.join("credentials")).unwrap();
    let again = Broker {
        token: server.create_token(&["--uses", "1"]),
        ..server.broker.clone()
    };
    let _back = Agent::start(dir.path(), &again, "leaver", &[]);
    server.wait_ready_status("leaver", "True", Duration::from_secs(10));
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    for args in [
        vec!["get", "deployments"],
        vec!["get", "pod", "missing"],
        vec!["describe", "node", "nope"],
    ] {
        let out = server.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        // The server's refusals read as kubectl prints them; the CLI's own start `error: `.
        assert!(
            stderr.starts_with("error: ") || stderr.starts_with("Error from server (NotFound): "),
            "{stderr}"
        );
    }
    let unreachable = std::process::Command::new(binary("drover"))
        .args(["--server", "http://127.0.0.1:1", "get", "nodes"])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the drover server"));
}

#[test]
fn taint_rollout_create_from_cronjob_tokens_and_events_go_through_the_kubernetes_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let node = "server-node";
    assert!(server
        .cli_ok(&[
            "taint",
            "node",
            node,
            "gpu=yes:NoSchedule",
            "edge:PreferNoSchedule"
        ])
        .contains("tainted"));
    let taints = server.node(node).unwrap()["spec"]["taints"].clone();
    assert_eq!(taints.as_array().map(Vec::len), Some(2), "{taints}");
    assert!(server
        .cli_ok(&["taint", "node", node, "gpu-", "edge:PreferNoSchedule-"])
        .contains("untainted"));
    assert!(server.node(node).unwrap()["spec"]["taints"].is_null());
    let out = server.cli(&["taint", "node", node, "gpu-"]);
    assert!(!out.status.success());

    let examples = examples();
    server.cli_ok(&[
        "apply",
        "-f",
        examples
            .join("daemonset-heartbeat-logger.yaml")
            .to_str()
            .unwrap(),
    ]);
    let first = server.items("ds")[0].clone();
    assert!(server
        .cli_ok(&["rollout", "restart", "ds/load-logger"])
        .contains("restarted"));
    let restarted = server.items("ds")[0].clone();
    assert_eq!(restarted["metadata"]["generation"], 2);
    assert!(!restarted["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"]
        .is_null());
    // Re-applying the file keeps what `rollout restart` added: no second rollout.
    let daemonset_file = examples.join("daemonset-heartbeat-logger.yaml");
    let again = server.cli_ok(&["apply", "-f", daemonset_file.to_str().unwrap()]);
    assert_eq!(again, "daemonset.apps/load-logger unchanged\n");
    let reapplied = server.items("ds")[0].clone();
    assert_eq!(reapplied["metadata"]["generation"], 2);
    assert_eq!(reapplied["spec"]["template"], restarted["spec"]["template"]);
    wait_for("two revisions", Duration::from_secs(10), || {
        let history = server.cli_ok(&["rollout", "history", "ds/load-logger"]);
        (history
            .lines()
            .filter(|l| l.starts_with(['1', '2']))
            .count()
            == 2)
            .then_some(())
    });
    server.cli_ok(&["rollout", "undo", "ds/load-logger", "--to-revision", "1"]);
    let undone = server.items("ds")[0].clone();
    assert_eq!(undone["spec"]["template"], first["spec"]["template"]);

    server.cli_ok(&[
        "apply",
        "-f",
        examples.join("cronjob-hello.yaml").to_str().unwrap(),
    ]);
    assert!(server
        .cli_ok(&["create", "job", "hello-now", "--from=cronjob/hello"])
        .contains("job.batch/hello-now created"));
    let job = server
        .items("jobs")
        .into_iter()
        .find(|j| j["metadata"]["name"] == "hello-now")
        .unwrap();
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    server.cli_ok(&[
        "wait",
        "--for=condition=Complete",
        "job/hello-now",
        "--timeout",
        "30s",
    ]);
    let events = server.cli_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=hello-now",
    ]);
    assert!(events.contains("hello-now"), "{events}");

    // A manual run of a per-node CronJob is one pod per node, as its scheduled runs are.
    server.apply(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: sweep\n  annotations: {drover.io/per-node: \"true\"}\nspec:\n  schedule: \"0 0 1 1 *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            command: [\"true\"]\n",
    );
    server.cli_ok(&["create", "job", "sweep-now", "--from=cronjob/sweep"]);
    let sweep: Value =
        serde_json::from_str(&server.cli_ok(&["get", "job", "sweep-now", "-o", "json"])).unwrap();
    assert_eq!(
        sweep["metadata"]["annotations"]["drover.io/per-node-targets"],
        node
    );
    assert_eq!(sweep["spec"]["completions"], 1);

    let token = server.create_token(&["--ttl", "1h"]);
    let listed = server.cli_ok(&["token", "list"]);
    assert!(listed.lines().count() >= 2, "{listed}");
    assert!(
        !listed.contains(&token),
        "secrets are never listed: {listed}"
    );
}

/// `kubectl ARGS` against `server`, panicking with its stderr on failure.
fn kubectl_ok(server: &Server, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The finished pi Job of the examples and the name of one of its pods: objects that no
/// longer change between two reads.
fn finished_pi_job(server: &Server) -> String {
    server.cli_ok(&[
        "apply",
        "-f",
        examples().join("job-pi.yaml").to_str().unwrap(),
    ]);
    server.cli_ok(&[
        "wait",
        "--for=condition=Complete",
        "job/pi",
        "--timeout",
        "60s",
    ]);
    server
        .items("pods")
        .iter()
        .find_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .expect("a pod of the pi Job")
}

#[test]
fn get_o_yaml_quotes_what_kubectl_quotes_and_leaves_out_managed_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let pod = finished_pi_job(&server);
    for object in [format!("pod/{pod}"), "job/pi".to_string()] {
        let ours = server.cli_ok(&["get", &object, "-o", "yaml"]);
        let theirs = kubectl_ok(&server, &["get", &object, "-o", "yaml"]);
        assert!(
            ours.contains("  creationTimestamp: \"20"),
            "timestamps are quoted strings: {ours}"
        );
        assert!(!ours.contains("managedFields"), "{ours}");
        assert!(!theirs.contains("managedFields"), "{theirs}");
        // Every value kubectl double-quotes (timestamps, "True", resourceVersion) is
        // printed the same; IP addresses are the one known difference (docs/api.md).
        for line in theirs
            .lines()
            .filter(|l| l.contains(": \"") && !l.contains("IP: "))
        {
            assert!(
                ours.lines().any(|l| l == line),
                "kubectl prints {line:?}, drover:\n{ours}"
            );
        }
    }
    let with = server.cli_ok(&["get", "job/pi", "-o", "yaml", "--show-managed-fields"]);
    assert!(with.contains("  managedFields:\n"), "{with}");
}

#[test]
fn what_get_o_yaml_printed_applies_again_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let pod = finished_pi_job(&server);
    let file = dir.path().join("export.yaml");
    let apply = |text: &str| {
        std::fs::write(&file, text).unwrap();
        server.cli_ok(&["apply", "-f", file.to_str().unwrap()])
    };
    // A Job's pod carries ownerReferences, a Job managedFields and a generated selector.
    let exported = server.cli_ok(&["get", "pod", &pod, "-o", "yaml"]);
    assert!(exported.contains("ownerReferences:"), "{exported}");
    assert_eq!(apply(&exported), format!("pod/{pod} unchanged\n"));
    let exported = server.cli_ok(&["get", "job", "pi", "-o", "yaml", "--show-managed-fields"]);
    assert_eq!(apply(&exported), "job.batch/pi unchanged\n");
    // kubectl's export too, and whole listings (a v1 List).
    let exported = kubectl_ok(&server, &["get", "pod", &pod, "-o", "yaml"]);
    assert_eq!(apply(&exported), format!("pod/{pod} unchanged\n"));
    let listing = server.cli_ok(&["get", "pods", "-o", "yaml"]);
    let out = apply(&listing);
    assert_eq!(
        out.lines().filter(|l| l.ends_with(" unchanged")).count(),
        server.items("pods").len(),
        "{out}"
    );
    let out = apply(&kubectl_ok(&server, &["get", "jobs", "-o", "yaml"]));
    assert_eq!(out, "job.batch/pi unchanged\n");
    // Still the same objects: nothing was re-created.
    let after: Value =
        serde_json::from_str(&server.cli_ok(&["get", "pod", &pod, "-o", "json"])).unwrap();
    assert_eq!(after["metadata"]["ownerReferences"][0]["kind"], "Job");

    // Every other kind's export applies again too.
    apply(
        "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: exporter}
spec:
  selector: {matchLabels: {app: exporter}}
  template:
    metadata: {labels: {app: exporter}}
    spec:
      containers: [{name: main, command: [sleep, '3600']}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: main, command: ['true']}]
",
    );
    kubectl_ok(&server, &["create", "namespace", "exported"]);
    wait_for("the daemon pod", Duration::from_secs(10), || {
        server.items("pods").into_iter().find(|p| {
            p["metadata"]["labels"]["app"] == "exporter" && p["status"]["phase"] == "Running"
        })
    });
    for (kind, name, unchanged) in [
        (
            "daemonset",
            "exporter",
            "daemonset.apps/exporter unchanged\n",
        ),
        ("cronjob", "nightly", "cronjob.batch/nightly unchanged\n"),
    ] {
        let exported = server.cli_ok(&["get", kind, name, "-o", "yaml"]);
        assert_eq!(apply(&exported), unchanged, "{exported}");
        let exported = kubectl_ok(&server, &["get", kind, name, "-o", "yaml"]);
        assert_eq!(apply(&exported), unchanged, "{exported}");
    }
    // Namespaces and nodes are not kinds `drover apply` takes; kubectl applies their
    // exports again.
    for (kind, name) in [("namespace", "exported"), ("node", "server-node")] {
        let exported = kubectl_ok(&server, &["get", kind, name, "-o", "yaml"]);
        std::fs::write(&file, &exported).unwrap();
        let out = kubectl_ok(&server, &["apply", "-f", file.to_str().unwrap()]);
        assert!(
            out.contains(&format!("{kind}/{name} unchanged"))
                || out.contains(&format!("{kind}/{name} configured")),
            "{out}"
        );
    }
}

#[test]
fn version_prints_the_client_and_the_servers_git_version_as_kubectl_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let out = server.cli_ok(&["version"]);
    let theirs = kubectl_ok(&server, &["version"]);
    let server_line = theirs
        .lines()
        .find(|l| l.starts_with("Server Version: "))
        .expect("kubectl's Server Version line");
    assert_eq!(
        out,
        format!(
            "Client Version: v{}\n{server_line}\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    // The client's version needs no server; without one, `version` fails after it.
    let unreachable = |args: &[&str]| {
        std::process::Command::new(binary("drover"))
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args(["--server", "https://127.0.0.1:1"])
            .args(args)
            .output()
            .unwrap()
    };
    let client = unreachable(&["version", "--client"]);
    assert!(client.status.success());
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        format!("Client Version: v{}\n", env!("CARGO_PKG_VERSION"))
    );
    let down = unreachable(&["version"]);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stdout).starts_with("Client Version: "));
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach the drover server"));
}

#[test]
fn completion_scripts_are_valid_for_their_shell() {
    let script = |shell: &str| {
        let out = std::process::Command::new(binary("drover"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "completion {shell}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = script("bash");
    assert!(bash.contains("complete -F _drover"), "{bash}");
    // Every verb completes, the ones added last too.
    for verb in [
        "apply",
        "describe",
        "taint",
        "wait",
        "completion",
        "version",
    ] {
        assert!(
            bash.contains(&format!("drover,{verb})")),
            "no {verb} in the bash script"
        );
    }
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &bash])
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(script("zsh").starts_with("#compdef drover\n"));
    assert!(script("fish").contains("complete -c drover "));
    let bad = std::process::Command::new(binary("drover"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// `drover ARGS` and `kubectl ARGS` print the same text once `normal` has taken out what
/// may differ. Ages may tick between the two reads, so they are read again until the
/// deadline.
fn prints_as_kubectl(server: &Server, args: &[&str], normal: impl Fn(String) -> String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ours = normal(server.cli_ok(args));
        let theirs = normal(kubectl_ok(server, args));
        if ours == theirs {
            return;
        }
        if std::time::Instant::now() > deadline {
            assert_eq!(ours, theirs, "drover {args:?} (left) and kubectl's");
        }
    }
}

/// `drover describe ARGS` prints what `kubectl describe ARGS` prints. kubectl finds no
/// node Lease on a drover server where drover shows the heartbeat; those lines are left
/// out.
fn describes_as_kubectl(server: &Server, args: &[&str]) {
    let lease = [
        "Lease:",
        "  HolderIdentity:",
        "  AcquireTime:",
        "  RenewTime:",
    ];
    let mut command = vec!["describe"];
    command.extend_from_slice(args);
    prints_as_kubectl(server, &command, |text| {
        text.lines()
            .filter(|l| !lease.iter().any(|p| l.starts_with(p)))
            .map(|l| format!("{l}\n"))
            .collect()
    });
}

#[test]
fn describe_prints_what_kubectl_describe_prints() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let pi_pod = finished_pi_job(&server);
    for example in [
        "pod-hello.yaml",
        "daemonset-heartbeat-logger.yaml",
        "cronjob-hello.yaml",
    ] {
        server.cli_ok(&["apply", "-f", examples().join(example).to_str().unwrap()]);
    }
    wait_for("the hello pod to run", Duration::from_secs(20), || {
        server.pod("hello").filter(|p| phase(p) == "Running")
    });
    let described = server.cli_ok(&["describe", "pod", "hello"]);
    for header in [
        "Name:",
        "Namespace:",
        "Node:",
        "Start Time:",
        "Labels:",
        "Annotations:",
        "Status:",
        "IP:",
        "IPs:",
        "Containers:",
        "    Image:",
        "    State:",
        "    Ready:",
        "    Restart Count:",
        "Conditions:",
        "Volumes:",
        "Events:",
    ] {
        assert!(
            described.lines().any(|l| l.starts_with(header)),
            "{header} in {described}"
        );
    }
    assert_eq!(described.matches("Status:").count(), 1, "{described}");
    for object in [
        &["pod", "hello"][..],
        &["pod", &pi_pod],
        &["job", "pi"],
        &["ds", "load-logger"],
        &["cronjob", "hello"],
        &["node", "server-node"],
        &["namespace", "default"],
    ] {
        describes_as_kubectl(&server, object);
    }
    let controlled = server.cli_ok(&["describe", "pod", &pi_pod]);
    assert!(
        controlled.contains("\nControlled By:  Job/pi\n"),
        "{controlled}"
    );
}

#[test]
fn taint_says_what_kubectl_taint_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let node = "server-node";
    // Each step ends where the next begins; the sequence leaves the node untainted, so
    // drover and kubectl run it from the same start.
    let steps: &[&[&str]] = &[
        &["gpu=yes:NoSchedule"],
        &["gpu=no:NoSchedule"],
        &["gpu=no:NoSchedule", "--overwrite"],
        &["edge:PreferNoSchedule", "gpu-"],
        &["edge:PreferNoSchedule-"],
        &["gpu-"],
    ];
    let run = |kubectl: bool| -> Vec<(bool, String, String)> {
        steps
            .iter()
            .map(|step| {
                let mut args = vec!["taint", "node", node];
                args.extend_from_slice(step);
                let out = if kubectl {
                    server.kubectl(&args)
                } else {
                    server.cli(&args)
                };
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            })
            .collect()
    };
    let ours = run(false);
    assert!(server.node(node).unwrap()["spec"]["taints"].is_null());
    let theirs = run(true);
    for (step, (ours, theirs)) in steps.iter().zip(ours.iter().zip(&theirs)) {
        assert_eq!((ours.0, &ours.1), (theirs.0, &theirs.1), "taint {step:?}");
    }
    assert_eq!(ours[0].1, format!("node/{node} tainted\n"));
    assert_eq!(ours[4].1, format!("node/{node} untainted\n"));
    // The refusal is kubectl's word for word.
    assert_eq!(ours[1].2, theirs[1].2);
}

#[test]
fn lists_come_in_pages_joined_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let mut manifests = String::new();
    for i in 0..7 {
        manifests.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: paged-{i}, labels: {{set: paged}}}}\nspec:\n  nodeName: server-node\n  containers: [{{name: main, command: [sleep, '3600']}}]\n"
        ));
    }
    server.apply(&manifests);
    let get = |args: &[&str]| {
        let mut all = vec!["get", "pods", "-l", "set=paged"];
        all.extend_from_slice(args);
        server.cli_ok(&all)
    };
    let pod_lists = || -> u64 {
        server
            .metrics()
            .lines()
            .filter(|l| {
                l.starts_with("drover_api_requests_total{")
                    && l.contains("verb=\"list\"")
                    && l.contains("resource=\"pods\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    // Names and JSON: every object once, in order, from pages of 2 as from one answer.
    let before = pod_lists();
    let whole = get(&["-o", "name", "--chunk-size", "0"]);
    assert_eq!(whole.lines().count(), 7, "{whole}");
    assert_eq!(pod_lists() - before, 1);
    let before = pod_lists();
    assert_eq!(get(&["-o", "name", "--chunk-size", "2"]), whole);
    assert_eq!(pod_lists() - before, 4, "7 pods in pages of 2");
    assert_eq!(get(&["-o", "name"]), whole);
    let paged: Value = serde_json::from_str(&get(&["-o", "json", "--chunk-size", "3"])).unwrap();
    let names: Vec<&str> = paged["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        (0..7).map(|i| format!("paged-{i}")).collect::<Vec<_>>()
    );
    assert!(
        paged["metadata"].get("continue").is_none(),
        "{}",
        paged["metadata"]
    );
    // Tables: one header, every row, as kubectl prints them in pages.
    let table = get(&["--chunk-size", "2"]);
    assert_eq!(
        table.lines().filter(|l| l.starts_with("NAME")).count(),
        1,
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.starts_with("paged-")).count(),
        7,
        "{table}"
    );
    let names_of = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let theirs = kubectl_ok(
        &server,
        &["get", "pods", "-l", "set=paged", "--chunk-size", "2"],
    );
    assert_eq!(names_of(&table), names_of(&theirs));
    let all_kinds = server.cli_ok(&[
        "get",
        "pods,jobs",
        "-l",
        "set=paged",
        "--chunk-size",
        "2",
        "-o",
        "name",
    ]);
    assert_eq!(all_kinds, whole);
}

#[test]
fn get_jobs_cronjobs_and_daemonsets_print_kubectls_columns() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    // parallelism 1 and no completions: one pod must succeed, shown as kubectl shows it.
    server.apply(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\nspec:\n  parallelism: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        command: [\"true\"]\n",
    );
    for example in ["cronjob-hello.yaml", "daemonset-heartbeat-logger.yaml"] {
        server.cli_ok(&["apply", "-f", examples().join(example).to_str().unwrap()]);
    }
    server.cli_ok(&[
        "wait",
        "--for=condition=Complete",
        "job/once",
        "--timeout",
        "30s",
    ]);
    let jobs = server.cli_ok(&["get", "job", "once"]);
    let row = jobs.lines().nth(1).unwrap_or_default();
    assert!(
        row.split_whitespace().nth(2) == Some("1/1"),
        "COMPLETIONS 1/1: {jobs}"
    );
    let wide = server.cli_ok(&["get", "job", "once", "-o", "wide"]);
    assert!(
        wide.lines()
            .next()
            .is_some_and(|h| h.ends_with("CONTAINERS   IMAGES   SELECTOR")),
        "{wide}"
    );
    let cronjobs = server.cli_ok(&["get", "cronjobs"]);
    // The schedule has spaces: read the cell under the header.
    let at = cronjobs.find("SUSPEND").expect("a SUSPEND column");
    let row = cronjobs.lines().nth(1).unwrap_or_default();
    assert_eq!(row.get(at..at + 5), Some("False"), "{cronjobs}");
    for kind in ["jobs", "cronjobs", "daemonsets"] {
        prints_as_kubectl(&server, &["get", kind], |text| text);
        prints_as_kubectl(&server, &["get", kind, "-o", "wide"], |text| text);
    }
}

#[test]
fn waiting_for_complete_on_a_failed_job_fails_at_once_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.apply(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: doomed\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        command: [\"false\"]\n",
    );
    server.cli_ok(&[
        "wait",
        "--for=condition=Failed",
        "job/doomed",
        "--timeout",
        "30s",
    ]);
    let started = std::time::Instant::now();
    let out = server.cli(&[
        "wait",
        "--for=condition=Complete",
        "job/doomed",
        "--timeout",
        "300s",
    ]);
    // kubectl waits out its timeout here; drover knows the condition can no longer hold.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: job/doomed failed (BackoffLimitExceeded: Job has reached the specified backoff limit): the condition Complete will never be met\n"
    );
}

#[test]
fn get_of_several_kinds_prints_each_kinds_table_with_kind_prefixed_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let examples = examples();
    for file in ["pod-hello.yaml", "job-pi.yaml"] {
        server.cli_ok(&["apply", "-f", examples.join(file).to_str().unwrap()]);
    }
    let out = server.cli_ok(&["get", "pods,jobs"]);
    let groups: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(groups.len(), 2, "{out}");
    assert!(groups[0].starts_with("NAME "), "{out}");
    assert!(
        groups[0].lines().any(|l| l.starts_with("pod/hello ")),
        "{out}"
    );
    assert!(groups[1].starts_with("NAME "), "{out}");
    assert!(
        groups[1].lines().any(|l| l.starts_with("job.batch/pi ")),
        "{out}"
    );
    let names = server.cli_ok(&["get", "jobs,po", "-o", "name"]);
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(names[0], "job.batch/pi", "{names:?}");
    assert!(names.contains(&"pod/hello"), "{names:?}");
    let json: Value =
        serde_json::from_str(&server.cli_ok(&["get", "po,jobs", "-o", "json"])).unwrap();
    assert_eq!(json["kind"], "List");
    let kinds: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"Pod") && kinds.contains(&"Job"),
        "{kinds:?}"
    );
    let all = server.cli_ok(&["get", "all"]);
    assert!(
        all.contains("pod/hello") && all.contains("job.batch/pi"),
        "{all}"
    );
    // A name is looked up in every kind; the kinds without it are errors after the rest.
    let out = server.cli(&["get", "pods,jobs", "pi"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("job.batch/pi"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pods \"pi\" not found"), "{stderr}");
    let empty = server.cli(&["get", "ds,cronjobs"]);
    assert!(empty.status.success());
    assert_eq!(
        String::from_utf8_lossy(&empty.stderr),
        "No resources found in default namespace.\n"
    );
}

#[test]
fn apply_takes_over_what_an_older_drover_apply_wrote_so_removed_fields_go() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let ds = |env: &str| {
        format!(
            "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: old
spec:
  selector:
    matchLabels: {{app: old}}
  template:
    metadata:
      labels: {{app: old}}
    spec:
      containers:
      - name: main
        command: [sleep, '600']
        env:
        - {{name: KEEP, value: '1'}}
{env}"
        )
    };
    // Written as drover apply used to write it: a POST without a field manager.
    let written = ds("        - {name: DROP, value: '1'}\n");
    let mut body: Value = serde_yaml_like(&written);
    body["metadata"]["namespace"] = "default".into();
    server
        .api_post("/apis/apps/v1/namespaces/default/daemonsets")
        .send_json(&body)
        .expect("POST");
    let file = dir.path().join("ds.yaml");
    std::fs::write(&file, ds("")).unwrap();
    let out = server.cli_ok(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(out, "daemonset.apps/old configured\n");
    let stored = server.items("ds")[0].clone();
    let env = &stored["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &serde_json::json!([{"name": "KEEP", "value": "1"}]),
        "{stored}"
    );
    let again = server.cli_ok(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(again, "daemonset.apps/old unchanged\n");
}

/// The JSON of a one-document YAML manifest, through the CLI's own reading of it.
fn serde_yaml_like(text: &str) -> Value {
    let manifests = drover_proto::manifest::parse_manifests("x.yaml", text).unwrap();
    let manifest = &manifests[0];
    serde_json::json!({
        "apiVersion": manifest.kind().api_version(),
        "kind": manifest.kind().as_str(),
        "metadata": {"name": manifest.name()},
        "spec": manifest.spec_json(),
    })
}
