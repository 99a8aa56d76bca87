//! Namespaces through the API: created (a record with labels), relabelled, and deleted
//! with everything in them. `default` always exists and cannot be deleted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use drover_proto::manifest::Kind;
use serde_json::Value;

use super::kube_error::{Cause, KubeError, KubeResult};
use super::{ApiRequest, Control};
use crate::api::resources::Resource;
use crate::store::StoredNamespace;

fn labels_of(
    body: &Value,
    resource: &Resource,
    name: &str,
) -> Result<BTreeMap<String, String>, KubeError> {
    let mut labels = BTreeMap::new();
    if let Some(map) = body["metadata"]["labels"].as_object() {
        for (key, value) in map {
            let value = value.as_str().unwrap_or_default();
            drover_proto::manifest::validate_label_key(key)
                .and_then(|_| drover_proto::manifest::validate_label_value(value))
                .map_err(|m| KubeError::invalid_field(resource, name, "metadata.labels", m))?;
            if key != "kubernetes.io/metadata.name" {
                labels.insert(key.clone(), value.to_string());
            }
        }
    }
    Ok(labels)
}

impl Control {
    fn namespace_json(&self, resource: &Resource, name: &str) -> KubeResult {
        self.view_objects(resource, None)?
            .into_iter()
            .find(|n| n["metadata"]["name"] == name)
            .ok_or_else(|| KubeError::not_found(resource, name))
    }

    /// POST `/api/v1/namespaces`.
    pub(super) fn create_namespace(
        &mut self,
        resource: &Resource,
        body: &Value,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> KubeResult {
        let name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !drover_proto::manifest::is_dns_label(&name) {
            return Err(KubeError::invalid(
                resource,
                &name,
                vec![Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"),
                    field: "metadata.name".into(),
                }],
            ));
        }
        if self.namespace_json(resource, &name).is_ok() {
            return Err(KubeError::already_exists(resource, &name));
        }
        let record = StoredNamespace {
            name: name.clone(),
            uid: drover_proto::random::new_uid()
                .map_err(|e| KubeError::new(500, "InternalError", e.to_string()))?,
            resource_version: 0,
            labels: labels_of(body, resource, &name)?,
            created_at: now,
        };
        if dry_run {
            return Ok(super::views::namespace_object(&name, Some(&record), None));
        }
        let stored = self.store.put_namespace(&record)?;
        Ok(super::views::namespace_object(&name, Some(&stored), None))
    }

    /// PUT of a namespace: only its labels change.
    pub(super) fn update_namespace(
        &mut self,
        resource: &Resource,
        name: &str,
        body: &Value,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> KubeResult {
        let current = self.namespace_json(resource, name)?;
        let sent_rv = body["metadata"]["resourceVersion"]
            .as_str()
            .filter(|v| !v.is_empty());
        if sent_rv.is_some_and(|rv| current["metadata"]["resourceVersion"] != rv) {
            return Err(KubeError::conflict(resource, name));
        }
        let existing = self
            .store
            .namespaces()?
            .into_iter()
            .find(|n| n.name == name);
        let record = StoredNamespace {
            name: name.to_string(),
            uid: current["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            resource_version: 0,
            labels: labels_of(body, resource, name)?,
            created_at: existing.map_or(now, |e| e.created_at),
        };
        if dry_run {
            return Ok(super::views::namespace_object(name, Some(&record), None));
        }
        let stored = self.store.put_namespace(&record)?;
        Ok(super::views::namespace_object(name, Some(&stored), None))
    }

    /// DELETE of a namespace: every object in it goes, as with `drover delete`.
    pub(super) fn delete_namespace(
        &mut self,
        resource: &Resource,
        name: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> KubeResult {
        let current = self.namespace_json(resource, name)?;
        if name == "default" {
            return Err(KubeError::new(
                403,
                "Forbidden",
                "namespaces \"default\" is forbidden: this namespace may not be deleted",
            ));
        }
        if dry_run {
            return Ok(current);
        }
        // Owners first: their dependents go with them.
        for kind in [Kind::CronJob, Kind::Job, Kind::DaemonSet, Kind::Pod] {
            for object in self.store.list(kind, Some(name))? {
                if self.store.get(kind, name, &object.name)?.is_none() {
                    continue;
                }
                self.handle_api(
                    ApiRequest::Delete {
                        kind,
                        namespace: name.to_string(),
                        name: object.name.clone(),
                    },
                    now,
                )?;
            }
        }
        self.store.delete_namespace(name)?;
        self.workloads_changed();
        Ok(crate::api::status::success_json(
            serde_json::json!({"name": name, "kind": "namespaces", "uid": current["metadata"]["uid"]}),
        ))
    }
}
