//! Pod rows: READY, the STATUS reason kubectl users know (`CrashLoopBackOff`, `Init:0/1`,
//! `Terminating`, ...), and RESTARTS with the time of the last one.

use chrono::{DateTime, Utc};
use drover_proto::phase::PodPhase;
use serde_json::{json, Value};

use super::{age, duration, int, name, or, text, Column, Row, AGE, NAME};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Column::new(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Column::new(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    )
    .wide(),
    Column::new(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName.",
    )
    .wide(),
    Column::new(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
    )
    .wide(),
    Column::new(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\"",
    )
    .wide(),
];

/// Restart counts and the latest restart of a set of container statuses.
#[derive(Default)]
struct Restarts {
    count: i64,
    last: Option<DateTime<Utc>>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += int(&status["restartCount"]);
        if let Some(finished) = duration::parse(&status["lastState"]["terminated"]["finishedAt"]) {
            self.last = Some(self.last.map_or(finished, |l| l.max(finished)));
        }
    }
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .is_some_and(|c| c["status"] == "True")
}

/// `Signal:9` / `ExitCode:3` for a termination without a reason.
fn terminated_without_reason(terminated: &Value) -> String {
    match int(&terminated["signal"]) {
        0 => format!("ExitCode:{}", int(&terminated["exitCode"])),
        signal => format!("Signal:{signal}"),
    }
}

/// Whether an init container of the spec is a sidecar (`restartPolicy: Always`).
fn restartable_init(pod: &Value, container: &str) -> bool {
    pod["spec"]["initContainers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == container))
        .is_some_and(|c| c["restartPolicy"] == "Always")
}

/// The STATUS, READY and RESTARTS columns, derived as Kubernetes' pod printer does.
fn summary(pod: &Value) -> (String, usize, usize, Restarts) {
    let status = &pod["status"];
    let spec = &pod["spec"];
    let phase = text(&status["phase"]);
    let mut reason = match text(&status["reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    }) {
        reason = "SchedulingGated".into();
    }

    let init_specs = spec["initContainers"].as_array().map_or(0, Vec::len);
    let sidecars = spec["initContainers"].as_array().map_or(0, |cs| {
        cs.iter().filter(|c| c["restartPolicy"] == "Always").count()
    });
    let total = spec["containers"].as_array().map_or(0, Vec::len) + sidecars;
    let mut ready = 0;
    let mut all = Restarts::default();
    let mut sidecar_restarts = Restarts::default();

    let mut initializing = false;
    let empty = Vec::new();
    let init_statuses = status["initContainerStatuses"].as_array().unwrap_or(&empty);
    for (i, c) in init_statuses.iter().enumerate() {
        all.add(c);
        let restartable = restartable_init(pod, text(&c["name"]));
        if restartable {
            sidecar_restarts.add(c);
        }
        let state = &c["state"];
        let terminated = &state["terminated"];
        let waiting_reason = text(&state["waiting"]["reason"]);
        if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if restartable && c["started"] == true {
            if c["ready"] == true {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_object() {
            match text(&terminated["reason"]) {
                "" => format!("Init:{}", terminated_without_reason(terminated)),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{init_specs}")
        };
        initializing = true;
        break;
    }

    let mut restarts = all;
    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        let statuses = status["containerStatuses"].as_array().unwrap_or(&empty);
        for c in statuses.iter().rev() {
            restarts.add(c);
            let state = &c["state"];
            let terminated = &state["terminated"];
            let waiting_reason = text(&state["waiting"]["reason"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated.is_object() {
                reason = match text(&terminated["reason"]) {
                    "" => terminated_without_reason(terminated),
                    r => r.to_string(),
                };
            } else if c["ready"] == true && state["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container finished but another still runs is not complete.
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if pod["metadata"]["deletionTimestamp"].is_string() {
        if text(&status["reason"]) == "NodeLost" {
            reason = "Unknown".into();
        } else if !PodPhase::parse(phase).is_some_and(PodPhase::is_terminal) {
            reason = "Terminating".into();
        }
    }
    (reason, ready, total, restarts)
}

/// The STATUS column alone (what `describe` shows too).
pub fn status(pod: &Value) -> String {
    summary(pod).0
}

pub(super) fn row(pod: &Value, now: DateTime<Utc>) -> Row {
    let (reason, ready, total, restarts) = summary(pod);
    let restarts_text = match restarts.last {
        Some(last) if restarts.count != 0 => {
            format!("{} ({} ago)", restarts.count, duration::human(now - last))
        }
        _ => restarts.count.to_string(),
    };
    let status = &pod["status"];
    let spec = &pod["spec"];
    let pod_ip = status["podIPs"]
        .get(0)
        .map_or(&status["podIP"], |ip| &ip["ip"]);
    let readiness_gates = match spec["readinessGates"].as_array() {
        Some(gates) if !gates.is_empty() => {
            let passing = gates
                .iter()
                .filter(|g| condition_true(pod, text(&g["conditionType"])))
                .count();
            format!("{passing}/{}", gates.len())
        }
        _ => "<none>".into(),
    };
    let cells = vec![
        json!(name(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        age(pod, now),
        json!(or(pod_ip, "<none>")),
        json!(or(&spec["nodeName"], "<none>")),
        json!(or(&status["nominatedNodeName"], "<none>")),
        json!(readiness_gates),
    ];
    let conditions = match PodPhase::parse(text(&status["phase"])) {
        Some(PodPhase::Succeeded) => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }])),
        Some(PodPhase::Failed) => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Failed",
            "message": "The pod failed.",
        }])),
        _ => None,
    };
    Row { cells, conditions }
}
