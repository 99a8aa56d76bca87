//! Prints a `meta.k8s.io/v1` Table as kubectl's human-readable printer does: the server
//! computes the cells, the client picks the columns (`-o wide`), adds NAMESPACE (`-A`) and
//! LABELS (`--show-labels`), and pads them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::table::{tabwrite, tabwrite_remembering};
use crate::api::resources::Resource;
use crate::api::table::{format_labels, table, IncludeObject};

/// How to print (the flags of `get`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintOptions {
    /// `-o wide`: priority-1 columns too.
    pub wide: bool,
    /// `-A` on a namespaced resource: a NAMESPACE column first.
    pub with_namespace: bool,
    /// `-L key`: a column per label key, headed by the key's last path segment.
    pub label_columns: Vec<String>,
    /// `--show-labels`: a LABELS column last.
    pub show_labels: bool,
    /// `--no-headers`.
    pub no_headers: bool,
    /// Prefix names with `kind[.group]/` (`pod/web-1`, `daemonset.apps/web`), as kubectl does
    /// when it prints several kinds.
    pub with_kind: Option<String>,
    /// The namespace listed, for "No resources found in <ns> namespace."; `None` for `-A`
    /// and cluster-scoped resources ("No resources found").
    pub namespace: Option<String>,
}

impl PrintOptions {
    /// The options of `get <resource>` in `namespace`, or across namespaces (`-A`): a
    /// NAMESPACE column only for namespaced resources listed across namespaces, and the
    /// "No resources found" message kubectl prints for that listing.
    pub fn for_listing(resource: &Resource, namespace: &str, all_namespaces: bool) -> Self {
        let across = all_namespaces && resource.namespaced;
        Self {
            with_namespace: across,
            namespace: (resource.namespaced && !all_namespaces).then(|| namespace.to_string()),
            ..Self::default()
        }
    }
}

/// The prefix kubectl puts before names when it lists several kinds: `pod`, `job.batch`,
/// `daemonset.apps`.
pub fn kind_prefix(resource: &Resource) -> String {
    let kind = resource.kind.to_lowercase();
    if resource.group.is_empty() {
        kind
    } else {
        format!("{kind}.{}", resource.group)
    }
}

/// What to write to stdout and stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Printed {
    /// The table (empty when there are no rows: kubectl prints no headers then).
    pub stdout: String,
    /// "No resources found ..." when there are no rows.
    pub stderr: String,
}

/// A cell as kubectl prints it: strings up to their first line break (then `...`), other
/// values as Go's `fmt` shows them.
fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(s) => match s.find(['\n', '\r', '\x0c']) {
            Some(at) => format!("{}...", escaped(&s[..at])),
            None => escaped(s),
        },
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// Text from the server with terminal escapes made visible (`^[`), as kubectl does: an
/// object's fields must not move the cursor or retitle the user's terminal.
fn escaped(text: &str) -> String {
    text.replace('\x1b', "^[").replace('\r', "\\r")
}

/// The text kubectl prints for `table`.
pub fn print(table: &Value, options: &PrintOptions) -> Printed {
    if table["rows"].as_array().is_none_or(Vec::is_empty) {
        let stderr = match &options.namespace {
            Some(ns) => format!("No resources found in {ns} namespace.\n"),
            None => "No resources found\n".into(),
        };
        return Printed {
            stdout: String::new(),
            stderr,
        };
    }
    let columns = table["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Printed {
        stdout: tabwrite(&lines(table, &columns, options)),
        stderr: String::new(),
    }
}

/// Prints objects (as the API shows them) the way kubectl prints their Table, computing the
/// Table here: for listings fetched as plain JSON rather than as a Table.
pub fn print_objects(
    resource: &Resource,
    items: &[Value],
    now: DateTime<Utc>,
    options: &PrintOptions,
) -> Printed {
    let table = table(resource, items, now, IncludeObject::Metadata, Value::Null);
    print(&table, options)
}

/// Prints the Tables of `get --watch` one after another as kubectl does: the headers once
/// (again only when the columns change), column widths kept across events, and the last
/// columns reused for events that carry none.
#[derive(Debug, Clone, Default)]
pub struct WatchPrinter {
    options: PrintOptions,
    columns: Vec<Value>,
    printed_headers: bool,
    widths: Vec<usize>,
}

impl WatchPrinter {
    /// A printer for one `get --watch`.
    pub fn new(options: PrintOptions) -> Self {
        Self {
            options,
            ..Self::default()
        }
    }

    /// The text for the next Table (the initial list, then each event's).
    pub fn print(&mut self, table: &Value) -> String {
        let columns = table["columnDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut options = self.options.clone();
        if self.printed_headers && (columns.is_empty() || columns == self.columns) {
            options.no_headers = true;
        }
        if !columns.is_empty() && columns != self.columns {
            self.columns = columns;
            self.printed_headers = false;
        }
        if table["rows"].as_array().is_none_or(Vec::is_empty) {
            return String::new();
        }
        self.printed_headers = true;
        tabwrite_remembering(&lines(table, &self.columns, &options), &mut self.widths)
    }
}

/// The header and cells of each line.
fn lines(table: &Value, columns: &[Value], options: &PrintOptions) -> Vec<Vec<String>> {
    let empty = Vec::new();
    let rows = table["rows"].as_array().unwrap_or(&empty);
    let shown: Vec<usize> = (0..columns.len())
        .filter(|&i| options.wide || columns[i]["priority"].as_i64().unwrap_or(0) == 0)
        .collect();
    let name_column = columns.iter().position(|c| c["format"] == "name");

    let mut lines = Vec::with_capacity(rows.len() + 1);
    if !options.no_headers {
        let mut header = Vec::new();
        if options.with_namespace {
            header.push("NAMESPACE".to_string());
        }
        header.extend(
            shown
                .iter()
                .map(|&i| columns[i]["name"].as_str().unwrap_or("").to_uppercase()),
        );
        header.extend(
            options
                .label_columns
                .iter()
                .map(|key| key.rsplit('/').next().unwrap_or(key).to_uppercase()),
        );
        if options.show_labels {
            header.push("LABELS".into());
        }
        lines.push(header);
    }
    for row in rows {
        let metadata = &row["object"]["metadata"];
        let cells = row["cells"].as_array().unwrap_or(&empty);
        let mut line = Vec::new();
        if options.with_namespace {
            line.push(escaped(metadata["namespace"].as_str().unwrap_or("")));
        }
        for &i in &shown {
            let mut text = cells.get(i).map(cell_text).unwrap_or_default();
            if let (Some(kind), Some(n)) = (&options.with_kind, name_column) {
                if n == i {
                    text = format!("{kind}/{text}");
                }
            }
            line.push(text);
        }
        line.extend(
            options
                .label_columns
                .iter()
                .map(|key| escaped(metadata["labels"][key.as_str()].as_str().unwrap_or(""))),
        );
        if options.show_labels {
            line.push(escaped(&format_labels(&metadata["labels"])));
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests;
