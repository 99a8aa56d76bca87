//! API requests, answered from the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use drover_proto::manifest::{
    parse_manifests, validate_label_key, validate_label_value, Kind, Manifest,
};
use serde_json::{json, Value};

use super::Control;
use crate::object::{timestamp, to_json};
use crate::reconcile::garbage_collection::Propagation;
use crate::store::StoredObject;

/// A request from the HTTP API.
#[derive(Debug)]
pub enum ApiRequest {
    /// Create or update every object in the files; all or nothing.
    Apply {
        /// (file name, content) pairs.
        files: Vec<(String, String)>,
    },
    /// One object.
    Get {
        /// Kind.
        kind: Kind,
        /// Namespace (namespaced kinds).
        namespace: String,
        /// Name.
        name: String,
    },
    /// Delete an object.
    Delete {
        /// Kind.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Change a node's labels.
    LabelNode {
        /// Node.
        name: String,
        /// Labels to set.
        set: BTreeMap<String, String>,
        /// Labels to remove.
        remove: Vec<String>,
        /// Allow changing an existing label's value.
        overwrite: bool,
    },
    /// Cordon or uncordon a node.
    SetUnschedulable {
        /// Node.
        name: String,
        /// New value.
        unschedulable: bool,
    },
    /// Create a join token.
    CreateToken {
        /// Lifetime; `None` never expires.
        ttl: Option<std::time::Duration>,
        /// Enrollments allowed; `None` is unlimited.
        uses: Option<u32>,
        /// Labels for the nodes it enrolls.
        labels: Vec<(String, String)>,
    },
    /// Every join token (without secrets).
    ListTokens,
    /// Delete a join token.
    DeleteToken {
        /// Its id.
        id: String,
    },
    /// Store a new API token (409 if its name is taken).
    CreateApiToken {
        /// The token, hashed.
        token: crate::store::StoredApiToken,
    },
    /// Delete an API token by name.
    DeleteApiToken {
        /// Its name.
        name: String,
    },
}

/// An API failure with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// One line (or several, for manifest errors) for the user.
    pub message: String,
}

impl ApiError {
    fn not_found(kind: Kind, namespace: &str, name: &str) -> ApiError {
        let what = kind.plural();
        let message = if kind.namespaced() {
            format!("{what} \"{name}\" not found in namespace \"{namespace}\"")
        } else {
            format!("{what} \"{name}\" not found")
        };
        ApiError {
            status: 404,
            message,
        }
    }

