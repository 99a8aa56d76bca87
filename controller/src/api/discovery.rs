//! Discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`, in the
//! legacy shapes and as aggregated discovery (`apidiscovery.k8s.io/v2`), all generated from
//! [`resources::RESOURCES`] so that what is listed is exactly what is served.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::resources::{self, Resource, Subresource, GROUP_VERSIONS};

/// The Kubernetes minor version Drover claims: kubectl warns when the server is more than
/// one minor away from it, and Drover is tested with kubectl 1.32.
pub const KUBERNETES_MINOR: &str = "32";

/// The media type of aggregated discovery, as clients ask for it and as it must be answered.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The discovery routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/version", get(|| async { json_response(version()) }))
        .route("/api", get(core_versions))
        .route("/apis", get(groups))
        .route(
            "/api/v1",
            get(|| async { resource_list_response("", "v1") }),
        )
        .route("/apis/{group}", get(group))
        .route("/apis/{group}/{version}", get(group_version))
}

/// `/version`.
pub fn version() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    };
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0+drover-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": option_env!("DROVER_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": option_env!("DROVER_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "none (Drover is written in Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{arch}", std::env::consts::OS),
    })
}

/// `/api` (legacy): the core group's versions.
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

/// Named groups in discovery order, each once.
fn named_groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for (group, _) in GROUP_VERSIONS {
        if !group.is_empty() && !groups.contains(group) {
            groups.push(group);
        }
    }
    groups
}

fn group_version_entry(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// The legacy `APIGroup` of a named group, if served.
pub fn api_group(group: &str) -> Option<Value> {
    let versions: Vec<Value> = GROUP_VERSIONS
        .iter()
        .filter(|(g, _)| *g == group && !group.is_empty())
        .map(|(g, v)| group_version_entry(g, v))
        .collect();
    let preferred = versions.first()?.clone();
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": preferred,
    }))
}

