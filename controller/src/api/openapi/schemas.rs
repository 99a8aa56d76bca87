//! The schema of every served kind, derived from Drover's own types (the manifest types in
//! `drover_proto::manifest` and the described statuses in [`super::described`]) and renamed
//! into Kubernetes' definition names with Kubernetes' extensions added.
//!
//! The result is in a neutral form: references are `#/definitions/<name>` and may have
//! siblings (a field's `description`); [`super::document`] turns it into Swagger 2.0 or
//! OpenAPI 3.0.

use drover_proto::manifest as m;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use super::described as d;
use crate::api::resources::{Resource, RESOURCES};

pub const CORE: &str = "io.k8s.api.core.v1";
pub const BATCH: &str = "io.k8s.api.batch.v1";
pub const APPS: &str = "io.k8s.api.apps.v1";
pub const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// Where references point in the neutral form.
pub const REF_PREFIX: &str = "#/definitions/";

/// Rust schema name → (package, Kubernetes name). Every derived definition must be here, so
/// a new manifest type needs a deliberate name.
const NAMES: &[(&str, &str, &str)] = &[
    ("ObjectMeta", META, "ObjectMeta"),
    ("TemplateMeta", META, "TemplateObjectMeta"),
    ("LabelSelector", META, "LabelSelector"),
    ("LabelSelectorRequirement", META, "LabelSelectorRequirement"),
    ("ListMeta", META, "ListMeta"),
    ("Status", META, "Status"),
    ("StatusDetails", META, "StatusDetails"),
    ("StatusCause", META, "StatusCause"),
    ("DeleteOptions", META, "DeleteOptions"),
    ("WatchEvent", META, "WatchEvent"),
    ("OwnerReference", META, "OwnerReference"),
    (
        "Quantity",
        "io.k8s.apimachinery.pkg.api.resource",
        "Quantity",
    ),
    (
        "IntOrString",
        "io.k8s.apimachinery.pkg.util.intstr",
        "IntOrString",
    ),
    ("Eviction", "io.k8s.api.policy.v1", "Eviction"),
    ("Pod", CORE, "Pod"),
    ("PodSpec", CORE, "PodSpec"),
    ("PodStatus", CORE, "PodStatus"),
    ("PodTemplate", CORE, "PodTemplateSpec"),
    ("Container", CORE, "Container"),
    ("ContainerPort", CORE, "ContainerPort"),
    ("ContainerSecurityContext", CORE, "SecurityContext"),
    ("PodSecurityContext", CORE, "PodSecurityContext"),
    ("EnvVar", CORE, "EnvVar"),
    ("EnvVarSource", CORE, "EnvVarSource"),
    ("ObjectFieldSelector", CORE, "ObjectFieldSelector"),
    ("ResourceFieldSelector", CORE, "ResourceFieldSelector"),
    ("ConfigMapKeySelector", CORE, "ConfigMapKeySelector"),
    ("SecretKeySelector", CORE, "SecretKeySelector"),
    ("Probe", CORE, "Probe"),
    ("ExecAction", CORE, "ExecAction"),
    ("Lifecycle", CORE, "Lifecycle"),
    ("Capabilities", CORE, "Capabilities"),
    ("SeccompProfile", CORE, "SeccompProfile"),
    ("AppArmorProfile", CORE, "AppArmorProfile"),
    ("LifecycleHandler", CORE, "LifecycleHandler"),
    ("SleepAction", CORE, "SleepAction"),
    ("HttpGetAction", CORE, "HTTPGetAction"),
    ("HttpHeader", CORE, "HTTPHeader"),
    ("TcpSocketAction", CORE, "TCPSocketAction"),
    ("GrpcAction", CORE, "GRPCAction"),
    ("Resources", CORE, "ResourceRequirements"),
    ("VolumeMount", CORE, "VolumeMount"),
    ("Volume", CORE, "Volume"),
    ("HostPathVolume", CORE, "HostPathVolumeSource"),
    ("EmptyDirVolume", CORE, "EmptyDirVolumeSource"),
    ("Toleration", CORE, "Toleration"),
    ("Taint", CORE, "Taint"),
    ("Affinity", CORE, "Affinity"),
    ("NodeAffinity", CORE, "NodeAffinity"),
    ("NodeSelector", CORE, "NodeSelector"),
    ("NodeSelectorTerm", CORE, "NodeSelectorTerm"),
    ("NodeSelectorRequirement", CORE, "NodeSelectorRequirement"),
    ("Condition", CORE, "Condition"),
    ("ContainerStatus", CORE, "ContainerStatus"),
    ("ContainerState", CORE, "ContainerState"),
    ("ContainerStateWaiting", CORE, "ContainerStateWaiting"),
    ("ContainerStateRunning", CORE, "ContainerStateRunning"),
    ("ContainerStateTerminated", CORE, "ContainerStateTerminated"),
    ("ObjectReference", CORE, "ObjectReference"),
    ("Node", CORE, "Node"),
    ("NodeSpec", CORE, "NodeSpec"),
    ("NodeStatus", CORE, "NodeStatus"),
    ("NodeAddress", CORE, "NodeAddress"),
    ("NodeSystemInfo", CORE, "NodeSystemInfo"),
    ("Namespace", CORE, "Namespace"),
    ("NamespaceSpec", CORE, "NamespaceSpec"),
    ("NamespaceStatus", CORE, "NamespaceStatus"),
    ("Event", CORE, "Event"),
    ("EventSource", CORE, "EventSource"),
    ("Job", BATCH, "Job"),
    ("JobSpec", BATCH, "JobSpec"),
    ("JobStatus", BATCH, "JobStatus"),
    ("JobTemplate", BATCH, "JobTemplateSpec"),
    ("PodFailurePolicy", BATCH, "PodFailurePolicy"),
    ("PodFailurePolicyRule", BATCH, "PodFailurePolicyRule"),
    (
        "OnExitCodes",
        BATCH,
        "PodFailurePolicyOnExitCodesRequirement",
    ),
    (
        "OnPodCondition",
        BATCH,
        "PodFailurePolicyOnPodConditionsPattern",
    ),
    ("SuccessPolicy", BATCH, "SuccessPolicy"),
    ("SuccessPolicyRule", BATCH, "SuccessPolicyRule"),
    ("CronJob", BATCH, "CronJob"),
    ("CronJobSpec", BATCH, "CronJobSpec"),
    ("CronJobStatus", BATCH, "CronJobStatus"),
    ("DaemonSet", APPS, "DaemonSet"),
    ("DaemonSetSpec", APPS, "DaemonSetSpec"),
    ("DaemonSetStatus", APPS, "DaemonSetStatus"),
    ("UpdateStrategy", APPS, "DaemonSetUpdateStrategy"),
    ("RollingUpdate", APPS, "RollingUpdateDaemonSet"),
    ("ControllerRevision", APPS, "ControllerRevision"),
];

