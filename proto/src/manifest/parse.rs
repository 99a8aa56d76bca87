//! From YAML text to validated manifests, or errors that point at the field.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::ignored::find_ignored;
use super::types::{CronJob, DaemonSet, Job, ObjectMeta, Pod};
use super::validate::validate;
use super::yaml::{load_documents, Document, Position};
use super::Kind;

/// A parsed, validated object from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// `v1 Pod`.
    Pod(Pod),
    /// `batch/v1 Job`.
    Job(Job),
    /// `batch/v1 CronJob`.
    CronJob(CronJob),
    /// `apps/v1 DaemonSet`.
    DaemonSet(DaemonSet),
}

impl Manifest {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Manifest::Pod(_) => Kind::Pod,
            Manifest::Job(_) => Kind::Job,
            Manifest::CronJob(_) => Kind::CronJob,
            Manifest::DaemonSet(_) => Kind::DaemonSet,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Manifest::Pod(o) => &o.metadata,
            Manifest::Job(o) => &o.metadata,
            Manifest::CronJob(o) => &o.metadata,
            Manifest::DaemonSet(o) => &o.metadata,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The object's namespace (`default` when unset).
    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or("default")
    }

    /// The `spec`, as JSON.
    pub fn spec_json(&self) -> Value {
        let spec = match self {
            Manifest::Pod(o) => serde_json::to_value(&o.spec),
            Manifest::Job(o) => serde_json::to_value(&o.spec),
            Manifest::CronJob(o) => serde_json::to_value(&o.spec),
            Manifest::DaemonSet(o) => serde_json::to_value(&o.spec),
        };
        // Serializing plain data structs with string keys cannot fail.
        spec.unwrap_or(Value::Null)
    }

    /// Parses and validates one object given as JSON (e.g. from the API).
    pub fn from_json(value: Value) -> Result<Manifest, ManifestError> {
        Manifest::from_json_warned(value).map(|(manifest, _)| manifest)
    }

    /// [`Manifest::from_json`], with the fields it ignored.
    pub fn from_json_warned(
        value: Value,
    ) -> Result<(Manifest, Vec<ManifestWarning>), ManifestError> {
        let document = Document {
            value,
            positions: Default::default(),
            start: Position { line: 1, column: 1 },
        };
        manifest_from_document("<json>", 1, &document)
    }
}

/// An error in a manifest: which file, which document, which object, which field, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// File name (or `-`).
    pub source: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// `Kind name` of the object, when known.
    pub object: Option<String>,
    /// Field path, e.g. `spec.containers[0].restartPolicy`; empty for the whole document.
    pub path: String,
    /// Line and column.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// `file:line:col: document N (Kind "name")`, where an error or a warning is.
fn write_location(
    f: &mut fmt::Formatter<'_>,
    source: &str,
    position: Position,
    document: usize,
    object: Option<&str>,
) -> fmt::Result {
    write!(f, "{source}:{position}: document {document}")?;
    if let Some(object) = object {
        write!(f, " ({object})")?;
    }
    Ok(())
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(
            f,
            &self.source,
            self.position,
            self.document,
            self.object.as_deref(),
        )?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ManifestError {}

/// A field a manifest sets that Drover accepts and ignores ([`super::ignored`]), located as
/// an error would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWarning {
    /// File name (or `-`).
    pub source: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// `Kind name` of the object, when known.
    pub object: Option<String>,
    /// Field path, e.g. `spec.template.spec.dnsPolicy`.
    pub path: String,
    /// Line and column.
    pub position: Position,
    /// Why it changes nothing.
    pub reason: String,
}

impl ManifestWarning {
    /// One line for an API client: the field and why it is ignored.
    pub fn message(&self) -> String {
        format!("{}: ignored: {}", self.path, self.reason)
    }
}

impl fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(
            f,
            &self.source,
            self.position,
            self.document,
            self.object.as_deref(),
        )?;
        write!(f, ": {}", self.message())
    }
}

/// Parses every document of a YAML stream. Either all objects are valid and returned, or
/// every error found is returned (so a file with an error stores nothing).
pub fn parse_manifests(source: &str, text: &str) -> Result<Vec<Manifest>, Vec<ManifestError>> {
    parse_manifests_with(source, text, |_| {})
}

/// Like [`parse_manifests`], for what `kubectl get -o yaml` prints: a `v1 List`'s items are
/// objects of their own, and `prepare` sees each object's JSON before it is read (a client
/// takes out what the server fills in there). Positions still point into `text`.
pub fn parse_manifests_with(
    source: &str,
    text: &str,
    prepare: impl Fn(&mut Value),
) -> Result<Vec<Manifest>, Vec<ManifestError>> {
    parse_manifests_warned(source, text, prepare).map(|(manifests, _)| manifests)
}

