//! Event and Namespace rows.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{age, duration, int, name, text, Column, AGE, NAME, NAME_DOC};

pub(super) const COLUMNS: &[Column] = &[
    Column::new(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    Column::new(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    Column::new(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    Column::new("Object", "string", "The object that this event is about."),
    Column::new(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
    )
    .wide(),
    Column::new(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    )
    .wide(),
    Column::new(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    Column::new(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    )
    .wide(),
    Column::new(
        "Count",
        "string",
        "The number of times this event has occurred.",
    )
    .wide(),
    Column::new("Name", "string", NAME_DOC).named().wide(),
];

pub(super) const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the namespace"),
    AGE,
];

/// `reporting, instance` as Kubernetes prints an event's source.
fn source(event: &Value) -> String {
    let first = |a: &str, b: &str| -> String {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first(
        text(&event["source"]["component"]),
        text(&event["reportingComponent"]),
    );
    let instance = first(
        text(&event["source"]["host"]),
        text(&event["reportingInstance"]),
    );
    if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    }
}

pub(super) fn row(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first_seen = match duration::parse(&event["firstTimestamp"]) {
        Some(t) => duration::human(now - t),
        None => duration::since(&event["eventTime"], now),
    };
    let mut last_seen = match duration::parse(&event["lastTimestamp"]) {
        Some(t) => duration::human(now - t),
        None => first_seen.clone(),
    };
    let mut count = int(&event["count"]);
    if event["series"].is_object() {
        last_seen = duration::since(&event["series"]["lastObservedTime"], now);
        count = int(&event["series"]["count"]);
    } else if count == 0 {
        // Events of the newer API leave a single occurrence uncounted.
        count = 1;
    }
    let involved = &event["involvedObject"];
    let kind = text(&involved["kind"]).to_lowercase();
    let target = match text(&involved["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    vec![
        json!(last_seen),
        json!(text(&event["type"])),
        json!(text(&event["reason"])),
        json!(target),
        json!(text(&involved["fieldPath"])),
        json!(source(event)),
        json!(text(&event["message"]).trim()),
        json!(first_seen),
        json!(count),
        json!(name(event)),
    ]
}

pub(super) fn namespace_row(ns: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(ns)),
        json!(text(&ns["status"]["phase"])),
        age(ns, now),
    ]
}
