//! Adoption and release of pods: carries out what [`crate::reconcile::ownership::claim`]
//! decides for a Job or a DaemonSet, before its reconciler counts its pods.

use std::sync::Arc;

use drover_proto::manifest::LabelSelector;
use tracing::info;

use super::daemonsets::{controller_reference_to, owned_by};
use super::execute::owner_of;
use super::Control;
use crate::reconcile::ownership::{
    adopted, claim, owner_refs, released, selector_matches, Candidate, Claim, Owner,
};
use crate::store::StoredObject;

fn decide(owner: &StoredObject, selector: &LabelSelector, pod: &StoredObject) -> Claim {
    let owners = owner_refs(&pod.owner_references);
    claim(
        &Owner {
            namespace: &owner.namespace,
            uid: &owner.uid,
            selector,
            deleting: owner.deletion_timestamp.is_some(),
        },
        &Candidate {
            namespace: &pod.namespace,
            labels: &pod.labels,
            owners: &owners,
            deleting: pod.deletion_timestamp.is_some(),
        },
    )
}

impl Control {
    /// Adopts the orphans among `pods` that `owner`'s selector matches and releases its
    /// pods that it no longer matches; returns the pods it owns afterwards. Pods are read
    /// again before they are written, so an orphan two owners match goes to the first.
    pub(super) fn claim_pods(
        &mut self,
        owner: &StoredObject,
        selector: &LabelSelector,
        pods: &[Arc<StoredObject>],
    ) -> anyhow::Result<Vec<Arc<StoredObject>>> {
        let mut owned = Vec::new();
        for pod in pods {
            // What `claim` leaves alone in any case, without building its view: every Job
            // and DaemonSet looks at every pod on every pass.
            if pod.namespace != owner.namespace
                || !(owned_by(pod, &owner.uid) || selector_matches(selector, &pod.labels))
            {
                continue;
            }
            match decide(owner, selector, pod) {
                Claim::Owned => owned.push(pod.clone()),
                Claim::Leave => {}
                Claim::Adopt | Claim::Release => {
                    let Some(mut fresh) = self.store.get_by_uid(&pod.uid)? else {
                        continue;
                    };
                    match decide(owner, selector, &fresh) {
                        Claim::Owned => owned.push(Arc::new(fresh)),
                        Claim::Leave => {}
                        Claim::Adopt => {
                            let reference = controller_reference_to(&owner_of(owner))[0].clone();
                            fresh.owner_references = adopted(&fresh.owner_references, reference);
                            let stored = self.store.put(&fresh)?;
                            info!(pod = %stored.name, owner = %owner.name, kind = owner.kind.as_str(), "adopted an orphan pod");
                            owned.push(Arc::new(stored));
                        }
                        Claim::Release => {
                            fresh.owner_references = released(&fresh.owner_references, &owner.uid);
                            let stored = self.store.put(&fresh)?;
                            info!(pod = %stored.name, owner = %owner.name, kind = owner.kind.as_str(), "released a pod whose labels no longer match");
                        }
                    }
                }
            }
        }
        Ok(owned)
    }
}
