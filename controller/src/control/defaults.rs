//! Kubernetes' defaults for pod fields Drover does not model. Clients send them (`kubectl
//! run`, objects exported from a cluster) and expect to see them: on input a field that
//! holds its default is dropped instead of refused; on output pods show them.

use drover_proto::manifest::Kind;
use serde_json::{json, Map, Value};

/// Pod spec fields Drover does not act on, with their Kubernetes default: that value is
/// dropped on input (it says nothing); any other is stored and warned of
/// (`drover_proto::manifest::ignored`), except `schedulerName`, which another value makes
/// an error.
const POD_DEFAULTS: &[(&str, &str)] = &[
    ("dnsPolicy", "\"ClusterFirst\""),
    ("schedulerName", "\"default-scheduler\""),
    ("enableServiceLinks", "true"),
    ("serviceAccountName", "\"default\""),
    ("serviceAccount", "\"default\""),
    ("priority", "0"),
    ("preemptionPolicy", "\"PreemptLowerPriority\""),
];

/// Container fields likewise.
const CONTAINER_DEFAULTS: &[(&str, &str)] = &[
    ("terminationMessagePath", "\"/dev/termination-log\""),
    ("terminationMessagePolicy", "\"File\""),
];

fn holds(value: &Value, default: &str) -> bool {
    serde_json::from_str::<Value>(default).is_ok_and(|d| *value == d)
}

/// Removes `null` members everywhere: Kubernetes reads them as unset.
pub(super) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn remove_defaults(map: &mut Map<String, Value>, defaults: &[(&str, &str)]) {
    for (field, default) in defaults {
        if map.get(*field).is_some_and(|v| holds(v, default)) {
            map.remove(*field);
        }
    }
    // `{}` says nothing: Kubernetes prints empty resources and security contexts.
    for field in ["resources", "securityContext"] {
        if map
            .get(field)
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
        {
            map.remove(field);
        }
    }
}

/// The pod specs inside an object of `kind`, as JSON pointers.
fn pod_spec_pointers(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["/spec"],
        "Job" | "DaemonSet" => &["/spec/template/spec"],
        "CronJob" => &["/spec/jobTemplate/spec/template/spec"],
        _ => &[],
    }
}

/// The labels Kubernetes adds to a Job's template (and so to its pods).
const JOB_TEMPLATE_LABELS: &[&str] = &[
    "batch.kubernetes.io/job-name",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
];

fn default_update_strategy() -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
}

/// Drops the Job and DaemonSet defaults [`show_defaults`] adds, where dropping them
/// changes nothing Drover does.
fn accept_workload_defaults(kind: &str, object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match kind {
        "Job" => {
            let completions = spec.get("completions").and_then(Value::as_i64);
            let parallelism = spec.get("parallelism").and_then(Value::as_i64);
            // Parallelism 1 is the default, except that it alone makes a work queue.
            if parallelism == Some(1) && completions.is_some() {
                spec.remove("parallelism");
                if completions == Some(1) {
                    spec.remove("completions");
                }
            }
            let replacement_default = if spec.contains_key("podFailurePolicy") {
                "Failed"
            } else {
                "TerminatingOrFailed"
            };
            for (field, default) in [
                ("podReplacementPolicy", json!(replacement_default)),
                ("backoffLimit", json!(6)),
                ("completionMode", json!("NonIndexed")),
                ("suspend", json!(false)),
                ("manualSelector", json!(false)),
            ] {
                if spec.get(field) == Some(&default) {
                    spec.remove(field);
                }
            }
            let generated = spec
                .get("selector")
                .and_then(|s| s.get("matchLabels"))
                .and_then(Value::as_object)
                .is_some_and(|m| {
                    !m.is_empty() && m.keys().all(|k| JOB_TEMPLATE_LABELS.contains(&k.as_str()))
                });
            if generated
                && spec
                    .get("selector")
                    .and_then(Value::as_object)
                    .is_some_and(|s| s.len() == 1)
            {
                spec.remove("selector");
            }
            if let Some(labels) = spec
                .get_mut("template")
                .and_then(|t| t.get_mut("metadata"))
                .and_then(|m| m.get_mut("labels"))
                .and_then(Value::as_object_mut)
            {
                labels.retain(|k, _| !JOB_TEMPLATE_LABELS.contains(&k.as_str()));
            }
        }
        "DaemonSet" => {
            if spec.get("revisionHistoryLimit") == Some(&json!(10)) {
                spec.remove("revisionHistoryLimit");
            }
            if spec.get("updateStrategy") == Some(&default_update_strategy()) {
                spec.remove("updateStrategy");
            }
        }
        _ => {}
    }
}

