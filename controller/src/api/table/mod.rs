//! `meta.k8s.io/v1` Table responses: the columns a Kubernetes API server shows for each
//! kind, so plain `kubectl get` prints what it prints against Kubernetes.
//!
//! Like the Kubernetes API server, every row carries every column (also the `-o wide` ones,
//! priority 1); the client picks the columns it prints.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::resources::Resource;

pub mod duration;
mod events;
mod nodes;
mod pods;
#[cfg(test)]
pub mod samples;
mod workloads;

pub use nodes::{roles as node_roles, status as node_status};
pub use pods::status as pod_status;
pub use workloads::job_status;

/// What each row carries in `object` (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (kubectl's default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// The value of `?includeObject=` (`None`, `Metadata`, `Object`); `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "None" => Some(Self::None),
            "Metadata" => Some(Self::Metadata),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

/// One column of a Table (`TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Name as the server sends it (`Nominated Node`); kubectl prints it upper-cased.
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `boolean`, `date`.
    pub kind: &'static str,
    /// `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0: always printed; 1: printed with `-o wide`.
    pub priority: u8,
}

impl Column {
    const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Self {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    const fn wide(self) -> Self {
        Self {
            priority: 1,
            ..self
        }
    }

    const fn named(self) -> Self {
        Self {
            format: "name",
            ..self
        }
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The `Name` column.
const NAME: Column = Column::new("Name", "string", NAME_DOC).named();
/// The `Age` column.
const AGE: Column = Column::new("Age", "string", CREATED_DOC);
const CONTAINERS: Column = Column::new(
    "Containers",
    "string",
    "Names of each container in the template.",
)
.wide();
const IMAGES: Column = Column::new(
    "Images",
    "string",
    "Images referenced by each container in the template.",
)
.wide();

/// One row: its cells, and the `conditions` Kubernetes attaches to some (finished pods).
struct Row {
    cells: Vec<Value>,
    conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Self {
            cells,
            conditions: None,
        }
    }
}

/// The columns of a kind and how to compute one row.
struct Printer {
    columns: &'static [Column],
    row: fn(&Value, DateTime<Utc>) -> Row,
}

fn printer(kind: &str) -> Printer {
    match kind {
        "Pod" => Printer {
            columns: pods::COLUMNS,
            row: pods::row,
        },
        "Node" => Printer {
            columns: nodes::COLUMNS,
            row: |n, now| nodes::row(n, now).into(),
        },
        "Namespace" => Printer {
            columns: events::NAMESPACE_COLUMNS,
            row: |n, now| events::namespace_row(n, now).into(),
        },
        "Event" => Printer {
            columns: events::COLUMNS,
            row: |e, now| events::row(e, now).into(),
        },
        "Job" => Printer {
            columns: workloads::JOB_COLUMNS,
            row: |j, now| workloads::job_row(j, now).into(),
        },
        "CronJob" => Printer {
            columns: workloads::CRONJOB_COLUMNS,
            row: |c, now| workloads::cronjob_row(c, now).into(),
        },
        "DaemonSet" => Printer {
            columns: workloads::DAEMONSET_COLUMNS,
            row: |d, now| workloads::daemonset_row(d, now).into(),
        },
        "ControllerRevision" => Printer {
            columns: workloads::REVISION_COLUMNS,
            row: |r, now| workloads::revision_row(r, now).into(),
        },
        // Kubernetes' default for kinds without a printer: the name and when it was made.
        _ => Printer {
            columns: DEFAULT_COLUMNS,
            row: |o, _| vec![json!(name(o)), o["metadata"]["creationTimestamp"].clone()].into(),
        },
    }
}

const DEFAULT_COLUMNS: &[Column] = &[NAME, Column::new("Created At", "date", CREATED_DOC)];

/// The columns Kubernetes shows for `kind` (all of them, priority 1 included).
pub fn columns(kind: &str) -> &'static [Column] {
    printer(kind).columns
}

/// The Table of `items` (objects as the API shows them) of `resource`.
/// `list_metadata` is the list's `metadata` (resourceVersion, continue).
pub fn table(
    resource: &Resource,
    items: &[Value],
    now: DateTime<Utc>,
    include_object: IncludeObject,
    list_metadata: Value,
) -> Value {
    let printer = printer(resource.kind);
    let rows: Vec<Value> = items
        .iter()
        .map(|item| table_row(&printer, item, now, include_object))
        .collect();
    let mut table = table_head(&printer, list_metadata);
    table["rows"] = Value::Array(rows);
    table
}

/// [`table`] as JSON text, from items that are each parsed, turned into a row and dropped
/// in turn: a Table of 10,000 pods never holds 10,000 trees at once.
pub fn table_text(
    resource: &Resource,
    items: impl IntoIterator<Item = Value>,
    now: DateTime<Utc>,
    include_object: IncludeObject,
    list_metadata: Value,
) -> Vec<u8> {
    let printer = printer(resource.kind);
    let mut out = table_head(&printer, list_metadata).to_string().into_bytes();
    // The head is an object: reopen it for the rows.
    out.pop();
    out.extend_from_slice(b",\"rows\":[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            table_row(&printer, &item, now, include_object)
                .to_string()
                .as_bytes(),
        );
    }
    out.extend_from_slice(b"]}");
    out
}

