//! Foundation budgets: agent binary size, idle RSS, and agent start → node Ready.
//!
//! Run: `scripts/bench-foundation` (builds release binaries, then runs this).

use std::time::{Duration, Instant};

use drover_e2e::*;

fn node_ready(api: &str, name: &str) -> bool {
    let Ok(mut response) = ureq::get(format!("{api}/api/v1/nodes/{name}")).call() else {
        return false;
    };
    let Ok(node) = response.body_mut().read_json::<serde_json::Value>() else {
        return false;
    };
    node["status"]["conditions"][0]["status"] == "True"
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent_binary = binary("drover-agent");
    let size = std::fs::metadata(&agent_binary)
        .expect("agent binary")
        .len();
    println!(
        "drover-agent binary (release, stripped): {size} bytes ({:.2} MiB)",
        size as f64 / 1048576.0
    );

    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let runs = 30;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let name = format!("bench-{i}");
        let started = Instant::now();
        let agent = Agent::start(dir.path(), &server.broker, &name, &[]);
        loop {
            if node_ready(&server.api, &name) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "node {name} never became Ready"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(started.elapsed());
        if i + 1 < runs {
            drop(agent);
        } else {
            // Let the last agent settle into its idle state, then read its memory.
            std::thread::sleep(Duration::from_secs(3));
            println!(
                "agent idle RSS after registration: {} KiB",
                rss_kib(agent.proc.pid())
            );
        }
    }
    times.sort();
    println!(
        "agent start -> node Ready via API, {runs} runs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        percentile(&times, 0.99).as_secs_f64() * 1000.0,
        times[runs - 1].as_secs_f64() * 1000.0
    );
}
