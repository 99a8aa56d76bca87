//! Bearer-token authentication and role-based authorization of every API request, as an
//! axum middleware wrapped around the whole router.
//!
//! A request's Kubernetes attributes (verb, API group, resource, subresource, namespace,
//! name) are read from its method, path and query alone, so the decision is made before any
//! handler runs and the same words appear in a 403 as kube-apiserver would use.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tracing::warn;

use crate::store::ApiTokenTable;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read-only: get, list and watch (pod logs included), except the API's own
    /// credentials and the nodes' join tokens.
    View,
}

impl Role {
    /// The role's name in the store and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::View => "view",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "view" => Ok(Role::View),
            other => Err(format!("unknown role {other:?} (expected admin or view)")),
        }
    }
}

/// Who made a request; handlers find it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A request as Kubernetes authorization sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'static str,
    /// What the path names; `None` for a non-resource path (`/metrics`, `/openapi/v2`).
    pub resource: Option<ResourceRef>,
    /// The path (for non-resource requests).
    pub path: String,
}

/// The resource a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    /// API group; `""` is the core group.
    pub group: String,
    /// Plural resource name (`pods`).
    pub resource: String,
    /// `log`, `status`, …
    pub subresource: Option<String>,
    /// Namespace, from the path or the `namespace` query parameter.
    pub namespace: Option<String>,
    /// The object's name, for requests about one object.
    pub name: Option<String>,
}

/// Paths anyone may read, as kube-apiserver's `system:public-info-viewer` allows.
fn is_public(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz", "/version"]
        .iter()
        .any(|p| {
            path == *p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Reads the Kubernetes attributes of a request.
pub fn attributes(method: &Method, path: &str, query: &str) -> Attributes {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => (group.to_string(), rest),
        _ => (String::new(), &[][..]),
    };
    let mut rest = rest.to_vec();
    let mut watch_path = false;
    if rest.first() == Some(&"watch") {
        watch_path = true;
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        namespace = Some(rest[1].to_string());
        rest.drain(..2);
    }
    let resource = rest.first().map(|resource| ResourceRef {
        group,
        resource: resource.to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        subresource: (rest.len() > 2).then(|| rest[2..].join("/")),
        namespace: namespace.or_else(|| query_param(query, "namespace").map(str::to_string)),
    });
    let named = resource.as_ref().is_some_and(|r| r.name.is_some());
    let watch = watch_path || matches!(query_param(query, "watch"), Some("true" | "1"));
    let verb = match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if named || resource.is_none() => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named || resource.is_none() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    };
    Attributes {
        verb,
        resource,
        path: path.to_string(),
    }
}

/// Resources that hold credentials: even a viewer may not list them.
const SECRET_RESOURCES: &[(&str, &str)] = &[
    ("drover.io", "kubeconfigs"),
    ("drover.io", "jointokens"),
    ("", "tokens"),
];

/// Questions about oneself, which every authenticated user may ask (kube-apiserver's
/// `system:basic-user`).
const SELF_REVIEWS: &[(&str, &str)] = &[
    ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
];

/// Whether `role` may do what `attributes` describe.
pub fn allowed(role: Role, attributes: &Attributes) -> bool {
    let self_review = attributes.verb == "create"
        && attributes.resource.as_ref().is_some_and(|r| {
            SELF_REVIEWS
                .iter()
                .any(|(group, resource)| r.group == *group && r.resource == *resource)
        });
    if self_review {
        return true;
    }
    match role {
        Role::Admin => true,
        Role::View => {
            let reads = matches!(attributes.verb, "get" | "list" | "watch");
            let secret = attributes.resource.as_ref().is_some_and(|r| {
                SECRET_RESOURCES
                    .iter()
                    .any(|(group, resource)| r.group == *group && r.resource == *resource)
            });
            reads && !secret
        }
    }
}

/// A Kubernetes `Status` failure.
pub fn status(
    code: StatusCode,
    reason: &str,
    message: &str,
    details: Option<serde_json::Value>,
) -> Response {
    let mut body = super::status::failure_body(code.as_u16(), reason, message);
    if let Some(details) = details {
        body["details"] = details;
    }
    (code, Json(body)).into_response()
}

/// kube-apiserver's wording of a refusal.
pub fn forbidden_message(user: &str, attributes: &Attributes) -> String {
    let verb = attributes.verb;
    match &attributes.resource {
        None => format!(
            "forbidden: User \"{user}\" cannot {verb} path \"{}\"",
            attributes.path
        ),
        Some(r) => {
            let subject = match &r.name {
                Some(name) => format!("{} \"{name}\"", r.resource),
                None => r.resource.clone(),
            };
            let resource = match &r.subresource {
                Some(sub) => format!("{}/{sub}", r.resource),
                None => r.resource.clone(),
            };
            let scope = match &r.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
                r.group
            )
        }
    }
}

