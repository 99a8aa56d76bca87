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

/// A request as admin whose 4xx/5xx answers are returned, not raised: (status, body as
/// JSON).
fn call(
    server: &Server,
    method: &str,
    url: &str,
    content_type: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let agent = server.http_any_status();
    let bearer = format!("Bearer {}", server.token());
    let response = match (method, body) {
        ("GET", _) => agent.get(url).header("Authorization", &bearer).call(),
        ("DELETE", _) => agent.delete(url).header("Authorization", &bearer).call(),
        ("POST", Some(b)) => agent
            .post(url)
            .header("Authorization", &bearer)
            .header("Content-Type", content_type)
            .send(b.as_bytes()),
        ("PUT", Some(b)) => agent
            .put(url)
            .header("Authorization", &bearer)
            .header("Content-Type", content_type)
            .send(b.as_bytes()),
        ("PATCH", Some(b)) => agent
            .patch(url)
            .header("Authorization", &bearer)
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
    kubeconfig: std::path::PathBuf,
    home: std::path::PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("/usr/bin/kubectl")
            .env("HOME", &self.home)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
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
        kubeconfig: server.kubeconfig(),
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

    let deleted = kubectl.ok(&["delete", "pod", "web", "--wait=false"]);
    assert!(deleted.contains("pod \"web\" deleted"), "{deleted}");
    wait_for("the pod to go", Duration::from_secs(30), || {
        let list = kubectl.json(&["get", "pods", "-o", "json"]);
        list["items"].as_array()?.is_empty().then_some(())
    });
}
