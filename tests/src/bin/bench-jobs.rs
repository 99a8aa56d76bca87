//! Job throughput: a Job of 2,000 pods of `true`, parallelism 200, over 10 real agents;
//! completed pods per second from apply to Complete.
//!
//! Run: `scripts/bench-jobs`.

use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

const AGENTS: usize = 10;
const PODS: u32 = 2000;
const PARALLELISM: u32 = 200;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
    );
    let _agents: Vec<Agent> = (0..AGENTS)
        .map(|i| Agent::start(dir.path(), &server.broker, &format!("worker-{i}"), &[]))
        .collect();
    for i in 0..AGENTS {
        server.wait_ready_status(&format!("worker-{i}"), "True", Duration::from_secs(20));
    }
    let manifest = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: burst}}\nspec:\n  completions: {PODS}\n  parallelism: {PARALLELISM}\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        command: ['true']\n"
    );
    let start = Instant::now();
    create_objects(&server, &manifest);
    let job = loop {
        let job: Value = server
            .api_get("/apis/batch/v1/namespaces/default/jobs/burst")
            .call()
            .expect("get job")
            .body_mut()
            .read_json()
            .expect("job json");
        let complete = job["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Complete"));
        if complete {
            break job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the Job did not complete: {}",
            job["status"]
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = start.elapsed().as_secs_f64();
    assert_eq!(job["status"]["succeeded"], PODS);
    println!(
        "Job of {PODS} pods of `true`, parallelism {PARALLELISM}, {AGENTS} agents: {took:.1} s, {:.0} pods completed per second",
        f64::from(PODS) / took
    );
}
