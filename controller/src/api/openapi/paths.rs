//! Kubernetes' paths and operations for each served resource: one operation per verb the
//! resource table lists, with `x-kubernetes-action`, `x-kubernetes-group-version-kind` and
//! the query parameters kubectl looks for (`fieldValidation` on writes).

use serde_json::{json, Map, Value};

use super::schemas::{kind_definition, list_definition, reference, META};
use crate::api::resources::{Resource, Subresource};

/// Which OpenAPI a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Swagger 2.0.
    V2,
    /// OpenAPI 3.0.
    V3,
}

/// The content types of patch bodies the API takes.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// A request body's schema and the content types it comes in.
type Body = Option<(Value, &'static [&'static str])>;

/// Where a parameter goes and what it is.
struct Param {
    name: &'static str,
    location: &'static str,
    kind: &'static str,
    description: &'static str,
}

const fn query(name: &'static str, kind: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        kind,
        description,
    }
}

const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', the output is pretty printed.",
);
const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "`All`: validate and answer as if done, but change nothing.",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "Name of the actor making the change (server-side apply's field owner).",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "`Ignore`, `Warn` or `Strict`: what to do with unknown or duplicate fields.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Server-side apply: take over fields other managers own.",
);
const LIST_PARAMS: &[Param] = &[
    query(
        "allowWatchBookmarks",
        "boolean",
        "Watch: send BOOKMARK events.",
    ),
    query(
        "continue",
        "string",
        "The `continue` token of the previous page.",
    ),
    query(
        "fieldSelector",
        "string",
        "Select objects by fields (`metadata.name`, `metadata.namespace`, `spec.nodeName`, `status.phase`).",
    ),
    query("labelSelector", "string", "Select objects by labels."),
    query("limit", "integer", "Most objects in one page."),
    query(
        "resourceVersion",
        "string",
        "List or watch from this version of the store.",
    ),
    query(
        "resourceVersionMatch",
        "string",
        "How `resourceVersion` applies to a list (`NotOlderThan`, `Exact`).",
    ),
    query(
        "sendInitialEvents",
        "boolean",
        "Watch: start with the current objects as ADDED events.",
    ),
    query(
        "timeoutSeconds",
        "integer",
        "Timeout of the list or watch call.",
    ),
    query(
        "watch",
        "boolean",
        "Stream changes as WatchEvents instead of listing.",
    ),
];
const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    query(
        "gracePeriodSeconds",
        "integer",
        "Seconds before the pods are killed; 0 deletes at once.",
    ),
    query(
        "propagationPolicy",
        "string",
        "`Orphan`, `Background` or `Foreground`: what happens to owned objects.",
    ),
];

fn param_json(flavor: Flavor, p: &Param) -> Value {
    let mut v = json!({"name": p.name, "in": p.location, "description": p.description});
    if p.location == "path" {
        v["required"] = json!(true);
    }
    match flavor {
        Flavor::V2 => {
            v["type"] = json!(p.kind);
            v["uniqueItems"] = json!(true);
        }
        Flavor::V3 => v["schema"] = json!({"type": p.kind, "uniqueItems": true}),
    }
    v
}

fn path_param(name: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "path",
        kind: "string",
        description,
    }
}

/// One operation under construction.
struct Operation {
    id: String,
    action: &'static str,
    description: String,
    gvk: (&'static str, &'static str, String),
    params: Vec<Value>,
    body: Body,
    response: (u16, Value, &'static str),
}

impl Operation {
    fn to_json(&self, flavor: Flavor, tag: &str) -> Value {
        let (group, version, kind) = &self.gvk;
        let (code, schema, media) = &self.response;
        let mut op = json!({
            "description": self.description,
            "operationId": self.id,
            "tags": [tag],
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
        });
        let mut params = self.params.clone();
        match flavor {
            Flavor::V2 => {
                if let Some((body, consumes)) = &self.body {
                    params.push(
                        json!({"name": "body", "in": "body", "required": true, "schema": body}),
                    );
                    op["consumes"] = json!(consumes);
                }
                op["produces"] = json!([media]);
                op["schemes"] = json!(["https"]);
                op["responses"] = json!({
                    code.to_string(): {"description": "OK", "schema": schema},
                    "401": {"description": "Unauthorized"},
                });
            }
            Flavor::V3 => {
                if let Some((body, consumes)) = &self.body {
                    let content: Map<String, Value> = consumes
                        .iter()
                        .map(|c| ((*c).to_string(), json!({"schema": body})))
                        .collect();
                    op["requestBody"] = json!({"content": content, "required": true});
                }
                op["responses"] = json!({
                    code.to_string(): {"description": "OK", "content": {*media: {"schema": schema}}},
                    "401": {"description": "Unauthorized"},
                });
            }
        }
        op["parameters"] = Value::Array(params);
        op
    }
}

/// `CoreV1`, `BatchV1`, `AppsV1`: the group version in operation ids.
fn id_infix(r: &Resource) -> String {
    let group = if r.group.is_empty() { "core" } else { r.group };
    format!("{}{}", capitalize(group), capitalize(r.version))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_uppercase().to_string() + chars.as_str()
    })
}

