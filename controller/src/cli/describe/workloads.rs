//! Jobs, CronJobs and DaemonSets as kubectl's `JobDescriber`, `CronJobDescriber` and
//! `DaemonSetDescriber` print them.

use super::{
    annotations, controlled_by, events, int_or_unset, labels, pod, text, time, Described, Out,
};
use crate::api::table::{duration, format_labels, format_selector};
use drover_proto::phase::PodPhase;

/// `kubectl describe job`.
pub fn job(out: &mut Out, d: &Described) {
    let job = d.object;
    let meta = &job["metadata"];
    let spec = &job["spec"];
    let status = &job["status"];
    out.line(0, &format!("Name:\t{}", text(&meta["name"])));
    out.line(0, &format!("Namespace:\t{}", text(&meta["namespace"])));
    out.line(
        0,
        &format!("Selector:\t{}", format_selector(&spec["selector"])),
    );
    labels(out, "Labels", &meta["labels"]);
    annotations(out, "Annotations", &meta["annotations"]);
    if let Some(controller) = controlled_by(job) {
        out.line(0, &format!("Controlled By:\t{controller}"));
    }
    if let Some(parallelism) = spec["parallelism"].as_i64() {
        out.line(0, &format!("Parallelism:\t{parallelism}"));
    }
    out.line(
        0,
        &format!("Completions:\t{}", int_or_unset(&spec["completions"])),
    );
    if let Some(mode) = spec["completionMode"].as_str() {
        out.line(0, &format!("Completion Mode:\t{mode}"));
    }
    if let Some(suspend) = spec["suspend"].as_bool() {
        out.line(0, &format!("Suspend:\t{suspend}"));
    }
    if let Some(limit) = spec["backoffLimit"].as_i64() {
        out.line(0, &format!("Backoff Limit:\t{limit}"));
    }
    if let Some(ttl) = spec["ttlSecondsAfterFinished"].as_i64() {
        out.line(0, &format!("TTL Seconds After Finished:\t{ttl}"));
    }
    if status["startTime"].is_string() {
        out.line(0, &format!("Start Time:\t{}", time(&status["startTime"])));
    }
    if status["completionTime"].is_string() {
        out.line(
            0,
            &format!("Completed At:\t{}", time(&status["completionTime"])),
        );
    }
    if let (Some(start), Some(end)) = (
        duration::parse(&status["startTime"]),
        duration::parse(&status["completionTime"]),
    ) {
        out.line(0, &format!("Duration:\t{}", duration::human(end - start)));
    }
    if let Some(deadline) = spec["activeDeadlineSeconds"].as_i64() {
        out.line(0, &format!("Active Deadline Seconds:\t{deadline}s"));
    }
    let count = |field: &str| status[field].as_i64().unwrap_or(0);
    let ready = match status["ready"].as_i64() {
        Some(ready) => format!(" ({ready} Ready)"),
        None => String::new(),
    };
    out.line(
        0,
        &format!(
            "Pods Statuses:\t{} Active{ready} / {} Succeeded / {} Failed",
            count("active"),
            count("succeeded"),
            count("failed")
        ),
    );
    if spec["completionMode"] == "Indexed" {
        let indexes = |field: &str| status[field].as_str().unwrap_or("<none>").to_string();
        out.line(
            0,
            &format!("Completed Indexes:\t{}", indexes("completedIndexes")),
        );
        if status["failedIndexes"].is_string() {
            out.line(0, &format!("Failed Indexes:\t{}", indexes("failedIndexes")));
        }
    }
    pod::template(out, &spec["template"]);
    events(out, d.events, d.now);
}

