//! Which Job pods leave a lost node: a node unreachable (or not ready) for longer than a
//! pod tolerates gives the pod up, so that it runs elsewhere (spec §5). No I/O.

use std::time::Duration;

use drover_proto::manifest::{PodReplacementPolicy, TaintEffect, Toleration, TolerationOperator};

use super::action::{Action, ObjectKey};

/// A node that is not Ready, with its unreachable or not-ready taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostNode {
    /// Node name.
    pub name: String,
    /// `node.kubernetes.io/unreachable` or `node.kubernetes.io/not-ready`.
    pub taint: &'static str,
    /// How long the taint has been on, on the monotonic clock.
    pub lost_for: Duration,
}

/// A pod, as eviction sees it.
#[derive(Debug, Clone, Copy)]
pub struct PodOnNode<'a> {
    /// Pod name, as the caller tells pods apart (`namespace/name`).
    pub name: &'a str,
    /// Its node.
    pub node: &'a str,
    /// Owned by a Job: only those are evicted (bare and DaemonSet pods stay).
    pub owned_by_job: bool,
    /// Being deleted already.
    pub deleting: bool,
    /// Succeeded or Failed.
    pub finished: bool,
    /// Its tolerations.
    pub tolerations: &'a [Toleration],
}

/// One eviction: the pod and the taint it did not tolerate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// Pod name.
    pub pod: String,
    /// The taint's key.
    pub taint: &'static str,
}

/// How long a pod stays on a node with the taint `key`: its own `NoExecute` toleration's
/// `tolerationSeconds` (none: for good), or the default.
pub fn toleration_for(
    tolerations: &[Toleration],
    key: &str,
    default: Duration,
) -> Option<Duration> {
    for t in tolerations {
        let key_matches = match t.operator.unwrap_or(TolerationOperator::Equal) {
            TolerationOperator::Exists => t.key.as_deref().is_none_or(|k| k.is_empty() || k == key),
            TolerationOperator::Equal => t.key.as_deref() == Some(key),
        };
        if key_matches && t.effect.is_none_or(|e| e == TaintEffect::NoExecute) {
            return t
                .toleration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64));
        }
    }
    Some(default)
}

/// The pods to evict. None while no node is Ready: when every node is lost at once, the
/// controller's own link is the likelier fault.
pub fn evictions(
    lost: &[LostNode],
    pods: &[PodOnNode],
    any_node_ready: bool,
    default_toleration: Duration,
) -> Vec<Eviction> {
    if !any_node_ready {
        return Vec::new();
    }
    pods.iter()
        .filter(|p| p.owned_by_job && !p.deleting && !p.finished)
        .filter_map(|pod| {
            let node = lost.iter().find(|n| n.name == pod.node)?;
            let tolerated = toleration_for(pod.tolerations, node.taint, default_toleration)?;
            (node.lost_for >= tolerated).then(|| Eviction {
                pod: pod.name.to_string(),
                taint: node.taint,
            })
        })
        .collect()
}

