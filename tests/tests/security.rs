//! `securityContext` on real agents: the engine holds a container to every setting
//! (groups, fsGroup on an emptyDir, no_new_privs, a read-only root, dropped capabilities),
//! the agent holds a host process to no_new_privs, and what cannot be held is refused at
//! apply, naming the field. The engine test needs the local test image
//! (`scripts/test-image`).

use std::time::Duration;

use drover_e2e::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn the_engine_holds_a_container_to_its_security_context() {
    let node = "secured-engine";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &[]);
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: locked
spec:
  nodeName: {node}
  restartPolicy: Never
  securityContext:
    runAsUser: 1000
    runAsNonRoot: true
    fsGroup: 2000
    supplementalGroups: [3000]
  volumes: [{{name: data, emptyDir: {{}}}}]
  containers:
  - name: main
    image: {image}
    command: [sh, -c, 'id -u; id -G; grep -E \"^(CapBnd|NoNewPrivs|Seccomp):\" /proc/self/status; touch /tmp/f 2>/dev/null && echo root writable || echo root read-only; touch /data/f && stat -c \"data group %g\" /data/f']
    volumeMounts: [{{name: data, mountPath: /data}}]
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {{drop: [ALL]}}
",
        image = test_image()
    ));
    let pod = server.wait_pod("locked", "Succeeded", T, |p| phase(p) == "Succeeded");
    let logs = server.kubectl_ok(&["logs", "locked"]);
    let lines: Vec<&str> = logs.lines().map(str::trim).collect();
    assert_eq!(lines.first(), Some(&"1000"), "{logs}");
    let groups: Vec<&str> = lines.get(1).unwrap_or(&"").split_whitespace().collect();
    assert!(
        groups.contains(&"2000") && groups.contains(&"3000"),
        "{logs}"
    );
    // Dropped from the bounding set, not merely unused by a non-root user.
    assert!(logs.contains("CapBnd:\t0000000000000000"), "{logs}");
    assert!(
        logs.contains("Seccomp:\t2"),
        "the engine's default filter: {logs}"
    );
    assert!(logs.contains("NoNewPrivs:\t1"), "{logs}");
    assert!(logs.contains("root read-only"), "{logs}");
    assert!(logs.contains("data group 2000"), "{logs}\n{pod}");
}

#[test]
fn a_host_process_gets_no_new_privs_and_unenforceable_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "secured-process", &[]);
    let pod = |name: &str, security: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: secured-process
  restartPolicy: Never
  containers:
  - name: main
    command: [grep, NoNewPrivs, /proc/self/status]
    securityContext: {security}
"
        )
    };
    server.apply(&pod("plain", "{}"));
    server.apply(&pod("nnp", "{allowPrivilegeEscalation: false}"));
    // Without the setting, the process has what the test (and so the agent) has.
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let inherited = own
        .lines()
        .find(|l| l.starts_with("NoNewPrivs:"))
        .unwrap_or("NoNewPrivs:\t0")
        .to_string();
    for (name, expected) in [("plain", inherited.as_str()), ("nnp", "NoNewPrivs:\t1")] {
        server.wait_pod(name, "Succeeded", T, |p| phase(p) == "Succeeded");
        let logs = server.kubectl_ok(&["logs", name]);
        assert!(logs.contains(expected), "{name}: {logs}");
    }
    let path = dir.path().join("refused.yaml");
    std::fs::write(&path, pod("refused", "{readOnlyRootFilesystem: true}")).unwrap();
    let out = server.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.containers[0].securityContext.readOnlyRootFilesystem"),
        "{stderr}"
    );
    assert!(server.pod("refused").is_none());
}

#[test]
fn run_as_non_root_without_a_user_is_checked_when_the_container_starts() {
    let node = "nonroot-check";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &[]);
    // The test image runs as root (it has no USER), and so does a host process of an agent
    // running as root, as here.
    for (name, image) in [
        ("engine", format!("    image: {}\n", test_image())),
        ("process", String::new()),
    ] {
        server.apply(&format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  securityContext: {{runAsNonRoot: true}}
  containers:
  - name: main
{image}    command: [sleep, '3600']
"
        ));
        let pod = server.wait_pod(name, "refused to start", T, |p| {
            container(p)["state"]["waiting"]["reason"] == "CreateContainerConfigError"
        });
        let message = container(&pod)["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains("runAsNonRoot"), "{name}: {message}");
        assert_eq!(phase(&pod), "Pending", "{name}");
        assert_eq!(container(&pod)["restartCount"], 0, "{name}");
    }
    let running: Vec<_> = engine_containers(&format!("drover.io/node={node}"))
        .into_iter()
        .filter(|(_, state)| state == "running")
        .collect();
    assert!(running.is_empty(), "{running:?}");
}
