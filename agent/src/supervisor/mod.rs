//! The restart supervisor of one pod: a state machine of container exits and time, with no
//! I/O. The pod manager feeds it inputs and carries out the actions it returns.
//!
//! Rules (spec §1): `Always` restarts after every exit, `OnFailure` after non-zero exits,
//! `Never` never. The first restart is immediate, then 10 s doubling to 300 s (waiting
//! reason `CrashLoopBackOff`); the delay resets after 10 minutes of running. Stop sends
//! SIGTERM, then SIGKILL after the grace period.
//!
//! Init containers, as in Kubernetes: they run one at a time, in order, each to success
//! (restarted on failure unless the pod says `Never`) before the next starts, and the app
//! containers start once all have. A sidecar (an init container with `restartPolicy:
//! Always`) lets the next one start once it runs (and its startup probe passed), is
//! restarted whenever it exits, does not count for the pod's phase, and is stopped after
//! the app containers: when they have all finished for good, or when the pod is stopped.

#[cfg(test)]
mod hook_tests;
mod hooks;
#[cfg(test)]
mod init_tests;
pub mod legacy;
#[cfg(test)]
mod tests;

use std::time::Duration;

use drover_proto::msg::{
    DesiredPod, WireContainerState, WireContainerStatus, WirePhase, WirePodStatus,
    WireRestartPolicy,
};
use serde::{Deserialize, Serialize};

use self::hooks::RunningHook;
pub use self::hooks::{hook_of, HookKind};
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
    /// Not started yet: an init container before it has not done its part.
    Queued,
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
    /// Run a lifecycle hook of container `index`; its outcome goes to
    /// [`PodSupervisor::hooked`].
    Hook(usize, HookKind),
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
    /// The sidecars were asked to stop (the app containers are done, or the pod stops).
    sidecars_stopping: Option<Stopping>,
    /// Lifecycle hooks asked for and not answered yet.
    hooks_running: Vec<RunningHook>,
}

fn creating() -> ContainerPhase {
    ContainerPhase::Waiting {
        reason: "ContainerCreating".into(),
        message: String::new(),
        retry_at: None,
    }
}

