//! Cross-built agents on an x86_64 controller: the aarch64 and armv7 `drover-agent`
//! binaries, run under qemu-user, register with the real architecture and run a process pod
//! to completion. Needs the cross builds: run through `scripts/cross-test`, which builds them
//! and sets DROVER_CROSS_AGENTS (these tests are ignored by a plain `cargo test`).

use std::time::Duration;

use drover_e2e::*;

const T: Duration = Duration::from_secs(60);

/// The runner and binary of a cross-built agent, from DROVER_CROSS_AGENTS
/// (`arch=runner:path,…`).
fn cross_agent(arch: &str) -> Vec<String> {
    let spec = std::env::var("DROVER_CROSS_AGENTS")
        .expect("DROVER_CROSS_AGENTS is not set: run scripts/cross-test");
    let entry = spec
        .split(',')
        .find_map(|e| e.strip_prefix(&format!("{arch}=")))
        .unwrap_or_else(|| panic!("no {arch} agent in DROVER_CROSS_AGENTS={spec}"));
    let (runner, path) = entry.split_once(':').expect("runner:path");
    vec![runner.to_string(), path.to_string()]
}

fn registers_and_runs_a_pod(arch: &str, kubernetes_arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let node = format!("pi-{kubernetes_arch}");
    // A host name, not an address: name resolution works in the static binary too.
    let broker = Broker {
        url: server.broker.url.replace("127.0.0.1", "localhost"),
        ..server.broker.clone()
    };
    let _agent = Agent::start_program(dir.path(), &broker, &node, &[], cross_agent(arch));
    server.wait_ready_status(&node, "True", T);
    let registered = server.node(&node).unwrap();
    assert_eq!(
        registered["status"]["nodeInfo"]["architecture"], kubernetes_arch,
        "{registered}"
    );
    server.apply(&process_pod(
        "hello",
        &node,
        "Never",
        "echo done on $DROVER_NODE_NAME",
        5,
    ));
    let pod = server.wait_pod("hello", "Succeeded", T, |p| phase(p) == "Succeeded");
    assert_eq!(container(&pod)["state"]["terminated"]["exitCode"], 0);
    let logs = server.cli_ok(&["logs", "hello"]);
    assert_eq!(logs.trim(), format!("done on {node}"));
}

#[test]
#[ignore = "needs the cross-built agents: scripts/cross-test"]
fn aarch64_agent_under_qemu_registers_and_runs_a_pod() {
    registers_and_runs_a_pod("aarch64", "arm64");
}

#[test]
#[ignore = "needs the cross-built agents: scripts/cross-test"]
fn armv7_agent_under_qemu_registers_and_runs_a_pod() {
    registers_and_runs_a_pod("armv7", "arm");
}
