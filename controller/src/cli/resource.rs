//! From the names users type (`po`, `jobs`, `ds/web`) to the served resource and its
//! Kubernetes API paths.

use anyhow::bail;

use crate::api::resources::{Resource, RESOURCES};

/// The resource a user means by `name`: its plural, singular, kind or a short name, in any
/// case, as kubectl accepts them.
pub fn resolve(name: &str) -> anyhow::Result<&'static Resource> {
    let wanted = name.to_ascii_lowercase();
    RESOURCES
        .iter()
        .find(|r| {
            r.plural == wanted
                || r.singular == wanted
                || r.kind.eq_ignore_ascii_case(&wanted)
                || r.short_names.contains(&wanted.as_str())
        })
        .ok_or_else(|| anyhow::anyhow!("the server doesn't have a resource type \"{name}\""))
}

/// The resources of `pods,jobs` (or one), with a category such as `all` standing for its
/// members, each once, in the order typed.
pub fn resolve_many(names: &str) -> anyhow::Result<Vec<&'static Resource>> {
    let mut resources: Vec<&'static Resource> = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let members: Vec<&'static Resource> = RESOURCES
            .iter()
            .filter(|r| r.categories.contains(&name.to_ascii_lowercase().as_str()))
            .collect();
        let named = if members.is_empty() {
            vec![resolve(name)?]
        } else {
            members
        };
        for resource in named {
            if !resources.iter().any(|r| std::ptr::eq(*r, resource)) {
                resources.push(resource);
            }
        }
    }
    if resources.is_empty() {
        bail!("you must specify the type of resource to get");
    }
    Ok(resources)
}

/// The resource of a kind (`Job`), which every kind a manifest can hold has.
pub fn of_kind(kind: &str) -> anyhow::Result<&'static Resource> {
    match crate::api::resources::by_kind(kind) {
        Some(r) => Ok(r),
        None => bail!("the server doesn't serve kind \"{kind}\""),
    }
}

/// Splits `kind/name` or `kind name` forms.
pub fn with_name(
    resource: &str,
    name: Option<String>,
) -> anyhow::Result<(&'static Resource, Option<String>)> {
    match resource.split_once('/') {
        Some((k, n)) => {
            if name.is_some() {
                bail!("there is no need to give a name after {resource}");
            }
            Ok((resolve(k)?, Some(n.to_string())))
        }
        None => Ok((resolve(resource)?, name)),
    }
}

/// The collection path: `/api/v1/namespaces/{ns}/pods`, or across namespaces (`None`) and
/// for cluster-scoped resources `/api/v1/nodes`.
pub fn collection(resource: &Resource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if resource.namespaced => format!(
            "{}/namespaces/{ns}/{}",
            resource.group_version_path(),
            resource.plural
        ),
        _ => format!("{}/{}", resource.group_version_path(), resource.plural),
    }
}

/// One object's path.
pub fn object(resource: &Resource, namespace: &str, name: &str) -> String {
    format!("{}/{name}", collection(resource, Some(namespace)))
}

/// How kubectl names an object in what `apply` and `create` print: `pod/web`,
/// `job.batch/pi`, `daemonset.apps/web`.
pub fn short_ref(resource: &Resource, name: &str) -> String {
    format!("{}/{name}", super::print_table::kind_prefix(resource))
}

/// How kubectl names an object in what `delete` prints: `pod "web"`, `job.batch "pi"`.
pub fn quoted_ref(resource: &Resource, name: &str) -> String {
    format!("{} \"{name}\"", super::print_table::kind_prefix(resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_like_kubectl() {
        for (name, plural) in [
            ("po", "pods"),
            ("Pod", "pods"),
            ("jobs", "jobs"),
            ("cj", "cronjobs"),
            ("ds", "daemonsets"),
            ("no", "nodes"),
            ("ev", "events"),
        ] {
            assert_eq!(resolve(name).map(|r| r.plural).ok(), Some(plural), "{name}");
        }
        assert!(resolve("deployments")
            .unwrap_err()
            .to_string()
            .contains("doesn't have a resource type"));
    }

    #[test]
    fn paths_are_namespaced_only_for_namespaced_resources() {
        let jobs = resolve("jobs").unwrap();
        assert_eq!(
            object(jobs, "default", "pi"),
            "/apis/batch/v1/namespaces/default/jobs/pi"
        );
        assert_eq!(collection(jobs, None), "/apis/batch/v1/jobs");
        let nodes = resolve("nodes").unwrap();
        assert_eq!(object(nodes, "default", "n1"), "/api/v1/nodes/n1");
        assert_eq!(short_ref(jobs, "pi"), "job.batch/pi");
        assert_eq!(quoted_ref(resolve("po").unwrap(), "web"), "pod \"web\"");
    }

    #[test]
    fn several_kinds_and_categories_resolve_in_order_once_each() {
        let plurals = |names: &str| -> Vec<&str> {
            resolve_many(names)
                .unwrap()
                .iter()
                .map(|r| r.plural)
                .collect()
        };
        assert_eq!(plurals("po,jobs"), ["pods", "jobs"]);
        assert_eq!(plurals("jobs,pods,job"), ["jobs", "pods"]);
        let all = plurals("all");
        assert!(
            all.contains(&"pods") && all.contains(&"daemonsets"),
            "{all:?}"
        );
        assert!(!all.contains(&"nodes"));
        assert!(resolve_many("pods,widgets").is_err());
        assert!(resolve_many(",").is_err());
    }
}
