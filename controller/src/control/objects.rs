//! The Kubernetes API's verbs on every served resource: get, list, create, update, patch,
//! delete, deletecollection and pod eviction. Stored kinds go through the same rules as
//! `drover apply` (manifest validation, scheduling, controllers); Events, Namespaces and
//! ControllerRevisions are views of other tables (see `views.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use drover_proto::manifest::{Kind, Manifest};
use drover_proto::selector::LabelSelector;
use serde_json::{json, Value};

use super::kube_error::{Cause, KubeError, KubeResult};
use super::rendered::RenderedList;
use super::{ApiRequest, Control};
use crate::api::patch::{self, PatchError, PatchType};
use crate::api::resources::Resource;
use crate::api::selectors::FieldSelector;
use crate::reconcile::action::Action;
use crate::reconcile::garbage_collection::foreground_finished;
pub use crate::reconcile::garbage_collection::Propagation;
use crate::store::StoredObject;

/// `labelSelector`, `fieldSelector`, `limit` and `continue` of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// kubectl `-l` syntax.
    pub label_selector: Option<String>,
    /// `a=b,c!=d`.
    pub field_selector: Option<String>,
    /// Most items per page; `None` or 0: all.
    pub limit: Option<usize>,
    /// Token of the previous page.
    pub continue_token: Option<String>,
}

impl Propagation {
    /// `Background`, `Foreground` or `Orphan`.
    pub fn parse(text: &str) -> Result<Propagation, KubeError> {
        Propagation::from_name(text).ok_or_else(|| {
            KubeError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{text}\": supported values: \"Background\", \"Foreground\", \"Orphan\""
            ))
        })
    }
}

/// `DeleteOptions`, from the query or the body.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Propagation policy.
    pub propagation: Propagation,
    /// 0 deletes a pod at once, without waiting for its node.
    pub grace_period_seconds: Option<i64>,
    /// Validate only.
    pub dry_run: bool,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
}

/// Options of create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate, answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager` (server-side apply).
    pub field_manager: Option<String>,
    /// `force` (server-side apply).
    pub force: bool,
}

/// The control loop's answer to a [`KubeRequest`].
#[derive(Debug)]
pub struct KubeReply {
    /// The object, list or Status; or the failure.
    pub result: KubeResult,
    /// What the client is warned of (`Warning` headers): fields it set that Drover ignores.
    pub warnings: Vec<String>,
}

/// A list of the Kubernetes API.
#[derive(Debug)]
pub struct ListRequest {
    /// What.
    pub resource: &'static Resource,
    /// Path namespace.
    pub namespace: Option<String>,
    /// Selectors and paging.
    pub options: ListOptions,
}

/// A request of the Kubernetes API. `namespace` is the one in the path (`None` for
/// cluster-scoped resources and lists across namespaces).
#[derive(Debug)]
pub enum KubeRequest {
    /// One object (also `…/status`).
    Get {
        /// What.
        resource: &'static Resource,
        /// Path namespace.
        namespace: Option<String>,
        /// Name.
        name: String,
    },
    /// A (page of a) list.
    List {
        /// What.
        resource: &'static Resource,
        /// Path namespace.
        namespace: Option<String>,
        /// Selectors and paging.
        options: ListOptions,
    },
    /// POST of a new object.
    Create {
        /// What.
        resource: &'static Resource,
        /// Path namespace.
        namespace: Option<String>,
        /// The object.
        body: Value,
        /// Options.
        options: WriteOptions,
    },
    /// PUT of a whole object (or of its status).
    Update {
        /// What.
        resource: &'static Resource,
        /// Path namespace.
        namespace: Option<String>,
        /// Name.
        name: String,
        /// The object.
        body: Value,
        /// `…/status`: only the status changes.
        status_only: bool,
        /// Options.
        options: WriteOptions,
    },
    /// PATCH.
    Patch {
        /// What.
        resource: &'static Resource,
        /// Path namespace.
        namespace: Option<String>,
        /// Name.
        name: String,
        /// From the Content-Type.
        patch_type: PatchType,
        /// The patch as sent.
        body: Vec<u8>,
        /// `…/status`: only the status changes.
        status_only: bool,
        /// Options.
        options: WriteOptions,
    },
    /// DELETE of one object.
    Delete {
        /// What.
        resource: &'static Resource,
        /// Path namespace.
        namespace: Option<String>,
        /// Name.
        name: String,
        /// Options.
        options: DeleteOptions,
    },
    /// DELETE on a list path.
    DeleteCollection {
        /// What.
        resource: &'static Resource,
        /// Path namespace.
        namespace: Option<String>,
        /// Which objects.
        list: ListOptions,
        /// How.
        options: DeleteOptions,
    },
    /// POST `pods/{name}/eviction`.
    Evict {
        /// Namespace.
        namespace: String,
        /// Pod.
        name: String,
        /// From the Eviction's `deleteOptions`.
        options: DeleteOptions,
    },
}

