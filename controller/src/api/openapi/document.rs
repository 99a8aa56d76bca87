//! The OpenAPI documents: Swagger 2.0 (`/openapi/v2`, everything) and OpenAPI 3.0 (one per
//! group version), each the paths of [`super::paths`] around the definitions of
//! [`super::schemas`].

use serde_json::{json, Map, Value};

use super::paths::paths_of;
pub use super::paths::Flavor;
use super::schemas::{self, reference, META, REF_PREFIX};
use crate::api::discovery;
use crate::api::resources::{self, GROUP_VERSIONS};

fn info() -> Value {
    let version = discovery::version();
    json!({"title": "Drover", "version": version["gitVersion"]})
}

/// Rewrites neutral references for `flavor`. OpenAPI 3.0 ignores a `$ref`'s siblings, so
/// a field's description next to its reference goes into an `allOf`, as Kubernetes does.
fn finish(flavor: Flavor, value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(r)) = object.get_mut("$ref") {
                if let Some(name) = r.strip_prefix(REF_PREFIX) {
                    *r = match flavor {
                        Flavor::V2 => format!("#/definitions/{name}"),
                        Flavor::V3 => format!("#/components/schemas/{name}"),
                    };
                }
            }
            if flavor == Flavor::V3 && object.len() > 1 {
                if let Some(r) = object.remove("$ref") {
                    object.insert("allOf".into(), json!([{"$ref": r}]));
                }
            }
            object.values_mut().for_each(|v| finish(flavor, v));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| finish(flavor, v)),
        _ => {}
    }
}

/// `/openapi/v2`: every path and every definition.
pub fn v2(definitions: &Map<String, Value>) -> Value {
    let mut doc = json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths_of(Flavor::V2, resources::RESOURCES.iter()),
        "definitions": definitions,
    });
    finish(Flavor::V2, &mut doc);
    doc
}

/// The definitions `roots` need, transitively.
fn closure(definitions: &Map<String, Value>, roots: &Value) -> Map<String, Value> {
    let mut pending = Vec::new();
    schemas::refs(roots, &mut pending);
    let mut out = Map::new();
    while let Some(name) = pending.pop() {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(schema) = definitions.get(&name) {
            schemas::refs(schema, &mut pending);
            out.insert(name, schema.clone());
        }
    }
    out
}

/// The OpenAPI 3.0 document of one group version: its paths and the definitions they use.
pub fn v3(definitions: &Map<String, Value>, group: &'static str, version: &'static str) -> Value {
    let paths = Value::Object(paths_of(
        Flavor::V3,
        resources::in_group_version(group, version),
    ));
    let mut used = closure(definitions, &paths);
    // Every group version's document carries the meta types, as Kubernetes' do.
    for name in [
        "Status",
        "DeleteOptions",
        "WatchEvent",
        "ListMeta",
        "ObjectMeta",
    ] {
        let full = format!("{META}.{name}");
        let needed = closure(definitions, &reference(&full));
        used.extend(needed);
    }
    let mut doc = json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {"schemas": used},
    });
    finish(Flavor::V3, &mut doc);
    doc
}

/// `api/v1`, `apis/batch/v1`: the key of a group version in the v3 index.
pub fn v3_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Every served group version's (group, version).
pub fn group_versions() -> impl Iterator<Item = (&'static str, &'static str)> {
    GROUP_VERSIONS.iter().copied()
}
