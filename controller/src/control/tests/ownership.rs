//! Adoption and release carried out by the control loop: what the pure
//! `reconcile::ownership::claim` decides, written to the store before a Job counts its pods.

use serde_json::{json, Value};

use super::*;
use crate::api::resources::by_kind;
use crate::control::{KubeRequest, WriteOptions};

fn create(h: &mut Harness, kind: &str, body: Value) -> Value {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = KubeRequest::Create {
        resource: by_kind(kind).unwrap(),
        namespace: Some("default".into()),
        body,
        options: WriteOptions::default(),
    };
    h.control.handle(Input::Kube(request, reply), t(0));
    answer.blocking_recv().unwrap().result.unwrap()
}

fn pod(h: &Harness, name: &str) -> crate::store::StoredObject {
    h.control
        .store
        .get(Kind::Pod, "default", name)
        .unwrap()
        .unwrap()
}

#[test]
fn a_job_adopts_an_orphan_with_its_controller_uid_and_releases_it_once_relabelled() {
    let mut h = harness();
    // Waiting for a Job that never comes: it creates no pod and deletes none.
    let job = create(
        &mut h,
        "Job",
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "annotations": {"drover.io/depends-on": "never"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "command": ["true"]}]}}},
        }),
    );
    let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    create(
        &mut h,
        "Pod",
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "orphan", "labels": {"batch.kubernetes.io/controller-uid": uid}},
            "spec": {"containers": [{"name": "c", "command": ["sleep", "100"]}]},
        }),
    );
    h.control.settle(t(1));
    assert_eq!(
        pod(&h, "orphan").owner_references,
        json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": uid,
                "controller": true, "blockOwnerDeletion": true}])
    );
    let status = |h: &Harness| {
        h.control
            .store
            .get(Kind::Job, "default", "j")
            .unwrap()
            .unwrap()
            .status
    };
    assert_eq!(status(&h)["active"], 1, "the adopted pod counts");

    let mut relabelled = pod(&h, "orphan");
    relabelled
        .labels
        .insert("batch.kubernetes.io/controller-uid".into(), "other".into());
    h.control.store.put(&relabelled).unwrap();
    h.control.workloads_changed();
    h.control.settle(t(2));
    assert_eq!(pod(&h, "orphan").owner_references, json!([]));
    assert_eq!(status(&h)["active"], 0, "a released pod no longer counts");
}