fn forbidden(user: &str, attributes: &Attributes) -> Response {
    let details = attributes.resource.as_ref().map(|r| {
        let mut details = json!({"kind": r.resource});
        if let Some(name) = &r.name {
            details["name"] = json!(name);
        }
        if !r.group.is_empty() {
            details["group"] = json!(r.group);
        }
        details
    });
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &forbidden_message(user, attributes),
        details,
    )
}

/// What the middleware needs.
#[derive(Clone)]
pub struct AuthState {
    tokens: ApiTokenTable,
    refusals: std::sync::Arc<RefusalLog>,
}

impl AuthState {
    /// Authenticates against `tokens`.
    pub fn new(tokens: ApiTokenTable) -> AuthState {
        AuthState {
            tokens,
            refusals: Default::default(),
        }
    }
}

/// Refusals are counted and logged at most once per interval, so a client hammering
/// with a bad token cannot flood the log.
#[derive(Default)]
struct RefusalLog {
    state: Mutex<RefusalCounts>,
}

#[derive(Default)]
struct RefusalCounts {
    unauthorized: u64,
    forbidden: u64,
    last_logged: Option<Instant>,
}

const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl RefusalLog {
    fn record(&self, unauthorized: bool, what: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if unauthorized {
            state.unauthorized += 1;
        } else {
            state.forbidden += 1;
        }
        let due = state
            .last_logged
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL);
        if due {
            // The request line only: never a token.
            warn!(
                unauthorized = state.unauthorized,
                forbidden = state.forbidden,
                latest = what,
                "API requests refused (counts since the last report)"
            );
            state.unauthorized = 0;
            state.forbidden = 0;
            state.last_logged = Some(Instant::now());
        }
    }
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The middleware: public paths pass; everything else needs a known token whose role
/// allows the request.
pub async fn require(State(state): State<AuthState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if is_public(&path) {
        return next.run(request).await;
    }
    let token = bearer(&request).and_then(|t| state.tokens.authenticate(t));
    let identity = token.and_then(|t| {
        t.role
            .parse::<Role>()
            .ok()
            .map(|role| Identity { name: t.name, role })
    });
    let Some(identity) = identity else {
        state
            .refusals
            .record(true, &format!("{} {path}", request.method()));
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
            None,
        );
    };
    let query = request.uri().query().unwrap_or("");
    let attributes = attributes(request.method(), &path, query);
    if !allowed(identity.role, &attributes) {
        state.refusals.record(
            false,
            &format!("{} {} {path}", identity.name, request.method()),
        );
        return forbidden(&identity.name, &attributes);
    }
    request.extensions_mut().insert(identity);
    next.run(request).await
}

