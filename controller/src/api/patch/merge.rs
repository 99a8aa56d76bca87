//! JSON Merge Patch (RFC 7386): objects merge recursively, `null` deletes, everything else
//! (lists included) replaces.

use serde_json::Value;

use super::PatchError;

/// Applies the RFC 7386 patch in `body` to `current`.
pub fn apply(current: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::Invalid(format!("the merge patch is not valid JSON: {e}")))?;
    // A non-object patch would replace the whole object with, say, a number.
    if !patch.is_object() {
        return Err(PatchError::Invalid(
            "a merge patch must be a JSON object".into(),
        ));
    }
    let mut doc = current.clone();
    json_patch::merge(&mut doc, &patch);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_nulls_delete_lists_replace() {
        let current = json!({
            "metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "c", "image": "x"}, {"name": "d"}], "parallelism": 1}
        });
        let body = br#"{"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"containers": [{"name": "c", "image": "y"}]}}"#;
        let out = apply(&current, body).unwrap();
        assert_eq!(
            out,
            json!({
                "metadata": {"labels": {"b": "2", "c": "3"}},
                "spec": {"containers": [{"name": "c", "image": "y"}], "parallelism": 1}
            })
        );
    }

    #[test]
    fn non_objects_and_bad_json_are_invalid() {
        let current = json!({"a": 1});
        assert!(matches!(
            apply(&current, b"[1]"),
            Err(PatchError::Invalid(_))
        ));
        assert!(matches!(
            apply(&current, b"{\"a\":"),
            Err(PatchError::Invalid(_))
        ));
    }
}
