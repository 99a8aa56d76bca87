//! JSON Patch (RFC 6902): a list of operations on JSON Pointer paths. The `json-patch`
//! crate does the work; this adds the API's error messages.

use serde_json::Value;

use super::PatchError;

/// At most this many operations in one patch, as Kubernetes allows.
pub const MAX_OPERATIONS: usize = 10_000;

/// At most this many bytes copied by `copy` operations in one patch: each copy can double
/// the document, so a short patch could otherwise build an enormous one. Kubernetes bounds
/// the total the same way, by its request size limit.
pub const MAX_COPIED_BYTES: usize = 3 * 1024 * 1024;

/// Applies the RFC 6902 patch in `body` to `current`. A failed operation leaves nothing
/// half-applied: the caller only ever sees the whole result or an error.
pub fn apply(current: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: json_patch::Patch = serde_json::from_slice(body)
        .map_err(|e| PatchError::Invalid(format!("the JSON patch is malformed: {e}")))?;
    if patch.0.len() > MAX_OPERATIONS {
        return Err(PatchError::Invalid(format!(
            "the JSON patch has {} operations, more than the {MAX_OPERATIONS} allowed",
            patch.0.len()
        )));
    }
    let mut doc = current.clone();
    let mut copied = 0usize;
    for (index, operation) in patch.0.iter().enumerate() {
        if let json_patch::PatchOperation::Copy(copy) = operation {
            if let Some(source) = doc.pointer(copy.from.as_str()) {
                copied = copied.saturating_add(serialized_len(source));
                if copied > MAX_COPIED_BYTES {
                    return Err(PatchError::Invalid(format!(
                        "the JSON patch copies more than {MAX_COPIED_BYTES} bytes (operation {index})"
                    )));
                }
            }
        }
        // One operation at a time, on a copy of the object: an error discards it all.
        apply_one(&mut doc, index, operation)?;
    }
    Ok(doc)
}

fn serialized_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len())
}

fn apply_one(
    doc: &mut Value,
    index: usize,
    operation: &json_patch::PatchOperation,
) -> Result<(), PatchError> {
    json_patch::patch(doc, std::slice::from_ref(operation)).map_err(|e| {
        let what = match e.kind {
            json_patch::PatchErrorKind::TestFailed => "the test failed".to_string(),
            json_patch::PatchErrorKind::InvalidPointer => "the path does not exist".to_string(),
            json_patch::PatchErrorKind::InvalidFromPointer => {
                "the \"from\" path does not exist".to_string()
            }
            other => other.to_string(),
        };
        PatchError::Invalid(format!(
            "the JSON patch does not apply: operation {index} at {:?}: {what}",
            e.path.as_str()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    }

    #[test]
    fn operations_apply_in_order() {
        let body = br#"[
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "y"},
            {"op": "copy", "from": "/spec/containers/0/image", "path": "/metadata/labels/img"},
            {"op": "move", "from": "/metadata/labels/img", "path": "/metadata/labels/moved"},
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "d", "image": "z"}}
        ]"#;
        let out = apply(&pod(), body).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "moved": "y"}));
        assert_eq!(out["spec"]["containers"][0]["image"], "y");
        assert_eq!(out["spec"]["containers"][1]["name"], "d");
    }

    #[test]
    fn a_failed_test_is_invalid() {
        let body = br#"[{"op": "test", "path": "/metadata/labels/a", "value": "2"}]"#;
        let PatchError::Invalid(message) = apply(&pod(), body).unwrap_err() else {
            panic!("not invalid")
        };
        assert!(message.contains("test failed"), "{message}");
    }

    #[test]
    fn a_missing_path_is_invalid() {
        let body = br#"[{"op": "replace", "path": "/spec/nothing/here", "value": 1}]"#;
        let PatchError::Invalid(message) = apply(&pod(), body).unwrap_err() else {
            panic!("not invalid")
        };
        assert!(message.contains("/spec/nothing/here"), "{message}");
        let body = br#"[{"op": "remove", "path": "/metadata/labels/zz"}]"#;
        assert!(matches!(apply(&pod(), body), Err(PatchError::Invalid(_))));
    }

    #[test]
    fn errors_name_the_failing_operation() {
        let body = br#"[{"op": "add", "path": "/metadata/x", "value": 1}, {"op": "remove", "path": "/nope"}]"#;
        let PatchError::Invalid(message) = apply(&pod(), body).unwrap_err() else {
            panic!("not invalid")
        };
        assert!(message.contains("operation 1"), "{message}");
    }

    #[test]
    fn runaway_patches_are_refused() {
        let ops: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/metadata/name", "value": "p"}))
            .collect();
        let body = serde_json::to_vec(&ops).unwrap();
        assert!(matches!(apply(&pod(), &body), Err(PatchError::Invalid(_))));
        // Each copy doubles the document; 64 of them would need 2^64 copies of it.
        let ops: Vec<Value> = (0..64)
            .map(|_| json!({"op": "copy", "from": "/spec", "path": "/spec/containers/-"}))
            .collect();
        let body = serde_json::to_vec(&ops).unwrap();
        let PatchError::Invalid(message) = apply(&pod(), &body).unwrap_err() else {
            panic!("not invalid")
        };
        assert!(message.contains("copies more than"), "{message}");
    }

    #[test]
    fn malformed_bodies_are_invalid() {
        for body in [
            &b"{"[..],
            br#"{"op": "add"}"#,
            br#"[{"op": "frobnicate", "path": "/a"}]"#,
            br#"[{"op": "add", "path": "no-slash", "value": 1}]"#,
        ] {
            assert!(
                matches!(apply(&pod(), body), Err(PatchError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