/// `kubectl describe cronjob`.
pub fn cronjob(out: &mut Out, d: &Described) {
    let cj = d.object;
    let meta = &cj["metadata"];
    let spec = &cj["spec"];
    let status = &cj["status"];
    out.line(0, &format!("Name:\t{}", text(&meta["name"])));
    out.line(0, &format!("Namespace:\t{}", text(&meta["namespace"])));
    labels(out, "Labels", &meta["labels"]);
    annotations(out, "Annotations", &meta["annotations"]);
    out.line(0, &format!("Schedule:\t{}", text(&spec["schedule"])));
    if let Some(zone) = spec["timeZone"].as_str() {
        out.line(0, &format!("Time Zone:\t{zone}"));
    }
    out.line(
        0,
        &format!(
            "Concurrency Policy:\t{}",
            spec["concurrencyPolicy"].as_str().unwrap_or("Allow")
        ),
    );
    let suspend = match spec["suspend"].as_bool() {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    out.line(0, &format!("Suspend:\t{suspend}"));
    out.line(
        0,
        &format!(
            "Successful Job History Limit:\t{}",
            int_or_unset(&spec["successfulJobsHistoryLimit"])
        ),
    );
    out.line(
        0,
        &format!(
            "Failed Job History Limit:\t{}",
            int_or_unset(&spec["failedJobsHistoryLimit"])
        ),
    );
    let deadline = match spec["startingDeadlineSeconds"].as_i64() {
        Some(s) => format!("{s}s"),
        None => "<unset>".into(),
    };
    out.line(0, &format!("Starting Deadline Seconds:\t{deadline}"));
    let job_spec = &spec["jobTemplate"]["spec"];
    let selector = if job_spec["selector"].is_object() {
        format_selector(&job_spec["selector"])
    } else {
        "<unset>".into()
    };
    out.line(0, &format!("Selector:\t{selector}"));
    out.line(
        0,
        &format!("Parallelism:\t{}", int_or_unset(&job_spec["parallelism"])),
    );
    out.line(
        0,
        &format!("Completions:\t{}", int_or_unset(&job_spec["completions"])),
    );
    if let Some(deadline) = job_spec["activeDeadlineSeconds"].as_i64() {
        out.line(0, &format!("Active Deadline Seconds:\t{deadline}s"));
    }
    pod::template(out, &job_spec["template"]);
    let last = if status["lastScheduleTime"].is_string() {
        time(&status["lastScheduleTime"])
    } else {
        "<unset>".into()
    };
    out.line(0, &format!("Last Schedule Time:\t{last}"));
    let active: Vec<&str> = status["active"]
        .as_array()
        .map(|jobs| jobs.iter().map(|j| text(&j["name"])).collect())
        .unwrap_or_default();
    let active = if active.is_empty() {
        "<none>".to_string()
    } else {
        active.join(",")
    };
    out.line(0, &format!("Active Jobs:\t{active}"));
    events(out, d.events, d.now);
}

/// `kubectl describe daemonset` (which, like kubectl's, prints no namespace).
pub fn daemonset(out: &mut Out, d: &Described) {
    let ds = d.object;
    let meta = &ds["metadata"];
    let spec = &ds["spec"];
    let status = &ds["status"];
    out.line(0, &format!("Name:\t{}", text(&meta["name"])));
    out.line(
        0,
        &format!("Selector:\t{}", format_selector(&spec["selector"])),
    );
    out.line(
        0,
        &format!(
            "Node-Selector:\t{}",
            format_labels(&spec["template"]["spec"]["nodeSelector"])
        ),
    );
    labels(out, "Labels", &meta["labels"]);
    annotations(out, "Annotations", &meta["annotations"]);
    let count = |field: &str| status[field].as_i64().unwrap_or(0);
    for (title, field) in [
        (
            "Desired Number of Nodes Scheduled",
            "desiredNumberScheduled",
        ),
        (
            "Current Number of Nodes Scheduled",
            "currentNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Up-to-date Pods",
            "updatedNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Available Pods",
            "numberAvailable",
        ),
        ("Number of Nodes Misscheduled", "numberMisscheduled"),
    ] {
        out.line(0, &format!("{title}: {}", count(field)));
    }
    let phases = |phase: PodPhase| {
        d.pods
            .iter()
            .filter(|p| p["status"]["phase"] == phase.as_str())
            .count()
    };
    out.line(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed",
            phases(PodPhase::Running),
            phases(PodPhase::Pending),
            phases(PodPhase::Succeeded),
            phases(PodPhase::Failed)
        ),
    );
    pod::template(out, &spec["template"]);
    events(out, d.events, d.now);
}
