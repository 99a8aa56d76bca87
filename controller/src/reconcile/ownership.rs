//! Which pods a controller owns, as Kubernetes' controller ref manager (`ClaimPods`)
//! decides: orphans that match the owner's selector are adopted, owned pods whose labels no
//! longer match are released, everything else is left as it is.

use std::collections::BTreeMap;

use drover_proto::manifest::LabelSelector;
use serde_json::Value;

/// The owner looking at pods: a Job or a DaemonSet.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// Its namespace; it claims only pods of the same one.
    pub namespace: &'a str,
    /// Its UID.
    pub uid: &'a str,
    /// Which pods it may own.
    pub selector: &'a LabelSelector,
    /// Being deleted: it adopts and releases nothing.
    pub deleting: bool,
}

/// One reference of a pod's `metadata.ownerReferences`, as far as claiming goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    /// The owner's UID.
    pub uid: String,
    /// `controller: true`.
    pub controller: bool,
}

/// A pod, as far as claiming goes.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its owner references.
    pub owners: &'a [OwnerRef],
    /// Being deleted (it has a `deletionTimestamp`).
    pub deleting: bool,
}

/// What the owner does with one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Already its pod, and its labels match: it counts.
    Owned,
    /// An orphan that matches: the owner adds its controller reference, and it counts.
    Adopt,
    /// Its pod, but the labels no longer match: the owner removes its reference, and it no
    /// longer counts.
    Release,
    /// Not the owner's business (another controller's pod, a non-matching orphan, an
    /// orphan being deleted, or anything while the owner is being deleted and the pod
    /// is not already its matching pod).
    Leave,
}

impl Claim {
    /// Whether the owner counts the pod as its own after the claim.
    pub fn counts(self) -> bool {
        matches!(self, Claim::Owned | Claim::Adopt)
    }
}

/// Whether `labels` satisfy a Kubernetes label selector (an empty one selects nothing).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector.selects(labels)
}

/// The selector Kubernetes generates for a Job: its pods' `batch.kubernetes.io/controller-uid`.
pub fn job_selector(uid: &str) -> LabelSelector {
    LabelSelector {
        match_labels: [(CONTROLLER_UID.to_string(), uid.to_string())].into(),
        match_expressions: Vec::new(),
    }
}

/// The label a Job's generated selector is on.
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";

/// Decides what `owner` does with `pod` (Kubernetes' `ClaimObject`).
pub fn claim(owner: &Owner, pod: &Candidate) -> Claim {
    if owner.namespace != pod.namespace {
        return Claim::Leave;
    }
    let matches = selector_matches(owner.selector, pod.labels);
    match pod.owners.iter().find(|r| r.controller) {
        Some(controller) if controller.uid != owner.uid => Claim::Leave,
        Some(_) if matches => Claim::Owned,
        Some(_) if owner.deleting => Claim::Leave,
        Some(_) => Claim::Release,
        None if owner.deleting || !matches || pod.deleting => Claim::Leave,
        None => Claim::Adopt,
    }
}

/// The owner references of a stored pod (`metadata.ownerReferences`, a JSON array).
pub fn owner_refs(refs: &Value) -> Vec<OwnerRef> {
    refs.as_array()
        .into_iter()
        .flatten()
        .map(|r| OwnerRef {
            uid: r["uid"].as_str().unwrap_or("").to_string(),
            controller: r["controller"] == true,
        })
        .collect()
}

/// `refs` with `reference` (a controller reference) added; an existing reference to the
/// same owner is replaced, as Kubernetes' adoption patch merges by UID.
pub fn adopted(refs: &Value, reference: Value) -> Value {
    let mut list: Vec<Value> = refs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["uid"] != reference["uid"])
        .cloned()
        .collect();
    list.push(reference);
    Value::Array(list)
}

