//! Who am I and what may I do: `SelfSubjectReview` (`kubectl auth whoami`) and
//! `SelfSubjectAccessReview` (`kubectl auth can-i`), answered from the request's
//! [`Identity`] and the same role rules the auth layer applies.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde_json::{json, Value};

use super::auth::{allowed, status, Attributes, Identity, ResourceRef, Role};

/// `kubectl auth whoami`.
pub const WHOAMI: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
/// `kubectl auth can-i`.
pub const CAN_I: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// The routes (any authenticated user may ask about themselves).
pub fn router() -> Router {
    Router::new()
        .route(WHOAMI, post(whoami))
        .route(CAN_I, post(can_i))
}

/// The groups a role's users are in, as Kubernetes names such groups.
pub fn groups(role: Role) -> Vec<&'static str> {
    match role {
        Role::Admin => vec!["system:masters", "system:authenticated"],
        Role::View => vec!["drover:view", "system:authenticated"],
    }
}

async fn whoami(Extension(identity): Extension<Identity>) -> Response {
    Json(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": crate::object::timestamp(Utc::now())},
        "status": {"userInfo": {"username": identity.name, "groups": groups(identity.role)}},
    }))
    .into_response()
}

fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The attributes a review asks about.
pub fn review_attributes(spec: &Value) -> Option<Attributes> {
    if let Some(r) = spec.get("resourceAttributes") {
        let verb = text(r, "verb")?;
        let mut group = text(r, "group").unwrap_or_default();
        let mut resource = text(r, "resource").unwrap_or_else(|| "*".into());
        // kubectl sends `kubeconfigs.drover.io` as it is when discovery cannot resolve it.
        if group.is_empty() {
            if let Some((plural, rest)) = resource.split_once('.') {
                (group, resource) = (rest.to_string(), plural.to_string());
            }
        }
        return Some(Attributes {
            verb: static_verb(&verb),
            resource: Some(ResourceRef {
                group,
                resource,
                subresource: text(r, "subresource"),
                namespace: text(r, "namespace"),
                name: text(r, "name"),
            }),
            path: String::new(),
        });
    }
    let n = spec.get("nonResourceAttributes")?;
    Some(Attributes {
        verb: static_verb(&text(n, "verb")?),
        resource: None,
        path: text(n, "path").unwrap_or_default(),
    })
}

fn static_verb(verb: &str) -> &'static str {
    const VERBS: &[&str] = &[
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    VERBS
        .iter()
        .find(|v| **v == verb)
        .copied()
        // A verb the roles do not know is never a read.
        .unwrap_or("unknown")
}

/// The review in the body: JSON, or the protobuf kubectl sends for built-in types.
fn parse_review(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with(super::protobuf::MEDIA_TYPE) {
        super::protobuf::decode(body)
            .ok()
            .filter(|review| review["kind"] == "SelfSubjectAccessReview")
    } else {
        serde_json::from_slice(body).ok()
    }
}

async fn can_i(
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(mut review) = parse_review(&headers, &body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body is not a SelfSubjectAccessReview (JSON or protobuf)",
            None,
        );
    };
    let Some(attributes) = review_attributes(&review["spec"]) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "spec: exactly one of resourceAttributes or nonResourceAttributes, with a verb, is required",
            None,
        );
    };
    let yes = allowed(identity.role, &attributes);
    let mut answer = json!({"allowed": yes});
    if !yes {
        answer["reason"] = json!(
            "the view role may get, list and watch everything but credentials, and change nothing"
        );
    }
    review["status"] = answer;
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    (StatusCode::CREATED, Json(review)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_asks_about_a_resource_or_a_path() {
        let a = review_attributes(&json!({"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}})).unwrap();
        assert_eq!(a.verb, "create");
        assert!(!allowed(Role::View, &a));
        assert!(allowed(Role::Admin, &a));
        let a = review_attributes(
            &json!({"resourceAttributes": {"verb": "list", "resource": "nodes"}}),
        )
        .unwrap();
        assert!(allowed(Role::View, &a));
        let a = review_attributes(
            &json!({"nonResourceAttributes": {"verb": "get", "path": "/metrics"}}),
        )
        .unwrap();
        assert!(allowed(Role::View, &a));
        // A verb the roles do not know is never a read.
        let a = review_attributes(
            &json!({"resourceAttributes": {"verb": "escalate", "resource": "roles"}}),
        )
        .unwrap();
        assert!(!allowed(Role::View, &a));
        assert_eq!(review_attributes(&json!({})), None);
        assert_eq!(
            review_attributes(&json!({"resourceAttributes": {"resource": "pods"}})),
            None
        );
    }

    #[test]
    fn kubectls_protobuf_review_is_read() {
        // `kubectl auth can-i create pods`, as kubectl 1.32 sent it.
        let body: Vec<u8> = (0..CAN_I.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&CAN_I[i..i + 2], 16).unwrap())
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            super::super::protobuf::MEDIA_TYPE.parse().unwrap(),
        );
        let review = parse_review(&headers, &body).unwrap();
        assert_eq!(
            review["spec"],
            json!({"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}})
        );
        // Truncated or unenveloped input is refused, never a panic.
        for bad in [&body[..body.len() - 3], &body[4..], b"k8s\0\xff\xff", b""] {
            assert_eq!(parse_review(&headers, bad), None);
        }
    }

    const CAN_I: &str = "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374416363657373526576696577123f0a100a0012001a0022002a0032003800420012210a1f0a0764656661756c7412066372656174651a0022002a04706f647332003a001a08080012001a0020001a002200";
}
