//! `drover describe`: an object's fields and its events.

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use serde_json::{json, Value};

use super::{resource, yaml, Client};
use crate::api::table::duration::since;
use crate::api::table::{node_status, pod_status};

/// `describe` flags.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Resource type
    pub resource: String,
    /// Object name
    pub name: Option<String>,
    /// Namespace
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

fn describe_value(out: &mut String, key: &str, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if map.is_empty() => out.push_str(&format!("{pad}{key}:\t<none>\n")),
        Value::Object(map) => {
            out.push_str(&format!("{pad}{key}:\n"));
            for (k, v) in map {
                describe_value(out, k, v, indent + 2);
            }
        }
        Value::Array(items) if items.is_empty() => out.push_str(&format!("{pad}{key}:\t<none>\n")),
        Value::Array(items) => {
            out.push_str(&format!("{pad}{key}:\n"));
            for item in items {
                let mut nested = yaml::to_yaml(item).unwrap_or_else(|_| item.to_string());
                nested = nested
                    .lines()
                    .enumerate()
                    .map(|(i, l)| {
                        if i == 0 {
                            format!("{pad}  - {l}\n")
                        } else {
                            format!("{pad}    {l}\n")
                        }
                    })
                    .collect();
                out.push_str(&nested);
            }
        }
        Value::String(s) => out.push_str(&format!("{pad}{key}:\t{s}\n")),
        other => out.push_str(&format!("{pad}{key}:\t{other}\n")),
    }
}

/// `drover describe`.
pub fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let (resource, name) = resource::with_name(&args.resource, args.name)?;
    let name = name.context("describe needs a name, e.g. `drover describe node pi-1`")?;
    let object = client.get(&resource::object(resource, &args.namespace, &name), &[])?;
    let events = events_of(client, resource.namespaced, &object)?;
    let now = Utc::now();
    let mut out = String::new();
    let meta = &object["metadata"];
    out.push_str(&format!("Name:\t{name}\n"));
    if resource.namespaced {
        out.push_str(&format!(
            "Namespace:\t{}\n",
            meta["namespace"].as_str().unwrap_or("")
        ));
    }
    out.push_str(&format!("Kind:\t{}\n", resource.kind));
    out.push_str(&format!("UID:\t{}\n", meta["uid"].as_str().unwrap_or("")));
    describe_value(&mut out, "Labels", &meta["labels"].clone_or_empty(), 0);
    describe_value(
        &mut out,
        "Annotations",
        &meta["annotations"].clone_or_empty(),
        0,
    );
    out.push_str(&format!(
        "CreationTimestamp:\t{}\n",
        meta["creationTimestamp"].as_str().unwrap_or("")
    ));
    match resource.kind {
        "Node" => out.push_str(&format!("Status:\t{}\n", node_status(&object))),
        "Pod" => out.push_str(&format!("Status:\t{}\n", pod_status(&object))),
        _ => {}
    }
    describe_value(&mut out, "Spec", &object["spec"], 0);
    describe_value(&mut out, "Status", &object["status"], 0);
    if events.is_empty() {
        out.push_str("Events:\t<none>\n");
        print!("{}", align_tabs(&out));
        return Ok(());
    }
    print!("{}", align_tabs(&out));
    print!("{}", events_section(&events, now));
    Ok(())
}

/// The Events section as `kubectl describe` prints it: oldest last-seen first, columns two
/// spaces apart under a row of dashes, `AGE (xN over FIRST)` for repeated events.
pub fn events_section(events: &[Value], now: chrono::DateTime<Utc>) -> String {
    let mut events = events.to_vec();
    events.sort_by(|a, b| {
        a["lastTimestamp"]
            .as_str()
            .unwrap_or("")
            .cmp(b["lastTimestamp"].as_str().unwrap_or(""))
    });
    let mut lines = vec![
        ["Type", "Reason", "Age", "From", "Message"].map(String::from),
        ["----", "------", "----", "----", "-------"].map(String::from),
    ];
    for e in &events {
        let count = e["count"].as_u64().unwrap_or(1);
        let last = since(&e["lastTimestamp"], now);
        let age = if count > 1 {
            format!(
                "{last} (x{count} over {})",
                since(&e["firstTimestamp"], now)
            )
        } else {
            last
        };
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        lines.push([
            text(&e["type"]),
            text(&e["reason"]),
            age,
            text(&e["source"]["component"]),
            text(&e["message"]),
        ]);
    }
    let mut widths = [0usize; 5];
    for line in &lines {
        for (i, cell) in line.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::from("Events:\n");
    for line in &lines {
        let mut text = String::from("  ");
        for (i, cell) in line.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < line.len() {
                text.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

trait CloneOrEmpty {
    fn clone_or_empty(&self) -> Value;
}

impl CloneOrEmpty for Value {
    fn clone_or_empty(&self) -> Value {
        if self.is_null() {
            json!({})
        } else {
            self.clone()
        }
    }
}

/// Aligns `key:\tvalue` lines of top-level keys into one column.
fn align_tabs(text: &str) -> String {
    let width = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once('\t').map(|(k, _)| k.len()))
        .max()
        .unwrap_or(0);
    text.lines()
        .map(|l| match l.split_once('\t') {
            Some((k, v)) if !l.starts_with(' ') => format!("{k:width$}  {v}\n"),
            Some((k, v)) => format!("{k}  {v}\n"),
            None => format!("{l}\n"),
        })
        .collect()
}

/// The events about `object`: those in its namespace (`default` for cluster-scoped objects,
/// where Kubernetes keeps them too) whose `involvedObject` is it.
fn events_of(client: &Client, namespaced: bool, object: &Value) -> anyhow::Result<Vec<Value>> {
    let namespace = if namespaced {
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
    } else {
        "default"
    };
    let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
    let selector = format!("involvedObject.uid={uid}");
    let events = client.get(
        &format!("/api/v1/namespaces/{namespace}/events"),
        &[("fieldSelector", &selector)],
    )?;
    Ok(events["items"].as_array().cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_kubectl_describe_prints_them() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let events = vec![
            json!({"type": "Warning", "reason": "BackOff", "count": 3, "source": {"component": "kubelet"},
                   "firstTimestamp": "2026-01-01T00:05:00Z", "lastTimestamp": "2026-01-01T00:09:00Z",
                   "message": "Back-off restarting failed container"}),
            json!({"type": "Normal", "reason": "Scheduled", "count": 1, "source": {"component": "drover"},
                   "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
                   "message": "Successfully assigned default/web to pi-1"}),
        ];
        assert_eq!(
            events_section(&events, now),
            "Events:\n\
             \x20 Type     Reason     Age               From     Message\n\
             \x20 ----     ------     ----              ----     -------\n\
             \x20 Normal   Scheduled  10m               drover   Successfully assigned default/web to pi-1\n\
             \x20 Warning  BackOff    60s (x3 over 5m)  kubelet  Back-off restarting failed container\n"
        );
    }
}
