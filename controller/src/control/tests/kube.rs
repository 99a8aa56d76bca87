//! The Kubernetes API's verbs, answered by the control loop.

use serde_json::{json, Value};

use super::*;
use crate::api::resources::{by_kind, Resource};
use crate::control::{DeleteOptions, KubeRequest, ListOptions, Propagation, WriteOptions};

fn res(kind: &str) -> &'static Resource {
    by_kind(kind).unwrap()
}

fn ns() -> Option<String> {
    Some("default".into())
}

fn pod(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "alpine", "command": ["sleep", "100"]}]},
    })
}

impl Harness {
    fn kube(&mut self, request: KubeRequest) -> KubeResult {
        self.kube_reply(request).result
    }

    fn kube_reply(&mut self, request: KubeRequest) -> crate::control::KubeReply {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.control.handle(Input::Kube(request, reply), t(0));
        answer.blocking_recv().expect("an answer")
    }

    fn create(&mut self, kind: &str, body: Value) -> KubeResult {
        self.kube(KubeRequest::Create {
            resource: res(kind),
            namespace: ns(),
            body,
            options: WriteOptions::default(),
        })
    }

    fn list(&mut self, kind: &str, options: ListOptions) -> KubeResult {
        self.kube(KubeRequest::List {
            resource: res(kind),
            namespace: None,
            options,
        })
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_get_and_a_typed_list_at_the_current_resource_version() {
    let mut h = harness();
    let created = h.create("Pod", pod("web", json!({"app": "web"}))).unwrap();
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["kind"], "Pod");
    let got = h
        .kube(KubeRequest::Get {
            resource: res("Pod"),
            namespace: ns(),
            name: "web".into(),
        })
        .unwrap();
    assert_eq!(got["metadata"]["uid"], created["metadata"]["uid"]);
    let list = h.list("Pod", ListOptions::default()).unwrap();
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["apiVersion"], "v1");
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rv >= created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    );
    assert_eq!(names(&list), vec!["web"]);

    let again = h.create("Pod", pod("web", json!({}))).unwrap_err();
    assert_eq!((again.code, again.reason), (409, "AlreadyExists"));
    assert_eq!(again.message, "pods \"web\" already exists");
    let missing = h
        .kube(KubeRequest::Get {
            resource: res("Job"),
            namespace: ns(),
            name: "x".into(),
        })
        .unwrap_err();
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "jobs.batch \"x\" not found")
    );
}

#[test]
fn the_path_namespace_wins_and_a_different_one_is_refused() {
    let mut h = harness();
    let mut body = pod("a", json!({}));
    let created = h
        .kube(KubeRequest::Create {
            resource: res("Pod"),
            namespace: Some("team".into()),
            body: body.clone(),
            options: WriteOptions::default(),
        })
        .unwrap();
    assert_eq!(created["metadata"]["namespace"], "team");
    body["metadata"]["namespace"] = json!("other");
    let e = h.create("Pod", body).unwrap_err();
    assert_eq!(e.code, 400);
    let namespaces = h.list("Namespace", ListOptions::default()).unwrap();
    assert_eq!(names(&namespaces), vec!["default", "team"]);
    assert_eq!(namespaces["items"][1]["status"]["phase"], "Active");
}

#[test]
fn generate_name_and_dry_run() {
    let mut h = harness();
    let mut body = pod("", json!({}));
    body["metadata"]["generateName"] = json!("web-");
    let dry = h
        .kube(KubeRequest::Create {
            resource: res("Pod"),
            namespace: ns(),
            body: body.clone(),
            options: WriteOptions {
                dry_run: true,
                ..Default::default()
            },
        })
        .unwrap();
    assert!(dry["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("web-"));
    assert!(h.control.store.list(Kind::Pod, None).unwrap().is_empty());
    let created = h.create("Pod", body).unwrap();
    let name = created["metadata"]["name"].as_str().unwrap();
    assert_eq!(name.len(), "web-".len() + 5, "{name}");
}

#[test]
fn invalid_objects_name_the_field_in_causes() {
    let mut h = harness();
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Sometimes", "containers": [{"name": "c", "image": "alpine"}]}}},
    });
    let e = h.create("Job", job).unwrap_err();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    let details = e.details.unwrap();
    assert_eq!(details.kind, "jobs");
    assert_eq!(details.group, "batch");
    assert_eq!(details.causes[0].field, "spec.template.spec.restartPolicy");
    assert!(
        e.message
            .starts_with("Job.batch \"j\" is invalid: spec.template.spec.restartPolicy"),
        "{}",
        e.message
    );
}

