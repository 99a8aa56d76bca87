//! Foundation budgets: agent binary size, idle RSS, enrollment (agent start with a join token
//! → node Ready) and restart of an enrolled agent (start with stored credentials → Ready).
//!
//! Run: `scripts/bench-foundation` (builds release binaries, then runs this).

use std::time::{Duration, Instant};

use drover_e2e::*;

fn ready_condition(server: &Server, name: &str) -> Option<String> {
    let mut response = server
        .api_get(&format!("/api/v1/nodes/{name}"))
        .call()
        .ok()?;
    let node = response.body_mut().read_json::<serde_json::Value>().ok()?;
    node["status"]["conditions"][0]["status"]
        .as_str()
        .map(str::to_string)
}

fn node_ready(server: &Server, name: &str) -> bool {
    ready_condition(server, name).as_deref() == Some("True")
}

/// Polls every millisecond until the node is Ready; returns the time since `started`.
fn time_to_ready(server: &Server, name: &str, started: Instant) -> Duration {
    while !node_ready(server, name) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "node {name} never became Ready"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    started.elapsed()
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}, {} runs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1])
    );
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

    let server = Server::start_alone(dir.path());
    let runs = 30;

    // Enrollment: every run is a new node with a fresh data directory and the join token.
    let mut enrollments = Vec::with_capacity(runs);
    let mut last = None;
    for i in 0..runs {
        let name = format!("bench-{i}");
        let started = Instant::now();
        let agent = Agent::start(dir.path(), &server.broker, &name, &[]);
        enrollments.push(time_to_ready(&server, &name, started));
        last = Some(agent);
    }
    let mut agent = last.expect("an agent");
    // Let the last agent settle into its idle state, then read its memory.
    std::thread::sleep(Duration::from_secs(3));
    println!(
        "agent idle RSS after registration: {} KiB",
        rss_kib(agent.proc.pid())
    );
    report(
        "enrollment: agent start with a join token -> node Ready via API",
        enrollments,
    );

    // Restart of an enrolled agent: it stops cleanly (its offline presence makes the node
    // not Ready), then starts again with its stored credentials.
    let mut restarts = Vec::with_capacity(runs);
    for _ in 0..runs {
        agent.proc.signal("TERM");
        agent.proc.wait_exit(Duration::from_secs(10));
        wait_for(
            "the stopped node to be not Ready",
            Duration::from_secs(10),
            || (!node_ready(&server, &agent.name)).then_some(()),
        );
        let started = Instant::now();
        agent.restart();
        restarts.push(time_to_ready(&server, &agent.name, started));
    }
    report(
        "restart: agent start with stored credentials -> node Ready via API",
        restarts,
    );
}