fn is_live(phase: &ContainerPhase) -> bool {
    matches!(
        phase,
        ContainerPhase::Running { .. } | ContainerPhase::Waiting { retry_at: None, .. }
    )
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
        // With init containers, the first of them starts alone.
        let first_wave = if spec.init_containers.is_empty() {
            spec.containers.len()
        } else {
            1
        };
        let containers: Vec<ContainerSupervisor> = spec
            .all_containers()
            .enumerate()
            .map(|(i, c)| ContainerSupervisor {
                name: c.name.clone(),
                phase: if i < first_wave {
                    ContainerPhase::Waiting {
                        reason: "ContainerCreating".into(),
                        message: String::new(),
                        retry_at: None,
                    }
                } else {
                    ContainerPhase::Queued
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
        let actions = (0..first_wave).map(Action::Start).collect();
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
            sidecars_stopping: None,
            hooks_running: Vec::new(),
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
        let (Some(c), Some(spec)) = (self.containers.get_mut(index), self.spec.container(index))
        else {
            return vec![];
        };
        c.phase = ContainerPhase::Running { started_at: now };
        c.started_once = true;
        c.image_failures = 0;
        c.kill_at = None;
        let has_post_start = spec.post_start.is_some();
        // A postStart hook holds the probes back until it is done.
        if !has_post_start {
            c.prober.start(spec, now);
        }
        let mut actions = vec![Action::Event {
            warning: false,
            reason: "Started",
            message: format!("Started container {}", c.name),
        }];
        if let Some(at) = c.prober.next_at() {
            actions.push(Action::WakeAt(at));
        }
        // A stop may have arrived while the process was being started (a sidecar's comes
        // after the app containers').
        let pod_killed = self.stopping.is_some_and(|s| s.killed);
        let stop = if self.spec.is_sidecar(index) {
            self.sidecars_stopping
        } else {
            self.stopping
        };
        if pod_killed {
            actions.push(Action::Signal(index, StopSignal::Kill));
        } else if let Some(stopping) = stop {
            let signal = if stopping.killed || self.spec.termination_grace_seconds == 0 {
                StopSignal::Kill
            } else {
                StopSignal::Term
            };
            actions.extend(self.terminate(index, signal));
            if !stopping.killed {
                actions.push(Action::WakeAt(stopping.kill_at));
            }
        } else if has_post_start {
            actions.extend(self.begin_post_start(index));
        }
        actions.extend(self.advance());
        actions
    }

    /// Starts what the init containers' progress allows: the first init container that
    /// has not done its part, or, once all have, the app containers.
    fn advance(&mut self) -> Vec<Action> {
        if self.stopping.is_some() || self.sidecars_stopping.is_some() {
            return vec![];
        }
        let init = self.spec.init_containers.len();
        for i in 0..init {
            let sidecar = self.spec.is_sidecar(i);
            let Some(c) = self.containers.get_mut(i) else {
                return vec![];
            };
            let done = if sidecar {
                c.started_once && c.prober.started()
            } else {
                matches!(&c.phase, ContainerPhase::Terminated(e) if e.exit_code == 0)
            };
            if done {
                continue;
            }
            if c.phase != ContainerPhase::Queued {
                // Still at work, backing off, or failed for good.
                return vec![];
            }
            c.phase = creating();
            return vec![Action::Start(i)];
        }
        let mut actions = Vec::new();
        for (i, c) in self.containers.iter_mut().enumerate().skip(init) {
            if c.phase == ContainerPhase::Queued {
                c.phase = creating();
                actions.push(Action::Start(i));
            }
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
        let stopping = self.stopping.is_some()
            || (self.spec.is_sidecar(index) && self.sidecars_stopping.is_some());
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
            // The sidecars may stop now, and the pod be gone.
            actions.extend(self.after_exit(now));
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
        let policy = self.restart_policy_of(index);
        let sidecar = self.spec.is_sidecar(index);
        // A sidecar asked to stop is not restarted, whether the pod stops or its app is done.
        let stopping = self.stopping.is_some() || (sidecar && self.sidecars_stopping.is_some());
        let name = self.spec.name.clone();
        let backoff = self.backoff;
        self.hooks_running.retain(|h| h.index != index);
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
                c.phase = creating();
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
        actions.extend(self.after_exit(now));
        actions
    }

    /// What an exit leads to: the next init container, the sidecars' stop once the app
    /// containers are done, or the pod's removal once a stopped pod runs nothing.
    fn after_exit(&mut self, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(stopping) = self.stopping {
            if self.sidecars_stopping.is_none() && !self.any_app_live() {
                actions.extend(self.stop_sidecars(stopping, now));
            }
            if self.nothing_running() && !self.starting_any() {
                self.removed = true;
                actions.push(Action::Removed);
            }
            return actions;
        }
        actions.extend(self.advance());
        if self.sidecars_stopping.is_none() && self.app_finished() {
            let grace = Millis::from(self.spec.termination_grace_seconds) * 1000;
            let stopping = Stopping {
                kill_at: now + grace,
                killed: grace == 0,
            };
            actions.extend(self.stop_sidecars(stopping, now));
        }
        actions
    }

    /// The restart policy container `index` runs under: a sidecar's is `Always`; an init
    /// container is restarted on failure unless the pod says `Never`.
    fn restart_policy_of(&self, index: usize) -> WireRestartPolicy {
        let pod = self.spec.restart_policy;
        if self.spec.is_sidecar(index) {
            WireRestartPolicy::Always
        } else if self.spec.is_init(index) && pod == WireRestartPolicy::Always {
            WireRestartPolicy::OnFailure
        } else {
            pod
        }
    }

    fn app_containers(&self) -> &[ContainerSupervisor] {
        self.containers
            .get(self.spec.init_containers.len()..)
            .unwrap_or_default()
    }

    fn any_app_live(&self) -> bool {
        self.app_containers().iter().any(|c| is_live(&c.phase))
    }

    /// An init container failed for good (the pod fails without running its app).
    fn init_failed(&self) -> bool {
        self.containers
            .iter()
            .enumerate()
            .take(self.spec.init_containers.len())
            .any(|(i, c)| {
                !self.spec.is_sidecar(i)
                    && matches!(&c.phase, ContainerPhase::Terminated(e) if e.exit_code != 0)
            })
    }

    /// Whether every init container has done its part (see [`PodSupervisor::advance`]).
    fn initialized(&self) -> bool {
        let init = self.spec.init_containers.len();
        self.containers.len() >= init
            && self.containers.iter().enumerate().take(init).all(|(i, c)| {
                if self.spec.is_sidecar(i) {
                    c.started_once
                } else {
                    matches!(&c.phase, ContainerPhase::Terminated(e) if e.exit_code == 0)
                }
            })
    }

    /// The app will run nothing again: every app container ended for good, or an init
    /// container failed for good.
    fn app_finished(&self) -> bool {
        self.init_failed()
            || (self.initialized()
                && self
                    .app_containers()
                    .iter()
                    .all(|c| matches!(c.phase, ContainerPhase::Terminated(_))))
    }

    /// Asks the sidecars to stop, the last started first; `stopping` says when SIGKILL
    /// follows. One backing off is not started again.
    fn stop_sidecars(&mut self, stopping: Stopping, now: Millis) -> Vec<Action> {
        let sidecars: Vec<usize> = (0..self.spec.init_containers.len())
            .rev()
            .filter(|&i| self.spec.is_sidecar(i))
            .collect();
        if sidecars.is_empty() {
            return vec![];
        }
        self.sidecars_stopping = Some(stopping);
        let mut actions = Vec::new();
        let mut live = false;
        for i in sidecars {
            let Some(c) = self.containers.get_mut(i) else {
                continue;
            };
            live |= is_live(&c.phase);
            match c.phase {
                ContainerPhase::Running { .. } => {
                    actions.push(Action::Event {
                        warning: false,
                        reason: "Killing",
                        message: format!("Stopping container {}", c.name),
                    });
                    actions.push(Action::Signal(
                        i,
                        if stopping.killed {
                            StopSignal::Kill
                        } else {
                            StopSignal::Term
                        },
                    ));
                }
                ContainerPhase::Waiting {
                    retry_at: Some(_), ..
                } => {
                    if let Some(exit) = c.last_exit.clone() {
                        c.phase = ContainerPhase::Terminated(exit);
                    }
                }
                _ => {}
            }
        }
        // A sidecar still starting is signalled once it runs; the kill comes for it too.
        if live && !stopping.killed && stopping.kill_at > now {
            actions.push(Action::WakeAt(stopping.kill_at));
        }
        self.through_pre_stop(actions)
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
                // The pod's kill covers its sidecars too.
                if let Some(sidecars) = &mut self.sidecars_stopping {
                    sidecars.killed = true;
                }
            }
            return actions;
        }
        if let Some(stopping) = &mut self.sidecars_stopping {
            if !stopping.killed && now >= stopping.kill_at {
                stopping.killed = true;
                for (i, c) in self.containers.iter().enumerate() {
                    if self.spec.is_sidecar(i) && matches!(c.phase, ContainerPhase::Running { .. })
                    {
                        actions.push(Action::Signal(i, StopSignal::Kill));
                    }
                }
            }
        }
        let winding_down = self.sidecars_stopping.is_some();
        for (i, (c, spec)) in self
            .containers
            .iter_mut()
            .zip(self.spec.all_containers())
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
            if winding_down && self.spec.is_sidecar(i) {
                continue;
            }
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
        let stopping = self.stopping.is_some()
            || (self.spec.is_sidecar(index) && self.sidecars_stopping.is_some());
        let (Some(c), Some(spec)) = (self.containers.get_mut(index), self.spec.container(index))
        else {
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
            actions.extend(self.kill_container(index, grace, now));
        }
        // A sidecar's startup probe passing lets the next init container start.
        actions.extend(self.advance());
        actions
    }

    /// Sends SIGTERMs among `actions` through the containers' preStop hooks.
    fn through_pre_stop(&mut self, actions: Vec<Action>) -> Vec<Action> {
        actions
            .into_iter()
            .filter_map(|action| match action {
                Action::Signal(index, StopSignal::Term) => self.terminate(index, StopSignal::Term),
                other => Some(other),
            })
            .collect()
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
    pub fn resume_probes(&mut self, now: Millis) -> Vec<Action> {
        let mut actions = self.resume_hooks(now);
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

    /// The pod left the desired state: stop it (SIGTERM, SIGKILL after the grace period;
    /// the sidecars once the app containers are down).
    pub fn stop(&mut self, now: Millis) -> Vec<Action> {
        if self.stopping.is_some() || self.removed {
            return vec![];
        }
        let grace = i64::from(self.spec.termination_grace_seconds) * 1000;
        let immediate = grace == 0;
        let stopping = Stopping {
            kill_at: now + grace,
            killed: immediate,
        };
        self.stopping = Some(stopping);
        let mut actions = Vec::new();
        for (i, c) in self.containers.iter_mut().enumerate() {
            if self.spec.is_sidecar(i) {
                continue;
            }
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
        let mut actions = self.through_pre_stop(actions);
        if self.sidecars_stopping.is_none() && !self.any_app_live() {
            actions.extend(self.stop_sidecars(stopping, now));
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

    /// The pod's phase: `Pending` until the init containers are done and every app
    /// container has started; terminal once the app containers (not the sidecars) are
    /// done and nothing runs any more.
    pub fn phase(&self) -> WirePhase {
        let app = self.app_containers();
        let anything_live = self.containers.iter().any(|c| is_live(&c.phase));
        if self.init_failed() {
            return if anything_live {
                WirePhase::Pending
            } else {
                WirePhase::Failed
            };
        }
        let all_terminated = app
            .iter()
            .all(|c| matches!(c.phase, ContainerPhase::Terminated(_)));
        if all_terminated && !app.is_empty() && self.initialized() && !anything_live {
            let all_ok = app
                .iter()
                .all(|c| matches!(&c.phase, ContainerPhase::Terminated(e) if e.exit_code == 0));
            return if all_ok {
                WirePhase::Succeeded
            } else {
                WirePhase::Failed
            };
        }
        if self.initialized()
            && app
                .iter()
                .all(|c| c.started_once || matches!(c.phase, ContainerPhase::Terminated(_)))
        {
            WirePhase::Running
        } else {
            WirePhase::Pending
        }
    }

    /// When processes asked to stop (the pod's, or its sidecars') are to be killed, if
    /// they are not yet.
    pub fn pending_kill(&self) -> Option<Millis> {
        [self.stopping, self.sidecars_stopping]
            .into_iter()
            .flatten()
            .filter(|s| !s.killed)
            .map(|s| s.kill_at)
            .min()
    }

    /// Moves every time the supervisor holds by `by` (times from another boot's clock).
    pub fn shift_times(&mut self, by: Millis) {
        if by == 0 {
            return;
        }
        self.start_time += by;
        for stopping in [&mut self.stopping, &mut self.sidecars_stopping]
            .into_iter()
            .flatten()
        {
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
                ContainerPhase::Queued => {}
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

    /// When the last of its containers ended, once nothing of it runs or starts (a
    /// container never started, or left waiting on its image, has no end).
    pub fn finished_at(&self) -> Option<Millis> {
        if self.containers.iter().any(|c| is_live(&c.phase)) {
            return None;
        }
        self.containers
            .iter()
            .filter_map(|c| match &c.phase {
                ContainerPhase::Terminated(exit) => Some(exit.finished_at),
                _ => None,
            })
            .max()
    }

    /// Whether container `index` may be started now (nothing asked it to stop).
    pub fn may_start(&self, index: usize) -> bool {
        self.stopping.is_none()
            && !(self.spec.is_sidecar(index) && self.sidecars_stopping.is_some())
    }

    /// Whether the pod will never run anything again.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase(), WirePhase::Succeeded | WirePhase::Failed)
    }

    /// The status to report (the revision is the caller's to manage).
    pub fn status(&self) -> WirePodStatus {
        let mut statuses = self.containers.iter().enumerate().map(|(i, c)| {
            let state = match &c.phase {
                ContainerPhase::Waiting {
                    reason, message, ..
                } => WireContainerState::Waiting {
                    reason: reason.clone(),
                    message: message.clone(),
                },
                ContainerPhase::Queued => WireContainerState::Waiting {
                    reason: "PodInitializing".into(),
                    message: String::new(),
                },
                ContainerPhase::Running { started_at } => WireContainerState::Running {
                    started_at_ms: *started_at,
                },
                ContainerPhase::Terminated(exit) => exit.state(),
            };
            // An init container that runs to completion is never ready, as in Kubernetes.
            let can_be_ready = !self.spec.is_init(i) || self.spec.is_sidecar(i);
            WireContainerStatus {
                name: c.name.clone(),
                ready: can_be_ready
                    && matches!(c.phase, ContainerPhase::Running { .. })
                    && c.prober.ready()
                    && self.stopping.is_none(),
                state,
                last_state: c.last_exit.as_ref().map(Exit::state),
                restart_count: c.restart_count,
            }
        });
        let init_containers = statuses
            .by_ref()
            .take(self.spec.init_containers.len())
            .collect();
        let containers = statuses.collect();
        WirePodStatus {
            uid: self.spec.uid.clone(),
            revision: self.revision,
            phase: self.phase(),
            reason: self.reason.clone(),
            message: self.message.clone(),
            start_time_ms: self.start_time,
            containers,
            removed: self.removed,
            init_containers,
        }
    }
}