/// Lists merged by key, as Kubernetes declares them: (definition, field, merge keys).
const MERGE_KEYS: &[(&str, &str, &[&str])] = &[
    ("PodSpec", "containers", &["name"]),
    ("PodSpec", "initContainers", &["name"]),
    ("PodSpec", "volumes", &["name"]),
    ("Container", "env", &["name"]),
    ("Container", "ports", &["containerPort"]),
    ("Container", "volumeMounts", &["mountPath"]),
    ("PodStatus", "conditions", &["type"]),
    ("NodeStatus", "conditions", &["type"]),
    ("NodeStatus", "addresses", &["type"]),
    ("ObjectMeta", "ownerReferences", &["uid"]),
];

/// The status definition of each kind whose manifest type keeps `status` untyped.
const STATUSES: &[(&str, &str)] = &[
    ("Pod", "PodStatus"),
    ("Job", "JobStatus"),
    ("CronJob", "CronJobStatus"),
    ("DaemonSet", "DaemonSetStatus"),
];

/// What each kind is, for `kubectl explain KIND` (the manifest types' own doc comments name
/// the type, which says little to someone reading the API).
const KIND_DESCRIPTIONS: &[(&str, &str)] = &[
    ("Pod", "A Pod: one or more containers, or host processes, that run together on one node. Drover schedules it onto a node and that node's agent runs it."),
    ("Job", "A Job runs pods until enough of them succeed (`completions`), retrying failures up to `backoffLimit`."),
    ("CronJob", "A CronJob creates a Job from its template on a cron schedule."),
    ("DaemonSet", "A DaemonSet runs one copy of its pod on every node that matches its template's node selector, affinity and tolerations."),
];

