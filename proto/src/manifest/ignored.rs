//! Fields Drover accepts and ignores: what they ask for does not exist on Drover (DNS,
//! service accounts, priorities, Services, termination messages) or changes nothing it does
//! (a pod template's name, pod anti-affinity between the pods of a DaemonSet). Refusing
//! them would refuse real manifests whole. The types keep them (so an object reads back as
//! it was written, and re-applying it changes nothing) and nothing acts on them; this module
//! names each one a manifest sets, so the caller is warned. A field whose absence would
//! change what runs in a way users rely on (a custom `schedulerName`, a Job's pod
//! anti-affinity) is not here: it stays an error naming it.

use serde_json::{Map, Value};

use super::Kind;

/// A field taken out of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Its path, e.g. `spec.template.spec.dnsPolicy`.
    pub path: String,
    /// Why it changes nothing.
    pub reason: &'static str,
}

const NO_DNS: &str = "Drover does not manage pod DNS: containers use the engine's resolver, host processes the host's";
const NO_SERVICE_ACCOUNTS: &str =
    "Drover has no service accounts and mounts no API token into pods";
const NO_PRIORITIES: &str = "Drover does not preempt pods: every pod has the same priority";
const NO_SERVICES: &str = "Drover has no Services, so there are no service links";
const NO_TERMINATION_MESSAGE: &str = "Drover keeps no termination message";
const TEMPLATE_NAME: &str = "pods are named by their controller, as in Kubernetes";
const ONE_PER_NODE: &str = "a DaemonSet runs at most one pod per node anyway";

/// Pod spec fields that change nothing, whatever their value.
const POD_FIELDS: &[(&str, &str)] = &[
    ("dnsPolicy", NO_DNS),
    ("dnsConfig", NO_DNS),
    ("serviceAccountName", NO_SERVICE_ACCOUNTS),
    ("serviceAccount", NO_SERVICE_ACCOUNTS),
    ("automountServiceAccountToken", NO_SERVICE_ACCOUNTS),
    ("priorityClassName", NO_PRIORITIES),
    ("priority", NO_PRIORITIES),
    ("preemptionPolicy", NO_PRIORITIES),
    ("enableServiceLinks", NO_SERVICES),
];

/// Container fields likewise.
const CONTAINER_FIELDS: &[(&str, &str)] = &[
    ("terminationMessagePath", NO_TERMINATION_MESSAGE),
    ("terminationMessagePolicy", NO_TERMINATION_MESSAGE),
];

/// The pod templates of an object of `kind`: (path of the template, whether it is a
/// DaemonSet's).
fn templates(kind: Kind) -> &'static [(&'static [&'static str], bool)] {
    match kind {
        Kind::Job => &[(&["spec", "template"], false)],
        Kind::DaemonSet => &[(&["spec", "template"], true)],
        Kind::CronJob => &[(&["spec", "jobTemplate", "spec", "template"], false)],
        Kind::Pod | Kind::Node => &[],
    }
}

fn object_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Map<String, Value>> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_object)
}

fn set(map: &Map<String, Value>, field: &str) -> bool {
    map.get(field).is_some_and(|v| !v.is_null())
}

fn find(
    map: &Map<String, Value>,
    prefix: &str,
    fields: &[(&str, &'static str)],
    out: &mut Vec<Ignored>,
) {
    for (field, reason) in fields {
        if set(map, field) {
            out.push(Ignored {
                path: format!("{prefix}.{field}"),
                reason,
            });
        }
    }
}

fn find_in_pod_spec(spec: &Map<String, Value>, prefix: &str, out: &mut Vec<Ignored>) {
    find(spec, prefix, POD_FIELDS, out);
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, container) in containers.iter().enumerate() {
            if let Some(container) = container.as_object() {
                find(
                    container,
                    &format!("{prefix}.{list}[{i}]"),
                    CONTAINER_FIELDS,
                    out,
                );
            }
        }
    }
}