#[test]
fn a_cronjob_schedule_or_time_zone_the_controller_cannot_run_is_refused_on_create_and_update() {
    let mut h = harness();
    let cronjob = |schedule: &str, zone: Option<&str>| {
        let mut cj = json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "alpine"}]}}}}},
        });
        if let Some(zone) = zone {
            cj["spec"]["timeZone"] = json!(zone);
        }
        cj
    };
    let e = h
        .create("CronJob", cronjob("61 * * * *", None))
        .unwrap_err();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    let causes = e.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.schedule");
    assert!(
        causes[0]
            .message
            .starts_with("Invalid value: \"61 * * * *\""),
        "{}",
        causes[0].message
    );
    h.create("CronJob", cronjob("0 * * * *", None)).unwrap();
    let e = h
        .kube(KubeRequest::Update {
            resource: res("CronJob"),
            namespace: ns(),
            name: "cj".into(),
            body: cronjob("0 * * * *", Some("Mars/Base")),
            status_only: false,
            options: WriteOptions::default(),
        })
        .unwrap_err();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    let causes = e.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.timeZone");
    assert_eq!(
        causes[0].message,
        "Invalid value: \"Mars/Base\": unknown time zone Mars/Base"
    );
}

#[test]
fn a_stale_resource_version_conflicts() {
    let mut h = harness();
    h.create("Pod", pod("web", json!({"v": "1"}))).unwrap();
    // Scheduling may already have written it again: update what a GET shows.
    let current = h
        .kube(KubeRequest::Get {
            resource: res("Pod"),
            namespace: ns(),
            name: "web".into(),
        })
        .unwrap();
    let mut update = current.clone();
    update["metadata"]["labels"] = json!({"v": "2"});
    let updated = h
        .kube(KubeRequest::Update {
            resource: res("Pod"),
            namespace: ns(),
            name: "web".into(),
            body: update.clone(),
            status_only: false,
            options: WriteOptions::default(),
        })
        .unwrap();
    assert_eq!(updated["metadata"]["labels"]["v"], "2");
    let stale = h
        .kube(KubeRequest::Update {
            resource: res("Pod"),
            namespace: ns(),
            name: "web".into(),
            body: update,
            status_only: false,
            options: WriteOptions::default(),
        })
        .unwrap_err();
    assert_eq!((stale.code, stale.reason), (409, "Conflict"));
    assert_eq!(stale.message, "Operation cannot be fulfilled on pods \"web\": the object has been modified; please apply your changes to the latest version and try again");
    let mut spec_change = updated.clone();
    spec_change["spec"]["containers"][0]["image"] = json!("busybox");
    let e = h
        .kube(KubeRequest::Update {
            resource: res("Pod"),
            namespace: ns(),
            name: "web".into(),
            body: spec_change,
            status_only: false,
            options: WriteOptions::default(),
        })
        .unwrap_err();
    assert_eq!(e.code, 422);
}

#[test]
fn label_and_field_selectors() {
    let mut h = harness();
    h.create("Pod", pod("a", json!({"app": "web", "tier": "front"})))
        .unwrap();
    h.create("Pod", pod("b", json!({"app": "db"}))).unwrap();
    let select = |labels: Option<&str>, fields: Option<&str>| ListOptions {
        label_selector: labels.map(str::to_string),
        field_selector: fields.map(str::to_string),
        ..Default::default()
    };
    let l = h.list("Pod", select(Some("app=web"), None)).unwrap();
    assert_eq!(names(&l), vec!["a"]);
    let l = h
        .list("Pod", select(Some("app in (web,db),!tier"), None))
        .unwrap();
    assert_eq!(names(&l), vec!["b"]);
    let l = h
        .list("Pod", select(None, Some("metadata.name!=a")))
        .unwrap();
    assert_eq!(names(&l), vec!["b"]);
    let l = h.list("Pod", select(None, Some("spec.nodeName="))).unwrap();
    assert_eq!(names(&l).len(), 2);
    let e = h
        .list("Pod", select(None, Some("spec.image=x")))
        .unwrap_err();
    assert_eq!((e.code, e.reason), (400, "BadRequest"));
    assert_eq!(e.message, "field label not supported: spec.image");
}

