//! `metadata.managedFields` (one entry per field manager and operation, each with the set
//! of fields it owns), and how a request names its field manager.

use serde_json::{Map, Value};

use super::fields::FieldSet;
use super::PatchError;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `manager`.
    pub manager: String,
    /// `operation`: `Apply` or `Update`.
    pub operation: String,
    /// `subresource`; empty for the main resource.
    pub subresource: String,
    /// `apiVersion` the manager wrote with.
    pub api_version: String,
    /// `time` of its last change.
    pub time: String,
    /// `fieldsV1`, decoded.
    pub set: FieldSet,
}

impl Entry {
    /// Whether this is `manager`'s entry for `operation` on the main resource.
    pub fn is(&self, manager: &str, operation: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.is_empty()
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), self.manager.clone().into());
        map.insert("operation".into(), self.operation.clone().into());
        map.insert("apiVersion".into(), self.api_version.clone().into());
        map.insert("time".into(), self.time.clone().into());
        map.insert("fieldsType".into(), "FieldsV1".into());
        map.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            map.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(map)
    }

    fn from_json(value: &Value) -> Option<Entry> {
        let text = |field: &str| {
            value
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if value.get("fieldsType").and_then(Value::as_str) != Some("FieldsV1") {
            return None;
        }
        Some(Entry {
            manager: text("manager"),
            operation: text("operation"),
            subresource: text("subresource"),
            api_version: text("apiVersion"),
            time: text("time"),
            set: FieldSet::from_fields_v1(value.get("fieldsV1")?)?,
        })
    }
}

/// The entries of `object`. Entries that do not parse are dropped: they cannot own
/// anything the server could check.
pub fn read(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| entries.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// Writes `entries` (those that still own something) into `object`'s metadata.
pub fn write(object: &mut Value, entries: &[Entry]) {
    let Value::Object(root) = object else {
        return;
    };
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return;
    };
    let entries: Vec<Value> = entries
        .iter()
        .filter(|entry| !entry.set.is_empty())
        .map(Entry::to_json)
        .collect();
    if entries.is_empty() {
        metadata.remove("managedFields");
    } else {
        metadata.insert("managedFields".into(), Value::Array(entries));
    }
}

/// The longest field manager name Kubernetes accepts.
pub const MAX_FIELD_MANAGER: usize = 128;

/// The field manager of a request: its `fieldManager` query parameter, else (for writes
/// other than apply, which requires the parameter) the program name of its User-Agent
/// (`kubectl/v1.32.0 (linux/amd64) …` → `kubectl`), as Kubernetes picks it.
pub fn field_manager(query: Option<&str>, user_agent: Option<&str>) -> Result<String, PatchError> {
    if let Some(manager) = query {
        if manager.chars().count() > MAX_FIELD_MANAGER {
            return Err(PatchError::Invalid(format!(
                "fieldManager must be at most {MAX_FIELD_MANAGER} characters"
            )));
        }
        if manager.chars().any(char::is_control) {
            return Err(PatchError::Invalid(
                "fieldManager must consist of printable characters".into(),
            ));
        }
        return Ok(manager.to_string());
    }
    let program = user_agent
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default();
    Ok(program
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_MANAGER)
        .collect())
}
