//! The Kubernetes API end to end: raw HTTP for shapes and status codes, and the real
//! `kubectl` against `drover server`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use drover_e2e::*;
use serde_json::{json, Value};

fn server(dir: &Path) -> Server {
    let server = Server::start(dir, ServerOptions::default());
    server.wait_ready_status("server-node", "True", Duration::from_secs(10));
    server
}

/// A request whose 4xx/5xx answers are returned, not raised: (status, body as JSON).
fn call(
    server: &Server,
    method: &str,
    url: &str,
    content_type: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let agent = server.http_any_status();
    let auth = format!("Bearer {}", server.token());
    let response = match (method, body) {
        ("GET", _) => agent.get(url).header("Authorization", &auth).call(),
        ("DELETE", _) => agent.delete(url).header("Authorization", &auth).call(),
        ("POST", Some(b)) => agent
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", content_type)
            .send(b.as_bytes()),
        ("PUT", Some(b)) => agent
            .put(url)
            .header("Authorization", &auth)
            .header("Content-Type", content_type)
            .send(b.as_bytes()),
        ("PATCH", Some(b)) => agent
            .patch(url)
            .header("Authorization", &auth)
            .header("Content-Type", content_type)
            .send(b.as_bytes()),
        other => panic!("unsupported request {other:?}"),
    };
    let mut response = response.expect("an HTTP answer");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("a body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
  "spec":{"containers":[{"name":"c","image":"alpine","command":["sleep","1000"]}]}}"#;

#[test]
fn raw_http_verbs_statuses_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let pods = format!("{}/api/v1/namespaces/default/pods", server.api);

    let (code, created) = call(&server, "POST", &pods, "application/json", Some(POD));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["namespace"], "default");
    let (code, again) = call(&server, "POST", &pods, "application/json", Some(POD));
    assert_eq!(code, 409);
    assert_eq!(again["kind"], "Status");
    assert_eq!(again["reason"], "AlreadyExists");
    assert_eq!(again["message"], "pods \"web\" already exists");
    assert_eq!(again["details"]["kind"], "pods");

    let (code, missing) = call(&server, "GET", &format!("{pods}/nope"), "", None);
    assert_eq!(code, 404);
    assert_eq!(missing["message"], "pods \"nope\" not found");
    let (code, unknown) = call(
        &server,
        "GET",
        &format!("{}/api/v1/deployments", server.api),
        "",
        None,
    );
    assert_eq!(code, 404);
    assert_eq!(
        unknown["message"],
        "the server could not find the requested resource"
    );

    let (code, list) = call(
        &server,
        "GET",
        &format!("{}/api/v1/pods?labelSelector=app%3Dweb", server.api),
        "",
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "PodList");
    assert!(list["metadata"]["resourceVersion"].as_str().is_some());
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (code, bad) = call(
        &server,
        "GET",
        &format!("{pods}?fieldSelector=spec.image%3Dx"),
        "",
        None,
    );
    assert_eq!(code, 400);
    assert_eq!(bad["message"], "field label not supported: spec.image");

    let job = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},
      "spec":{"template":{"spec":{"restartPolicy":"Sometimes","containers":[{"name":"c","image":"alpine"}]}}}}"#;
    let (code, invalid) = call(
        &server,
        "POST",
        &format!("{}/apis/batch/v1/namespaces/default/jobs", server.api),
        "application/json",
        Some(job),
    );
    assert_eq!(code, 422, "{invalid}");
    assert_eq!(invalid["reason"], "Invalid");
    assert_eq!(invalid["details"]["group"], "batch");
    assert_eq!(
        invalid["details"]["causes"][0]["field"],
        "spec.template.spec.restartPolicy"
    );

    // A stale resourceVersion conflicts.
    let (_, current) = call(&server, "GET", &format!("{pods}/web"), "", None);
    let mut stale = current.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, conflict) = call(
        &server,
        "PUT",
        &format!("{pods}/web"),
        "application/json",
        Some(&stale.to_string()),
    );
    assert_eq!(code, 409, "{conflict}");
    assert_eq!(conflict["reason"], "Conflict");

    let (code, nodes) = call(
        &server,
        "GET",
        &format!("{}/api/v1/nodes", server.api),
        "",
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(nodes["kind"], "NodeList");
    assert!(nodes["items"][0]["status"]["conditions"][0]["lastHeartbeatTime"].is_string());
    let (code, namespaces) = call(
        &server,
        "GET",
        &format!("{}/api/v1/namespaces", server.api),
        "",
        None,
    );
    assert_eq!(code, 200);
    assert!(namespaces["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["metadata"]["name"] == "default"));
    let (code, unsupported) = call(
        &server,
        "PATCH",
        &format!("{pods}/web"),
        "text/plain",
        Some("{}"),
    );
    assert_eq!(code, 415, "{unsupported}");
}

struct Kubectl {
    server: String,
    cache: std::path::PathBuf,
    home: std::path::PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("/usr/bin/kubectl")
            .env("HOME", &self.home)
            .arg("--kubeconfig")
            .arg(&self.server)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("kubectl printed JSON")
    }
}

#[test]
fn kubectl_gets_creates_selects_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubectl = Kubectl {
        server: server.kubeconfig().to_string_lossy().into_owned(),
        cache: dir.path().join("kube-cache"),
        home: dir.path().to_path_buf(),
    };
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  containers:\n  - name: c\n    image: alpine\n    command: [sleep, '1000']\n",
    )
    .unwrap();
    let created = kubectl.ok(&[
        "create",
        "--validate=false",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    assert!(created.contains("pod/web created"), "{created}");

    let list = kubectl.json(&["get", "pods", "-o", "json"]);
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    let yaml = kubectl.ok(&["get", "pod", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("name: web") && yaml.contains("kind: Pod"),
        "{yaml}"
    );
    let nodes = kubectl.ok(&["get", "nodes", "-o", "name"]);
    assert_eq!(nodes.trim(), "node/server-node");
    let none = kubectl.ok(&["get", "pods", "-l", "app=db", "-o", "name"]);
    assert_eq!(none.trim(), "");
    let selected = kubectl.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(selected.trim(), "pod/web");
    let by_field = kubectl.ok(&[
        "get",
        "pods",
        "--field-selector",
        "metadata.name=web",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "pod/web");
    let refused = kubectl.run(&[
        "get",
        "pods",
        "--field-selector",
        "spec.image=x",
        "-o",
        "name",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("field label not supported: spec.image"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let missing = kubectl.run(&["get", "pod", "nope"]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("pods \"nope\" not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // The scheduler's events show as v1 Events.
    wait_for("an event about the pod", Duration::from_secs(20), || {
        let events = kubectl.json(&["get", "events", "-o", "json"]);
        events["items"]
            .as_array()?
            .iter()
            .any(|e| e["involvedObject"]["name"] == "web")
            .then_some(())
    });

    // What `kubectl run` sends carries Kubernetes' defaults (dnsPolicy, resources: {}).
    let run = kubectl.ok(&["run", "runner", "--image=alpine", "--", "sleep", "1000"]);
    assert!(run.contains("pod/runner created"), "{run}");
    let runner = kubectl.json(&["get", "pod", "runner", "-o", "json"]);
    assert_eq!(runner["metadata"]["labels"]["run"], "runner");
    assert_eq!(runner["spec"]["dnsPolicy"], "ClusterFirst");
    let described = kubectl.ok(&["describe", "pod", "web"]);
    assert!(described.contains("Events:"), "{described}");
    kubectl.ok(&["delete", "pod", "runner", "--wait=false"]);

    let deleted = kubectl.ok(&["delete", "pod", "web", "--wait=false"]);
    assert!(deleted.contains("pod \"web\" deleted"), "{deleted}");
    wait_for("the pod to go", Duration::from_secs(30), || {
        let list = kubectl.json(&["get", "pods", "-o", "json"]);
        list["items"].as_array()?.is_empty().then_some(())
    });
}

#[test]
fn kubectl_rollout_history_reads_controller_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubectl = Kubectl {
        server: server.kubeconfig().to_string_lossy().into_owned(),
        cache: dir.path().join("kube-cache"),
        home: dir.path().to_path_buf(),
    };
    let manifest = dir.path().join("ds.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels: {app: agent}\n  template:\n    metadata:\n      labels: {app: agent}\n    spec:\n      containers:\n      - name: c\n        image: alpine\n        command: [sleep, '1000']\n",
    )
    .unwrap();
    kubectl.ok(&[
        "create",
        "--validate=false",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    let revisions = wait_for("a ControllerRevision", Duration::from_secs(20), || {
        let list = kubectl.json(&[
            "get",
            "controllerrevisions",
            "-l",
            "app=agent",
            "-o",
            "json",
        ]);
        let items = list["items"].as_array()?.clone();
        (!items.is_empty()).then_some(items)
    });
    assert_eq!(revisions[0]["revision"], 1);
    let history = kubectl.ok(&["rollout", "history", "ds/agent"]);
    assert!(history.contains("REVISION"), "{history}");
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('1')),
        "{history}"
    );
    let one = kubectl.ok(&["rollout", "history", "ds/agent", "--revision=1"]);
    assert!(one.contains("alpine"), "{one}");
}

#[test]
fn kubectl_replace_list_all_namespaces_and_delete_by_label() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubectl = Kubectl {
        server: server.kubeconfig().to_string_lossy().into_owned(),
        cache: dir.path().join("kube-cache"),
        home: dir.path().to_path_buf(),
    };
    let cronjob = dir.path().join("cj.yaml");
    std::fs::write(
        &cronjob,
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  labels: {team: a}\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: alpine\n            command: ['true']\n",
    )
    .unwrap();
    kubectl.ok(&[
        "create",
        "--validate=false",
        "-f",
        cronjob.to_str().unwrap(),
    ]);
    let replaced = std::fs::read_to_string(&cronjob)
        .unwrap()
        .replace("0 3 * * *", "0 4 * * *");
    std::fs::write(&cronjob, replaced).unwrap();
    let out = kubectl.ok(&[
        "replace",
        "--validate=false",
        "-f",
        cronjob.to_str().unwrap(),
    ]);
    assert!(out.contains("cronjob.batch/nightly replaced"), "{out}");
    let cj = kubectl.json(&["get", "cronjob", "nightly", "-o", "json"]);
    assert_eq!(cj["spec"]["schedule"], "0 4 * * *");
    assert_eq!(cj["metadata"]["generation"], 2);

    let all = kubectl.json(&["get", "cronjobs", "-A", "-o", "json"]);
    assert_eq!(all["items"][0]["metadata"]["namespace"], "default");
    let out = kubectl.ok(&["delete", "cronjobs", "-l", "team=a"]);
    assert!(out.contains("cronjob.batch \"nightly\" deleted"), "{out}");
    let left = kubectl.json(&["get", "cronjobs", "-o", "json"]);
    assert_eq!(left["items"], json!([]));
}

#[test]
fn kubectl_logs_reads_pods_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubectl = Kubectl {
        server: server.kubeconfig().to_string_lossy().into_owned(),
        cache: dir.path().join("kube-cache"),
        home: dir.path().to_path_buf(),
    };
    let script = "i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); sleep 0.05; done";
    let manifest = dir.path().join("talker.yaml");
    std::fs::write(
        &manifest,
        process_pod("talker", "server-node", "Always", script, 1),
    )
    .unwrap();
    kubectl.ok(&[
        "create",
        "--validate=false",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    wait_for("output", Duration::from_secs(15), || {
        let out = kubectl.run(&["logs", "talker"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("line 3")
            .then_some(())
    });
    let tail = kubectl.ok(&["logs", "talker", "--tail=2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    let wrong = kubectl.run(&["logs", "talker", "-c", "nope"]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("container nope is not valid"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    // Client-side apply of a new object creates it (GET 404, then POST).
    let applied = dir.path().join("applied.yaml");
    std::fs::write(
        &applied,
        process_pod("applied", "server-node", "Always", "sleep 1000", 1),
    )
    .unwrap();
    let out = kubectl.ok(&["apply", "--validate=false", "-f", applied.to_str().unwrap()]);
    assert!(out.contains("pod/applied created"), "{out}");
    let shown = kubectl.json(&["get", "pod", "applied", "-o", "json"]);
    assert!(
        shown["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    // An eviction deletes the pod gracefully.
    let (code, status) = call(
        &server,
        "POST",
        &format!(
            "{}/api/v1/namespaces/default/pods/applied/eviction",
            server.api
        ),
        "application/json",
        Some(
            r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"applied","namespace":"default"}}"#,
        ),
    );
    assert_eq!(code, 201, "{status}");
    assert_eq!(status["status"], "Success");
    wait_for("the evicted pod to go", Duration::from_secs(20), || {
        let (code, _) = call(
            &server,
            "GET",
            &format!("{}/api/v1/namespaces/default/pods/applied", server.api),
            "",
            None,
        );
        (code == 404).then_some(())
    });

    // A pod on a ready node terminates gracefully: the answer is the pod, Terminating.
    let (code, pod) = call(
        &server,
        "DELETE",
        &format!("{}/api/v1/namespaces/default/pods/talker", server.api),
        "",
        None,
    );
    assert_eq!(code, 202, "{pod}");
    assert_eq!(pod["kind"], "Pod");
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod}");
}

#[test]
fn kubectl_creates_lists_and_deletes_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubectl = Kubectl {
        server: server.kubeconfig().to_string_lossy().into_owned(),
        cache: dir.path().join("kube-cache"),
        home: dir.path().to_path_buf(),
    };
    let manifest = dir.path().join("ns.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels: {owner: a}\n",
    )
    .unwrap();
    let out = kubectl.ok(&[
        "create",
        "--validate=false",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    assert!(out.contains("namespace/team created"), "{out}");
    let names = kubectl.ok(&["get", "namespaces", "-o", "name"]);
    assert!(
        names.contains("namespace/default") && names.contains("namespace/team"),
        "{names}"
    );
    let selected = kubectl.ok(&["get", "ns", "-l", "owner=a", "-o", "name"]);
    assert_eq!(selected.trim(), "namespace/team");
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: team\nspec:\n  containers:\n  - name: c\n    image: alpine\n",
    )
    .unwrap();
    kubectl.ok(&["create", "--validate=false", "-f", pod.to_str().unwrap()]);
    let in_team = kubectl.json(&["get", "pods", "-n", "team", "-o", "json"]);
    assert_eq!(in_team["items"][0]["metadata"]["name"], "p");
    let out = kubectl.ok(&["delete", "namespace", "team", "--wait=false"]);
    assert!(out.contains("namespace \"team\" deleted"), "{out}");
    // Its pods go too, gracefully (the node confirms each).
    wait_for(
        "the namespace's pods to go",
        Duration::from_secs(20),
        || {
            let in_team = kubectl.json(&["get", "pods", "-n", "team", "-o", "json"]);
            (in_team["items"] == json!([])).then_some(())
        },
    );
    // `kubectl create namespace` sends protobuf.
    let out = kubectl.ok(&["create", "namespace", "edge"]);
    assert!(out.contains("namespace/edge created"), "{out}");
    let edge = kubectl.json(&["get", "namespace", "edge", "-o", "json"]);
    assert_eq!(edge["status"]["phase"], "Active");
    let refused = kubectl.run(&["delete", "namespace", "default", "--wait=false"]);
    assert!(!refused.status.success());
}

#[test]
fn kubectl_drain_deletes_the_pods_of_a_cordoned_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubectl = Kubectl {
        server: server.kubeconfig().to_string_lossy().into_owned(),
        cache: dir.path().join("kube-cache"),
        home: dir.path().to_path_buf(),
    };
    let manifest = dir.path().join("sleeper.yaml");
    std::fs::write(
        &manifest,
        process_pod("sleeper", "server-node", "Always", "sleep 1000", 1),
    )
    .unwrap();
    kubectl.ok(&[
        "create",
        "--validate=false",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    // Cordon with a PUT (kubectl cordon PATCHes; this test does not depend on patches).
    let node_url = format!("{}/api/v1/nodes/server-node", server.api);
    let (_, mut node) = call(&server, "GET", &node_url, "", None);
    node["spec"]["unschedulable"] = json!(true);
    let (code, cordoned) = call(
        &server,
        "PUT",
        &node_url,
        "application/json",
        Some(&node.to_string()),
    );
    assert_eq!(code, 200, "{cordoned}");
    assert_eq!(cordoned["spec"]["unschedulable"], true);
    // drain's typed client sends its DeleteOptions as protobuf.
    let out = kubectl.ok(&[
        "drain",
        "server-node",
        "--force",
        "--grace-period=1",
        "--timeout=30s",
    ]);
    assert!(out.contains("node/server-node drained"), "{out}");
    let (code, _) = call(
        &server,
        "GET",
        &format!("{}/api/v1/namespaces/default/pods/sleeper", server.api),
        "",
        None,
    );
    assert_eq!(code, 404);
}

#[test]
fn kubectls_typed_clients_send_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubectl = Kubectl {
        server: server.kubeconfig().to_string_lossy().into_owned(),
        cache: dir.path().join("kube-cache"),
        home: dir.path().to_path_buf(),
    };
    let cronjob = dir.path().join("cj.yaml");
    std::fs::write(
        &cronjob,
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: hello\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate:\n    metadata:\n      labels: {tier: batch}\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            command: ['sh', '-c', 'echo hi']\n            env: [{name: A, value: b}]\n            resources: {limits: {cpu: 100m, memory: 64Mi}}\n",
    )
    .unwrap();
    kubectl.ok(&[
        "create",
        "--validate=false",
        "-f",
        cronjob.to_str().unwrap(),
    ]);
    let cj = kubectl.json(&["get", "cronjob", "hello", "-o", "json"]);

    // `create job --from` POSTs the Job as protobuf.
    let out = kubectl.ok(&["create", "job", "from-cron", "--from=cronjob/hello"]);
    assert!(out.contains("job.batch/from-cron created"), "{out}");
    let job = kubectl.json(&["get", "job", "from-cron", "-o", "json"]);
    let owner = &job["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "CronJob");
    assert_eq!(owner["name"], "hello");
    assert_eq!(owner["uid"], cj["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(job["metadata"]["labels"]["tier"], "batch");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["env"], json!([{"name": "A", "value": "b"}]));
    assert_eq!(container["resources"]["limits"]["memory"], "64Mi");
    kubectl.ok(&[
        "wait",
        "--for=condition=Complete",
        "job/from-cron",
        "--timeout=60s",
    ]);

    // `create cronjob` and `create job --image` likewise.
    let out = kubectl.ok(&[
        "create",
        "cronjob",
        "every5",
        "--image=alpine",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]);
    assert!(out.contains("cronjob.batch/every5 created"), "{out}");
    let cj = kubectl.json(&["get", "cronjob", "every5", "-o", "json"]);
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "OnFailure");
    assert_eq!(pod["containers"][0]["image"], "alpine");
    assert_eq!(pod["containers"][0]["command"], json!(["date"]));
    let out = kubectl.ok(&[
        "create",
        "job",
        "plain",
        "--image=alpine",
        "--dry-run=server",
        "--",
        "echo",
        "hi",
    ]);
    assert!(
        out.contains("job.batch/plain created (server dry run)"),
        "{out}"
    );

    // `create namespace`.
    let out = kubectl.ok(&["create", "namespace", "from-protobuf"]);
    assert!(out.contains("namespace/from-protobuf created"), "{out}");
    let ns = kubectl.json(&["get", "namespace", "from-protobuf", "-o", "json"]);
    assert_eq!(ns["status"]["phase"], "Active");
}
