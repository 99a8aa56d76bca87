//! Pods outlive their agent: a clean stop, a kill -9 and a new agent binary leave process
//! pods running; the next agent run adopts them (same processes, no restart counted, no
//! back-off), and what ended meanwhile is reported with its real exit code.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn agent_log_contains(agent: &Agent, text: &str) -> bool {
    std::fs::read_to_string(&agent.proc.log).is_ok_and(|log| log.contains(text))
}

/// Restarts the agent after stopping it with `signal` and waits until the new run adopted
/// what it found.
fn restart_agent(agent: &mut Agent, signal: &str) {
    agent.proc.signal(signal);
    agent.proc.wait_exit(Duration::from_secs(15));
    agent.restart();
    wait_for(
        "the restarted agent to adopt its pods",
        Duration::from_secs(10),
        || agent_log_contains(agent, "adopted the process pods").then_some(()),
    );
}

/// The agent binary copied into `dir`, so that a test can replace it as an upgrade does.
fn own_agent_binary(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("drover-agent");
    std::fs::copy(binary("drover-agent"), &path).unwrap();
    path
}

/// Installs a new agent binary as a package manager does: a new file renamed over the old.
fn upgrade_agent_binary(path: &Path) {
    let staged = path.with_extension("new");
    std::fs::copy(binary("drover-agent"), &staged).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

const DAEMONSET: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: daemon
spec:
  selector:
    matchLabels: {app: daemon}
  template:
    metadata:
      labels: {app: daemon}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        command: [sh, -c, 'while true; do sleep 0.2; done']
";

#[test]
fn process_pods_keep_their_processes_across_agent_restarts_and_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let program = own_agent_binary(dir.path());
    let mut agent = Agent::start_program(
        dir.path(),
        &server.broker,
        "edge",
        &[],
        vec![program.to_string_lossy().into_owned()],
    );
    server.wait_ready_status("edge", "True", Duration::from_secs(10));
    server.apply(&process_pod(
        "svc",
        "edge",
        "Always",
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done",
        1,
    ));
    server.apply(DAEMONSET);
    // Ends on its own after the restarts: its exit code must still arrive.
    server.apply(&process_pod(
        "finisher",
        "edge",
        "Never",
        "sleep 10; exit 3",
        1,
    ));
    let mut uids = BTreeMap::new();
    for name in ["svc", "finisher"] {
        let pod = server.wait_pod(name, "Running", Duration::from_secs(15), |p| {
            phase(p) == "Running"
        });
        uids.insert(name.to_string(), uid(&pod));
    }
    let daemon = wait_for("the daemon pod", Duration::from_secs(15), || {
        server
            .items("pods")
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == "daemon" && phase(p) == "Running")
    });
    uids.insert("daemon".into(), uid(&daemon));
    let processes = |uids: &BTreeMap<String, String>| -> BTreeMap<String, Option<u32>> {
        uids.iter()
            .map(|(name, uid)| (name.clone(), pod_main_process(uid)))
            .collect()
    };
    let before = wait_for("every pod's main process", Duration::from_secs(5), || {
        let found = processes(&uids);
        found.values().all(Option::is_some).then_some(found)
    });

    // The same processes run; only the finisher may have ended meanwhile, on its own.
    let unchanged = |when: &str| {
        let now = processes(&uids);
        for (name, pid) in &now {
            let ended_on_its_own = name == "finisher" && pid.is_none();
            assert!(
                ended_on_its_own || *pid == before[name],
                "{name} {when}: {:?} became {pid:?}",
                before[name]
            );
        }
    };
    restart_agent(&mut agent, "TERM");
    unchanged("after SIGTERM and a start");
    restart_agent(&mut agent, "KILL");
    unchanged("after kill -9 and a start");
    upgrade_agent_binary(&program);
    restart_agent(&mut agent, "TERM");
    unchanged("after a new binary");

    // Three agent restarts within a minute: no restart, so no back-off either.
    for name in ["svc", "daemon"] {
        let pod = wait_for(
            &format!("{name} reported Running"),
            Duration::from_secs(10),
            || {
                server.items("pods").into_iter().find(|p| {
                    uid(p) == uids[name] && phase(p) == "Running" && container(p)["ready"] == true
                })
            },
        );
        assert_eq!(container(&pod)["restartCount"], 0, "{pod}");
        assert!(
            container(&pod)["lastState"]["terminated"].is_null(),
            "{pod}"
        );
    }
    // The pod's output still reaches its log, written by the pod itself.
    let ticks = |text: &str| text.lines().filter(|l| l.starts_with("tick ")).count();
    let now = ticks(&server.cli_ok(&["logs", "svc"]));
    wait_for(
        "more output after the restarts",
        Duration::from_secs(10),
        || (ticks(&server.cli_ok(&["logs", "svc"])) > now + 5).then_some(()),
    );

    let finisher = server.wait_pod("finisher", "Failed", Duration::from_secs(20), |p| {
        phase(p) == "Failed"
    });
    let terminated = &container(&finisher)["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3, "{finisher}");
    assert_eq!(terminated["reason"], "Error", "{finisher}");
    assert_eq!(container(&finisher)["restartCount"], 0);
    assert!(pod_processes(&uids["finisher"]).is_empty());
}

