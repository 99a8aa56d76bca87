//! Orphan adoption and release, as Kubernetes' controller ref manager does, for DaemonSets
//! and Jobs; and a Job pod deleted on a NotReady node replaced with no other input.

use std::time::Duration;

use drover_e2e::*;
use serde_json::Value;

fn uid(object: &Value) -> String {
    object["metadata"]["uid"].as_str().unwrap().to_string()
}

/// The pod's controller reference, if it has one.
fn controller_of(pod: &Value) -> Option<Value> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .cloned()
}

fn live_pods_on(server: &Server, node: &str) -> Vec<Value> {
    server
        .items("pods")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == node && p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn running(pod: &Value) -> bool {
    phase(pod) == "Running" && pod["metadata"]["deletionTimestamp"].is_null()
}

const DAEMONSET: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: probe
spec:
  selector:
    matchLabels: {app: probe}
  updateStrategy: {type: OnDelete}
  template:
    metadata:
      labels: {app: probe}
    spec:
      nodeSelector: {role: sensor}
      terminationGracePeriodSeconds: 1
      containers:
      - name: probe
        command: [sh, -c, 'while true; do sleep 1; done']
";

#[test]
fn a_daemonset_adopts_a_matching_bare_pod_and_replaces_it_once_it_is_relabelled_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let _s1 = server.join(dir.path(), "s1", &["--label", "role=sensor"]);
    let _s2 = server.join(dir.path(), "s2", &["--label", "role=sensor"]);
    // A bare pod that the DaemonSet's selector will match, already on s1.
    server.apply(
        "apiVersion: v1
kind: Pod
metadata:
  name: stray
  labels: {app: probe, extra: kept}
spec:
  nodeName: s1
  terminationGracePeriodSeconds: 1
  containers:
  - name: probe
    command: [sh, -c, 'while true; do sleep 1; done']
",
    );
    server.wait_pod("stray", "running", Duration::from_secs(10), running);
    server.apply(DAEMONSET);
    let ds = wait_for("the DaemonSet", Duration::from_secs(5), || {
        server.items("ds").into_iter().next()
    });

    // Adopted: the DaemonSet's controller reference, as on the pods it creates.
    let adopted = server.wait_pod("stray", "adopted", Duration::from_secs(10), |p| {
        controller_of(p).is_some()
    });
    let reference = controller_of(&adopted).unwrap();
    assert_eq!(reference["kind"], "DaemonSet", "{adopted}");
    assert_eq!(reference["apiVersion"], "apps/v1");
    assert_eq!(reference["name"], "probe");
    assert_eq!(reference["uid"], uid(&ds).as_str());
    assert_eq!(reference["blockOwnerDeletion"], true);
    // kubectl shows it too.
    let shown = server.kubectl_ok(&[
        "get",
        "pod",
        "stray",
        "-o",
        "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
    ]);
    assert_eq!(shown, "DaemonSet/probe");

    // s2 gets a daemon pod; s1 keeps only the adopted one.
    wait_for("the daemon pod on s2", Duration::from_secs(10), || {
        live_pods_on(&server, "s2").into_iter().find(running)
    });
    wait_for("the DaemonSet's status", Duration::from_secs(10), || {
        let ds = server.items("ds").into_iter().next()?;
        (ds["status"]["currentNumberScheduled"] == 2 && ds["status"]["desiredNumberScheduled"] == 2)
            .then_some(())
    });
    holds_for(
        "one pod on s1, the adopted one",
        Duration::from_secs(2),
        || {
            let on_s1 = live_pods_on(&server, "s1");
            on_s1.len() == 1 && on_s1[0]["metadata"]["name"] == "stray"
        },
    );

    // Relabelled out of the selector: released (no owner reference), left running, and
    // the DaemonSet creates a new pod for s1.
    server.kubectl_ok(&["label", "pod", "stray", "app-"]);
    let released = server.wait_pod("stray", "released", Duration::from_secs(10), |p| {
        p["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|r| r.is_empty())
    });
    assert_eq!(released["metadata"]["labels"]["extra"], "kept");
    let replacement = wait_for("a new daemon pod on s1", Duration::from_secs(10), || {
        live_pods_on(&server, "s1")
            .into_iter()
            .find(|p| p["metadata"]["name"] != "stray" && running(p))
    });
    assert_eq!(
        controller_of(&replacement).unwrap()["uid"],
        uid(&ds).as_str()
    );
    assert!(
        running(&server.pod("stray").unwrap()),
        "released, not deleted"
    );
    wait_for("the DaemonSet's status", Duration::from_secs(10), || {
        let ds = server.items("ds").into_iter().next()?;
        (ds["status"]["currentNumberScheduled"] == 2 && ds["status"]["numberReady"] == 2)
            .then_some(())
    });
}

fn job(name: &str, script: &str, node_selector: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
{node_selector}      containers:
      - name: main
        command: [sh, -c, {script:?}]
"
    )
}

