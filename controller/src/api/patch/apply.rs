//! Server-side apply: merges a manager's manifest into the live object, removes what the
//! manager stopped setting (unless someone else also owns it), refuses to change fields
//! other managers own (unless forced), and keeps `metadata.managedFields` up to date.

use serde_json::{Map, Value};

use super::fields::{self, is_server_field, value_at, Element, FieldSet};
use super::managed::{self, Entry};
use super::merge_keys::{is_atomic_map, list_strategy, ListStrategy};
use super::PatchError;

/// The manager Kubernetes credits with the fields of an object that predates managed
/// fields, so that a first apply cannot silently take them over.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// See [`super::server_side_apply`].
pub fn server_side_apply(
    kind: &str,
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, PatchError> {
    if manager.is_empty() {
        return Err(PatchError::Invalid(
            "apply requires a field manager (the fieldManager query parameter)".into(),
        ));
    }
    if !applied.is_object() {
        return Err(PatchError::Invalid(
            "an applied configuration must be an object".into(),
        ));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(PatchError::Invalid(
            "metadata.managedFields must be unset in an applied configuration".into(),
        ));
    }
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let wanted = FieldSet::of_object(kind, applied);
    let entry = Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        subresource: String::new(),
        api_version,
        time: now.to_string(),
        set: wanted.clone(),
    };

    let Some(current) = current else {
        let mut object = merge(kind, Value::Object(Map::new()), applied, &mut Vec::new());
        managed::write(&mut object, &[entry]);
        return Ok(object);
    };

    let mut entries = managed::read(current);
    if entries.is_empty() {
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.into(),
            operation: "Update".into(),
            subresource: String::new(),
            api_version: entry.api_version.clone(),
            time: now.to_string(),
            set: FieldSet::of_object(kind, current),
        });
    }
    let mine = entries.iter().position(|e| e.is(manager, "Apply"));

    let conflicts = find_conflicts(current, applied, &wanted, &entries, mine);
    if !conflicts.is_empty() {
        if !force {
            return Err(PatchError::Conflicts(
                conflicts
                    .iter()
                    .map(|(at, path)| {
                        format!(
                            "conflict with {}: {}",
                            describe_manager(&entries[*at]),
                            fields::display(path)
                        )
                    })
                    .collect(),
            ));
        }
        // Forcing takes the fields over: their old owners no longer own them.
        for (at, path) in &conflicts {
            let entry = &mut entries[*at];
            entry.set = entry.set.difference(&single(path));
        }
    }

    let previous = mine.map(|at| entries[at].set.clone()).unwrap_or_default();
    let others = entries
        .iter()
        .enumerate()
        .filter(|(at, _)| Some(*at) != mine)
        .fold(FieldSet::default(), |all, (_, e)| all.union(&e.set));
    let mut object = current.clone();
    for path in previous.difference(&wanted).paths() {
        if others.owns_anything_at(&path) || wanted.owns_anything_at(&path) || is_key_field(&path) {
            continue;
        }
        if fields::remove_at(&mut object, &path) {
            prune_empty_parents(&mut object, &path, &others.union(&wanted));
        }
    }
    let object = merge(
        kind,
        object,
        &without_server_fields(applied),
        &mut Vec::new(),
    );

    let unchanged_object = strip_managed(&object) == strip_managed(current);
    let mut entry = entry;
    match mine {
        Some(at) => {
            let old = &entries[at];
            // Nothing new: the old time stays, so a re-apply changes nothing at all.
            if unchanged_object && old.set == entry.set && old.api_version == entry.api_version {
                entry.time = old.time.clone();
            }
            entries[at] = entry;
        }
        None => entries.push(entry),
    }
    let mut object = object;
    managed::write(&mut object, &entries);
    Ok(object)
}

