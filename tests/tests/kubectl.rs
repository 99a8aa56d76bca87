//! The real `kubectl` against a real server and agents: every command is checked by what it
//! prints and by what it did.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// Runs kubectl and returns stdout, failing the test with stderr if it fails.
fn kubectl(server: &Server, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl, expecting it to fail; returns stderr.
fn kubectl_fails(server: &Server, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const SLEEPER: &str = "apiVersion: v1
kind: Pod
metadata:
  name: sleeper
  labels:
    app: sleeper
    tier: edge
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    command: [sh, -c, 'echo first; echo second; echo third; exec sleep 3600']
";

fn wait_running(server: &Server, pod: &str) {
    wait_for(
        &format!("pod {pod} Running"),
        Duration::from_secs(20),
        || {
            let out = server.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]);
            (String::from_utf8_lossy(&out.stdout) == "Running").then_some(())
        },
    );
}

#[test]
fn version_api_resources_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let version = kubectl(&server, &["version", "-o", "json"]);
    let version = json(&version);
    assert_eq!(version["serverVersion"]["major"], "1", "{version}");
    assert!(
        version["serverVersion"]["gitVersion"]
            .as_str()
            .is_some_and(|v| v.contains("drover")),
        "{version}"
    );

    let resources = kubectl(&server, &["api-resources", "--no-headers"]);
    let names: Vec<&str> = resources
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for expected in [
        "pods",
        "nodes",
        "namespaces",
        "events",
        "jobs",
        "cronjobs",
        "daemonsets",
        "controllerrevisions",
    ] {
        assert!(names.contains(&expected), "{expected}: {resources}");
    }
    assert!(!names.contains(&"deployments"), "{resources}");
    let ds = resources
        .lines()
        .find(|l| l.starts_with("daemonsets"))
        .unwrap();
    assert!(
        ds.contains(" ds ") && ds.contains("apps/v1") && ds.contains("DaemonSet"),
        "{ds}"
    );

    let explained = kubectl(&server, &["explain", "job.spec.template"]);
    assert!(
        explained.contains("KIND:") && explained.contains("Job"),
        "{explained}"
    );
    assert!(explained.contains("spec"), "{explained}");
    let image = kubectl(&server, &["explain", "pod.spec.containers.image"]);
    assert!(image.contains("image"), "{image}");
}

#[test]
fn a_request_without_the_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let ca = server.data_dir.join("pki").join("ca.crt");
    // Without any credentials kubectl would prompt for a password; the raw request shows
    // what it would get.
    let mut anonymous = server
        .http_any_status()
        .get(format!("{}/api/v1/namespaces/default/pods", server.api))
        .call()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let status: Value = anonymous.body_mut().read_json().unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
    let wrong = Command::new("kubectl")
        .args([
            "--kubeconfig",
            "/dev/null",
            "--server",
            &server.api,
            "--certificate-authority",
            &ca.to_string_lossy(),
            "--token",
            "not-a-token",
            "get",
            "pods",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    // kubectl's wording for a 401.
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("the server has asked for the client to provide credentials"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&wrong.stdout).contains("sleeper"));
}

