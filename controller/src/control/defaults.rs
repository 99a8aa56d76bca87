//! Kubernetes' defaults for pod fields Drover does not model. Clients send them (`kubectl
//! run`, objects exported from a cluster) and expect to see them: on input a field that
//! holds its default is dropped instead of refused; on output pods show them.

use serde_json::{json, Map, Value};

/// Pod spec fields Drover has no model of, with the only value it accepts.
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

/// Drops defaults of unmodelled fields from an object about to be validated.
pub(super) fn accept_kubernetes_defaults(kind: &str, object: &mut Value) {
    strip_nulls(object);
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

/// Shows the defaults a pod has in Kubernetes (those `accept_kubernetes_defaults` drops).
pub(super) fn show_pod_defaults(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, value) in [
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
    ] {
        spec.entry(field).or_insert(value);
    }
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
    fn shown_defaults_are_accepted_again() {
        let mut pod = json!({"spec": {"containers": []}});
        show_pod_defaults(&mut pod);
        assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
        accept_kubernetes_defaults("Pod", &mut pod);
        assert_eq!(pod, json!({"spec": {"containers": []}}));
    }
}