/// A manager as Kubernetes names it in conflicts: `"kubectl"` for an applier, `"edit" using
/// v1 at <time>` for an updater (whose apiVersion and time say which write it was).
fn describe_manager(entry: &Entry) -> String {
    let mut out = format!("{:?}", entry.manager);
    if !entry.subresource.is_empty() {
        out.push_str(&format!(" with subresource {:?}", entry.subresource));
    }
    if entry.operation == "Update" {
        out.push_str(&format!(" using {}", entry.api_version));
        if !entry.time.is_empty() {
            out.push_str(&format!(" at {}", entry.time));
        }
    }
    out
}

/// The fields other managers own that `applied` would change: `(entry, path)` pairs.
fn find_conflicts(
    current: &Value,
    applied: &Value,
    wanted: &FieldSet,
    entries: &[Entry],
    mine: Option<usize>,
) -> Vec<(usize, Vec<Element>)> {
    let mut conflicts = Vec::new();
    for (at, other) in entries.iter().enumerate() {
        if Some(at) == mine || !other.subresource.is_empty() {
            continue;
        }
        for path in wanted.intersection(&other.set).paths() {
            // Owning a list element is not owning its contents, which are checked one
            // by one; only leaves hold values to disagree about.
            if has_children(wanted, &path) {
                continue;
            }
            if let (Some(live), Some(want)) = (value_at(current, &path), value_at(applied, &path)) {
                if live != want {
                    conflicts.push((at, path));
                }
            }
        }
    }
    conflicts
}

fn has_children(set: &FieldSet, path: &[Element]) -> bool {
    let mut node = set;
    for element in path {
        match node.children.get(element) {
            Some(child) => node = child,
            None => return false,
        }
    }
    !node.children.is_empty()
}

/// Whether `path` is a key field of a list element (`…[name="c"].name`): an element that
/// stays (someone else still owns part of it) keeps what identifies it; one that goes takes
/// its key with it.
fn is_key_field(path: &[Element]) -> bool {
    let [.., element, field] = path else {
        return false;
    };
    let (Some(key), Some(field)) = (element.strip_prefix("k:"), field.strip_prefix("f:")) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(key).is_ok_and(|keys| keys.contains_key(field))
}

/// A set owning exactly `path`.
fn single(path: &[Element]) -> FieldSet {
    let mut set = FieldSet {
        owned: true,
        children: Default::default(),
    };
    for element in path.iter().rev() {
        let mut parent = FieldSet::default();
        parent.children.insert(element.clone(), set);
        set = parent;
    }
    set
}

/// Removes maps that removing `path` left empty, unless someone owns them; top-level
/// fields (`spec`, `metadata`) always stay.
fn prune_empty_parents(object: &mut Value, path: &[Element], owned: &FieldSet) {
    for depth in (2..path.len()).rev() {
        let parent = &path[..depth];
        let empty =
            value_at(object, parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
        if !empty || owned.owns(parent) || !parent[depth - 1].starts_with("f:") {
            return;
        }
        fields::remove_at(object, parent);
    }
}

/// `applied` without what the server owns, which apply leaves as it is.
fn without_server_fields(applied: &Value) -> Value {
    let mut applied = applied.clone();
    if let Value::Object(root) = &mut applied {
        root.retain(|key, _| !is_server_field(&[key]));
        if let Some(Value::Object(metadata)) = root.get_mut("metadata") {
            metadata.retain(|key, _| !is_server_field(&["metadata", key]));
        }
    }
    applied
}

fn strip_managed(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.remove("managedFields");
    }
    object
}