/// `core_v1`, `batch_v1`: the tag of a group version's operations.
fn tag(r: &Resource) -> String {
    let group = if r.group.is_empty() { "core" } else { r.group };
    format!("{group}_{}", r.version)
}

fn with_common(flavor: Flavor, extra: &[&Param]) -> Vec<Value> {
    extra.iter().map(|p| param_json(flavor, p)).collect()
}

/// Every path of one resource, operations keyed by method.
fn resource_paths(flavor: Flavor, r: &Resource) -> Vec<(String, Map<String, Value>)> {
    let kind = || (r.group, r.version, r.kind.to_string());
    let infix = id_infix(r);
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let collection = if r.namespaced {
        format!(
            "{}/namespaces/{{namespace}}/{}",
            r.group_version_path(),
            r.plural
        )
    } else {
        format!("{}/{}", r.group_version_path(), r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let namespace = path_param("namespace", "The object's namespace.");
    let name = path_param("name", "The object's name.");
    let scope_params = |with_name: bool| {
        let mut p = Vec::new();
        if with_name {
            p.push(param_json(flavor, &name));
        }
        if r.namespaced {
            p.push(param_json(flavor, &namespace));
        }
        p.push(param_json(flavor, &PRETTY));
        p
    };
    let object = reference(&kind_definition(r));
    let list = reference(&list_definition(r));
    let status = reference(&format!("{META}.Status"));
    let write = with_common(flavor, &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION]);
    let patch = with_common(
        flavor,
        &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE],
    );
    let list_params: Vec<Value> = LIST_PARAMS.iter().map(|p| param_json(flavor, p)).collect();
    let delete_params: Vec<Value> = DELETE_PARAMS
        .iter()
        .map(|p| param_json(flavor, p))
        .collect();
    let concat = |a: Vec<Value>, b: &[Value]| a.into_iter().chain(b.iter().cloned()).collect();
    let tag = tag(r);

    let mut out = Vec::new();
    let mut ops = Map::new();
    if r.allows("list") {
        let op = Operation {
            id: format!("list{infix}{scope}{}", r.kind),
            action: "list",
            description: format!("list or watch {}", r.plural),
            gvk: kind(),
            params: concat(scope_params(false), &list_params),
            body: None,
            response: (200, list.clone(), "application/json"),
        };
        ops.insert("get".into(), op.to_json(flavor, &tag));
    }
    if r.allows("create") {
        let op = Operation {
            id: format!("create{infix}{scope}{}", r.kind),
            action: "post",
            description: format!("create a {}", r.singular),
            gvk: kind(),
            params: concat(scope_params(false), &write),
            body: Some((object.clone(), &["*/*"])),
            response: (201, object.clone(), "application/json"),
        };
        ops.insert("post".into(), op.to_json(flavor, &tag));
    }
    if r.allows("deletecollection") {
        let op = Operation {
            id: format!("deletecollection{infix}{scope}{}", r.kind),
            action: "deletecollection",
            description: format!("delete a collection of {}", r.plural),
            gvk: kind(),
            params: concat(concat(scope_params(false), &list_params), &delete_params),
            body: None,
            response: (200, status.clone(), "application/json"),
        };
        ops.insert("delete".into(), op.to_json(flavor, &tag));
    }
    if !ops.is_empty() {
        out.push((collection.clone(), std::mem::take(&mut ops)));
    }

    if r.allows("get") {
        let op = Operation {
            id: format!("read{infix}{scope}{}", r.kind),
            action: "get",
            description: format!("read the specified {}", r.singular),
            gvk: kind(),
            params: scope_params(true),
            body: None,
            response: (200, object.clone(), "application/json"),
        };
        ops.insert("get".into(), op.to_json(flavor, &tag));
    }
    if r.allows("update") {
        let op = Operation {
            id: format!("replace{infix}{scope}{}", r.kind),
            action: "put",
            description: format!("replace the specified {}", r.singular),
            gvk: kind(),
            params: concat(scope_params(true), &write),
            body: Some((object.clone(), &["*/*"])),
            response: (200, object.clone(), "application/json"),
        };
        ops.insert("put".into(), op.to_json(flavor, &tag));
    }
    if r.allows("patch") {
        let op = Operation {
            id: format!("patch{infix}{scope}{}", r.kind),
            action: "patch",
            description: format!("partially update the specified {}", r.singular),
            gvk: kind(),
            params: concat(scope_params(true), &patch),
            body: Some((reference(&format!("{META}.Patch")), PATCH_TYPES)),
            response: (200, object.clone(), "application/json"),
        };
        ops.insert("patch".into(), op.to_json(flavor, &tag));
    }
    if r.allows("delete") {
        let op = Operation {
            id: format!("delete{infix}{scope}{}", r.kind),
            action: "delete",
            description: format!("delete a {}", r.singular),
            gvk: kind(),
            params: concat(scope_params(true), &delete_params),
            body: None,
            response: (200, status.clone(), "application/json"),
        };
        ops.insert("delete".into(), op.to_json(flavor, &tag));
    }
    if !ops.is_empty() {
        out.push((item.clone(), std::mem::take(&mut ops)));
    }

    if r.namespaced && r.allows("list") {
        let op = Operation {
            id: format!("list{infix}{}ForAllNamespaces", r.kind),
            action: "list",
            description: format!("list or watch {} of every namespace", r.plural),
            gvk: kind(),
            params: concat(vec![param_json(flavor, &PRETTY)], &list_params),
            body: None,
            response: (200, list.clone(), "application/json"),
        };
        ops.insert("get".into(), op.to_json(flavor, &tag));
        out.push((
            format!("{}/{}", r.group_version_path(), r.plural),
            std::mem::take(&mut ops),
        ));
    }

    for sub in r.subresources {
        out.push((
            format!("{item}/{}", sub.name),
            subresource_ops(flavor, r, sub, &tag, &scope_params(true), &write, &patch),
        ));
    }
    out
}

