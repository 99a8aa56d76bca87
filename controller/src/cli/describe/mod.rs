//! `drover describe`: an object as `kubectl describe` lays it out (its describers in
//! `k8s.io/kubectl/pkg/describe`), then its events.
//!
//! Each describer writes lines whose cells are separated by tabs, at kubectl's levels of
//! two spaces; [`tabwrite`] aligns them as Go's `text/tabwriter` does for kubectl.

mod node;
mod pod;
mod workloads;

use anyhow::Context;
use chrono::{DateTime, Local, Utc};
use clap::Args;
use serde_json::Value;

use super::{resource, Client};
use crate::api::resources::Resource;
use crate::api::table::duration::{parse, since};
use crate::api::table::text;

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

/// The lines of a description: cells separated by tabs, each line at a level of indent.
#[derive(Debug, Default)]
pub struct Out {
    text: String,
}

impl Out {
    /// Writes `line` (a newline is added) indented by `level` steps of two spaces.
    pub fn line(&mut self, level: usize, line: &str) {
        for _ in 0..level {
            self.text.push_str("  ");
        }
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// The aligned text.
    pub fn finish(self) -> String {
        tabwrite(&self.text)
    }
}

/// Go's `text/tabwriter` as kubectl's describers set it up (minimum width 0, padding 2,
/// spaces): a tab ends a cell, and a column is as wide as its widest cell (plus padding)
/// within each block of consecutive lines that have a cell in it. A line without a tab
/// ends every block, which is why a section header restarts the alignment.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text
        .split_terminator('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::with_capacity(text.len() * 2);
    format_block(&lines, &mut Vec::new(), 0, lines.len(), &mut out);
    out
}

const PADDING: usize = 2;

fn format_block(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    mut line0: usize,
    line1: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, widths, line0, this, out);
        line0 = this;
        let mut width = 0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(lines, widths, line0, this, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, widths, line0, line1, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], from: usize, to: usize, out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(j) {
                let pad = width.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

/// A quantity or other scalar as text: strings as they are, numbers as JSON writes them.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text`, or `<none>` when empty (kubectl's `stringOrNone`).
fn or_none(v: &str) -> &str {
    if v.is_empty() {
        "<none>"
    } else {
        v
    }
}

/// A timestamp as kubectl prints it (RFC 1123 with a numeric zone, in local time); Go's
/// zero time when unset, as kubectl shows a missing one.
fn time(v: &Value) -> String {
    match parse(v) {
        Some(t) => rfc1123z(t),
        None => "Mon, 01 Jan 0001 00:00:00 +0000".into(),
    }
}

fn rfc1123z(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// An optional integer as kubectl's `printInt32Ptr` shows it.
fn int_or_unset(v: &Value) -> String {
    v.as_i64()
        .map_or_else(|| "<unset>".into(), |n| n.to_string())
}

/// `Kind/name` of the object's controller, or `None`.
fn controlled_by(object: &Value) -> Option<String> {
    let owner = object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?;
    Some(format!("{}/{}", text(&owner["kind"]), text(&owner["name"])))
}

fn sorted_entries(map: &Value) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `Title:` with one `key=value` a line, or `<none>` (kubectl's `printLabelsMultiline`).
fn labels(out: &mut Out, title: &str, map: &Value) {
    let entries = sorted_entries(map);
    if entries.is_empty() {
        out.line(0, &format!("{title}:\t<none>"));
        return;
    }
    for (i, (key, value)) in entries.into_iter().enumerate() {
        let head = if i == 0 {
            format!("{title}:")
        } else {
            String::new()
        };
        out.line(0, &format!("{head}\t{key}={}", text(value)));
    }
}

/// The annotation `kubectl apply` keeps, which kubectl's describers leave out.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Longer annotations are written over several lines and shortened (kubectl's
/// `maxAnnotationLen`).
const MAX_ANNOTATION: usize = 140;

/// `Title:` with one `key: value` a line (kubectl's `printAnnotationsMultiline`).
fn annotations(out: &mut Out, title: &str, map: &Value) {
    let entries: Vec<(&String, &Value)> = sorted_entries(map)
        .into_iter()
        .filter(|(k, _)| k.as_str() != LAST_APPLIED)
        .collect();
    if entries.is_empty() {
        out.line(0, &format!("{title}:\t<none>"));
        return;
    }
    for (i, (key, value)) in entries.into_iter().enumerate() {
        let head = if i == 0 {
            format!("{title}:")
        } else {
            String::new()
        };
        let value = text(value).trim_end_matches('\n');
        if value.len() + key.len() + 2 > MAX_ANNOTATION || value.contains('\n') {
            out.line(0, &format!("{head}\t{key}:"));
            for part in value.split('\n') {
                out.line(0, &shorten(part, MAX_ANNOTATION - 2));
            }
        } else {
            out.line(0, &format!("{head}\t{key}: {value}"));
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}...")
}

/// `Title:` with one toleration a line (kubectl's `printTolerationsMultiline`).
fn tolerations(out: &mut Out, title: &str, list: &Value) {
    let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        out.line(0, &format!("{title}:\t<none>"));
        return;
    }
    for (i, t) in list.iter().enumerate() {
        let head = if i == 0 {
            format!("{title}:")
        } else {
            String::new()
        };
        let (key, value, effect) = (text(&t["key"]), text(&t["value"]), text(&t["effect"]));
        let mut line = key.to_string();
        if !value.is_empty() {
            line.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            line.push_str(&format!(":{effect}"));
        }
        if t["operator"] == "Exists" && value.is_empty() {
            line.push_str(if key.is_empty() && effect.is_empty() {
                "op=Exists"
            } else {
                " op=Exists"
            });
        }
        if let Some(seconds) = t["tolerationSeconds"].as_i64() {
            line.push_str(&format!(" for {seconds}s"));
        }
        out.line(0, &format!("{head}\t{line}"));
    }
}

/// The Events section as `kubectl describe` prints it: oldest last-seen first, `AGE (xN
/// over FIRST)` for repeated events, `Events: <none>` without any.
pub fn events(out: &mut Out, events: &[Value], now: DateTime<Utc>) {
    if events.is_empty() {
        out.line(0, "Events:\t<none>");
        return;
    }
    let mut events = events.to_vec();
    events.sort_by(|a, b| text(&a["lastTimestamp"]).cmp(text(&b["lastTimestamp"])));
    out.line(0, "Events:");
    out.line(1, "Type\tReason\tAge\tFrom\tMessage");
    out.line(1, "----\t------\t----\t----\t-------");
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
        out.line(
            1,
            &format!(
                "{}\t{}\t{age}\t{}\t{}",
                text(&e["type"]),
                text(&e["reason"]),
                text(&e["source"]["component"]),
                text(&e["message"]).trim()
            ),
        );
    }
}

/// What a describer is given: the object, its events, and the other objects it reports on
/// (a DaemonSet's pods, a node's pods).
pub struct Described<'a> {
    /// The object as the API shows it.
    pub object: &'a Value,
    /// The events about it.
    pub events: &'a [Value],
    /// Pods it reports on.
    pub pods: &'a [Value],
    /// The time ages are counted to.
    pub now: DateTime<Utc>,
}

/// The description of `described.object`, of kind `kind`.
pub fn description(kind: &str, described: &Described) -> String {
    let mut out = Out::default();
    match kind {
        "Pod" => pod::describe(&mut out, described),
        "Job" => workloads::job(&mut out, described),
        "CronJob" => workloads::cronjob(&mut out, described),
        "DaemonSet" => workloads::daemonset(&mut out, described),
        "Node" => node::describe(&mut out, described),
        "Namespace" => namespace(&mut out, described),
        _ => generic(&mut out, described),
    }
    out.finish()
}

/// `kubectl describe namespace`.
fn namespace(out: &mut Out, d: &Described) {
    let meta = &d.object["metadata"];
    out.line(0, &format!("Name:\t{}", text(&meta["name"])));
    labels(out, "Labels", &meta["labels"]);
    annotations(out, "Annotations", &meta["annotations"]);
    out.line(
        0,
        &format!("Status:\t{}", text(&d.object["status"]["phase"])),
    );
}

/// Kinds without a describer of their own, as kubectl's generic describer shows them:
/// metadata, then every other field (names title-cased, lists item by item).
fn generic(out: &mut Out, described: &Described) {
    let object = described.object;
    let meta = &object["metadata"];
    out.line(0, &format!("Name:\t{}", text(&meta["name"])));
    if meta["namespace"].is_string() {
        out.line(0, &format!("Namespace:\t{}", text(&meta["namespace"])));
    }
    labels(out, "Labels", &meta["labels"]);
    annotations(out, "Annotations", &meta["annotations"]);
    out.line(0, &format!("API Version:\t{}", text(&object["apiVersion"])));
    // Metadata but what is shown above and the server's bookkeeping, as kubectl skips them.
    let mut shown = object.clone();
    if let Some(meta) = shown.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "name",
            "namespace",
            "labels",
            "annotations",
            "managedFields",
        ] {
            meta.remove(key);
        }
    }
    if let Some(fields) = shown.as_object() {
        for (key, value) in fields {
            let empty = value.as_object().is_some_and(|m| m.is_empty());
            if key != "apiVersion" && !empty {
                field(out, 0, &title_case(key), value);
            }
        }
    }
    events(out, described.events, described.now);
}