/// `refs` without any reference to the owner with `uid`.
pub fn released(refs: &Value, uid: &str) -> Value {
    Value::Array(
        refs.as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["uid"] != uid)
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::manifest::{LabelSelectorRequirement, NodeSelectorOperator};
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn app_selector() -> LabelSelector {
        LabelSelector {
            match_labels: labels(&[("app", "probe")]),
            match_expressions: Vec::new(),
        }
    }

    fn owner<'a>(selector: &'a LabelSelector, deleting: bool) -> Owner<'a> {
        Owner {
            namespace: "default",
            uid: "ds-1",
            selector,
            deleting,
        }
    }

    fn controller(uid: &str) -> Vec<OwnerRef> {
        vec![OwnerRef {
            uid: uid.into(),
            controller: true,
        }]
    }

    fn decide(
        owner: &Owner,
        labels: &BTreeMap<String, String>,
        owners: &[OwnerRef],
        deleting: bool,
    ) -> Claim {
        claim(
            owner,
            &Candidate {
                namespace: "default",
                labels,
                owners,
                deleting,
            },
        )
    }

    #[test]
    fn a_matching_orphan_is_adopted_and_counts() {
        let selector = app_selector();
        let matching = labels(&[("app", "probe"), ("extra", "x")]);
        let claim = decide(&owner(&selector, false), &matching, &[], false);
        assert_eq!(claim, Claim::Adopt);
        assert!(claim.counts());
    }

    #[test]
    fn an_orphan_with_a_non_controller_reference_to_the_owner_is_adopted() {
        let selector = app_selector();
        let refs = vec![OwnerRef {
            uid: "ds-1".into(),
            controller: false,
        }];
        let claim = decide(
            &owner(&selector, false),
            &labels(&[("app", "probe")]),
            &refs,
            false,
        );
        assert_eq!(claim, Claim::Adopt);
    }

    #[test]
    fn orphans_that_do_not_match_are_being_deleted_or_in_another_namespace_are_left() {
        let selector = app_selector();
        let o = owner(&selector, false);
        assert_eq!(
            decide(&o, &labels(&[("app", "other")]), &[], false),
            Claim::Leave
        );
        assert_eq!(decide(&o, &labels(&[]), &[], false), Claim::Leave);
        assert_eq!(
            decide(&o, &labels(&[("app", "probe")]), &[], true),
            Claim::Leave,
            "a pod being deleted is not adopted"
        );
        let matching = labels(&[("app", "probe")]);
        let elsewhere = Candidate {
            namespace: "other",
            labels: &matching,
            owners: &[],
            deleting: false,
        };
        assert_eq!(claim(&o, &elsewhere), Claim::Leave);
    }

    #[test]
    fn an_owner_being_deleted_adopts_and_releases_nothing_but_keeps_its_matching_pods() {
        let selector = app_selector();
        let o = owner(&selector, true);
        let matching = labels(&[("app", "probe")]);
        assert_eq!(decide(&o, &matching, &[], false), Claim::Leave);
        assert_eq!(
            decide(&o, &labels(&[("app", "x")]), &controller("ds-1"), false),
            Claim::Leave
        );
        assert_eq!(
            decide(&o, &matching, &controller("ds-1"), false),
            Claim::Owned
        );
    }

    #[test]
    fn an_owned_pod_that_matches_is_owned_even_while_it_is_deleted() {
        let selector = app_selector();
        let o = owner(&selector, false);
        let matching = labels(&[("app", "probe")]);
        assert_eq!(
            decide(&o, &matching, &controller("ds-1"), true),
            Claim::Owned
        );
    }

    #[test]
    fn an_owned_pod_relabelled_out_of_the_selector_is_released_and_no_longer_counts() {
        let selector = app_selector();
        let claim = decide(
            &owner(&selector, false),
            &labels(&[("app", "debug")]),
            &controller("ds-1"),
            false,
        );
        assert_eq!(claim, Claim::Release);
        assert!(!claim.counts());
    }

    #[test]
    fn another_controllers_pod_is_left_even_when_it_matches() {
        let selector = app_selector();
        let claim = decide(
            &owner(&selector, false),
            &labels(&[("app", "probe")]),
            &controller("other-uid"),
            false,
        );
        assert_eq!(claim, Claim::Leave);
    }

    #[test]
    fn a_job_selects_its_pods_by_controller_uid() {
        let selector = job_selector("job-1");
        let o = Owner {
            namespace: "default",
            uid: "job-1",
            selector: &selector,
            deleting: false,
        };
        let own = labels(&[(CONTROLLER_UID, "job-1"), ("job-name", "j")]);
        assert_eq!(decide(&o, &own, &[], false), Claim::Adopt);
        let relabelled = labels(&[(CONTROLLER_UID, "someone-else"), ("job-name", "j")]);
        assert_eq!(
            decide(&o, &relabelled, &controller("job-1"), false),
            Claim::Release
        );
    }

    #[test]
    fn match_expressions_follow_kubernetes_operators_and_an_empty_selector_selects_nothing() {
        let requirement = |key: &str, operator, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let selector = LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![
                requirement("tier", NodeSelectorOperator::In, &["a", "b"]),
                requirement("env", NodeSelectorOperator::NotIn, &["prod"]),
                requirement("app", NodeSelectorOperator::Exists, &[]),
                requirement("debug", NodeSelectorOperator::DoesNotExist, &[]),
            ],
        };
        assert!(selector_matches(
            &selector,
            &labels(&[("tier", "a"), ("app", "x")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("tier", "c"), ("app", "x")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("tier", "a"), ("app", "x"), ("env", "prod")])
        ));
        assert!(!selector_matches(&selector, &labels(&[("tier", "a")])));
        assert!(!selector_matches(
            &selector,
            &labels(&[("tier", "a"), ("app", "x"), ("debug", "1")])
        ));
        assert!(!selector_matches(
            &LabelSelector::default(),
            &labels(&[("app", "x")])
        ));
    }

    #[test]
    fn adoption_adds_the_controller_reference_and_release_removes_only_the_owners() {
        let reference = json!({"uid": "ds-1", "kind": "DaemonSet", "controller": true, "blockOwnerDeletion": true});
        let refs =
            json!([{"uid": "cm-1", "kind": "ConfigMap"}, {"uid": "ds-1", "kind": "DaemonSet"}]);
        let with = adopted(&refs, reference.clone());
        assert_eq!(
            with,
            json!([{"uid": "cm-1", "kind": "ConfigMap"}, reference.clone()])
        );
        assert_eq!(adopted(&Value::Null, reference.clone()), json!([reference]));
        assert_eq!(
            owner_refs(&with),
            vec![
                OwnerRef {
                    uid: "cm-1".into(),
                    controller: false
                },
                OwnerRef {
                    uid: "ds-1".into(),
                    controller: true
                }
            ]
        );
        assert_eq!(
            released(&with, "ds-1"),
            json!([{"uid": "cm-1", "kind": "ConfigMap"}])
        );
        assert_eq!(released(&Value::Null, "ds-1"), json!([]));
    }
}
