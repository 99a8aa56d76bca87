//! PATCH bodies applied to an object's JSON: JSON Patch (RFC 6902), JSON Merge Patch
//! (RFC 7386), strategic merge patch (Kubernetes' merge keys for the fields Drover serves)
//! and server-side apply. Pure functions of (current object, patch) → new object.
//!
//! How the PATCH handler uses them:
//! - [`PatchType::from_content_type`] picks the type (`None`: 415 Unsupported Media Type).
//! - JSON, merge and strategic merge: [`apply`]`(kind, &current, type, body)`, then
//!   [`record_update`]`(Some(&current), &patched, manager, now)` so the fields the patch
//!   changed are owned by its manager (the `fieldManager` query parameter, else the
//!   User-Agent's program name, as Kubernetes does). Creates and updates call
//!   [`record_update`] too (`None` as `before` for a create).
//! - Apply: [`parse_apply_body`], then [`server_side_apply`] with `current: None` when the
//!   object does not exist (apply creates it), `force` from `?force=true`.
//!   [`PatchError::Conflicts`] is a 409 `metav1.Status` with reason `Conflict`, message
//!   [`conflicts_message`], and one `FieldManagerConflict` cause per entry
//!   ([`conflict_parts`] gives its message and field).
//! - [`PatchError::Invalid`] is a 422 (or 400 for a body that does not parse).
//!
//! These functions leave server fields as `current` has them where they can, but a JSON or
//! merge patch can rewrite anything: the handler still restores or rejects changes to
//! `metadata.uid`, `name`, `namespace`, `resourceVersion` (a precondition when set) and
//! `status` on the main resource, and validates the result as it validates an update.

use serde_json::Value;

mod apply;
mod conflicts;
pub mod fields;
mod json;
pub mod managed;
mod merge;
pub mod merge_keys;
mod strategic;
mod update;
pub mod upgrade;

pub use apply::BEFORE_FIRST_APPLY;
pub use conflicts::{conflict_parts, conflicts_message};
pub use managed::{field_manager, MAX_FIELD_MANAGER};

/// The patch types the API accepts, by request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        Some(match media {
            "application/json-patch+json" => PatchType::Json,
            "application/merge-patch+json" => PatchType::Merge,
            "application/strategic-merge-patch+json" => PatchType::StrategicMerge,
            "application/apply-patch+yaml" => PatchType::Apply,
            _ => return None,
        })
    }
}

/// A patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// The body is malformed or does not apply (HTTP 400/422).
    Invalid(String),
    /// Server-side apply: fields another manager owns would change (HTTP 409). Each entry
    /// reads `conflict with <manager>: <.field.path>`, where the manager is `"kubectl"` for
    /// an applier and `"kubectl-edit" using v1 at <time>` for an updater, as Kubernetes
    /// words them; see [`conflict_parts`] (a `metav1.Status` cause each) and
    /// [`conflicts_message`] (the Status message).
    Conflicts(Vec<String>),
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatchError::Invalid(message) => f.write_str(message),
            PatchError::Conflicts(conflicts) => f.write_str(&conflicts_message(conflicts)),
        }
    }
}

impl std::error::Error for PatchError {}

/// Parses a server-side apply body: JSON, or a single YAML document.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, PatchError> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return applied_object(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| PatchError::Invalid("the applied configuration is not UTF-8".into()))?;
    let documents = drover_proto::manifest::yaml::load_documents(text).map_err(|e| {
        PatchError::Invalid(format!(
            "the applied configuration is not valid YAML at {}: {}",
            e.position, e.message
        ))
    })?;
    let mut documents = documents.into_iter().filter(|d| !d.value.is_null());
    match (documents.next(), documents.next()) {
        (Some(document), None) => applied_object(document.value),
        (None, _) => Err(PatchError::Invalid(
            "the applied configuration is empty".into(),
        )),
        (Some(_), Some(_)) => Err(PatchError::Invalid(
            "the applied configuration must be a single document".into(),
        )),
    }
}

fn applied_object(value: Value) -> Result<Value, PatchError> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(PatchError::Invalid(
            "the applied configuration must be an object".into(),
        ))
    }
}

