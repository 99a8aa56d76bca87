//! Jobs and CronJobs on real agents.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use drover_e2e::*;
use serde_json::Value;

fn job(name: &str, extra_spec: &str, script: &str, annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
{annotations}spec:
{extra_spec}  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: [sh, -c, {script:?}]
"
    )
}

fn job_object(server: &Server, name: &str) -> Option<Value> {
    let out = server.cli(&["get", "job", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn condition(job: &Value, kind: &str) -> bool {
    job["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

fn pods_of(server: &Server, job: &str) -> Vec<Value> {
    server
        .items("pods")
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == job)
        .collect()
}

fn two_agents(dir: &std::path::Path, server_args: ServerOptions) -> (Server, Vec<Agent>) {
    let server = Server::start(
        dir,
        ServerOptions {
            disable_agent: true,
            ..server_args
        },
    );
    let agents = vec![
        Agent::start(dir, &server.broker, "w1", &[]),
        Agent::start(dir, &server.broker, "w2", &[]),
    ];
    server.wait_ready_status("w1", "True", Duration::from_secs(10));
    server.wait_ready_status("w2", "True", Duration::from_secs(10));
    (server, agents)
}

#[test]
fn completions_8_parallelism_2_never_runs_more_than_2_and_completes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents) = two_agents(dir.path(), ServerOptions::default());
    server.apply(&job(
        "waves",
        "  completions: 8\n  parallelism: 2\n",
        "sleep 0.3",
        "",
    ));
    let mut max_running = 0;
    let done = wait_for("the Job to complete", Duration::from_secs(60), || {
        let pods = pods_of(&server, "waves");
        let running = pods
            .iter()
            .filter(|p| phase(p) == "Running" || phase(p) == "Pending")
            .count();
        max_running = max_running.max(running);
        assert!(running <= 2, "{running} pods active at once");
        let job = job_object(&server, "waves")?;
        assert!(job["status"]["active"].as_u64().unwrap_or(0) <= 2, "{job}");
        condition(&job, "Complete").then_some(job)
    });
    assert_eq!(done["status"]["succeeded"], 8);
    assert!(!condition(&done, "Failed"));
    let pods = pods_of(&server, "waves");
    assert_eq!(pods.iter().filter(|p| phase(p) == "Succeeded").count(), 8);
    let nodes: BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    assert_eq!(nodes.len(), 2, "spread over the fleet: {nodes:?}");
    assert_eq!(max_running, 2);
    assert!(server
        .cli_ok(&["get", "jobs"])
        .lines()
        .any(|l| l.starts_with("waves") && l.contains("Complete") && l.contains("8/8")));
}

#[test]
fn a_job_with_backoff_limit_2_fails_after_exactly_3_failed_pods() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents) = two_agents(dir.path(), ServerOptions::default());
    server.apply(&job("doomed", "  backoffLimit: 2\n", "exit 1", ""));
    let out = server.cli(&[
        "wait",
        "--for=condition=Failed",
        "job/doomed",
        "--timeout",
        "60s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = job_object(&server, "doomed").unwrap();
    assert_eq!(failed["status"]["failed"], 3);
    assert!(!condition(&failed, "Complete"));
    let reason = failed["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap()["reason"]
        .clone();
    assert_eq!(reason, "BackoffLimitExceeded");
    assert_eq!(pods_of(&server, "doomed").len(), 3);
    // Waiting for Complete on a failed Job can never succeed: exit code 1 at once, with why.
    let out = server.cli(&[
        "wait",
        "--for=condition=Complete",
        "job/doomed",
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BackoffLimitExceeded"));
}

#[test]
fn succeeded_is_exact_through_repeated_controller_kills() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _agents) = two_agents(dir.path(), ServerOptions::default());
    server.apply(&job(
        "many",
        "  completions: 200\n  parallelism: 20\n",
        "true",
        "",
    ));
    let started = Instant::now();
    let mut kills = 0;
    let done = loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the Job did not complete"
        );
        if let Some(job) = job_object(&server, "many") {
            if condition(&job, "Complete") {
                break job;
            }
            let succeeded = job["status"]["succeeded"].as_u64().unwrap_or(0);
            // Kill the controller (and its broker) at varying points of the Job.
            if kills < 5 && succeeded >= kills * 30 + 10 {
                server.kill();
                server.start_again();
                kills += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(kills >= 3, "the controller was killed {kills} times");
    assert_eq!(done["status"]["succeeded"], 200);
    let succeeded_pods = pods_of(&server, "many")
        .iter()
        .filter(|p| phase(p) == "Succeeded")
        .count();
    assert_eq!(succeeded_pods, 200, "no extra successful pods");
}

#[test]
fn a_dependency_chain_runs_strictly_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents) = two_agents(dir.path(), ServerOptions::default());
    let script = "echo start $(date +%s%N); sleep 0.5; echo end $(date +%s%N)";
    let chain = [
        job(
            "c",
            "",
            script,
            "  annotations:\n    drover.io/depends-on: b\n",
        ),
        job(
            "b",
            "",
            script,
            "  annotations:\n    drover.io/depends-on: a\n",
        ),
        job("a", "", script, ""),
    ];
    server.apply(&chain.join("---\n"));
    let pending = job_object(&server, "c").unwrap();
    assert!(
        pending["status"]["conditions"][0]["reason"] == "WaitingForDependencies",
        "{pending}"
    );
    let out = server.cli(&[
        "wait",
        "--for=condition=Complete",
        "job/c",
        "--timeout",
        "60s",
    ]);
    assert!(out.status.success());
    let times = |name: &str| -> (u128, u128) {
        let log = server.cli_ok(&["logs", &format!("job/{name}")]);
        let value = |prefix: &str| {
            log.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|v| v.trim().parse::<u128>().ok())
                .unwrap_or_else(|| panic!("no {prefix} in {log}"))
        };
        (value("start "), value("end "))
    };
    let (a, b, c) = (times("a"), times("b"), times("c"));
    assert!(a.1 < b.0, "b started before a ended");
    assert!(b.1 < c.0, "c started before b ended");

    server.apply(&job("broken", "  backoffLimit: 0\n", "exit 1", ""));
    server.apply(&job(
        "after-broken",
        "",
        "true",
        "  annotations:\n    drover.io/depends-on: broken\n",
    ));
    let out = server.cli(&[
        "wait",
        "--for=condition=Failed",
        "job/after-broken",
        "--timeout",
        "30s",
    ]);
    assert!(out.status.success());
    let after = job_object(&server, "after-broken").unwrap();
    let failed = after["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap()
        .clone();
    assert_eq!(failed["reason"], "DependencyFailed");
    assert!(pods_of(&server, "after-broken").is_empty());
}

#[test]
fn job_pods_on_a_lost_node_are_evicted_and_replaced_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
        &["--default-unreachable-toleration", "2s"],
    );
    let lost = Agent::start(dir.path(), &server.broker, "lost", &["--label", "site=a"]);
    let _spare = Agent::start(dir.path(), &server.broker, "spare", &[]);
    server.wait_ready_status("lost", "True", Duration::from_secs(10));
    server.wait_ready_status("spare", "True", Duration::from_secs(10));
    // Lands on "lost" (the only node with site=a), then "spare" gets the label too.
    server.apply(&job("resilient", "", "sleep 4", "").replace(
        "      restartPolicy: Never\n",
        "      restartPolicy: Never\n      nodeSelector: {site: a}\n",
    ));
    let first = wait_for("the pod on lost", Duration::from_secs(10), || {
        pods_of(&server, "resilient")
            .into_iter()
            .find(|p| phase(p) == "Running")
    });
    assert_eq!(first["spec"]["nodeName"], "lost");
    let first_uid = first["metadata"]["uid"].as_str().unwrap().to_string();
    server.cli_ok(&["label", "node", "spare", "site=a"]);

    lost.proc.signal("STOP");
    let replacement = wait_for("a replacement on spare", Duration::from_secs(20), || {
        pods_of(&server, "resilient")
            .into_iter()
            .find(|p| p["spec"]["nodeName"] == "spare" && phase(p) == "Running")
    });
    let evicted = pods_of(&server, "resilient")
        .into_iter()
        .find(|p| p["metadata"]["uid"] == first_uid.as_str())
        .unwrap();
    assert!(
        evicted["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "DisruptionTarget"),
        "{evicted}"
    );
    assert!(replacement["metadata"]["uid"] != first_uid.as_str());

    // The node returns: its agent stops the evicted pod.
    lost.proc.signal("CONT");
    wait_for(
        "the evicted pod to stop on lost",
        Duration::from_secs(10),
        || pod_processes(&first_uid).is_empty().then_some(()),
    );
    let done = wait_for("the Job to complete", Duration::from_secs(30), || {
        job_object(&server, "resilient").filter(|j| condition(j, "Complete"))
    });
    assert_eq!(done["status"]["succeeded"], 1);
    assert_eq!(
        done["status"]["failed"], 1,
        "the eviction counts as a failure"
    );
}

/// A one-pod Job pinned to the node "lost" (the only one labelled site=a), running, with
/// "spare" labelled afterwards so a replacement can land there.
fn job_on_the_node_about_to_be_lost(
    dir: &std::path::Path,
    name: &str,
    extra_spec: &str,
    script: &str,
) -> (Server, Agent, Agent, String) {
    let server = Server::start_with(
        dir,
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
        &["--default-unreachable-toleration", "1s"],
    );
    let lost = Agent::start(dir, &server.broker, "lost", &["--label", "site=a"]);
    let spare = Agent::start(dir, &server.broker, "spare", &[]);
    server.wait_ready_status("lost", "True", Duration::from_secs(10));
    server.wait_ready_status("spare", "True", Duration::from_secs(10));
    server.apply(&job(name, extra_spec, script, "").replace(
        "      restartPolicy: Never\n",
        "      restartPolicy: Never\n      nodeSelector: {site: a}\n",
    ));
    let first = wait_for("the pod on lost", Duration::from_secs(10), || {
        pods_of(&server, name)
            .into_iter()
            .find(|p| phase(p) == "Running")
    });
    assert_eq!(first["spec"]["nodeName"], "lost");
    server.cli_ok(&["label", "node", "spare", "site=a"]);
    let uid = first["metadata"]["uid"].as_str().unwrap().to_string();
    (server, lost, spare, uid)
}

fn has_condition(pod: &Value, kind: &str) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind))
}