/// The stored kind of a resource; `None` for views (Events, Namespaces, revisions).
pub(super) fn stored_kind(resource: &Resource) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == resource.kind)
}

/// The continue token of a page that ended at `key`, for a list made at `rv`.
fn continue_token(rv: u64, key: &(String, String)) -> String {
    hex::encode(format!("{rv}\n{}\n{}", key.0, key.1))
}

fn parse_continue(token: &str) -> Result<(u64, (String, String)), KubeError> {
    let invalid = || KubeError::bad_request("continue key is not valid");
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let rv = parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(invalid)?;
    let ns = parts.next().ok_or_else(invalid)?.to_string();
    let name = parts.next().ok_or_else(invalid)?.to_string();
    Ok((rv, (ns, name)))
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn key_of(object: &Value) -> (String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

/// The path namespace of a namespaced resource, or `""`.
fn scope(resource: &Resource, namespace: &Option<String>) -> String {
    if resource.namespaced {
        namespace.clone().unwrap_or_else(|| "default".into())
    } else {
        String::new()
    }
}

/// Server-managed metadata a manifest does not take: kept aside, then put back.
pub(super) const SERVER_METADATA: &[&str] = &[
    "ownerReferences",
    "managedFields",
    "finalizers",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
];

/// What `prepare` took out of a body before validating it.
struct Prepared {
    manifest: Manifest,
    owner_references: Value,
    /// `metadata.managedFields` as sent (server-side apply computes them), or null.
    managed_fields: Value,
    status: Value,
    resource_version: Option<String>,
    /// The fields the body sets that Drover ignores, for the client (`Warning` headers).
    warnings: Vec<drover_proto::manifest::ManifestWarning>,
}

fn random_suffix() -> Result<String, KubeError> {
    // Kubernetes' alphabet for generated names: no vowels, no look-alikes.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = drover_proto::random::random_bytes::<5>()
        .map_err(|e| KubeError::new(500, "InternalError", e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// Checks a body's kind, apiVersion, namespace and name against the request, fills in what
/// the path implies, and validates it as `drover apply` would.
fn prepare(
    resource: &Resource,
    namespace: &Option<String>,
    url_name: Option<&str>,
    mut body: Value,
) -> Result<Prepared, KubeError> {
    super::defaults::accept_kubernetes_defaults(resource.kind, &mut body);
    let Some(root) = body.as_object_mut() else {
        return Err(KubeError::bad_request("the body must be a JSON object"));
    };
    let api_version = resource.api_version();
    match root.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            root.insert("apiVersion".into(), json!(api_version));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(KubeError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match root.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            root.insert("kind".into(), json!(resource.kind));
        }
        Some(k) if k == resource.kind => {}
        Some(k) => {
            return Err(KubeError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                resource.kind
            )))
        }
    }
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| KubeError::bad_request("metadata must be an object"))?;
    if resource.namespaced {
        let path_ns = scope(resource, namespace);
        match metadata.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                metadata.insert("namespace".into(), json!(path_ns));
            }
            Some(ns) if ns == path_ns => {}
            Some(_) => {
                return Err(KubeError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
        }
    }
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match url_name {
        Some(url) if name.is_empty() => {
            metadata.insert("name".into(), json!(url));
        }
        Some(url) if name != url => {
            return Err(KubeError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({url})"
            )))
        }
        Some(_) => {}
        None if name.is_empty() => {
            let Some(prefix) = metadata.get("generateName").and_then(Value::as_str) else {
                return Err(KubeError::invalid(
                    resource,
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            };
            let generated = format!("{prefix}{}", random_suffix()?);
            metadata.insert("name".into(), json!(generated));
        }
        None => {}
    }
    let mut owner_references = json!([]);
    let mut managed_fields = Value::Null;
    for field in SERVER_METADATA {
        if let Some(value) = metadata.remove(*field) {
            match *field {
                "ownerReferences" if value.is_array() => owner_references = value,
                "managedFields" if value.is_array() => managed_fields = value,
                _ => {}
            }
        }
    }
    let resource_version = metadata
        .get("resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let status = root.remove("status").unwrap_or_else(|| json!({}));
    let (manifest, ignored) = Manifest::from_json_warned(body).map_err(|e| {
        KubeError::invalid(
            resource,
            &name,
            vec![Cause {
                reason: "FieldValueInvalid",
                message: e.message.clone(),
                field: e.path.clone(),
            }],
        )
    })?;
    if let Manifest::CronJob(cronjob) = &manifest {
        let causes: Vec<Cause> = crate::reconcile::cronjob::schedule_errors(&cronjob.spec)
            .into_iter()
            .map(|(field, message)| Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {message}"),
                field: field.into(),
            })
            .collect();
        if !causes.is_empty() {
            return Err(KubeError::invalid(resource, &name, causes));
        }
    }
    Ok(Prepared {
        manifest,
        owner_references,
        managed_fields,
        status,
        resource_version,
        warnings: ignored,
    })
}

/// The `managedFields` a write leaves: those server-side apply computed (sent in the body),
/// or `before`'s with the fields this write changed recorded for its field manager.
fn managed_fields(
    before: Option<&Value>,
    after: &StoredObject,
    sent: Value,
    options: &WriteOptions,
    now: DateTime<Utc>,
) -> Value {
    if sent.is_array() {
        return sent;
    }
    let manager = options.field_manager.as_deref().unwrap_or("unknown");
    let after = crate::object::to_json(after);
    let mut recorded =
        patch::record_update(before, &after, manager, &crate::object::timestamp(now));
    recorded["metadata"]["managedFields"].take()
}

fn patch_error(resource: &Resource, name: &str, e: PatchError) -> KubeError {
    match e {
        PatchError::Invalid(message) => KubeError::bad_request(message),
        PatchError::Conflicts(fields) => KubeError {
            details: Some(Box::new(super::kube_error::Details {
                name: name.to_string(),
                group: resource.group.to_string(),
                kind: resource.plural.to_string(),
                causes: fields
                    .iter()
                    .map(|f| Cause {
                        reason: "FieldManagerConflict",
                        message: format!("conflict with another manager on {f}"),
                        field: f.clone(),
                    })
                    .collect(),
            })),
            ..KubeError::new(
                409,
                "Conflict",
                format!(
                    "Apply failed with {} conflict{}: {}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" },
                    fields.join(", ")
                ),
            )
        },
    }
}