/// Drops defaults of unmodelled fields from an object about to be validated.
pub(super) fn accept_kubernetes_defaults(kind: &str, object: &mut Value) {
    strip_nulls(object);
    accept_workload_defaults(kind, object);
    for pointer in pod_spec_pointers(kind) {
        let Some(spec) = object.pointer_mut(pointer).and_then(Value::as_object_mut) else {
            continue;
        };
        remove_defaults(spec, POD_DEFAULTS);
        for list in ["containers", "initContainers"] {
            if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
                for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                    remove_defaults(container, CONTAINER_DEFAULTS);
                }
            }
        }
    }
}

/// An object as the API shows it (`get -o yaml`), made what a manifest of it says: without
/// the metadata and status the server keeps and the defaults it shows, which the server
/// takes in a body too (and replaces by its own).
pub(crate) fn as_manifest(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in super::objects::SERVER_METADATA {
            metadata.remove(*field);
        }
    }
    if let Some(root) = object.as_object_mut() {
        root.remove("status");
    }
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    accept_kubernetes_defaults(&kind, object);
}

fn show_pod_spec_defaults(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    for (field, value) in [
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
    ] {
        spec.entry(field).or_insert(value);
    }
}

/// Shows the defaults an object has in Kubernetes: those `accept_kubernetes_defaults`
/// drops, and a bare pod's `restartPolicy` and grace period (a pod's spec never changes,
/// so these are never written back).
pub(crate) fn show_defaults(kind: &str, object: &mut Value) {
    let uid = object["metadata"]["uid"].clone();
    let name = object["metadata"]["name"].clone();
    for pointer in pod_spec_pointers(kind) {
        if let Some(spec) = object.pointer_mut(pointer) {
            show_pod_spec_defaults(spec);
        }
    }
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match kind {
        "Pod" => {
            spec.entry("restartPolicy").or_insert(json!("Always"));
            spec.entry("terminationGracePeriodSeconds")
                .or_insert(json!(crate::pods::DEFAULT_GRACE_SECONDS));
        }
        "Job" => {
            if !spec.contains_key("completions") && !spec.contains_key("parallelism") {
                spec.insert("completions".into(), json!(1));
            }
            spec.entry("parallelism").or_insert(json!(1));
            if !spec.contains_key("backoffLimitPerIndex") {
                spec.entry("backoffLimit").or_insert(json!(6));
            }
            spec.entry("completionMode").or_insert(json!("NonIndexed"));
            spec.entry("suspend").or_insert(json!(false));
            spec.entry("manualSelector").or_insert(json!(false));
            let replacement_default = if spec.contains_key("podFailurePolicy") {
                "Failed"
            } else {
                "TerminatingOrFailed"
            };
            spec.entry("podReplacementPolicy")
                .or_insert(json!(replacement_default));
            spec.entry("selector")
                .or_insert(json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
            if let Some(meta) = spec
                .get_mut("template")
                .and_then(Value::as_object_mut)
                .map(|t| t.entry("metadata").or_insert(json!({})))
                .and_then(Value::as_object_mut)
            {
                let labels = meta.entry("labels").or_insert(json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    for (key, value) in [
                        ("batch.kubernetes.io/controller-uid", &uid),
                        ("batch.kubernetes.io/job-name", &name),
                        ("controller-uid", &uid),
                        ("job-name", &name),
                    ] {
                        labels.entry(key).or_insert(value.clone());
                    }
                }
            }
        }
        "DaemonSet" => {
            spec.entry("updateStrategy")
                .or_insert(default_update_strategy());
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
        }
        _ => {}
    }
}

/// Why an update may not change a DaemonSet's selector, if it does: pods it selected
/// would be released and run on beside their replacements (Kubernetes keeps it immutable).
/// A Job's selector is generated and cannot be written.
pub(super) fn selector_change(kind: Kind, current: &Value, next: &Value) -> Option<String> {
    (kind == Kind::DaemonSet && current.get("selector") != next.get("selector")).then(|| {
        format!(
            "Invalid value: {}: field is immutable",
            next.get("selector").unwrap_or(&Value::Null)
        )
    })
}

/// Whether two pod specs differ only in defaults.
pub(super) fn same_pod_spec(a: &Value, b: &Value) -> bool {
    let normal = |spec: &Value| {
        let mut spec = spec.clone();
        if let Some(map) = spec.as_object_mut() {
            if map.get("restartPolicy") == Some(&json!("Always")) {
                map.remove("restartPolicy");
            }
            if map.get("terminationGracePeriodSeconds")
                == Some(&json!(crate::pods::DEFAULT_GRACE_SECONDS))
            {
                map.remove("terminationGracePeriodSeconds");
            }
        }
        spec
    };
    normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_run_defaults_are_dropped_and_others_kept() {
        let mut pod = json!({
            "metadata": {"name": "x", "creationTimestamp": null},
            "spec": {
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "other",
                "containers": [{"name": "c", "resources": {}, "terminationMessagePolicy": "File"}],
            },
            "status": {},
        });
        accept_kubernetes_defaults("Pod", &mut pod);
        assert_eq!(
            pod,
            json!({
                "metadata": {"name": "x"},
                "spec": {"schedulerName": "other", "containers": [{"name": "c"}]},
                "status": {},
            })
        );
        let mut job = json!({"spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"dnsPolicy": "ClusterFirst"}}}});
        accept_kubernetes_defaults("Job", &mut job);
        assert_eq!(
            job,
            json!({"spec": {"template": {"metadata": {}, "spec": {}}}})
        );
    }

    #[test]
    fn a_daemonsets_selector_is_immutable() {
        let current = json!({"selector": {"matchLabels": {"app": "a"}}});
        assert!(selector_change(Kind::DaemonSet, &current, &current.clone()).is_none());
        let next = json!({"selector": {"matchLabels": {"app": "b"}}});
        let message = selector_change(Kind::DaemonSet, &current, &next).unwrap_or_default();
        assert!(message.ends_with("field is immutable"), "{message}");
        assert!(selector_change(Kind::Pod, &current, &next).is_none());
    }

    #[test]
    fn shown_defaults_are_accepted_again() {
        let mut pod = json!({"spec": {"containers": []}});
        show_defaults("Pod", &mut pod);
        assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        accept_kubernetes_defaults("Pod", &mut pod);
        assert!(same_pod_spec(&pod["spec"], &json!({"containers": []})));

        let bare = json!({
            "metadata": {"name": "j", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"restartPolicy": "Never"}}},
        });
        let mut job = bare.clone();
        show_defaults("Job", &mut job);
        assert_eq!(job["spec"]["completions"], 1);
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "j"
        );
        assert_eq!(job["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        accept_kubernetes_defaults("Job", &mut job);
        assert_eq!(job, bare);

        // With a podFailurePolicy the default is Failed, and a Failed shown is dropped again.
        let mut with_policy = bare.clone();
        with_policy["spec"]["podFailurePolicy"] = json!({"rules": []});
        let mut job = with_policy.clone();
        show_defaults("Job", &mut job);
        assert_eq!(job["spec"]["podReplacementPolicy"], "Failed");
        accept_kubernetes_defaults("Job", &mut job);
        assert_eq!(job, with_policy);
        let mut explicit = bare.clone();
        explicit["spec"]["podReplacementPolicy"] = json!("Failed");
        let mut job = explicit.clone();
        accept_kubernetes_defaults("Job", &mut job);
        assert_eq!(job, explicit, "a policy other than the default is kept");

        let bare = json!({"metadata": {}, "spec": {"template": {"spec": {}}}});
        let mut ds = bare.clone();
        show_defaults("DaemonSet", &mut ds);
        assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        accept_kubernetes_defaults("DaemonSet", &mut ds);
        assert_eq!(ds, bare);
    }

    #[test]
    fn a_work_queue_job_keeps_its_parallelism() {
        let mut job = json!({"spec": {"parallelism": 1}});
        accept_kubernetes_defaults("Job", &mut job);
        assert_eq!(job, json!({"spec": {"parallelism": 1}}));
        let mut job = json!({"spec": {"parallelism": 1, "completions": 3}});
        accept_kubernetes_defaults("Job", &mut job);
        assert_eq!(job, json!({"spec": {"completions": 3}}));
    }
}
