//! YAML documents to JSON values, remembering where every field came from.
//!
//! Manifests are deserialized from `serde_json::Value`s so that one typed model serves YAML
//! from users and JSON from the store; the position index lets every error point at the
//! line and column the user wrote.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is rejected: no Kubernetes object needs it, and it bounds the
/// recursion of everything that later walks the value.
pub const MAX_DEPTH: usize = 64;
/// Upper bound on nodes per document, counting alias expansions (defuses "billion laughs").
pub const MAX_NODES: usize = 200_000;

/// A 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One YAML document as JSON, with the position of every value by field path
/// (`spec.containers[0].name`; the root is the empty path).
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's content.
    pub value: Value,
    /// Where each value starts, by path.
    pub positions: HashMap<String, Position>,
    /// Where the document starts.
    pub start: Position,
}

impl Document {
    /// The position of `path`, or of its closest ancestor that has one.
    pub fn position_of(&self, path: &str) -> Position {
        let mut current = path;
        loop {
            if let Some(position) = self.positions.get(current) {
                return *position;
            }
            match parent_path(current) {
                Some(parent) => current = parent,
                None => return self.start,
            }
        }
    }
}

fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// A syntax or structure error in YAML text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub position: Position,
    /// 1-based index of the document the error is in.
    pub document: usize,
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

enum Frame {
    Seq {
        items: Vec<Value>,
        path: String,
        anchor: usize,
    },
    Map {
        entries: Map<String, Value>,
        path: String,
        pending_key: Option<String>,
        anchor: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    positions: HashMap<String, Position>,
    nodes: usize,
    document: usize,
}

impl Builder {
    fn error(&self, message: impl Into<String>, at: Position) -> YamlError {
        YamlError {
            message: message.into(),
            position: at,
            document: self.document,
        }
    }

    /// Path of the value that is about to be produced, or `None` when it is a mapping key.
    fn next_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, path, .. }) => Some(format!("{path}[{}]", items.len())),
            Some(Frame::Map {
                pending_key: Some(key),
                path,
                ..
            }) => Some(if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            }),
            Some(Frame::Map {
                pending_key: None, ..
            }) => None,
        }
    }

    fn count(&mut self, added: usize, at: Position) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(added);
        if self.nodes > MAX_NODES {
            return Err(self.error(
                format!("document has more than {MAX_NODES} values (after expanding aliases)"),
                at,
            ));
        }
        Ok(())
    }

    /// Places a finished value into its parent; returns it when it completes the document.
    fn push_value(
        &mut self,
        value: Value,
        anchor: usize,
        at: Position,
    ) -> Result<Option<Value>, YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => Ok(Some(value)),
            Some(Frame::Seq { items, .. }) => {
                items.push(value);
                Ok(None)
            }
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                Some(key) => {
                    entries.insert(key, value);
                    Ok(None)
                }
                None => {
                    let key = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".to_string(),
                        _ => return Err(self.error("mapping keys must be scalars", at)),
                    };
                    if entries.contains_key(&key) {
                        return Err(self.error(format!("duplicate key \"{key}\""), at));
                    }
                    *pending_key = Some(key);
                    Ok(None)
                }
            },
        }
    }

    fn begin(&mut self, at: Position) -> Result<String, YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels"), at));
        }
        let path = self
            .next_path()
            .ok_or_else(|| self.error("mapping keys must be scalars", at))?;
        self.positions.insert(path.clone(), at);
        self.count(1, at)?;
        Ok(path)
    }
}

fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Value::Number(i.into());
    }
    if looks_like_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            if let Some(n) = Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn looks_like_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