#[test]
fn a_pod_that_ends_while_the_agent_is_down_is_reported_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "edge", &[]);
    let marker = dir.path().join("go");
    server.apply(&process_pod(
        "short",
        "edge",
        "Never",
        &format!(
            "while [ ! -e {} ]; do sleep 0.05; done; exit 7",
            marker.display()
        ),
        1,
    ));
    server.apply(&process_pod(
        "ok",
        "edge",
        "OnFailure",
        &format!("while [ ! -e {} ]; do sleep 0.05; done", marker.display()),
        1,
    ));
    let short = server.wait_pod("short", "Running", Duration::from_secs(15), |p| {
        phase(p) == "Running"
    });
    server.wait_pod("ok", "Running", Duration::from_secs(15), |p| {
        phase(p) == "Running"
    });
    agent.proc.signal("KILL");
    agent.proc.wait_exit(Duration::from_secs(5));
    std::fs::write(&marker, b"").unwrap();
    wait_for(
        "the pods to end without the agent",
        Duration::from_secs(10),
        || pod_processes(&uid(&short)).is_empty().then_some(()),
    );
    agent.restart();
    let short = server.wait_pod("short", "Failed", Duration::from_secs(15), |p| {
        phase(p) == "Failed"
    });
    assert_eq!(container(&short)["state"]["terminated"]["exitCode"], 7);
    let ok = server.wait_pod("ok", "Succeeded", Duration::from_secs(15), |p| {
        phase(p) == "Succeeded"
    });
    assert_eq!(container(&ok)["state"]["terminated"]["exitCode"], 0);
    assert_eq!(container(&ok)["restartCount"], 0);
}

#[test]
fn agent_restarts_in_the_middle_of_a_job_fail_none_of_its_pods() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "edge", &[]);
    server.apply(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: batch
spec:
  completions: 60
  parallelism: 10
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        command: [sh, -c, 'sleep 1.5']
",
    );
    let running_processes = |server: &Server| -> Vec<(String, u32)> {
        server
            .items("pods")
            .iter()
            .filter(|p| phase(p) == "Running")
            .filter_map(|p| Some((uid(p), pod_main_process(&uid(p))?)))
            .collect()
    };
    for signal in ["TERM", "KILL"] {
        let before = wait_for(
            "ten pods of the Job running",
            Duration::from_secs(30),
            || {
                let running = running_processes(&server);
                (running.len() >= 5).then_some(running)
            },
        );
        agent.proc.signal(signal);
        agent.proc.wait_exit(Duration::from_secs(15));
        // Not a synchronisation: the agent stays down for a second, as a restart by
        // systemd (RestartSec) keeps it down.
        std::thread::sleep(Duration::from_secs(1));
        agent.restart();
        // Every pod that ran kept its processes, or ended on its own meanwhile.
        for (uid, pid) in &before {
            let now = pod_main_process(uid);
            assert!(
                now.is_none() || now == Some(*pid),
                "pod {uid} after kill -{signal}: {pid} became {now:?}"
            );
        }
    }
    let status = wait_for("the Job to complete", Duration::from_secs(90), || {
        let status = server.job_status("batch");
        (status["succeeded"] == 60).then_some(status)
    });
    assert!(
        status["failed"].is_null() || status["failed"] == 0,
        "{status}"
    );
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True"),
        "{status}"
    );
}