#[test]
fn apply_creates_then_is_unchanged_then_configures_and_server_side_apply_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let examples = examples();
    let out = kubectl(&server, &["apply", "-f", examples.to_str().unwrap()]);
    for line in [
        "cronjob.batch/hello created",
        "daemonset.apps/load-logger created",
        "daemonset.apps/httpd created",
        "job.batch/pi created",
        "pod/hello created",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    let again = kubectl(&server, &["apply", "-f", examples.to_str().unwrap()]);
    assert_eq!(again.matches("unchanged").count(), 5, "{again}");

    let ds = std::fs::read_to_string(examples.join("daemonset-heartbeat-logger.yaml")).unwrap();
    let changed = write(
        dir.path(),
        "ds.yaml",
        &ds.replace("memory: 16Mi", "memory: 32Mi"),
    );
    let out = kubectl(&server, &["apply", "-f", &changed]);
    assert!(
        out.contains("daemonset.apps/load-logger configured"),
        "{out}"
    );
    let stored = json(&kubectl(
        &server,
        &["get", "ds", "load-logger", "-o", "json"],
    ));
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "32Mi"
    );
    assert_eq!(stored["metadata"]["generation"], 2);

    let job = write(
        dir.path(),
        "ssa.yaml",
        "apiVersion: batch/v1
kind: Job
metadata:
  name: ssa
spec:
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: ['true']
",
    );
    let out = kubectl(&server, &["apply", "--server-side", "-f", &job]);
    assert!(out.contains("job.batch/ssa serverside-applied"), "{out}");
    let stored = json(&kubectl(
        &server,
        &["get", "job", "ssa", "-o", "json", "--show-managed-fields"],
    ));
    assert!(
        stored["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| m.iter().any(|e| e["manager"] == "kubectl")),
        "{stored}"
    );
    // Re-applying the same manifest changes nothing, not even the resourceVersion; another
    // manager changing a field kubectl applied is a conflict unless it forces.
    kubectl(&server, &["apply", "--server-side", "-f", &job]);
    let again = json(&kubectl(
        &server,
        &["get", "job", "ssa", "-o", "json", "--show-managed-fields"],
    ));
    assert_eq!(again["metadata"]["generation"], 1);
    assert_eq!(
        again["metadata"]["managedFields"], stored["metadata"]["managedFields"],
        "a no-op apply must not even touch its time"
    );
    let resumed = write(
        dir.path(),
        "resume.yaml",
        &std::fs::read_to_string(&job)
            .unwrap()
            .replace("suspend: true", "suspend: false"),
    );
    let conflict = kubectl_fails(
        &server,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "-f",
            &resumed,
        ],
    );
    assert!(
        conflict.contains("conflict") && conflict.contains(".spec.suspend"),
        "{conflict}"
    );
    kubectl(
        &server,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "--force-conflicts",
            "-f",
            &resumed,
        ],
    );
    let forced = json(&kubectl(&server, &["get", "job", "ssa", "-o", "json"]));
    assert_eq!(forced["spec"]["suspend"], false);
    // The defaults the API server applies are visible.
    for field in [
        "completions",
        "parallelism",
        "backoffLimit",
        "completionMode",
        "suspend",
    ] {
        assert!(!stored["spec"][field].is_null(), "{field}: {stored}");
    }

    // A manifest with an unknown field is refused by kubectl's default strict validation,
    // naming the field.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
  - name: main
    command: ['true']
    colour: blue
",
    );
    let err = kubectl_fails(&server, &["apply", "-f", &bad]);
    assert!(err.contains("colour"), "{err}");
    assert!(
        kubectl_fails(&server, &["get", "pod", "bad"]).contains("NotFound"),
        "the invalid pod must not be stored"
    );
}