/// Structured merge of `applied` into `live`: maps recursively, keyed lists element by
/// element (live order kept, new elements appended), sets as a union, anything else
/// replaced. `null`s in `applied` mean "not set".
fn merge(kind: &str, live: Value, applied: &Value, path: &mut Vec<String>) -> Value {
    match (live, applied) {
        (Value::Object(mut live), Value::Object(applied)) if !is_atomic_map(kind, path) => {
            for (key, value) in applied {
                if value.is_null() {
                    continue;
                }
                path.push(key.clone());
                let old = live.remove(key).unwrap_or(Value::Null);
                let merged = merge(kind, old, value, path);
                path.pop();
                live.insert(key.clone(), merged);
            }
            Value::Object(live)
        }
        // New, of another type, or atomic: built afresh from the applied map (nulls dropped).
        (_, Value::Object(applied)) => {
            let mut fresh = Map::new();
            for (key, value) in applied {
                if !value.is_null() {
                    path.push(key.clone());
                    fresh.insert(key.clone(), merge(kind, Value::Null, value, path));
                    path.pop();
                }
            }
            Value::Object(fresh)
        }
        (live, Value::Array(items)) => {
            let mut live = match live {
                Value::Array(live) => live,
                _ => Vec::new(),
            };
            match list_strategy(kind, path) {
                ListStrategy::Keyed(key)
                    if items.iter().all(|i| fields::key_element(key, i).is_some()) =>
                {
                    for item in items {
                        let id = item.get(key);
                        match live.iter().position(|l| l.get(key) == id) {
                            Some(at) => {
                                let old = std::mem::take(&mut live[at]);
                                live[at] = merge(kind, old, item, path);
                            }
                            None => live.push(merge(kind, Value::Null, item, path)),
                        }
                    }
                    Value::Array(live)
                }
                ListStrategy::Set => {
                    for item in items {
                        if !live.contains(item) {
                            live.push(item.clone());
                        }
                    }
                    Value::Array(live)
                }
                _ => Value::Array(
                    items
                        .iter()
                        .map(|item| merge(kind, Value::Null, item, path))
                        .collect(),
                ),
            }
        }
        (_, applied) => applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::update::record_update;
    use super::*;
    use serde_json::json;

    const T1: &str = "2026-12-01T14:00:00Z";
    const T2: &str = "2026-12-01T15:00:00Z";

    fn manifest(parallelism: i64, image: &str) -> Value {
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "namespace": "default", "labels": {"app": "a"}},
            "spec": {
                "parallelism": parallelism,
                "template": {"spec": {
                    "containers": [{"name": "main", "image": image}],
                    "restartPolicy": "Never"
                }}
            }
        })
    }

    /// What the store adds on create.
    fn stored(mut object: Value) -> Value {
        object["metadata"]["uid"] = json!("u-1");
        object["metadata"]["resourceVersion"] = json!("7");
        object["metadata"]["creationTimestamp"] = json!(T1);
        object["status"] = json!({"active": 1});
        object
    }

    fn ssa(
        current: Option<&Value>,
        applied: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, PatchError> {
        server_side_apply("Job", current, applied, manager, force, T2)
    }

    fn entry<'v>(object: &'v Value, manager: &str) -> Option<&'v Value> {
        object["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager)
    }

    #[test]
    fn creating_records_the_appliers_fields() {
        let out =
            server_side_apply("Job", None, &manifest(1, "busybox"), "kubectl", false, T1).unwrap();
        let mut expected = manifest(1, "busybox");
        expected["metadata"]["managedFields"] = json!([{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "batch/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:parallelism": {},
                    "f:template": {"f:spec": {
                        "f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:name": {}}},
                        "f:restartPolicy": {}
                    }}
                }
            }
        }]);
        assert_eq!(out, expected);
    }

    #[test]
    fn re_applying_the_same_manifest_changes_nothing() {
        let created =
            server_side_apply("Job", None, &manifest(1, "busybox"), "kubectl", false, T1).unwrap();
        let live = stored(created);
        let again = ssa(Some(&live), &manifest(1, "busybox"), "kubectl", false).unwrap();
        assert_eq!(again, live);
        // Not even with the server's fields echoed back, as `kubectl get -o yaml | apply` does.
        let mut echoed = live.clone();
        echoed["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        let again = ssa(Some(&live), &echoed, "kubectl", false).unwrap();
        assert_eq!(again, live);
    }

    #[test]
    fn a_change_updates_the_value_and_the_time() {
        let live = stored(
            server_side_apply("Job", None, &manifest(1, "busybox"), "kubectl", false, T1).unwrap(),
        );
        let out = ssa(Some(&live), &manifest(3, "busybox"), "kubectl", false).unwrap();
        assert_eq!(out["spec"]["parallelism"], 3);
        assert_eq!(entry(&out, "kubectl").unwrap()["time"], T2);
        // Server fields survive.
        assert_eq!(out["metadata"]["uid"], "u-1");
        assert_eq!(out["metadata"]["resourceVersion"], "7");
        assert_eq!(out["status"], json!({"active": 1}));
    }

    #[test]
    fn fields_no_longer_applied_are_removed() {
        let mut first = manifest(1, "busybox");
        first["metadata"]["labels"]["tier"] = json!("t");
        first["metadata"]["annotations"] = json!({"note": "n"});
        first["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "side", "image": "nginx", "args": ["x"]}));
        let live = stored(ssa(None, &first, "kubectl", false).unwrap());
        let out = ssa(Some(&live), &manifest(1, "busybox"), "kubectl", false).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "a"}));
        // The annotations map it emptied goes too.
        assert!(out["metadata"].get("annotations").is_none(), "{out}");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "main", "image": "busybox"}])
        );
        assert_eq!(
            entry(&out, "kubectl").unwrap()["fieldsV1"],
            entry(
                &ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap(),
                "kubectl"
            )
            .unwrap()["fieldsV1"]
        );
        assert_eq!(out["metadata"]["uid"], "u-1");
        assert_eq!(out["status"], json!({"active": 1}));
    }

    #[test]
    fn another_managers_different_value_conflicts() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let mut other = manifest(2, "busybox");
        other["metadata"]["labels"] = json!({"app": "b"});
        let err = ssa(Some(&live), &other, "ci", false).unwrap_err();
        assert_eq!(
            err,
            PatchError::Conflicts(vec![
                "conflict with \"kubectl\": .metadata.labels.app".into(),
                "conflict with \"kubectl\": .spec.parallelism".into(),
            ])
        );
        let PatchError::Conflicts(conflicts) = err else {
            unreachable!()
        };
        assert_eq!(
            super::super::conflict_parts(&conflicts[1]),
            ("conflict with \"kubectl\"", ".spec.parallelism")
        );
    }

    #[test]
    fn the_same_value_is_shared_and_survives_one_owner_leaving() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let other = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"parallelism": 1}});
        let shared = ssa(Some(&live), &other, "ci", false).unwrap();
        assert_eq!(
            entry(&shared, "ci").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:parallelism": {}}})
        );
        // kubectl stops setting parallelism: ci still owns it, so it stays.
        let mut without = manifest(1, "busybox");
        without["spec"]
            .as_object_mut()
            .unwrap()
            .remove("parallelism");
        let out = ssa(Some(&shared), &without, "kubectl", false).unwrap();
        assert_eq!(out["spec"]["parallelism"], 1);
        // Once ci lets go too, it is removed.
        let empty = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}});
        let out = ssa(Some(&out), &empty, "ci", false).unwrap();
        assert!(out["spec"].get("parallelism").is_none(), "{out}");
        assert!(entry(&out, "ci").is_none());
    }

    #[test]
    fn force_takes_ownership() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let other = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"parallelism": 5}});
        let out = ssa(Some(&live), &other, "ci", true).unwrap();
        assert_eq!(out["spec"]["parallelism"], 5);
        let kubectl = entry(&out, "kubectl").unwrap();
        assert!(kubectl["fieldsV1"]["f:spec"].get("f:parallelism").is_none());
        assert_eq!(
            entry(&out, "ci").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:parallelism": {}}})
        );
        // Now kubectl's old value conflicts with ci.
        let err = ssa(Some(&out), &manifest(1, "busybox"), "kubectl", false).unwrap_err();
        assert_eq!(
            err,
            PatchError::Conflicts(vec!["conflict with \"ci\": .spec.parallelism".into()])
        );
        // kubectl dropping parallelism leaves ci's value alone.
        let mut without = manifest(1, "busybox");
        without["spec"]
            .as_object_mut()
            .unwrap()
            .remove("parallelism");
        let again = ssa(Some(&out), &without, "kubectl", false).unwrap();
        assert_eq!(again["spec"]["parallelism"], 5);
    }

    #[test]
    fn keyed_lists_merge_between_managers() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let sidecar = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy"}]}}}});
        let out = ssa(Some(&live), &sidecar, "injector", false).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "main", "image": "busybox"}, {"name": "proxy", "image": "envoy"}])
        );
        // kubectl re-applying its manifest keeps the injector's container.
        let again = ssa(Some(&out), &manifest(1, "busybox:2"), "kubectl", false).unwrap();
        assert_eq!(
            again["spec"]["template"]["spec"]["containers"],
            json!([{"name": "main", "image": "busybox:2"}, {"name": "proxy", "image": "envoy"}])
        );
    }

    #[test]
    fn a_dropped_element_keeps_what_others_own_in_it() {
        let mut first = manifest(1, "busybox");
        first["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "side", "image": "nginx", "args": ["x"]}));
        let live = stored(ssa(None, &first, "kubectl", false).unwrap());
        // Someone else sets an env var on the side container.
        let mut edited = live.clone();
        edited["spec"]["template"]["spec"]["containers"][1]["env"] =
            json!([{"name": "E", "value": "1"}]);
        let edited = record_update(Some(&live), &edited, "editor", T2);
        // kubectl stops applying the side container: its fields go, the editor's stay.
        let out = ssa(Some(&edited), &manifest(1, "busybox"), "kubectl", false).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "main", "image": "busybox"},
                {"name": "side", "env": [{"name": "E", "value": "1"}]}
            ])
        );
    }

    #[test]
    fn keyed_lists_without_keys_are_owned_whole() {
        let mut applied = manifest(1, "busybox");
        applied["spec"]["template"]["spec"]["containers"] = json!([{"image": "nameless"}]);
        let out = ssa(None, &applied, "kubectl", false).unwrap();
        assert_eq!(
            entry(&out, "kubectl").unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
                ["f:containers"],
            json!({})
        );
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let out = ssa(Some(&live), &applied, "kubectl", false).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"image": "nameless"}])
        );
    }

    #[test]
    fn atomic_maps_are_owned_and_replaced_whole() {
        let mut first = manifest(1, "busybox");
        first["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd", "zone": "a"});
        let live = stored(ssa(None, &first, "kubectl", false).unwrap());
        assert_eq!(
            entry(&live, "kubectl").unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
                ["f:nodeSelector"],
            json!({})
        );
        let mut second = manifest(1, "busybox");
        second["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "b"});
        let out = ssa(Some(&live), &second, "kubectl", false).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["nodeSelector"],
            json!({"zone": "b"})
        );
        // Another manager setting one key conflicts over the whole map.
        let other = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"nodeSelector": {"zone": "b", "extra": "x"}}}}});
        assert_eq!(
            ssa(Some(&out), &other, "ci", false).unwrap_err(),
            PatchError::Conflicts(vec![
                "conflict with \"kubectl\": .spec.template.spec.nodeSelector".into()
            ])
        );
    }

    #[test]
    fn objects_without_managed_fields_belong_to_before_first_apply() {
        let live = stored(manifest(1, "busybox"));
        let err = ssa(Some(&live), &manifest(2, "busybox"), "kubectl", false).unwrap_err();
        assert_eq!(
            err,
            PatchError::Conflicts(vec![
                "conflict with \"before-first-apply\" using batch/v1 at 2026-12-01T15:00:00Z: .spec.parallelism".into()
            ])
        );
        // The same values take shared ownership without conflict.
        let out = ssa(Some(&live), &manifest(1, "busybox"), "kubectl", false).unwrap();
        assert_eq!(strip_managed(&out), strip_managed(&live));
        assert_eq!(
            entry(&out, BEFORE_FIRST_APPLY).unwrap()["operation"],
            "Update"
        );
        assert_eq!(entry(&out, "kubectl").unwrap()["operation"], "Apply");
    }

    #[test]
    fn nulls_and_server_fields_in_the_manifest_are_not_applied() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let mut applied = manifest(1, "busybox");
        applied["metadata"]["uid"] = json!("forged");
        applied["status"] = json!({"active": 99});
        applied["spec"]["suspend"] = Value::Null;
        let out = ssa(Some(&live), &applied, "kubectl", false).unwrap();
        assert_eq!(out, live);
    }

    #[test]
    fn bad_requests_are_invalid() {
        assert!(matches!(
            ssa(None, &manifest(1, "b"), "", false),
            Err(PatchError::Invalid(_))
        ));
        assert!(matches!(
            ssa(None, &json!([1]), "m", false),
            Err(PatchError::Invalid(_))
        ));
        let mut with_managed = manifest(1, "b");
        with_managed["metadata"]["managedFields"] = json!([]);
        assert!(matches!(
            ssa(None, &with_managed, "m", false),
            Err(PatchError::Invalid(_))
        ));
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let mut edited = live.clone();
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:edited");
        edited["metadata"]["labels"]["extra"] = json!("e");
        let out = record_update(Some(&live), &edited, "kubectl-edit", T2);
        let edit = entry(&out, "kubectl-edit").unwrap();
        assert_eq!(edit["operation"], "Update");
        assert_eq!(edit["time"], T2);
        assert_eq!(
            edit["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:extra": {}}},
                "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {"f:image": {}}}}}}
            })
        );
        let kubectl = entry(&out, "kubectl").unwrap();
        assert!(
            kubectl["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
                ["k:{\"name\":\"main\"}"]
                .get("f:image")
                .is_none()
        );
        // Re-applying the old image now conflicts with the editor.
        let err = ssa(Some(&out), &manifest(1, "busybox"), "kubectl", false).unwrap_err();
        assert_eq!(
            err,
            PatchError::Conflicts(vec![
                "conflict with \"kubectl-edit\" using batch/v1 at 2026-12-01T15:00:00Z: .spec.template.spec.containers[name=\"main\"].image".into()
            ])
        );
    }

    #[test]
    fn updates_that_remove_fields_drop_their_ownership() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let mut edited = live.clone();
        edited["metadata"]["labels"] = json!({});
        let out = record_update(Some(&live), &edited, "kubectl-label", T2);
        assert!(entry(&out, "kubectl-label").is_none());
        let kubectl = entry(&out, "kubectl").unwrap();
        assert!(kubectl["fieldsV1"]["f:metadata"]["f:labels"]
            .get("f:app")
            .is_none());
        // Nothing changed at all: the managed fields are as they were.
        let same = record_update(Some(&live), &live, "kubectl-label", T2);
        assert_eq!(same, live);
    }

    #[test]
    fn updates_keep_managed_fields_unless_they_rewrite_them() {
        let live = stored(ssa(None, &manifest(1, "busybox"), "kubectl", false).unwrap());
        let mut edited = live.clone();
        edited["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        edited["spec"]["parallelism"] = json!(2);
        let out = record_update(Some(&live), &edited, "editor", T2);
        assert!(entry(&out, "kubectl").is_some());
        assert!(entry(&out, "editor").is_some());
        // An explicit rewrite, as kubectl's migration to server-side apply sends it.
        let mut rewritten = live.clone();
        rewritten["metadata"]["managedFields"][0]["manager"] = json!("renamed");
        let out = record_update(Some(&live), &rewritten, "kubectl", T2);
        assert!(entry(&out, "kubectl").is_none());
        assert!(entry(&out, "renamed").is_some());
    }

    #[test]
    fn creates_own_everything_they_set() {
        let out = record_update(None, &stored(manifest(1, "busybox")), "kubectl-create", T1);
        let create = entry(&out, "kubectl-create").unwrap();
        assert_eq!(
            create["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:parallelism": {}, "f:template": {"f:spec": {
                    "f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:name": {}}},
                    "f:restartPolicy": {}
                }}}
            })
        );
        // An apply of different values then conflicts with the creator.
        assert!(matches!(
            ssa(Some(&out), &manifest(2, "busybox"), "kubectl", false),
            Err(PatchError::Conflicts(_))
        ));
    }
}