#[test]
fn a_pod_that_finished_on_a_frozen_node_after_its_replacement_started_is_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("runs");
    let script = format!("echo run >> {}; sleep 3", marker.display());
    let (server, lost, _spare, first_uid) =
        job_on_the_node_about_to_be_lost(dir.path(), "twice", "", &script);

    // The agent freezes; its pod runs on under its keeper and finishes unseen.
    lost.proc.signal("STOP");
    wait_for("a replacement on spare", Duration::from_secs(20), || {
        pods_of(&server, "twice")
            .into_iter()
            .find(|p| p["spec"]["nodeName"] == "spare")
    });
    wait_for(
        "the frozen node's pod to finish",
        Duration::from_secs(10),
        || pod_processes(&first_uid).is_empty().then_some(()),
    );
    lost.proc.signal("CONT");

    let event = wait_for(
        "the SupersededResult event",
        Duration::from_secs(20),
        || {
            server.items("events").into_iter().find(|e| {
                e["reason"] == "SupersededResult" && e["involvedObject"]["name"] == "twice"
            })
        },
    );
    assert_eq!(event["type"], "Warning");
    let message = event["message"].as_str().unwrap();
    assert!(
        message.contains("reported Succeeded after it had been counted as Failed;"),
        "{message}"
    );
    let done = wait_for("the Job to complete", Duration::from_secs(30), || {
        job_object(&server, "twice").filter(|j| condition(j, "Complete"))
    });
    assert_eq!(done["status"]["succeeded"], 1, "{done}");
    assert_eq!(
        done["status"]["failed"], 1,
        "the eviction, counted once: {done}"
    );
    let runs = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(runs.lines().count(), 2, "at least once: both copies ran");
    let superseded = server
        .items("events")
        .into_iter()
        .filter(|e| e["reason"] == "SupersededResult")
        .count();
    assert_eq!(superseded, 1, "reported once");
}