/// What evicting `pod` for `taint` asks of the store. Under `TerminatingOrFailed` (its Job's
/// `podReplacementPolicy`) it shows as failed at once and is replaced; under `Failed` it stays
/// terminating in its place until its node reports it stopped, so no second copy runs.
pub fn eviction_actions(pod: &ObjectKey, taint: &str, policy: PodReplacementPolicy) -> Vec<Action> {
    vec![
        Action::Evict {
            pod: pod.clone(),
            taint: taint.to_string(),
            failed_at_once: policy == PodReplacementPolicy::TerminatingOrFailed,
        },
        Action::normal(
            pod,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {}/{}", pod.namespace, pod.name),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::node_lifecycle::TAINT_UNREACHABLE;

    const DEFAULT: Duration = Duration::from_secs(300);

    fn unreachable_for(seconds: u64) -> Toleration {
        Toleration {
            key: Some(TAINT_UNREACHABLE.into()),
            operator: Some(TolerationOperator::Exists),
            value: None,
            effect: Some(TaintEffect::NoExecute),
            toleration_seconds: Some(seconds as i64),
        }
    }

    fn lost(name: &str, seconds: u64) -> LostNode {
        LostNode {
            name: name.into(),
            taint: TAINT_UNREACHABLE,
            lost_for: Duration::from_secs(seconds),
        }
    }

    fn job_pod<'a>(name: &'a str, node: &'a str, tolerations: &'a [Toleration]) -> PodOnNode<'a> {
        PodOnNode {
            name,
            node,
            owned_by_job: true,
            deleting: false,
            finished: false,
            tolerations,
        }
    }

    #[test]
    fn an_evicted_pod_fails_at_once_unless_its_job_waits_for_it_to_stop() {
        use drover_proto::manifest::Kind;
        let pod = ObjectKey::new(Kind::Pod, "batch", "work-0");
        let actions = eviction_actions(
            &pod,
            TAINT_UNREACHABLE,
            PodReplacementPolicy::TerminatingOrFailed,
        );
        assert_eq!(
            actions,
            vec![
                Action::Evict {
                    pod: pod.clone(),
                    taint: TAINT_UNREACHABLE.into(),
                    failed_at_once: true
                },
                Action::normal(
                    &pod,
                    "TaintManagerEviction",
                    "Marking for deletion Pod batch/work-0"
                ),
            ]
        );
        let held = eviction_actions(&pod, TAINT_UNREACHABLE, PodReplacementPolicy::Failed);
        assert!(matches!(
            held[0],
            Action::Evict {
                failed_at_once: false,
                ..
            }
        ));
    }

    #[test]
    fn tolerations_decide_how_long_a_pod_stays() {
        assert_eq!(
            toleration_for(&[], TAINT_UNREACHABLE, DEFAULT),
            Some(DEFAULT)
        );
        let mut five = unreachable_for(5);
        assert_eq!(
            toleration_for(std::slice::from_ref(&five), TAINT_UNREACHABLE, DEFAULT),
            Some(Duration::from_secs(5))
        );
        five.toleration_seconds = None;
        assert_eq!(
            toleration_for(&[five], TAINT_UNREACHABLE, DEFAULT),
            None,
            "tolerated forever"
        );
        let other_effect = Toleration {
            effect: Some(TaintEffect::NoSchedule),
            ..unreachable_for(5)
        };
        assert_eq!(
            toleration_for(&[other_effect], TAINT_UNREACHABLE, DEFAULT),
            Some(DEFAULT),
            "a NoSchedule toleration does not keep a pod through NoExecute"
        );
    }

    #[test]
    fn a_job_pod_leaves_once_its_node_has_been_lost_longer_than_it_tolerates() {
        let short = [unreachable_for(10)];
        let pods = [job_pod("a", "lost", &short), job_pod("b", "fine", &short)];
        assert!(evictions(&[lost("lost", 9)], &pods, true, DEFAULT).is_empty());
        assert_eq!(
            evictions(&[lost("lost", 10)], &pods, true, DEFAULT),
            vec![Eviction {
                pod: "a".into(),
                taint: TAINT_UNREACHABLE
            }]
        );
        // The default applies without a toleration of its own.
        let none = [job_pod("c", "lost", &[])];
        assert!(evictions(&[lost("lost", 299)], &none, true, DEFAULT).is_empty());
        assert_eq!(
            evictions(&[lost("lost", 300)], &none, true, DEFAULT).len(),
            1
        );
    }

    #[test]
    fn bare_finished_and_deleting_pods_stay_and_nothing_leaves_when_every_node_is_lost() {
        let base = job_pod("a", "lost", &[]);
        let stays = [
            PodOnNode {
                owned_by_job: false,
                ..base
            },
            PodOnNode {
                finished: true,
                ..base
            },
            PodOnNode {
                deleting: true,
                ..base
            },
        ];
        assert!(evictions(&[lost("lost", 1_000)], &stays, true, DEFAULT).is_empty());
        assert!(evictions(&[lost("lost", 1_000)], &[base], false, DEFAULT).is_empty());
        let forever = [Toleration {
            toleration_seconds: None,
            ..unreachable_for(0)
        }];
        let tolerant = [job_pod("t", "lost", &forever)];
        assert!(evictions(&[lost("lost", 1_000_000)], &tolerant, true, DEFAULT).is_empty());
    }
}
