//! Sets of fields, as server-side apply tracks them per manager, and their `FieldsV1`
//! encoding in `metadata.managedFields`: `{"f:spec": {"f:containers": {"k:{\"name\":\"c\"}":
//! {".": {}, "f:image": {}}}}}`. An empty object is an owned leaf; `"."` marks an owned
//! node that also has owned children (a list element, a map created whole).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::merge_keys::{is_atomic_map, list_strategy, ListStrategy};

/// One step of a field path, in its `FieldsV1` spelling: `f:name` (a field), `k:{…}` (a
/// list element by its key), `v:…` (a set element by its value).
pub type Element = String;

/// A tree of owned fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// This node itself is owned.
    pub owned: bool,
    /// Its children.
    pub children: BTreeMap<Element, FieldSet>,
}

/// Fields the server sets: apply neither takes ownership of them nor removes them.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Whether a top-level or metadata field belongs to the server, not to field managers.
pub fn is_server_field(path: &[&str]) -> bool {
    match path {
        ["apiVersion" | "kind" | "status"] => true,
        ["metadata", field] => SERVER_METADATA.contains(field),
        _ => false,
    }
}

impl FieldSet {
    fn leaf() -> FieldSet {
        FieldSet {
            owned: true,
            children: BTreeMap::new(),
        }
    }

    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        !self.owned && self.children.is_empty()
    }

    /// The fields an object sets, as an applier of it owns them: leaves, list elements
    /// (with their contents) and empty maps; non-empty maps only through their children.
    /// Server fields and `null`s are left out.
    pub fn of_object(kind: &str, object: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(map) = object {
            for (key, value) in map {
                if value.is_null() || is_server_field(&[key]) {
                    continue;
                }
                let child = if key == "metadata" {
                    let mut meta = FieldSet::default();
                    if let Value::Object(fields) = value {
                        for (field, value) in fields {
                            if value.is_null() || is_server_field(&["metadata", field]) {
                                continue;
                            }
                            let mut path = vec!["metadata".to_string(), field.clone()];
                            meta.insert_child(
                                field_element(field),
                                of_value(kind, value, &mut path),
                            );
                        }
                    }
                    meta
                } else {
                    of_value(kind, value, &mut vec![key.clone()])
                };
                set.insert_child(field_element(key), child);
            }
        }
        set
    }

    fn insert_child(&mut self, element: Element, child: FieldSet) {
        if !child.is_empty() {
            self.children.insert(element, child);
        }
    }

    /// Everything owned in either.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.owned |= other.owned;
        for (element, child) in &other.children {
            let merged = match out.children.get(element) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(element.clone(), merged);
        }
        out
    }

    /// What `self` owns that `other` does not.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            owned: self.owned && !other.owned,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            out.insert_child(element.clone(), rest);
        }
        out
    }

    /// What both own.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            owned: self.owned && other.owned,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                out.insert_child(element.clone(), child.intersection(theirs));
            }
        }
        out
    }

    /// Whether this node or anything below it is owned.
    pub fn owns_anything_at(&self, path: &[Element]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((first, rest)) => self
                .children
                .get(first)
                .is_some_and(|child| child.owns_anything_at(rest)),
        }
    }

    /// Whether exactly this path is owned.
    pub fn owns(&self, path: &[Element]) -> bool {
        match path.split_first() {
            None => self.owned,
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.owns(rest)),
        }
    }

    /// The owned paths, parents before their children.
    pub fn paths(&self) -> Vec<Vec<Element>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<Element>, out: &mut Vec<Vec<Element>>) {
        if self.owned {
            out.push(prefix.clone());
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Keeps only the paths that still exist in `object`.
    pub fn retain_present(&self, object: &Value) -> FieldSet {
        let mut out = FieldSet {
            owned: self.owned,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            if let Some(value) = child_value(object, element) {
                out.insert_child(element.clone(), child.retain_present(value));
            }
        }
        out
    }

    /// The `FieldsV1` JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.owned && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            map.insert(element.clone(), child.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Reads `FieldsV1` JSON; `None` if it is not made of objects all the way down.
    pub fn from_fields_v1(value: &Value) -> Option<FieldSet> {
        let map = value.as_object()?;
        let mut set = FieldSet {
            owned: map.is_empty(),
            children: BTreeMap::new(),
        };
        for (element, child) in map {
            if element == "." {
                set.owned = true;
                continue;
            }
            set.children
                .insert(element.clone(), FieldSet::from_fields_v1(child)?);
        }
        Some(set)
    }
}

/// The set a value owns at `path`.
fn of_value(kind: &str, value: &Value, path: &mut Vec<String>) -> FieldSet {
    match value {
        Value::Object(map) if !map.is_empty() && !is_atomic_map(kind, path) => {
            let mut set = FieldSet::default();
            for (key, child) in map {
                if child.is_null() {
                    continue;
                }
                path.push(key.clone());
                let owned = of_value(kind, child, path);
                path.pop();
                set.insert_child(field_element(key), owned);
            }
            set
        }
        Value::Array(items) => match list_strategy(kind, path) {
            ListStrategy::Keyed(key) => {
                let mut set = FieldSet::default();
                for item in items {
                    let Some(element) = key_element(key, item) else {
                        // An element without its key cannot be told apart: own the list whole.
                        return FieldSet::leaf();
                    };
                    let mut owned = of_value(kind, item, path);
                    owned.owned = true;
                    set.children.insert(element, owned);
                }
                if set.children.is_empty() {
                    FieldSet::leaf()
                } else {
                    set
                }
            }
            ListStrategy::Set if !items.is_empty() => {
                let mut set = FieldSet::default();
                for item in items {
                    set.children.insert(value_element(item), FieldSet::leaf());
                }
                set
            }
            _ => FieldSet::leaf(),
        },
        _ => FieldSet::leaf(),
    }
}

/// `f:name`.
pub fn field_element(name: &str) -> Element {
    format!("f:{name}")
}

/// `k:{"name":"c"}` for a list element keyed by `key`, if it has that key.
pub fn key_element(key: &str, item: &Value) -> Option<Element> {
    let id = item.get(key).filter(|v| !v.is_null())?;
    let object = Value::Object(Map::from_iter([(key.to_string(), id.clone())]));
    Some(format!("k:{object}"))
}

/// `v:"x"` for a set element.
pub fn value_element(item: &Value) -> Element {
    format!("v:{item}")
}

/// A list element selector, parsed once for a whole list.
enum Selector {
    /// `k:{…}`: the element whose fields have these values.
    Key(Map<String, Value>),
    /// `v:…`: the element equal to this.
    Value(Value),
    /// Not a list element selector: matches nothing.
    Nothing,
}

impl Selector {
    fn parse(element: &str) -> Selector {
        if let Some(key) = element.strip_prefix("k:") {
            match serde_json::from_str::<Value>(key) {
                Ok(Value::Object(fields)) if !fields.is_empty() => Selector::Key(fields),
                _ => Selector::Nothing,
            }
        } else if let Some(value) = element.strip_prefix("v:") {
            serde_json::from_str(value).map_or(Selector::Nothing, Selector::Value)
        } else {
            Selector::Nothing
        }
    }

    fn matches(&self, item: &Value) -> bool {
        match self {
            Selector::Key(fields) => fields.iter().all(|(k, v)| item.get(k) == Some(v)),
            Selector::Value(value) => value == item,
            Selector::Nothing => false,
        }
    }
}

/// The value `element` names inside `value`.
pub fn child_value<'v>(value: &'v Value, element: &str) -> Option<&'v Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return value.as_object()?.get(name);
    }
    let selector = Selector::parse(element);
    value.as_array()?.iter().find(|item| selector.matches(item))
}