fn subresource_ops(
    flavor: Flavor,
    r: &Resource,
    sub: &Subresource,
    tag: &str,
    scope: &[Value],
    write: &[Value],
    patch: &[Value],
) -> Map<String, Value> {
    let infix = id_infix(r);
    let scope_word = if r.namespaced { "Namespaced" } else { "" };
    let suffix = capitalize(sub.name);
    let object = reference(&kind_definition(r));
    let with = |extra: &[Value]| -> Vec<Value> { scope.iter().chain(extra).cloned().collect() };
    let gvk = (r.group, r.version, r.kind.to_string());
    let mut ops = Map::new();
    match sub.name {
        "log" => {
            let mut params = with(&[]);
            for (name, kind, description) in [
                ("container", "string", "The container whose log to read."),
                ("follow", "boolean", "Stream the log as it grows."),
                ("previous", "boolean", "The previous run's log."),
                ("tailLines", "integer", "Only the last lines."),
                ("sinceSeconds", "integer", "Only lines this recent."),
                ("timestamps", "boolean", "Prefix each line with its time."),
            ] {
                params.push(param_json(flavor, &query(name, kind, description)));
            }
            let op = Operation {
                id: format!("read{infix}{scope_word}{}{suffix}", r.kind),
                action: "get",
                description: format!("read the log of the specified {}", r.singular),
                gvk,
                params,
                body: None,
                response: (200, json!({"type": "string"}), "text/plain"),
            };
            ops.insert("get".into(), op.to_json(flavor, tag));
        }
        "eviction" => {
            let eviction = reference("io.k8s.api.policy.v1.Eviction");
            let op = Operation {
                id: format!("create{infix}{scope_word}{}{suffix}", r.kind),
                action: "post",
                description: format!("create eviction of a {}", r.singular),
                gvk: ("policy", "v1", "Eviction".into()),
                params: with(write),
                body: Some((eviction.clone(), &["*/*"])),
                response: (201, eviction, "application/json"),
            };
            ops.insert("post".into(), op.to_json(flavor, tag));
        }
        _ => {
            for verb in sub.verbs {
                let (method, action, id_verb, params, body): (&str, &str, &str, Vec<Value>, Body) =
                    match *verb {
                        "get" => ("get", "get", "read", with(&[]), None),
                        "update" => (
                            "put",
                            "put",
                            "replace",
                            with(write),
                            Some((object.clone(), &["*/*"])),
                        ),
                        "patch" => (
                            "patch",
                            "patch",
                            "patch",
                            with(patch),
                            Some((reference(&format!("{META}.Patch")), PATCH_TYPES)),
                        ),
                        _ => continue,
                    };
                let op = Operation {
                    id: format!("{id_verb}{infix}{scope_word}{}{suffix}", r.kind),
                    action,
                    description: format!("{id_verb} {} of the specified {}", sub.name, r.singular),
                    gvk: gvk.clone(),
                    params,
                    body,
                    response: (200, object.clone(), "application/json"),
                };
                ops.insert(method.into(), op.to_json(flavor, tag));
            }
        }
    }
    ops
}

pub fn paths_of<'a>(
    flavor: Flavor,
    served: impl Iterator<Item = &'a Resource>,
) -> Map<String, Value> {
    let mut paths = Map::new();
    for r in served {
        for (path, ops) in resource_paths(flavor, r) {
            paths.insert(path, Value::Object(ops));
        }
    }
    paths
}
