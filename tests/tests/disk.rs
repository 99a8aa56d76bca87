//! A full disk breaks nothing: with the agent's data directory on a small tmpfs that fills
//! during a Job, the node shows DiskPressure, no new pod starts, the agent restarts on the
//! full disk, and once space is freed the Job completes without any finished pod running
//! again. Needs root (it mounts a tmpfs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use drover_e2e::*;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("mount");
        assert!(status.success(), "mounting a tmpfs needs root");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn available_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Fills the filesystem of `path` to the last byte with a file it returns.
fn fill(path: &Path) -> PathBuf {
    let filler = path.join("filler");
    let status = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("dd");
    // dd ends with "No space left on device": that is the point.
    assert!(!status.success());
    assert!(
        available_bytes(path) < 64 * 1024,
        "{}",
        available_bytes(path)
    );
    filler
}

fn condition(server: &Server, node: &str, kind: &str) -> Option<String> {
    let node = server.node(node)?;
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .map(str::to_string)
}

/// How many times the agent's logs say it started each pod.
fn starts_per_pod(logs: &[PathBuf]) -> std::collections::BTreeMap<String, usize> {
    let mut starts = std::collections::BTreeMap::new();
    for log in logs {
        for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
            if !line.contains("starting pod") {
                continue;
            }
            if let Some(uid) = line
                .split("uid=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            {
                *starts.entry(uid.to_string()).or_insert(0) += 1;
            }
        }
    }
    starts
}

#[test]
fn a_full_disk_holds_new_pods_lets_the_agent_restart_and_reruns_no_finished_pod() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let disk = Tmpfs::mount(&dir.path().join("agent-edge"), "24m");
    let mut agent = server.join(
        dir.path(),
        "edge",
        &["--min-free-disk", "4194304", "--max-finished-pods", "4"],
    );
    let first_log = agent.proc.log.clone();
    server.apply(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: work
spec:
  completions: 12
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: [sh, -c, 'echo working; sleep 1']
",
    );
    wait_for("some pods done", Duration::from_secs(30), || {
        (server.job_status("work")["succeeded"].as_u64() >= Some(2)).then_some(())
    });
    let filler = fill(&disk.0);
    wait_for("DiskPressure on the node", Duration::from_secs(15), || {
        (condition(&server, "edge", "DiskPressure").as_deref() == Some("True")).then_some(())
    });
    let node = server.node("edge").unwrap();
    assert!(
        node["spec"]["taints"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/disk-pressure")),
        "{node}"
    );
    // Whatever ran finishes; nothing new starts while the disk is full.
    let held = server.job_status("work")["succeeded"].as_u64().unwrap_or(0);
    holds_for(
        "no more progress on a full disk",
        Duration::from_secs(4),
        || server.job_status("work")["succeeded"].as_u64().unwrap_or(0) <= held + 2,
    );
    let progress = server.job_status("work")["succeeded"].as_u64().unwrap_or(0);
    holds_for(
        "no pod starts on a full disk",
        Duration::from_secs(3),
        || server.job_status("work")["succeeded"].as_u64().unwrap_or(0) == progress,
    );

    // The agent starts again on the full disk.
    agent.proc.signal("TERM");
    agent.proc.wait_exit(Duration::from_secs(15));
    agent.restart();
    server.wait_ready_status("edge", "True", Duration::from_secs(15));
    assert!(agent.proc.is_running(), "the agent runs on a full disk");

    std::fs::remove_file(&filler).unwrap();
    wait_for("DiskPressure gone", Duration::from_secs(15), || {
        (condition(&server, "edge", "DiskPressure").as_deref() == Some("False")).then_some(())
    });
    let status = wait_for("the Job to complete", Duration::from_secs(60), || {
        let status = server.job_status("work");
        (status["succeeded"] == 12).then_some(status)
    });
    assert!(
        status["failed"].is_null() || status["failed"] == 0,
        "{status}"
    );
    let starts = starts_per_pod(&[first_log, agent.proc.log.clone()]);
    assert_eq!(starts.len(), 12, "{starts:?}");
    assert!(
        starts.values().all(|n| *n == 1),
        "a pod ran twice: {starts:?}"
    );
    // Finished pods are kept on the node within the limit.
    let records = agent.data_dir.join("state/pods");
    wait_for(
        "finished pods within the limit",
        Duration::from_secs(15),
        || (std::fs::read_dir(&records).map_or(0, |d| d.count()) <= 4).then_some(()),
    );
}