/// The pod fields a field selector can read from the stored pod (no default applies).
const STORED_POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "status.podIP",
];

/// A [`STORED_POD_FIELDS`] field of a stored pod, as text (empty when absent).
fn stored_pod_field(pod: &StoredObject, field: &str) -> String {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_string();
    match field {
        "metadata.name" => pod.name.clone(),
        "metadata.namespace" => pod.namespace.clone(),
        "spec.nodeName" => text(pod.spec.get("nodeName")),
        "status.phase" => text(pod.status.get("phase")),
        "status.podIP" => text(pod.status.get("podIP")),
        _ => String::new(),
    }
}

/// The items of one page of a list: the first `limit` selected, and how many follow.
struct Page {
    limit: Option<usize>,
    items: Vec<Arc<str>>,
    last: Option<(String, String)>,
    remaining: usize,
}

impl Page {
    fn new(limit: Option<usize>) -> Page {
        Page {
            limit,
            items: Vec::new(),
            last: None,
            remaining: 0,
        }
    }

    /// A selected object at `key`; `text` is called only when it is on the page.
    fn offer(&mut self, key: (&str, &str), text: impl FnOnce() -> Arc<str>) {
        if self.limit.is_some_and(|limit| self.items.len() >= limit) {
            self.remaining += 1;
            return;
        }
        self.items.push(text());
        self.last = Some((key.0.to_string(), key.1.to_string()));
    }
}

/// The Status of an object deleted at once.
fn deleted_status(resource: &Resource, object: &StoredObject) -> Value {
    let mut details = json!({"name": object.name, "kind": resource.plural, "uid": object.uid});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    crate::api::status::success_json(details)
}