/// Applies a JSON, merge or strategic merge patch to `current` (the object as the API
/// shows it). `kind` selects the strategic merge keys (`Pod`, `Job`, …).
pub fn apply(
    kind: &str,
    current: &Value,
    patch_type: PatchType,
    body: &[u8],
) -> Result<Value, PatchError> {
    let patched = match patch_type {
        PatchType::Json => json::apply(current, body)?,
        PatchType::Merge => merge::apply(current, body)?,
        PatchType::StrategicMerge => strategic::apply(kind, current, body)?,
        PatchType::Apply => {
            return Err(PatchError::Invalid(
                "server-side apply needs a field manager: use server_side_apply".into(),
            ))
        }
    };
    // Every patch type can turn the object into something else entirely (`[{"op":
    // "replace", "path": "", "value": 1}]`); the handler only ever stores objects.
    if !patched.is_object() {
        return Err(PatchError::Invalid(
            "the patched object is not a JSON object".into(),
        ));
    }
    // Patches can nest deeper each time (a JSON patch adds a whole nested value under any
    // existing path); everything that later walks the object recursively relies on this
    // bound, the same one manifests get.
    if depth(&patched) > MAX_DEPTH {
        return Err(PatchError::Invalid(format!(
            "the patched object nests deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(patched)
}

/// How deeply objects may nest, patched or applied.
pub const MAX_DEPTH: usize = drover_proto::manifest::yaml::MAX_DEPTH;

/// The nesting depth of `value` (a scalar is 0), without recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        deepest = deepest.max(level);
        match value {
            Value::Object(map) => stack.extend(map.values().map(|v| (v, level + 1))),
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    deepest
}

/// Server-side apply of `applied` (the manifest as JSON) to `current` (`None`: it does not
/// exist yet) for field manager `manager`, maintaining `metadata.managedFields`. `now` is
/// the RFC 3339 time recorded in the manager's entry.
pub fn server_side_apply(
    kind: &str,
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, PatchError> {
    if depth(applied) > MAX_DEPTH {
        return Err(PatchError::Invalid(format!(
            "the applied configuration nests deeper than {MAX_DEPTH} levels"
        )));
    }
    apply::server_side_apply(kind, current, applied, manager, force, now)
}

/// Records in `after`'s `managedFields` the fields a create (`before` is `None`), update or
/// non-apply patch by `manager` changed: they become owned by `manager`'s `Update` entry and
/// no one else's, and fields that are gone are owned by no one. Returns `after` with its
/// `managedFields` (those of `before`, updated) set; `kind` is read from `after`.
pub fn record_update(before: Option<&Value>, after: &Value, manager: &str, now: &str) -> Value {
    update::record_update(before, after, manager, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn apply_dispatches_by_type() {
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        let body = br#"{"spec": {"containers": [{"name": "a", "image": "y"}]}}"#;
        let strategic = apply("Pod", &pod, PatchType::StrategicMerge, body).unwrap();
        assert_eq!(strategic["spec"]["containers"][1]["name"], "b");
        let merge = apply("Pod", &pod, PatchType::Merge, body).unwrap();
        assert_eq!(
            merge["spec"]["containers"],
            json!([{"name": "a", "image": "y"}])
        );
        let json = apply(
            "Pod",
            &pod,
            PatchType::Json,
            br#"[{"op": "remove", "path": "/spec/containers/1"}]"#,
        )
        .unwrap();
        assert_eq!(
            json["spec"]["containers"],
            json!([{"name": "a", "image": "x"}])
        );
        assert!(matches!(
            apply("Pod", &pod, PatchType::Apply, body),
            Err(PatchError::Invalid(_))
        ));
        // No patch type may turn the object into a non-object.
        assert!(matches!(
            apply(
                "Pod",
                &pod,
                PatchType::Json,
                br#"[{"op": "replace", "path": "", "value": 1}]"#
            ),
            Err(PatchError::Invalid(_))
        ));
    }

    #[test]
    fn deep_results_are_refused() {
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH {
            deep = json!({"a": deep});
        }
        assert_eq!(depth(&deep), MAX_DEPTH);
        let current = json!({"metadata": {"name": "p"}});
        let body =
            serde_json::to_vec(&json!([{"op": "add", "path": "/x", "value": deep}])).unwrap();
        assert!(matches!(
            apply("Pod", &current, PatchType::Json, &body),
            Err(PatchError::Invalid(_))
        ));
        let ok =
            serde_json::to_vec(&json!([{"op": "add", "path": "/x", "value": deep["a"]}])).unwrap();
        assert!(apply("Pod", &current, PatchType::Json, &ok).is_ok());
        assert!(matches!(
            server_side_apply("Pod", None, &json!({"x": deep}), "m", false, "t"),
            Err(PatchError::Invalid(_))
        ));
    }

    #[test]
    fn apply_bodies_are_json_or_one_yaml_document() {
        let json = parse_apply_body(br#"{"apiVersion": "v1", "kind": "Pod"}"#).unwrap();
        assert_eq!(json, json!({"apiVersion": "v1", "kind": "Pod"}));
        let yaml = parse_apply_body(
            b"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  parallelism: 2\n",
        )
        .unwrap();
        assert_eq!(
            yaml,
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"parallelism": 2}})
        );
        for bad in [
            &b"a: [1"[..],
            b"a: 1\n---\nb: 2\n",
            b"",
            b"- 1\n- 2\n",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(parse_apply_body(bad), Err(PatchError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn field_managers() {
        assert_eq!(
            field_manager(Some("kubectl"), Some("curl/8")).unwrap(),
            "kubectl"
        );
        assert_eq!(
            field_manager(
                None,
                Some("kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9")
            )
            .unwrap(),
            "kubectl"
        );
        assert_eq!(field_manager(None, None).unwrap(), "");
        assert_eq!(
            field_manager(None, Some(&"x".repeat(300))).unwrap().len(),
            MAX_FIELD_MANAGER
        );
        assert!(field_manager(Some(&"x".repeat(129)), None).is_err());
        assert!(field_manager(Some("a\nb"), None).is_err());
    }

    #[test]
    fn conflict_messages_read_like_kubernetes() {
        let one = vec!["conflict with \"kubectl\": .spec.parallelism".to_string()];
        assert_eq!(
            conflicts_message(&one),
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.parallelism"
        );
        let three = vec![
            "conflict with \"b\" using v1 at 2026-12-01T15:00:00Z: .spec.x".to_string(),
            "conflict with \"a\": .spec.y".to_string(),
            "conflict with \"b\" using v1 at 2026-12-01T15:00:00Z: .spec.z".to_string(),
        ];
        assert_eq!(
            conflicts_message(&three),
            "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.y\n\
             conflicts with \"b\" using v1 at 2026-12-01T15:00:00Z:\n- .spec.x\n- .spec.z"
        );
        assert_eq!(
            conflict_parts(&three[0]),
            (
                "conflict with \"b\" using v1 at 2026-12-01T15:00:00Z",
                ".spec.x"
            )
        );
        assert_eq!(conflict_parts("no colon"), ("no colon", ""));
        assert_eq!(
            conflict_parts(r#"conflict with "odd: \"name\"": .metadata.labels[a: b]"#),
            (r#"conflict with "odd: \"name\"""#, ".metadata.labels[a: b]")
        );
    }
}
