//! The CronJob reconciler: from a CronJob, its Jobs and the time, the Jobs to create and
//! delete, and the status. No I/O.
//!
//! Rules (spec §3): only the latest missed time in (max(lastScheduleTime or creation,
//! now − startingDeadlineSeconds), now] runs; more than 100 missed times is a warning;
//! `concurrencyPolicy` Allow/Forbid/Replace; `suspend`; history limits; Job names
//! `<cronjob>-<scheduled unix time / 60>`, so the same run can never be created twice.

pub mod jobs;

use std::str::FromStr;

use chrono::{DateTime, Local, TimeZone, Utc};
use croner::Cron;
use drover_proto::manifest::{ConcurrencyPolicy, CronJobSpec};

/// Missed times beyond which a warning is raised.
pub const MISSED_TIMES_WARNING: usize = 100;

/// A time zone for schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// An IANA zone.
    Named(chrono_tz::Tz),
    /// The controller's local zone.
    Local,
}

impl Zone {
    /// The zone a CronJob names, or the local one; an error for an unknown name.
    pub fn from_spec(name: Option<&str>) -> Result<Zone, String> {
        match name {
            None => Ok(Zone::Local),
            Some(name) => chrono_tz::Tz::from_str(name)
                .map(Zone::Named)
                .map_err(|_| format!("unknown time zone \"{name}\"")),
        }
    }
}

/// A parsed schedule in its zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Zone,
}

const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    /// Parses a 5-field schedule or macro.
    pub fn parse(schedule: &str, zone: Zone) -> Result<Schedule, String> {
        let cron =
            parse_cron(schedule).map_err(|e| format!("invalid schedule \"{schedule}\": {e}"))?;
        Ok(Schedule { cron, zone })
    }

    fn next_in<Tz: TimeZone>(&self, after: DateTime<Tz>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    fn previous_in<Tz: TimeZone>(&self, at: DateTime<Tz>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&at, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first scheduled time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Named(tz) => self.next_in(after.with_timezone(&tz)),
            Zone::Local => self.next_in(after.with_timezone(&Local)),
        }
    }

    /// The last scheduled time at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Named(tz) => self.previous_in(at.with_timezone(&tz)),
            Zone::Local => self.previous_in(at.with_timezone(&Local)),
        }
    }

    /// The scheduled times in (after, until]: how many (counting stops past the warning
    /// threshold) and the latest.
    pub fn missed(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> (usize, Option<DateTime<Utc>>) {
        let latest = self.latest_at_or_before(until).filter(|t| *t > after);
        let Some(latest) = latest else {
            return (0, None);
        };
        let mut count = 0;
        let mut cursor = after;
        while let Some(next) = self.next_after(cursor) {
            if next > until {
                break;
            }
            count += 1;
            if count > MISSED_TIMES_WARNING {
                break;
            }
            cursor = next;
        }
        (count.max(1), Some(latest))
    }
}

/// What the API refuses in a CronJob's `schedule` and `timeZone`, checked with the parser
/// the reconciler runs so nothing accepted can fail to schedule later: (field, message) in
/// Kubernetes' wording (`"61 * * * *": …`, `"Mars/Base": unknown time zone Mars/Base`).
pub fn schedule_errors(spec: &CronJobSpec) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    if let Some(name) = spec.time_zone.as_deref() {
        if Zone::from_spec(Some(name)).is_err() {
            errors.push((
                "spec.timeZone",
                format!("{name:?}: unknown time zone {name}"),
            ));
        }
    }
    if let Err(e) = parse_cron(&spec.schedule) {
        errors.push(("spec.schedule", format!("{:?}: {e}", spec.schedule)));
    }
    errors
}

fn parse_cron(schedule: &str) -> Result<Cron, String> {
    let text = schedule.trim();
    let expanded = MACROS
        .iter()
        .find(|(m, _)| *m == text)
        .map_or(text, |(_, e)| *e);
    if expanded.split_whitespace().count() != 5 {
        return Err("not a 5-field cron schedule".into());
    }
    Cron::from_str(expanded).map_err(|e| e.to_string())
}

/// The Job name of a run: `<cronjob>-<scheduled unix time / 60>`.
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

/// State of one of the CronJob's Jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Not finished.
    Active,
    /// Complete.
    Succeeded,
    /// Failed.
    Failed,
}

