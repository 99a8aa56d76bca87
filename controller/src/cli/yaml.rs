//! JSON values printed as block-style YAML (for `-o yaml` and written kubeconfigs), by
//! serde-saphyr's emitter set up to print what kubectl prints.

use serde_json::Value;

/// The emitter's settings that match kubectl's printer (go-yaml): sequences at their key's
/// indent, literal blocks for multi-line strings, long lines never folded, and YAML 1.1's
/// reading of plain scalars, so `"2026-12-01T10:00:00Z"`, `"true"`, `"yes"` and `"12"` stay
/// quoted strings for every reader.
fn options() -> serde_saphyr::SerializerOptions {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.indent_step = 2;
    options.compact_list_indent = true;
    options.prefer_block_scalars = true;
    // go-yaml wraps long plain lines instead of folding them; one long line reads the same
    // and is easier to grep.
    options.folded_wrap_chars = usize::MAX;
    options.yaml_12 = false;
    options
}

/// The value as a YAML document.
pub fn to_yaml(value: &Value) -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string_with_options(value, options())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::manifest::yaml::load_documents;
    use serde_json::json;

    fn yaml(value: &Value) -> String {
        to_yaml(value).unwrap()
    }

    #[test]
    fn multi_line_strings_are_literal_blocks_as_kubectl_prints_them() {
        let value = json!({"data": {"script": "echo a\necho b\n", "raw": "x\ny"}, "args": ["-c", "a\n\nb\n\n"]});
        assert_eq!(
            yaml(&value),
            "args:\n- -c\n- |+\n  a\n\n  b\n\ndata:\n  raw: |-\n    x\n    y\n  script: |\n    echo a\n    echo b\n"
        );
    }

    #[test]
    fn strings_that_read_as_other_types_are_double_quoted_as_kubectl_quotes_them() {
        for (text, printed) in [
            ("2026-12-01T10:00:00Z", "\"2026-12-01T10:00:00Z\""),
            ("2026-12-01", "\"2026-12-01\""),
            ("true", "\"true\""),
            ("False", "\"False\""),
            ("yes", "\"yes\""),
            ("on", "\"on\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("12", "\"12\""),
            ("1.5", "\"1.5\""),
            ("0x10", "\"0x10\""),
            ("", "\"\""),
            ("v1.2.3", "v1.2.3"),
            ("pi-1", "pi-1"),
            ("-c", "-c"),
            ("it's", "it's"),
        ] {
            assert_eq!(
                yaml(&json!({"k": text})),
                format!("k: {printed}\n"),
                "{text}"
            );
        }
    }

    #[test]
    fn kubernetes_objects_print_as_kubectl_prints_them() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"creationTimestamp": "2026-12-01T10:00:00Z", "name": "web", "annotations": {},
                         "resourceVersion": "7"},
            "spec": {"containers": [{"name": "a", "command": ["sh", "-c", "echo hi"], "env": []}],
                     "terminationGracePeriodSeconds": 30},
            "status": {"conditions": [{"status": "True", "type": "Ready"}], "phase": "Running"}
        });
        assert_eq!(
            yaml(&pod),
            "apiVersion: v1
kind: Pod
metadata:
  annotations: {}
  creationTimestamp: \"2026-12-01T10:00:00Z\"
  name: web
  resourceVersion: \"7\"
spec:
  containers:
  - command:
    - sh
    - -c
    - echo hi
    env: []
    name: a
  terminationGracePeriodSeconds: 30
status:
  conditions:
  - status: \"True\"
    type: Ready
  phase: Running
"
        );
    }

    #[test]
    fn printed_yaml_reads_back_as_the_same_value() {
        let long = format!("{}end", "a long line ".repeat(10));
        let value = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "x", "version": "1.0", "n": "y"}, "annotations": {}},
            "spec": {
                "containers": [
                    {"name": "a", "command": ["sh", "-c", "echo hi: there # not a comment"], "env": []},
                    {"name": "m", "args": ["one\ntwo\n", "no end\n\nafter a gap", "kept\n\n", " lead\nx", "tab\there\n", "trailing \nspace", "cr\r\nlf"]},
                    {"name": "b", "args": ["true", "", "0x10", "- dash", "#hash", "@at", "*star", "&amp", "!bang", "%pct", "a: b", "[x]", "{y}", long]}
                ],
                "nested": [[1, 2], {"k": null}],
                "n": 3, "f": 1.5, "t": true
            },
            "status": {}
        });
        let text = yaml(&value);
        let back = &load_documents(&text).unwrap()[0].value;
        assert_eq!(back, &value, "{text}");
        assert!(
            text.contains(&format!("- {long}\n")),
            "long lines stay whole: {text}"
        );
    }
}
