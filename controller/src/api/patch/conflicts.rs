//! How server-side apply conflicts are worded, as Kubernetes words them: one
//! `conflict with <manager>: <.field.path>` string per conflicting field, and the message
//! of the 409 that lists them.

/// Splits a conflict entry into the cause's message (`conflict with "kubectl"`)
/// and field (`.spec.parallelism`), as `metav1.Status` `details.causes` carry them.
pub fn conflict_parts(conflict: &str) -> (&str, &str) {
    // The manager is a quoted string that may itself hold ": "; what follows it (subresource,
    // apiVersion, time) never does, so the first ": " after the closing quote separates.
    let after_name = conflict
        .find('"')
        .and_then(|open| closing_quote(&conflict[open + 1..]).map(|close| open + 1 + close + 1))
        .unwrap_or(0);
    match conflict[after_name..].find(": ") {
        Some(at) => (
            &conflict[..after_name + at],
            &conflict[after_name + at + 2..],
        ),
        None => (conflict, ""),
    }
}

/// The byte offset of the quote that ends a Rust-escaped string starting at `text`.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(at),
            _ => {}
        }
    }
    None
}

/// The message of a conflicts error, worded as Kubernetes words it (kubectl shows it, and
/// adds its advice about `--force-conflicts`).
pub fn conflicts_message(conflicts: &[String]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: {only}");
    }
    // Grouped by manager, managers sorted, paths in the order found.
    let mut by_manager: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for conflict in conflicts {
        let (cause, field) = conflict_parts(conflict);
        let manager = cause.strip_prefix("conflict with ").unwrap_or(cause);
        by_manager.entry(manager).or_default().push(field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.into_iter().map(|field| format!("- {field}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}
