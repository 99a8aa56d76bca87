//! What the Kubernetes API serves: every resource with its group, version, scope, verbs,
//! short names and categories. Discovery, OpenAPI, routing and authorization all read this
//! one table, so a resource is listed exactly where it is served.

/// One served resource (a row of `kubectl api-resources`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Version within the group.
    pub version: &'static str,
    /// Plural name used in paths, e.g. `daemonsets`.
    pub plural: &'static str,
    /// Singular name, e.g. `daemonset`.
    pub singular: &'static str,
    /// Kind, e.g. `DaemonSet`.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Verbs, as discovery lists them.
    pub verbs: &'static [&'static str],
    /// Short names (`ds`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Subresources served under `{name}/`.
    pub subresources: &'static [Subresource],
}

/// A subresource such as `pods/log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// Path segment after the object's name.
    pub name: &'static str,
    /// Kind of the body it takes or returns.
    pub kind: &'static str,
    /// Verbs.
    pub verbs: &'static [&'static str],
}

/// Verbs of a resource users write.
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of a resource only controllers write.
const READ_ONLY: &[&str] = &["get", "list", "watch"];

const STATUS: Subresource = Subresource {
    name: "status",
    kind: "",
    verbs: &["get", "patch", "update"],
};

/// Every resource Drover serves.
pub const RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        verbs: READ_WRITE,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            Subresource {
                name: "log",
                kind: "Pod",
                verbs: &["get"],
            },
            Subresource {
                name: "eviction",
                kind: "Eviction",
                verbs: &["create"],
            },
            STATUS,
        ],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        verbs: READ_WRITE,
        short_names: &["no"],
        categories: &[],
        subresources: &[STATUS],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        short_names: &["ns"],
        categories: &[],
        subresources: &[],
    },
    Resource {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: READ_ONLY,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
    },
    Resource {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        verbs: READ_WRITE,
        short_names: &[],
        categories: &["all"],
        subresources: &[STATUS],
    },
    Resource {
        group: "batch",
        version: "v1",
        plural: "cronjobs",
        singular: "cronjob",
        kind: "CronJob",
        namespaced: true,
        verbs: READ_WRITE,
        short_names: &["cj"],
        categories: &["all"],
        subresources: &[STATUS],
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        verbs: READ_WRITE,
        short_names: &["ds"],
        categories: &["all"],
        subresources: &[STATUS],
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "controllerrevisions",
        singular: "controllerrevision",
        kind: "ControllerRevision",
        namespaced: true,
        verbs: READ_ONLY,
        short_names: &[],
        categories: &[],
        subresources: &[],
    },
];

/// Group versions served, in discovery order (`""` is the core group's `v1`).
pub const GROUP_VERSIONS: &[(&str, &str)] = &[("", "v1"), ("batch", "v1"), ("apps", "v1")];

impl Resource {
    /// `v1` or `batch/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The path prefix of the group version: `/api/v1` or `/apis/batch/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Whether `verb` is served.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The subresource named `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The `kind` of a list: `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

/// The resource served at `group`/`version`/`plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a kind (`Job`), whatever its group.
pub fn by_kind(kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

/// Resources of one group version.
pub fn in_group_version(
    group: &'static str,
    version: &'static str,
) -> impl Iterator<Item = &'static Resource> {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_in_a_served_group_version_and_unique() {
        for r in RESOURCES {
            assert!(
                GROUP_VERSIONS.contains(&(r.group, r.version)),
                "{}",
                r.plural
            );
            assert_eq!(
                find(r.group, r.version, r.plural),
                Some(r),
                "{} is listed twice",
                r.plural
            );
            assert_eq!(by_kind(r.kind), Some(r));
        }
    }

    #[test]
    fn short_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in RESOURCES {
            for name in r.short_names.iter().chain([&r.plural, &r.singular]) {
                assert!(seen.insert(*name), "{name} names two resources");
            }
        }
    }

    #[test]
    fn paths_are_kubernetes_paths() {
        assert_eq!(
            by_kind("Pod").map(|r| r.group_version_path()),
            Some("/api/v1".into())
        );
        assert_eq!(
            by_kind("Job").map(|r| r.group_version_path()),
            Some("/apis/batch/v1".into())
        );
        assert_eq!(
            by_kind("DaemonSet").map(|r| r.api_version()),
            Some("apps/v1".into())
        );
    }
}
