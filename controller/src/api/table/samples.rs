//! Sample objects of every kind, as the API shows them, for tests of Tables and their printing.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The time the samples are looked at.
pub fn now() -> DateTime<Utc> {
    super::duration::parse(&json!("2026-01-10T12:00:00Z")).unwrap_or_default()
}

fn meta(name: &str, namespace: Option<&str>, created: &str, labels: Value) -> Value {
    let mut m = json!({"name": name, "uid": format!("uid-{name}"), "resourceVersion": "7", "creationTimestamp": created});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    if labels.as_object().is_some_and(|l| !l.is_empty()) {
        m["labels"] = labels;
    }
    m
}

/// Pods: running with restarts, completed, crash-looping, initializing, terminating; the
/// last one in another namespace.
pub fn pods() -> Vec<Value> {
    let container = json!([{"name": "main", "image": "nginx:1.27"}]);
    vec![
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": meta("web-1", Some("default"), "2026-01-10T11:55:00Z", json!({"app": "web", "tier": "front"})),
            "spec": {"containers": container, "nodeName": "edge-1"},
            "status": {"phase": "Running", "podIP": "10.0.0.2", "podIPs": [{"ip": "10.0.0.2"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "main", "ready": true, "restartCount": 3, "state": {"running": {"startedAt": "2026-01-10T11:57:01Z"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-01-10T11:57:00Z"}}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": meta("backup-x7k2p", Some("default"), "2026-01-08T12:00:00Z", json!({"job-name": "backup"})),
            "spec": {"containers": container, "nodeName": "edge-2"},
            "status": {"phase": "Succeeded", "podIP": "10.0.0.3",
                "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2026-01-08T12:00:09Z"}}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": meta("crashy", Some("default"), "2026-01-10T09:00:00Z", json!({})),
            "spec": {"containers": [{"name": "main", "image": "busybox"}, {"name": "log", "image": "busybox"}], "nodeName": "edge-1"},
            "status": {"phase": "Running", "podIP": "10.0.0.2",
                "containerStatuses": [
                    {"name": "main", "ready": false, "restartCount": 12,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "finishedAt": "2026-01-10T11:59:10Z"}}},
                    {"name": "log", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": meta("migrate", Some("default"), "2026-01-10T11:59:30Z", json!({})),
            "spec": {"initContainers": [{"name": "wait", "image": "busybox"}], "containers": container, "nodeName": "edge-2"},
            "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "wait", "ready": false, "restartCount": 0, "state": {"running": {}}}],
                "containerStatuses": [{"name": "main", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "leaving", "namespace": "edge", "uid": "uid-leaving", "creationTimestamp": "2026-01-10T10:00:00Z",
                "deletionTimestamp": "2026-01-10T11:59:50Z"},
            "spec": {"containers": container},
            "status": {"phase": "Pending"}}),
    ]
}

/// Nodes: ready with roles, cordoned and not ready, never registered.
pub fn nodes() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": meta("edge-1", None, "2025-12-01T12:00:00Z", json!({"node-role.kubernetes.io/edge": "", "zone": "a"})),
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "edge-1"}],
                "nodeInfo": {"kubeletVersion": "v0.3.0-drover", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-18-arm64", "containerRuntimeVersion": "docker://24.0.7"}}}),
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": meta("edge-2", None, "2026-01-09T06:00:00Z", json!({})),
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.11"}],
                "nodeInfo": {"kubeletVersion": "v0.3.0-drover", "osImage": "Raspbian", "kernelVersion": "6.6.20", "containerRuntimeVersion": ""}}}),
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": meta("edge-3", None, "2026-01-10T11:59:58Z", json!({})),
            "spec": {}, "status": {}}),
    ]
}

fn job_template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "batch"}}, "spec": {"containers": [{"name": "main", "image": image}], "restartPolicy": "Never"}})
}

/// Jobs: complete, a parallel work queue, failed.
pub fn jobs() -> Vec<Value> {
    vec![
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": meta("backup", Some("default"), "2026-01-08T12:00:00Z", json!({})),
            "spec": {"parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-backup"}}, "template": job_template("restic:0.17")},
            "status": {"succeeded": 1, "startTime": "2026-01-08T12:00:00Z", "completionTime": "2026-01-08T12:00:12Z",
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}}),
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": meta("queue", Some("default"), "2026-01-10T11:50:00Z", json!({})),
            "spec": {"parallelism": 3, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-queue"}}, "template": job_template("worker:2")},
            "status": {"active": 3, "startTime": "2026-01-10T11:50:00Z"}}),
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": meta("flaky", Some("default"), "2026-01-10T11:00:00Z", json!({})),
            "spec": {"completions": 5, "parallelism": 2, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-flaky"}}, "template": job_template("flaky:1")},
            "status": {"succeeded": 2, "failed": 7, "startTime": "2026-01-10T11:00:00Z", "completionTime": null,
                "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}}),
    ]
}