/// `metadata` of every kind.
const OBJECT_METADATA: &str = "Standard object metadata: name, namespace, labels and annotations; the server sets uid, resourceVersion, generation and creationTimestamp.";

/// The Kubernetes name of a Rust schema name.
fn k8s_name(rust: &str) -> Option<String> {
    NAMES
        .iter()
        .find(|(r, _, _)| *r == rust)
        .map(|(_, package, name)| format!("{package}.{name}"))
}

/// The definition name of a served kind (`io.k8s.api.batch.v1.Job`).
pub fn kind_definition(r: &Resource) -> String {
    format!("{}.{}", package_of(r), r.kind)
}

/// The definition name of a served kind's list (`io.k8s.api.batch.v1.JobList`).
pub fn list_definition(r: &Resource) -> String {
    format!("{}.{}", package_of(r), r.list_kind())
}

fn package_of(r: &Resource) -> &'static str {
    match r.group {
        "batch" => BATCH,
        "apps" => APPS,
        _ => CORE,
    }
}

/// A reference in the neutral form.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

/// Every definition, in Kubernetes' names.
pub fn definitions() -> Map<String, Value> {
    let mut generator = SchemaGenerator::new(SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/definitions".into();
        s.meta_schema = None;
    }));
    generator.subschema_for::<m::Pod>();
    generator.subschema_for::<m::Job>();
    generator.subschema_for::<m::CronJob>();
    generator.subschema_for::<m::DaemonSet>();
    generator.subschema_for::<d::PodStatus>();
    generator.subschema_for::<d::JobStatus>();
    generator.subschema_for::<d::CronJobStatus>();
    generator.subschema_for::<d::DaemonSetStatus>();
    generator.subschema_for::<d::Node>();
    generator.subschema_for::<d::Namespace>();
    generator.subschema_for::<d::Event>();
    generator.subschema_for::<d::ControllerRevision>();
    generator.subschema_for::<d::Status>();
    generator.subschema_for::<d::DeleteOptions>();
    generator.subschema_for::<d::WatchEvent>();
    generator.subschema_for::<d::Eviction>();
    generator.subschema_for::<d::OwnerReference>();
    let raw = generator.take_definitions(true);

    let mut normalized: Map<String, Value> = raw
        .into_iter()
        .map(|(name, mut schema)| {
            normalize(&mut schema);
            (name, schema)
        })
        .collect();
    add_kubernetes_facts(&mut normalized);
    inline_enums(&mut normalized);

    let mut out = Map::new();
    for (name, mut schema) in normalized {
        rename_refs(&mut schema);
        // A name missing from NAMES keeps its Rust name; the tests catch it.
        out.insert(k8s_name(&name).unwrap_or(name), schema);
    }
    for r in RESOURCES {
        out.insert(list_definition(r), list_schema(r));
    }
    out.insert(
        format!("{META}.Patch"),
        json!({
            "type": "object",
            "description": "A patch: a JSON patch, a merge patch, a strategic merge patch or an apply configuration, as the request's Content-Type says.",
        }),
    );
    out
}