/// [`parse_manifests_with`], with every field the objects set that Drover ignores.
pub fn parse_manifests_warned(
    source: &str,
    text: &str,
    prepare: impl Fn(&mut Value),
) -> Result<(Vec<Manifest>, Vec<ManifestWarning>), Vec<ManifestError>> {
    let documents = load_documents(text).map_err(|e| {
        vec![ManifestError {
            source: source.to_string(),
            document: e.document,
            object: None,
            path: String::new(),
            position: e.position,
            message: format!("invalid YAML: {}", e.message),
        }]
    })?;
    let mut manifests = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        for mut object in list_items(document) {
            if object.value.is_null() {
                continue;
            }
            prepare(&mut object.value);
            match manifest_from_document(source, index + 1, &object) {
                Ok((m, w)) => {
                    manifests.push(m);
                    warnings.extend(w);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    if errors.is_empty() {
        Ok((manifests, warnings))
    } else {
        Err(errors)
    }
}

/// The objects of a document: a `v1 List`'s items, each with the positions under it, or the
/// document itself.
fn list_items(document: Document) -> Vec<Document> {
    let is_list = document.value["apiVersion"] == "v1"
        && document.value["kind"] == "List"
        && document.value["items"].is_array();
    if !is_list {
        return vec![document];
    }
    let Document {
        mut value,
        positions,
        start,
    } = document;
    let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) else {
        return Vec::new();
    };
    std::mem::take(items)
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let prefix = format!("items[{i}]");
            let positions: std::collections::HashMap<String, Position> = positions
                .iter()
                .filter_map(|(path, at)| {
                    let rest = path.strip_prefix(&prefix)?;
                    let rest = match rest.strip_prefix('.') {
                        Some(field) => field,
                        None if rest.is_empty() || rest.starts_with('[') => rest,
                        None => return None,
                    };
                    Some((rest.to_string(), *at))
                })
                .collect();
            let start = positions.get("").copied().unwrap_or(start);
            Document {
                value,
                positions,
                start,
            }
        })
        .collect()
}

fn manifest_from_document(
    source: &str,
    number: usize,
    document: &Document,
) -> Result<(Manifest, Vec<ManifestWarning>), ManifestError> {
    let error = |object: Option<String>, path: &str, message: String| ManifestError {
        source: source.to_string(),
        document: number,
        object,
        path: path.to_string(),
        position: document.position_of(path),
        message,
    };
    let root = document.value.as_object().ok_or_else(|| {
        error(
            None,
            "",
            "expected a mapping with apiVersion, kind, metadata and spec".into(),
        )
    })?;
    let api_version = match root.get("apiVersion") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(error(None, "apiVersion", "must be a string".into())),
        None => return Err(error(None, "", "missing field `apiVersion`".into())),
    };
    let kind_name = match root.get("kind") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(error(None, "kind", "must be a string".into())),
        None => return Err(error(None, "", "missing field `kind`".into())),
    };
    let kind = match Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind_name && *k != Kind::Node)
    {
        Some(kind) => kind,
        None => {
            return Err(error(
                None,
                "kind",
                format!(
                    "unsupported kind \"{kind_name}\" (supported: Pod, Job, CronJob, DaemonSet)"
                ),
            ))
        }
    };
    if api_version != kind.api_version() {
        return Err(error(
            None,
            "apiVersion",
            format!(
                "unsupported apiVersion \"{api_version}\" for kind {kind_name} (expected \"{}\")",
                kind.api_version()
            ),
        ));
    }
    let object = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(|name| format!("{kind_name} \"{name}\""));

    let value = &document.value;
    let warnings = find_ignored(kind, value)
        .into_iter()
        .map(|ignored| ManifestWarning {
            source: source.to_string(),
            document: number,
            object: object.clone(),
            position: document.position_of(&ignored.path),
            path: ignored.path,
            reason: ignored.reason.to_string(),
        })
        .collect();
    let typed = |e: (String, String)| error(object.clone(), &e.0, e.1);
    let manifest = match kind {
        Kind::Pod => Manifest::Pod(deserialize(value).map_err(typed)?),
        Kind::Job => Manifest::Job(deserialize(value).map_err(typed)?),
        Kind::CronJob => Manifest::CronJob(deserialize(value).map_err(typed)?),
        Kind::DaemonSet => Manifest::DaemonSet(deserialize(value).map_err(typed)?),
        Kind::Node => unreachable!("nodes are filtered out above"),
    };
    if let Some((path, message)) = validate(&manifest).into_iter().next() {
        return Err(error(object, &path, message));
    }
    Ok((manifest, warnings))
}

