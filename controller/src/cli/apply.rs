//! `drover apply -f`: manifests are parsed here (so errors point at `file:line:col`), then
//! every object is created or updated through the Kubernetes API. Every write is first sent
//! as a dry run, so a call whose objects the server would refuse stores none of them.

use std::collections::HashSet;

use anyhow::bail;
use drover_proto::manifest::{parse_manifests_with, Manifest};
use serde_json::{json, Value};

use super::{read_manifest_files, resource, Client};
use crate::api::resources::Resource;

/// What applying one object does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// It does not exist: POST this body.
    Create(Value),
    /// It exists with the same spec, labels and annotations.
    Unchanged,
    /// It exists and differs: PUT this body (the stored object with the new spec, labels and
    /// annotations, and its resourceVersion, so a concurrent change is a conflict).
    Update(Value),
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

/// A map field that may be absent, `null` or `{}`: all mean "none".
fn map_field(value: &Value) -> Value {
    match value {
        Value::Object(m) if !m.is_empty() => value.clone(),
        _ => json!({}),
    }
}

/// `spec` as the server shows it once stored: with the defaults Kubernetes shows (a Job's
/// generated selector, a DaemonSet's update strategy, …), so that what the user left out
/// and the server filled in is no difference.
fn with_defaults(desired: &Value, spec: &Value, existing: &Value) -> Value {
    let mut object = json!({
        "metadata": {"uid": existing["metadata"]["uid"], "name": existing["metadata"]["name"]},
        "spec": spec,
    });
    let kind = desired["kind"].as_str().unwrap_or_default();
    crate::control::show_defaults(kind, &mut object);
    object["spec"].take()
}

