//! Resources the API shows but Drover does not store as objects: Events (from the events
//! table), ControllerRevisions (from the revisions table, shaped as Kubernetes shapes a
//! DaemonSet's) and Namespaces (every namespace objects live in, and `default`).

use std::collections::BTreeMap;

use drover_proto::manifest::Kind;
use serde_json::{json, Value};

use super::kube_error::KubeError;
use super::Control;
use crate::api::resources::Resource;
use crate::object::{derived_uid, event_object, timestamp};
use crate::store::{StoredNamespace, StoredObject};

/// A DaemonSet's revision as an `apps/v1` ControllerRevision.
pub(super) fn revision_object(
    ds: &StoredObject,
    revision: u64,
    hash: &str,
    template: &Value,
) -> Value {
    let mut labels: BTreeMap<String, Value> = ds.spec["selector"]["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    labels.insert("controller-revision-hash".into(), json!(hash));
    let mut template = template.clone();
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), json!("replace"));
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": format!("{}-{hash}", ds.name),
            "namespace": ds.namespace,
            "uid": derived_uid(&format!("revision/{}/{hash}", ds.uid)),
            "resourceVersion": ds.resource_version.to_string(),
            "creationTimestamp": timestamp(ds.created_at),
            "labels": labels,
            "annotations": ds.annotations.get("kubernetes.io/change-cause")
                .map(|c| json!({"kubernetes.io/change-cause": c}))
                .unwrap_or_else(|| json!({})),
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": ds.name,
                "uid": ds.uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "revision": revision,
        "data": {"spec": {"template": template}},
    })
}

/// A `v1` Namespace: from its record when it was created, else derived from its objects.
pub(super) fn namespace_object(
    name: &str,
    record: Option<&StoredNamespace>,
    created: Option<chrono::DateTime<chrono::Utc>>,
) -> Value {
    let mut labels: BTreeMap<String, String> = record.map(|r| r.labels.clone()).unwrap_or_default();
    labels.insert("kubernetes.io/metadata.name".into(), name.to_string());
    let mut metadata = json!({
        "name": name,
        "uid": record.map_or_else(|| derived_uid(&format!("namespace/{name}")), |r| r.uid.clone()),
        "resourceVersion": record.map_or(1, |r| r.resource_version).to_string(),
        "labels": labels,
    });
    if let Some(created) = record.map(|r| r.created_at).or(created) {
        metadata["creationTimestamp"] = json!(timestamp(created));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata,
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

impl Control {
    /// Every object of a view resource, in `namespace` (or all).
    pub(super) fn view_objects(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, KubeError> {
        let in_namespace = |ns: &str| namespace.is_none_or(|n| n == ns);
        match resource.kind {
            "Event" => {
                let mut events = Vec::new();
                for record in self.store.event_records()? {
                    let Some(object) = self.store.get_by_uid(&record.object_uid)? else {
                        continue;
                    };
                    let event = event_object(&record, &object);
                    if in_namespace(event["metadata"]["namespace"].as_str().unwrap_or_default()) {
                        events.push(event);
                    }
                }
                Ok(events)
            }
            "ControllerRevision" => {
                let mut revisions = Vec::new();
                for ds in self.store.list(Kind::DaemonSet, namespace)? {
                    for (revision, hash, template) in self.store.revisions(&ds.uid)? {
                        revisions.push(revision_object(&ds, revision, &hash, &template));
                    }
                }
                Ok(revisions)
            }
            "Namespace" => {
                let mut seen: BTreeMap<String, Option<chrono::DateTime<chrono::Utc>>> =
                    BTreeMap::from([("default".to_string(), None)]);
                for kind in Kind::ALL.into_iter().filter(|k| k.namespaced()) {
                    for object in self.store.list(kind, None)? {
                        let created = seen.entry(object.namespace.clone()).or_insert(None);
                        if created.is_none_or(|c| object.created_at < c) {
                            *created = Some(object.created_at);
                        }
                    }
                }
                let records = self.store.namespaces()?;
                for record in &records {
                    seen.entry(record.name.clone()).or_insert(None);
                }
                Ok(seen
                    .iter()
                    .map(|(name, created)| {
                        let record = records.iter().find(|r| r.name == *name);
                        namespace_object(name, record, *created)
                    })
                    .collect())
            }
            _ => Err(KubeError::no_such_resource()),
        }
    }
}
