//! The protobuf bodies kubectl's typed clients send that Drover reads: `DeleteOptions`
//! (a DELETE, e.g. `kubectl drain` without evictions), a `policy/v1` Eviction and a
//! Namespace (`kubectl create namespace`). Every other protobuf body is refused (415). Bodies are Kubernetes' envelope: `k8s\0` and a
//! `runtime.Unknown` whose `raw` holds the object.

use serde_json::{json, Map, Value};

/// The media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at).ok_or("truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

/// The fields of one message, in order.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let (number, wire) = (key >> 3, key & 7);
        let field = match wire {
            0 => Field::Varint(varint(buf, &mut at)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).map_err(|_| "length")?;
                let end = at.checked_add(len).filter(|e| *e <= buf.len());
                let end = end.ok_or("truncated field")?;
                let bytes = &buf[at..end];
                at = end;
                Field::Bytes(bytes)
            }
            1 => {
                at = at
                    .checked_add(8)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated")?;
                continue;
            }
            5 => {
                at = at
                    .checked_add(4)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated")?;
                continue;
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((number, field));
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
}

/// The envelope's (apiVersion, kind, raw object).
fn unwrap(body: &[u8]) -> Result<(String, String, &[u8]), String> {
    let inner = body
        .strip_prefix(MAGIC)
        .ok_or("not a Kubernetes protobuf body")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (number, field) in fields(inner)? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                for (n, f) in fields(type_meta)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

/// `DeleteOptions` fields as JSON.
fn delete_options(raw: &[u8]) -> Result<Value, String> {
    let mut options = Map::new();
    let mut dry_run = Vec::new();
    for (number, field) in fields(raw)? {
        match (number, field) {
            // int64 on the wire: a negative value is its two's complement.
            (1, Field::Varint(v)) => {
                options.insert("gracePeriodSeconds".into(), json!(v as i64));
            }
            (2, Field::Bytes(b)) => {
                let mut preconditions = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => {
                            preconditions.insert("uid".into(), json!(text(b)?));
                        }
                        (2, Field::Bytes(b)) => {
                            preconditions.insert("resourceVersion".into(), json!(text(b)?));
                        }
                        _ => {}
                    }
                }
                options.insert("preconditions".into(), Value::Object(preconditions));
            }
            (3, Field::Varint(v)) => {
                options.insert("orphanDependents".into(), json!(v != 0));
            }
            (4, Field::Bytes(b)) => {
                options.insert("propagationPolicy".into(), json!(text(b)?));
            }
            (5, Field::Bytes(b)) => dry_run.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !dry_run.is_empty() {
        options.insert("dryRun".into(), Value::Array(dry_run));
    }
    Ok(Value::Object(options))
}

/// `ObjectMeta`'s name, namespace and labels.
fn object_meta(raw: &[u8]) -> Result<Value, String> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    for (number, field) in fields(raw)? {
        match (number, field) {
            (1, Field::Bytes(b)) => {
                meta.insert("name".into(), json!(text(b)?));
            }
            (2, Field::Bytes(b)) => {
                meta.insert("generateName".into(), json!(text(b)?));
            }
            (3, Field::Bytes(b)) => {
                meta.insert("namespace".into(), json!(text(b)?));
            }
            // map<string, string> labels = 11: entries of key = 1, value = 2.
            (11, Field::Bytes(entry)) => {
                let (mut key, mut value) = (String::new(), String::new());
                for (n, f) in fields(entry)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => key = text(b)?,
                        (2, Field::Bytes(b)) => value = text(b)?,
                        _ => {}
                    }
                }
                labels.insert(key, json!(value));
            }
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    Ok(Value::Object(meta))
}

/// A protobuf `DeleteOptions`, `Eviction` or `Namespace` body as the JSON it stands for.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let (api_version, kind, raw) = unwrap(body)?;
    match kind.as_str() {
        "DeleteOptions" => delete_options(raw),
        "Eviction" => {
            let mut eviction = json!({"apiVersion": api_version, "kind": "Eviction"});
            for (number, field) in fields(raw)? {
                match (number, field) {
                    (1, Field::Bytes(meta)) => eviction["metadata"] = object_meta(meta)?,
                    (2, Field::Bytes(b)) => eviction["deleteOptions"] = delete_options(b)?,
                    _ => {}
                }
            }
            Ok(eviction)
        }
        "Namespace" => {
            let mut namespace = json!({"apiVersion": api_version, "kind": "Namespace"});
            for (number, field) in fields(raw)? {
                if let (1, Field::Bytes(meta)) = (number, field) {
                    namespace["metadata"] = object_meta(meta)?;
                }
            }
            Ok(namespace)
        }
        other => Err(format!(
            "{other} in protobuf is not read by Drover; send JSON or YAML"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn kubectl_drain_delete_options() {
        // What kubectl 1.32 `drain --grace-period=5` sent.
        let body = hex("6b3873000a130a027631120d44656c6574654f7074696f6e73120208051a002200");
        assert_eq!(decode(&body).unwrap(), json!({"gracePeriodSeconds": 5}));
    }

    #[test]
    fn an_eviction_with_options() {
        let meta = [&[0x0a, 1, b'p'][..], &[0x1a, 7], b"default"].concat();
        let options = [&[0x08, 0x00][..], &[0x22, 10], b"Foreground"].concat();
        let raw = [
            &[0x0a, meta.len() as u8][..],
            &meta,
            &[0x12, options.len() as u8],
            &options,
        ]
        .concat();
        let type_meta = [&[0x0a, 9][..], b"policy/v1", &[0x12, 8], b"Eviction"].concat();
        let body = [
            MAGIC,
            &[0x0a, type_meta.len() as u8],
            &type_meta,
            &[0x12, raw.len() as u8],
            &raw,
        ]
        .concat();
        let eviction = decode(&body).unwrap();
        assert_eq!(eviction["metadata"]["name"], "p");
        assert_eq!(eviction["metadata"]["namespace"], "default");
        assert_eq!(eviction["deleteOptions"]["gracePeriodSeconds"], 0);
        assert_eq!(eviction["deleteOptions"]["propagationPolicy"], "Foreground");
    }

    #[test]
    fn a_namespace_with_labels() {
        let label = [&[0x0a, 5][..], b"owner", &[0x12, 1], b"a"].concat();
        let meta = [&[0x0a, 4][..], b"team", &[0x5a, label.len() as u8], &label].concat();
        let raw = [&[0x0a, meta.len() as u8][..], &meta].concat();
        let type_meta = [&[0x0a, 2][..], b"v1", &[0x12, 9], b"Namespace"].concat();
        let body = [
            MAGIC,
            &[0x0a, type_meta.len() as u8],
            &type_meta,
            &[0x12, raw.len() as u8],
            &raw,
        ]
        .concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"owner": "a"}}})
        );
    }

    #[test]
    fn other_objects_and_garbage_are_refused() {
        assert!(decode(b"{}").is_err());
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        let job = [MAGIC, &[0x0a, 5, 0x12, 3], b"Job"].concat();
        assert!(decode(&job).unwrap_err().contains("Job"));
    }
}
