//! Garbage collection: what deleting an owner does to the objects it owns (Kubernetes'
//! `propagationPolicy`), and when a foreground deletion may finish. No I/O: the actions are
//! carried out by the executor.

use drover_proto::manifest::Kind;

use super::action::{Action, ObjectKey, Owner};

/// How dependents of a deleted object are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are deleted after the owner (Drover: at once, with the owner).
    #[default]
    Background,
    /// Dependents first: the owner shows `deletionTimestamp` until they are gone.
    Foreground,
    /// Dependents stay, without their owner reference.
    Orphan,
}

impl Propagation {
    /// The policy an API name stands for.
    pub fn from_name(name: &str) -> Option<Propagation> {
        match name {
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            "Orphan" => Some(Propagation::Orphan),
            _ => None,
        }
    }
}

/// An object that may depend on an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    /// Its key: a Pod, or a Job (a CronJob's).
    pub key: ObjectKey,
    /// The UIDs its owner references name.
    pub owners: Vec<String>,
}

impl Dependent {
    fn owned_by(&self, uid: &str) -> bool {
        self.owners.iter().any(|o| o == uid)
    }
}

/// What deleting `owner` does, in order, given the objects that may depend on it (others
/// are left alone). Under `Foreground` the owner itself stays, marked, until
/// [`foreground_finished`]; a pod owns nothing, so it is only removed.
pub fn cascade(owner: &Owner, propagation: Propagation, candidates: &[Dependent]) -> Vec<Action> {
    let remove = Action::Remove {
        object: owner.key.clone(),
        uid: owner.uid.clone(),
    };
    let owned = candidates.iter().filter(|d| d.owned_by(&owner.uid));
    match propagation {
        Propagation::Orphan => owned
            .map(|d| Action::Orphan {
                dependent: d.key.clone(),
                owner_uid: owner.uid.clone(),
            })
            .chain([remove])
            .collect(),
        Propagation::Background => [remove].into_iter().chain(owned.map(delete)).collect(),
        Propagation::Foreground => owned.map(delete).collect(),
    }
}

fn delete(dependent: &Dependent) -> Action {
    match dependent.key.kind {
        Kind::Pod => Action::DeletePod {
            pod: dependent.key.clone(),
            never_counted: false,
        },
        _ => Action::DeleteWithDependents(dependent.key.clone()),
    }
}

/// Whether an owner deleted in the foreground may go: nothing depends on it any more.
pub fn foreground_finished(owner_uid: &str, candidates: &[Dependent]) -> bool {
    !candidates.iter().any(|d| d.owned_by(owner_uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            key: ObjectKey::new(Kind::CronJob, "default", "nightly"),
            uid: "cj-uid".into(),
        }
    }

    fn dependent(kind: Kind, name: &str, owners: &[&str]) -> Dependent {
        Dependent {
            key: ObjectKey::new(kind, "default", name),
            owners: owners.iter().map(|o| o.to_string()).collect(),
        }
    }

    fn candidates() -> Vec<Dependent> {
        vec![
            dependent(Kind::Job, "nightly-1", &["cj-uid"]),
            dependent(Kind::Pod, "stray", &["cj-uid", "other"]),
            dependent(Kind::Pod, "unrelated", &["other"]),
            dependent(Kind::Pod, "bare", &[]),
        ]
    }

    #[test]
    fn background_removes_the_owner_first_then_deletes_what_it_owns() {
        let actions = cascade(&owner(), Propagation::Background, &candidates());
        assert_eq!(
            actions,
            vec![
                Action::Remove {
                    object: owner().key,
                    uid: "cj-uid".into()
                },
                Action::DeleteWithDependents(ObjectKey::new(Kind::Job, "default", "nightly-1")),
                Action::DeletePod {
                    pod: ObjectKey::new(Kind::Pod, "default", "stray"),
                    never_counted: false
                },
            ]
        );
    }

    #[test]
    fn foreground_deletes_what_it_owns_and_keeps_the_owner() {
        let actions = cascade(&owner(), Propagation::Foreground, &candidates());
        assert_eq!(actions.len(), 2);
        assert!(!actions.iter().any(|a| matches!(a, Action::Remove { .. })));
        assert!(!foreground_finished("cj-uid", &candidates()));
        let left = vec![dependent(Kind::Pod, "unrelated", &["other"])];
        assert!(foreground_finished("cj-uid", &left));
    }

    #[test]
    fn orphan_releases_every_dependent_and_then_removes_the_owner() {
        let actions = cascade(&owner(), Propagation::Orphan, &candidates());
        assert_eq!(
            actions,
            vec![
                Action::Orphan {
                    dependent: ObjectKey::new(Kind::Job, "default", "nightly-1"),
                    owner_uid: "cj-uid".into()
                },
                Action::Orphan {
                    dependent: ObjectKey::new(Kind::Pod, "default", "stray"),
                    owner_uid: "cj-uid".into()
                },
                Action::Remove {
                    object: owner().key,
                    uid: "cj-uid".into()
                },
            ]
        );
    }

    #[test]
    fn an_owner_with_nothing_to_collect_is_only_removed() {
        for propagation in [Propagation::Background, Propagation::Orphan] {
            assert_eq!(
                cascade(&owner(), propagation, &[]),
                vec![Action::Remove {
                    object: owner().key,
                    uid: "cj-uid".into()
                }]
            );
        }
        assert!(cascade(&owner(), Propagation::Foreground, &[]).is_empty());
    }

    #[test]
    fn policies_are_read_by_their_api_names() {
        assert_eq!(
            Propagation::from_name("Foreground"),
            Some(Propagation::Foreground)
        );
        assert_eq!(Propagation::from_name("foreground"), None);
        assert_eq!(Propagation::default(), Propagation::Background);
    }
}