/// `router` with authentication in front of every route (and of its fallback).
pub fn protect(router: axum::Router, tokens: ApiTokenTable) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        AuthState::new(tokens),
        require,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, target: &str) -> Attributes {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        attributes(&method, path, query)
    }

    #[test]
    fn the_verb_comes_from_the_method_the_name_and_watch() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/default/pods", "list"),
            (Method::GET, "/api/v1/namespaces/default/pods/web", "get"),
            (Method::GET, "/api/v1/pods?watch=true", "watch"),
            (
                Method::GET,
                "/api/v1/watch/namespaces/default/pods",
                "watch",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/web/log",
                "get",
            ),
            (Method::POST, "/api/v1/namespaces/default/pods", "create"),
            (Method::PUT, "/api/v1/nodes/n1", "update"),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/x/daemonsets/d",
                "patch",
            ),
            (Method::DELETE, "/api/v1/nodes/n1", "delete"),
            (
                Method::DELETE,
                "/api/v1/namespaces/default/pods",
                "deletecollection",
            ),
            (Method::GET, "/metrics", "get"),
        ];
        for (method, path, verb) in cases {
            assert_eq!(attrs(method, path).verb, verb, "{path}");
        }
    }

    #[test]
    fn the_resource_group_namespace_and_subresource_are_read_from_the_path() {
        let a = attrs(Method::GET, "/api/v1/namespaces/prod/pods/web/log");
        assert_eq!(
            a.resource,
            Some(ResourceRef {
                group: String::new(),
                resource: "pods".into(),
                subresource: Some("log".into()),
                namespace: Some("prod".into()),
                name: Some("web".into()),
            })
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/prod");
        let r = a.resource.unwrap();
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref()),
            ("namespaces", Some("prod"))
        );
        let a = attrs(Method::GET, "/apis/batch/v1/jobs?namespace=ci");
        let r = a.resource.unwrap();
        assert_eq!(
            (r.group.as_str(), r.namespace.as_deref()),
            ("batch", Some("ci"))
        );
        assert_eq!(attrs(Method::GET, "/openapi/v2").resource, None);
    }

    #[test]
    fn admin_may_do_anything() {
        for (method, path) in [
            (Method::DELETE, "/api/v1/nodes/n1"),
            (Method::POST, "/apis/drover.io/v1/kubeconfigs"),
            (Method::GET, "/api/v1/tokens"),
        ] {
            assert!(allowed(Role::Admin, &attrs(method, path)), "{path}");
        }
    }

    #[test]
    fn view_only_reads_and_never_credentials() {
        let yes = [
            (Method::GET, "/api/v1/namespaces/default/pods"),
            (Method::GET, "/api/v1/pods/web/log"),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/web/log?follow=true",
            ),
            (Method::GET, "/api/v1/pods?watch=1"),
            (Method::GET, "/api"),
            (Method::GET, "/openapi/v2"),
            (Method::GET, "/metrics"),
            (
                Method::POST,
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            ),
            (
                Method::POST,
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            ),
        ];
        for (method, path) in yes {
            assert!(allowed(Role::View, &attrs(method, path)), "{path}");
        }
        let no = [
            (Method::POST, "/api/v1/apply"),
            (Method::POST, "/api/v1/namespaces/default/pods"),
            (Method::DELETE, "/api/v1/nodes/n1"),
            (Method::PATCH, "/api/v1/nodes/n1"),
            (Method::PUT, "/api/v1/nodes/n1"),
            (Method::POST, "/api/v1/nodes/n1/cordon"),
            (Method::GET, "/api/v1/tokens"),
            (Method::GET, "/apis/drover.io/v1/kubeconfigs"),
            (Method::POST, "/apis/drover.io/v1/kubeconfigs"),
            (
                Method::POST,
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            ),
            (Method::GET, "/apis/drover.io/v1/jointokens"),
            (Method::POST, "/apis/drover.io/v1/jointokens"),
            (Method::DELETE, "/apis/drover.io/v1/jointokens/abc"),
        ];
        for (method, path) in no {
            assert!(
                !allowed(Role::View, &attrs(method.clone(), path)),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn a_refusal_is_worded_as_kubernetes_words_it() {
        let a = attrs(Method::POST, "/api/v1/namespaces/default/pods");
        assert_eq!(
            forbidden_message("viewer", &a),
            "pods is forbidden: User \"viewer\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let a = attrs(Method::DELETE, "/api/v1/nodes/n1");
        assert_eq!(
            forbidden_message("viewer", &a),
            "nodes \"n1\" is forbidden: User \"viewer\" cannot delete resource \"nodes\" in API group \"\" at the cluster scope"
        );
        let a = attrs(
            Method::POST,
            "/apis/apps/v1/namespaces/x/daemonsets/d/restart",
        );
        assert!(forbidden_message("v", &a)
            .contains("cannot create resource \"daemonsets/restart\" in API group \"apps\""));
        let a = attrs(Method::POST, "/metrics");
        assert_eq!(
            forbidden_message("v", &a),
            "forbidden: User \"v\" cannot create path \"/metrics\""
        );
    }

    #[test]
    fn only_health_and_version_are_public() {
        for path in ["/healthz", "/livez", "/readyz", "/version", "/readyz/ping"] {
            assert!(is_public(path), "{path}");
        }
        for path in [
            "/metrics",
            "/api",
            "/apis",
            "/openapi/v2",
            "/healthzx",
            "/",
            "/versions",
        ] {
            assert!(!is_public(path), "{path}");
        }
    }
}
