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
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        protobuf::review_spec(body).map(|spec| json!({"spec": spec}))
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

/// Just enough of Kubernetes' protobuf encoding to read a review's spec: the `k8s\0`
/// envelope (`runtime.Unknown`, its `raw` field) and the spec's string fields. Answers go
/// out as JSON, which kubectl also accepts.
mod protobuf {
    use serde_json::{json, Map, Value};

    const MAGIC: &[u8] = b"k8s\0";

    /// (field number, bytes) of every length-delimited field; other wire types are
    /// skipped. `None` on malformed input.
    fn fields(mut data: &[u8]) -> Option<Vec<(u64, &[u8])>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let key = varint(&mut data)?;
            match key & 7 {
                0 => {
                    varint(&mut data)?;
                }
                1 => data = data.get(8..)?,
                2 => {
                    let len = usize::try_from(varint(&mut data)?).ok()?;
                    let (value, rest) = (data.get(..len)?, data.get(len..)?);
                    out.push((key >> 3, value));
                    data = rest;
                }
                5 => data = data.get(4..)?,
                _ => return None,
            }
        }
        Some(out)
    }

    fn varint(data: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = data.split_first()?;
            *data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn field(data: &[u8], number: u64) -> Option<&[u8]> {
        fields(data)?
            .into_iter()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| v)
    }

    fn strings(data: &[u8], names: &[(u64, &str)]) -> Option<Value> {
        let mut out = Map::new();
        for (number, value) in fields(data)? {
            if let Some((_, name)) = names.iter().find(|(n, _)| *n == number) {
                out.insert(name.to_string(), json!(std::str::from_utf8(value).ok()?));
            }
        }
        Some(Value::Object(out))
    }

    /// The spec of an enveloped `SelfSubjectAccessReview`, as its JSON would read.
    pub fn review_spec(body: &[u8]) -> Option<Value> {
        let unknown = body.strip_prefix(MAGIC)?;
        let review = field(unknown, 2)?;
        let spec = field(review, 2)?;
        let mut out = Map::new();
        if let Some(r) = field(spec, 1) {
            let names = [
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ];
            out.insert("resourceAttributes".into(), strings(r, &names)?);
        }
        if let Some(n) = field(spec, 2) {
            out.insert(
                "nonResourceAttributes".into(),
                strings(n, &[(1, "path"), (2, "verb")])?,
            );
        }
        Some(Value::Object(out))
    }

    #[cfg(test)]
    pub fn encode(fields: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, value) in fields {
            out.push(((number << 3) | 2) as u8);
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        }
        out
    }
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
        use protobuf::encode;
        let attributes = encode(&[
            (1, b"default".to_vec()),
            (2, b"create".to_vec()),
            (5, b"pods".to_vec()),
        ]);
        let spec = encode(&[(1, attributes)]);
        let review = encode(&[(1, Vec::new()), (2, spec)]);
        let mut body = b"k8s\0".to_vec();
        body.extend(encode(&[(1, b"\n\x07ignored".to_vec()), (2, review)]));
        assert_eq!(
            protobuf::review_spec(&body),
            Some(
                json!({"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}})
            )
        );
        // Truncated, unenveloped or garbage input is refused, never a panic.
        for bad in [&body[..body.len() - 1], &body[4..], b"k8s\0\xff\xff", b""] {
            assert_eq!(protobuf::review_spec(bad), None);
        }
    }
}
