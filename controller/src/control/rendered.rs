//! Each object's API JSON, rendered once per resourceVersion.
//!
//! A list of 10,000 pods used to render every pod into a new JSON tree, send the trees
//! through a channel and serialize them again, on every request: 0.4 s and a peak of
//! hundreds of MiB. An object's rendering changes only when the object does (its
//! resourceVersion), so it is kept as text and a list copies text. Objects whose view holds
//! live data the store does not (a node's heartbeat) are not kept.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::store::StoredObject;

/// Rendered objects by UID, each with the resourceVersion it was rendered at.
#[derive(Debug, Default)]
pub(super) struct RenderCache {
    entries: RefCell<HashMap<String, (u64, Arc<str>)>>,
}

impl RenderCache {
    /// The object's rendering, from `render` when it is not kept for this version.
    pub(super) fn text(&self, object: &StoredObject, render: impl FnOnce() -> Value) -> Arc<str> {
        let mut entries = self.entries.borrow_mut();
        if let Some((version, text)) = entries.get(&object.uid) {
            if *version == object.resource_version {
                return Arc::clone(text);
            }
        }
        let text: Arc<str> = render().to_string().into();
        entries.insert(
            object.uid.clone(),
            (object.resource_version, Arc::clone(&text)),
        );
        text
    }

    /// How many renderings are kept.
    pub(super) fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Keeps only what `current` says is still the stored version of its object.
    pub(super) fn retain(&self, current: impl Fn(&str, u64) -> bool) {
        self.entries
            .borrow_mut()
            .retain(|uid, (version, _)| current(uid, *version));
    }
}

/// A list answer whose items are already rendered.
#[derive(Debug, Clone)]
pub struct RenderedList {
    /// `PodList`, `JobList`, …
    pub kind: String,
    /// The list's `apiVersion`.
    pub api_version: String,
    /// `metadata` (resourceVersion, continue, remainingItemCount).
    pub metadata: Value,
    /// Each item's JSON text.
    pub items: Vec<Arc<str>>,
}

impl RenderedList {
    /// The list as the body of a JSON response.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let size = self.items.iter().map(|i| i.len() + 1).sum::<usize>() + 256;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(b"{\"kind\":");
        out.extend_from_slice(Value::from(self.kind.as_str()).to_string().as_bytes());
        out.extend_from_slice(b",\"apiVersion\":");
        out.extend_from_slice(
            Value::from(self.api_version.as_str())
                .to_string()
                .as_bytes(),
        );
        out.extend_from_slice(b",\"metadata\":");
        out.extend_from_slice(self.metadata.to_string().as_bytes());
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item.as_bytes());
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The list as a JSON tree (for a Table, or a caller that edits the items).
    pub fn into_value(self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|text| serde_json::from_str(text).unwrap_or(Value::Null))
            .collect();
        serde_json::json!({
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": self.metadata,
            "items": items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::manifest::Kind;
    use serde_json::json;

    fn pod(uid: &str, version: u64) -> StoredObject {
        StoredObject {
            resource_version: version,
            ..StoredObject::new(Kind::Pod, "default", "p", uid, chrono::Utc::now())
        }
    }

    #[test]
    fn an_object_is_rendered_once_per_version() {
        let cache = RenderCache::default();
        let renders = std::cell::Cell::new(0);
        let render = || {
            renders.set(renders.get() + 1);
            json!({"n": renders.get()})
        };
        assert_eq!(&*cache.text(&pod("u1", 1), render), r#"{"n":1}"#);
        assert_eq!(&*cache.text(&pod("u1", 1), render), r#"{"n":1}"#);
        assert_eq!(renders.get(), 1, "the same version is not rendered again");
        assert_eq!(&*cache.text(&pod("u1", 2), render), r#"{"n":2}"#);
        assert_eq!(cache.len(), 1, "a newer version replaces the older");
        cache.text(&pod("u2", 1), render);
        cache.retain(|uid, _| uid == "u2");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_rendered_list_is_the_json_of_its_parts() {
        let list = RenderedList {
            kind: "PodList".into(),
            api_version: "v1".into(),
            metadata: json!({"resourceVersion": "7"}),
            items: vec![Arc::from(r#"{"a":1}"#), Arc::from(r#"{"b":"\"x\""}"#)],
        };
        let parsed: Value = serde_json::from_slice(&list.to_json_bytes()).unwrap();
        let expected = json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
            "items": [{"a": 1}, {"b": "\"x\""}],
        });
        assert_eq!(parsed, expected);
        assert_eq!(list.into_value(), expected);
        let empty = RenderedList {
            kind: "JobList".into(),
            api_version: "batch/v1".into(),
            metadata: json!({}),
            items: vec![],
        };
        let parsed: Value = serde_json::from_slice(&empty.to_json_bytes()).unwrap();
        assert_eq!(parsed["items"], json!([]));
    }
}
