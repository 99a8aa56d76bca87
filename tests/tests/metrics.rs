//! `/metrics` of a running server: the fleet, the API and MQTT as Prometheus scrapes them.

use std::time::Duration;

use drover_e2e::*;

#[test]
fn metrics_show_nodes_pods_jobs_api_requests_and_mqtt_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ServerOptions::default());
    server.wait_ready_status("server-node", "True", Duration::from_secs(10));
    server.apply(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: two\nspec:\n  completions: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        command: [\"true\"]\n",
    );
    let text = wait_for(
        "the Job's pods to show in /metrics",
        Duration::from_secs(20),
        || {
            let text = server.metrics();
            text.contains(
                "drover_job_pods{namespace=\"default\",job=\"two\",state=\"succeeded\"} 2",
            )
            .then_some(text)
        },
    );
    for expected in [
        "drover_nodes{condition=\"Ready\",status=\"True\"} 1",
        "drover_pods{phase=\"Succeeded\",node=\"server-node\"} 2",
        "drover_mqtt_messages_received_total{topic=\"status\"}",
        "drover_broker_connections ",
        "# TYPE drover_api_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
    // This test's own scrapes are counted.
    assert!(
        text.lines()
            .any(|l| l.starts_with("drover_api_requests_total{")
                && l.contains("resource=\"metrics\"")
                && l.contains("code=\"200\"")),
        "{text}"
    );
}
