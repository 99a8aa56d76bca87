//! `meta.k8s.io/v1` Table responses: the columns a Kubernetes API server shows for each
//! kind, so plain `kubectl get` prints what it prints against Kubernetes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::resources::Resource;

/// What each row carries in `object` (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (kubectl's default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

/// The Table of `items` (objects as the API shows them) of `resource`.
/// `list_metadata` is the list's `metadata` (resourceVersion, continue).
pub fn table(
    resource: &Resource,
    items: &[Value],
    now: DateTime<Utc>,
    include_object: IncludeObject,
    list_metadata: Value,
) -> Value {
    let _ = (resource, items, now, include_object, list_metadata);
    serde_json::json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [],
        "rows": [],
    })
}
