//! DaemonSet budgets: 50 real agents (processes) on this machine; DaemonSet apply → all 50
//! pods Running, and a new node's pod Running after its registration.
//!
//! Run: `scripts/bench-daemonset`.

use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

const AGENTS: usize = 50;

fn get(server: &Server, path: &str) -> Option<Value> {
    let mut response = server.api_get(path).call().ok()?;
    response.body_mut().read_json::<Value>().ok()
}

fn running_pods(server: &Server) -> Vec<String> {
    get(server, "/api/v1/namespaces/default/pods")
        .and_then(|list| list["items"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
        .collect()
}

fn node_ready(server: &Server, name: &str) -> bool {
    get(server, &format!("/api/v1/nodes/{name}"))
        .is_some_and(|n| n["status"]["conditions"][0]["status"] == "True")
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        agents.push(Agent::start(
            dir.path(),
            &server.broker,
            &format!("edge-{i:02}"),
            &["--label", "role=sensor"],
        ));
    }
    for i in 0..AGENTS {
        let name = format!("edge-{i:02}");
        wait_for(&format!("{name} Ready"), Duration::from_secs(30), || {
            node_ready(&server, &name).then_some(())
        });
    }
    let manifest = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: bench}\nspec:\n  selector: {matchLabels: {app: bench}}\n  template:\n    metadata: {labels: {app: bench}}\n    spec:\n      nodeSelector: {role: sensor}\n      containers:\n      - name: c\n        command: [sleep, '3600']\n";
    let start = Instant::now();
    create_objects(&server, manifest);
    loop {
        if running_pods(&server).len() == AGENTS {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not all pods ran"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "DaemonSet apply -> all {AGENTS} pods Running ({AGENTS} agents): {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );

    let mut joins = Vec::new();
    for i in 0..5 {
        let name = format!("late-{i}");
        agents.push(Agent::start(
            dir.path(),
            &server.broker,
            &name,
            &["--label", "role=sensor"],
        ));
        wait_for(&format!("{name} Ready"), Duration::from_secs(10), || {
            node_ready(&server, &name).then_some(())
        });
        let registered = Instant::now();
        loop {
            if running_pods(&server).contains(&name) {
                break;
            }
            assert!(
                registered.elapsed() < Duration::from_secs(10),
                "{name}'s pod never ran"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        joins.push(registered.elapsed().as_secs_f64() * 1000.0);
    }
    joins.sort_by(f64::total_cmp);
    println!(
        "new node Ready -> its pod Running, 5 joins: {} ms (median {:.0} ms, max {:.0} ms)",
        joins
            .iter()
            .map(|j| format!("{j:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        joins[2],
        joins[4]
    );
}