#[test]
fn a_job_pod_relabelled_out_of_its_controller_uid_is_released_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ServerOptions::default());
    server.wait_ready_status("server-node", "True", Duration::from_secs(10));
    server.apply(&job("worker", "sleep 60", ""));
    let first = wait_for("a running pod", Duration::from_secs(20), || {
        server.job_pods("worker").into_iter().find(running)
    });
    let first_name = first["metadata"]["name"].as_str().unwrap().to_string();
    let job_uid = uid(&server.job("worker").unwrap());
    assert_eq!(controller_of(&first).unwrap()["uid"], job_uid.as_str());

    server.kubectl_ok(&[
        "label",
        "pod",
        &first_name,
        "batch.kubernetes.io/controller-uid=someone-else",
        "--overwrite",
    ]);
    server.wait_pod(&first_name, "released", Duration::from_secs(10), |p| {
        p["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|r| r.is_empty())
    });
    let replacement = wait_for("a replacement pod", Duration::from_secs(20), || {
        server
            .job_pods("worker")
            .into_iter()
            .find(|p| p["metadata"]["name"] != first_name.as_str() && running(p))
    });
    assert_eq!(
        controller_of(&replacement).unwrap()["uid"],
        job_uid.as_str()
    );
    // The released pod no longer counts: one active pod, none failed, and it runs on.
    let status = wait_for("active 1", Duration::from_secs(10), || {
        let status = server.job_status("worker");
        (status["active"] == 1).then_some(status)
    });
    assert_eq!(status["failed"], 0, "{status}");
    assert!(running(&server.pod(&first_name).unwrap()));
}

#[test]
fn an_orphan_with_a_jobs_controller_uid_is_adopted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ServerOptions::default());
    server.wait_ready_status("server-node", "True", Duration::from_secs(10));
    // Waiting for a Job that never comes: it creates no pod and stops none, so the only
    // pod it can count is the orphan.
    server.apply(&job("adopter", "sleep 60", "").replace(
        "  name: adopter\n",
        "  name: adopter\n  annotations: {drover.io/depends-on: never-created}\n",
    ));
    let job_uid = uid(&server.job("adopter").unwrap());
    server.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: orphan
  labels: {{batch.kubernetes.io/controller-uid: {job_uid}, batch.kubernetes.io/job-name: adopter}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    command: [sh, -c, 'sleep 60']
"
    ));
    let adopted = server.wait_pod("orphan", "adopted", Duration::from_secs(10), |p| {
        controller_of(p).is_some()
    });
    let reference = controller_of(&adopted).unwrap();
    assert_eq!(reference["kind"], "Job");
    assert_eq!(reference["uid"], job_uid.as_str());
    assert_eq!(reference["blockOwnerDeletion"], true);
    wait_for(
        "the orphan counted as active",
        Duration::from_secs(10),
        || (server.job_status("adopter")["active"] == 1).then_some(()),
    );
}

#[test]
fn a_job_pod_force_deleted_on_a_not_ready_node_is_replaced_on_a_ready_node_without_other_input() {
    // The case issue 14 cites. The resync is off: the deletion itself must lead to the
    // replacement, not the periodic resync that would also heal a missed trigger.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        ServerOptions {
            disable_agent: true,
            ..Default::default()
        },
        &["--resync-period", "0s"],
    );
    let mut lost = server.join(dir.path(), "lost", &["--label", "site=a"]);
    let _spare = server.join(dir.path(), "spare", &[]);
    server.apply(&job(
        "steady",
        "sleep 300",
        "      nodeSelector: {site: a}\n",
    ));
    let first = wait_for("the pod on lost", Duration::from_secs(20), || {
        server.job_pods("steady").into_iter().find(running)
    });
    assert_eq!(first["spec"]["nodeName"], "lost");
    let first_name = first["metadata"]["name"].as_str().unwrap().to_string();
    server.cli_ok(&["label", "node", "spare", "site=a"]);

    // The agent stops: its node goes NotReady at once.
    lost.proc.signal("TERM");
    assert!(lost.proc.wait_exit(Duration::from_secs(10)).is_some());
    server.wait_ready_status("lost", "False", Duration::from_secs(10));
    server.kubectl_ok(&["delete", "pod", &first_name, "--force", "--grace-period=0"]);
    // Nothing else happens from here on: the replacement must come by itself.
    let replacement = wait_for(
        "a replacement running on spare",
        Duration::from_secs(15),
        || {
            server
                .job_pods("steady")
                .into_iter()
                .find(|p| p["spec"]["nodeName"] == "spare" && running(p))
        },
    );
    assert_ne!(replacement["metadata"]["name"], first_name.as_str());
    let status = server.job_status("steady");
    assert_eq!(status["failed"], 1, "the deleted pod counts: {status}");
}