/// Compares what the user wrote with what is stored. Errors when a pod's spec would change:
/// Drover never updates a running pod's spec.
pub fn decide(desired: &Value, existing: Option<&Value>) -> Result<Action, String> {
    let Some(existing) = existing else {
        return Ok(Action::Create(desired.clone()));
    };
    let mut spec = desired["spec"].clone();
    if desired["kind"] == "Pod" {
        // The scheduler's binding is not part of what the user wrote.
        if spec.get("nodeName").is_none() {
            if let (Some(node), Some(map)) =
                (existing["spec"].get("nodeName"), spec.as_object_mut())
            {
                map.insert("nodeName".into(), node.clone());
            }
        }
        if with_defaults(desired, &spec, existing) != existing["spec"] {
            return Err(format!(
                "Pod \"{}\": the spec of a pod cannot change once it is created; delete the pod and apply it again",
                desired["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    let labels = map_field(&desired["metadata"]["labels"]);
    let annotations = map_field(&desired["metadata"]["annotations"]);
    if with_defaults(desired, &spec, existing) == existing["spec"]
        && labels == map_field(&existing["metadata"]["labels"])
        && annotations == map_field(&existing["metadata"]["annotations"])
    {
        return Ok(Action::Unchanged);
    }
    let mut updated = existing.clone();
    if let Some(map) = updated.as_object_mut() {
        map.remove("status");
    }
    updated["spec"] = spec;
    updated["metadata"]["labels"] = labels;
    updated["metadata"]["annotations"] = annotations;
    Ok(Action::Update(updated))
}

/// Every manifest of the files, or every error found in them. What `get -o yaml` printed
/// applies again, as with kubectl: a `List` is its items, and the metadata, status and
/// defaults the server fills in are left to the server.
pub fn parse_files(paths: &[String]) -> anyhow::Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    for (source, text) in read_manifest_files(paths)? {
        match parse_manifests_with(&source, &text, crate::control::as_manifest) {
            Ok(m) => manifests.extend(m),
            Err(e) => errors.extend(e.into_iter().map(|e| e.to_string())),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(manifests)
}

struct Plan {
    resource: &'static Resource,
    namespace: String,
    name: String,
    action: Action,
}

fn send(client: &Client, plan: &Plan, query: &[(&str, &str)]) -> anyhow::Result<()> {
    match &plan.action {
        Action::Create(body) => {
            let path = resource::collection(plan.resource, Some(&plan.namespace));
            client.post_query(&path, query, body)?;
        }
        Action::Update(body) => {
            let path = resource::object(plan.resource, &plan.namespace, &plan.name);
            client.put(&path, query, body)?;
        }
        Action::Unchanged => {}
    }
    Ok(())
}

/// `drover apply -f`.
pub fn apply(client: &Client, paths: &[String]) -> anyhow::Result<()> {
    let manifests = parse_files(paths)?;
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
        let existing = client.get_if_exists(&resource::object(resource, &namespace, &name))?;
        let action =
            decide(&desired_object(manifest), existing.as_ref()).map_err(anyhow::Error::msg)?;
        plans.push(Plan {
            resource,
            namespace,
            name,
            action,
        });
    }
    for plan in &plans {
        send(client, plan, &[("dryRun", "All")])?;
    }
    for plan in &plans {
        send(client, plan, &[])?;
        let result = match plan.action {
            Action::Create(_) => "created",
            Action::Update(_) => "configured",
            Action::Unchanged => "unchanged",
        };
        println!(
            "{} {result}",
            resource::short_ref(plan.resource, &plan.name)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(labels: Value, memory: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "d", "namespace": "default", "labels": labels},
               "spec": {"template": {"spec": {"memory": memory}}}})
    }

    /// The object as the server shows it: its metadata, status and defaults added.
    fn stored(mut object: Value) -> Value {
        object["metadata"]["resourceVersion"] = json!("12");
        object["metadata"]["uid"] = json!("u");
        object["status"] = json!({"numberReady": 1});
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        crate::control::show_defaults(&kind, &mut object);
        object
    }

    #[test]
    fn missing_objects_are_created() {
        let want = ds(json!({"app": "a"}), "16Mi");
        assert_eq!(decide(&want, None), Ok(Action::Create(want.clone())));
    }

    #[test]
    fn the_same_object_is_unchanged_whatever_the_server_adds() {
        let want = ds(json!({}), "16Mi");
        let mut have = stored(ds(json!({}), "16Mi"));
        have["metadata"].as_object_mut().unwrap().remove("labels");
        assert_eq!(decide(&want, Some(&have)), Ok(Action::Unchanged));
    }

    #[test]
    fn a_label_or_spec_change_is_put_with_the_stored_resource_version() {
        let have = stored(ds(json!({"app": "a"}), "16Mi"));
        for want in [
            ds(json!({"app": "b"}), "16Mi"),
            ds(json!({"app": "a"}), "32Mi"),
        ] {
            let Ok(Action::Update(body)) = decide(&want, Some(&have)) else {
                panic!("not an update");
            };
            assert_eq!(body["metadata"]["resourceVersion"], "12");
            assert_eq!(body["metadata"]["labels"], want["metadata"]["labels"]);
            assert_eq!(body["spec"], want["spec"]);
            assert!(body.get("status").is_none());
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
    fn what_get_o_yaml_printed_applies_again_unchanged() {
        for object in exported() {
            // As a Kubernetes cluster would also show it.
            let mut shown = object.clone();
            if let Some(c) = shown.pointer_mut("/spec/containers/0") {
                c["terminationMessagePath"] = json!("/dev/termination-log");
            }
            let text = super::super::yaml::to_yaml(&shown).unwrap();
            let manifests =
                parse_manifests_with("x.yaml", &text, crate::control::as_manifest).unwrap();
            assert_eq!(
                decide(&desired_object(&manifests[0]), Some(&object)),
                Ok(Action::Unchanged),
                "{text}"
            );
        }
    }

    #[test]
    fn a_listing_printed_by_get_o_yaml_applies_as_its_items() {
        let list = super::super::get::as_kubectl_list(&json!({"items": exported()}), "v1", "Pod");
        let text = super::super::yaml::to_yaml(&list).unwrap();
        let manifests =
            parse_manifests_with("list.yaml", &text, crate::control::as_manifest).unwrap();
        let names: Vec<&str> = manifests.iter().map(Manifest::name).collect();
        assert_eq!(names, ["pi-x7k2p", "pi"]);
    }

    #[test]
    fn a_pods_binding_is_kept_and_its_spec_may_not_change() {
        let pod = |value: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "a", "env": value}]}})
        };
        let mut have = stored(pod("x"));
        have["spec"]["nodeName"] = json!("pi-1");
        assert_eq!(decide(&pod("x"), Some(&have)), Ok(Action::Unchanged));
        assert!(decide(&pod("y"), Some(&have))
            .unwrap_err()
            .contains("cannot change once it is created"));
    }
}
