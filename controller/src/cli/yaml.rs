//! JSON values printed as block-style YAML (for `-o yaml`).

use serde_json::Value;

/// Whether a string must be quoted to read back as the same string.
fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return true;
    }
    let reserved = [
        "true", "false", "null", "~", "yes", "no", "on", "off", "True", "False", "Null", "NULL",
        "TRUE", "FALSE", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF",
    ];
    if reserved.contains(&s)
        || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
    {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return true;
    }
    s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(|c| c.is_control())
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if needs_quotes(s) => Value::String(s.clone()).to_string(),
        Value::String(s) => s.clone(),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn is_empty_collection(value: &Value) -> bool {
    match value {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => true,
    }
}

fn write(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let key = scalar(&Value::String(key.clone()));
                if is_empty_collection(v) {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(v)));
                } else {
                    out.push_str(&format!("{pad}{key}:\n"));
                    let child = if v.is_array() { indent } else { indent + 2 };
                    write(v, child, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_empty_collection(item) {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                } else {
                    let mut nested = String::new();
                    write(item, indent + 2, &mut nested);
                    // Put the first line of the nested block right after the dash.
                    let trimmed = nested.trim_start_matches(' ');
                    out.push_str(&format!("{pad}- {trimmed}"));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// The value as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    if is_empty_collection(value) {
        out.push_str(&scalar(value));
        out.push('\n');
    } else {
        write(value, 0, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::manifest::yaml::load_documents;
    use serde_json::json;

    #[test]
    fn printed_yaml_reads_back_as_the_same_value() {
        let value = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "x", "version": "1.0"}, "annotations": {}},
            "spec": {
                "containers": [
                    {"name": "a", "command": ["sh", "-c", "echo hi: there # not a comment"], "env": []},
                    {"name": "b", "args": ["true", "", "0x10", "- dash"]}
                ],
                "nested": [[1, 2], {"k": null}],
                "n": 3, "f": 1.5, "t": true
            },
            "status": {}
        });
        let text = to_yaml(&value);
        let back = &load_documents(&text).unwrap()[0].value;
        assert_eq!(back, &value, "{text}");
    }
}