fn table_head(printer: &Printer, list_metadata: Value) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": if list_metadata.is_object() { list_metadata } else { json!({}) },
        "columnDefinitions": printer.columns.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
    })
}

fn table_row(printer: &Printer, item: &Value, now: DateTime<Utc>, include: IncludeObject) -> Value {
    let row = (printer.row)(item, now);
    let mut out = Map::new();
    out.insert("cells".into(), Value::Array(row.cells));
    if let Some(conditions) = row.conditions {
        out.insert("conditions".into(), conditions);
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            out.insert("object".into(), partial_object_metadata(item));
        }
        IncludeObject::Object => {
            out.insert("object".into(), item.clone());
        }
    }
    Value::Object(out)
}

/// The Table of one object (`GET .../pods/web`, and each watch event's object). Its metadata
/// is the object's resourceVersion. Watch streams send the columns with the first event only
/// (`with_columns: false` afterwards), as kube-apiserver does to save bandwidth; kubectl
/// keeps using the last columns it saw.
pub fn table_of_one(
    resource: &Resource,
    object: &Value,
    now: DateTime<Utc>,
    include_object: IncludeObject,
    with_columns: bool,
) -> Value {
    let metadata = match object["metadata"]["resourceVersion"].as_str() {
        Some(rv) => json!({"resourceVersion": rv}),
        None => json!({}),
    };
    let mut t = table(
        resource,
        std::slice::from_ref(object),
        now,
        include_object,
        metadata,
    );
    if !with_columns {
        t["columnDefinitions"] = json!([]);
    }
    t
}

/// The object's metadata alone, as `?includeObject=Metadata` returns it.
pub fn partial_object_metadata(item: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": item.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A string field, empty when absent or not a string.
pub(crate) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `text`, or `default` when empty.
fn or(v: &Value, default: &str) -> String {
    match text(v) {
        "" => default.to_string(),
        s => s.to_string(),
    }
}

/// An integer field, 0 when absent.
fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn name(item: &Value) -> &str {
    text(&item["metadata"]["name"])
}

fn age(item: &Value, now: DateTime<Utc>) -> Value {
    json!(duration::since(&item["metadata"]["creationTimestamp"], now))
}

/// `k=v,k2=v2` sorted by key, or `<none>` (Kubernetes' `labels.FormatLabels`).
pub fn format_labels(labels: &Value) -> String {
    let mut pairs: Vec<String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", text(v))).collect())
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs.join(",")
}

/// A `LabelSelector` as Kubernetes prints it (`metav1.FormatLabelSelector`):
/// `app=web,tier in (a,b),!gone`, `<none>` for an empty one.
pub fn format_selector(selector: &Value) -> String {
    let Some(selector) = selector.as_object() else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        let mut keys: Vec<&String> = labels.keys().collect();
        keys.sort();
        parts.extend(keys.iter().map(|k| format!("{k}={}", text(&labels[*k]))));
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut requirements: Vec<(String, String)> = expressions
        .iter()
        .map(|e| {
            let key = text(&e["key"]).to_string();
            let mut values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().map(text).collect())
                .unwrap_or_default();
            values.sort_unstable();
            let set = values.join(",");
            let shown = match text(&e["operator"]) {
                "In" => format!("{key} in ({set})"),
                "NotIn" => format!("{key} notin ({set})"),
                "Exists" => key.clone(),
                "DoesNotExist" => format!("!{key}"),
                other => format!("{key} {other} ({set})"),
            };
            (key, shown)
        })
        .collect();
    // Kubernetes sorts a selector's requirements by key, labels and expressions together.
    requirements.extend(parts.into_iter().map(|p| {
        let key = p.split('=').next().unwrap_or("").to_string();
        (key, p)
    }));
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    if requirements.is_empty() {
        return "<none>".into();
    }
    requirements
        .into_iter()
        .map(|(_, shown)| shown)
        .collect::<Vec<_>>()
        .join(",")
}

/// Container names and images, comma-separated, of a pod spec.
fn containers(pod_spec: &Value) -> (Value, Value) {
    let list = pod_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = list.iter().map(|c| text(&c["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| text(&c["image"])).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

#[cfg(test)]
mod tests;