#[test]
fn pages_continue_after_the_last_key() {
    let mut h = harness();
    for name in ["a", "b", "c"] {
        h.create("Pod", pod(name, json!({}))).unwrap();
    }
    let first = h
        .list(
            "Pod",
            ListOptions {
                limit: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(names(&first), vec!["a", "b"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 1);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    h.create("Pod", pod("0", json!({}))).unwrap();
    let second = h
        .list(
            "Pod",
            ListOptions {
                limit: Some(2),
                continue_token: Some(token),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(names(&second), vec!["c"]);
    assert!(second["metadata"].get("continue").is_none());
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    let bad = h
        .list(
            "Pod",
            ListOptions {
                continue_token: Some("zz".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(bad.code, 400);
}

#[test]
fn deleting_an_unbound_pod_answers_status_success() {
    let mut h = harness();
    h.create("Pod", pod("web", json!({}))).unwrap();
    let status = h
        .kube(KubeRequest::Delete {
            resource: res("Pod"),
            namespace: ns(),
            name: "web".into(),
            options: DeleteOptions::default(),
        })
        .unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["name"], "web");
    assert!(h
        .control
        .store
        .get(Kind::Pod, "default", "web")
        .unwrap()
        .is_none());
}

#[test]
fn orphan_deletion_keeps_dependents_without_the_owner_reference() {
    let mut h = harness();
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "alpine"}]}}},
    });
    let job = h.create("Job", job).unwrap();
    let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    let mut child = pod("child", json!({}));
    child["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": uid, "controller": true}]);
    h.create("Pod", child).unwrap();
    h.kube(KubeRequest::Delete {
        resource: res("Job"),
        namespace: ns(),
        name: "j".into(),
        options: DeleteOptions {
            propagation: Propagation::Orphan,
            ..Default::default()
        },
    })
    .unwrap();
    assert!(h
        .control
        .store
        .get(Kind::Job, "default", "j")
        .unwrap()
        .is_none());
    let child = h
        .control
        .store
        .get(Kind::Pod, "default", "child")
        .unwrap()
        .unwrap();
    assert_eq!(child.owner_references, json!([]));
}

#[test]
fn events_are_v1_events_selected_by_involved_object() {
    let mut h = harness();
    h.create("Pod", pod("web", json!({}))).unwrap();
    h.create("Pod", pod("db", json!({}))).unwrap();
    let web = h
        .control
        .store
        .get(Kind::Pod, "default", "web")
        .unwrap()
        .unwrap();
    let rv_before = h.control.store.current_resource_version().unwrap();
    h.control
        .store
        .record_event(&web, "Warning", "Test", "something", "drover", t(0))
        .unwrap();
    let list = h
        .list(
            "Event",
            ListOptions {
                field_selector: Some(format!(
                    "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid={}",
                    web.uid
                )),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(list["kind"], "EventList");
    let events = list["items"].as_array().unwrap();
    let event = events
        .iter()
        .find(|e| e["reason"] == "Test")
        .expect("the event");
    assert_eq!(event["involvedObject"]["uid"], web.uid.as_str());
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["count"], 1);
    assert!(event["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("web."));
    let rv: u64 = event["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > rv_before);
    assert!(events.iter().all(|e| e["involvedObject"]["name"] == "web"));
}

#[test]
fn a_node_put_changes_labels_taints_and_cordon_through_the_node_rules() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    let get = |h: &mut Harness| {
        h.kube(KubeRequest::Get {
            resource: res("Node"),
            namespace: None,
            name: "pi".into(),
        })
        .unwrap()
    };
    let mut node = get(&mut h);
    node["metadata"]["labels"]["role"] = json!("edge");
    node["spec"]["taints"] = json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]);
    node["spec"]["unschedulable"] = json!(true);
    h.kube(KubeRequest::Update {
        resource: res("Node"),
        namespace: None,
        name: "pi".into(),
        body: node,
        status_only: false,
        options: WriteOptions::default(),
    })
    .unwrap();
    let node = get(&mut h);
    assert_eq!(node["metadata"]["labels"]["role"], "edge");
    assert_eq!(node["metadata"]["labels"]["zone"], "a");
    assert_eq!(node["spec"]["taints"][0]["key"], "dedicated");
    assert_eq!(node["spec"]["unschedulable"], true);
    let stored = h.control.store.get(Kind::Node, "", "pi").unwrap().unwrap();
    let events = h.control.store.events(&stored.uid).unwrap();
    assert!(
        events.iter().any(|e| e.reason == "NodeNotSchedulable"),
        "{events:?}"
    );
    // A stale resourceVersion is refused before anything changes.
    let mut stale = node.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["metadata"]["labels"] = json!({});
    let e = h
        .kube(KubeRequest::Update {
            resource: res("Node"),
            namespace: None,
            name: "pi".into(),
            body: stale,
            status_only: false,
            options: WriteOptions::default(),
        })
        .unwrap_err();
    assert_eq!(e.code, 409);
    let mut uncordon = get(&mut h);
    uncordon["spec"] = json!({});
    let node = h
        .kube(KubeRequest::Update {
            resource: res("Node"),
            namespace: None,
            name: "pi".into(),
            body: uncordon,
            status_only: false,
            options: WriteOptions::default(),
        })
        .unwrap();
    assert!(node["spec"].get("unschedulable").is_none(), "{node}");
    assert!(node["spec"].get("taints").is_none(), "{node}");
}

#[test]
fn status_updates_change_only_the_status() {
    let mut h = harness();
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": {"a": "1"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "alpine"}]}}},
    });
    h.create("Job", job).unwrap();
    let mut current = h
        .kube(KubeRequest::Get {
            resource: res("Job"),
            namespace: ns(),
            name: "j".into(),
        })
        .unwrap();
    current["metadata"]["labels"] = json!({});
    current["status"] = json!({"active": 7});
    let updated = h
        .kube(KubeRequest::Update {
            resource: res("Job"),
            namespace: ns(),
            name: "j".into(),
            body: current,
            status_only: true,
            options: WriteOptions::default(),
        })
        .unwrap();
    assert_eq!(updated["status"]["active"], 7);
    assert_eq!(updated["metadata"]["labels"]["a"], "1");
}

