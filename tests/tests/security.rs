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
    command: [sh, -c, 'id -u; id -G; grep -E \"^(CapEff|NoNewPrivs)\" /proc/self/status; touch /rootfile 2>/dev/null && echo root writable || echo root read-only; touch /data/f && stat -c \"data group %g\" /data/f']
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
    assert!(logs.contains("CapEff:\t0000000000000000"), "{logs}");
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
    for (name, expected) in [("plain", "NoNewPrivs:\t0"), ("nnp", "NoNewPrivs:\t1")] {
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