/// CronJobs: suspended, with a time zone and an active Job.
pub fn cronjobs() -> Vec<Value> {
    vec![
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": meta("nightly", Some("default"), "2026-01-01T12:00:00Z", json!({})),
            "spec": {"schedule": "0 3 * * *", "suspend": true, "jobTemplate": {"spec": {"template": job_template("restic:0.17")}}},
            "status": {"lastScheduleTime": "2026-01-09T03:00:00Z"}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": meta("every-minute", Some("default"), "2026-01-10T11:40:00Z", json!({})),
            "spec": {"schedule": "* * * * *", "timeZone": "Europe/Berlin", "suspend": false, "jobTemplate": {"spec": {"template": job_template("busybox")}}},
            "status": {"active": [{"kind": "Job", "name": "every-minute-29466959"}], "lastScheduleTime": "2026-01-10T11:59:00Z"}}),
    ]
}

/// DaemonSets: one on every node, one on selected nodes.
pub fn daemonsets() -> Vec<Value> {
    vec![
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta("log-shipper", Some("default"), "2026-01-03T12:00:00Z", json!({})),
            "spec": {"selector": {"matchLabels": {"app": "log-shipper"}},
                "template": {"metadata": {"labels": {"app": "log-shipper"}}, "spec": {"containers": [{"name": "fluent-bit", "image": "fluent/fluent-bit:3.1"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta("camera", Some("default"), "2026-01-10T11:00:00Z", json!({})),
            "spec": {"selector": {"matchLabels": {"app": "camera"}},
                "template": {"metadata": {"labels": {"app": "camera"}}, "spec": {"nodeSelector": {"zone": "a", "camera": "yes"},
                    "containers": [{"name": "capture", "image": "capture:4"}, {"name": "upload", "image": "upload:2"}]}}},
            "status": {"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberReady": 1, "updatedNumberScheduled": 0, "numberAvailable": 1}}),
    ]
}

/// Events, old style (counted) and new style (eventTime only).
pub fn events() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": meta("crashy.188a1f2b3c4d5e6f", Some("default"), "2026-01-10T09:01:00Z", json!({})),
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "crashy", "fieldPath": "spec.containers{main}"},
            "reason": "BackOff", "message": "Back-off restarting failed container main in pod crashy_default(uid-crashy)",
            "source": {"component": "kubelet", "host": "edge-1"}, "type": "Warning", "count": 40,
            "firstTimestamp": "2026-01-10T09:01:00Z", "lastTimestamp": "2026-01-10T11:59:40Z"}),
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": meta("backup.188a1f2b3c4d0001", Some("default"), "2026-01-08T12:00:12Z", json!({})),
            "involvedObject": {"kind": "Job", "namespace": "default", "name": "backup"},
            "reason": "Completed", "message": "Job completed",
            "source": {"component": "job-controller"}, "type": "Normal", "count": 1,
            "firstTimestamp": "2026-01-08T12:00:12Z", "lastTimestamp": "2026-01-08T12:00:12Z"}),
    ]
}

/// Namespaces.
pub fn namespaces() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta("default", None, "2025-12-01T12:00:00Z", json!({"kubernetes.io/metadata.name": "default"})),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta("old", None, "2026-01-10T11:00:00Z", json!({"kubernetes.io/metadata.name": "old"})),
            "spec": {}, "status": {"phase": "Terminating"}}),
    ]
}

/// A DaemonSet's ControllerRevisions.
pub fn controllerrevisions() -> Vec<Value> {
    let owner = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "log-shipper", "uid": "uid-log-shipper", "controller": true, "blockOwnerDeletion": true}]);
    let rev = |name: &str, created: &str, revision: i64| {
        let mut m = meta(
            name,
            Some("default"),
            created,
            json!({"controller-revision-hash": name.rsplit('-').next().unwrap_or("")}),
        );
        m["ownerReferences"] = owner.clone();
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": m, "data": {}, "revision": revision})
    };
    vec![
        rev("log-shipper-6c9b8d7f4", "2026-01-03T12:00:00Z", 1),
        rev("log-shipper-75f8c9d6b", "2026-01-10T10:00:00Z", 2),
    ]
}

/// Every kind with its samples.
pub fn all() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("Pod", pods()),
        ("Node", nodes()),
        ("Job", jobs()),
        ("CronJob", cronjobs()),
        ("DaemonSet", daemonsets()),
        ("Event", events()),
        ("Namespace", namespaces()),
        ("ControllerRevision", controllerrevisions()),
    ]
}
