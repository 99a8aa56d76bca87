//! Resource limits of process pods, enforced through the node's cgroups (this machine kind
//! has the cgroup v1 memory and cpu hierarchies).

use std::time::Duration;

use drover_e2e::*;

fn limited_pod(name: &str, memory: &str, cpu: &str, script: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: limits
  restartPolicy: Never
  containers:
  - name: main
    command: [sh, -c, {script:?}]
    resources:
      limits: {{memory: {memory}, cpu: {cpu}}}
"
    )
}

/// The directory of `pid`'s cgroup in the v1 hierarchy that has `controller`.
fn cgroup_dir(pid: u32, controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let (mount, path) = text
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| (controllers.to_string(), path.to_string()))
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup in {text}"));
    std::path::Path::new("/sys/fs/cgroup")
        .join(mount)
        .join(path.trim_start_matches('/'))
}

#[test]
fn memory_and_cpu_limits_are_applied_and_an_oom_kill_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), "limits", &[]);

    server.apply(&limited_pod("capped", "32Mi", "500m", "sleep 300"));
    let pod = server.wait_pod("capped", "Running", Duration::from_secs(10), |p| {
        phase(p) == "Running"
    });
    assert!(
        pod["status"]["message"].is_null(),
        "limits are enforced here: {pod}"
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let pid = wait_for("the pod's process", Duration::from_secs(5), || {
        pod_processes(uid).first().copied()
    });
    let memory = cgroup_dir(pid, "memory");
    let cpu = cgroup_dir(pid, "cpu");
    assert_eq!(
        std::fs::read_to_string(memory.join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
            .unwrap()
            .trim(),
        "50000"
    );
    assert_eq!(
        std::fs::read_to_string(cpu.join("cpu.cfs_period_us"))
            .unwrap()
            .trim(),
        "100000"
    );

    // Holding 100 MB under a 32 MiB limit: the kernel kills it, and the pod says OOMKilled.
    server.apply(&limited_pod(
        "hog",
        "32Mi",
        "1",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo ${#x}",
    ));
    let hog = server.wait_pod("hog", "Failed", Duration::from_secs(30), |p| {
        phase(p) == "Failed"
    });
    let terminated = &container(&hog)["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled", "{hog}");
    assert_eq!(terminated["exitCode"], 137);
    assert!(server
        .cli_ok(&["get", "pods"])
        .lines()
        .any(|l| l.starts_with("hog") && l.contains("OOMKilled")));

    // The container's cgroups go with it.
    server.cli_ok(&["delete", "pod", "capped"]);
    wait_for("the capped pod to go", Duration::from_secs(15), || {
        server.pod("capped").is_none().then_some(())
    });
    wait_for(
        "the container's cgroups to go",
        Duration::from_secs(5),
        || (!memory.exists() && !cpu.exists()).then_some(()),
    );
}