#[test]
fn with_pod_replacement_policy_failed_a_pod_on_a_lost_node_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("runs");
    let script = format!("echo run >> {}; sleep 3", marker.display());
    let (server, lost, _spare, first_uid) = job_on_the_node_about_to_be_lost(
        dir.path(),
        "once",
        "  podReplacementPolicy: Failed\n",
        &script,
    );
    let shown = job_object(&server, "once").unwrap();
    assert_eq!(shown["spec"]["podReplacementPolicy"], "Failed");

    lost.proc.signal("STOP");
    let evicted = wait_for("the eviction", Duration::from_secs(20), || {
        pods_of(&server, "once").into_iter().find(|p| {
            p["metadata"]["uid"] == first_uid.as_str() && has_condition(p, "DisruptionTarget")
        })
    });
    assert!(
        evicted["metadata"]["deletionTimestamp"].is_string(),
        "{evicted}"
    );
    assert_eq!(
        phase(&evicted),
        "Running",
        "its fate is unknown, not Failed"
    );
    let job = job_object(&server, "once").unwrap();
    assert_eq!(job["status"]["terminating"], 1, "{job}");
    // The pod finishes where nobody sees it; no replacement starts meanwhile.
    wait_for(
        "the frozen node's pod to finish",
        Duration::from_secs(10),
        || pod_processes(&first_uid).is_empty().then_some(()),
    );
    assert_eq!(
        pods_of(&server, "once").len(),
        1,
        "not replaced while its node is lost"
    );

    lost.proc.signal("CONT");
    let done = wait_for("the Job to complete", Duration::from_secs(30), || {
        job_object(&server, "once").filter(|j| condition(j, "Complete"))
    });
    assert_eq!(done["status"]["succeeded"], 1, "{done}");
    assert!(
        done["status"]["failed"].as_u64().unwrap_or(0) == 0,
        "{done}"
    );
    let runs = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(runs.lines().count(), 1, "ran once");
    let created = server
        .items("events")
        .into_iter()
        .filter(|e| e["reason"] == "SuccessfulCreate" && e["involvedObject"]["name"] == "once")
        .count();
    assert_eq!(created, 1, "one pod in all");
}

