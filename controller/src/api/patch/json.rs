//! JSON Patch (RFC 6902): a list of operations on JSON Pointer paths. The `json-patch`
//! crate does the work; this adds the API's error messages.

use serde_json::Value;

use super::PatchError;

/// Applies the RFC 6902 patch in `body` to `current`. A failed operation leaves nothing
/// half-applied: the caller only ever sees the whole result or an error.
pub fn apply(current: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: json_patch::Patch = serde_json::from_slice(body)
        .map_err(|e| PatchError::Invalid(format!("the JSON patch is malformed: {e}")))?;
    let mut doc = current.clone();
    json_patch::patch(&mut doc, &patch.0).map_err(|e| {
        let what = match e.kind {
            json_patch::PatchErrorKind::TestFailed => "the test failed".to_string(),
            json_patch::PatchErrorKind::InvalidPointer => "the path does not exist".to_string(),
            json_patch::PatchErrorKind::InvalidFromPointer => {
                "the \"from\" path does not exist".to_string()
            }
            other => other.to_string(),
        };
        PatchError::Invalid(format!(
            "the JSON patch does not apply: operation {} at {:?}: {what}",
            e.operation,
            e.path.as_str()
        ))
    })?;
    Ok(doc)
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