/// `/apis` (legacy): every named group.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = named_groups()
        .into_iter()
        .filter_map(|g| {
            let mut group = api_group(g)?;
            if let Some(object) = group.as_object_mut() {
                object.remove("kind");
                object.remove("apiVersion");
            }
            Some(group)
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The group and version of a subresource's body when it is not its parent's.
fn subresource_group_version(sub: &Subresource) -> Option<(&'static str, &'static str)> {
    // Evictions are `policy/v1` objects posted to a core resource.
    (sub.kind == "Eviction").then_some(("policy", "v1"))
}

fn subresource_kind<'a>(resource: &'a Resource, sub: &'a Subresource) -> &'a str {
    if sub.kind.is_empty() {
        resource.kind
    } else {
        sub.kind
    }
}

/// One resource's entries of an `APIResourceList`: itself, then its subresources.
fn legacy_entries(r: &Resource) -> Vec<Value> {
    let mut entry = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    let mut entries = vec![entry];
    for sub in r.subresources {
        let mut entry = json!({
            "name": format!("{}/{}", r.plural, sub.name),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": subresource_kind(r, sub),
            "verbs": sub.verbs,
        });
        if let Some((group, version)) = subresource_group_version(sub) {
            entry["group"] = json!(group);
            entry["version"] = json!(version);
        }
        entries.push(entry);
    }
    entries
}

/// `/api/v1` or `/apis/{group}/{version}` (legacy), if served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let &(group, version) = GROUP_VERSIONS
        .iter()
        .find(|(g, v)| *g == group && *v == version)?;
    let resources: Vec<Value> = resources::in_group_version(group, version)
        .flat_map(legacy_entries)
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// One resource of aggregated discovery.
fn aggregated_resource(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|sub| {
            let (group, version) = subresource_group_version(sub).unwrap_or((r.group, r.version));
            json!({
                "subresource": sub.name,
                "responseKind": response_kind(group, version, subresource_kind(r, sub)),
                "verbs": sub.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": response_kind(r.group, r.version, r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

/// The aggregated discovery document of `/api` (`core`) or `/apis` (every named group).
pub fn aggregated(core: bool) -> Value {
    let groups: Vec<&str> = if core { vec![""] } else { named_groups() };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let versions: Vec<Value> = GROUP_VERSIONS
                .iter()
                .filter(|(g, _)| *g == group)
                .map(|&(g, v)| {
                    let resources: Vec<Value> = resources::in_group_version(g, v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// Whether the client asked for aggregated discovery. Clients list it before the legacy
/// `application/json` in one `Accept`, so its presence anywhere is the request.
fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let params: Vec<String> = media
                .split(';')
                .map(|p| p.trim().to_ascii_lowercase().replace(' ', ""))
                .collect();
            params.first().is_some_and(|t| t == "application/json")
                && params.iter().any(|p| p == "g=apidiscovery.k8s.io")
                && params.iter().any(|p| p == "v=v2")
                && params.iter().any(|p| p == "as=apigroupdiscoverylist")
        })
}

fn json_response(value: Value) -> Response {
    json_with_type(value, "application/json")
}

fn json_with_type(value: Value, content_type: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        value.to_string(),
    )
        .into_response()
}

/// A `metav1.Status` 404, as Kubernetes answers a path it does not serve.
pub fn not_found() -> Response {
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    });
    (StatusCode::NOT_FOUND, json_response(status)).into_response()
}

/// `/api` or `/apis`, in the shape `Accept` asks for; caches must key on `Accept` too.
fn negotiated(headers: &HeaderMap, core: bool) -> Response {
    let mut response = if wants_aggregated(headers) {
        json_with_type(aggregated(core), AGGREGATED)
    } else if core {
        json_response(api_versions())
    } else {
        json_response(api_group_list())
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

async fn core_versions(headers: HeaderMap) -> Response {
    negotiated(&headers, true)
}

async fn groups(headers: HeaderMap) -> Response {
    negotiated(&headers, false)
}

async fn group(Path(group): Path<String>) -> Response {
    api_group(&group).map_or_else(not_found, json_response)
}

fn resource_list_response(group: &str, version: &str) -> Response {
    api_resource_list(group, version).map_or_else(not_found, json_response)
}

async fn group_version(Path((group, version)): Path<(String, String)>) -> Response {
    resource_list_response(&group, &version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_list_exactly_the_table() {
        let mut listed = Vec::new();
        for (group, version) in GROUP_VERSIONS {
            let list = api_resource_list(group, version).expect("served group version");
            for entry in list["resources"].as_array().expect("resources") {
                let name = entry["name"].as_str().expect("name");
                if name.contains('/') {
                    continue;
                }
                let r = resources::find(group, version, name).expect("listed resource is served");
                assert_eq!(entry["kind"], r.kind);
                assert_eq!(entry["namespaced"], r.namespaced);
                assert_eq!(entry["singularName"], r.singular);
                assert_eq!(entry["verbs"], json!(r.verbs));
                listed.push(r);
            }
        }
        assert_eq!(listed.len(), resources::RESOURCES.len());
    }

    #[test]
    fn subresources_are_listed_under_their_resource() {
        let list = api_resource_list("", "v1").expect("core");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        for name in ["pods/log", "pods/status", "pods/eviction", "nodes/status"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let eviction = list["resources"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == "pods/eviction"))
            .expect("eviction");
        assert_eq!(eviction["group"], "policy");
        assert_eq!(eviction["kind"], "Eviction");
    }

    #[test]
    fn groups_are_only_those_served() {
        let list = api_group_list();
        let names: Vec<&str> = list["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(names, ["batch", "apps"]);
        assert_eq!(
            list["groups"][0]["preferredVersion"]["groupVersion"],
            "batch/v1"
        );
        assert!(api_group("").is_none());
        assert!(api_group("networking.k8s.io").is_none());
        assert!(api_resource_list("batch", "v2").is_none());
        assert!(api_resource_list("", "v2").is_none());
    }

    #[test]
    fn aggregated_discovery_matches_the_legacy_lists() {
        let mut count = 0;
        for core in [true, false] {
            for item in aggregated(core)["items"].as_array().expect("items") {
                let group = item["metadata"]["name"].as_str().expect("name");
                for v in item["versions"].as_array().expect("versions") {
                    let version = v["version"].as_str().expect("version");
                    for r in v["resources"].as_array().expect("resources") {
                        let plural = r["resource"].as_str().expect("resource");
                        let served = resources::find(group, version, plural).expect("served");
                        assert_eq!(r["responseKind"]["kind"], served.kind);
                        assert_eq!(r["singularResource"], served.singular);
                        count += 1;
                    }
                }
            }
        }
        assert_eq!(count, resources::RESOURCES.len());
    }

    #[test]
    fn aggregated_discovery_is_chosen_by_accept() {
        let mut headers = HeaderMap::new();
        assert!(!wants_aggregated(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
            ),
        );
        assert!(wants_aggregated(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*"),
        );
        assert!(!wants_aggregated(&headers));
    }

    #[test]
    fn version_claims_a_kubernetes_minor() {
        let v = version();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], KUBERNETES_MINOR);
        let git = v["gitVersion"].as_str().expect("gitVersion");
        assert!(git.starts_with("v1.32.0+drover-"), "{git}");
        assert!(v["platform"].as_str().is_some_and(|p| p.contains('/')));
    }
}