#[test]
fn nothing_is_evicted_when_every_node_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
        &["--default-unreachable-toleration", "1s"],
    );
    let only = Agent::start(dir.path(), &server.broker, "only", &[]);
    server.wait_ready_status("only", "True", Duration::from_secs(10));
    server.apply(&job("patient", "", "sleep 6", ""));
    let pod = wait_for("the pod", Duration::from_secs(10), || {
        pods_of(&server, "patient")
            .into_iter()
            .find(|p| phase(p) == "Running")
    });
    only.proc.signal("STOP");
    server.wait_ready_status("only", "Unknown", GRACE + Duration::from_secs(2));
    holds_for("no eviction", Duration::from_secs(2), || {
        pods_of(&server, "patient")
            .iter()
            .all(|p| p["metadata"]["deletionTimestamp"].is_null())
    });
    only.proc.signal("CONT");
    let done = wait_for("the Job to complete", Duration::from_secs(20), || {
        job_object(&server, "patient").filter(|j| condition(j, "Complete"))
    });
    assert_eq!(done["status"]["failed"], 0);
    assert_eq!(
        pods_of(&server, "patient")[0]["metadata"]["uid"],
        pod["metadata"]["uid"]
    );
}

#[test]
fn an_every_minute_cronjob_creates_its_job_named_by_the_rule_and_per_node_runs_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _agents) = two_agents(dir.path(), ServerOptions::default());
    let cron = |name: &str, annotations: &str| {
        format!(
            "apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
{annotations}spec:
  schedule: '* * * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: main
            command: [sh, -c, 'echo ran on $DROVER_NODE_NAME']
"
        )
    };
    server.apply(&cron("tick", ""));
    server.apply(&cron(
        "everywhere",
        "  annotations:\n    drover.io/per-node: \"true\"\n",
    ));
    let created = wait_for("the first Job", Duration::from_secs(75), || {
        server
            .items("jobs")
            .into_iter()
            .find(|j| j["metadata"]["name"].as_str().unwrap().starts_with("tick-"))
    });
    let name = created["metadata"]["name"].as_str().unwrap();
    let minutes: i64 = name.trim_start_matches("tick-").parse().unwrap();
    let cj = server
        .items("cronjobs")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "tick")
        .unwrap();
    let last = chrono_like_seconds(cj["status"]["lastScheduleTime"].as_str().unwrap());
    assert_eq!(
        minutes * 60,
        last,
        "the Job is named after its scheduled minute"
    );
    assert_eq!(created["metadata"]["ownerReferences"][0]["kind"], "CronJob");

    let per_node = wait_for("the per-node Job", Duration::from_secs(10), || {
        server.items("jobs").into_iter().find(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("everywhere-")
        })
    });
    let per_node_name = per_node["metadata"]["name"].as_str().unwrap().to_string();
    let done = wait_for(
        "the per-node Job to complete",
        Duration::from_secs(20),
        || job_object(&server, &per_node_name).filter(|j| condition(j, "Complete")),
    );
    assert_eq!(done["status"]["succeeded"], 2);
    let nodes: BTreeSet<String> = pods_of(&server, &per_node_name)
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes, ["w1".to_string(), "w2".to_string()].into());
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp like `2026-11-28T10:05:00Z`.
fn chrono_like_seconds(text: &str) -> i64 {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", text, "+%s"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A server with its own agent, Ready.
fn one_node(dir: &std::path::Path) -> Server {
    let server = Server::start(dir, ServerOptions::default());
    server.wait_ready_status("server-node", "True", Duration::from_secs(10));
    server
}

fn condition_of(job: &Value, kind: &str) -> Option<Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
}