/// Splits `text` into its YAML documents. Empty documents are kept as `Value::Null` so that
/// document numbers in errors match what the user counts.
pub fn load_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = Vec::new();
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        positions: HashMap::new(),
        nodes: 0,
        document: 1,
    };
    let mut start = Position { line: 1, column: 1 };
    let mut root: Option<Value> = None;

    for item in parser.by_ref() {
        let (event, span) = item.map_err(|e| YamlError {
            message: e.info().to_string(),
            position: Position {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            document: builder.document,
        })?;
        let at = position(&span);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                start = at;
                root = None;
                builder.anchors.clear();
                builder.positions.clear();
                builder.nodes = 0;
            }
            Event::DocumentEnd => {
                documents.push(Document {
                    value: root.take().unwrap_or(Value::Null),
                    positions: std::mem::take(&mut builder.positions),
                    start,
                });
                builder.document += 1;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(path) = builder.next_path() {
                    builder.positions.insert(path, at);
                }
                builder.count(1, at)?;
                let forced_string = tag
                    .as_ref()
                    .is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced_string {
                    resolve_plain(&text)
                } else {
                    Value::String(text.into_owned())
                };
                if let Some(done) = builder.push_value(value, anchor, at)? {
                    root = Some(done);
                }
            }
            Event::Alias(anchor) => {
                let value = builder
                    .anchors
                    .get(&anchor)
                    .cloned()
                    .ok_or_else(|| builder.error("alias to an unknown anchor", at))?;
                if let Some(path) = builder.next_path() {
                    builder.positions.insert(path, at);
                }
                builder.count(count_values(&value), at)?;
                if let Some(done) = builder.push_value(value, 0, at)? {
                    root = Some(done);
                }
            }
            Event::SequenceStart(anchor, _) => {
                let path = builder.begin(at)?;
                builder.stack.push(Frame::Seq {
                    items: Vec::new(),
                    path,
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                let path = builder.begin(at)?;
                builder.stack.push(Frame::Map {
                    entries: Map::new(),
                    path,
                    pending_key: None,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match builder.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map {
                        entries, anchor, ..
                    }) => (Value::Object(entries), anchor),
                    None => return Err(builder.error("unbalanced collection end", at)),
                };
                if let Some(done) = builder.push_value(value, anchor, at)? {
                    root = Some(done);
                }
            }
        }
    }
    Ok(documents)
}

fn count_values(value: &Value) -> usize {
    // Iterative so that a deep alias cannot overflow the stack while being counted.
    let mut pending = vec![value];
    let mut total = 0usize;
    while let Some(v) = pending.pop() {
        total += 1;
        match v {
            Value::Array(items) => pending.extend(items.iter()),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_recorded_per_field_path() {
        let docs = load_documents("a: 1\nb:\n  - x: true\n    y: hi\n").unwrap();
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(doc.value["b"][0]["y"], Value::String("hi".into()));
        assert_eq!(doc.value["b"][0]["x"], Value::Bool(true));
        assert_eq!(doc.positions["b[0].y"], Position { line: 4, column: 8 });
        assert_eq!(
            doc.position_of("b[0].y.zzz"),
            Position { line: 4, column: 8 }
        );
    }

    #[test]
    fn multi_document_streams_keep_document_numbers() {
        let docs = load_documents("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].value, Value::Null);
        assert_eq!(docs[2].start.line, 3);
    }

    #[test]
    fn scalars_follow_the_yaml_core_schema() {
        let doc = &load_documents("a: 010\nb: '1'\nc: 1.5\nd: ~\ne: 0x1f\nf: 64Mi\n").unwrap()[0];
        assert_eq!(doc.value["a"], Value::Number(10.into()));
        assert_eq!(doc.value["b"], Value::String("1".into()));
        assert_eq!(doc.value["c"].as_f64(), Some(1.5));
        assert_eq!(doc.value["d"], Value::Null);
        assert_eq!(doc.value["e"], Value::Number(31.into()));
        assert_eq!(doc.value["f"], Value::String("64Mi".into()));
    }

    #[test]
    fn duplicate_keys_are_errors_with_position() {
        let err = load_documents("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate key"));
        assert_eq!(err.position.line, 2);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = load_documents(&text).unwrap_err();
        assert!(err.message.contains("more than"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200);
        assert!(load_documents(&text).is_err());
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = load_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.position.line >= 1);
    }
}