fn field(out: &mut Out, level: usize, key: &str, value: &Value) {
    match value {
        Value::Object(map) => {
            out.line(level, &format!("{key}:"));
            for (k, v) in map {
                field(out, level + 1, &title_case(k), v);
            }
        }
        Value::Array(items) => {
            out.line(level, &format!("{key}:"));
            for item in items {
                match item {
                    Value::Object(map) => {
                        for (k, v) in map {
                            field(out, level + 1, &title_case(k), v);
                        }
                    }
                    Value::String(s) => out.line(level + 1, s),
                    other => out.line(level + 1, &other.to_string()),
                }
            }
        }
        Value::String(s) => out.line(level, &format!("{key}:\t{s}")),
        Value::Null => out.line(level, &format!("{key}:\t<nil>")),
        other => out.line(level, &format!("{key}:\t{other}")),
    }
}

/// Words kubectl's generic describer writes in capitals (Go's common initialisms).
const INITIALISMS: &[&str] = &[
    "ACL", "API", "ASCII", "CPU", "CSS", "DNS", "EOF", "GUID", "HTML", "HTTP", "HTTPS", "ID", "IP",
    "JSON", "LHS", "QPS", "RAM", "RHS", "RPC", "SLA", "SMTP", "SQL", "SSH", "TCP", "TLS", "TTL",
    "UDP", "UI", "UID", "UUID", "URI", "URL", "UTF8", "VM", "XML", "XMPP", "XSRF", "XSS",
];