fn live_running_pod(server: &Server, job: &str, except: &[String]) -> Option<String> {
    pods_of(server, job)
        .into_iter()
        .filter(|p| phase(p) == "Running" && p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .find(|name| !except.contains(name))
}

fn kubectl_ok(server: &Server, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn running_pods_a_user_deletes_count_as_failed_and_use_up_the_backoff_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_node(dir.path());
    server.apply(&job("victim", "  backoffLimit: 1\n", "sleep 60", ""));
    let mut deleted = Vec::new();
    for failures in 1..=2u64 {
        let pod = wait_for("a running pod", Duration::from_secs(30), || {
            live_running_pod(&server, "victim", &deleted)
        });
        kubectl_ok(&server, &["delete", "pod", &pod, "--wait=false"]);
        deleted.push(pod);
        let job = wait_for("the deletion counted", Duration::from_secs(30), || {
            job_object(&server, "victim").filter(|j| j["status"]["failed"] == failures)
        });
        if failures == 1 {
            assert!(
                !condition(&job, "Failed"),
                "one failure is within the limit: {job}"
            );
        }
    }
    let failed = wait_for("the Job to fail", Duration::from_secs(30), || {
        job_object(&server, "victim").filter(|j| condition(j, "Failed"))
    });
    assert_eq!(failed["status"]["failed"], 2);
    assert_eq!(
        condition_of(&failed, "Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
}

#[test]
fn pods_stopped_at_the_active_deadline_count_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_node(dir.path());
    server.apply(&job(
        "late",
        "  activeDeadlineSeconds: 2\n  completions: 2\n  parallelism: 2\n",
        "sleep 60",
        "",
    ));
    let failed = wait_for("the Job to fail", Duration::from_secs(30), || {
        job_object(&server, "late").filter(|j| condition(j, "Failed"))
    });
    assert_eq!(
        condition_of(&failed, "Failed").unwrap()["reason"],
        "DeadlineExceeded"
    );
    assert_eq!(failed["status"]["failed"], 2, "{failed}");
    assert_eq!(failed["status"]["succeeded"], 0);
}

#[test]
fn a_resumed_job_keeps_suspended_false_with_reason_job_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_node(dir.path());
    server.apply(&job("paused", "  suspend: true\n", "true", ""));
    wait_for("Suspended", Duration::from_secs(10), || {
        job_object(&server, "paused").filter(|j| condition(j, "Suspended"))
    });
    kubectl_ok(
        &server,
        &[
            "patch",
            "job",
            "paused",
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ],
    );
    let done = wait_for("the Job to complete", Duration::from_secs(30), || {
        job_object(&server, "paused").filter(|j| condition(j, "Complete"))
    });
    let suspended = condition_of(&done, "Suspended").expect("Suspended stays");
    assert_eq!(suspended["status"], "False", "{suspended}");
    assert_eq!(suspended["reason"], "JobResumed");
    assert_eq!(suspended["message"], "Job resumed");
}

#[test]
fn a_matched_success_policy_names_its_rule_and_two_completed_indexes_read_0_1() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_node(dir.path());
    server.apply(&job(
        "early",
        "  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  successPolicy:\n    rules:\n    - succeededIndexes: \"2\"\n    - succeededIndexes: \"0,1\"\n",
        "if [ \"$JOB_COMPLETION_INDEX\" = 2 ]; then sleep 60; fi",
        "",
    ));
    let done = wait_for("the Job to complete", Duration::from_secs(30), || {
        job_object(&server, "early").filter(|j| condition(j, "Complete"))
    });
    assert_eq!(done["status"]["completedIndexes"], "0,1");
    assert_eq!(
        done["status"]["failed"], 0,
        "the stopped index is not a failure"
    );
    for kind in ["SuccessCriteriaMet", "Complete"] {
        let c = condition_of(&done, kind).unwrap();
        assert_eq!(c["reason"], "SuccessPolicy", "{c}");
        assert_eq!(c["message"], "Matched rules at index 1", "{c}");
    }
}

