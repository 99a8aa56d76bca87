use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;
use crate::api::resources::by_kind;

fn now() -> DateTime<Utc> {
    duration::parse(&json!("2026-01-10T12:00:00Z")).unwrap_or_default()
}

fn table_of(kind: &str, items: &[Value]) -> Value {
    let resource = by_kind(kind).unwrap_or(&crate::api::resources::RESOURCES[0]);
    table(
        resource,
        items,
        now(),
        IncludeObject::Metadata,
        json!({"resourceVersion": "7"}),
    )
}

fn column_names(kind: &str) -> Vec<(&'static str, u8)> {
    columns(kind).iter().map(|c| (c.name, c.priority)).collect()
}

fn cells(kind: &str, item: Value) -> Vec<Value> {
    let t = table_of(kind, &[item]);
    t["rows"][0]["cells"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pod(status: Value) -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-10T11:55:00Z"},
        "spec": {"containers": [{"name": "main", "image": "nginx"}], "nodeName": "edge-1"},
        "status": status,
    })
}

fn pod_status_of(status: Value) -> String {
    pods::status(&pod(status))
}

#[test]
fn a_table_is_a_meta_v1_table_with_the_list_metadata() {
    let t = table_of("Namespace", &[]);
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "7"}));
    assert_eq!(t["rows"], json!([]));
    assert_eq!(
        t["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DOC, "priority": 0})
    );
}

#[test]
fn rows_carry_metadata_the_object_or_nothing() {
    let resource = by_kind("Namespace").unwrap_or(&crate::api::resources::RESOURCES[0]);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": {"a": "b"}}, "spec": {}, "status": {"phase": "Active"}});
    let items = [ns.clone()];
    let with = |include| table(resource, &items, now(), include, json!({}));
    assert_eq!(
        with(IncludeObject::Metadata)["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": ns["metadata"]})
    );
    assert_eq!(with(IncludeObject::Object)["rows"][0]["object"], ns);
    assert!(with(IncludeObject::None)["rows"][0].get("object").is_none());
    assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
    assert_eq!(IncludeObject::parse("bogus"), None);
}

