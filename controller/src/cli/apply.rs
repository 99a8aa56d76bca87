//! `drover apply -f`: manifests are parsed here (so errors point at `file:line:col`), then
//! every object is sent as a server-side apply (field manager `drover`, taking over fields
//! others set), so re-applying a file changes only what the file names: what other writers
//! added (a `kubectl rollout restart` annotation, a label) stays. Every write is first sent
//! as a dry run, so a call whose objects the server would refuse stores none of them.

use std::collections::HashSet;

use anyhow::bail;
use drover_proto::manifest::{parse_manifests_warned, Manifest, ManifestWarning};
use serde_json::{json, Value};

use super::{read_manifest_files, resource, Client};
use crate::api::resources::Resource;

/// The field manager `drover apply` writes as.
pub const FIELD_MANAGER: &str = "drover";

/// What applying one object did, as kubectl words it.
pub fn outcome(before: Option<&Value>, after: &Value) -> &'static str {
    let Some(before) = before else {
        return "created";
    };
    // Who manages a field, the version a write brings and the status controllers keep
    // changing meanwhile are not changes the file made.
    let visible = |object: &Value| {
        let mut object = object.clone();
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("managedFields");
            metadata.remove("resourceVersion");
        }
        if let Some(object) = object.as_object_mut() {
            object.remove("status");
        }
        object
    };
    if visible(before) == visible(after) {
        "unchanged"
    } else {
        "configured"
    }
}

/// The object a manifest describes, as the API takes it.
pub fn desired_object(manifest: &Manifest) -> Value {
    let kind = manifest.kind();
    let mut metadata = serde_json::to_value(manifest.metadata()).unwrap_or_else(|_| json!({}));
    metadata["namespace"] = json!(manifest.namespace());
    if !kind.namespaced() {
        if let Some(m) = metadata.as_object_mut() {
            m.remove("namespace");
        }
    }
    json!({
        "apiVersion": kind.api_version(),
        "kind": kind.as_str(),
        "metadata": metadata,
        "spec": manifest.spec_json(),
    })
}

/// Every manifest of the files, or every error found in them. What `get -o yaml` printed
/// applies again, as with kubectl: a `List` is its items, and the metadata, status and
/// defaults the server fills in are left to the server.
pub fn parse_files(paths: &[String]) -> anyhow::Result<Vec<Manifest>> {
    parse_files_warned(paths).map(|(manifests, _)| manifests)
}

/// [`parse_files`], with the fields the manifests set that Drover accepts and ignores.
fn parse_files_warned(paths: &[String]) -> anyhow::Result<(Vec<Manifest>, Vec<ManifestWarning>)> {
    let mut manifests = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for (source, text) in read_manifest_files(paths)? {
        match parse_manifests_warned(&source, &text, crate::control::as_manifest) {
            Ok((m, w)) => {
                manifests.extend(m);
                warnings.extend(w);
            }
            Err(e) => errors.extend(e.into_iter().map(|e| e.to_string())),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok((manifests, warnings))
}

struct Plan {
    resource: &'static Resource,
    namespace: String,
    name: String,
    body: Value,
    before: Option<Value>,
}

fn send(client: &Client, plan: &Plan, dry_run: bool) -> anyhow::Result<Value> {
    let mut query = vec![("fieldManager", FIELD_MANAGER), ("force", "true")];
    if dry_run {
        query.push(("dryRun", "All"));
    }
    let path = resource::object(plan.resource, &plan.namespace, &plan.name);
    client.patch_query(&path, "application/apply-patch+yaml", &query, &plan.body)
}

/// Who wrote the fields of an object before `drover apply` applied server-side: its creates
/// and updates carried no field manager (`unknown`), and an object older than managed
/// fields is credited to `before-first-apply`.
const EARLIER_WRITERS: &[&str] = &["unknown", "before-first-apply"];

/// Makes `drover` the applier of what earlier `drover apply` calls wrote, once, so that a
/// field removed from the file is removed from the object (and a pod whose file changed
/// is refused rather than left as it was). Done before the dry run, which then sees what
/// the apply will do; it changes only who owns what. Guarded by the resourceVersion just
/// read: the controller's own status writes may come between, so it reads and tries again,
/// a few times. Returns the object as it then is.
fn hand_over_fields(client: &Client, path: &str) -> anyhow::Result<Option<Value>> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let Some(before) = client.get_if_exists(path)? else {
            return Ok(None);
        };
        let Some(fields) =
            crate::api::patch::upgrade::hand_over(&before, EARLIER_WRITERS, FIELD_MANAGER)
        else {
            return Ok(Some(before));
        };
        let patch = json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": before["metadata"]["resourceVersion"]},
            {"op": "replace", "path": "/metadata/managedFields", "value": fields},
        ]);
        match client.patch(path, "application/json-patch+json", &patch) {
            Ok(_) => return Ok(Some(before)),
            Err(_) if attempt < ATTEMPTS => continue,
            Err(e) => {
                return Err(e.context(format!(
                    "{path} kept changing while drover apply took over the fields it wrote before; apply again"
                )))
            }
        }
    }
    Ok(None)
}