#[test]
fn a_flipped_bit_in_an_agent_record_is_reported_naming_the_pod_and_nothing_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "edge", &[]);
    server.apply(&process_pod("marked", "edge", "Always", "sleep 3600", 1));
    let pod = server.wait_pod("marked", "Running", Duration::from_secs(15), |p| {
        phase(p) == "Running"
    });
    let uid = uid(&pod);
    agent.proc.signal("TERM");
    agent.proc.wait_exit(Duration::from_secs(15));
    let record = agent.data_dir.join(format!("state/pods/{uid}.rec"));
    let mut bytes = std::fs::read(&record).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    std::fs::write(&record, bytes).unwrap();

    agent.restart();
    wait_for(
        "the damage in the agent's log",
        Duration::from_secs(10),
        || {
            let log = std::fs::read_to_string(&agent.proc.log).unwrap_or_default();
            log.lines()
                .any(|l| l.contains("record of this pod is damaged") && l.contains(&uid))
                .then_some(())
        },
    );
    wait_for(
        "a RecordDamaged event on the pod",
        Duration::from_secs(15),
        || {
            server
                .cli_ok(&["describe", "pod", "marked"])
                .contains("RecordDamaged")
                .then_some(())
        },
    );
    server.wait_pod("marked", "running again", Duration::from_secs(15), |p| {
        phase(p) == "Running" && container(p)["ready"] == true
    });
    holds_for("one copy of the pod", Duration::from_secs(2), || {
        pod_keepers(&uid).len() <= 1
    });
    assert_eq!(pod_keepers(&uid).len(), 1);
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn finished_pods_are_forgotten_beyond_the_limit_and_never_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let mut agent = server.join(dir.path(), "edge", &["--max-finished-pods", "3"]);
    server.apply(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: many
spec:
  completions: 10
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        command: [sh, -c, 'echo finished']
",
    );
    wait_for("the Job to complete", Duration::from_secs(60), || {
        (server.job_status("many")["succeeded"] == 10).then_some(())
    });
    let records = agent.data_dir.join("state/pods");
    let logs = agent.data_dir.join("logs");
    wait_for(
        "finished pods forgotten down to 3",
        Duration::from_secs(15),
        || (entries(&records) <= 3 && entries(&logs) <= 3).then_some(()),
    );
    assert_eq!(entries(&records), 3, "the newest three are kept");
    // The controller still has all ten.
    let pods = server.items("pods");
    assert_eq!(
        pods.iter().filter(|p| phase(p) == "Succeeded").count(),
        10,
        "{pods:?}"
    );

    agent.proc.signal("TERM");
    agent.proc.wait_exit(Duration::from_secs(15));
    agent.restart();
    server.wait_ready_status("edge", "True", Duration::from_secs(10));
    holds_for(
        "no finished pod starts again",
        Duration::from_secs(3),
        || {
            let log = std::fs::read_to_string(&agent.proc.log).unwrap_or_default();
            !log.contains("starting pod")
        },
    );
    assert_eq!(server.job_status("many")["succeeded"], 10);
}
