//! Whether this node can enforce `resources.limits` for process pods.
//!
//! Enforcement needs a cgroup v2 hierarchy with the `memory` and `cpu` controllers delegated
//! to the agent. The agent does not yet place process pods in cgroups of their own, so it
//! reports limits as not enforced, in the pod's status message and as a warning event,
//! rather than silently ignoring them.

use std::path::Path;

/// What the node offers for resource limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSupport {
    /// Whether limits are applied.
    pub enforced: bool,
    /// Why not, for users.
    pub reason: String,
}

/// Inspects the cgroup mount below `root` (`/` on a real node).
pub fn detect(root: &Path) -> LimitSupport {
    let controllers =
        std::fs::read_to_string(root.join("sys/fs/cgroup/cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    let reason = if controllers.is_empty() {
        "this node has no cgroup v2 unified hierarchy (cgroup v1 or hybrid)".to_string()
    } else if !(has("memory") && has("cpu")) {
        "the cgroup v2 memory and cpu controllers are not available".to_string()
    } else {
        "the agent does not yet place process pods in cgroups".to_string()
    };
    LimitSupport {
        enforced: false,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_and_v2_nodes_are_told_apart() {
        let root = tempfile::tempdir().unwrap();
        assert!(detect(root.path()).reason.contains("no cgroup v2"));
        std::fs::create_dir_all(root.path().join("sys/fs/cgroup")).unwrap();
        std::fs::write(
            root.path().join("sys/fs/cgroup/cgroup.controllers"),
            "cpuset io pids\n",
        )
        .unwrap();
        assert!(detect(root.path()).reason.contains("not available"));
    }
}