/// `drover apply -f`.
pub fn apply(client: &Client, paths: &[String]) -> anyhow::Result<()> {
    let (manifests, warnings) = parse_files_warned(paths)?;
    // As kubectl prints the server's warnings; these also name file, line and column.
    for warning in warnings {
        eprintln!("Warning: {warning}");
    }
    let mut seen = HashSet::new();
    for m in &manifests {
        if !seen.insert((m.kind(), m.namespace().to_string(), m.name().to_string())) {
            bail!("{} \"{}\" appears more than once", m.kind(), m.name());
        }
    }
    let mut plans = Vec::with_capacity(manifests.len());
    for manifest in &manifests {
        let resource = resource::of_kind(manifest.kind().as_str())?;
        let namespace = manifest.namespace().to_string();
        let name = manifest.name().to_string();
        let before = hand_over_fields(client, &resource::object(resource, &namespace, &name))?;
        plans.push(Plan {
            resource,
            namespace,
            name,
            body: desired_object(manifest),
            before,
        });
    }
    for plan in &plans {
        send(client, plan, true)?;
    }
    for plan in &plans {
        let after = send(client, plan, false)?;
        println!(
            "{} {}",
            resource::short_ref(plan.resource, &plan.name),
            outcome(plan.before.as_ref(), &after)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(labels: Value, memory: &str, version: &str, managers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "d", "namespace": "default", "labels": labels,
                            "resourceVersion": version, "managedFields": managers},
               "spec": {"template": {"spec": {"memory": memory}}}})
    }

    #[test]
    fn an_object_is_created_configured_or_unchanged() {
        let before = ds(json!({"app": "a"}), "16Mi", "3", json!([]));
        assert_eq!(outcome(None, &before), "created");
        let mut managed = ds(
            json!({"app": "a"}),
            "16Mi",
            "4",
            json!([{"manager": FIELD_MANAGER}]),
        );
        managed["status"] = json!({"numberReady": 1});
        assert_eq!(
            outcome(Some(&before), &managed),
            "unchanged",
            "a new field manager or status alone is no change"
        );
        for after in [
            ds(json!({"app": "b"}), "16Mi", "4", json!([])),
            ds(json!({"app": "a"}), "32Mi", "4", json!([])),
        ] {
            assert_eq!(outcome(Some(&before), &after), "configured");
        }
    }

    /// Objects as `get -o yaml` prints them: server metadata, status and shown defaults.
    fn exported() -> Vec<Value> {
        let server_metadata = json!({
            "uid": "u", "resourceVersion": "9", "generation": 1,
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "managedFields": [{"manager": "drover", "operation": "Update", "fieldsV1": {"f:spec": {}}}],
        });
        let with_metadata = |mut object: Value| {
            for (key, value) in server_metadata.as_object().unwrap() {
                object["metadata"][key] = value.clone();
            }
            let kind = object["kind"].as_str().unwrap().to_string();
            crate::control::show_defaults(&kind, &mut object);
            object
        };
        let pod = with_metadata(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "pi-x7k2p", "namespace": "default", "labels": {"job-name": "pi"},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi",
                                              "uid": "j", "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"containers": [{"name": "pi", "command": ["sh", "-c", "echo 3.14"]}],
                     "nodeName": "pi-1", "restartPolicy": "Never"},
            "status": {"phase": "Succeeded", "startTime": "2026-12-01T10:00:01Z"}}));
        let job = with_metadata(json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "command": ["true"]}],
                                           "restartPolicy": "Never"}}},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}));
        vec![pod, job]
    }

    #[test]
    fn a_listing_printed_by_get_o_yaml_applies_as_its_items() {
        let list = super::super::get::as_kubectl_list(&json!({"items": exported()}), "v1", "Pod");
        let text = super::super::yaml::to_yaml(&list).unwrap();
        let manifests = drover_proto::manifest::parse_manifests_with(
            "list.yaml",
            &text,
            crate::control::as_manifest,
        )
        .unwrap();
        let names: Vec<&str> = manifests.iter().map(Manifest::name).collect();
        assert_eq!(names, ["pi-x7k2p", "pi"]);
    }
}
