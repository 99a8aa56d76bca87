//! Pod budgets: apply of a Pod → Running visible via the API (p50/p99 over 200 pods, and the
//! ratio to the floor of one fork+exec plus one MQTT round trip measured in the same run),
//! and agent RSS with 20 running process pods.
//!
//! Run: `scripts/bench-pods`.

use std::time::{Duration, Instant};

use drover_e2e::*;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fork_exec_floor(runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::process::Command::new("/bin/true")
                .status()
                .expect("/bin/true");
            start.elapsed()
        })
        .collect();
    times.sort();
    percentile(&times, 0.5)
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
    let agent = Agent::start(dir.path(), &server.broker, "bench", &[]);
    server.wait_ready_status("bench", "True", Duration::from_secs(10));

    let pods = 200;
    let mut times = Vec::with_capacity(pods);
    let mut rss_at_20 = 0;
    for i in 0..pods {
        let name = format!("p{i}");
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: c\n    command: [sleep, '3600']\n"
        );
        times.push(time_apply_to_running(
            &server,
            &name,
            &manifest,
            Duration::from_secs(10),
        ));
        if i + 1 == 20 {
            // Let reports and log copies settle before reading memory.
            std::thread::sleep(Duration::from_secs(2));
            rss_at_20 = rss_kib(agent.proc.pid());
        }
    }
    let fork_exec = fork_exec_floor(100);
    let rtt = mqtt_round_trip(&server, 100);
    let floor = fork_exec + rtt;
    // Whether the latency grows with the number of pods on the node (every apply sends,
    // signs and verifies the node's whole desired state), and where the slowest ones were.
    let half_p50 = |part: &[Duration]| {
        let mut part = part.to_vec();
        part.sort();
        ms(percentile(&part, 0.5))
    };
    let mut slowest: Vec<(usize, Duration)> = times.iter().copied().enumerate().collect();
    slowest.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
    println!(
        "p50 of pods 1-{} {:.1} ms, of pods {}-{pods} {:.1} ms; slowest: {}",
        pods / 2,
        half_p50(&times[..pods / 2]),
        pods / 2 + 1,
        half_p50(&times[pods / 2..]),
        slowest[..5]
            .iter()
            .map(|(i, t)| format!("p{i} {:.0} ms", ms(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "apply -> Running via API, {pods} pods: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(p50),
        ms(p99),
        ms(times[pods - 1])
    );
    println!(
        "floor (fork+exec p50 {:.2} ms + MQTT QoS1 round trip p50 {:.2} ms) = {:.2} ms; p50 is {:.1}x the floor, p99 {:.1}x",
        ms(fork_exec),
        ms(rtt),
        ms(floor),
        ms(p50) / ms(floor),
        ms(p99) / ms(floor)
    );
    println!("agent RSS with 20 running process pods: {rss_at_20} KiB");
    println!(
        "agent RSS with {pods} running process pods: {} KiB",
        rss_kib(agent.proc.pid())
    );
}