/// `involvedObject` → `Involved Object`, `apiVersion` → `API Version`: field names as
/// kubectl's generic describer labels them.
fn title_case(key: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for c in key.chars() {
        match words.last_mut() {
            Some(word) if !c.is_uppercase() => word.push(c),
            _ => words.push(c.to_string()),
        }
    }
    words
        .iter()
        .map(|word| {
            let upper = word.to_uppercase();
            if INITIALISMS.contains(&upper.as_str()) {
                return upper;
            }
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// `drover describe`.
pub fn describe(client: &Client, args: DescribeArgs) -> anyhow::Result<()> {
    let (resource, name) = resource::with_name(&args.resource, args.name)?;
    let name = name.context("describe needs a name, e.g. `drover describe node pi-1`")?;
    let object = client.get(&resource::object(resource, &args.namespace, &name), &[])?;
    let events = events_of(client, resource.namespaced, &object)?;
    let pods = pods_of(client, resource, &object)?;
    let text = description(
        resource.kind,
        &Described {
            object: &object,
            events: &events,
            pods: &pods,
            now: Utc::now(),
        },
    );
    super::emit(&text)
}

/// The pods a description reports on: a DaemonSet's (by its selector), a node's.
fn pods_of(client: &Client, resource: &Resource, object: &Value) -> anyhow::Result<Vec<Value>> {
    let query = match resource.kind {
        "DaemonSet" => {
            let selector = crate::api::table::format_selector(&object["spec"]["selector"]);
            if selector == "<none>" {
                return Ok(Vec::new());
            }
            ("labelSelector", selector)
        }
        "Node" => (
            "fieldSelector",
            format!("spec.nodeName={}", text(&object["metadata"]["name"])),
        ),
        _ => return Ok(Vec::new()),
    };
    let namespace = match resource.kind {
        "DaemonSet" => Some(text(&object["metadata"]["namespace"])),
        _ => None,
    };
    let pods = client.get(
        &resource::collection(resource::resolve("pods")?, namespace),
        &[(query.0, query.1.as_str())],
    )?;
    Ok(pods["items"].as_array().cloned().unwrap_or_default())
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
mod tests;