#[test]
fn get_prints_what_kubectl_prints_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    kubectl(
        &server,
        &["apply", "-f", &write(dir.path(), "p.yaml", SLEEPER)],
    );
    wait_running(&server, "sleeper");

    let table = kubectl(&server, &["get", "pods"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("sleeper") && l.contains("1/1") && l.contains("Running")),
        "{table}"
    );

    let wide = kubectl(&server, &["get", "pods", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("NODE"), "{wide}");
    assert!(wide.contains("server-node"), "{wide}");

    let nodes = kubectl(&server, &["get", "nodes"]);
    let header: Vec<&str> = nodes.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{nodes}"
    );
    assert!(
        nodes.contains("server-node") && nodes.contains("Ready"),
        "{nodes}"
    );

    assert_eq!(
        kubectl(&server, &["get", "pods", "-o", "name"]).trim(),
        "pod/sleeper"
    );
    assert_eq!(
        kubectl(&server, &["get", "nodes", "-o", "name"]).trim(),
        "node/server-node"
    );
    let list = json(&kubectl(&server, &["get", "pods", "-o", "json"]));
    assert_eq!(list["items"][0]["metadata"]["name"], "sleeper");
    let yaml = kubectl(&server, &["get", "pod", "sleeper", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("name: sleeper"),
        "{yaml}"
    );
    assert_eq!(
        kubectl(
            &server,
            &["get", "pods", "-o", "jsonpath={.items[*].spec.nodeName}"]
        ),
        "server-node"
    );
    let custom = kubectl(
        &server,
        &[
            "get",
            "pods",
            "-o",
            "custom-columns=POD:.metadata.name,PHASE:.status.phase",
        ],
    );
    assert!(
        custom.contains("POD") && custom.contains("sleeper") && custom.contains("Running"),
        "{custom}"
    );

    let labels = kubectl(&server, &["get", "pods", "--show-labels"]);
    assert!(
        labels.contains("LABELS") && labels.contains("app=sleeper,tier=edge"),
        "{labels}"
    );
    assert!(
        kubectl(&server, &["get", "pods", "-l", "tier=edge", "-o", "name"]).contains("sleeper")
    );
    assert!(kubectl(&server, &["get", "pods", "-l", "tier!=edge", "-o", "name"]).is_empty());
    assert!(kubectl(
        &server,
        &[
            "get",
            "pods",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name"
        ]
    )
    .contains("sleeper"));
    assert!(kubectl(
        &server,
        &[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=elsewhere",
            "-o",
            "name"
        ]
    )
    .is_empty());
    let all = kubectl(&server, &["get", "pods", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    kubectl(
        &server,
        &["get", "pods", "--sort-by=.metadata.creationTimestamp"],
    );
    for kind in [
        "jobs",
        "cronjobs",
        "daemonsets",
        "events",
        "namespaces",
        "controllerrevisions",
    ] {
        kubectl(&server, &["get", kind, "-A"]);
    }
    let namespaces = kubectl(&server, &["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("namespace/default"), "{namespaces}");
}

#[test]
fn get_watch_follows_a_pod_through_its_whole_life() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let mut watch = server.kubectl_command(&[
        "get",
        "pods",
        "--watch",
        "--output-watch-events",
        "-o",
        "json",
    ]);
    let mut watch = watch
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl get -w");
    let stdout = watch.stdout.take().unwrap();
    let (events_tx, events) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        let reader = BufReader::new(stdout);
        let stream = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
        for event in stream.flatten() {
            if events_tx.send(event).is_err() {
                break;
            }
        }
    });
    let pod = write(
        dir.path(),
        "short.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: short
spec:
  restartPolicy: Never
  containers:
  - name: main
    command: [sh, -c, 'sleep 1']
",
    );
    kubectl(&server, &["apply", "-f", &pod]);
    wait_for("the pod to succeed", Duration::from_secs(20), || {
        let out = kubectl(
            &server,
            &["get", "pod", "short", "-o", "jsonpath={.status.phase}"],
        );
        (out == "Succeeded").then_some(())
    });
    kubectl(&server, &["delete", "pod", "short"]);
    let mut seen: Vec<(String, String)> = Vec::new();
    wait_for("a DELETED event", Duration::from_secs(20), || {
        while let Ok(event) = events.try_recv() {
            seen.push((
                event["type"].as_str().unwrap_or("").to_string(),
                event["object"]["status"]["phase"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        seen.iter().any(|(t, _)| t == "DELETED").then_some(())
    });
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(seen[0].0, "ADDED", "{seen:?}");
    for phase in ["Running", "Succeeded"] {
        assert!(
            seen.iter().any(|(t, p)| t == "MODIFIED" && p == phase),
            "{phase}: {seen:?}"
        );
    }
    // In order: the phases never go back.
    let order = |phase: &str| seen.iter().position(|(_, p)| p == phase);
    assert!(order("Running") < order("Succeeded"), "{seen:?}");
}

#[test]
fn get_events_watch_streams_new_events_as_they_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let spawn_watch = |extra: &[&str]| {
        let mut args = vec!["get", "events", "--watch"];
        args.extend_from_slice(extra);
        let mut child = server
            .kubectl_command(&args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("kubectl get events -w");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, lines)
    };
    let (mut json_watch, json_lines) = spawn_watch(&[
        "--output-watch-events",
        "-o",
        "json",
        "--field-selector",
        "involvedObject.name=watched",
    ]);
    let (mut table_watch, table_lines) = spawn_watch(&[]);
    let pod = write(
        dir.path(),
        "watched.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: watched
spec:
  containers:
  - name: main
    command: [sleep, '600']
",
    );
    kubectl(&server, &["apply", "-f", &pod]);
    wait_running(&server, "watched");
    let mut json_text = String::new();
    let events: Vec<Value> = wait_for("an event about the pod", Duration::from_secs(20), || {
        while let Ok(line) = json_lines.try_recv() {
            json_text.push_str(&line);
            json_text.push('\n');
        }
        let events: Vec<Value> = serde_json::Deserializer::from_str(&json_text)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .collect();
        events
            .iter()
            .any(|e| e["type"] == "ADDED" && e["object"]["kind"] == "Event")
            .then_some(events)
    });
    for event in &events {
        assert_eq!(
            event["object"]["involvedObject"]["name"], "watched",
            "only the selected object's events: {event}"
        );
    }
    let mut table = Vec::new();
    wait_for("a row about the pod", Duration::from_secs(20), || {
        while let Ok(line) = table_lines.try_recv() {
            table.push(line);
        }
        table
            .iter()
            .any(|l| l.contains("pod/watched"))
            .then_some(())
    });
    for child in [&mut json_watch, &mut table_watch] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn describe_shows_objects_with_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    kubectl(&server, &["apply", "-f", examples().to_str().unwrap()]);
    kubectl(
        &server,
        &["apply", "-f", &write(dir.path(), "p.yaml", SLEEPER)],
    );
    wait_running(&server, "sleeper");
    let pod = kubectl(&server, &["describe", "pod", "sleeper"]);
    for expected in [
        "Name:",
        "sleeper",
        "Node:",
        "server-node",
        "Status:",
        "Running",
        "Events:",
    ] {
        assert!(pod.contains(expected), "{expected}: {pod}");
    }
    let node = kubectl(&server, &["describe", "node", "server-node"]);
    assert!(
        node.contains("Name:") && node.contains("server-node"),
        "{node}"
    );
    assert!(node.contains("Events:"), "{node}");
    for (kind, name) in [("job", "pi"), ("ds", "load-logger"), ("cronjob", "hello")] {
        let text = kubectl(&server, &["describe", kind, name]);
        assert!(text.contains(name), "{kind}: {text}");
    }
    wait_for("the Job to complete", Duration::from_secs(60), || {
        let text = kubectl(&server, &["describe", "job", "pi"]);
        text.contains("Completed").then_some(())
    });
    let events = kubectl(&server, &["get", "events"]);
    assert!(
        events.lines().next().unwrap().contains("REASON"),
        "{events}"
    );
}

#[test]
fn logs_tail_container_follow_and_previous() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    kubectl(
        &server,
        &["apply", "-f", &write(dir.path(), "p.yaml", SLEEPER)],
    );
    wait_running(&server, "sleeper");
    wait_for("three lines of log", Duration::from_secs(10), || {
        let out = kubectl(&server, &["logs", "sleeper"]);
        (out == "first\nsecond\nthird\n").then_some(())
    });
    assert_eq!(
        kubectl(&server, &["logs", "sleeper", "--tail", "1"]),
        "third\n"
    );
    assert_eq!(
        kubectl(&server, &["logs", "sleeper", "-c", "main", "--tail", "2"]),
        "second\nthird\n"
    );
    let err = kubectl_fails(&server, &["logs", "sleeper", "-c", "nope"]);
    assert!(err.contains("nope"), "{err}");

    let counter = write(
        dir.path(),
        "counter.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: counter
spec:
  restartPolicy: Always
  containers:
  - name: main
    command: [sh, -c, 'i=0; while [ $i -lt 3 ]; do i=$((i+1)); echo line $i; sleep 0.2; done; exit 1']
",
    );
    kubectl(&server, &["apply", "-f", &counter]);
    wait_for("a restart", Duration::from_secs(30), || {
        let out = kubectl(
            &server,
            &[
                "get",
                "pod",
                "counter",
                "-o",
                "jsonpath={.status.containerStatuses[0].restartCount}",
            ],
        );
        (out.parse::<u32>().unwrap_or(0) >= 1).then_some(())
    });
    let previous = kubectl(&server, &["logs", "counter", "-p"]);
    assert!(previous.contains("line 3"), "{previous}");

    let mut follow = server
        .kubectl_command(&["logs", "-f", "sleeper"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn delete_by_name_file_label_and_cascade() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let file = write(dir.path(), "p.yaml", SLEEPER);
    kubectl(&server, &["apply", "-f", &file]);
    wait_running(&server, "sleeper");
    let out = kubectl(&server, &["delete", "pod", "sleeper"]);
    assert!(out.contains("pod \"sleeper\" deleted"), "{out}");
    assert!(kubectl_fails(&server, &["get", "pod", "sleeper"]).contains("NotFound"));

    kubectl(&server, &["apply", "-f", &file]);
    let out = kubectl(&server, &["delete", "-f", &file]);
    assert!(out.contains("pod \"sleeper\" deleted"), "{out}");

    kubectl(&server, &["apply", "-f", &file]);
    let out = kubectl(&server, &["delete", "pods", "-l", "app=sleeper"]);
    assert!(out.contains("pod \"sleeper\" deleted"), "{out}");
    assert!(kubectl(&server, &["get", "pods", "-o", "name"]).is_empty());

    let job = |name: &str| {
        format!(
            "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: [sh, -c, 'sleep 3600']
"
        )
    };
    kubectl(
        &server,
        &[
            "apply",
            "-f",
            &write(dir.path(), "orphan.yaml", &job("orphaned")),
        ],
    );
    let pod_of = |job: &str| {
        wait_for("the Job's pod", Duration::from_secs(20), || {
            let out = kubectl(
                &server,
                &[
                    "get",
                    "pods",
                    "-l",
                    &format!("job-name={job}"),
                    "-o",
                    "name",
                ],
            );
            (!out.is_empty()).then(|| out.trim().to_string())
        })
    };
    let pod = pod_of("orphaned");
    kubectl(&server, &["delete", "job", "orphaned", "--cascade=orphan"]);
    let left = json(&kubectl(&server, &["get", &pod, "-o", "json"]));
    assert!(left["metadata"]["ownerReferences"].is_null(), "{left}");
    kubectl(&server, &["delete", &pod, "--grace-period=1"]);

    kubectl(
        &server,
        &[
            "apply",
            "-f",
            &write(dir.path(), "fg.yaml", &job("foreground")),
        ],
    );
    let pod = pod_of("foreground");
    kubectl(
        &server,
        &["delete", "job", "foreground", "--cascade=foreground"],
    );
    assert!(kubectl_fails(&server, &["get", "job", "foreground"]).contains("NotFound"));
    assert!(kubectl_fails(&server, &["get", &pod]).contains("NotFound"));
}

#[test]
fn wait_for_complete_and_for_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    kubectl(
        &server,
        &[
            "apply",
            "-f",
            examples().join("job-pi.yaml").to_str().unwrap(),
        ],
    );
    let out = kubectl(
        &server,
        &[
            "wait",
            "--for=condition=Complete",
            "job/pi",
            "--timeout=60s",
        ],
    );
    assert!(out.contains("job.batch/pi condition met"), "{out}");
    kubectl(
        &server,
        &["apply", "-f", &write(dir.path(), "p.yaml", SLEEPER)],
    );
    wait_running(&server, "sleeper");
    let mut waiter = server
        .kubectl_command(&["wait", "--for=delete", "pod/sleeper", "--timeout=30s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    kubectl(&server, &["delete", "pod", "sleeper", "--wait=false"]);
    let status = waiter.wait().unwrap();
    assert!(status.success());
}

#[test]
fn rollout_status_history_undo_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let ds = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: beat
spec:
  selector:
    matchLabels:
      app: beat
  template:
    metadata:
      labels:
        app: beat
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        command: [sh, -c, 'echo v1; exec sleep 3600']
";
    let file = write(dir.path(), "ds.yaml", ds);
    kubectl(&server, &["apply", "-f", &file]);
    let out = kubectl(&server, &["rollout", "status", "ds/beat", "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    std::fs::write(&file, ds.replace("echo v1", "echo v2")).unwrap();
    kubectl(&server, &["apply", "-f", &file]);
    kubectl(&server, &["rollout", "status", "ds/beat", "--timeout=60s"]);
    let history = kubectl(&server, &["rollout", "history", "ds/beat"]);
    assert!(
        history.contains("REVISION") && history.contains('1') && history.contains('2'),
        "{history}"
    );
    let out = kubectl(&server, &["rollout", "undo", "ds/beat"]);
    assert!(out.contains("daemonset.apps/beat rolled back"), "{out}");
    let stored = json(&kubectl(&server, &["get", "ds", "beat", "-o", "json"]));
    let command = stored["spec"]["template"]["spec"]["containers"][0]["command"].to_string();
    assert!(command.contains("echo v1"), "{command}");
    let out = kubectl(&server, &["rollout", "restart", "ds/beat"]);
    assert!(out.contains("daemonset.apps/beat restarted"), "{out}");
    let stored = json(&kubectl(&server, &["get", "ds", "beat", "-o", "json"]));
    assert!(
        !stored["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null(),
        "{stored}"
    );
    kubectl(&server, &["rollout", "status", "ds/beat", "--timeout=60s"]);
}

#[test]
fn label_taint_cordon_uncordon_and_drain() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let _pi = server.join(dir.path(), "pi-1", &[]);
    let out = kubectl(&server, &["label", "node", "pi-1", "role=sensor"]);
    assert!(out.contains("node/pi-1 labeled"), "{out}");
    let node = json(&kubectl(&server, &["get", "node", "pi-1", "-o", "json"]));
    assert_eq!(node["metadata"]["labels"]["role"], "sensor");
    kubectl(&server, &["label", "node", "pi-1", "role-"]);
    let node = json(&kubectl(&server, &["get", "node", "pi-1", "-o", "json"]));
    assert!(node["metadata"]["labels"]["role"].is_null(), "{node}");

    let out = kubectl(
        &server,
        &["taint", "node", "pi-1", "dedicated=edge:NoSchedule"],
    );
    assert!(out.contains("node/pi-1 tainted"), "{out}");
    let node = json(&kubectl(&server, &["get", "node", "pi-1", "-o", "json"]));
    assert_eq!(node["spec"]["taints"][0]["key"], "dedicated");
    kubectl(
        &server,
        &["taint", "node", "pi-1", "dedicated=edge:NoSchedule-"],
    );
    let node = json(&kubectl(&server, &["get", "node", "pi-1", "-o", "json"]));
    assert!(
        node["spec"]["taints"]
            .as_array()
            .is_none_or(|t| t.is_empty()),
        "{node}"
    );

    assert!(kubectl(&server, &["cordon", "pi-1"]).contains("node/pi-1 cordoned"));
    let nodes = kubectl(&server, &["get", "nodes"]);
    assert!(nodes.contains("SchedulingDisabled"), "{nodes}");
    assert!(kubectl(&server, &["uncordon", "pi-1"]).contains("node/pi-1 uncordoned"));

    let ds = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: everywhere
spec:
  selector:
    matchLabels:
      app: everywhere
  template:
    metadata:
      labels:
        app: everywhere
    spec:
      containers:
      - name: main
        command: [sh, -c, 'exec sleep 3600']
";
    kubectl(&server, &["apply", "-f", &write(dir.path(), "ds.yaml", ds)]);
    let job = "apiVersion: batch/v1
kind: Job
metadata:
  name: pinned
spec:
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      nodeSelector:
        kubernetes.io/hostname: pi-1
      containers:
      - name: main
        command: [sh, -c, 'exec sleep 3600']
";
    kubectl(
        &server,
        &["apply", "-f", &write(dir.path(), "job.yaml", job)],
    );
    wait_for("the Job's pod on pi-1", Duration::from_secs(20), || {
        let out = kubectl(
            &server,
            &[
                "get",
                "pods",
                "-l",
                "job-name=pinned",
                "--field-selector",
                "status.phase=Running",
                "-o",
                "name",
            ],
        );
        (!out.is_empty()).then_some(())
    });
    let out = kubectl(
        &server,
        &["drain", "pi-1", "--ignore-daemonsets", "--timeout=60s"],
    );
    assert!(out.contains("node/pi-1 drained"), "{out}");
    let on_pi = kubectl(
        &server,
        &[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=pi-1",
            "-o",
            "name",
        ],
    );
    assert!(!on_pi.contains("pinned"), "{on_pi}");
    assert!(kubectl(&server, &["get", "nodes"]).contains("SchedulingDisabled"));
}

#[test]
fn a_cronjob_schedule_or_time_zone_the_controller_cannot_run_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let cronjob = |schedule: &str| {
        format!(
            "apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: '{schedule}'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            command: ['true']
"
        )
    };
    let bad = write(dir.path(), "bad.yaml", &cronjob("61 * * * *"));
    let err = kubectl_fails(&server, &["apply", "-f", &bad]);
    assert!(
        err.contains("is invalid: spec.schedule: Invalid value: \"61 * * * *\""),
        "{err}"
    );
    let good = write(dir.path(), "good.yaml", &cronjob("0 * * * *"));
    kubectl(&server, &["apply", "-f", &good]);
    let err = kubectl_fails(
        &server,
        &[
            "patch",
            "cronjob",
            "tick",
            "--type=merge",
            "-p",
            r#"{"spec":{"timeZone":"Mars/Base"}}"#,
        ],
    );
    assert!(
        err.contains(
            "is invalid: spec.timeZone: Invalid value: \"Mars/Base\": unknown time zone Mars/Base"
        ),
        "{err}"
    );
    let stored = json(&kubectl(&server, &["get", "cronjob", "tick", "-o", "json"]));
    assert!(stored["spec"]["timeZone"].is_null(), "nothing was stored");
}

#[test]
fn create_job_from_cronjob() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    kubectl(
        &server,
        &[
            "apply",
            "-f",
            examples().join("cronjob-hello.yaml").to_str().unwrap(),
        ],
    );
    let out = kubectl(
        &server,
        &["create", "job", "hello-now", "--from=cronjob/hello"],
    );
    assert!(out.contains("job.batch/hello-now created"), "{out}");
    let job = json(&kubectl(
        &server,
        &["get", "job", "hello-now", "-o", "json"],
    ));
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    kubectl(
        &server,
        &[
            "wait",
            "--for=condition=Complete",
            "job/hello-now",
            "--timeout=60s",
        ],
    );
}

#[test]
fn the_python_kubernetes_client_lists_pods_and_watches_a_job_to_completion() {
    let Some(python) = kubernetes_python() else {
        panic!("the Python kubernetes client is not installed (scripts/test installs it)");
    };
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    kubectl(
        &server,
        &["apply", "-f", &write(dir.path(), "p.yaml", SLEEPER)],
    );
    let script = r#"
import sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
names = [p.metadata.name for p in core.list_namespaced_pod("default").items]
print("pods:", ",".join(names))
batch = client.BatchV1Api()
job = client.V1Job(
    metadata=client.V1ObjectMeta(name="from-python"),
    spec=client.V1JobSpec(
        completions=2,
        template=client.V1PodTemplateSpec(
            spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[client.V1Container(name="main", command=["true"])],
            )
        ),
    ),
)
batch.create_namespaced_job("default", job)
w = watch.Watch()
for event in w.stream(batch.list_namespaced_job, "default", field_selector="metadata.name=from-python", timeout_seconds=60):
    status = event["object"].status
    if status.succeeded == 2:
        print("complete:", event["type"])
        w.stop()
"#;
    let script_path = write(dir.path(), "client.py", script);
    let out = Command::new(python)
        .arg(&script_path)
        .arg(server.kubeconfig())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pods: sleeper"), "{stdout}");
    assert!(stdout.contains("complete: MODIFIED"), "{stdout}");
}

/// The Python interpreter with the `kubernetes` package: `DROVER_PYTHON`, or `python3`.
fn kubernetes_python() -> Option<String> {
    let python = std::env::var("DROVER_PYTHON").unwrap_or_else(|_| "python3".into());
    Command::new(&python)
        .args(["-c", "import kubernetes"])
        .status()
        .ok()?
        .success()
        .then_some(python)
}

/// A Job as found in the wild: a template with a name, and fields Drover has nothing to do
/// with.
const JOB_FROM_THE_WILD: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: wild
spec:
  completions: 8
  parallelism: 2
  template:
    metadata:
      name: wild
    spec:
      serviceAccountName: batch-runner
      dnsPolicy: ClusterFirstWithHostNet
      restartPolicy: Never
      containers:
      - name: main
        command: [sh, -c, 'echo done']
        terminationMessagePolicy: FallbackToLogsOnError
";

#[test]
fn fields_drover_ignores_are_applied_with_a_warning_by_kubectl_and_drover() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let file = write(dir.path(), "wild.yaml", JOB_FROM_THE_WILD);
    let out = server.kubectl(&["apply", "-f", &file]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for warning in [
        "Warning: spec.template.metadata.name: ignored: pods are named by their controller",
        "Warning: spec.template.spec.serviceAccountName: ignored: Drover has no service accounts",
        "Warning: spec.template.spec.dnsPolicy: ignored: Drover does not manage pod DNS",
        "Warning: spec.template.spec.containers[0].terminationMessagePolicy: ignored:",
    ] {
        assert!(stderr.contains(warning), "{warning}: {stderr}");
    }
    wait_for("8 completions", Duration::from_secs(60), || {
        let succeeded = kubectl(
            &server,
            &["get", "job", "wild", "-o", "jsonpath={.status.succeeded}"],
        );
        (succeeded == "8").then_some(())
    });
    // Stored as written: re-applying changes nothing.
    let again = server.kubectl(&["apply", "-f", &file]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("job.batch/wild unchanged"),
        "{again:?}"
    );
    // drover apply names file, line and column.
    let renamed = write(
        dir.path(),
        "wild2.yaml",
        &JOB_FROM_THE_WILD.replace(
            "name: wild\nspec:\n  completions",
            "name: wild2\nspec:\n  completions",
        ),
    );
    let out = server.cli(&["apply", "-f", &renamed]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "Warning: {renamed}:10:13: document 1 (Job \"wild2\"): spec.template.metadata.name: ignored:"
        )),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("job.batch/wild2 created"));
}
