//! `metav1.Status` bodies: every error of the Kubernetes API, and the success of an
//! immediate delete.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::control::KubeError;

/// A failure's Status JSON without details: what every refusal of the API, its
/// authentication and its watches looks like.
pub fn failure_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// The Status JSON of a failure.
pub fn failure_json(error: &KubeError) -> Value {
    let mut status = failure_body(error.code, error.reason, &error.message);
    if let Some(details) = &error.details {
        let mut d = Map::new();
        if !details.name.is_empty() {
            d.insert("name".into(), json!(details.name));
        }
        if !details.group.is_empty() {
            d.insert("group".into(), json!(details.group));
        }
        if !details.kind.is_empty() {
            d.insert("kind".into(), json!(details.kind));
        }
        if !details.causes.is_empty() {
            let causes: Vec<Value> = details
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            d.insert("causes".into(), Value::Array(causes));
        }
        status["details"] = Value::Object(d);
    }
    status
}

/// The HTTP response of a failure.
pub fn failure(error: &KubeError) -> Response {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(failure_json(error))).into_response()
}

/// The Status JSON of a success (an object deleted at once).
pub fn success_json(details: Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::by_kind;

    #[test]
    fn conflict_and_invalid_are_shaped_as_kubernetes_shapes_them() {
        let jobs = by_kind("Job").unwrap();
        let conflict = failure_json(&KubeError::conflict(jobs, "x"));
        assert_eq!(conflict["reason"], "Conflict");
        assert_eq!(conflict["code"], 409);
        assert_eq!(conflict["details"]["kind"], "jobs");
        assert_eq!(conflict["details"]["group"], "batch");
        assert_eq!(
            conflict["message"],
            "Operation cannot be fulfilled on jobs.batch \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let invalid = failure_json(&KubeError::invalid_field(
            jobs,
            "x",
            "spec.completions",
            "-1: must be >= 0",
        ));
        assert_eq!(invalid["code"], 422);
        assert_eq!(
            invalid["message"],
            "Job.batch \"x\" is invalid: spec.completions: Invalid value: -1: must be >= 0"
        );
        assert_eq!(invalid["details"]["causes"][0]["field"], "spec.completions");
        assert_eq!(
            invalid["details"]["causes"][0]["reason"],
            "FieldValueInvalid"
        );
    }

    #[test]
    fn not_found_names_the_plural() {
        let pods = by_kind("Pod").unwrap();
        let e = failure_json(&KubeError::not_found(pods, "web"));
        assert_eq!(e["message"], "pods \"web\" not found");
        assert_eq!(e["status"], "Failure");
        assert_eq!(e["metadata"], json!({}));
        assert!(e["details"].get("group").is_none());
    }
}
