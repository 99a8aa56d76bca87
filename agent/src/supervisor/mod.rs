//! The restart supervisor of one pod: a state machine of container exits and time, with no
//! I/O. The pod manager feeds it inputs and carries out the actions it returns.
//!
//! Rules (spec §1): `Always` restarts after every exit, `OnFailure` after non-zero exits,
//! `Never` never. The first restart is immediate, then 10 s doubling to 300 s (waiting
//! reason `CrashLoopBackOff`); the delay resets after 10 minutes of running. Stop sends
//! SIGTERM, then SIGKILL after the grace period.

pub mod legacy;
#[cfg(test)]
mod tests;

use std::time::Duration;

use drover_proto::msg::{
    DesiredPod, WireContainerState, WireContainerStatus, WirePhase, WirePodStatus,
    WireRestartPolicy,
};
use serde::{Deserialize, Serialize};

use crate::prober::{ContainerProber, ProbeKind};

/// Milliseconds on the agent's clock, the supervisor's only notion of time: the pod manager
/// runs it on the boot-time clock ([`crate::clock`]), so durations survive wall-clock steps.
pub type Millis = i64;

/// Crash back-off settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackoffPolicy {
    /// Delay before the second restart.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Running this long without exiting resets the delay.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl BackoffPolicy {
    /// Delay before restart number `crashes` (1 = first restart, immediate).
    pub fn delay(&self, crashes: u32) -> Duration {
        drover_proto::backoff::exponential(self.initial, self.max, crashes.saturating_sub(1))
    }
}

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// Exit code; 128+N when killed by signal N.
    pub exit_code: i32,
    /// Killing signal, 0 when it exited by itself.
    pub signal: i32,
    /// `Completed`, `Error`, `OOMKilled`, `ContainerCannotRun`, `AgentRestart`.
    pub reason: String,
    /// Details.
    pub message: String,
    /// Start time.
    pub started_at: Millis,
    /// End time.
    pub finished_at: Millis,
}

impl Exit {
    fn shift(&mut self, by: Millis) {
        self.started_at += by;
        self.finished_at += by;
    }

    fn state(&self) -> WireContainerState {
        WireContainerState::Terminated {
            exit_code: self.exit_code,
            signal: self.signal,
            reason: self.reason.clone(),
            message: self.message.clone(),
            started_at_ms: self.started_at,
            finished_at_ms: self.finished_at,
        }
    }
}

/// What a container is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerPhase {
    /// Not running; `retry_at` set while backing off.
    Waiting {
        /// Reason shown.
        reason: String,
        /// Details.
        message: String,
        /// When to start it (None: starting now).
        retry_at: Option<Millis>,
    },
    /// Running.
    Running {
        /// Since.
        started_at: Millis,
    },
    /// Exited and will not be restarted.
    Terminated(Exit),
}

/// One container under supervision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSupervisor {
    /// Container name.
    pub name: String,
    /// Current phase.
    pub phase: ContainerPhase,
    /// The previous run's end.
    pub last_exit: Option<Exit>,
    /// Restarts so far.
    pub restart_count: u32,
    /// Exits since the back-off last reset.
    crashes: u32,
    /// Ever started (for the pod's phase).
    started_once: bool,
    /// Image failures since the container last started (its retries are not restarts).
    image_failures: u32,
    /// Its probes.
    prober: ContainerProber,
    /// Killed for failing a probe: SIGKILL follows at this time if it still runs.
    kill_at: Option<Millis>,
}

/// Ways a process is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
}

/// What the pod manager must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start container `index`.
    Start(usize),
    /// Signal container `index`'s processes.
    Signal(usize, StopSignal),
    /// Stop container `index` alone: SIGTERM, SIGKILL after `grace_seconds` (SIGKILL at
    /// once for 0). The supervisor also asks for the SIGKILL when the time comes.
    StopContainer {
        /// The container.
        index: usize,
        /// Seconds between SIGTERM and SIGKILL.
        grace_seconds: u32,
    },
    /// Run a probe of container `index`; its outcome goes to [`PodSupervisor::probed`].
    Probe(usize, ProbeKind),
    /// Call [`PodSupervisor::wake`] at this time.
    WakeAt(Millis),
    /// The pod is stopped: forget it once its status is reported.
    Removed,
    /// Record an event.
    Event {
        /// Warning (else Normal).
        warning: bool,
        /// Reason.
        reason: &'static str,
        /// Message.
        message: String,
    },
}

/// Stopping state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stopping {
    kill_at: Millis,
    killed: bool,
}