#[test]
fn daemonset_revisions_are_controller_revisions() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "alpine"}]}},
        },
    });
    let ds = h.create("DaemonSet", ds).unwrap();
    h.control.settle(t(1));
    let list = h
        .kube(KubeRequest::List {
            resource: res("ControllerRevision"),
            namespace: ns(),
            options: ListOptions {
                label_selector: Some("app=agent".into()),
                ..Default::default()
            },
        })
        .unwrap();
    assert_eq!(list["kind"], "ControllerRevisionList");
    let revision = &list["items"][0];
    assert_eq!(revision["revision"], 1);
    let hash = revision["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap();
    assert_eq!(revision["metadata"]["name"], format!("agent-{hash}"));
    let owner = &revision["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], ds["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    assert_eq!(revision["data"]["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        revision["data"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "alpine"
    );
}

#[test]
fn foreground_deletion_keeps_the_owner_until_its_pods_are_gone() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "alpine"}]}}},
    });
    h.create("Job", job).unwrap();
    h.control.settle(t(1));
    let pods = h.control.store.list(Kind::Pod, None).unwrap();
    assert_eq!(pods.len(), 1, "the Job made its pod");
    assert!(
        crate::pods::node_name(&pods[0]).is_some(),
        "and it is bound"
    );
    let pending = h
        .kube(KubeRequest::Delete {
            resource: res("Job"),
            namespace: ns(),
            name: "j".into(),
            options: DeleteOptions {
                propagation: Propagation::Foreground,
                ..Default::default()
            },
        })
        .unwrap();
    assert_eq!(pending["kind"], "Job");
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        pending["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let pod = h.control.store.list(Kind::Pod, None).unwrap()[0].clone();
    assert!(pod.deletion_timestamp.is_some(), "its pod is terminating");
    // Nothing replaces the pod while the Job is being deleted.
    h.control.workloads_changed();
    h.control.settle(t(2));
    assert_eq!(h.control.store.list(Kind::Pod, None).unwrap().len(), 1);
    assert!(h
        .control
        .store
        .get(Kind::Job, "default", "j")
        .unwrap()
        .is_some());
    // The node confirms the stop: the Job goes too.
    h.control
        .store
        .delete(Kind::Pod, &pod.namespace, &pod.name)
        .unwrap();
    h.control.workloads_changed();
    h.control.settle(t(3));
    assert!(h
        .control
        .store
        .get(Kind::Job, "default", "j")
        .unwrap()
        .is_none());
}

