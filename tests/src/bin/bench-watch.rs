//! Watch budgets: store write → watcher receives the event (≤ 5 ms), and the server's memory
//! for 100 concurrent watches (≤ 20 MiB).
//!
//! Each run applies a new pod over the HTTP API (no node runs it, so the apply is the only
//! write) and times, for every watcher, from sending the apply to reading its ADDED event:
//! an upper bound on write → receive, since it includes the apply's own HTTP round trip and
//! parsing. The apply's round trip alone is reported beside it.
//!
//! Run: `scripts/bench-watch` (release binaries).

use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

const WATCHERS: usize = 100;
const RUNS: usize = 50;

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}, {} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1])
    );
}

fn pod(name: &str) -> String {
    process_pod(name, "nowhere", "Always", "sleep 300", 1)
}

/// Opens a watch; its events' (pod name, arrival) come on `arrivals`.
fn open_watch(server: &Server, arrivals: mpsc::Sender<(String, Instant)>) {
    // From now on: no initial events to read past.
    let now = server
        .api_get("/api/v1/namespaces/default/pods?limit=1")
        .call()
        .expect("list")
        .body_mut()
        .read_json::<Value>()
        .expect("list json")["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let response = server
        .api_get(&format!(
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion={now}"
        ))
        .call()
        .expect("watch");
    std::thread::spawn(move || {
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            let at = Instant::now();
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                return;
            };
            let name = event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if arrivals.send((name, at)).is_err() {
                return;
            }
        }
    });
}

fn apply(server: &Server, manifest: &str) {
    create_objects(server, manifest);
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_alone(dir.path());
    // Warm up allocator and SQLite before measuring memory.
    for i in 0..20 {
        apply(&server, &pod(&format!("warm{i}")));
    }
    let before = rss_kib(server.proc.pid());
    let (arrivals, arrived) = mpsc::channel();
    for _ in 0..WATCHERS {
        open_watch(&server, arrivals.clone());
    }
    let idle = rss_kib(server.proc.pid());

    let mut latencies = Vec::new();
    let mut slowest = Vec::new();
    let mut round_trips = Vec::new();
    let mut spreads = Vec::new();
    for run in 0..RUNS {
        let name = format!("bench{run}");
        let started = Instant::now();
        apply(&server, &pod(&name));
        round_trips.push(started.elapsed());
        let mut got = 0;
        let deadline = started + Duration::from_secs(10);
        let mut first = Duration::MAX;
        let mut last = Duration::ZERO;
        while got < WATCHERS {
            let left = deadline.saturating_duration_since(Instant::now());
            let (event, at) = arrived
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("only {got} watchers saw {name}"));
            if event == name {
                got += 1;
                let latency = at - started;
                first = first.min(latency);
                last = last.max(latency);
                latencies.push(latency);
            }
        }
        slowest.push(last);
        spreads.push(last - first);
    }
    let after = rss_kib(server.proc.pid());

    println!("{WATCHERS} watchers, {RUNS} pod creations:");
    report("apply sent → ADDED read, every watcher", latencies);
    report(
        "apply sent → ADDED read, slowest watcher of each run",
        slowest,
    );
    report("apply round trip alone", round_trips);
    report("fan-out: first → last watcher of each run", spreads);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "server RSS: {:.1} MiB before the watches, {:.1} MiB with {WATCHERS} idle watches \
         (+{:.2} MiB), {:.1} MiB after {RUNS} events to each (+{:.2} MiB)",
        mib(before),
        mib(idle),
        mib(idle.saturating_sub(before)),
        mib(after),
        mib(after.saturating_sub(before))
    );
}
