//! JSON values printed as block-style YAML (for `-o yaml`).

use serde_json::Value;

/// Whether a plain `s` would read back as something else than a string (`true`, `12`, a
/// timestamp): kubectl's printer double-quotes those.
fn ambiguous(s: &str) -> bool {
    let reserved = [
        "true", "false", "null", "~", "yes", "no", "on", "off", "True", "False", "Null", "NULL",
        "TRUE", "FALSE", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF",
    ];
    s.is_empty()
        || reserved.contains(&s)
        || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || looks_like_timestamp(s)
}

/// Whether a string must be quoted to read back as the same string.
fn needs_quotes(s: &str) -> bool {
    if ambiguous(s) || s.trim() != s {
        return true;
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or(' ');
    // `-`, `?` and `:` start a plain scalar unless a space follows (`-c` stays plain, as
    // kubectl prints it).
    if "-?:".contains(first) {
        return chars.next().is_none_or(|c| c == ' ');
    }
    if ",[]{}#&*!|>'\"%@`".contains(first) {
        return true;
    }
    s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(|c| c.is_control())
}

/// Whether YAML would read `s` as a timestamp (`2026-01-02`, `2026-01-02T03:04:05Z`), which
/// kubectl's printer quotes to keep it a string.
fn looks_like_timestamp(s: &str) -> bool {
    let date = s.split(['T', 't', ' ']).next().unwrap_or("");
    let parts: Vec<&str> = date.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // As kubectl's printer: double quotes for what would read as another type or needs
        // escapes, single quotes for the rest that cannot be plain.
        Value::String(s) if ambiguous(s) || s.trim() != s || s.chars().any(char::is_control) => {
            Value::String(s.clone()).to_string()
        }
        Value::String(s) if needs_quotes(s) => format!("'{}'", s.replace('\'', "''")),
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

/// A multi-line string as kubectl's printer writes it, a literal block (`|`, `|-` without a
/// final line break, `|+` with several), when one can hold it exactly.
fn literal_block(value: &Value, indent: usize) -> Option<String> {
    let s = value.as_str()?;
    let plain_lines = s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.ends_with(' ')
        && !s.contains(" \n")
        && !s.chars().any(|c| c != '\n' && c.is_control());
    if !plain_lines {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let chomp = match s.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}\n");
    for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("{pad}{line}\n"));
        }
    }
    Some(out)
}

fn write(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let key = scalar(&Value::String(key.clone()));
                if let Some(block) = literal_block(v, indent + 2) {
                    out.push_str(&format!("{pad}{key}: {block}"));
                } else if is_empty_collection(v) {
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
                if let Some(block) = literal_block(item, indent + 2) {
                    out.push_str(&format!("{pad}- {block}"));
                } else if is_empty_collection(item) {
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
    fn multi_line_strings_are_literal_blocks_as_kubectl_prints_them() {
        let value = json!({"data": {"script": "echo a\necho b\n", "raw": "x\ny"}, "args": ["-c", "a\n\nb\n\n"]});
        assert_eq!(
            to_yaml(&value),
            "args:\n- -c\n- |+\n  a\n\n  b\n\ndata:\n  raw: |-\n    x\n    y\n  script: |\n    echo a\n    echo b\n"
        );
    }

    #[test]
    fn quote_styles_follow_kubectl() {
        let text = |s: &str| scalar(&Value::String(s.into()));
        assert_eq!(text("2026-12-01T15:05:00Z"), "\"2026-12-01T15:05:00Z\"");
        assert_eq!(text(""), "\"\"");
        assert_eq!(text("a \"b\": c"), "'a \"b\": c'");
        assert_eq!(text("it's: x"), "'it''s: x'");
        assert_eq!(text("two\nlines"), "\"two\\nlines\"");
        assert_eq!(text("-c"), "-c");
    }

    #[test]
    fn strings_are_quoted_as_kubectl_quotes_them() {
        for (text, quoted) in [
            ("-c", false),
            ("-", true),
            ("- x", true),
            ("2026-12-01T15:05:00Z", true),
            ("2026-12-01", true),
            ("v1.2.3", false),
            ("pi-1", false),
            ("12", true),
        ] {
            assert_eq!(needs_quotes(text), quoted, "{text}");
        }
    }

    #[test]
    fn printed_yaml_reads_back_as_the_same_value() {
        let value = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "x", "version": "1.0"}, "annotations": {}},
            "spec": {
                "containers": [
                    {"name": "a", "command": ["sh", "-c", "echo hi: there # not a comment"], "env": []},
                    {"name": "m", "args": ["one\ntwo\n", "no end\n\nafter a gap", "kept\n\n", " lead\nx", "tab\there\n"]},
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
