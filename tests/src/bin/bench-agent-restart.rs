//! Agent restart budget (issue 12): with 50 running process pods, the time from starting the
//! agent again to (a) every pod re-adopted and (b) the controller acknowledging the status
//! of every pod; against the floor of starting the agent binary (`--version`) plus one MQTT
//! round trip, measured in the same run. Also checks that no pod process changed.
//!
//! Run: `scripts/bench-agent-restart`.

use std::time::{Duration, Instant};

use drover_e2e::*;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn process_start_floor(runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::process::Command::new(binary("drover-agent"))
                .arg("--version")
                .output()
                .expect("drover-agent --version");
            start.elapsed()
        })
        .collect();
    times.sort();
    percentile(&times, 0.5)
}

/// When the agent's log first contains `text`, measured from `start` (polled every
/// millisecond: `wait_for`'s 20 ms would swamp the figure).
fn logged_after(agent: &Agent, text: &str, start: Instant) -> Duration {
    let deadline = start + Duration::from_secs(10);
    loop {
        if std::fs::read_to_string(&agent.proc.log).is_ok_and(|log| log.contains(text)) {
            return start.elapsed();
        }
        assert!(Instant::now() < deadline, "the agent never logged {text:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "bench", &[]);
    let pods = 50;
    for i in 0..pods {
        server.apply(&process_pod(
            &format!("p{i}"),
            "bench",
            "Always",
            "sleep 3600",
            1,
        ));
    }
    let uids: Vec<String> = wait_for("50 pods Running", Duration::from_secs(60), || {
        let running: Vec<String> = server
            .items("pods")
            .iter()
            .filter(|p| phase(p) == "Running")
            .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        (running.len() == pods).then_some(running)
    });
    let processes = || -> Vec<Option<u32>> { uids.iter().map(|u| pod_main_process(u)).collect() };
    let before = wait_for("every pod's process", Duration::from_secs(10), || {
        let found = processes();
        found.iter().all(Option::is_some).then_some(found)
    });

    let runs = 10;
    let (mut adopted, mut reported) = (Vec::new(), Vec::new());
    for run in 0..runs {
        agent
            .proc
            .signal(if run % 2 == 0 { "TERM" } else { "KILL" });
        agent.proc.wait_exit(Duration::from_secs(15));
        let start = Instant::now();
        agent.restart();
        let adopted_at = logged_after(&agent, &format!("containers={pods}"), start);
        let reported_at = logged_after(&agent, "acknowledged the status of every pod", start);
        adopted.push(adopted_at);
        reported.push(reported_at);
        assert_eq!(processes(), before, "a pod process changed in run {run}");
    }
    adopted.sort();
    reported.sort();
    let floor_start = process_start_floor(20);
    let floor_rtt = mqtt_round_trip(&server, 50);
    let floor = floor_start + floor_rtt;
    let p50 = percentile(&reported, 0.5);
    println!("agent restart with {pods} running process pods, {runs} restarts (SIGTERM and kill -9 alternating):");
    println!(
        "  start -> every pod re-adopted: p50 {:.1} ms, max {:.1} ms",
        ms(percentile(&adopted, 0.5)),
        ms(adopted[adopted.len() - 1])
    );
    println!(
        "  start -> controller acknowledged every pod's status: p50 {:.1} ms, max {:.1} ms (budget <= 100 ms)",
        ms(p50),
        ms(reported[reported.len() - 1])
    );
    println!(
        "  floor: agent binary start (--version) p50 {:.2} ms + MQTT QoS 1 round trip p50 {:.2} ms = {:.2} ms; ratio {:.1}x",
        ms(floor_start),
        ms(floor_rtt),
        ms(floor),
        p50.as_secs_f64() / floor.as_secs_f64()
    );
    println!("  pod processes unchanged across all restarts: yes ({pods} pods)");
}