#[test]
fn namespaces_are_created_listed_and_deleted_with_their_objects() {
    let mut h = harness();
    let create = |h: &mut Harness, body: Value| {
        h.kube(KubeRequest::Create {
            resource: res("Namespace"),
            namespace: None,
            body,
            options: WriteOptions::default(),
        })
    };
    let team = create(
        &mut h,
        json!({"metadata": {"name": "team", "labels": {"a": "1"}}}),
    )
    .unwrap();
    assert_eq!(team["metadata"]["labels"]["a"], "1");
    assert_eq!(team["status"]["phase"], "Active");
    let again = create(&mut h, json!({"metadata": {"name": "team"}})).unwrap_err();
    assert_eq!(again.reason, "AlreadyExists");
    assert_eq!(
        create(&mut h, json!({"metadata": {"name": "Bad_Name"}}))
            .unwrap_err()
            .code,
        422
    );
    h.kube(KubeRequest::Create {
        resource: res("Pod"),
        namespace: Some("team".into()),
        body: pod("p", json!({})),
        options: WriteOptions::default(),
    })
    .unwrap();
    let list = h
        .list(
            "Namespace",
            ListOptions {
                label_selector: Some("a=1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(names(&list), vec!["team"]);
    let delete = |h: &mut Harness, name: &str| {
        h.kube(KubeRequest::Delete {
            resource: res("Namespace"),
            namespace: None,
            name: name.into(),
            options: DeleteOptions::default(),
        })
    };
    assert_eq!(delete(&mut h, "default").unwrap_err().code, 403);
    delete(&mut h, "team").unwrap();
    assert!(h
        .control
        .store
        .list(Kind::Pod, Some("team"))
        .unwrap()
        .is_empty());
    let list = h.list("Namespace", ListOptions::default()).unwrap();
    assert_eq!(names(&list), vec!["default"]);
}

#[test]
fn what_a_get_shows_puts_back_unchanged() {
    let mut h = harness();
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "alpine"}]}}},
    });
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "alpine"}]}},
        },
    });
    for (kind, body, name) in [
        ("Job", job, "j"),
        ("DaemonSet", ds, "d"),
        ("Pod", pod("p", json!({})), "p"),
    ] {
        h.create(kind, body).unwrap();
        let shown = h
            .kube(KubeRequest::Get {
                resource: res(kind),
                namespace: ns(),
                name: name.into(),
            })
            .unwrap();
        let stored = h
            .control
            .store
            .get(
                Kind::ALL.into_iter().find(|k| k.as_str() == kind).unwrap(),
                "default",
                name,
            )
            .unwrap()
            .unwrap();
        let put = h
            .kube(KubeRequest::Update {
                resource: res(kind),
                namespace: ns(),
                name: name.into(),
                body: shown.clone(),
                status_only: false,
                options: WriteOptions::default(),
            })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            put["metadata"]["generation"], shown["metadata"]["generation"],
            "{kind}"
        );
        assert_eq!(put["spec"], shown["spec"], "{kind}");
        let after = h
            .control
            .store
            .get(stored.kind, "default", name)
            .unwrap()
            .unwrap();
        assert_eq!(
            after.spec, stored.spec,
            "{kind}: the stored spec is unchanged"
        );
    }
}

#[test]
fn a_list_shows_each_objects_newest_version_and_selects_by_stored_and_defaulted_fields() {
    let mut h = harness();
    h.create("Pod", pod("a", json!({"v": "1"}))).unwrap();
    h.create("Pod", pod("b", json!({}))).unwrap();
    let labels_of_a = |list: &Value| list["items"][0]["metadata"]["labels"].clone();
    let first = h.list("Pod", ListOptions::default()).unwrap();
    assert_eq!(labels_of_a(&first), json!({"v": "1"}));
    let mut a = h
        .control
        .store
        .get(Kind::Pod, "default", "a")
        .unwrap()
        .unwrap();
    a.labels.insert("v".into(), "2".into());
    a.status = json!({"phase": "Running", "podIP": "10.0.0.9"});
    h.control.store.put(&a).unwrap();
    let second = h.list("Pod", ListOptions::default()).unwrap();
    assert_eq!(
        labels_of_a(&second),
        json!({"v": "2"}),
        "not the rendering of before"
    );
    assert_eq!(second["items"][0]["status"]["podIP"], "10.0.0.9");
    let select = |fields: &str| ListOptions {
        field_selector: Some(fields.into()),
        ..Default::default()
    };
    let running = h.list("Pod", select("status.phase=Running")).unwrap();
    assert_eq!(names(&running), vec!["a"]);
    let by_ip = h.list("Pod", select("status.podIP!=10.0.0.9")).unwrap();
    assert_eq!(names(&by_ip), vec!["b"]);
    // Only shown, not stored: the default restart policy still selects.
    let always = h.list("Pod", select("spec.restartPolicy=Always")).unwrap();
    assert_eq!(names(&always), vec!["a", "b"]);
    h.kube(KubeRequest::Delete {
        resource: res("Pod"),
        namespace: ns(),
        name: "b".into(),
        options: DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    })
    .unwrap();
    let after_delete = h.list("Pod", ListOptions::default()).unwrap();
    assert_eq!(names(&after_delete), vec!["a"]);
}

