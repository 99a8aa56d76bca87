//! What a request asks for, read from its method, path and query the way the Kubernetes API
//! server reads it: the verb (`list` and `watch` are GETs of a collection), the resource, the
//! subresource, the namespace and the name. Authorization and metrics decide on this one
//! reading, so they never disagree about what a request is.

/// A request as the authorizer and the metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for
    /// a request that is not about a resource, the lower-case HTTP method.
    pub verb: &'static str,
    /// Whether the path names a resource (under `/api/v1` or `/apis/{group}/{version}`).
    pub is_resource: bool,
    /// API group (`""` for the core group).
    pub group: String,
    /// Plural resource name (`pods`); empty for other requests.
    pub resource: String,
    /// Subresource (`log`, `status`, `eviction`); empty if none.
    pub subresource: String,
    /// Namespace in the path, if any.
    pub namespace: Option<String>,
    /// Object name in the path, if any.
    pub name: Option<String>,
}

impl RequestInfo {
    /// `pods` or `pods/log`, as metrics label it.
    pub fn resource_label(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// Whether the request only reads.
    pub fn is_read_only(&self) -> bool {
        matches!(self.verb, "get" | "list" | "watch" | "head")
    }
}

fn http_verb(method: &str) -> &'static str {
    match method {
        "GET" => "get",
        "HEAD" => "head",
        "POST" => "post",
        "PUT" => "put",
        "PATCH" => "patch",
        "DELETE" => "delete",
        "OPTIONS" => "options",
        _ => "other",
    }
}

/// Whether the query asks for a watch (`watch=true` or `watch=1`).
fn wants_watch(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            key == "watch" && matches!(value, "true" | "1")
        })
    })
}

/// Reads a request. `path` is the URL path without the query.
pub fn parse(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
    let not_a_resource = RequestInfo {
        verb: http_verb(method),
        is_resource: false,
        group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: None,
        name: None,
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return not_a_resource,
    };
    let (namespace, rest) = match rest {
        // `/api/v1/namespaces/{ns}` is the namespace object itself.
        ["namespaces", ns, resource, rest @ ..] => (Some(ns.to_string()), {
            let mut v = vec![*resource];
            v.extend_from_slice(rest);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [resource] => (*resource, None, ""),
        [resource, name] => (*resource, Some(name.to_string()), ""),
        [resource, name, sub] => (*resource, Some(name.to_string()), *sub),
        _ => return not_a_resource,
    };
    if resource.is_empty() {
        return not_a_resource;
    }
    let verb = match (method, name.is_some()) {
        ("GET" | "HEAD", _) if wants_watch(query) => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => http_verb(method),
    };
    RequestInfo {
        verb,
        is_resource: true,
        group: group.to_string(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        namespace,
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(method: &str, path: &str, query: Option<&str>) -> (&'static str, String, String) {
        let info = parse(method, path, query);
        (info.verb, info.resource_label(), info.group)
    }

    #[test]
    fn collections_objects_and_subresources() {
        for (method, path, query, verb, resource, group) in [
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                None,
                "list",
                "pods",
                "",
            ),
            ("GET", "/api/v1/pods", None, "list", "pods", ""),
            (
                "GET",
                "/api/v1/pods",
                Some("watch=true"),
                "watch",
                "pods",
                "",
            ),
            (
                "GET",
                "/api/v1/pods",
                Some("limit=5&watch=1"),
                "watch",
                "pods",
                "",
            ),
            (
                "GET",
                "/api/v1/pods",
                Some("watch=false"),
                "list",
                "pods",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/x",
                None,
                "get",
                "pods",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/x/log",
                None,
                "get",
                "pods/log",
                "",
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods/x/eviction",
                None,
                "create",
                "pods/eviction",
                "",
            ),
            (
                "POST",
                "/apis/batch/v1/namespaces/ns/jobs",
                None,
                "create",
                "jobs",
                "batch",
            ),
            (
                "PUT",
                "/apis/apps/v1/namespaces/ns/daemonsets/d",
                None,
                "update",
                "daemonsets",
                "apps",
            ),
            ("PATCH", "/api/v1/nodes/n1", None, "patch", "nodes", ""),
            ("DELETE", "/api/v1/nodes/n1", None, "delete", "nodes", ""),
            (
                "DELETE",
                "/apis/batch/v1/namespaces/ns/jobs",
                None,
                "deletecollection",
                "jobs",
                "batch",
            ),
            (
                "GET",
                "/api/v1/namespaces/default",
                None,
                "get",
                "namespaces",
                "",
            ),
            ("GET", "/api/v1/namespaces", None, "list", "namespaces", ""),
        ] {
            assert_eq!(
                read(method, path, query),
                (verb, resource.to_string(), group.to_string()),
                "{method} {path} {query:?}"
            );
        }
    }

    #[test]
    fn namespaces_and_names_are_read() {
        let info = parse("GET", "/api/v1/namespaces/prod/pods/web-1/log", None);
        assert_eq!(info.namespace.as_deref(), Some("prod"));
        assert_eq!(info.name.as_deref(), Some("web-1"));
        let info = parse("GET", "/api/v1/namespaces/prod", None);
        assert_eq!(info.namespace, None);
        assert_eq!(info.name.as_deref(), Some("prod"));
    }

    #[test]
    fn other_paths_are_not_resources() {
        for path in [
            "/healthz",
            "/version",
            "/api",
            "/apis",
            "/api/v1",
            "/apis/batch/v1",
            "/openapi/v3/apis/batch/v1",
            "/metrics",
            "/api/v1/namespaces/a/pods/b/c/d",
        ] {
            let info = parse("GET", path, None);
            assert!(!info.is_resource, "{path}");
            assert_eq!(info.verb, "get");
        }
        assert!(parse("POST", "/apis/batch/v1", None).verb == "post");
    }
}
