//! Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), which
//! kubectl's typed clients send with no fallback to JSON (`create job`, `create cronjob`,
//! `create namespace`, `drain`, `auth can-i`). A body is `k8s\0` and a `runtime.Unknown`
//! envelope whose `raw` holds the object; [`decode`] turns it into the JSON Kubernetes
//! would show, so the JSON path validates it like any other body.

mod schema;
#[cfg(test)]
mod tests;
mod wire;

use std::fmt;

use serde_json::{json, Map, Value};

use schema::{Kind, Message};
use wire::{fields, Wire};

/// The media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Deeper than any object Drover reads (a CronJob's node affinity is 12 levels).
const MAX_DEPTH: usize = 24;

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A kind Drover does not read in protobuf (415: the client may resend JSON).
    Unsupported(String),
    /// Malformed, or a field Drover does not take (400).
    Invalid(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Unsupported(m) | DecodeError::Invalid(m) => f.write_str(m),
        }
    }
}

impl From<String> for DecodeError {
    fn from(message: String) -> Self {
        DecodeError::Invalid(message)
    }
}

/// The object an enveloped protobuf body holds, as JSON with `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let (api_version, kind, raw) = unwrap(body)?;
    let Some(message) = schema::root(&api_version, &kind) else {
        return Err(DecodeError::Unsupported(format!(
            "{kind} ({api_version}) in protobuf is not read by Drover; send JSON or YAML"
        )));
    };
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    read_message(message, raw, 0, &mut object)
        .map_err(|e| DecodeError::Invalid(format!("protobuf {kind}: {e}")))?;
    Ok(Value::Object(object))
}

/// The envelope's (apiVersion, kind, raw object).
fn unwrap(body: &[u8]) -> Result<(String, String, &[u8]), DecodeError> {
    let inner = body.strip_prefix(MAGIC).ok_or_else(|| {
        DecodeError::Invalid("not a Kubernetes protobuf body (no k8s magic)".into())
    })?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for item in fields(inner) {
        match item? {
            (1, Wire::Bytes(type_meta)) => {
                for item in fields(type_meta) {
                    match item? {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(encoding)) if !encoding.is_empty() => {
                return Err(DecodeError::Invalid(format!(
                    "protobuf content encoding {:?} is not supported",
                    String::from_utf8_lossy(encoding)
                )))
            }
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
}

/// Reads `raw` as a `message` into `out`.
fn read_message(
    message: &Message,
    raw: &[u8],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err("the object is nested too deeply".into());
    }
    for item in fields(raw) {
        let (number, value) = item?;
        let Some(field) = message.field(number) else {
            // Go writes every non-pointer field, set or not: zero values say nothing.
            if value.is_zero() {
                continue;
            }
            return Err(format!(
                "unknown field {number} in {} (a setting Drover does not support)",
                message.name
            ));
        };
        let at = |e: String| format!("{}: {e}", field.name);
        match field.kind {
            Kind::Skip => continue,
            Kind::Refuse if !field.pointer && value.is_zero() => continue,
            Kind::Refuse => {
                return Err(format!(
                    "{} (field {number} of {}) is not supported by Drover",
                    field.name, message.name
                ))
            }
            Kind::Inline(inner) => {
                let Wire::Bytes(b) = value else {
                    return Err(at("expected a message".into()));
                };
                read_message(inner, b, depth + 1, out).map_err(at)?;
                continue;
            }
            Kind::StrMap | Kind::QuantityMap => {
                let (key, entry) = map_entry(field.kind, value).map_err(at)?;
                let map = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, entry);
                }
                continue;
            }
            _ => {}
        }
        if field.repeated {
            let items = scalar_items(field.kind, value, depth).map_err(at)?;
            let list = out
                .entry(field.name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                list.extend(items);
            }
            continue;
        }
        let decoded = single(field.kind, value, depth).map_err(at)?;
        if !field.pointer && is_empty(&decoded) {
            // Unset, as JSON's `omitempty` would leave it out; a repeat clears it.
            out.remove(field.name);
            continue;
        }
        out.insert(field.name.into(), decoded);
    }
    Ok(())
}

/// A singular value of `kind`.
fn single(kind: Kind, value: Wire<'_>, depth: usize) -> Result<Value, String> {
    Ok(match (kind, value) {
        (Kind::Str, Wire::Bytes(b)) => json!(text(b)?),
        // int32 and int64 both put negative values in two's complement.
        (Kind::Int, Wire::Varint(v)) => json!(v as i64),
        (Kind::Bool, Wire::Varint(v)) => json!(v != 0),
        (Kind::Quantity, Wire::Bytes(b)) => quantity(b)?,
        (Kind::IntOrString, Wire::Bytes(b)) => int_or_string(b)?,
        (Kind::Msg(inner), Wire::Bytes(b)) => {
            let mut object = Map::new();
            read_message(inner, b, depth + 1, &mut object)?;
            Value::Object(object)
        }
        (Kind::Refuse | Kind::Skip | Kind::Inline(_) | Kind::StrMap | Kind::QuantityMap, _) => {
            return Err("a field read elsewhere".into())
        }
        _ => return Err("unexpected wire type".into()),
    })
}

/// The items one wire field of a repeated field holds: one, or several packed varints.
fn scalar_items(kind: Kind, value: Wire<'_>, depth: usize) -> Result<Vec<Value>, String> {
    if let (Kind::Int | Kind::Bool, Wire::Bytes(mut packed)) = (kind, value) {
        let mut items = Vec::new();
        while !packed.is_empty() {
            items.push(single(
                kind,
                Wire::Varint(wire::varint(&mut packed)?),
                depth,
            )?);
        }
        return Ok(items);
    }
    Ok(vec![single(kind, value, depth)?])
}

/// `resource.Quantity`: its text is field 1.
fn quantity(raw: &[u8]) -> Result<Value, String> {
    let mut out = String::new();
    for item in fields(raw) {
        match item? {
            (1, Wire::Bytes(b)) => out = text(b)?,
            (_, v) if v.is_zero() => {}
            (n, _) => return Err(format!("unknown field {n} in Quantity")),
        }
    }
    Ok(json!(out))
}

/// `intstr.IntOrString`: `type` 0 is `intVal`, 1 is `strVal`.
fn int_or_string(raw: &[u8]) -> Result<Value, String> {
    let (mut is_string, mut number, mut name) = (false, 0i64, String::new());
    for item in fields(raw) {
        match item? {
            (1, Wire::Varint(v)) => is_string = v == 1,
            (2, Wire::Varint(v)) => number = i64::from(v as i32),
            (3, Wire::Bytes(b)) => name = text(b)?,
            (_, v) if v.is_zero() => {}
            (n, _) => return Err(format!("unknown field {n} in IntOrString")),
        }
    }
    Ok(if is_string {
        json!(name)
    } else {
        json!(number)
    })
}

/// One entry of a map field: key = 1, value = 2.
fn map_entry(kind: Kind, value: Wire<'_>) -> Result<(String, Value), String> {
    let Wire::Bytes(entry) = value else {
        return Err("expected a map entry".into());
    };
    let (mut key, mut out) = (String::new(), None);
    for item in fields(entry) {
        match (item?, kind) {
            ((1, Wire::Bytes(b)), _) => key = text(b)?,
            ((2, Wire::Bytes(b)), Kind::QuantityMap) => out = Some(quantity(b)?),
            ((2, Wire::Bytes(b)), _) => out = Some(json!(text(b)?)),
            _ => return Err("malformed map entry".into()),
        }
    }
    Ok((key, out.unwrap_or_else(|| json!(""))))
}

/// What Go's `omitempty` leaves out.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
    }
}
