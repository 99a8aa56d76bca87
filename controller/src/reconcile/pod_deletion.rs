//! How a pod is deleted: gracefully (it shows Terminating, leaves its node's desired state,
//! and goes once its node reports it stopped) or at once. No I/O.

/// The way a pod goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Marked Terminating; removed when its node reports the pod stopped.
    Graceful,
    /// Removed from the store now (its node, if it ever returns, stops it).
    Immediate,
}

/// The pod's node: none (never placed), Ready, or known but not Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Not bound to a node, or bound to one that no longer exists.
    None,
    /// Its node is Ready and will confirm the stop.
    Ready,
    /// Its node exists but cannot confirm the stop now.
    Unreachable,
}

/// How to delete a pod. A node that cannot confirm the stop would keep a graceful deletion
/// waiting, so the pod goes at once — unless it belongs to a Job whose
/// `podReplacementPolicy: Failed` must not replace it while it may still run: then it waits
/// for its node (or the node's deletion).
pub fn deletion(node: NodeState, held_until_stopped: bool) -> Deletion {
    match node {
        NodeState::Ready => Deletion::Graceful,
        NodeState::Unreachable if held_until_stopped => Deletion::Graceful,
        NodeState::Unreachable | NodeState::None => Deletion::Immediate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_waits_for_its_node_only_when_its_node_can_answer_or_its_job_must_wait() {
        assert_eq!(deletion(NodeState::Ready, false), Deletion::Graceful);
        assert_eq!(deletion(NodeState::Ready, true), Deletion::Graceful);
        assert_eq!(deletion(NodeState::Unreachable, false), Deletion::Immediate);
        assert_eq!(deletion(NodeState::Unreachable, true), Deletion::Graceful);
        assert_eq!(deletion(NodeState::None, true), Deletion::Immediate);
        assert_eq!(deletion(NodeState::None, false), Deletion::Immediate);
    }
}