/// The supervisor of one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSupervisor {
    /// The pod as desired.
    pub spec: DesiredPod,
    /// Its containers, in spec order.
    pub containers: Vec<ContainerSupervisor>,
    /// Increases with every status change.
    pub revision: u64,
    /// When the agent accepted the pod.
    pub start_time: Millis,
    /// Pod-level message (e.g. limits not enforced).
    pub message: String,
    /// Pod-level reason.
    pub reason: String,
    stopping: Option<Stopping>,
    removed: bool,
    backoff: BackoffPolicy,
}

fn will_restart(policy: WireRestartPolicy, exit_code: i32) -> bool {
    match policy {
        WireRestartPolicy::Always => true,
        WireRestartPolicy::OnFailure => exit_code != 0,
        WireRestartPolicy::Never => false,
    }
}

fn seconds(ms: Millis) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

impl PodSupervisor {
    /// Accepts a pod: every container is to be started now.
    pub fn new(
        spec: DesiredPod,
        backoff: BackoffPolicy,
        now: Millis,
    ) -> (PodSupervisor, Vec<Action>) {
        let containers: Vec<ContainerSupervisor> = spec
            .containers
            .iter()
            .map(|c| ContainerSupervisor {
                name: c.name.clone(),
                phase: ContainerPhase::Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                    retry_at: None,
                },
                last_exit: None,
                restart_count: 0,
                crashes: 0,
                started_once: false,
                image_failures: 0,
                prober: ContainerProber::default(),
                kill_at: None,
            })
            .collect();
        let actions = (0..containers.len()).map(Action::Start).collect();
        let pod = PodSupervisor {
            spec,
            containers,
            revision: 0,
            start_time: now,
            message: String::new(),
            reason: String::new(),
            stopping: None,
            removed: false,
            backoff,
        };
        (pod, actions)
    }

    /// Uses a new back-off policy from now on (agent configuration may change across
    /// restarts).
    pub fn set_backoff(&mut self, backoff: BackoffPolicy) {
        self.backoff = backoff;
    }

    /// Whether the pod is being stopped.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// Whether the pod has been stopped and may be forgotten.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// Container `index` is running.
    pub fn started(&mut self, index: usize, now: Millis) -> Vec<Action> {
        let (Some(c), Some(spec)) = (
            self.containers.get_mut(index),
            self.spec.containers.get(index),
        ) else {
            return vec![];
        };
        c.phase = ContainerPhase::Running { started_at: now };
        c.started_once = true;
        c.image_failures = 0;
        c.kill_at = None;
        c.prober.start(spec, now);
        let mut actions = vec![Action::Event {
            warning: false,
            reason: "Started",
            message: format!("Started container {}", c.name),
        }];
        if let Some(at) = c.prober.next_at() {
            actions.push(Action::WakeAt(at));
        }
        // A stop may have arrived while the process was being started.
        if let Some(stopping) = self.stopping {
            let signal = if stopping.killed || self.spec.termination_grace_seconds == 0 {
                StopSignal::Kill
            } else {
                StopSignal::Term
            };
            actions.push(Action::Signal(index, signal));
        }
        actions
    }

    /// Container `index` could not be started (e.g. its command does not exist). Handled
    /// like an exit with code 128, reason `ContainerCannotRun`.
    pub fn start_failed(&mut self, index: usize, message: String, now: Millis) -> Vec<Action> {
        let mut actions = vec![Action::Event {
            warning: true,
            reason: "Failed",
            message: format!("Error: ContainerCannotRun: {message}"),
        }];
        let exit = Exit {
            exit_code: 128,
            signal: 0,
            reason: "ContainerCannotRun".into(),
            message,
            started_at: now,
            finished_at: now,
        };
        actions.extend(self.terminated(index, exit, now));
        actions
    }

    /// Container `index`'s image is missing and could not be pulled (`ErrImagePull`) or may
    /// not be (`ErrImageNeverPull`). Kubernetes' way: the container waits and the start is
    /// retried with the crash back-off's delays (10 s doubling to 300 s), shown as
    /// `ImagePullBackOff` after a failed pull; these retries are not restarts.
    pub fn image_failed(
        &mut self,
        index: usize,
        reason: &'static str,
        message: String,
        now: Millis,
    ) -> Vec<Action> {
        let backoff = self.backoff;
        let stopping = self.stopping.is_some();
        let Some(c) = self.containers.get_mut(index) else {
            return vec![];
        };
        c.image_failures += 1;
        let mut actions = vec![Action::Event {
            warning: true,
            reason: "Failed",
            message: format!("Error: {reason}: {message}"),
        }];
        if stopping {
            c.phase = ContainerPhase::Waiting {
                reason: reason.into(),
                message,
                retry_at: Some(now),
            };
            if self.nothing_running() && !self.starting_any() {
                self.removed = true;
                actions.push(Action::Removed);
            }
            return actions;
        }
        let retry_at = now + backoff.delay(c.image_failures + 1).as_millis() as Millis;
        let shown = if reason == "ErrImagePull" && c.image_failures > 1 {
            "ImagePullBackOff"
        } else {
            reason
        };
        c.phase = ContainerPhase::Waiting {
            reason: shown.into(),
            message,
            retry_at: Some(retry_at),
        };
        actions.push(Action::WakeAt(retry_at));
        actions
    }

    /// Container `index`'s process ended with `exit_code` (128+N for signal N).
    pub fn exited(
        &mut self,
        index: usize,
        exit_code: i32,
        signal: i32,
        oom_killed: bool,
        now: Millis,
    ) -> Vec<Action> {
        let Some(c) = self.containers.get(index) else {
            return vec![];
        };
        let started_at = match c.phase {
            ContainerPhase::Running { started_at } => started_at,
            _ => now,
        };
        let reason = if oom_killed {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let exit = Exit {
            exit_code,
            signal,
            reason: reason.into(),
            message: String::new(),
            started_at,
            finished_at: now,
        };
        self.terminated(index, exit, now)
    }

    /// The agent restarted while container `index` was running: its process was stopped.
    pub fn lost_to_agent_restart(
        &mut self,
        index: usize,
        message: &str,
        now: Millis,
    ) -> Vec<Action> {
        let Some(c) = self.containers.get(index) else {
            return vec![];
        };
        let started_at = match c.phase {
            ContainerPhase::Running { started_at } => started_at,
            _ => now,
        };
        let exit = Exit {
            exit_code: 137,
            signal: 9,
            reason: "AgentRestart".into(),
            message: message.into(),
            started_at,
            finished_at: now,
        };
        // The container did not fail: it goes again at once, and its crash back-off is
        // neither advanced nor reset.
        self.terminated_as(index, exit, now, false)
    }

    fn terminated(&mut self, index: usize, exit: Exit, now: Millis) -> Vec<Action> {
        self.terminated_as(index, exit, now, true)
    }

    fn terminated_as(
        &mut self,
        index: usize,
        exit: Exit,
        now: Millis,
        its_own_exit: bool,
    ) -> Vec<Action> {
        let policy = self.spec.restart_policy;
        let stopping = self.stopping.is_some();
        let name = self.spec.name.clone();
        let backoff = self.backoff;
        let Some(c) = self.containers.get_mut(index) else {
            return vec![];
        };
        c.prober.stop();
        c.kill_at = None;
        let mut actions = Vec::new();
        if !stopping && will_restart(policy, exit.exit_code) {
            let delay = if its_own_exit {
                let ran = seconds(exit.finished_at - exit.started_at);
                if ran >= backoff.reset_after {
                    c.crashes = 0;
                }
                c.crashes += 1;
                backoff.delay(c.crashes)
            } else {
                Duration::ZERO
            };
            c.last_exit = Some(exit);
            if delay.is_zero() {
                // restartCount counts restarts done, as kubelet does: this one happens now.
                c.restart_count += 1;
                c.phase = ContainerPhase::Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                    retry_at: None,
                };
                actions.push(Action::Start(index));
            } else {
                let retry_at = now + delay.as_millis() as Millis;
                let message = format!(
                    "back-off {} restarting failed container={} pod={name}",
                    humantime::format_duration(delay),
                    c.name
                );
                actions.push(Action::Event {
                    warning: true,
                    reason: "BackOff",
                    message: format!("Back-off restarting failed container {}", c.name),
                });
                c.phase = ContainerPhase::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message,
                    retry_at: Some(retry_at),
                };
                actions.push(Action::WakeAt(retry_at));
            }
        } else {
            c.phase = ContainerPhase::Terminated(exit);
        }
        if stopping && self.nothing_running() && !self.starting_any() {
            self.removed = true;
            actions.push(Action::Removed);
        }
        actions
    }

    fn nothing_running(&self) -> bool {
        self.containers
            .iter()
            .all(|c| !matches!(c.phase, ContainerPhase::Running { .. }))
    }

    /// Time passed: start containers whose back-off is over, kill what outlived its grace.
    pub fn wake(&mut self, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(stopping) = &mut self.stopping {
            if !stopping.killed && now >= stopping.kill_at {
                stopping.killed = true;
                for (i, c) in self.containers.iter().enumerate() {
                    if matches!(c.phase, ContainerPhase::Running { .. }) {
                        actions.push(Action::Signal(i, StopSignal::Kill));
                    }
                }
            }
            return actions;
        }
        for (i, (c, spec)) in self
            .containers
            .iter_mut()
            .zip(&self.spec.containers)
            .enumerate()
        {
            if !matches!(c.phase, ContainerPhase::Running { .. }) {
                continue;
            }
            if c.kill_at.is_some_and(|at| now >= at) {
                c.kill_at = None;
                actions.push(Action::Signal(i, StopSignal::Kill));
            }
            actions.extend(
                c.prober
                    .due(spec, now)
                    .into_iter()
                    .map(|kind| Action::Probe(i, kind)),
            );
            if let Some(at) = c.prober.next_at() {
                actions.push(Action::WakeAt(at));
            }
        }
        for (i, c) in self.containers.iter_mut().enumerate() {
            if let ContainerPhase::Waiting {
                retry_at: Some(at), ..
            } = c.phase
            {
                if now >= at {
                    if c.image_failures == 0 {
                        c.restart_count += 1;
                    }
                    c.phase = ContainerPhase::Waiting {
                        reason: "ContainerCreating".into(),
                        message: String::new(),
                        retry_at: None,
                    };
                    actions.push(Action::Start(i));
                }
            }
        }
        actions
    }

    /// The outcome of a probe asked for with [`Action::Probe`]: `message` says why it
    /// failed. A failed liveness or startup probe stops the container, and its restart
    /// policy decides what follows.
    pub fn probed(
        &mut self,
        index: usize,
        kind: ProbeKind,
        success: bool,
        message: &str,
        now: Millis,
    ) -> Vec<Action> {
        let pod_grace = self.spec.termination_grace_seconds;
        let stopping = self.stopping.is_some();
        let (Some(c), Some(spec)) = (
            self.containers.get_mut(index),
            self.spec.containers.get(index),
        ) else {
            return vec![];
        };
        if !matches!(c.phase, ContainerPhase::Running { .. }) || stopping {
            return vec![];
        }
        let verdict = c.prober.outcome(spec, kind, success);
        // Its next run may have come due while this one ran.
        let next_probe = c.prober.next_at();
        let what = match kind {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        };
        let mut actions: Vec<Action> = next_probe.map(Action::WakeAt).into_iter().collect();
        if verdict.failed {
            actions.push(Action::Event {
                warning: true,
                reason: "Unhealthy",
                message: format!("{what} probe failed: {message}"),
            });
        }
        if verdict.kill {
            let grace = crate::prober::probe_of(spec, kind)
                .and_then(|p| p.termination_grace_seconds)
                .unwrap_or(pod_grace);
            actions.push(Action::Event {
                warning: false,
                reason: "Killing",
                message: format!(
                    "Container {} failed {} probe, will be restarted",
                    c.name,
                    what.to_ascii_lowercase()
                ),
            });
            actions.push(Action::StopContainer {
                index,
                grace_seconds: grace,
            });
            if grace > 0 {
                let at = now + Millis::from(grace) * 1000;
                c.kill_at = Some(at);
                actions.push(Action::WakeAt(at));
            }
        }
        actions
    }

    /// A probe asked for could not be run: it counts for nothing, and runs when next due.
    pub fn probe_not_run(&mut self, index: usize, kind: ProbeKind) -> Vec<Action> {
        let Some(c) = self.containers.get_mut(index) else {
            return vec![];
        };
        c.prober.not_run(kind);
        c.prober.next_at().map(Action::WakeAt).into_iter().collect()
    }

    /// The agent restarted: the probes that were running are lost, and run again when due.
    pub fn resume_probes(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for c in &mut self.containers {
            if !matches!(c.phase, ContainerPhase::Running { .. }) {
                continue;
            }
            c.prober.forget_in_flight();
            if let Some(at) = c.kill_at.into_iter().chain(c.prober.next_at()).min() {
                actions.push(Action::WakeAt(at));
            }
        }
        actions
    }

    /// The pod left the desired state: stop it (SIGTERM, SIGKILL after the grace period).
    pub fn stop(&mut self, now: Millis) -> Vec<Action> {
        if self.stopping.is_some() || self.removed {
            return vec![];
        }
        let grace = i64::from(self.spec.termination_grace_seconds) * 1000;
        let immediate = grace == 0;
        self.stopping = Some(Stopping {
            kill_at: now + grace,
            killed: immediate,
        });
        let mut actions = Vec::new();
        for (i, c) in self.containers.iter_mut().enumerate() {
            match c.phase {
                ContainerPhase::Running { .. } => {
                    actions.push(Action::Event {
                        warning: false,
                        reason: "Killing",
                        message: format!("Stopping container {}", c.name),
                    });
                    actions.push(Action::Signal(
                        i,
                        if immediate {
                            StopSignal::Kill
                        } else {
                            StopSignal::Term
                        },
                    ));
                }
                ContainerPhase::Waiting {
                    retry_at: Some(_), ..
                } => {
                    // Backing off: it simply is not started again.
                    if let Some(exit) = c.last_exit.clone() {
                        c.phase = ContainerPhase::Terminated(exit);
                    }
                }
                _ => {}
            }
        }
        if self.nothing_running() && !self.starting_any() {
            self.removed = true;
            actions.push(Action::Removed);
        } else if !immediate {
            actions.push(Action::WakeAt(now + grace));
        }
        actions
    }

    /// Whether a container start is under way (its outcome still to be reported).
    fn starting_any(&self) -> bool {
        self.containers
            .iter()
            .any(|c| matches!(c.phase, ContainerPhase::Waiting { retry_at: None, .. }))
    }

    /// The pod's phase.
    pub fn phase(&self) -> WirePhase {
        let all_terminated = self
            .containers
            .iter()
            .all(|c| matches!(c.phase, ContainerPhase::Terminated(_)));
        if all_terminated && !self.containers.is_empty() {
            let all_ok = self
                .containers
                .iter()
                .all(|c| matches!(&c.phase, ContainerPhase::Terminated(e) if e.exit_code == 0));
            return if all_ok {
                WirePhase::Succeeded
            } else {
                WirePhase::Failed
            };
        }
        if self
            .containers
            .iter()
            .all(|c| c.started_once || matches!(c.phase, ContainerPhase::Terminated(_)))
        {
            WirePhase::Running
        } else {
            WirePhase::Pending
        }
    }

    /// When the pod's processes are to be killed, while it is stopping and they are not yet.
    pub fn pending_kill(&self) -> Option<Millis> {
        self.stopping
            .as_ref()
            .filter(|s| !s.killed)
            .map(|s| s.kill_at)
    }

    /// Moves every time the supervisor holds by `by` (times from another boot's clock).
    pub fn shift_times(&mut self, by: Millis) {
        if by == 0 {
            return;
        }
        self.start_time += by;
        if let Some(stopping) = &mut self.stopping {
            stopping.kill_at += by;
        }
        for c in &mut self.containers {
            match &mut c.phase {
                ContainerPhase::Waiting { retry_at, .. } => {
                    if let Some(at) = retry_at {
                        *at += by;
                    }
                }
                ContainerPhase::Running { started_at } => *started_at += by,
                ContainerPhase::Terminated(exit) => exit.shift(by),
            }
            if let Some(exit) = &mut c.last_exit {
                exit.shift(by);
            }
            c.prober.shift(by);
            if let Some(at) = &mut c.kill_at {
                *at += by;
            }
        }
    }

    /// When the last of its containers ended, if every one has.
    pub fn finished_at(&self) -> Option<Millis> {
        self.containers
            .iter()
            .map(|c| match &c.phase {
                ContainerPhase::Terminated(exit) => Some(exit.finished_at),
                _ => None,
            })
            .collect::<Option<Vec<Millis>>>()?
            .into_iter()
            .max()
    }

    /// Whether the pod will never run anything again.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase(), WirePhase::Succeeded | WirePhase::Failed)
    }

    /// The status to report (the revision is the caller's to manage).
    pub fn status(&self) -> WirePodStatus {
        let containers = self
            .containers
            .iter()
            .map(|c| {
                let state = match &c.phase {
                    ContainerPhase::Waiting {
                        reason, message, ..
                    } => WireContainerState::Waiting {
                        reason: reason.clone(),
                        message: message.clone(),
                    },
                    ContainerPhase::Running { started_at } => WireContainerState::Running {
                        started_at_ms: *started_at,
                    },
                    ContainerPhase::Terminated(exit) => exit.state(),
                };
                WireContainerStatus {
                    name: c.name.clone(),
                    ready: matches!(c.phase, ContainerPhase::Running { .. })
                        && c.prober.ready()
                        && self.stopping.is_none(),
                    state,
                    last_state: c.last_exit.as_ref().map(Exit::state),
                    restart_count: c.restart_count,
                }
            })
            .collect();
        WirePodStatus {
            uid: self.spec.uid.clone(),
            revision: self.revision,
            phase: self.phase(),
            reason: self.reason.clone(),
            message: self.message.clone(),
            start_time_ms: self.start_time,
            containers,
            removed: self.removed,
        }
    }
}
