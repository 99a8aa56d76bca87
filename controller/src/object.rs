//! Kubernetes-shaped JSON for stored objects.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::store::{EventRecord, StoredEvent, StoredObject};

/// RFC 3339 with seconds, as Kubernetes prints timestamps.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An RFC 3339 timestamp (any offset), in UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The RFC 3339 timestamp a JSON value holds, if it holds one.
pub fn timestamp_of(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().and_then(parse_timestamp)
}

/// The object as the API returns it.
pub fn to_json(object: &StoredObject) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(object.name));
    if object.kind.namespaced() {
        metadata.insert("namespace".into(), json!(object.namespace));
    }
    metadata.insert("uid".into(), json!(object.uid));
    metadata.insert(
        "resourceVersion".into(),
        json!(object.resource_version.to_string()),
    );
    metadata.insert("generation".into(), json!(object.generation));
    metadata.insert(
        "creationTimestamp".into(),
        json!(timestamp(object.created_at)),
    );
    if let Some(deleted) = object.deletion_timestamp {
        metadata.insert("deletionTimestamp".into(), json!(timestamp(deleted)));
    }
    if !object.labels.is_empty() {
        metadata.insert("labels".into(), json!(object.labels));
    }
    if !object.annotations.is_empty() {
        metadata.insert("annotations".into(), json!(object.annotations));
    }
    if object
        .owner_references
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        metadata.insert("ownerReferences".into(), object.owner_references.clone());
    }
    if object
        .managed_fields
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        metadata.insert("managedFields".into(), object.managed_fields.clone());
    }
    let status = if object.status.is_null() {
        json!({})
    } else {
        object.status.clone()
    };
    json!({
        "apiVersion": object.kind.api_version(),
        "kind": object.kind.as_str(),
        "metadata": metadata,
        "spec": object.spec,
        "status": status,
    })
}

/// A list of objects.
pub fn list_json(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// An event as the API returns it.
pub fn event_json(event: &StoredEvent) -> Value {
    json!({
        "type": event.kind,
        "reason": event.reason,
        "message": event.message,
        "source": {"component": event.source},
        "count": event.count,
        "firstTimestamp": timestamp(event.first_seen),
        "lastTimestamp": timestamp(event.last_seen),
    })
}

/// A stable UID for something derived from `seed`.
pub fn derived_uid(seed: &str) -> String {
    let digest = drover_proto::keys::sha256(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    drover_proto::random::uid_from_bytes(bytes)
}

/// A `v1` Event about `object`. Cluster-scoped objects' events live in `default`, as in
/// Kubernetes.
pub fn event_object(record: &EventRecord, object: &StoredObject) -> Value {
    let namespace = if object.kind.namespaced() {
        object.namespace.as_str()
    } else {
        "default"
    };
    let mut involved = json!({
        "apiVersion": object.kind.api_version(),
        "kind": object.kind.as_str(),
        "name": object.name,
        "uid": object.uid,
    });
    if object.kind.namespaced() {
        involved["namespace"] = json!(object.namespace);
    }
    let e = &record.event;
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{:016x}", object.name, record.id),
            "namespace": namespace,
            "uid": derived_uid(&format!("event/{}/{}", record.object_uid, record.id)),
            "resourceVersion": record.resource_version.to_string(),
            "creationTimestamp": timestamp(e.first_seen),
        },
        "involvedObject": involved,
        "reason": e.reason,
        "message": e.message,
        "type": e.kind,
        "count": e.count,
        "firstTimestamp": timestamp(e.first_seen),
        "lastTimestamp": timestamp(e.last_seen),
        "source": {"component": e.source},
        "reportingComponent": e.source,
        "reportingInstance": "",
        "eventTime": null,
    })
}
