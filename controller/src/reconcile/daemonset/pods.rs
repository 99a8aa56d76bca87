//! The pod a DaemonSet creates on a node: its template pinned to the node, with the
//! tolerations every daemon pod gets and the revision it was made from.

use drover_proto::manifest::{Kind, PodTemplate};

use super::{daemon_tolerations, DsAction, REVISION_HASH_LABEL};
use crate::reconcile::action::{Action, NewPod, ObjectKey, Owner};

/// What the reconciler's pod actions ask of the store, in their order: a pod created from
/// `template` (revision `hash`), or a pod deleted and the deletion announced on the
/// DaemonSet. Back-off bookkeeping is not the store's and is left out.
pub fn store_actions(
    ds: &Owner,
    template: &PodTemplate,
    hash: &str,
    actions: &[DsAction],
) -> Vec<Action> {
    let mut out = Vec::new();
    for action in actions {
        match action {
            DsAction::Create { node } => {
                out.push(Action::CreatePod(new_pod(ds, template, hash, node)));
            }
            DsAction::Delete { pod, reason } => {
                out.push(Action::DeletePod {
                    pod: ObjectKey::new(Kind::Pod, &ds.key.namespace, pod),
                    never_counted: false,
                });
                out.push(Action::normal(
                    &ds.key,
                    "SuccessfulDelete",
                    format!("Deleted pod: {pod} ({reason:?})"),
                ));
            }
            DsAction::RecordFailure { .. } | DsAction::ClearBackoff { .. } => {}
        }
    }
    out
}

/// The pod of `ds` from `template` (revision `hash`) for `node`.
pub fn new_pod(ds: &Owner, template: &PodTemplate, hash: &str, node: &str) -> NewPod {
    let mut spec = template.spec.clone();
    for toleration in daemon_tolerations() {
        if !spec.tolerations.contains(&toleration) {
            spec.tolerations.push(toleration);
        }
    }
    spec.node_name = Some(node.to_string());
    // Accepted on the template and ignored (one pod per node anyway), but refused on a
    // pod: the pod would not take a label or an annotation again.
    if let Some(affinity) = spec.affinity.as_mut() {
        affinity.pod_anti_affinity = None;
        if affinity.node_affinity.is_none() {
            spec.affinity = None;
        }
    }
    let mut labels = template.metadata.labels.clone();
    labels.insert(REVISION_HASH_LABEL.into(), hash.to_string());
    NewPod {
        owner: ds.clone(),
        generate_name: format!("{}-", ds.key.name),
        labels,
        annotations: template.metadata.annotations.clone(),
        spec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::action::ObjectKey;
    use drover_proto::manifest::Kind;
    use serde_json::json;

    fn ds() -> Owner {
        Owner {
            key: ObjectKey::new(Kind::DaemonSet, "kube-system", "exporter"),
            uid: "ds-uid".into(),
        }
    }

    fn template(affinity: serde_json::Value) -> PodTemplate {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "exporter"}, "annotations": {"a": "b"}},
            "spec": {
                "containers": [{"name": "main", "command": ["sleep", "1000"]}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
                "affinity": affinity,
            },
        }))
        .expect("a valid template")
    }

    #[test]
    fn a_daemon_pod_is_pinned_to_its_node_with_its_revision() {
        let pod = new_pod(&ds(), &template(json!(null)), "abc123", "n7");
        assert_eq!(pod.generate_name, "exporter-");
        assert_eq!(pod.owner, ds());
        assert_eq!(pod.spec.node_name.as_deref(), Some("n7"));
        assert_eq!(pod.labels[REVISION_HASH_LABEL], "abc123");
        assert_eq!(pod.labels["app"], "exporter");
        assert_eq!(pod.annotations["a"], "b");
    }

    #[test]
    fn every_daemon_toleration_is_added_once() {
        let pod = new_pod(&ds(), &template(json!(null)), "h", "n");
        for toleration in daemon_tolerations() {
            let count = pod
                .spec
                .tolerations
                .iter()
                .filter(|t| **t == toleration)
                .count();
            assert_eq!(count, 1, "{toleration:?}");
        }
        assert_eq!(pod.spec.tolerations.len(), daemon_tolerations().len());
    }

    #[test]
    fn creations_and_deletions_become_store_actions_in_order() {
        use crate::reconcile::daemonset::DeleteReason;
        let actions = [
            DsAction::Delete {
                pod: "exporter-old".into(),
                reason: DeleteReason::Outdated,
            },
            DsAction::RecordFailure { node: "n2".into() },
            DsAction::Create { node: "n1".into() },
        ];
        let out = store_actions(&ds(), &template(json!(null)), "h2", &actions);
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0],
            Action::DeletePod {
                pod: ObjectKey::new(Kind::Pod, "kube-system", "exporter-old"),
                never_counted: false
            }
        );
        assert_eq!(
            out[1],
            Action::normal(
                &ds().key,
                "SuccessfulDelete",
                "Deleted pod: exporter-old (Outdated)"
            )
        );
        let Action::CreatePod(pod) = &out[2] else {
            panic!("{:?}", out[2]);
        };
        assert_eq!(pod.spec.node_name.as_deref(), Some("n1"));
        assert_eq!(pod.labels[REVISION_HASH_LABEL], "h2");
    }

    #[test]
    fn pod_anti_affinity_is_left_off_and_node_affinity_kept() {
        let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "exporter"}}, "topologyKey": "kubernetes.io/hostname"}]}});
        assert_eq!(
            new_pod(&ds(), &template(anti), "h", "n").spec.affinity,
            None
        );
        let both = json!({
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "exporter"}}, "topologyKey": "kubernetes.io/hostname"}]},
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "arch", "operator": "In", "values": ["arm64"]}]}]}},
        });
        let affinity = new_pod(&ds(), &template(both), "h", "n")
            .spec
            .affinity
            .expect("node affinity stays");
        assert!(affinity.pod_anti_affinity.is_none());
        assert!(affinity.node_affinity.is_some());
    }
}
