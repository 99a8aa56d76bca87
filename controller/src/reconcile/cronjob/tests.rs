//! The CronJob reconciler with a hand-held clock.

use chrono::{DateTime, TimeZone, Utc};
use drover_proto::manifest::*;

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn spec(schedule: &str) -> CronJobSpec {
    CronJobSpec {
        schedule: schedule.into(),
        time_zone: Some("Etc/UTC".into()),
        ..Default::default()
    }
}

fn run(name: &str, state: RunState, finished: Option<&str>) -> CronRun {
    CronRun {
        name: name.into(),
        state,
        finished_at: finished.map(utc),
        created: utc("2026-01-01T00:00:00Z"),
    }
}

fn reconcile_at(
    spec: &CronJobSpec,
    created: &str,
    last: Option<&str>,
    runs: &[CronRun],
    now: &str,
) -> CronOutcome {
    reconcile(&CronInput {
        name: "tick",
        spec,
        created: utc(created),
        last_schedule: last.map(utc),
        runs,
        recorded_active: &[],
        now: utc(now),
    })
}

fn created_jobs(outcome: &CronOutcome) -> Vec<String> {
    outcome
        .actions
        .iter()
        .filter_map(|a| {
            if let CronAction::CreateJob { name, .. } = a {
                Some(name.clone())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn job_names_are_minutes_since_the_epoch() {
    assert_eq!(
        job_name("tick", utc("2026-11-28T10:05:00Z")),
        format!("tick-{}", utc("2026-11-28T10:05:00Z").timestamp() / 60)
    );
}

#[test]
fn every_minute_runs_once_per_minute_and_never_twice() {
    let s = spec("* * * * *");
    let outcome = reconcile_at(
        &s,
        "2026-11-28T10:00:30Z",
        None,
        &[],
        "2026-11-28T10:01:05Z",
    );
    let expected = job_name("tick", utc("2026-11-28T10:01:00Z"));
    assert_eq!(created_jobs(&outcome), vec![expected.clone()]);
    assert_eq!(outcome.last_schedule, Some(utc("2026-11-28T10:01:00Z")));
    assert_eq!(outcome.wake_at, Some(utc("2026-11-28T10:02:00Z")));
    // The controller restarted before recording lastScheduleTime: the Job exists, no second one.
    let runs = [run(&expected, RunState::Active, None)];
    let again = reconcile_at(
        &s,
        "2026-11-28T10:00:30Z",
        None,
        &runs,
        "2026-11-28T10:01:30Z",
    );
    assert!(created_jobs(&again).is_empty());
}

#[test]
fn only_the_latest_missed_time_runs() {
    let s = spec("*/5 * * * *");
    let outcome = reconcile_at(
        &s,
        "2026-11-28T09:00:00Z",
        Some("2026-11-28T09:00:00Z"),
        &[],
        "2026-11-28T09:32:00Z",
    );
    assert_eq!(
        created_jobs(&outcome),
        vec![job_name("tick", utc("2026-11-28T09:30:00Z"))]
    );
    assert!(!outcome
        .actions
        .iter()
        .any(|a| matches!(a, CronAction::Warning { .. })));
}

#[test]
fn more_than_100_missed_times_warn_and_the_latest_still_runs() {
    let s = spec("* * * * *");
    let outcome = reconcile_at(
        &s,
        "2026-11-28T00:00:00Z",
        Some("2026-11-28T00:00:00Z"),
        &[],
        "2026-11-28T05:00:30Z",
    );
    assert!(outcome.actions.iter().any(|a| matches!(
        a,
        CronAction::Warning {
            reason: "TooManyMissedTimes",
            ..
        }
    )));
    assert_eq!(
        created_jobs(&outcome),
        vec![job_name("tick", utc("2026-11-28T05:00:00Z"))]
    );
}

#[test]
fn the_starting_deadline_bounds_the_window() {
    let mut s = spec("0 * * * *");
    s.starting_deadline_seconds = Some(600);
    // 10:00 was missed by 20 minutes: outside the 10-minute deadline, nothing runs.
    let late = reconcile_at(
        &s,
        "2026-11-28T09:30:00Z",
        Some("2026-11-28T09:00:00Z"),
        &[],
        "2026-11-28T10:20:00Z",
    );
    assert!(created_jobs(&late).is_empty());
    let in_time = reconcile_at(
        &s,
        "2026-11-28T09:30:00Z",
        Some("2026-11-28T09:00:00Z"),
        &[],
        "2026-11-28T10:05:00Z",
    );
    assert_eq!(created_jobs(&in_time).len(), 1);
    // Many misses, but the window is the deadline: no warning.
    let mut every_minute = spec("* * * * *");
    every_minute.starting_deadline_seconds = Some(200);
    let outcome = reconcile_at(
        &every_minute,
        "2026-11-28T00:00:00Z",
        Some("2026-11-28T00:00:00Z"),
        &[],
        "2026-11-28T05:00:30Z",
    );
    assert!(!outcome
        .actions
        .iter()
        .any(|a| matches!(a, CronAction::Warning { .. })));
}

#[test]
fn forbid_skips_while_a_job_is_active_and_replace_deletes_it() {
    let mut s = spec("* * * * *");
    s.concurrency_policy = Some(ConcurrencyPolicy::Forbid);
    let runs = [run("tick-1", RunState::Active, None)];
    let skipped = reconcile_at(
        &s,
        "2026-11-28T10:00:00Z",
        Some("2026-11-28T10:00:00Z"),
        &runs,
        "2026-11-28T10:01:10Z",
    );
    assert!(created_jobs(&skipped).is_empty());
    assert_eq!(
        skipped.last_schedule,
        Some(utc("2026-11-28T10:00:00Z")),
        "a skipped time is not recorded"
    );
    s.concurrency_policy = Some(ConcurrencyPolicy::Replace);
    let replaced = reconcile_at(
        &s,
        "2026-11-28T10:00:00Z",
        Some("2026-11-28T10:00:00Z"),
        &runs,
        "2026-11-28T10:01:10Z",
    );
    assert_eq!(
        replaced.actions[0],
        CronAction::DeleteJob {
            name: "tick-1".into(),
            reason: "replaced"
        }
    );
    assert_eq!(created_jobs(&replaced).len(), 1);
    assert_eq!(replaced.active.len(), 1);
    s.concurrency_policy = Some(ConcurrencyPolicy::Allow);
    let allowed = reconcile_at(
        &s,
        "2026-11-28T10:00:00Z",
        Some("2026-11-28T10:00:00Z"),
        &runs,
        "2026-11-28T10:01:10Z",
    );
    assert_eq!(allowed.active.len(), 2);
}

#[test]
fn suspended_cronjobs_create_nothing_and_resume_with_the_latest_missed_time() {
    let mut s = spec("*/10 * * * *");
    s.suspend = Some(true);
    let suspended = reconcile_at(
        &s,
        "2026-11-28T10:00:00Z",
        Some("2026-11-28T10:00:00Z"),
        &[],
        "2026-11-28T10:35:00Z",
    );
    assert!(created_jobs(&suspended).is_empty());
    s.suspend = Some(false);
    let resumed = reconcile_at(
        &s,
        "2026-11-28T10:00:00Z",
        Some("2026-11-28T10:00:00Z"),
        &[],
        "2026-11-28T10:35:00Z",
    );
    assert_eq!(
        created_jobs(&resumed),
        vec![job_name("tick", utc("2026-11-28T10:30:00Z"))]
    );
}

#[test]
fn history_keeps_the_newest_finished_jobs() {
    let mut s = spec("* * * * *");
    s.successful_jobs_history_limit = Some(2);
    s.failed_jobs_history_limit = Some(1);
    let runs = [
        run("ok-1", RunState::Succeeded, Some("2026-11-28T10:01:00Z")),
        run("ok-2", RunState::Succeeded, Some("2026-11-28T10:02:00Z")),
        run("ok-3", RunState::Succeeded, Some("2026-11-28T10:03:00Z")),
        run("bad-1", RunState::Failed, Some("2026-11-28T10:01:30Z")),
        run("bad-2", RunState::Failed, Some("2026-11-28T10:02:30Z")),
        run("live", RunState::Active, None),
    ];
    let outcome = reconcile_at(
        &s,
        "2026-11-28T10:00:00Z",
        Some("2026-11-28T10:04:00Z"),
        &runs,
        "2026-11-28T10:04:10Z",
    );
    let deleted: Vec<&str> = outcome
        .actions
        .iter()
        .filter_map(|a| {
            if let CronAction::DeleteJob { name, .. } = a {
                Some(name.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(deleted, vec!["ok-1", "bad-1"]);
    assert_eq!(outcome.last_successful, Some(utc("2026-11-28T10:03:00Z")));
}

#[test]
fn macros_and_invalid_zones() {
    let hourly = Schedule::parse("@hourly", Zone::Named(chrono_tz::UTC)).unwrap();
    assert_eq!(
        hourly.next_after(utc("2026-11-28T10:20:00Z")),
        Some(utc("2026-11-28T11:00:00Z"))
    );
    let mut s = spec("* * * * *");
    s.time_zone = Some("Mars/Olympus".into());
    let outcome = reconcile_at(
        &s,
        "2026-11-28T10:00:00Z",
        None,
        &[],
        "2026-11-28T10:05:00Z",
    );
    assert!(created_jobs(&outcome).is_empty());
    assert!(matches!(
        &outcome.actions[0],
        CronAction::Warning {
            reason: "UnknownTimeZone",
            ..
        }
    ));
}

#[test]
fn daily_times_follow_daylight_saving_in_a_named_zone() {
    let berlin = Schedule::parse("0 9 * * *", Zone::Named(chrono_tz::Europe::Berlin)).unwrap();
    // Before the change (CEST, UTC+2) 09:00 is 07:00 UTC; after it (CET, UTC+1), 08:00 UTC.
    assert_eq!(
        berlin.next_after(utc("2026-10-24T12:00:00Z")),
        Some(utc("2026-10-25T08:00:00Z"))
    );
    assert_eq!(
        berlin.next_after(utc("2026-10-23T12:00:00Z")),
        Some(utc("2026-10-24T07:00:00Z"))
    );
    // Hourly across the night the clocks go back: strictly increasing instants.
    let hourly = Schedule::parse("0 * * * *", Zone::Named(chrono_tz::Europe::Berlin)).unwrap();
    let mut t = utc("2026-10-24T22:30:00Z");
    let mut times = vec![];
    for _ in 0..6 {
        t = hourly.next_after(t).unwrap();
        times.push(t);
    }
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    let _ = chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 10, 25, 2, 30, 0);
}

#[test]
fn the_largest_starting_deadline_does_not_panic_and_does_not_limit() {
    let mut s = spec("0 * * * *");
    for deadline in [i64::MAX, i64::MIN + 1] {
        s.starting_deadline_seconds = Some(deadline);
        let outcome = reconcile_at(
            &s,
            "2026-11-28T09:30:00Z",
            Some("2026-11-28T09:00:00Z"),
            &[],
            "2026-11-28T10:20:00Z",
        );
        if deadline > 0 {
            assert_eq!(created_jobs(&outcome).len(), 1);
        }
    }
}

#[test]
fn an_active_job_that_went_missing_is_reported_once_gone() {
    let s = spec("0 * * * *");
    let runs = [run("tick-1", RunState::Active, None)];
    let recorded = ["tick-1".to_string(), "tick-2".to_string()];
    let outcome = reconcile(&CronInput {
        name: "tick",
        spec: &s,
        created: utc("2026-11-28T10:00:30Z"),
        last_schedule: Some(utc("2026-11-28T11:00:00Z")),
        runs: &runs,
        recorded_active: &recorded,
        now: utc("2026-11-28T11:30:00Z"),
    });
    let events: Vec<&CronAction> = outcome
        .actions
        .iter()
        .filter(|a| matches!(a, CronAction::Normal { .. }))
        .collect();
    assert_eq!(
        events,
        [&CronAction::Normal {
            reason: "MissingJob",
            message: "Active job went missing: tick-2".into(),
        }]
    );
    assert_eq!(outcome.active, ["tick-1"]);
}

#[test]
fn the_api_refuses_what_the_parser_cannot_schedule() {
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        ("*/5 * * * *", Some("Europe/Berlin"), &[]),
        ("@hourly", None, &[]),
        ("61 * * * *", None, &["spec.schedule"]),
        ("0 25 * * *", Some("Etc/UTC"), &["spec.schedule"]),
        ("* * * * *", Some("Mars/Base"), &["spec.timeZone"]),
        (
            "61 * * * *",
            Some("Mars/Base"),
            &["spec.timeZone", "spec.schedule"],
        ),
    ];
    for (schedule, zone, fields) in cases {
        let spec = CronJobSpec {
            schedule: (*schedule).into(),
            time_zone: zone.map(str::to_string),
            ..Default::default()
        };
        let errors = schedule_errors(&spec);
        let got: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(got, *fields, "{schedule} {zone:?}: {errors:?}");
    }
    let spec = CronJobSpec {
        schedule: "* * * * *".into(),
        time_zone: Some("Mars/Base".into()),
        ..Default::default()
    };
    assert_eq!(
        schedule_errors(&spec)[0].1,
        "\"Mars/Base\": unknown time zone Mars/Base"
    );
}