/// What the Kubernetes API adds to a stored object's JSON: the defaults Kubernetes would
/// give it, and the finalizer of a cascading delete under way.
fn show_kubernetes_shape(object: &StoredObject, value: &mut Value) {
    super::defaults::show_defaults(object.kind.as_str(), value);
    if object.kind != Kind::Pod && object.deletion_timestamp.is_some() {
        value["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
    }
}

/// A stored object as the Kubernetes API shows it, without live data (for watch events).
pub(crate) fn kube_shape(object: &StoredObject) -> Value {
    let mut value = crate::object::to_json(object);
    show_kubernetes_shape(object, &mut value);
    value
}

impl Control {
    /// An object as the Kubernetes API shows it: with live data, and a pod with the
    /// defaults Kubernetes would give it.
    fn kube_render(&self, object: &StoredObject) -> Value {
        let mut value = self.render(object);
        show_kubernetes_shape(object, &mut value);
        value
    }

    /// Answers a request of the Kubernetes API.
    pub fn handle_kube(&mut self, request: KubeRequest, now: DateTime<Utc>) -> KubeResult {
        match request {
            KubeRequest::Get {
                resource,
                namespace,
                name,
            } => self.kube_get(resource, &namespace, &name),
            KubeRequest::List {
                resource,
                namespace,
                options,
            } => self
                .kube_list(resource, namespace.as_deref(), &options)
                .map(RenderedList::into_value),
            KubeRequest::Create {
                resource,
                namespace,
                body,
                options,
            } => self.kube_create(resource, &namespace, body, &options, now),
            KubeRequest::Update {
                resource,
                namespace,
                name,
                body,
                status_only,
                options,
            } => self.kube_update(
                resource,
                &namespace,
                &name,
                body,
                status_only,
                &options,
                now,
            ),
            KubeRequest::Patch {
                resource,
                namespace,
                name,
                patch_type,
                body,
                status_only,
                options,
            } => self.kube_patch(
                resource,
                &namespace,
                &name,
                patch_type,
                &body,
                status_only,
                &options,
                now,
            ),
            KubeRequest::Delete {
                resource,
                namespace,
                name,
                options,
            } => self.kube_delete(resource, &namespace, &name, &options, now),
            KubeRequest::DeleteCollection {
                resource,
                namespace,
                list,
                options,
            } => {
                if stored_kind(resource).is_none() {
                    return Err(KubeError::method_not_allowed(format!(
                        "{} cannot be deleted",
                        resource.plural
                    )));
                }
                let all = ListOptions {
                    limit: None,
                    continue_token: None,
                    ..list
                };
                let listed = self
                    .kube_list(resource, namespace.as_deref(), &all)?
                    .into_value();
                let mut deleted = Vec::new();
                for item in listed["items"].as_array().cloned().unwrap_or_default() {
                    let (ns, name) = key_of(&item);
                    let ns = (!ns.is_empty()).then_some(ns);
                    self.kube_delete(resource, &ns, &name, &options, now)?;
                    deleted.push(item);
                }
                Ok(json!({
                    "kind": resource.list_kind(),
                    "apiVersion": resource.api_version(),
                    "metadata": {"resourceVersion": self.store.current_resource_version()?.to_string()},
                    "items": deleted,
                }))
            }
            KubeRequest::Evict {
                namespace,
                name,
                options,
            } => {
                let pods = crate::api::resources::by_kind("Pod")
                    .ok_or_else(KubeError::no_such_resource)?;
                self.kube_delete(pods, &Some(namespace), &name, &options, now)?;
                Ok(crate::api::status::success_json(json!({
                    "name": name, "kind": "pods"
                })))
            }
        }
    }

    fn stored(
        &self,
        resource: &Resource,
        namespace: &Option<String>,
        name: &str,
    ) -> Result<(Kind, StoredObject), KubeError> {
        let kind = stored_kind(resource).ok_or_else(|| {
            KubeError::method_not_allowed(format!("{} are read-only", resource.plural))
        })?;
        let object = self
            .store
            .get(kind, &scope(resource, namespace), name)?
            .ok_or_else(|| KubeError::not_found(resource, name))?;
        Ok((kind, object))
    }

    fn kube_get(&self, resource: &Resource, namespace: &Option<String>, name: &str) -> KubeResult {
        if stored_kind(resource).is_some() {
            let (_, object) = self.stored(resource, namespace, name)?;
            return Ok(self.kube_render(&object));
        }
        let ns = resource.namespaced.then(|| scope(resource, namespace));
        self.view_objects(resource, ns.as_deref())?
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .ok_or_else(|| KubeError::not_found(resource, name))
    }

    /// An object's JSON text as the API shows it, rendered once per version.
    fn rendered_text(&self, object: &StoredObject) -> Arc<str> {
        if object.kind == Kind::Node {
            // Its heartbeat time is live data, not part of its version.
            return self.kube_render(object).to_string().into();
        }
        self.rendered.text(object, || self.kube_render(object))
    }

    /// Drops renderings of objects that are gone or changed, once they outnumber the store.
    fn prune_renderings(&self) {
        if self.rendered.len() > 2 * self.store.object_count() + 64 {
            self.rendered
                .retain(|uid, version| self.store.resource_version_of(uid) == Some(version));
        }
    }

    /// A (page of a) list, in namespace and name order.
    pub(super) fn kube_list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<RenderedList, KubeError> {
        let labels = match options.label_selector.as_deref() {
            Some(text) => LabelSelector::parse(text).map_err(KubeError::bad_request)?,
            None => LabelSelector::default(),
        };
        let fields = match options.field_selector.as_deref() {
            Some(text) => FieldSelector::parse(text).map_err(KubeError::bad_request)?,
            None => FieldSelector::default(),
        };
        fields
            .check(resource.kind)
            .map_err(KubeError::bad_request)?;
        let (rv, after) = match options.continue_token.as_deref() {
            Some(token) if !token.is_empty() => {
                let (rv, key) = parse_continue(token)?;
                (rv, Some(key))
            }
            _ => (self.store.current_resource_version()?, None),
        };
        let after = |ns: &str, name: &str| {
            after
                .as_ref()
                .is_none_or(|(a_ns, a_name)| (ns, name) > (a_ns.as_str(), a_name.as_str()))
        };
        let selected_json =
            |o: &Value| labels.matches(&labels_of(o)) && fields.matches(resource.kind, o);
        let limit = options.limit.filter(|l| *l > 0);
        let mut page = Page::new(limit);
        match stored_kind(resource) {
            Some(kind) => {
                // A pod's labels and these fields are stored as shown: no rendering to select.
                let from_store = kind == Kind::Pod && fields.names_only(STORED_POD_FIELDS);
                let scope = if kind.namespaced() { namespace } else { None };
                for object in self.store.list(kind, scope)? {
                    if !after(&object.namespace, &object.name) {
                        continue;
                    }
                    let selected = if from_store {
                        labels.matches(&object.labels)
                            && fields.matches_by(|field| stored_pod_field(&object, field))
                    } else {
                        labels.is_empty() && fields.requirements.is_empty()
                            || selected_json(&self.kube_render(&object))
                    };
                    if selected {
                        page.offer((&object.namespace, &object.name), || {
                            self.rendered_text(&object)
                        });
                    }
                }
                self.prune_renderings();
            }
            None => {
                let mut objects = self.view_objects(resource, namespace)?;
                objects.sort_by_key(key_of);
                for object in objects {
                    let (ns, name) = key_of(&object);
                    if after(&ns, &name) && selected_json(&object) {
                        page.offer((&ns, &name), || object.to_string().into());
                    }
                }
            }
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let Some(last) = page.last.filter(|_| page.remaining > 0) {
            metadata["continue"] = json!(continue_token(rv, &last));
            metadata["remainingItemCount"] = json!(page.remaining);
        }
        Ok(RenderedList {
            kind: resource.list_kind(),
            api_version: resource.api_version(),
            metadata,
            items: page.items,
        })
    }

    fn kube_create(
        &mut self,
        resource: &Resource,
        namespace: &Option<String>,
        body: Value,
        options: &WriteOptions,
        now: DateTime<Utc>,
    ) -> KubeResult {
        if resource.kind == "Namespace" {
            return self.create_namespace(resource, &body, options.dry_run, now);
        }
        let Some(kind) = stored_kind(resource) else {
            return Err(KubeError::method_not_allowed(format!(
                "{} cannot be created through this API",
                resource.plural
            )));
        };
        if kind == Kind::Node {
            return Err(KubeError::method_not_allowed(
                "nodes register themselves: enroll an agent (drover token create)",
            ));
        }
        let prepared = prepare(resource, namespace, None, body)?;
        self.warnings
            .extend(prepared.warnings.iter().map(|w| w.message()));
        let manifest = &prepared.manifest;
        if self
            .store
            .get(kind, manifest.namespace(), manifest.name())?
            .is_some()
        {
            return Err(KubeError::already_exists(resource, manifest.name()));
        }
        let meta = manifest.metadata();
        let spec = manifest.spec_json();
        let uid = drover_proto::random::new_uid()
            .map_err(|e| KubeError::new(500, "InternalError", e.to_string()))?;
        let mut object = StoredObject {
            labels: meta.labels.clone(),
            annotations: meta.annotations.clone(),
            owner_references: prepared.owner_references,
            status: crate::pods::initial_status(kind, &spec),
            spec,
            ..StoredObject::new(kind, manifest.namespace(), manifest.name(), uid, now)
        };
        self.expand_manual_run(&mut object)
            .map_err(|e| KubeError::new(500, "InternalError", format!("{e:#}")))?;
        object.managed_fields =
            managed_fields(None, &object, prepared.managed_fields, options, now);
        if options.dry_run {
            return Ok(self.kube_render(&object));
        }
        let stored = self.store.put(&object)?;
        if kind == Kind::Pod {
            self.pod_applied(&stored)?;
        }
        self.workloads_changed();
        Ok(self.kube_render(&stored))
    }

    #[allow(clippy::too_many_arguments)]
    fn kube_update(
        &mut self,
        resource: &Resource,
        namespace: &Option<String>,
        name: &str,
        body: Value,
        status_only: bool,
        options: &WriteOptions,
        now: DateTime<Utc>,
    ) -> KubeResult {
        if resource.kind == "Namespace" && !status_only {
            return self.update_namespace(resource, name, &body, options.dry_run, now);
        }
        let (kind, mut current) = self.stored(resource, namespace, name)?;
        let sent_rv = body["metadata"]["resourceVersion"]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if sent_rv.is_some_and(|v| v != current.resource_version.to_string()) {
            return Err(KubeError::conflict(resource, name));
        }
        if status_only {
            let status = body.get("status").cloned().unwrap_or_else(|| json!({}));
            if !status.is_object() {
                return Err(KubeError::invalid_field(
                    resource,
                    name,
                    "status",
                    "must be an object",
                ));
            }
            current.status = status;
            if options.dry_run {
                return Ok(self.kube_render(&current));
            }
            let stored = self.store.put(&current)?;
            self.workloads_changed();
            return Ok(self.kube_render(&stored));
        }
        if kind == Kind::Node {
            return self.update_node(resource, current, &body, options, now);
        }
        let current_before = current.clone();
        let prepared = prepare(resource, namespace, Some(name), body)?;
        // Only what this write brings: a label patch of an object that already holds an
        // ignored field (the patched body is the whole object) is not warned of it again.
        let stored =
            drover_proto::manifest::ignored::find_ignored(kind, &crate::object::to_json(&current));
        self.warnings.extend(
            prepared
                .warnings
                .iter()
                .filter(|w| !stored.iter().any(|s| s.path == w.path))
                .map(|w| w.message()),
        );
        let meta = prepared.manifest.metadata();
        let mut spec = prepared.manifest.spec_json();
        if kind == Kind::Pod {
            // The scheduler's binding is not part of what the user wrote.
            if spec.get("nodeName").is_none() {
                if let Some(node) = current.spec.get("nodeName") {
                    spec["nodeName"] = node.clone();
                }
            }
            if !super::defaults::same_pod_spec(&current.spec, &spec) {
                return Err(KubeError::invalid(
                    resource,
                    name,
                    vec![Cause {
                        reason: "FieldValueForbidden",
                        message: "Forbidden: pod updates may not change fields other than metadata (Drover does not update a running pod's spec; delete and create it)".into(),
                        field: "spec".into(),
                    }],
                ));
            }
        }
        if let Some(message) = super::defaults::selector_change(kind, &current.spec, &spec) {
            return Err(KubeError::invalid(
                resource,
                name,
                vec![Cause {
                    reason: "FieldValueInvalid",
                    message,
                    field: "spec.selector".into(),
                }],
            ));
        }
        let _ = (&prepared.status, &prepared.resource_version);
        if kind == Kind::Pod {
            // Equal up to defaults (checked above): keep what was stored.
            spec = current.spec.clone();
        }
        if current.spec != spec {
            current.generation += 1;
            current.spec = spec;
        }
        current.labels = meta.labels.clone();
        current.annotations = meta.annotations.clone();
        current.owner_references = prepared.owner_references;
        let before = crate::object::to_json(&current_before);
        current.managed_fields = managed_fields(
            Some(&before),
            &current,
            prepared.managed_fields,
            options,
            now,
        );
        if options.dry_run {
            return Ok(self.kube_render(&current));
        }
        if current == current_before {
            // As in Kubernetes, an update that changes nothing writes nothing: the
            // resourceVersion stays, and no watcher hears of it.
            return Ok(self.kube_render(&current));
        }
        let stored = self.store.put(&current)?;
        self.workloads_changed();
        Ok(self.kube_render(&stored))
    }

    /// A node changes through the same rules as `drover label/taint/cordon`: labels,
    /// annotations, `spec.taints` and `spec.unschedulable`; the rest is the agent's.
    fn update_node(
        &mut self,
        resource: &Resource,
        current: StoredObject,
        body: &Value,
        options: &WriteOptions,
        now: DateTime<Utc>,
    ) -> KubeResult {
        let name = current.name.clone();
        let labels = labels_of(body);
        let annotations: BTreeMap<String, String> = labels_of(&json!({
            "metadata": {"labels": body["metadata"]["annotations"].clone()}
        }));
        let taints: Vec<drover_proto::manifest::Taint> = match body["spec"].get("taints") {
            None | Some(Value::Null) => Vec::new(),
            Some(t) => serde_json::from_value(t.clone()).map_err(|e| {
                KubeError::invalid_field(resource, &name, "spec.taints", e.to_string())
            })?,
        };
        let unschedulable = body["spec"]["unschedulable"].as_bool().unwrap_or(false);
        for (key, value) in &labels {
            drover_proto::manifest::validate_label_key(key)
                .map_err(|m| KubeError::invalid_field(resource, &name, "metadata.labels", m))?;
            drover_proto::manifest::validate_label_value(value)
                .map_err(|m| KubeError::invalid_field(resource, &name, "metadata.labels", m))?;
        }
        if options.dry_run {
            let mut preview = current;
            preview.labels = labels;
            preview.annotations = annotations;
            return Ok(self.kube_render(&preview));
        }
        let current_taints: Vec<drover_proto::manifest::Taint> = current
            .spec
            .get("taints")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let remove_labels: Vec<String> = current
            .labels
            .keys()
            .filter(|k| !labels.contains_key(*k))
            .cloned()
            .collect();
        self.label_node(&name, labels, remove_labels, true)?;
        let remove_taints = current_taints
            .iter()
            .filter(|t| !taints.contains(t))
            .map(|t| (t.key.clone(), Some(t.effect)))
            .collect();
        let add_taints = taints
            .into_iter()
            .filter(|t| !current_taints.contains(t))
            .collect();
        self.taint_node(&name, add_taints, remove_taints)?;
        self.handle_api(
            ApiRequest::SetUnschedulable {
                name: name.clone(),
                unschedulable,
            },
            now,
        )?;
        if let Some(mut node) = self.store.get(Kind::Node, "", &name)? {
            if node.annotations != annotations {
                node.annotations = annotations;
                self.store.put(&node)?;
            }
        }
        // Pending pods may fit it now: the scheduling pass of settle looks.
        self.workloads_changed();
        let node = self
            .store
            .get(Kind::Node, "", &name)?
            .ok_or_else(|| KubeError::not_found(resource, &name))?;
        Ok(self.kube_render(&node))
    }

    #[allow(clippy::too_many_arguments)]
    fn kube_patch(
        &mut self,
        resource: &Resource,
        namespace: &Option<String>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        status_only: bool,
        options: &WriteOptions,
        now: DateTime<Utc>,
    ) -> KubeResult {
        let writable = stored_kind(resource).is_some() || resource.kind == "Namespace";
        if !writable {
            return Err(KubeError::method_not_allowed(format!(
                "{} are read-only",
                resource.plural
            )));
        }
        let found = if resource.kind == "Namespace" {
            self.kube_get(resource, namespace, name)
        } else {
            self.stored(resource, namespace, name)
                .map(|(_, object)| self.kube_render(&object))
        };
        let current = match found {
            Ok(object) => Some(object),
            Err(e) if e.code == 404 && patch_type == PatchType::Apply => None,
            Err(e) => return Err(e),
        };
        if patch_type == PatchType::Apply {
            let text = std::str::from_utf8(body)
                .map_err(|_| KubeError::bad_request("the apply body is not UTF-8"))?;
            let applied = parse_body_text(text)?;
            let manager = options
                .field_manager
                .clone()
                .ok_or_else(|| {
                    KubeError::bad_request(
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                    )
                })?;
            let merged = patch::server_side_apply(
                resource.kind,
                current.as_ref(),
                &applied,
                &manager,
                options.force,
                &crate::object::timestamp(now),
            )
            .map_err(|e| patch_error(resource, name, e))?;
            return match current {
                None => self.kube_create(resource, namespace, merged, options, now),
                Some(_) => {
                    self.kube_update(resource, namespace, name, merged, status_only, options, now)
                }
            };
        }
        let current = current.ok_or_else(|| KubeError::not_found(resource, name))?;
        let patched = patch::apply(resource.kind, &current, patch_type, body)
            .map_err(|e| patch_error(resource, name, e))?;
        self.kube_update(
            resource,
            namespace,
            name,
            patched,
            status_only,
            options,
            now,
        )
    }

    fn kube_delete(
        &mut self,
        resource: &Resource,
        namespace: &Option<String>,
        name: &str,
        options: &DeleteOptions,
        now: DateTime<Utc>,
    ) -> KubeResult {
        if resource.kind == "Namespace" {
            return self.delete_namespace(resource, name, options.dry_run, now);
        }
        let (kind, object) = match self.stored(resource, namespace, name) {
            Ok(found) => found,
            Err(e) if e.code == 405 => {
                return Err(KubeError::method_not_allowed(format!(
                    "{} cannot be deleted",
                    resource.plural
                )))
            }
            Err(e) => return Err(e),
        };
        if options
            .resource_version
            .as_ref()
            .is_some_and(|rv| *rv != object.resource_version.to_string())
            || options.uid.as_ref().is_some_and(|uid| *uid != object.uid)
        {
            return Err(KubeError::conflict(resource, name));
        }
        if options.dry_run {
            return Ok(self.kube_render(&object));
        }
        let ns = object.namespace.clone();
        match options.propagation {
            Propagation::Foreground if kind != Kind::Pod => {
                return self.delete_in_foreground(resource, object, now);
            }
            Propagation::Orphan if kind != Kind::Pod => {
                self.delete_with_dependents(&object, Propagation::Orphan, now)?;
                self.workloads_changed();
                return Ok(deleted_status(resource, &object));
            }
            _ => {}
        }
        if kind == Kind::Pod && options.grace_period_seconds == Some(0) {
            // Forced: gone from the API now; the node stops it when it next hears.
            self.count_removed_job_pod(&object, now)?;
            self.store.delete(kind, &ns, name)?;
            if let Some(node) = crate::pods::node_name(&object) {
                let node = node.to_string();
                self.ensure_desired(&node)?;
            }
            self.workloads_changed();
            return Ok(deleted_status(resource, &object));
        }
        self.handle_api(
            ApiRequest::Delete {
                kind,
                namespace: ns.clone(),
                name: name.to_string(),
            },
            now,
        )?;
        match self.store.get(kind, &ns, name)? {
            Some(pending) => Ok(self.kube_render(&pending)),
            None => Ok(deleted_status(resource, &object)),
        }
    }

    /// Foreground deletion: the owner shows `deletionTimestamp` and the
    /// `foregroundDeletion` finalizer while its dependents go; it goes once none is left
    /// ([`Control::finish_foreground_deletions`]).
    fn delete_in_foreground(
        &mut self,
        resource: &Resource,
        mut owner: StoredObject,
        now: DateTime<Utc>,
    ) -> KubeResult {
        if owner.deletion_timestamp.is_none() {
            owner.deletion_timestamp = Some(now);
            owner = self.store.put(&owner)?;
        }
        self.delete_with_dependents(&owner, Propagation::Foreground, now)?;
        self.finish_foreground_deletions(now)?;
        self.workloads_changed();
        match self.store.get(owner.kind, &owner.namespace, &owner.name)? {
            Some(pending) => Ok(self.kube_render(&pending)),
            None => Ok(deleted_status(resource, &owner)),
        }
    }

    /// Deletes the owners being deleted in the foreground whose dependents are all gone.
    pub(super) fn finish_foreground_deletions(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<(), KubeError> {
        let mut finished = Vec::new();
        for kind in [Kind::Job, Kind::CronJob, Kind::DaemonSet] {
            for owner in self.store.list(kind, None)? {
                if owner.deletion_timestamp.is_none() {
                    continue;
                }
                let candidates = self.dependent_candidates(&owner.namespace)?;
                if foreground_finished(&owner.uid, &candidates) {
                    finished.push(Action::Remove {
                        object: super::execute::key_of(&owner),
                        uid: owner.uid.clone(),
                    });
                }
            }
        }
        self.execute("garbage-collector", finished, now)?;
        Ok(())
    }
}

/// A body as JSON, or YAML (the first document).
pub fn parse_body_text(text: &str) -> Result<Value, KubeError> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let documents = drover_proto::manifest::yaml::load_documents(text)
        .map_err(|e| KubeError::bad_request(format!("invalid YAML: {}", e.message)))?;
    documents
        .into_iter()
        .map(|d| d.value)
        .find(|v| !v.is_null())
        .ok_or_else(|| KubeError::bad_request("the body is empty"))
}
