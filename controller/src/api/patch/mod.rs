//! PATCH bodies applied to an object's JSON: JSON Patch (RFC 6902), JSON Merge Patch
//! (RFC 7386), strategic merge patch (Kubernetes' merge keys for the fields Drover serves)
//! and server-side apply. Pure functions of (current object, patch) → new object.

use serde_json::Value;

mod json;
mod merge;
pub mod merge_keys;
mod strategic;

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
    /// Server-side apply: fields another manager owns would change (HTTP 409).
    Conflicts(Vec<String>),
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
    Ok(patched)
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
    let _ = (kind, current, applied, manager, force, now);
    Err(PatchError::Invalid(
        "server-side apply is not implemented yet".into(),
    ))
}