/// Every ignored field `object` (a manifest of `kind`, as JSON) sets, in the order of the
/// object's tree.
pub fn find_ignored(kind: Kind, object: &Value) -> Vec<Ignored> {
    let mut out = Vec::new();
    if kind == Kind::Pod {
        if let Some(spec) = object_at(object, &["spec"]) {
            find_in_pod_spec(spec, "spec", &mut out);
        }
    }
    if kind == Kind::CronJob {
        if let Some(metadata) = object_at(object, &["spec", "jobTemplate", "metadata"]) {
            if set(metadata, "name") {
                out.push(Ignored {
                    path: "spec.jobTemplate.metadata.name".into(),
                    reason: "a CronJob names its Jobs after itself and their scheduled time",
                });
            }
        }
    }
    for (path, daemon) in templates(kind) {
        let prefix = path.join(".");
        if let Some(metadata) = object_at(object, &[path, &["metadata"][..]].concat()) {
            if set(metadata, "name") {
                out.push(Ignored {
                    path: format!("{prefix}.metadata.name"),
                    reason: TEMPLATE_NAME,
                });
            }
        }
        let Some(spec) = object_at(object, &[path, &["spec"][..]].concat()) else {
            continue;
        };
        let spec_prefix = format!("{prefix}.spec");
        find_in_pod_spec(spec, &spec_prefix, &mut out);
        let anti_affinity = spec
            .get("affinity")
            .and_then(Value::as_object)
            .is_some_and(|a| set(a, "podAntiAffinity"));
        if *daemon && anti_affinity {
            out.push(Ignored {
                path: format!("{spec_prefix}.affinity.podAntiAffinity"),
                reason: ONE_PER_NODE,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(kind: Kind, object: Value) -> Vec<String> {
        find_ignored(kind, &object)
            .into_iter()
            .map(|i| i.path)
            .collect()
    }

    fn pod_spec() -> Value {
        json!({
            "dnsPolicy": "ClusterFirstWithHostNet",
            "serviceAccountName": "builder",
            "automountServiceAccountToken": false,
            "priorityClassName": "high",
            "enableServiceLinks": false,
            "restartPolicy": "Never",
            "initContainers": [{"name": "i", "terminationMessagePolicy": "FallbackToLogsOnError"}],
            "containers": [{"name": "c", "image": "busybox", "terminationMessagePath": "/tmp/t"}],
        })
    }

    #[test]
    fn a_pods_unmanaged_fields_are_named() {
        assert_eq!(
            paths(Kind::Pod, json!({"spec": pod_spec()})),
            [
                "spec.dnsPolicy",
                "spec.serviceAccountName",
                "spec.automountServiceAccountToken",
                "spec.priorityClassName",
                "spec.enableServiceLinks",
                "spec.initContainers[0].terminationMessagePolicy",
                "spec.containers[0].terminationMessagePath",
            ]
        );
        assert!(paths(Kind::Pod, json!({"spec": {"dnsPolicy": null}})).is_empty());
    }

    #[test]
    fn template_names_and_template_fields_of_every_workload_are_named() {
        let template = || json!({"metadata": {"name": "pi"}, "spec": pod_spec()});
        for (kind, object, prefix) in [
            (
                Kind::Job,
                json!({"spec": {"template": template()}}),
                "spec.template",
            ),
            (
                Kind::DaemonSet,
                json!({"spec": {"template": template()}}),
                "spec.template",
            ),
            (
                Kind::CronJob,
                json!({"spec": {"jobTemplate": {"metadata": {"name": "x"}, "spec": {"template": template()}}}}),
                "spec.jobTemplate.spec.template",
            ),
        ] {
            let ignored = paths(kind, object);
            assert!(
                ignored.contains(&format!("{prefix}.metadata.name")),
                "{kind:?}: {ignored:?}"
            );
            assert!(
                ignored.contains(&format!("{prefix}.spec.dnsPolicy")),
                "{kind:?}"
            );
            assert!(
                ignored.contains(&format!(
                    "{prefix}.spec.containers[0].terminationMessagePath"
                )),
                "{kind:?}"
            );
            assert_eq!(
                kind == Kind::CronJob,
                ignored.contains(&"spec.jobTemplate.metadata.name".to_string())
            );
        }
    }

    #[test]
    fn pod_anti_affinity_is_ignored_on_a_daemonset_only() {
        let object = json!({"spec": {"template": {"spec": {"containers": [],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}}}}});
        assert_eq!(
            paths(Kind::DaemonSet, object.clone()),
            ["spec.template.spec.affinity.podAntiAffinity"]
        );
        assert!(
            paths(Kind::Job, object).is_empty(),
            "not ignored: validation refuses it, as a Job's pods would be placed differently"
        );
    }

    #[test]
    fn a_custom_scheduler_is_not_ignored() {
        assert!(paths(
            Kind::Pod,
            json!({"spec": {"schedulerName": "gpu", "containers": []}})
        )
        .is_empty());
    }
}
