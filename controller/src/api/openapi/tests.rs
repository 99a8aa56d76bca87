use serde_json::Value;

use super::document::v3_key;
use super::schemas::{kind_definition, list_definition};
use super::*;
use crate::api::resources::{Resource, GROUP_VERSIONS, RESOURCES};

fn v2_doc() -> Value {
    serde_json::from_str(&documents().v2.body).expect("v2 is JSON")
}

fn v3_doc(key: &str) -> Value {
    serde_json::from_str(&documents().v3[key].body).expect("v3 is JSON")
}

fn refs_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|v| refs_in(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

fn gvk_of(schema: &Value) -> Vec<(String, String, String)> {
    schema["x-kubernetes-group-version-kind"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                g["group"].as_str().unwrap_or("?").to_string(),
                g["version"].as_str().unwrap_or("?").to_string(),
                g["kind"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn gvk(r: &Resource, kind: &str) -> (String, String, String) {
    (r.group.into(), r.version.into(), kind.into())
}

#[test]
fn every_derived_definition_has_a_kubernetes_name() {
    for name in v2_doc()["definitions"]
        .as_object()
        .expect("definitions")
        .keys()
    {
        assert!(name.starts_with("io.k8s."), "{name} was not renamed");
    }
}

#[test]
fn every_served_kind_has_a_schema_with_its_gvk() {
    let v2 = v2_doc();
    for r in RESOURCES {
        let kind = &v2["definitions"][kind_definition(r)];
        assert_eq!(gvk_of(kind), [gvk(r, r.kind)], "{}", r.kind);
        assert!(kind["properties"]["metadata"].is_object(), "{}", r.kind);
        let list = &v2["definitions"][list_definition(r)];
        assert_eq!(gvk_of(list), [gvk(r, &r.list_kind())]);
        let v3 = v3_doc(&v3_key(r.group, r.version));
        let kind = &v3["components"]["schemas"][kind_definition(r)];
        assert_eq!(gvk_of(kind), [gvk(r, r.kind)], "v3 {}", r.kind);
    }
}

#[test]
fn every_ref_resolves() {
    let v2 = v2_doc();
    let mut refs = Vec::new();
    refs_in(&v2, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.strip_prefix("#/definitions/").expect("v2 ref prefix");
        assert!(v2["definitions"].get(name).is_some(), "v2: {r} dangles");
    }
    for key in documents().v3.keys() {
        let v3 = v3_doc(key);
        let mut refs = Vec::new();
        refs_in(&v3, &mut refs);
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("v3 ref prefix");
            assert!(
                v3["components"]["schemas"].get(name).is_some(),
                "{key}: {r} dangles"
            );
        }
    }
}

#[test]
fn v3_refs_have_no_siblings() {
    fn check(value: &Value) {
        match value {
            Value::Object(o) => {
                if o.contains_key("$ref") {
                    assert_eq!(o.len(), 1, "$ref with siblings: {value}");
                }
                o.values().for_each(check);
            }
            Value::Array(a) => a.iter().for_each(check),
            _ => {}
        }
    }
    for key in documents().v3.keys() {
        check(&v3_doc(key));
    }
}

#[test]
fn lists_with_merge_keys_say_so() {
    let v2 = v2_doc();
    let d = &v2["definitions"];
    for (definition, field, key) in [
        ("io.k8s.api.core.v1.PodSpec", "containers", "name"),
        ("io.k8s.api.core.v1.PodSpec", "volumes", "name"),
        ("io.k8s.api.core.v1.Container", "env", "name"),
        ("io.k8s.api.core.v1.Container", "ports", "containerPort"),
        ("io.k8s.api.core.v1.Container", "volumeMounts", "mountPath"),
    ] {
        let list = &d[definition]["properties"][field];
        assert_eq!(list["x-kubernetes-patch-merge-key"], key, "{field}");
        assert_eq!(list["x-kubernetes-patch-strategy"], "merge", "{field}");
        assert_eq!(list["x-kubernetes-list-type"], "map", "{field}");
        assert_eq!(list["x-kubernetes-list-map-keys"], serde_json::json!([key]));
        // A list-map key must always be present.
        let item = list["items"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/definitions/"))
            .expect("item ref");
        let required = d[item]["required"].as_array().expect("required");
        assert!(required.contains(&serde_json::json!(key)), "{item}.{key}");
    }
}

#[test]
fn statuses_and_descriptions_come_through() {
    let v2 = v2_doc();
    let d = &v2["definitions"];
    let status = &d["io.k8s.api.batch.v1.Job"]["properties"]["status"];
    assert_eq!(
        status["$ref"],
        "#/definitions/io.k8s.api.batch.v1.JobStatus"
    );
    let job_status = &d["io.k8s.api.batch.v1.JobStatus"]["properties"];
    for field in [
        "active",
        "succeeded",
        "failed",
        "conditions",
        "completionTime",
    ] {
        assert!(job_status[field]["description"].is_string(), "{field}");
    }
    let image = &d["io.k8s.api.core.v1.Container"]["properties"]["image"];
    assert_eq!(image["type"], "string");
    assert!(image["description"]
        .as_str()
        .is_some_and(|t| t.contains("Image")));
    // String enums are inlined, values listed as Kubernetes lists them.
    let policy = &d["io.k8s.api.core.v1.PodSpec"]["properties"]["restartPolicy"];
    assert_eq!(
        policy["enum"],
        serde_json::json!(["Always", "OnFailure", "Never"])
    );
    assert!(policy["description"]
        .as_str()
        .is_some_and(|t| t.contains("Possible enum values")));
    // Unknown fields are rejected, and the schema says so.
    assert_eq!(
        d["io.k8s.api.core.v1.PodSpec"]["additionalProperties"],
        false
    );
    let quantity = &d["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"];
    assert_eq!(
        quantity["additionalProperties"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"
    );
}

#[test]
fn v3_index_lists_exactly_the_served_group_versions() {
    let index: Value = serde_json::from_str(&documents().v3_index.body).expect("JSON");
    let mut listed: Vec<&String> = index["paths"].as_object().expect("paths").keys().collect();
    listed.sort();
    let mut served: Vec<String> = GROUP_VERSIONS.iter().map(|(g, v)| v3_key(g, v)).collect();
    served.sort();
    assert_eq!(listed, served.iter().collect::<Vec<_>>());
    for (key, entry) in index["paths"].as_object().expect("paths") {
        let url = entry["serverRelativeURL"].as_str().expect("url");
        assert_eq!(
            url,
            format!("/openapi/v3/{key}?hash={}", documents().v3[key].hash)
        );
    }
}

/// kubectl's `--validate=strict` delegates to the server when the PATCH operation of the
/// kind's group version document takes `fieldValidation` (cli-runtime's
/// `supportsQueryParamV3`); apply's strategic merge needs that content type.
#[test]
fn every_patch_operation_takes_field_validation_and_strategic_merge() {
    for r in RESOURCES {
        let v3 = v3_doc(&v3_key(r.group, r.version));
        let mut found = false;
        for (path, item) in v3["paths"].as_object().expect("paths") {
            let Some(patch) = item.get("patch") else {
                continue;
            };
            let g = &patch["x-kubernetes-group-version-kind"];
            if g["kind"] != r.kind || g["group"] != r.group || g["version"] != r.version {
                continue;
            }
            found = true;
            let params = patch["parameters"].as_array().expect("parameters");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
                "{path}"
            );
            assert!(
                patch["requestBody"]["content"]["application/strategic-merge-patch+json"]
                    .is_object(),
                "{path}"
            );
        }
        assert_eq!(found, r.allows("patch"), "{}", r.kind);
    }
}

#[test]
fn paths_are_kubernetes_paths_with_actions() {
    let core = v3_doc("api/v1");
    let pods = &core["paths"]["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(pods["get"]["x-kubernetes-action"], "list");
    assert_eq!(pods["post"]["x-kubernetes-action"], "post");
    assert_eq!(
        pods["get"]["x-kubernetes-group-version-kind"]["kind"],
        "Pod"
    );
    let post_params = pods["post"]["parameters"].as_array().expect("params");
    assert!(post_params.iter().any(|p| p["name"] == "fieldValidation"));
    assert!(core["paths"]["/api/v1/nodes/{name}"]["get"].is_object());
    assert!(core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"].is_object());
    assert!(core["paths"]["/api/v1/pods"]["get"].is_object());
    let batch = v3_doc("apis/batch/v1");
    assert!(
        batch["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status"]["patch"]
            .is_object()
    );
    // Each document holds its own group version's paths only.
    assert!(batch["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .all(|p| p.starts_with("/apis/batch/v1/")));
    // Read-only resources have no writing operations.
    let events = &core["paths"]["/api/v1/namespaces/{namespace}/events"];
    assert!(events["get"].is_object() && events.get("post").is_none());
}

#[test]
fn accept_negotiation_answers_json_or_406() {
    let mut headers = HeaderMap::new();
    assert!(accepts_json(&headers));
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
    );
    assert!(!accepts_json(&headers));
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static(
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf, application/json;q=0.9",
        ),
    );
    assert!(accepts_json(&headers));
    let response = serve(&headers, &documents().v2, false);
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[header::ETAG].clone();
    headers.insert(header::IF_NONE_MATCH, etag);
    assert_eq!(
        serve(&headers, &documents().v2, false).status(),
        StatusCode::NOT_MODIFIED
    );
}

#[test]
fn documents_are_generated_once() {
    assert!(std::ptr::eq(documents(), documents()));
}

/// `kubectl explain` prints descriptions; a field without one is a doc comment missing.
#[test]
fn every_field_is_described() {
    let v2 = v2_doc();
    for (name, schema) in v2["definitions"].as_object().expect("definitions") {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{name}.{field} has no description"
            );
        }
    }
}

/// Follows a field path the way kubectl's `PatchMetaFromOpenAPIV3` does: a property, then
/// its first `allOf` entry, then its `$ref` in `components.schemas`; list items likewise.
#[test]
fn strategic_merge_metadata_is_reachable_as_kubectl_walks_v3() {
    fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
        if let Some(first) = schema["allOf"].get(0) {
            schema = first;
        }
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .expect("v3 ref prefix");
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }
    for (key, kind, path, list, merge_key) in [
        (
            "api/v1",
            "io.k8s.api.core.v1.Pod",
            &["spec"][..],
            "containers",
            "name",
        ),
        (
            "apis/batch/v1",
            "io.k8s.api.batch.v1.Job",
            &["spec", "template", "spec"][..],
            "volumes",
            "name",
        ),
        (
            "apis/apps/v1",
            "io.k8s.api.apps.v1.DaemonSet",
            &["spec", "template", "spec", "containers[]"][..],
            "env",
            "name",
        ),
        (
            "apis/batch/v1",
            "io.k8s.api.batch.v1.CronJob",
            &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers[]",
            ][..],
            "volumeMounts",
            "mountPath",
        ),
    ] {
        let doc = v3_doc(key);
        let mut schema = &doc["components"]["schemas"][kind];
        for step in path {
            match step.strip_suffix("[]") {
                Some(field) => {
                    let items = &resolve(&doc, schema)["properties"][field]["items"];
                    schema = resolve(&doc, items);
                }
                None => schema = resolve(&doc, &resolve(&doc, schema)["properties"][*step]),
            }
            assert!(schema.is_object(), "{kind}: {step} not found");
        }
        let field = &schema["properties"][list];
        assert_eq!(
            field["x-kubernetes-patch-merge-key"], merge_key,
            "{kind} {list}"
        );
        assert_eq!(
            field["x-kubernetes-patch-strategy"], "merge",
            "{kind} {list}"
        );
    }
}