#[test]
fn a_fail_job_rule_match_says_which_container_pod_exit_code_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_node(dir.path());
    server.apply(&job(
        "fatal",
        "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes:\n        operator: In\n        values: [42]\n",
        "exit 42",
        "",
    ));
    let failed = wait_for("the Job to fail", Duration::from_secs(30), || {
        job_object(&server, "fatal").filter(|j| condition(j, "Failed"))
    });
    let pods = pods_of(&server, "fatal");
    assert_eq!(pods.len(), 1);
    let pod = pods[0]["metadata"]["name"].as_str().unwrap();
    let c = condition_of(&failed, "Failed").unwrap();
    assert_eq!(c["reason"], "PodFailurePolicy");
    assert_eq!(
        c["message"],
        format!(
            "Container main for pod default/{pod} failed with exit code 42 matching FailJob rule at index 0"
        )
        .as_str()
    );
}

#[test]
fn an_active_job_deleted_from_under_its_cronjob_is_reported_missing() {
    let dir = tempfile::tempdir().unwrap();
    let server = one_node(dir.path());
    server.apply(
        "apiVersion: batch/v1
kind: CronJob
metadata:
  name: rare
spec:
  schedule: '0 0 1 1 *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            command: [sleep, '60']
",
    );
    kubectl_ok(
        &server,
        &["create", "job", "by-hand", "--from=cronjob/rare"],
    );
    let active = |server: &Server| -> Vec<String> {
        let out = server.cli_ok(&["get", "cronjob", "rare", "-o", "json"]);
        let cj: Value = serde_json::from_str(&out).unwrap();
        cj["status"]["active"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    };
    wait_for(
        "the Job in the active list",
        Duration::from_secs(10),
        || (active(&server) == ["by-hand"]).then_some(()),
    );
    kubectl_ok(&server, &["delete", "job", "by-hand", "--wait=false"]);
    let event = wait_for("the MissingJob event", Duration::from_secs(10), || {
        server
            .items("events")
            .into_iter()
            .find(|e| e["reason"] == "MissingJob" && e["involvedObject"]["name"] == "rare")
    });
    assert_eq!(event["message"], "Active job went missing: by-hand");
    assert_eq!(event["involvedObject"]["kind"], "CronJob");
    assert_eq!(event["type"], "Normal", "as Kubernetes records it");
    assert!(active(&server).is_empty());
}