#[test]
fn fields_drover_ignores_are_stored_shown_and_warned_of_once_per_write() {
    let mut h = harness();
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi"},
        "spec": {"completions": 8, "parallelism": 2, "template": {
            "metadata": {"name": "pi"},
            "spec": {"restartPolicy": "Never", "dnsPolicy": "None",
                     "containers": [{"name": "pi", "command": ["true"],
                                     "terminationMessagePolicy": "FallbackToLogsOnError"}]}}},
    });
    let reply = h.kube_reply(KubeRequest::Create {
        resource: res("Job"),
        namespace: ns(),
        body: job.clone(),
        options: WriteOptions::default(),
    });
    let created = reply.result.unwrap();
    assert_eq!(
        reply.warnings,
        [
            "spec.template.metadata.name: ignored: pods are named by their controller, as in Kubernetes",
            "spec.template.spec.dnsPolicy: ignored: Drover does not manage pod DNS: containers use the engine's resolver, host processes the host's",
            "spec.template.spec.containers[0].terminationMessagePolicy: ignored: Drover keeps no termination message",
        ]
    );
    let template = &created["spec"]["template"];
    assert_eq!(template["metadata"]["name"], "pi", "kept as written");
    assert_eq!(template["spec"]["dnsPolicy"], "None");
    let next = h.kube_reply(KubeRequest::Get {
        resource: res("Job"),
        namespace: ns(),
        name: "pi".into(),
    });
    assert!(next.warnings.is_empty(), "a read warns of nothing");
    let patch = |h: &mut Harness, body: Value| {
        h.kube_reply(KubeRequest::Patch {
            resource: res("Job"),
            namespace: ns(),
            name: "pi".into(),
            patch_type: crate::api::patch::PatchType::Merge,
            body: body.to_string().into_bytes(),
            status_only: false,
            options: WriteOptions::default(),
        })
    };
    let labelled = patch(&mut h, json!({"metadata": {"labels": {"a": "b"}}}));
    assert!(labelled.result.is_ok());
    assert!(
        labelled.warnings.is_empty(),
        "fields already stored are not warned of again: {:?}",
        labelled.warnings
    );
    let more = patch(
        &mut h,
        json!({"spec": {"template": {"spec": {"priorityClassName": "high"}}}}),
    );
    assert!(more.result.is_ok());
    assert_eq!(
        more.warnings,
        ["spec.template.spec.priorityClassName: ignored: Drover does not preempt pods: every pod has the same priority"],
        "only the field this write brings"
    );
    let pod_anti_affinity = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"affinity": {"podAntiAffinity": {}}, "containers": [{"name": "c", "command": ["true"]}]},
    });
    let e = h.create("Pod", pod_anti_affinity).unwrap_err();
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("spec.affinity.podAntiAffinity"),
        "{}",
        e.message
    );
}

#[test]
fn a_daemon_pod_of_a_template_with_pod_anti_affinity_takes_labels() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}},
                "containers": [{"name": "c", "image": "alpine"}]}},
        },
    });
    let reply = h.kube_reply(KubeRequest::Create {
        resource: res("DaemonSet"),
        namespace: ns(),
        body: ds,
        options: WriteOptions::default(),
    });
    assert!(reply.result.is_ok());
    assert_eq!(reply.warnings.len(), 1, "{:?}", reply.warnings);
    h.control.settle(t(1));
    let pods = h.list("Pod", ListOptions::default()).unwrap();
    let pod = &pods["items"][0];
    assert!(pod["spec"].get("affinity").is_none(), "{pod}");
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let labelled = h.kube(KubeRequest::Patch {
        resource: res("Pod"),
        namespace: ns(),
        name,
        patch_type: crate::api::patch::PatchType::Merge,
        body: br#"{"metadata": {"labels": {"tier": "edge"}}}"#.to_vec(),
        status_only: false,
        options: WriteOptions::default(),
    });
    assert_eq!(labelled.unwrap()["metadata"]["labels"]["tier"], "edge");
}
