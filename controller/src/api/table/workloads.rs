//! Rows of the workload kinds: Jobs, CronJobs, DaemonSets and their ControllerRevisions.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    age, containers, duration, format_labels, format_selector, int, name, text, Column, AGE,
    CONTAINERS, IMAGES, NAME,
};

const SELECTOR_DOC: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

pub(super) const JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", SELECTOR_DOC).wide(),
];

pub(super) const CRONJOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    Column::new(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
    ),
    Column::new(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions. Defaults to false.",
    ),
    Column::new("Active", "integer", "A list of pointers to currently running jobs."),
    Column::new(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", SELECTOR_DOC).wide(),
];

pub(super) const DAEMONSET_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
    ),
    Column::new(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    ),
    Column::new(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    Column::new(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    Column::new(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels.",
    )
    .wide(),
];

pub(super) const REVISION_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Controller", "string", "Controller of the object"),
    Column::new(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

/// Whether the first condition of `kind` is True (later duplicates do not count).
fn has_condition(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .is_some_and(|c| c["status"] == "True")
}

/// The Job's STATUS column.
pub fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if job["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if has_condition(job, "Waiting") {
        // Drover's own condition: the Job waits for the Jobs it depends on.
        "Pending"
    } else {
        "Running"
    }
}

pub(super) fn job_row(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &job["spec"];
    let status = &job["status"];
    let succeeded = int(&status["succeeded"]);
    let completions = match spec["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        // A work queue (parallelism without completions) shows how many run at once.
        None => match int(&spec["parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let took = match (
        duration::parse(&status["startTime"]),
        duration::parse(&status["completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => duration::human(now - start),
        (Some(start), Some(end)) => duration::human(end - start),
    };
    let (names, images) = containers(&spec["template"]["spec"]);
    vec![
        json!(name(job)),
        json!(job_status(job)),
        json!(completions),
        json!(took),
        age(job, now),
        names,
        images,
        json!(format_selector(&spec["selector"])),
    ]
}

pub(super) fn cronjob_row(cj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = &cj["spec"];
    let status = &cj["status"];
    let last = if status["lastScheduleTime"].is_string() {
        duration::since(&status["lastScheduleTime"], now)
    } else {
        "<none>".into()
    };
    let time_zone = spec["timeZone"].as_str().unwrap_or("<none>");
    // Kubernetes defaults `suspend` to false, so it never shows `<unset>`.
    let suspend = if spec["suspend"] == true {
        "True"
    } else {
        "False"
    };
    let job_spec = &spec["jobTemplate"]["spec"];
    let (names, images) = containers(&job_spec["template"]["spec"]);
    vec![
        json!(name(cj)),
        json!(text(&spec["schedule"])),
        json!(time_zone),
        json!(suspend),
        json!(status["active"].as_array().map_or(0, Vec::len)),
        json!(last),
        age(cj, now),
        names,
        images,
        json!(format_selector(&job_spec["selector"])),
    ]
}

pub(super) fn daemonset_row(ds: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let s = &ds["status"];
    let spec = &ds["spec"];
    let pod_spec = &spec["template"]["spec"];
    let (names, images) = containers(pod_spec);
    vec![
        json!(name(ds)),
        json!(int(&s["desiredNumberScheduled"])),
        json!(int(&s["currentNumberScheduled"])),
        json!(int(&s["numberReady"])),
        json!(int(&s["updatedNumberScheduled"])),
        json!(int(&s["numberAvailable"])),
        json!(format_labels(&pod_spec["nodeSelector"])),
        age(ds, now),
        names,
        images,
        json!(format_selector(&spec["selector"])),
    ]
}

/// `daemonset.apps/web` for the revision's controller, `<none>` without one.
fn controller_name(object: &Value) -> String {
    let Some(owner) = object["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
    else {
        return "<none>".into();
    };
    let api_version = text(&owner["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = text(&owner["kind"]);
    let owner_name = text(&owner["name"]);
    match (kind, group) {
        ("", "") => owner_name.to_string(),
        (kind, "") => format!("{}/{owner_name}", kind.to_lowercase()),
        (kind, group) => format!(
            "{}.{}/{owner_name}",
            kind.to_lowercase(),
            group.to_lowercase()
        ),
    }
}

pub(super) fn revision_row(rev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(rev)),
        json!(controller_name(rev)),
        json!(int(&rev["revision"])),
        age(rev, now),
    ]
}
