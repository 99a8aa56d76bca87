//! The object kinds Drover stores and the names users call them by.

use std::fmt;
use std::str::FromStr;

/// An object kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `v1 Node` (cluster-scoped, created by agents).
    Node,
    /// `v1 Pod`.
    Pod,
    /// `batch/v1 Job`.
    Job,
    /// `batch/v1 CronJob`.
    CronJob,
    /// `apps/v1 DaemonSet`.
    DaemonSet,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Node,
        Kind::Pod,
        Kind::Job,
        Kind::CronJob,
        Kind::DaemonSet,
    ];

    /// The `kind` field value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::DaemonSet => "DaemonSet",
        }
    }

    /// The `apiVersion` this kind is served at.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Node | Kind::Pod => "v1",
            Kind::Job | Kind::CronJob => "batch/v1",
            Kind::DaemonSet => "apps/v1",
        }
    }

    /// The plural resource name used in API paths.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::Pod => "pods",
            Kind::Job => "jobs",
            Kind::CronJob => "cronjobs",
            Kind::DaemonSet => "daemonsets",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Node)
    }

    /// Resolves a user-facing name: kubectl's plural, singular and short names, or the kind.
    pub fn from_resource_name(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "nodes" | "node" | "no" => Kind::Node,
            "pods" | "pod" | "po" => Kind::Pod,
            "jobs" | "job" => Kind::Job,
            "cronjobs" | "cronjob" | "cj" => Kind::CronJob,
            "daemonsets" | "daemonset" | "ds" => Kind::DaemonSet,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::from_resource_name(s).ok_or_else(|| {
            format!(
                "unknown resource type \"{s}\" (known: nodes/no, pods/po, jobs, cronjobs/cj, daemonsets/ds)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_names_and_short_names_resolve() {
        for (name, kind) in [
            ("no", Kind::Node),
            ("nodes", Kind::Node),
            ("po", Kind::Pod),
            ("pod", Kind::Pod),
            ("job", Kind::Job),
            ("cj", Kind::CronJob),
            ("cronjobs", Kind::CronJob),
            ("ds", Kind::DaemonSet),
            ("DaemonSet", Kind::DaemonSet),
        ] {
            assert_eq!(Kind::from_resource_name(name), Some(kind), "{name}");
        }
        assert_eq!(Kind::from_resource_name("deployments"), None);
    }
}