/// One Job of the CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRun {
    /// Job name.
    pub name: String,
    /// State.
    pub state: RunState,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronAction {
    /// Create the Job of the run scheduled at this time.
    CreateJob {
        /// Job name.
        name: String,
        /// Nominal time.
        scheduled: DateTime<Utc>,
    },
    /// Delete a Job (and its pods).
    DeleteJob {
        /// Job name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Record a normal event.
    Normal {
        /// Reason.
        reason: &'static str,
        /// Message.
        message: String,
    },
    /// Record a warning event.
    Warning {
        /// Reason.
        reason: &'static str,
        /// Message.
        message: String,
    },
}

/// Everything the reconciler looks at.
pub struct CronInput<'a> {
    /// CronJob name.
    pub name: &'a str,
    /// Spec.
    pub spec: &'a CronJobSpec,
    /// When the CronJob was created.
    pub created: DateTime<Utc>,
    /// `status.lastScheduleTime`.
    pub last_schedule: Option<DateTime<Utc>>,
    /// Its Jobs.
    pub runs: &'a [CronRun],
    /// `status.active` as last recorded (Job names).
    pub recorded_active: &'a [String],
    /// Now.
    pub now: DateTime<Utc>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronOutcome {
    /// Actions, in order.
    pub actions: Vec<CronAction>,
    /// New `lastScheduleTime`.
    pub last_schedule: Option<DateTime<Utc>>,
    /// `lastSuccessfulTime`.
    pub last_successful: Option<DateTime<Utc>>,
    /// Active Jobs after the actions.
    pub active: Vec<String>,
    /// Reconcile again at this time.
    pub wake_at: Option<DateTime<Utc>>,
}

/// Reconciles one CronJob.
pub fn reconcile(input: &CronInput) -> CronOutcome {
    let CronInput {
        name,
        spec,
        created,
        last_schedule,
        runs,
        recorded_active,
        now,
    } = *input;
    let active: Vec<String> = runs
        .iter()
        .filter(|r| r.state == RunState::Active)
        .map(|r| r.name.clone())
        .collect();
    let last_successful = runs
        .iter()
        .filter(|r| r.state == RunState::Succeeded)
        .filter_map(|r| r.finished_at)
        .max();

    let mut outcome = CronOutcome {
        actions: Vec::new(),
        last_schedule,
        last_successful,
        active,
        wake_at: None,
    };

    // A Job deleted while active leaves the list, with the event Kubernetes records (as a
    // Normal event, not a warning: the CronJob itself is healthy).
    for missing in recorded_active
        .iter()
        .filter(|name| !runs.iter().any(|r| &r.name == *name))
    {
        outcome.actions.push(CronAction::Normal {
            reason: "MissingJob",
            message: format!("Active job went missing: {missing}"),
        });
    }

    // History: the newest finished Jobs within the limits stay.
    for (state, limit) in [
        (
            RunState::Succeeded,
            spec.successful_jobs_history_limit.unwrap_or(3),
        ),
        (
            RunState::Failed,
            spec.failed_jobs_history_limit.unwrap_or(1),
        ),
    ] {
        let mut finished: Vec<&CronRun> = runs.iter().filter(|r| r.state == state).collect();
        finished.sort_by_key(|r| (r.finished_at.unwrap_or(r.created), r.name.clone()));
        let excess = finished.len().saturating_sub(limit.max(0) as usize);
        for run in finished.into_iter().take(excess) {
            outcome.actions.push(CronAction::DeleteJob {
                name: run.name.clone(),
                reason: "history",
            });
        }
    }

    let zone = match Zone::from_spec(spec.time_zone.as_deref()) {
        Ok(zone) => zone,
        Err(message) => {
            outcome.actions.push(CronAction::Warning {
                reason: "UnknownTimeZone",
                message,
            });
            return outcome;
        }
    };
    let schedule = match Schedule::parse(&spec.schedule, zone) {
        Ok(s) => s,
        Err(message) => {
            outcome.actions.push(CronAction::Warning {
                reason: "InvalidSchedule",
                message,
            });
            return outcome;
        }
    };
    outcome.wake_at = schedule.next_after(now);
    if spec.suspend == Some(true) {
        return outcome;
    }

    let mut earliest = last_schedule.unwrap_or(created);
    // Checked: a deadline past chrono's range (the largest i64 values) does not limit.
    let window = spec
        .starting_deadline_seconds
        .and_then(chrono::Duration::try_seconds);
    if let Some(start) = window.and_then(|w| now.checked_sub_signed(w)) {
        earliest = earliest.max(start);
    }
    let (missed, latest) = schedule.missed(earliest, now);
    if missed > MISSED_TIMES_WARNING {
        outcome.actions.push(CronAction::Warning {
            reason: "TooManyMissedTimes",
            message: format!(
                "too many missed start times (> {MISSED_TIMES_WARNING}); set or decrease .spec.startingDeadlineSeconds or check clock skew"
            ),
        });
    }
    if let Some(scheduled) = latest {
        let job = job_name(name, scheduled);
        let exists = runs.iter().any(|r| r.name == job);
        let policy = spec.concurrency_policy.unwrap_or(ConcurrencyPolicy::Allow);
        if exists {
            outcome.last_schedule = Some(scheduled).max(last_schedule);
        } else if policy == ConcurrencyPolicy::Forbid && !outcome.active.is_empty() {
            // Skipped; the time may still run later while its deadline allows.
            if spec.starting_deadline_seconds.is_some() {
                let retry = now + chrono::Duration::seconds(1);
                let until = window.and_then(|w| scheduled.checked_add_signed(w));
                if until.is_none_or(|until| retry <= until) {
                    outcome.wake_at = outcome.wake_at.map_or(Some(retry), |w| Some(w.min(retry)));
                }
            }
        } else {
            if policy == ConcurrencyPolicy::Replace {
                for run in std::mem::take(&mut outcome.active) {
                    outcome.actions.push(CronAction::DeleteJob {
                        name: run,
                        reason: "replaced",
                    });
                }
            }
            outcome.actions.push(CronAction::CreateJob {
                name: job.clone(),
                scheduled,
            });
            outcome.active.push(job);
            outcome.last_schedule = Some(scheduled);
        }
    }
    outcome
}

#[cfg(test)]
mod tests;