/// Schemars' JSON Schema into what both OpenAPI versions accept: no `null` alternatives
/// (absent is how Kubernetes says unset), enums instead of `const`/`oneOf`, one
/// `description` instead of `title` + `description`, Kubernetes' integer formats.
fn normalize(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get("type") {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if let [only] = types.as_slice() {
            object.insert("type".into(), only.clone());
        }
    }
    if let Some(Value::Array(any)) = object.get("anyOf") {
        let rest: Vec<Value> = any
            .iter()
            .filter(|s| s.get("type").is_none_or(|t| t != "null"))
            .cloned()
            .collect();
        if let [only] = rest.as_slice() {
            object.remove("anyOf");
            if let Some(only) = only.as_object() {
                for (k, v) in only {
                    object.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    // Schemars marks deserialize-only fields write-only; the server does return them.
    object.remove("writeOnly");
    object.remove("readOnly");
    if let Some(c) = object.remove("const") {
        object.insert("enum".into(), json!([c]));
        object.entry("type").or_insert(json!("string"));
    }
    if let Some(Value::Array(variants)) = object.get("oneOf") {
        let consts: Option<Vec<(Value, Option<String>)>> = variants
            .iter()
            .map(|v| {
                let value = v
                    .get("const")
                    .cloned()
                    .or_else(|| v.get("enum").and_then(|e| e.get(0)).cloned())?;
                let text = v
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                Some((value, text))
            })
            .collect();
        if let Some(consts) = consts {
            object.remove("oneOf");
            let mut lines = String::from("Possible enum values:");
            for (value, text) in &consts {
                lines.push_str(&format!("\n - `{value}`"));
                if let Some(text) = text {
                    lines.push_str(&format!(" {text}"));
                }
            }
            object.insert("type".into(), json!("string"));
            object.insert(
                "enum".into(),
                Value::Array(consts.into_iter().map(|(v, _)| v).collect()),
            );
            object.insert("x-drover-enum-values".into(), json!(lines));
        }
    }
    if let Some(title) = object.remove("title") {
        let joined = match object.get("description").and_then(Value::as_str) {
            Some(text) => format!("{}\n\n{text}", title.as_str().unwrap_or_default()),
            None => title.as_str().unwrap_or_default().to_string(),
        };
        object.insert("description".into(), json!(joined));
    }
    if let Some(format) = object.get("format").and_then(Value::as_str) {
        let kubernetes = match format {
            "uint8" | "uint16" | "int8" | "int16" | "uint32" => Some("int32"),
            "uint64" | "uint" => Some("int64"),
            _ => None,
        };
        if let Some(k) = kubernetes {
            object.insert("format".into(), json!(k));
        }
    }
    for value in object.values_mut() {
        match value {
            Value::Object(_) => normalize(value),
            Value::Array(items) => items.iter_mut().for_each(normalize),
            _ => {}
        }
    }
}

/// Kubernetes inlines string enums into the fields that use them, with the values listed in
/// the field's description.
fn inline_enums(definitions: &mut Map<String, Value>) {
    let enums: Map<String, Value> = definitions
        .iter()
        .filter(|(_, s)| s.get("enum").is_some() && s.get("properties").is_none())
        .map(|(n, s)| (n.clone(), s.clone()))
        .collect();
    for name in enums.keys() {
        definitions.remove(name);
    }
    for schema in definitions.values_mut() {
        inline_enum_refs(schema, &enums);
    }
}

fn inline_enum_refs(schema: &mut Value, enums: &Map<String, Value>) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let target = object
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(REF_PREFIX))
        .and_then(|n| enums.get(n));
    if let Some(target) = target {
        object.remove("$ref");
        let values = target.get("x-drover-enum-values").and_then(Value::as_str);
        let own = object
            .get("description")
            .or_else(|| target.get("description"))
            .and_then(Value::as_str);
        let description = match (own, values) {
            (Some(own), Some(values)) => format!("{own}\n\n{values}"),
            (Some(own), None) => own.to_string(),
            (None, Some(values)) => values.to_string(),
            (None, None) => String::new(),
        };
        object.insert("type".into(), json!("string"));
        if let Some(e) = target.get("enum") {
            object.insert("enum".into(), e.clone());
        }
        if !description.is_empty() {
            object.insert("description".into(), json!(description));
        }
    }
    object.remove("x-drover-enum-values");
    for value in object.values_mut() {
        match value {
            Value::Object(_) => inline_enum_refs(value, enums),
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| inline_enum_refs(item, enums)),
            _ => {}
        }
    }
}

/// Rewrites `#/definitions/<Rust name>` into `#/definitions/<Kubernetes name>`.
fn rename_refs(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::String(r)) = object.get_mut("$ref") {
                if let Some(name) = r.strip_prefix(REF_PREFIX).and_then(k8s_name) {
                    *r = format!("{REF_PREFIX}{name}");
                }
            }
            object.values_mut().for_each(rename_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rename_refs),
        _ => {}
    }
}