/// Deserializes `value`, returning the failing field's path and a message on error.
fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = String::new();
        for segment in e.path().iter() {
            match segment {
                Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                Segment::Map { key } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Enum { .. } | Segment::Unknown => {}
            }
        }
        let message = e.into_inner().to_string();
        // Name an unknown field itself, so the position and the path both point at what the
        // user wrote.
        if let Some(field) = unknown_field_name(&message) {
            let last = path.rsplit(['.', ']']).next().unwrap_or("");
            if last != field {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&field);
            }
            return (
                path,
                format!("unknown field \"{field}\" (not supported by Drover)"),
            );
        }
        (path, message)
    })
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(text: &str) -> ManifestError {
        parse_manifests("test.yaml", text).unwrap_err().remove(0)
    }

    const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: main
    command: [sleep, '100']
";

    #[test]
    fn a_valid_pod_parses_with_default_namespace() {
        let manifests = parse_manifests("pod.yaml", POD).unwrap();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].kind(), Kind::Pod);
        assert_eq!(manifests[0].namespace(), "default");
        assert_eq!(manifests[0].name(), "web");
    }

    #[test]
    fn unknown_field_names_path_and_line_column() {
        let text = POD.replace("    command:", "    bogus: 1\n    command:");
        let err = first_error(&text);
        assert_eq!(err.path, "spec.containers[0].bogus");
        assert_eq!((err.position.line, err.position.column), (8, 12));
        assert_eq!(err.object.as_deref(), Some("Pod \"web\""));
        let shown = err.to_string();
        assert!(
            shown.starts_with(
                "test.yaml:8:12: document 1 (Pod \"web\"): spec.containers[0].bogus: unknown field"
            ),
            "{shown}"
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let text = format!("{POD}  terminationGracePeriodSeconds: soon\n");
        let err = first_error(&text);
        assert_eq!(err.path, "spec.terminationGracePeriodSeconds");
        assert_eq!(err.position.line, 9);
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn invalid_restart_policy_names_the_field() {
        let text = format!("{POD}  restartPolicy: Sometimes\n");
        let err = first_error(&text);
        assert_eq!(err.path, "spec.restartPolicy");
        assert_eq!((err.position.line, err.position.column), (9, 18));
        assert!(err.message.contains("Sometimes"), "{}", err.message);
    }

    #[test]
    fn bad_api_version_and_kind_are_errors() {
        let err = first_error(&POD.replace("apiVersion: v1", "apiVersion: v2"));
        assert_eq!(err.path, "apiVersion");
        assert_eq!(err.position.line, 1);
        let err = first_error(&POD.replace("kind: Pod", "kind: Deployment"));
        assert_eq!(err.path, "kind");
        assert!(err.message.contains("Deployment"));
    }

    #[test]
    fn errors_name_the_document_number() {
        let text = format!("{POD}---\n{}", POD.replace("name: web", "name: Web_2"));
        let err = first_error(&text);
        assert_eq!(err.document, 2);
        assert_eq!(err.path, "metadata.name");
        assert_eq!(err.position.line, 13);
    }

    #[test]
    fn every_document_with_an_error_is_reported() {
        let bad = POD.replace("name: web", "name: UPPER");
        let text = format!("{bad}---\n{POD}---\n{bad}");
        let errors = parse_manifests("f.yaml", &text).unwrap_err();
        assert_eq!(
            errors.iter().map(|e| e.document).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }

    #[test]
    fn yaml_syntax_errors_have_positions() {
        let errors = parse_manifests("f.yaml", "apiVersion: v1\nkind: [Pod\n").unwrap_err();
        assert!(errors[0].message.starts_with("invalid YAML"));
    }

    #[test]
    fn a_lists_items_are_objects_whose_errors_point_into_the_list() {
        let item = |name: &str| {
            POD.replace("name: web", &format!("name: {name}"))
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
                .replacen("  apiVersion", "- apiVersion", 1)
        };
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n{}\n{}\nmetadata:\n  resourceVersion: \"\"\n",
            item("a"),
            item("b")
        );
        let names: Vec<String> = parse_manifests("l.yaml", &list)
            .unwrap()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let err = first_error(&list.replacen("name: b", "name: B", 1));
        assert_eq!(err.path, "metadata.name");
        assert_eq!(err.object.as_deref(), Some("Pod \"B\""));
        assert_eq!(err.position.line, 15);
    }

    #[test]
    fn exported_objects_with_server_fields_apply_again() {
        let text = POD.replace(
            "  name: web\n",
            "  name: web\n  uid: abc\n  resourceVersion: \"7\"\n  generation: 2\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n",
        ) + "status:\n  phase: Running\n";
        assert!(parse_manifests("f.yaml", &text).is_ok());
    }
}