    pub(super) fn not_found_message(message: String) -> ApiError {
        ApiError {
            status: 404,
            message,
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 409,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError {
            status: 500,
            message: format!("{e:#}"),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError {
            status: 500,
            message: e.to_string(),
        }
    }
}

/// The answer to an API request.
pub type ApiResult = Result<Value, ApiError>;

fn scope(kind: Kind, namespace: &str) -> &str {
    if kind.namespaced() {
        namespace
    } else {
        ""
    }
}

impl Control {
    pub(super) fn handle_api(&mut self, request: ApiRequest, now: DateTime<Utc>) -> ApiResult {
        match request {
            ApiRequest::Apply { files } => self.apply(files, now),
            ApiRequest::CreateToken { ttl, uses, labels } => {
                self.create_token(ttl, uses, labels, now)
            }
            ApiRequest::ListTokens => self.list_tokens(),
            ApiRequest::DeleteToken { id } => self.delete_token(&id),
            ApiRequest::CreateApiToken { token } => self.create_api_token(&token),
            ApiRequest::DeleteApiToken { name } => self.delete_api_token(&name),
            ApiRequest::Delete {
                kind: Kind::Node,
                name,
                ..
            } if self.store.get(Kind::Node, "", &name)?.is_none()
                && self.store.credential(&name)?.is_some() =>
            {
                // Enrolled, never registered: only its credentials go.
                self.forget_node(&name)?;
                Ok(json!({"kind": "Node", "metadata": {"name": name}}))
            }
            ApiRequest::Get {
                kind,
                namespace,
                name,
            } => {
                let object = self.find(kind, &namespace, &name)?;
                Ok(self.render(&object))
            }
            ApiRequest::Delete {
                kind,
                namespace,
                name,
            } => {
                let object = self.find(kind, &namespace, &name)?;
                let deleted = match kind {
                    Kind::Pod => {
                        let deleted = self.delete_pod(object, now)?;
                        // Its Job counts it, and replaces it, from now on.
                        self.workloads_changed();
                        deleted
                    }
                    Kind::Node => {
                        self.store.delete(kind, "", &name)?;
                        self.delete_pods_of_node(&name, now)?;
                        self.forget_node(&name)?;
                        self.workloads_changed();
                        object
                    }
                    _ => {
                        self.delete_with_dependents(&object, Propagation::Background, now)?;
                        self.workloads_changed();
                        object
                    }
                };
                Ok(self.render(&deleted))
            }
            ApiRequest::LabelNode {
                name,
                set,
                remove,
                overwrite,
            } => {
                let answer = self.label_node(&name, set, remove, overwrite)?;
                // Pending pods may fit the node now: the scheduling pass of settle looks.
                self.workloads_changed();
                Ok(answer)
            }
            ApiRequest::SetUnschedulable {
                name,
                unschedulable,
            } => {
                let mut node = self.find(Kind::Node, "", &name)?;
                let current = node
                    .spec
                    .get("unschedulable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if current == unschedulable {
                    return Ok(json!({"changed": false}));
                }
                if let Some(spec) = node.spec.as_object_mut() {
                    if unschedulable {
                        spec.insert("unschedulable".into(), json!(true));
                    } else {
                        spec.remove("unschedulable");
                    }
                }
                let stored = self.store.put(&node)?;
                if !unschedulable {
                    self.workloads_changed();
                }
                let reason = if unschedulable {
                    "NodeNotSchedulable"
                } else {
                    "NodeSchedulable"
                };
                self.store.record_event(
                    &stored,
                    "Normal",
                    reason,
                    &format!("Node {name} status is now: {reason}"),
                    "drover",
                    now,
                )?;
                Ok(json!({"changed": true}))
            }
        }
    }

    fn find(&self, kind: Kind, namespace: &str, name: &str) -> Result<StoredObject, ApiError> {
        self.store
            .get(kind, scope(kind, namespace), name)?
            .ok_or_else(|| ApiError::not_found(kind, namespace, name))
    }

    /// The API view of an object, with live data the store does not hold.
    pub(super) fn render(&self, object: &StoredObject) -> Value {
        let mut value = to_json(object);
        if object.kind == Kind::Node {
            if let (Some(heard), Some(conditions)) = (
                self.last_heard(&object.name),
                value["status"]["conditions"].as_array_mut(),
            ) {
                for condition in conditions {
                    condition["lastHeartbeatTime"] = json!(timestamp(heard));
                }
            }
        }
        value
    }

    fn apply(&mut self, files: Vec<(String, String)>, now: DateTime<Utc>) -> ApiResult {
        let mut manifests = Vec::new();
        let mut errors = Vec::new();
        for (source, text) in &files {
            match parse_manifests(source, text) {
                Ok(m) => manifests.extend(m),
                Err(e) => errors.extend(e.into_iter().map(|e| e.to_string())),
            }
        }
        for m in &manifests {
            if let Manifest::CronJob(cronjob) = m {
                for (field, message) in crate::reconcile::cronjob::schedule_errors(&cronjob.spec) {
                    errors.push(format!(
                        "CronJob \"{}\": {field}: Invalid value: {message}",
                        m.name()
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ApiError {
                status: 422,
                message: errors.join("\n"),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for m in &manifests {
            if !seen.insert((m.kind(), m.namespace().to_string(), m.name().to_string())) {
                return Err(ApiError {
                    status: 422,
                    message: format!("{} \"{}\" appears more than once", m.kind(), m.name()),
                });
            }
        }
        let mut results = Vec::new();
        for manifest in manifests {
            let outcome = self.apply_one(&manifest, now)?;
            results.push(json!({
                "kind": manifest.kind().as_str(),
                "namespace": manifest.namespace(),
                "name": manifest.name(),
                "result": outcome,
            }));
        }
        self.workloads_changed();
        Ok(json!({"items": results}))
    }

    fn apply_one(
        &mut self,
        manifest: &Manifest,
        now: DateTime<Utc>,
    ) -> Result<&'static str, ApiError> {
        let kind = manifest.kind();
        let meta = manifest.metadata();
        let mut spec = manifest.spec_json();
        let existing = self
            .store
            .get(kind, manifest.namespace(), manifest.name())?;
        let object = match existing {
            Some(mut current) => {
                if kind == Kind::Pod {
                    // The scheduler's binding is not part of what the user wrote.
                    if spec.get("nodeName").is_none() {
                        if let Some(node) = current.spec.get("nodeName") {
                            spec["nodeName"] = node.clone();
                        }
                    }
                    if current.spec != spec {
                        return Err(ApiError {
                            status: 422,
                            message: format!(
                                "Pod \"{}\": the spec of a pod cannot change once it is created; delete the pod and apply it again",
                                current.name
                            ),
                        });
                    }
                }
                if let Some(message) = super::defaults::selector_change(kind, &current.spec, &spec)
                {
                    return Err(ApiError {
                        status: 422,
                        message: format!(
                            "{} \"{}\" is invalid: spec.selector: {message}",
                            kind.as_str(),
                            current.name
                        ),
                    });
                }
                let spec_changed = current.spec != spec;
                if !spec_changed
                    && current.labels == meta.labels
                    && current.annotations == meta.annotations
                {
                    return Ok("unchanged");
                }
                if spec_changed {
                    current.generation += 1;
                    current.spec = spec;
                }
                current.labels = meta.labels.clone();
                current.annotations = meta.annotations.clone();
                self.store.put(&current)?;
                return Ok("configured");
            }
            None => {
                let uid = drover_proto::random::new_uid()
                    .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
                StoredObject {
                    labels: meta.labels.clone(),
                    annotations: meta.annotations.clone(),
                    status: crate::pods::initial_status(kind, &spec),
                    spec,
                    ..StoredObject::new(kind, manifest.namespace(), manifest.name(), uid, now)
                }
            }
        };
        let stored = self.store.put(&object)?;
        if kind == Kind::Pod {
            self.pod_applied(&stored)?;
        }
        Ok("created")
    }

    pub(super) fn taint_node(
        &mut self,
        name: &str,
        add: Vec<drover_proto::manifest::Taint>,
        remove: Vec<(String, Option<drover_proto::manifest::TaintEffect>)>,
    ) -> ApiResult {
        let mut node = self.find(Kind::Node, "", name)?;
        let mut taints: Vec<drover_proto::manifest::Taint> = node
            .spec
            .get("taints")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let before = taints.clone();
        for (key, effect) in &remove {
            let count = taints.len();
            taints.retain(|t| !(t.key == *key && effect.is_none_or(|e| e == t.effect)));
            if taints.len() == count {
                return Err(ApiError::not_found_message(format!(
                    "taint \"{key}\" not found on node \"{name}\""
                )));
            }
        }
        for taint in add {
            validate_label_key(&taint.key).map_err(ApiError::bad_request)?;
            if let Some(value) = &taint.value {
                validate_label_value(value).map_err(ApiError::bad_request)?;
            }
            taints.retain(|t| !(t.key == taint.key && t.effect == taint.effect));
            taints.push(taint);
        }
        if taints == before {
            return Ok(json!({"changed": false}));
        }
        node.spec["taints"] =
            serde_json::to_value(&taints).map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
        if taints.is_empty() {
            if let Some(spec) = node.spec.as_object_mut() {
                spec.remove("taints");
            }
        }
        self.store.put(&node)?;
        Ok(json!({"changed": true}))
    }

    pub(super) fn label_node(
        &mut self,
        name: &str,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
        overwrite: bool,
    ) -> ApiResult {
        let mut node = self.find(Kind::Node, "", name)?;
        for (key, value) in &set {
            validate_label_key(key).map_err(ApiError::bad_request)?;
            validate_label_value(value).map_err(ApiError::bad_request)?;
            if let Some(existing) = node.labels.get(key) {
                if existing != value && !overwrite {
                    return Err(ApiError::conflict(format!(
                        "node \"{name}\" already has a value ({existing}) for label {key}; use --overwrite to change it"
                    )));
                }
            }
        }
        let before = node.labels.clone();
        node.labels.extend(set);
        for key in remove {
            node.labels.remove(&key);
        }
        if node.labels == before {
            return Ok(json!({"changed": false}));
        }
        self.store.put(&node)?;
        Ok(json!({"changed": true}))
    }
}
