//! Probe budgets (issue 13):
//! - 20 process pods, each with an exec liveness probe every 10 s and an httpGet readiness
//!   probe every 5 s: the agent's CPU (share of one core) and RSS over a minute, against the
//!   same 20 pods without probes measured in the same run;
//! - a liveness failure → the container restarted: from the moment the checked server starts
//!   failing to the new process, against failureThreshold × periodSeconds + 100 ms.
//!
//! Run: `scripts/bench-probes`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover_e2e::*;

const PODS: usize = 20;
const WINDOW: Duration = Duration::from_secs(60);

/// A tiny HTTP server the probes ask: 200 while `healthy`, 500 after; it notes when it first
/// answered 500.
struct Checked {
    port: u16,
    healthy: Arc<AtomicBool>,
    first_failure: Arc<Mutex<Option<Instant>>>,
}

fn serve() -> Checked {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let healthy = Arc::new(AtomicBool::new(true));
    let first_failure = Arc::new(Mutex::new(None));
    let (h, f) = (healthy.clone(), first_failure.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (h, f) = (h.clone(), f.clone());
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buffer = [0u8; 2048];
                let _ = stream.read(&mut buffer);
                let answer: &[u8] = if h.load(Ordering::SeqCst) {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                } else {
                    let mut first = f.lock().unwrap_or_else(|e| e.into_inner());
                    first.get_or_insert_with(Instant::now);
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = stream.write_all(answer);
            });
        }
    });
    Checked {
        port,
        healthy,
        first_failure,
    }
}

fn pod(name: &str, probes: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: bench
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    command: [sleep, '3600']
{probes}"
    )
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 12 and 13 after the command.
    fields
        .get(11)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The agent's CPU share of one core and its highest RSS over `WINDOW`.
fn measure(agent: &Agent) -> (f64, u64) {
    let pid = agent.proc.pid();
    let ticks_per_second = 100.0;
    let start_ticks = cpu_ticks(pid);
    let start = Instant::now();
    let mut peak = rss_kib(pid);
    while start.elapsed() < WINDOW {
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(rss_kib(pid));
    }
    let used = (cpu_ticks(pid) - start_ticks) as f64 / ticks_per_second;
    (used / start.elapsed().as_secs_f64() * 100.0, peak)
}

fn all_ready(server: &Server, prefix: &str) -> bool {
    let ready = server
        .items("pods")
        .iter()
        .filter(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with(prefix)
        })
        .filter(|p| container(p)["ready"] == true)
        .count();
    ready == PODS
}

fn delete_all(server: &Server) {
    let deleted = server.kubectl(&["delete", "pods", "--all", "--wait=false"]);
    assert!(deleted.status.success(), "{deleted:?}");
    wait_for("no pods", Duration::from_secs(60), || {
        server.items("pods").is_empty().then_some(())
    });
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_alone(dir.path());
    let agent = server.join(dir.path(), "bench", &[]);
    let checked = serve();

    for i in 0..PODS {
        server.apply(&pod(&format!("plain{i}"), ""));
    }
    wait_for("20 pods ready", Duration::from_secs(60), || {
        all_ready(&server, "plain").then_some(())
    });
    let (floor_cpu, floor_rss) = measure(&agent);
    delete_all(&server);

    let probes = format!(
        "    livenessProbe:
      exec: {{command: ['true']}}
      periodSeconds: 10
    readinessProbe:
      httpGet: {{port: {port}, path: /ready}}
      periodSeconds: 5
",
        port = checked.port
    );
    for i in 0..PODS {
        server.apply(&pod(&format!("probed{i}"), &probes));
    }
    wait_for("20 probed pods ready", Duration::from_secs(60), || {
        all_ready(&server, "probed").then_some(())
    });
    let (cpu, rss) = measure(&agent);
    delete_all(&server);
    println!(
        "20 pods, exec liveness every 10 s + httpGet readiness every 5 s, agent over {} s: CPU {cpu:.2} % of a core (budget 1 %), peak RSS {:.1} MiB (budget 8 MiB)",
        WINDOW.as_secs(),
        rss as f64 / 1024.0
    );
    println!(
        "  floor, the same 20 pods without probes: CPU {floor_cpu:.2} %, peak RSS {:.1} MiB",
        floor_rss as f64 / 1024.0
    );

    // Liveness: period 1 s, threshold 2: budget 2.1 s from the first failing answer's onset.
    let live = format!(
        "    livenessProbe:
      httpGet: {{port: {port}, path: /live}}
      periodSeconds: 1
      failureThreshold: 2
",
        port = checked.port
    );
    let mut from_onset = Vec::new();
    let mut from_first_failure = Vec::new();
    for run in 0..5 {
        checked.healthy.store(true, Ordering::SeqCst);
        *checked
            .first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let name = format!("live{run}");
        server.apply(&pod(&name, &live));
        let first = server.wait_pod(&name, "running", Duration::from_secs(30), |p| {
            container(p)["ready"] == true
        });
        let uid = first["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let before = wait_for("its process", Duration::from_secs(10), || {
            pod_main_process(&uid)
        });
        // Fail somewhere inside a probe period, as a real failure would.
        std::thread::sleep(Duration::from_millis(1000 + 137 * run as u64));
        let onset = Instant::now();
        checked.healthy.store(false, Ordering::SeqCst);
        let restarted = loop {
            if let Some(pid) = pod_main_process(&uid) {
                if pid != before {
                    break Instant::now();
                }
            }
            assert!(onset.elapsed() < Duration::from_secs(20), "never restarted");
            std::thread::sleep(Duration::from_millis(2));
        };
        let first_failure = checked
            .first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(onset);
        from_onset.push(restarted - onset);
        from_first_failure.push(restarted - first_failure);
        checked.healthy.store(true, Ordering::SeqCst);
        server.cli_ok(&["delete", "pod", &name]);
    }
    from_onset.sort();
    from_first_failure.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "liveness failure → new process (periodSeconds 1, failureThreshold 2; budget 2100 ms): from the failure's onset p50 {:.0} ms, max {:.0} ms; from the first failed answer p50 {:.0} ms, max {:.0} ms (floor: (threshold − 1) × period = 1000 ms)",
        ms(percentile(&from_onset, 0.5)),
        ms(*from_onset.last().unwrap_or(&Duration::ZERO)),
        ms(percentile(&from_first_failure, 0.5)),
        ms(*from_first_failure.last().unwrap_or(&Duration::ZERO)),
    );
}