fn property<'a>(
    definitions: &'a mut Map<String, Value>,
    definition: &str,
    field: &str,
) -> Option<&'a mut Map<String, Value>> {
    definitions
        .get_mut(definition)?
        .get_mut("properties")?
        .get_mut(field)?
        .as_object_mut()
}

/// What the types cannot say: group-version-kinds, merge keys, typed statuses, and the
/// metadata the server writes.
fn add_kubernetes_facts(definitions: &mut Map<String, Value>) {
    for r in RESOURCES {
        if let Some(Value::Object(kind)) = definitions.get_mut(r.kind) {
            kind.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": r.group, "version": r.version, "kind": r.kind}]),
            );
        }
    }
    for r in RESOURCES {
        if let Some(Value::Object(properties)) = definitions
            .get_mut(r.kind)
            .and_then(|k| k.get_mut("properties"))
        {
            if let Some(Value::Object(metadata)) = properties.get_mut("metadata") {
                metadata.insert("description".into(), json!(OBJECT_METADATA));
            }
            if let Some(Value::Object(spec)) = properties.get_mut("spec") {
                spec.insert(
                    "description".into(),
                    json!(format!("The desired state of the {}.", r.singular)),
                );
            }
        }
    }
    for (kind, text) in KIND_DESCRIPTIONS {
        if let Some(Value::Object(schema)) = definitions.get_mut(*kind) {
            schema.insert("description".into(), json!(text));
        }
    }
    for (kind, status) in STATUSES {
        if let Some(Value::Object(properties)) = definitions
            .get_mut(*kind)
            .and_then(|k| k.get_mut("properties"))
        {
            let mut field = reference(status);
            field["description"] = json!("Most recently observed status, written by Drover's controllers. Read-only: ignored on create and update.");
            properties.insert("status".into(), field);
        }
    }
    if let Some(Value::Object(properties)) = definitions
        .get_mut("ObjectMeta")
        .and_then(|m| m.get_mut("properties"))
    {
        properties.insert(
            "deletionTimestamp".into(),
            json!({"type": "string", "format": "date-time", "description": "When the object was asked to go; it stays until its pods have stopped. Written by the server."}),
        );
        properties.insert(
            "ownerReferences".into(),
            json!({"type": "array", "items": reference("OwnerReference"), "description": "Objects this one belongs to (a Job's pods, a DaemonSet's pods). Written by the server."}),
        );
    }
    for (definition, field, keys) in MERGE_KEYS {
        if let Some(list) = property(definitions, definition, field) {
            list.insert("x-kubernetes-patch-merge-key".into(), json!(keys[0]));
            list.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
            list.insert("x-kubernetes-list-type".into(), json!("map"));
            list.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
    }
}

/// `PodList` and friends.
fn list_schema(r: &Resource) -> Value {
    json!({
        "description": format!("A list of {}.", r.plural),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": format!("`{}`.", r.api_version())},
            "kind": {"type": "string", "description": format!("`{}`.", r.list_kind())},
            "metadata": {"$ref": format!("{REF_PREFIX}{META}.ListMeta"), "description": "List metadata."},
            "items": {"type": "array", "items": {"$ref": format!("{REF_PREFIX}{}", kind_definition(r))}, "description": format!("The {}.", r.plural)},
        },
        "x-kubernetes-group-version-kind": [{"group": r.group, "version": r.version, "kind": r.list_kind()}],
    })
}

/// Every `$ref` target in `schema`.
pub fn refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::String(r)) = object.get("$ref") {
                if let Some(name) = r.strip_prefix(REF_PREFIX) {
                    out.push(name.to_string());
                }
            }
            object.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}
