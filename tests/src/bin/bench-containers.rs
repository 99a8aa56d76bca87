//! Container budget: apply of a container Pod → Running visible via the API (image present),
//! p50/p99, beside `docker run -d` of the same image and command measured in the same run,
//! interleaved so both see the same machine.
//!
//! Run: `scripts/bench-containers`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drover_e2e::*;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let image = test_image();
    let node = "bench-containers";
    let _cleanup = EngineCleanup(vec![node.into()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_alone(dir.path());
    let _agent = server.join(dir.path(), node, &[]);

    let runs = 50;
    let mut drover = Vec::with_capacity(runs);
    let mut docker = Vec::with_capacity(runs);
    let mut docker_ids = Vec::with_capacity(runs);
    for i in 0..runs {
        let name = format!("c{i}");
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: {image}\n    command: [sleep, '3600']\n"
        );
        drover.push(time_apply_to_running(
            &server,
            &name,
            &manifest,
            Duration::from_secs(30),
        ));

        let start = Instant::now();
        let out = Command::new("docker")
            .args([
                "run",
                "-d",
                "--label",
                "drover-bench=1",
                &image,
                "sleep",
                "3600",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("docker run");
        docker.push(start.elapsed());
        assert!(out.status.success(), "docker run failed");
        docker_ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let _ = Command::new("docker")
        .args(["rm", "-f"])
        .args(&docker_ids)
        .stdout(Stdio::null())
        .status();
    drover.sort();
    docker.sort();
    let (d50, d99) = (percentile(&drover, 0.5), percentile(&drover, 0.99));
    let (k50, k99) = (percentile(&docker, 0.5), percentile(&docker, 0.99));
    println!(
        "apply -> container Running via API, {runs} pods: p50 {:.1} ms, p99 {:.1} ms",
        ms(d50),
        ms(d99)
    );
    println!(
        "docker run -d of the same image, {runs} runs:    p50 {:.1} ms, p99 {:.1} ms",
        ms(k50),
        ms(k99)
    );
    println!(
        "ratio: p50 {:.2}x, p99 {:.2}x (goal <= 1.2x)",
        ms(d50) / ms(k50),
        ms(d99) / ms(k99)
    );
}
