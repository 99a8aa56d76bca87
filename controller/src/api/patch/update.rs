//! The fields plain writes (create, update, non-apply patches) change, recorded in
//! `metadata.managedFields` under the writer's `Update` entry, so that appliers see them as
//! owned and conflict with them rather than silently undo them.

use serde_json::{Map, Value};

use super::fields::{self, is_server_field, FieldSet};
use super::managed::{self, Entry};
use super::merge_keys::{is_atomic_map, list_strategy, ListStrategy};

/// See [`super::record_update`].
pub fn record_update(before: Option<&Value>, after: &Value, manager: &str, now: &str) -> Value {
    let kind = after
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // A write that leaves managedFields out keeps them; one that changes them on purpose
    // (kubectl rewrites them when it moves an object from client- to server-side apply)
    // gets what it wrote.
    let written = after.pointer("/metadata/managedFields");
    let mut entries = match before {
        Some(before)
            if written.is_none() || written == before.pointer("/metadata/managedFields") =>
        {
            managed::read(before)
        }
        _ => managed::read(after),
    };
    let changed = match before {
        Some(before) => changed_fields(kind, before, after, &mut Vec::new()),
        None => created(FieldSet::of_object(kind, after)),
    };
    for entry in &mut entries {
        // Fields that are gone are owned by no one; changed ones now belong to `manager`.
        entry.set = entry.set.retain_present(after);
        if !entry.is(manager, "Update") {
            entry.set = entry.set.difference(&changed);
        }
    }
    let api_version = after
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // An update that changed nothing leaves the entries (and their times) alone.
    if !changed.is_empty() && !manager.is_empty() {
        match entries.iter_mut().find(|e| e.is(manager, "Update")) {
            Some(entry) => {
                entry.set = entry.set.union(&changed);
                entry.time = now.to_string();
                entry.api_version = api_version;
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                subresource: String::new(),
                api_version,
                time: now.to_string(),
                set: changed,
            }),
        }
    }
    let mut after = after.clone();
    managed::write(&mut after, &entries);
    after
}

/// Fields whose values are maps with keys of the user's choosing: Kubernetes' schema makes
/// them owned nodes of their own (`"."`) when an update creates them; structs such as
/// `spec` are only containers of their fields.
const FREE_FORM_MAPS: &[&str] = &[
    "f:labels",
    "f:annotations",
    "f:nodeSelector",
    "f:matchLabels",
    "f:limits",
    "f:requests",
];

/// A newly created subtree as an update owns it: besides its leaves and list elements,
/// the free-form maps it creates.
fn created(set: FieldSet) -> FieldSet {
    created_at(set, "")
}

fn created_at(mut set: FieldSet, element: &str) -> FieldSet {
    if FREE_FORM_MAPS.contains(&element) && !set.children.is_empty() {
        set.owned = true;
    }
    set.children = set
        .children
        .into_iter()
        .map(|(element, child)| {
            let child = created_at(child, &element);
            (element, child)
        })
        .collect();
    set
}

/// The fields `after` sets differently from `before` (server fields left out).
fn changed_fields(kind: &str, before: &Value, after: &Value, path: &mut Vec<String>) -> FieldSet {
    let mut set = FieldSet::default();
    match (before, after) {
        (Value::Object(old), Value::Object(new)) if !is_atomic_map(kind, path) => {
            for (key, value) in new {
                if value.is_null() {
                    continue;
                }
                let segments: Vec<&str> = path
                    .iter()
                    .map(String::as_str)
                    .chain([key.as_str()])
                    .collect();
                if is_server_field(&segments) {
                    continue;
                }
                path.push(key.clone());
                let child = match old.get(key) {
                    Some(old) => changed_fields(kind, old, value, path),
                    None => created_at(subtree(kind, value, path), &fields::field_element(key)),
                };
                path.pop();
                if !child.is_empty() {
                    set.children.insert(fields::field_element(key), child);
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => match list_strategy(kind, path) {
            ListStrategy::Keyed(key)
                if new.iter().all(|i| fields::key_element(key, i).is_some()) =>
            {
                for item in new {
                    let Some(element) = fields::key_element(key, item) else {
                        continue;
                    };
                    let child = match old.iter().find(|o| o.get(key) == item.get(key)) {
                        Some(old) => changed_fields(kind, old, item, path),
                        None => created(subtree(kind, item, path)),
                    };
                    if !child.is_empty() {
                        set.children.insert(element, child);
                    }
                }
            }
            ListStrategy::Set => {
                for item in new.iter().filter(|item| !old.contains(item)) {
                    set.children.insert(
                        fields::value_element(item),
                        FieldSet {
                            owned: true,
                            children: Default::default(),
                        },
                    );
                }
            }
            _ if old != new => set.owned = true,
            _ => {}
        },
        (old, new) if old != new => {
            let element = path.last().map(|last| fields::field_element(last));
            set = created_at(subtree(kind, new, path), element.as_deref().unwrap_or(""));
        }
        _ => {}
    }
    set
}

/// The set of a value at `path`, as `FieldSet::of_object` would own it there.
fn subtree(kind: &str, value: &Value, path: &[String]) -> FieldSet {
    // Build the object around the value so the list strategies see the full path.
    let mut wrapped = value.clone();
    for segment in path.iter().rev() {
        wrapped = Value::Object(Map::from_iter([(segment.clone(), wrapped)]));
    }
    let mut set = FieldSet::of_object(kind, &wrapped);
    for segment in path {
        match set.children.remove(&fields::field_element(segment)) {
            Some(child) => set = child,
            None => {
                return FieldSet {
                    owned: true,
                    children: Default::default(),
                }
            }
        }
    }
    set
}