#[test]
fn columns_are_kubernetes_columns() {
    assert_eq!(
        column_names("Pod"),
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
    );
    assert_eq!(
        column_names("Node"),
        [
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("External-IP", 1),
            ("OS-Image", 1),
            ("Kernel-Version", 1),
            ("Container-Runtime", 1)
        ]
    );
    assert_eq!(
        column_names("Job"),
        [
            ("Name", 0),
            ("Status", 0),
            ("Completions", 0),
            ("Duration", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
    );
    assert_eq!(
        column_names("CronJob"),
        [
            ("Name", 0),
            ("Schedule", 0),
            ("Timezone", 0),
            ("Suspend", 0),
            ("Active", 0),
            ("Last Schedule", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
    );
    assert_eq!(
        column_names("DaemonSet"),
        [
            ("Name", 0),
            ("Desired", 0),
            ("Current", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Node Selector", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
    );
    assert_eq!(
        column_names("Event"),
        [
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1)
        ]
    );
    assert_eq!(
        column_names("Namespace"),
        [("Name", 0), ("Status", 0), ("Age", 0)]
    );
    assert_eq!(
        column_names("ControllerRevision"),
        [("Name", 0), ("Controller", 0), ("Revision", 0), ("Age", 0)]
    );
    assert_eq!(column_names("Widget"), [("Name", 0), ("Created At", 0)]);
}

#[test]
fn every_row_has_a_cell_per_column() {
    for resource in crate::api::resources::RESOURCES {
        let t = table(
            resource,
            &[json!({"metadata": {"name": "x"}})],
            now(),
            IncludeObject::None,
            json!({}),
        );
        assert_eq!(
            t["rows"][0]["cells"].as_array().map(Vec::len),
            t["columnDefinitions"].as_array().map(Vec::len),
            "{}",
            resource.kind
        );
    }
}

#[test]
fn pod_status_reasons_follow_kubernetes() {
    for (status, shown) in [
        (json!({}), ""),
        (json!({"phase": "Pending"}), "Pending"),
        (
            json!({"phase": "Running", "containerStatuses": [{"ready": true, "state": {"running": {}}}]}),
            "Running",
        ),
        (
            json!({"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
            "CrashLoopBackOff",
        ),
        (
            json!({"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}),
            "ContainerCreating",
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
            json!({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 2}}}]}),
            "ExitCode:2",
        ),
        (
            json!({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
            "Signal:9",
        ),
        (json!({"phase": "Failed", "reason": "Evicted"}), "Evicted"),
        (
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            "SchedulingGated",
        ),
        // One container finished, another still runs: Running (or NotReady) rather than Completed.
        (
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
                {"ready": true, "state": {"running": {}}},
                {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}),
            "Running",
        ),
        (
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [
                {"ready": true, "state": {"running": {}}},
                {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}),
            "NotReady",
        ),
    ] {
        assert_eq!(pod_status_of(status.clone()), shown, "{status}");
    }
}

#[test]
fn pods_being_deleted_are_terminating_unless_finished() {
    let mut p = pod(json!({"phase": "Running"}));
    p["metadata"]["deletionTimestamp"] = json!("2026-01-10T11:59:00Z");
    assert_eq!(pods::status(&p), "Terminating");
    p["status"] = json!({"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]});
    assert_eq!(pods::status(&p), "Completed");
    p["status"] = json!({"phase": "Running", "reason": "NodeLost"});
    assert_eq!(pods::status(&p), "Unknown");
}

#[test]
fn init_containers_show_their_progress() {
    let with_init = |statuses: Value, conditions: Value| {
        let mut p = pod(
            json!({"phase": "Pending", "initContainerStatuses": statuses, "conditions": conditions,
            "containerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        p["spec"]["initContainers"] = json!([{"name": "a"}, {"name": "b"}]);
        pods::status(&p)
    };
    let done =
        json!({"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    assert_eq!(
        with_init(
            json!([done, {"name": "b", "state": {"running": {}}}]),
            json!([])
        ),
        "Init:1/2"
    );
    assert_eq!(
        with_init(
            json!([{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]),
            json!([])
        ),
        "Init:0/2"
    );
    assert_eq!(
        with_init(
            json!([{"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
            json!([])
        ),
        "Init:CrashLoopBackOff"
    );
    assert_eq!(
        with_init(
            json!([{"name": "a", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
            json!([])
        ),
        "Init:Error"
    );
    assert_eq!(
        with_init(
            json!([{"name": "a", "state": {"terminated": {"exitCode": 1}}}]),
            json!([])
        ),
        "Init:ExitCode:1"
    );
    // Both init containers done: the app containers' state shows.
    assert_eq!(with_init(json!([done, done]), json!([])), "PodInitializing");
}

#[test]
fn sidecars_count_as_containers_once_started() {
    let mut p = pod(json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 2, "state": {"running": {}}}],
        "containerStatuses": [{"name": "main", "ready": true, "restartCount": 1, "state": {"running": {}}}]}));
    p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
    let c = cells("Pod", p);
    assert_eq!(c[1], "2/2");
    assert_eq!(c[2], "Running");
    assert_eq!(c[3], "3");
}

#[test]
fn pod_cells() {
    let p = pod(json!({
        "phase": "Running",
        "podIP": "10.0.0.2",
        "containerStatuses": [{"name": "main", "ready": true, "restartCount": 3, "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-01-10T11:57:00Z"}}}],
    }));
    assert_eq!(
        cells("Pod", p),
        json!([
            "web",
            "1/1",
            "Running",
            "3 (3m ago)",
            "5m",
            "10.0.0.2",
            "edge-1",
            "<none>",
            "<none>"
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    let unplaced = json!({"metadata": {"name": "p"}, "spec": {"containers": [{}, {}], "readinessGates": [{"conditionType": "x"}]}, "status": {"phase": "Pending", "conditions": [{"type": "x", "status": "True"}]}});
    let c = cells("Pod", unplaced);
    assert_eq!(c[1], "0/2");
    assert_eq!(c[3], "0");
    assert_eq!(c[4], "<unknown>");
    assert_eq!(c[5], "<none>");
    assert_eq!(c[6], "<none>");
    assert_eq!(c[8], "1/1");
}

#[test]
fn finished_pods_carry_the_completed_row_condition() {
    let t = table_of("Pod", &[pod(json!({"phase": "Succeeded"}))]);
    assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    let t = table_of("Pod", &[pod(json!({"phase": "Running"}))]);
    assert!(t["rows"][0].get("conditions").is_none());
}

#[test]
fn node_cells() {
    let node = json!({
        "metadata": {"name": "edge-1", "creationTimestamp": "2026-01-08T10:00:00Z",
            "labels": {"node-role.kubernetes.io/edge": "", "node-role.kubernetes.io/gpu": "", "kubernetes.io/role": "camera", "zone": "a"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "edge-1"}],
            "nodeInfo": {"kubeletVersion": "drover-0.3.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0", "containerRuntimeVersion": "docker://24.0.7"},
        },
    });
    assert_eq!(
        cells("Node", node),
        json!([
            "edge-1",
            "Ready,SchedulingDisabled",
            "camera,edge,gpu",
            "2d2h",
            "drover-0.3.0",
            "10.0.0.2",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0",
            "docker://24.0.7"
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    let new = json!({"metadata": {"name": "n"}, "spec": {}, "status": {}});
    let c = cells("Node", new);
    assert_eq!(c[1], "Unknown");
    assert_eq!(c[2], "<none>");
    assert_eq!(c[7], "<unknown>");
    assert_eq!(c[9], "<unknown>");
    for (ready, shown) in [("False", "NotReady"), ("Unknown", "NotReady")] {
        let n = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": ready}]}});
        assert_eq!(nodes::status(&n), shown);
    }
}

fn job(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "backup", "namespace": "default", "creationTimestamp": "2026-01-10T11:00:00Z"},
        "spec": spec, "status": status})
}

#[test]
fn job_completions_show_of_only_for_parallel_work_queues() {
    let completions = |spec: Value| cells("Job", job(spec, json!({"succeeded": 1})))[2].clone();
    assert_eq!(
        completions(json!({"completions": 3, "parallelism": 2})),
        "1/3"
    );
    assert_eq!(completions(json!({"parallelism": 1})), "1/1");
    assert_eq!(completions(json!({})), "1/1");
    assert_eq!(completions(json!({"parallelism": 3})), "1/1 of 3");
}

#[test]
fn job_status_follows_its_conditions() {
    let status_of = |conditions: Value| {
        workloads::job_status(&job(json!({}), json!({"conditions": conditions}))).to_string()
    };
    let c = |kind: &str| json!({"type": kind, "status": "True"});
    assert_eq!(status_of(json!([])), "Running");
    assert_eq!(
        status_of(json!([c("SuccessCriteriaMet"), c("Complete")])),
        "Complete"
    );
    assert_eq!(
        status_of(json!([c("FailureTarget"), c("Failed")])),
        "Failed"
    );
    assert_eq!(status_of(json!([c("Suspended")])), "Suspended");
    assert_eq!(
        status_of(json!([{"type": "Suspended", "status": "False", "reason": "JobResumed"}])),
        "Running"
    );
    assert_eq!(status_of(json!([c("FailureTarget")])), "FailureTarget");
    assert_eq!(
        status_of(json!([c("SuccessCriteriaMet")])),
        "SuccessCriteriaMet"
    );
    assert_eq!(status_of(json!([c("Waiting")])), "Pending");
    let mut deleting = job(json!({}), json!({}));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-10T11:59:00Z");
    assert_eq!(workloads::job_status(&deleting), "Terminating");
}

#[test]
fn job_cells() {
    let spec = json!({"completions": 1, "parallelism": 1,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": {"spec": {"containers": [{"name": "main", "image": "alpine"}, {"name": "log", "image": "busybox"}]}}});
    let finished = job(
        spec.clone(),
        json!({"succeeded": 1, "startTime": "2026-01-10T11:00:00Z", "completionTime": "2026-01-10T11:00:07Z",
            "conditions": [{"type": "Complete", "status": "True"}]}),
    );
    assert_eq!(
        cells("Job", finished),
        json!([
            "backup",
            "Complete",
            "1/1",
            "7s",
            "60m",
            "main,log",
            "alpine,busybox",
            "batch.kubernetes.io/controller-uid=u1"
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    let running = job(spec.clone(), json!({"startTime": "2026-01-10T11:30:00Z"}));
    assert_eq!(cells("Job", running)[3], "30m");
    let unstarted = job(spec, json!({}));
    assert_eq!(cells("Job", unstarted)[3], "");
}

#[test]
fn selectors_print_as_kubernetes_prints_them() {
    assert_eq!(format_selector(&Value::Null), "<none>");
    assert_eq!(format_selector(&json!({})), "<none>");
    assert_eq!(
        format_selector(&json!({
            "matchLabels": {"tier": "web", "app": "shop"},
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "old", "operator": "DoesNotExist"},
            ]
        })),
        "app=shop,env notin (dev),gpu,!old,tier=web,zone in (a,b)"
    );
    assert_eq!(format_labels(&json!({"b": "2", "a": "1"})), "a=1,b=2");
    assert_eq!(format_labels(&json!({})), "<none>");
}

#[test]
fn cronjob_cells() {
    let cj = json!({
        "metadata": {"name": "nightly", "creationTimestamp": "2026-01-01T12:00:00Z"},
        "spec": {"schedule": "0 3 * * *", "suspend": true, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "alpine"}]}}}}},
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": "2026-01-10T03:00:00Z"},
    });
    assert_eq!(
        cells("CronJob", cj),
        json!([
            "nightly",
            "0 3 * * *",
            "<none>",
            "True",
            1,
            "9h",
            "9d",
            "main",
            "alpine",
            "<none>"
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    let fresh = json!({"metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "timeZone": "Europe/Berlin"}, "status": {}});
    let c = cells("CronJob", fresh);
    assert_eq!(c[2], "Europe/Berlin");
    assert_eq!(c[3], "False");
    assert_eq!(c[4], 0);
    assert_eq!(c[5], "<none>");
}

#[test]
fn daemonset_cells() {
    let ds = json!({
        "metadata": {"name": "agent", "creationTimestamp": "2026-01-10T09:30:00Z"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"spec": {"nodeSelector": {"zone": "a", "arch": "arm64"}, "containers": [{"name": "main", "image": "agent:1"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 1, "numberAvailable": 2},
    });
    assert_eq!(
        cells("DaemonSet", ds),
        json!([
            "agent",
            3,
            3,
            2,
            1,
            2,
            "arch=arm64,zone=a",
            "150m",
            "main",
            "agent:1",
            "app=agent"
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    let bare = cells("DaemonSet", json!({"metadata": {"name": "d"}}));
    assert_eq!(bare[1], 0);
    assert_eq!(bare[6], "<none>");
}

#[test]
fn event_cells() {
    let event = json!({
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{main}"},
        "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
        "count": 4, "source": {"component": "kubelet", "host": "edge-1"},
        "firstTimestamp": "2026-01-10T11:00:00Z", "lastTimestamp": "2026-01-10T11:58:00Z",
    });
    assert_eq!(
        cells("Event", event),
        json!([
            "2m",
            "Warning",
            "BackOff",
            "pod/web",
            "spec.containers{main}",
            "kubelet, edge-1",
            "Back-off restarting failed container",
            "60m",
            4,
            "web.17a"
        ])
        .as_array()
        .cloned()
        .unwrap_or_default()
    );
    let newer = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"},
        "eventTime": "2026-01-10T11:59:00.123456Z", "reportingComponent": "drover"});
    let c = cells("Event", newer);
    assert_eq!(c[0], "59s");
    assert_eq!(c[3], "node");
    assert_eq!(c[5], "drover");
    assert_eq!(c[7], "59s");
    assert_eq!(c[8], 1);
    let series = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
        "firstTimestamp": "2026-01-10T10:00:00Z", "count": 1,
        "series": {"count": 9, "lastObservedTime": "2026-01-10T11:59:30.000000Z"}});
    let c = cells("Event", series);
    assert_eq!(c[0], "30s");
    assert_eq!(c[8], 9);
}

#[test]
fn namespace_and_revision_cells() {
    let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2025-12-31T12:00:00Z"}, "status": {"phase": "Active"}});
    assert_eq!(
        cells("Namespace", ns),
        json!(["default", "Active", "10d"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    );
    let rev = json!({"metadata": {"name": "agent-5d8f", "creationTimestamp": "2026-01-10T11:59:58Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "u", "controller": true}]},
        "revision": 2, "data": {}});
    assert_eq!(
        cells("ControllerRevision", rev),
        json!(["agent-5d8f", "daemonset.apps/agent", 2, "2s"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    );
    let orphan = json!({"metadata": {"name": "r"}, "revision": 1});
    assert_eq!(cells("ControllerRevision", orphan)[1], "<none>");
}

#[test]
fn one_object_tables_carry_its_resource_version_and_columns_once() {
    let resource = by_kind("Namespace").unwrap_or(&crate::api::resources::RESOURCES[0]);
    let ns = json!({"metadata": {"name": "default", "resourceVersion": "42"}, "status": {"phase": "Active"}});
    let first = table_of_one(resource, &ns, now(), IncludeObject::Metadata, true);
    assert_eq!(first["metadata"], json!({"resourceVersion": "42"}));
    assert_eq!(first["columnDefinitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(first["rows"][0]["cells"][0], "default");
    let later = table_of_one(resource, &ns, now(), IncludeObject::Metadata, false);
    assert_eq!(later["columnDefinitions"], json!([]));
    assert_eq!(later["rows"], first["rows"]);
}

#[test]
fn the_text_of_a_table_written_row_by_row_is_the_table() {
    for (kind, items) in samples::all() {
        let resource = by_kind(kind).unwrap();
        for include in [
            IncludeObject::None,
            IncludeObject::Metadata,
            IncludeObject::Object,
        ] {
            for items in [&items[..], &[]] {
                let metadata = json!({"resourceVersion": "7", "continue": "x"});
                let text = table_text(
                    resource,
                    items.iter().cloned(),
                    now(),
                    include,
                    metadata.clone(),
                );
                let parsed: Value = serde_json::from_slice(&text).unwrap();
                assert_eq!(
                    parsed,
                    table(resource, items, now(), include, metadata),
                    "{kind} {include:?}"
                );
            }
        }
    }
}
