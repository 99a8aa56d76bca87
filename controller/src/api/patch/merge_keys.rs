//! How each list field of the served kinds merges: by a key (Kubernetes' `patchMergeKey`,
//! which matches the `x-kubernetes-list-map-keys` server-side apply uses), as a set of
//! primitives, or atomically (replaced whole). Strategic merge patch and server-side apply
//! both read this one table, so the two agree on every field.

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Replaced whole by a patch (`tolerations`, node `spec.taints`, unknown lists).
    Atomic,
    /// Elements are objects identified by this field (`containers` by `name`).
    Keyed(&'static str),
    /// Elements are primitives merged as a set (`metadata.finalizers`).
    Set,
}

/// Where the pod spec sits in each kind that has one.
fn pod_spec_prefix(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Job" | "DaemonSet" | "Deployment" | "ReplicaSet" | "StatefulSet" | "PodTemplate" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// The strategy of the list at `path` (field names from the object's root; list elements
/// add no segment) in an object of `kind`.
pub fn list_strategy<S: AsRef<str>>(kind: &str, path: &[S]) -> ListStrategy {
    let path: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
    if let Some(strategy) = metadata_list(&path) {
        return strategy;
    }
    if let Some(prefix) = pod_spec_prefix(kind) {
        if let Some(rest) = path.strip_prefix(prefix) {
            if let Some(strategy) = pod_spec_list(rest) {
                return strategy;
            }
        }
    }
    match (kind, path.as_slice()) {
        (_, ["status", "conditions"]) => ListStrategy::Keyed("type"),
        ("Pod", ["status", "podIPs" | "hostIPs"]) => ListStrategy::Keyed("ip"),
        ("Node", ["status", "addresses"]) => ListStrategy::Keyed("type"),
        ("Node", ["spec", "podCIDRs"]) => ListStrategy::Set,
        // Kubernetes gives container statuses no merge key: a patch replaces them whole
        // (`kubectl patch --local` shows it), and so does Drover, to behave the same.
        _ => ListStrategy::Atomic,
    }
}

/// Whether the object at `path` is atomic for server-side apply (Kubernetes'
/// `x-kubernetes-map-type: atomic`): one manager owns it whole, and applying it replaces it
/// rather than merging it key by key. Strategic merge patch still merges these maps, as it
/// does in Kubernetes.
pub fn is_atomic_map<S: AsRef<str>>(kind: &str, path: &[S]) -> bool {
    let path: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
    if let Some(prefix) = pod_spec_prefix(kind) {
        if let Some(rest) = path.strip_prefix(prefix) {
            if matches!(rest, ["nodeSelector"]) {
                return true;
            }
        }
    }
    // Label selectors of workloads.
    kind != "Pod" && matches!(path.as_slice(), ["spec", "selector"])
}

/// Lists of object metadata, wherever metadata appears (the object's own, or a template's).
fn metadata_list(path: &[&str]) -> Option<ListStrategy> {
    match path {
        [.., "metadata", "ownerReferences"] => Some(ListStrategy::Keyed("uid")),
        [.., "metadata", "finalizers"] => Some(ListStrategy::Set),
        _ => None,
    }
}

/// Lists inside a pod spec, by their path relative to it.
fn pod_spec_list(rest: &[&str]) -> Option<ListStrategy> {
    Some(match rest {
        ["containers" | "initContainers" | "ephemeralContainers"] => ListStrategy::Keyed("name"),
        ["containers" | "initContainers" | "ephemeralContainers", field] => match *field {
            "env" => ListStrategy::Keyed("name"),
            "ports" => ListStrategy::Keyed("containerPort"),
            "volumeMounts" => ListStrategy::Keyed("mountPath"),
            "volumeDevices" => ListStrategy::Keyed("devicePath"),
            _ => return None,
        },
        ["volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims"] => {
            ListStrategy::Keyed("name")
        }
        ["hostAliases"] => ListStrategy::Keyed("ip"),
        ["topologySpreadConstraints"] => ListStrategy::Keyed("topologyKey"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_merge_by_name_wherever_the_pod_spec_is() {
        let keyed = ListStrategy::Keyed("name");
        assert_eq!(list_strategy("Pod", &["spec", "containers"]), keyed);
        assert_eq!(
            list_strategy("Job", &["spec", "template", "spec", "containers"]),
            keyed
        );
        assert_eq!(
            list_strategy("DaemonSet", &["spec", "template", "spec", "initContainers"]),
            keyed
        );
        assert_eq!(
            list_strategy(
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers"
                ]
            ),
            keyed
        );
        // A Pod has no template, so this path is nothing special there.
        assert_eq!(
            list_strategy("Pod", &["spec", "template", "spec", "containers"]),
            ListStrategy::Atomic
        );
    }

    #[test]
    fn container_fields_use_kubernetes_keys() {
        let c = |f: &'static str| list_strategy("Pod", &["spec", "containers", f]);
        assert_eq!(c("env"), ListStrategy::Keyed("name"));
        assert_eq!(c("ports"), ListStrategy::Keyed("containerPort"));
        assert_eq!(c("volumeMounts"), ListStrategy::Keyed("mountPath"));
        assert_eq!(c("args"), ListStrategy::Atomic);
        assert_eq!(c("command"), ListStrategy::Atomic);
    }

    #[test]
    fn pod_spec_and_status_lists() {
        let p = |path: &[&str]| list_strategy("Pod", path);
        assert_eq!(p(&["spec", "volumes"]), ListStrategy::Keyed("name"));
        assert_eq!(
            p(&["spec", "imagePullSecrets"]),
            ListStrategy::Keyed("name")
        );
        assert_eq!(p(&["spec", "hostAliases"]), ListStrategy::Keyed("ip"));
        assert_eq!(p(&["spec", "tolerations"]), ListStrategy::Atomic);
        assert_eq!(p(&["status", "conditions"]), ListStrategy::Keyed("type"));
        assert_eq!(p(&["status", "containerStatuses"]), ListStrategy::Atomic);
        assert_eq!(p(&["status", "podIPs"]), ListStrategy::Keyed("ip"));
        assert_eq!(
            list_strategy("Node", &["status", "addresses"]),
            ListStrategy::Keyed("type")
        );
        assert_eq!(
            list_strategy("Node", &["spec", "taints"]),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Job", &["status", "conditions"]),
            ListStrategy::Keyed("type")
        );
    }

    #[test]
    fn atomic_maps() {
        assert!(is_atomic_map("DaemonSet", &["spec", "selector"]));
        assert!(is_atomic_map(
            "Job",
            &["spec", "template", "spec", "nodeSelector"]
        ));
        assert!(is_atomic_map("Pod", &["spec", "nodeSelector"]));
        assert!(!is_atomic_map("Pod", &["metadata", "labels"]));
        assert!(!is_atomic_map("Job", &["spec", "template"]));
    }

    #[test]
    fn metadata_lists_anywhere() {
        assert_eq!(
            list_strategy("Node", &["metadata", "finalizers"]),
            ListStrategy::Set
        );
        assert_eq!(
            list_strategy("Pod", &["metadata", "ownerReferences"]),
            ListStrategy::Keyed("uid")
        );
        assert_eq!(
            list_strategy("Job", &["spec", "template", "metadata", "finalizers"]),
            ListStrategy::Set
        );
    }
}
