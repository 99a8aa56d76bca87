use std::time::Duration;

use super::*;

#[test]
fn every_drop_reason_is_exposed_before_it_happens_and_counts_after() {
    let metrics = Metrics::default();
    let text = metrics.render(&FleetSnapshot::default());
    for reason in REASONS {
        assert!(
            text.contains(&format!(
                "drover_mqtt_messages_dropped_total{{reason=\"{reason}\"}} 0"
            )),
            "{reason}: {text}"
        );
    }
    metrics.dropped(Dropped::Stale);
    metrics.dropped_reason("signature");
    metrics.dropped_reason("not-a-reason");
    let text = metrics.render(&FleetSnapshot::default());
    assert!(text.contains("drover_mqtt_messages_dropped_total{reason=\"stale\"} 1"));
    assert!(text.contains("drover_mqtt_messages_dropped_total{reason=\"signature\"} 1"));
    assert!(!text.contains("not-a-reason"));
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics ends with EOF: {text}"
    );
}

#[test]
fn api_requests_are_counted_and_timed_by_verb_resource_and_code() {
    let metrics = Metrics::default();
    metrics.api_request("list", "pods", 200, Duration::from_micros(300));
    metrics.api_request("list", "pods", 200, Duration::from_millis(2));
    metrics.api_request("create", "jobs", 422, Duration::from_millis(1));
    let text = metrics.render(&FleetSnapshot::default());
    assert!(
        text.contains("drover_api_requests_total{verb=\"list\",resource=\"pods\",code=\"200\"} 2"),
        "{text}"
    );
    assert!(text
        .contains("drover_api_requests_total{verb=\"create\",resource=\"jobs\",code=\"422\"} 1"));
    assert!(text
        .contains("drover_api_request_duration_seconds_count{verb=\"list\",resource=\"pods\"} 2"));
    assert!(text.contains("# TYPE drover_api_request_duration_seconds histogram"));
}

#[test]
fn watches_are_counted_while_open() {
    let metrics = Arc::new(Metrics::default());
    let first = metrics.watch_opened();
    let second = metrics.watch_opened();
    assert!(metrics
        .render(&FleetSnapshot::default())
        .contains("drover_api_watches 2"));
    drop(first);
    drop(second);
    assert!(metrics
        .render(&FleetSnapshot::default())
        .contains("drover_api_watches 0"));
}

#[test]
fn received_messages_are_counted_by_topic_kind() {
    let metrics = Metrics::default();
    metrics.received("status");
    metrics.received("status");
    metrics.received("enroll");
    let text = metrics.render(&FleetSnapshot::default());
    assert!(text.contains("drover_mqtt_messages_received_total{topic=\"status\"} 2"));
    assert!(text.contains("drover_mqtt_messages_received_total{topic=\"enroll\"} 1"));
}

fn object(
    kind: drover_proto::manifest::Kind,
    name: &str,
    spec: serde_json::Value,
    status: serde_json::Value,
) -> crate::store::StoredObject {
    crate::store::StoredObject {
        kind,
        namespace: if kind.namespaced() {
            "default".into()
        } else {
            String::new()
        },
        name: name.into(),
        uid: format!("uid-{name}"),
        resource_version: 1,
        generation: 1,
        labels: Default::default(),
        annotations: Default::default(),
        owner_references: serde_json::json!([]),
        managed_fields: serde_json::Value::Null,
        spec,
        status,
        created_at: chrono::Utc::now(),
        deletion_timestamp: None,
        agent_revision: 0,
    }
}

#[test]
fn the_fleet_is_counted_and_deleted_objects_leave_no_series() {
    use drover_proto::manifest::Kind;
    use serde_json::json;
    let ready = |status: &str| json!({"conditions": [{"type": "Ready", "status": status}]});
    let nodes = [
        object(Kind::Node, "a", json!({}), ready("True")),
        object(Kind::Node, "b", json!({}), ready("True")),
        object(Kind::Node, "c", json!({}), ready("Unknown")),
    ];
    let pods = [
        object(
            Kind::Pod,
            "p1",
            json!({"nodeName": "a"}),
            json!({"phase": "Running"}),
        ),
        object(
            Kind::Pod,
            "p2",
            json!({"nodeName": "a"}),
            json!({"phase": "Running"}),
        ),
        object(Kind::Pod, "p3", json!({}), json!({})),
    ];
    let jobs = [object(
        Kind::Job,
        "pi",
        json!({}),
        json!({"active": 2, "succeeded": 3}),
    )];
    let daemonsets = [object(
        Kind::DaemonSet,
        "logger",
        json!({}),
        json!({"desiredNumberScheduled": 3, "numberReady": 2}),
    )];
    let snapshot = FleetSnapshot::count(&nodes, &pods, &jobs, &daemonsets);
    let metrics = Metrics::default();
    let text = metrics.render(&snapshot);
    for line in [
        "drover_nodes{condition=\"Ready\",status=\"True\"} 2",
        "drover_nodes{condition=\"Ready\",status=\"Unknown\"} 1",
        "drover_pods{phase=\"Running\",node=\"a\"} 2",
        "drover_pods{phase=\"Pending\",node=\"\"} 1",
        "drover_job_pods{namespace=\"default\",job=\"pi\",state=\"active\"} 2",
        "drover_job_pods{namespace=\"default\",job=\"pi\",state=\"succeeded\"} 3",
        "drover_daemonset_pods{namespace=\"default\",daemonset=\"logger\",state=\"ready\"} 2",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let text = metrics.render(&FleetSnapshot::default());
    assert!(!text.contains("job=\"pi\""), "{text}");
    assert!(!text.contains("node=\"a\""), "{text}");
}
