//! The prober of one container: when its startup, liveness and readiness probes run, and
//! what their results mean. A state machine of probe results and time, with no I/O: the
//! pod's supervisor asks it which probes are due and feeds it their outcomes.
//!
//! Rules, as the kubelet has them:
//! - a probe first runs `initialDelaySeconds` after the container started, then every
//!   `periodSeconds`; a probe still running when the next is due delays it;
//! - while a startup probe has not succeeded, the other two do not run; once it has, it
//!   runs no more;
//! - `failureThreshold` failures in a row fail a probe, `successThreshold` successes in a row
//!   make it succeed;
//! - a failed startup or liveness probe kills the container, and probing stops until it
//!   runs again;
//! - the container is ready once its readiness probe succeeds (at once without one, after
//!   the startup probe with one), and stops being ready when the readiness probe fails or
//!   the container ends.

#[cfg(test)]
mod tests;

pub use drover_proto::manifest::probe::ProbeKind;
use drover_proto::msg::{DesiredContainer, WireProbe};
use serde::{Deserialize, Serialize};

use crate::supervisor::Millis;

/// The probes of a container, by kind.
pub fn probe_of(container: &DesiredContainer, kind: ProbeKind) -> Option<&WireProbe> {
    match kind {
        ProbeKind::Startup => container.startup_probe.as_ref(),
        ProbeKind::Liveness => container.liveness_probe.as_ref(),
        ProbeKind::Readiness => container.readiness_probe.as_ref(),
    }
}

const KINDS: [ProbeKind; 3] = [
    ProbeKind::Startup,
    ProbeKind::Liveness,
    ProbeKind::Readiness,
];

fn slot(kind: ProbeKind) -> usize {
    match kind {
        ProbeKind::Startup => 0,
        ProbeKind::Liveness => 1,
        ProbeKind::Readiness => 2,
    }
}

fn seconds_ms(seconds: u32) -> Millis {
    Millis::from(seconds.max(1)) * 1000
}

/// One probe's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Worker {
    /// When it runs next (`None`: not while the container runs as it does now).
    next_at: Option<Millis>,
    /// A run was handed out and its outcome has not come back.
    in_flight: bool,
    successes: u32,
    failures: u32,
}

/// What a probe outcome changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The probe failed this time (an `Unhealthy` event).
    pub failed: bool,
    /// The container's readiness changed to this.
    pub ready: Option<bool>,
    /// The startup probe succeeded: the other probes start.
    pub started: bool,
    /// The container must be killed: its startup or liveness probe failed.
    pub kill: bool,
}

/// The probes of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerProber {
    workers: [Worker; 3],
    /// The startup probe succeeded, or there is none.
    started: bool,
    /// Ready to serve.
    ready: bool,
}

impl ContainerProber {
    /// The container started: every probe it has begins after its initial delay.
    pub fn start(&mut self, container: &DesiredContainer, now: Millis) {
        self.started = container.startup_probe.is_none();
        self.ready = self.started && container.readiness_probe.is_none();
        for kind in KINDS {
            self.workers[slot(kind)] = Worker {
                next_at: probe_of(container, kind)
                    .map(|p| now + Millis::from(p.initial_delay_seconds) * 1000),
                ..Worker::default()
            };
        }
        if self.started {
            self.workers[slot(ProbeKind::Startup)].next_at = None;
        }
    }

    /// The container is not running: nothing is probed, and it is not ready.
    pub fn stop(&mut self) {
        self.ready = false;
        self.workers = Default::default();
    }

    /// Whether the container is ready (as far as its probes say).
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Whether the startup probe succeeded (or there is none).
    pub fn started(&self) -> bool {
        self.started
    }

    /// The probes to run now; each is in flight until [`ContainerProber::outcome`].
    pub fn due(&mut self, container: &DesiredContainer, now: Millis) -> Vec<ProbeKind> {
        let mut due = Vec::new();
        for kind in KINDS {
            let Some(probe) = probe_of(container, kind) else {
                continue;
            };
            let started = self.started;
            let worker = &mut self.workers[slot(kind)];
            let Some(at) = worker.next_at else {
                continue;
            };
            if at > now || worker.in_flight {
                continue;
            }
            worker.next_at = Some(now + seconds_ms(probe.period_seconds));
            // The others wait for the startup probe, which is skipped, not failed, meanwhile.
            if kind != ProbeKind::Startup && !started {
                continue;
            }
            worker.in_flight = true;
            due.push(kind);
        }
        due
    }

    /// The outcome of a probe handed out by [`ContainerProber::due`].
    pub fn outcome(
        &mut self,
        container: &DesiredContainer,
        kind: ProbeKind,
        success: bool,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let Some(probe) = probe_of(container, kind) else {
            return verdict;
        };
        let worker = &mut self.workers[slot(kind)];
        if !worker.in_flight {
            // Not asked for in this run of the container: its outcome means nothing now.
            return verdict;
        }
        worker.in_flight = false;
        if success {
            worker.failures = 0;
            worker.successes = worker.successes.saturating_add(1);
        } else {
            worker.successes = 0;
            worker.failures = worker.failures.saturating_add(1);
            verdict.failed = true;
        }
        let succeeded = worker.successes >= probe.success_threshold.max(1);
        let failed = worker.failures >= probe.failure_threshold.max(1);
        match kind {
            ProbeKind::Startup if succeeded => {
                worker.next_at = None;
                self.started = true;
                verdict.started = true;
                // The others start now, each after its own delay from the container's
                // start, which has passed or is still to come: no earlier than now.
                if container.readiness_probe.is_none() {
                    self.ready = true;
                    verdict.ready = Some(true);
                }
            }
            ProbeKind::Startup | ProbeKind::Liveness if failed => {
                verdict.kill = true;
                if self.ready {
                    verdict.ready = Some(false);
                }
                self.stop();
            }
            ProbeKind::Readiness if succeeded && !self.ready => {
                self.ready = true;
                verdict.ready = Some(true);
            }
            ProbeKind::Readiness if failed && self.ready => {
                self.ready = false;
                verdict.ready = Some(false);
            }
            _ => {}
        }
        verdict
    }

    /// A probe handed out could not be run (its container is not reachable yet): it counts
    /// for nothing, and runs again when next due.
    pub fn not_run(&mut self, kind: ProbeKind) {
        self.workers[slot(kind)].in_flight = false;
    }

    /// When a probe is due next. A probe in flight counts only once its outcome is in: until
    /// then nothing can be done for it, and a due time passed meanwhile would ask for a wake
    /// at once, again and again.
    pub fn next_at(&self) -> Option<Millis> {
        self.workers
            .iter()
            .filter(|w| !w.in_flight)
            .filter_map(|w| w.next_at)
            .min()
    }

    /// The agent restarted: the probes it had running are gone, and run again when due.
    pub fn forget_in_flight(&mut self) {
        for worker in &mut self.workers {
            worker.in_flight = false;
        }
    }

    /// Moves its times by `by` (times from another boot's clock).
    pub fn shift(&mut self, by: Millis) {
        for worker in &mut self.workers {
            if let Some(at) = &mut worker.next_at {
                *at += by;
            }
        }
    }
}
