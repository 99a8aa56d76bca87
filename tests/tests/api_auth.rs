//! The API's authentication end to end: HTTPS only, bearer tokens from kubeconfig files,
//! the admin and view roles, kubectl and drover finding their kubeconfig.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

fn server(dir: &Path) -> Server {
    Server::start(
        dir,
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    )
}

/// GET `path` with an optional bearer token: (status, JSON body).
fn get(server: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = server
        .http_any_status()
        .get(format!("{}{path}", server.api));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().expect("an answer");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("a body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn assert_unauthorized(answer: (u16, Value)) {
    let (status, body) = answer;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})
    );
}

#[test]
fn requests_without_a_valid_token_get_a_401_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    for path in [
        "/api/v1/nodes",
        "/metrics",
        "/api",
        "/apis",
        "/openapi/v2",
        "/nowhere",
    ] {
        assert_unauthorized(get(&server, path, None));
        assert_unauthorized(get(&server, path, Some("not-a-token")));
    }
    // A token with another scheme is no bearer token.
    let answer = server
        .http_any_status()
        .get(format!("{}/api/v1/nodes", server.api))
        .header("Authorization", format!("Basic {}", server.token()))
        .call()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    // Health answers anyone; the admin token opens the rest.
    assert_eq!(get(&server, "/healthz", None).0, 200);
    let (status, nodes) = get(&server, "/api/v1/nodes", Some(&server.token()));
    assert_eq!(status, 200, "{nodes}");
}

#[test]
fn a_view_kubeconfig_reads_but_may_not_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let viewer = dir.path().join("viewer.yaml");
    std::fs::write(
        &viewer,
        server.cli_ok(&["kubeconfig", "create", "viewer", "--role", "view"]),
    )
    .unwrap();
    let as_viewer = |args: &[&str]| {
        Command::new(binary("drover"))
            .arg("--kubeconfig")
            .arg(&viewer)
            .args(args)
            .output()
            .unwrap()
    };
    let out = as_viewer(&["get", "pods"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let manifest = dir.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, command: [sleep, '60']}]}\n",
    )
    .unwrap();
    for args in [
        vec!["apply", "-f", manifest.to_str().unwrap()],
        vec!["delete", "pod", "p"],
        vec!["kubeconfig", "create", "sneaky", "--role", "admin"],
        vec!["kubeconfig", "list"],
    ] {
        let out = as_viewer(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("403 Forbidden"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("User \"viewer\" cannot"),
            "{args:?}: {stderr}"
        );
    }
    // The refusal is a Kubernetes Status, worded as kube-apiserver words it.
    let token = std::fs::read_to_string(&viewer).unwrap();
    let token = token
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string();
    let mut answer = server
        .http_any_status()
        .delete(format!("{}/api/v1/nodes/n1", server.api))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    let status: Value = answer.body_mut().read_json().unwrap();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(status["code"], 403);
    assert_eq!(
        status["message"],
        "nodes \"n1\" is forbidden: User \"viewer\" cannot delete resource \"nodes\" in API group \"\" at the cluster scope"
    );

    // kubectl asks the server who it is and what it may do.
    let kubectl = |args: &[&str]| {
        let out = Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(&viewer)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // `no` may come with the server's reason: `no - …`.
        stdout.split(" - ").next().unwrap_or("").trim().to_string()
    };
    let whoami: Value = serde_json::from_str(&kubectl(&["auth", "whoami", "-o", "json"])).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], "viewer");
    assert_eq!(kubectl(&["auth", "can-i", "list", "pods"]), "yes");
    assert_eq!(kubectl(&["auth", "can-i", "create", "pods"]), "no");
    assert_eq!(kubectl(&["auth", "can-i", "delete", "nodes"]), "no");
    assert_eq!(
        kubectl(&["auth", "can-i", "list", "kubeconfigs.drover.io"]),
        "no"
    );
    let out = server.kubectl(&["auth", "can-i", "delete", "nodes"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");

    // The admin can list and delete it; then it is refused outright.
    let list = server.cli_ok(&["kubeconfig", "list"]);
    assert!(list.contains("viewer") && list.contains("view"), "{list}");
    server.cli_ok(&["kubeconfig", "delete", "viewer"]);
    let out = as_viewer(&["get", "pods"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401 Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubectl_and_drover_find_the_admin_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let kubeconfig = server.kubeconfig();
    assert_eq!(
        drover_agent::private_fs::mode_of(&kubeconfig) & 0o777,
        0o600
    );

    let out = server.kubectl(&["get", "--raw", "/healthz"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    // kubectl sends the token: an authenticated path answers too.
    let out = server.kubectl(&["get", "--raw", "/api/v1/nodes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // drover through KUBECONFIG (a list whose first entry is missing), with no HOME
    // config to fall back on.
    let list = format!(
        "{}:{}",
        dir.path().join("missing").display(),
        kubeconfig.display()
    );
    let out = Command::new(binary("drover"))
        .args(["get", "nodes"])
        .env("KUBECONFIG", list)
        .env("HOME", dir.path())
        .env_remove("DROVER_SERVER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A restart keeps the file and its token.
    let before = std::fs::read_to_string(&kubeconfig).unwrap();
    let mut server = server;
    server.restart();
    assert_eq!(std::fs::read_to_string(&kubeconfig).unwrap(), before);
    server.cli_ok(&["get", "nodes"]);
}

#[test]
fn kubectl_version_reaches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let (status, _) = get(&server, "/version", None);
    if status == 404 {
        eprintln!("/version is not served yet; kubectl_and_drover_find_the_admin_kubeconfig covers /healthz");
        return;
    }
    let out = server.kubectl(&["version", "-o", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        version["serverVersion"]["gitVersion"].is_string(),
        "{stdout}"
    );
}

#[test]
fn the_api_refuses_plain_http_and_unknown_cas() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let plain = server.api.replace("https://", "http://");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent.get(format!("{plain}/healthz")).call().unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body = answer.body_mut().read_to_string().unwrap();
    assert_eq!(
        body.trim(),
        "Client sent an HTTP request to an HTTPS server."
    );
    // A client that connects and says nothing holds up no one.
    let port = server
        .api
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let _stalled: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert!(server
        .http()
        .get(format!("{}/healthz", server.api))
        .call()
        .is_ok());
    // Another server's CA does not vouch for this one.
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = Server::start(
        &other_dir,
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let stranger = https_agent(&server_ca(&other), true);
    assert!(stranger
        .get(format!("{}/healthz", server.api))
        .call()
        .is_err());
    // The harness's own client still gets through, so the failures above are TLS's.
    assert!(server
        .http()
        .get(format!("{}/healthz", server.api))
        .call()
        .is_ok());
}