/// The value at `path`.
pub fn value_at<'v>(value: &'v Value, path: &[Element]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |current, element| child_value(current, element))
}

/// Removes what `path` names from `value`; returns whether anything was removed.
pub fn remove_at(value: &mut Value, path: &[Element]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = value;
    for element in parents {
        let next = if let Some(name) = element.strip_prefix("f:") {
            current.as_object_mut().and_then(|map| map.get_mut(name))
        } else {
            current.as_array_mut().and_then(|items| {
                let selector = Selector::parse(element);
                items.iter_mut().find(|item| selector.matches(item))
            })
        };
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        current
            .as_object_mut()
            .is_some_and(|map| map.remove(name).is_some())
    } else if let Some(items) = current.as_array_mut() {
        let before = items.len();
        let selector = Selector::parse(last);
        items.retain(|item| !selector.matches(item));
        items.len() != before
    } else {
        false
    }
}

/// `.spec.containers[name="c"].image`, as Kubernetes spells paths in conflicts.
pub fn display(path: &[Element]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            match serde_json::from_str::<Value>(key) {
                Ok(Value::Object(fields)) => {
                    let parts: Vec<String> =
                        fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push_str(&format!("[{}]", parts.join(",")));
                }
                _ => out.push_str(&format!("[{key}]")),
            }
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else {
            out.push_str(&format!("[{element}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_owns_leaves_list_elements_and_sets() {
        let job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "namespace": "d", "labels": {"app": "a"}, "finalizers": ["f"]},
            "spec": {
                "parallelism": 2,
                "suspend": null,
                "template": {"spec": {
                    "containers": [{"name": "c", "image": "i", "args": ["x"], "ports": [{"containerPort": 80}]}],
                    "volumes": [{"name": "v", "emptyDir": {}}]
                }}
            },
            "status": {"active": 1}
        });
        let set = FieldSet::of_object("Job", &job);
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"f\"": {}}},
                "f:spec": {
                    "f:parallelism": {},
                    "f:template": {"f:spec": {
                        "f:containers": {"k:{\"name\":\"c\"}": {
                            ".": {}, "f:name": {}, "f:image": {}, "f:args": {},
                            "f:ports": {"k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}}
                        }},
                        "f:volumes": {"k:{\"name\":\"v\"}": {".": {}, "f:name": {}, "f:emptyDir": {}}}
                    }}
                }
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), Some(set));
    }

    #[test]
    fn set_algebra() {
        let a =
            FieldSet::from_fields_v1(&json!({"f:a": {}, "f:b": {"f:c": {}, "f:d": {}}})).unwrap();
        let b = FieldSet::from_fields_v1(&json!({"f:b": {"f:c": {}}, "f:e": {}})).unwrap();
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:a": {}, "f:b": {"f:d": {}}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:b": {"f:c": {}}})
        );
        assert_eq!(
            a.union(&b).to_fields_v1(),
            json!({"f:a": {}, "f:b": {"f:c": {}, "f:d": {}}, "f:e": {}})
        );
        assert!(a.difference(&a).is_empty());
        assert_eq!(
            a.paths(),
            vec![
                vec!["f:a".to_string()],
                vec!["f:b".to_string(), "f:c".to_string()],
                vec!["f:b".to_string(), "f:d".to_string()]
            ]
        );
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_none());
    }

    #[test]
    fn paths_find_and_remove_values() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}, "metadata": {"finalizers": ["p", "q"]}});
        let path: Vec<Element> = ["f:spec", "f:containers", "k:{\"name\":\"a\"}", "f:image"]
            .map(String::from)
            .to_vec();
        assert_eq!(value_at(&pod, &path), Some(&json!("x")));
        assert_eq!(display(&path), ".spec.containers[name=\"a\"].image");
        assert!(remove_at(&mut pod, &path));
        assert!(!remove_at(&mut pod, &path));
        let item: Vec<Element> = ["f:spec", "f:containers", "k:{\"name\":\"b\"}"]
            .map(String::from)
            .to_vec();
        assert!(remove_at(&mut pod, &item));
        let finalizer: Vec<Element> = ["f:metadata", "f:finalizers", "v:\"p\""]
            .map(String::from)
            .to_vec();
        assert_eq!(display(&finalizer), ".metadata.finalizers[=\"p\"]");
        assert!(remove_at(&mut pod, &finalizer));
        assert_eq!(
            pod,
            json!({"spec": {"containers": [{"name": "a"}]}, "metadata": {"finalizers": ["q"]}})
        );
        let set = FieldSet::from_fields_v1(&json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}}, "k:{\"name\":\"zz\"}": {}}}})).unwrap();
        assert_eq!(
            set.retain_present(&pod).to_fields_v1(),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {}}}})
        );
    }
}