#[cfg(test)]
mod properties {
    use super::super::update::record_update;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn job(
        labels: &std::collections::BTreeMap<String, String>,
        containers: &[(String, String)],
    ) -> Value {
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "labels": labels},
            "spec": {"template": {"spec": {
                "containers": containers.iter().map(|(n, i)| json!({"name": n, "image": i})).collect::<Vec<_>>()
            }}}
        })
    }

    fn labels() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
        prop::collection::btree_map("[a-d]", "[xy]", 0..4)
    }

    fn containers() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::btree_map("[a-d]", "[xy]", 1..4).prop_map(|m| m.into_iter().collect())
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            (0i64..3).prop_map(Value::from),
            prop::sample::select(vec!["a", "b", "FieldsV1", "Apply", "Update", "m"])
                .prop_map(Value::from),
        ];
        let keys = prop::sample::select(vec![
            "metadata",
            "spec",
            "status",
            "managedFields",
            "fieldsV1",
            "fieldsType",
            "manager",
            "operation",
            "f:spec",
            "f:a",
            ".",
            "k:{\"name\":\"a\"}",
            "v:\"a\"",
            "containers",
            "name",
            "labels",
            "a",
            "uid",
            "template",
        ]);
        leaf.prop_recursive(6, 96, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        /// Whatever the stored object and its managedFields look like, apply and update
        /// answer rather than panic.
        #[test]
        fn never_panics(current in json(), applied in json(), force in any::<bool>()) {
            let _ = server_side_apply("Pod", Some(&current), &applied, "m", force, "t");
            let _ = server_side_apply("Job", None, &applied, "m", force, "t");
            let _ = record_update(Some(&current), &applied, "m", "t");
            let _ = record_update(None, &current, "m", "t");
            let stored = json!({"kind": "Pod", "metadata": {"name": "p", "managedFields": [
                {"manager": "x", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": current.clone()},
                {"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": applied.clone()}
            ]}, "spec": current});
            let _ = server_side_apply("Pod", Some(&stored), &json!({"spec": applied.clone()}), "m", force, "t");
            let _ = record_update(Some(&stored), &json!({"kind": "Pod", "spec": applied}), "m", "t");
        }

        /// Applying B over A leaves exactly B's fields; applying it again changes nothing.
        #[test]
        fn apply_converges_and_is_idempotent(
            la in labels(), ca in containers(), lb in labels(), cb in containers()
        ) {
            let first = server_side_apply("Job", None, &job(&la, &ca), "m", false, "t1").unwrap();
            let second = server_side_apply("Job", Some(&first), &job(&lb, &cb), "m", false, "t2").unwrap();
            prop_assert_eq!(&second["metadata"]["labels"], &job(&lb, &cb)["metadata"]["labels"]);
            let mut names: Vec<&str> = second["spec"]["template"]["spec"]["containers"]
                .as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
            names.sort_unstable();
            let wanted: Vec<&str> = cb.iter().map(|(n, _)| n.as_str()).collect();
            prop_assert_eq!(names, wanted);
            let third = server_side_apply("Job", Some(&second), &job(&lb, &cb), "m", false, "t3").unwrap();
            prop_assert_eq!(third, second);
        }
    }
}
