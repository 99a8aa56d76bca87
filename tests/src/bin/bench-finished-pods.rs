//! Agent disk use with many finished pods (issue 12): a Job of 10,000 completions runs on
//! one agent with the default limits on finished pods; the agent's data directory is
//! measured as the Job goes and at its end, against the same directory with no pod.
//!
//! Run: `scripts/bench-finished-pods` (`BENCH_COMPLETIONS` changes the count).

use std::path::Path;
use std::time::{Duration, Instant};

use drover_e2e::*;

fn disk_use(dir: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-s", "-B1"])
        .arg(dir)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn succeeded(server: &Server) -> u64 {
    let out = server.cli(&["get", "job", "many", "-o", "json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|j| j["status"]["succeeded"].as_u64())
        .unwrap_or(0)
}

fn main() {
    let completions: u64 = std::env::var("BENCH_COMPLETIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_alone(dir.path());
    let agent = server.join(dir.path(), "bench", &[]);
    let empty = disk_use(&agent.data_dir);
    server.apply(&format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: many
spec:
  completions: {completions}
  parallelism: 20
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: [sh, -c, 'echo finished $$$$']
"
    ));
    let start = Instant::now();
    let mut peak = 0;
    let mut last_report = Instant::now();
    loop {
        let done = succeeded(&server);
        peak = peak.max(disk_use(&agent.data_dir));
        if last_report.elapsed() >= Duration::from_secs(30) {
            println!(
                "  {done} of {completions} done after {:.0} s; data directory {} KiB",
                start.elapsed().as_secs_f64(),
                disk_use(&agent.data_dir) / 1024
            );
            last_report = Instant::now();
        }
        if done >= completions {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3600),
            "the Job did not finish"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Let the agent forget what its limits say it must.
    let settled = wait_for(
        "the data directory to settle",
        Duration::from_secs(30),
        || {
            let a = disk_use(&agent.data_dir);
            std::thread::sleep(Duration::from_secs(6));
            let b = disk_use(&agent.data_dir);
            (a == b).then_some(b)
        },
    );
    let records = std::fs::read_dir(agent.data_dir.join("state/pods")).map_or(0, |d| d.count());
    println!(
        "{completions} finished pods on one agent (--max-finished-pods 100, --max-finished-age 24h), {:.0} s:",
        start.elapsed().as_secs_f64()
    );
    println!("  data directory with no pod: {} KiB", empty / 1024);
    println!("  peak while running: {} KiB", peak / 1024);
    println!(
        "  at the end: {} KiB, {records} pod records kept",
        settled / 1024
    );
}
