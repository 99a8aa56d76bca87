//! The table columns of `get` for each kind, as kubectl shows them.

use chrono::{DateTime, Utc};
use drover_proto::manifest::Kind;
use serde_json::Value;

use super::age;

/// Headers and one row per object.
pub fn table(
    kind: Kind,
    items: &[Value],
    wide: bool,
    all_namespaces: bool,
    now: DateTime<Utc>,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let (mut headers, mut rows): (Vec<&'static str>, Vec<Vec<String>>) = match kind {
        Kind::Node => (
            node_headers(wide),
            items.iter().map(|n| node_row(n, wide, now)).collect(),
        ),
        Kind::Pod => (
            pod_headers(wide),
            items.iter().map(|p| pod_row(p, wide, now)).collect(),
        ),
        Kind::Job => (
            vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            items.iter().map(|j| job_row(j, now)).collect(),
        ),
        Kind::CronJob => (
            vec![
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            items.iter().map(|c| cronjob_row(c, now)).collect(),
        ),
        Kind::DaemonSet => (
            vec![
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            items.iter().map(|d| daemonset_row(d, now)).collect(),
        ),
    };
    if all_namespaces && kind.namespaced() {
        headers.insert(0, "NAMESPACE");
        for (row, item) in rows.iter_mut().zip(items) {
            row.insert(0, text(&item["metadata"]["namespace"]));
        }
    }
    (headers, rows)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn name(item: &Value) -> String {
    text(&item["metadata"]["name"])
}

fn created(item: &Value, now: DateTime<Utc>) -> String {
    age::since(&item["metadata"]["creationTimestamp"], now)
}

fn node_headers(wide: bool) -> Vec<&'static str> {
    let mut h = vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"];
    if wide {
        h.extend([
            "INTERNAL-IP",
            "ARCH",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME",
            "LABELS",
        ]);
    }
    h
}

/// `Ready` or `NotReady` (for `Ready=False` and `Ready=Unknown` alike, as kubectl shows it),
/// `Unknown` before the first registration, plus `,SchedulingDisabled` when cordoned.
pub fn node_status(node: &Value) -> String {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str());
    let mut status = match ready {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_row(node: &Value, wide: bool, now: DateTime<Utc>) -> Vec<String> {
    let labels = node["metadata"]["labels"].as_object();
    let mut roles: Vec<String> = labels
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let info = &node["status"]["nodeInfo"];
    let mut row = vec![
        name(node),
        node_status(node),
        if roles.is_empty() {
            "<none>".into()
        } else {
            roles.join(",")
        },
        created(node, now),
        text(&info["kubeletVersion"]),
    ];
    if wide {
        let ip = node["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
            .map_or("<none>".into(), |a| text(&a["address"]));
        let label_text = labels
            .map(|l| {
                l.iter()
                    .map(|(k, v)| format!("{k}={}", text(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| "<none>".into());
        row.extend([
            ip,
            text(&info["architecture"]),
            text(&info["osImage"]),
            text(&info["kernelVersion"]),
            match info["containerRuntimeVersion"].as_str() {
                Some(v) if !v.is_empty() => v.to_string(),
                _ => "<none>".into(),
            },
            label_text,
        ]);
    }
    row
}

fn pod_headers(wide: bool) -> Vec<&'static str> {
    let mut h = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if wide {
        h.extend(["IP", "NODE"]);
    }
    h
}

/// The STATUS column of a pod, as kubectl derives it.
pub fn pod_status(pod: &Value) -> String {
    let status = &pod["status"];
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return "Terminating".into();
    }
    let mut shown = text(&status["reason"]);
    if shown.is_empty() {
        shown = text(&status["phase"]);
    }
    if shown.is_empty() {
        shown = "Pending".into();
    }
    if let Some(containers) = status["containerStatuses"].as_array() {
        for c in containers.iter().rev() {
            let state = &c["state"];
            if let Some(reason) = state["waiting"]["reason"].as_str() {
                shown = reason.to_string();
            } else if state["terminated"].is_object() {
                let t = &state["terminated"];
                shown = match t["reason"].as_str() {
                    Some(r) if !r.is_empty() => r.to_string(),
                    _ if t["signal"].as_i64().unwrap_or(0) != 0 => {
                        format!("Signal:{}", int(&t["signal"]))
                    }
                    _ => format!("ExitCode:{}", int(&t["exitCode"])),
                };
            }
        }
    }
    shown
}

fn pod_row(pod: &Value, wide: bool, now: DateTime<Utc>) -> Vec<String> {
    let spec_containers = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let statuses = pod["status"]["containerStatuses"].as_array();
    let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    let restarts: i64 = statuses.map_or(0, |s| s.iter().map(|c| int(&c["restartCount"])).sum());
    let mut row = vec![
        name(pod),
        format!("{ready}/{spec_containers}"),
        pod_status(pod),
        restarts.to_string(),
        created(pod, now),
    ];
    if wide {
        let ip = text(&pod["status"]["hostIP"]);
        let node = text(&pod["spec"]["nodeName"]);
        row.push(if ip.is_empty() { "<none>".into() } else { ip });
        row.push(if node.is_empty() {
            "<none>".into()
        } else {
            node
        });
    }
    row
}

fn job_row(job: &Value, now: DateTime<Utc>) -> Vec<String> {
    let status = &job["status"];
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let has = |t: &str| {
        conditions
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    let state = if has("Waiting") {
        "Pending"
    } else if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let completions = match (
        job["spec"]["completions"].as_i64(),
        job["spec"]["parallelism"].as_i64(),
    ) {
        (Some(c), _) => format!("{}/{c}", int(&status["succeeded"])),
        (None, Some(p)) => format!("{}/1 of {p}", int(&status["succeeded"])),
        (None, None) => format!("{}/1", int(&status["succeeded"])),
    };
    let start = status["startTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let end = status["completionTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.with_timezone(&Utc));
    let duration = start.map_or(String::new(), |s| {
        age::human((end - s.with_timezone(&Utc)).num_seconds())
    });
    vec![
        name(job),
        state.into(),
        completions,
        duration,
        created(job, now),
    ]
}

fn cronjob_row(cj: &Value, now: DateTime<Utc>) -> Vec<String> {
    let spec = &cj["spec"];
    let last = &cj["status"]["lastScheduleTime"];
    vec![
        name(cj),
        text(&spec["schedule"]),
        spec["timeZone"].as_str().unwrap_or("<none>").to_string(),
        spec["suspend"].as_bool().unwrap_or(false).to_string(),
        cj["status"]["active"]
            .as_array()
            .map_or(0, Vec::len)
            .to_string(),
        if last.is_string() {
            age::since(last, now)
        } else {
            "<none>".into()
        },
        created(cj, now),
    ]
}

fn daemonset_row(ds: &Value, now: DateTime<Utc>) -> Vec<String> {
    let s = &ds["status"];
    let selector = ds["spec"]["template"]["spec"]["nodeSelector"]
        .as_object()
        .filter(|m| !m.is_empty())
        .map_or("<none>".into(), |m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(",")
        });
    vec![
        name(ds),
        int(&s["desiredNumberScheduled"]).to_string(),
        int(&s["currentNumberScheduled"]).to_string(),
        int(&s["numberReady"]).to_string(),
        int(&s["updatedNumberScheduled"]).to_string(),
        int(&s["numberAvailable"]).to_string(),
        selector,
        created(ds, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_status_column() {
        let ready =
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {}});
        assert_eq!(node_status(&ready), "Ready");
        let cordoned = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"unschedulable": true}});
        assert_eq!(node_status(&cordoned), "Ready,SchedulingDisabled");
        let unknown =
            json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}, "spec": {}});
        assert_eq!(node_status(&unknown), "NotReady");
        let stopped =
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}, "spec": {}});
        assert_eq!(node_status(&stopped), "NotReady");
    }

    #[test]
    fn pod_status_column_follows_kubectl() {
        for (status, shown) in [
            (json!({}), "Pending"),
            (
                json!({"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}),
                "Running",
            ),
            (
                json!({"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
                "CrashLoopBackOff",
            ),
            (
                json!({"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}),
                "Completed",
            ),
            (
                json!({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"reason": "Error", "exitCode": 3}}}]}),
                "Error",
            ),
            (
                json!({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}),
                "OOMKilled",
            ),
            (
                json!({"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}),
                "ContainerCreating",
            ),
        ] {
            assert_eq!(
                pod_status(&json!({"metadata": {}, "status": status})),
                shown
            );
        }
        assert_eq!(
            pod_status(
                &json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}})
            ),
            "Terminating"
        );
    }
}
