//! Lifecycle hooks in the supervisor: `postStart` runs once a container has started and
//! holds its probes (and a sidecar's successor) back until it is done, and kills the
//! container when it fails; `preStop` runs before SIGTERM whenever a running container is
//! asked to stop, within the same grace period.

use serde::{Deserialize, Serialize};

use drover_proto::msg::WireHook;

use super::{Action, ContainerPhase, Millis, PodSupervisor, StopSignal};

/// Which lifecycle hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookKind {
    /// After the container started.
    PostStart,
    /// Before the container is sent SIGTERM.
    PreStop,
}

impl HookKind {
    /// The manifest's name for it.
    pub fn field(self) -> &'static str {
        match self {
            HookKind::PostStart => "postStart",
            HookKind::PreStop => "preStop",
        }
    }
}

/// A hook asked for and not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RunningHook {
    pub index: usize,
    pub kind: HookKind,
}

/// Container `index`'s hook of `kind`, if it has one.
pub fn hook_of(sup: &PodSupervisor, index: usize, kind: HookKind) -> Option<&WireHook> {
    let container = sup.spec.container(index)?;
    match kind {
        HookKind::PostStart => container.post_start.as_ref(),
        HookKind::PreStop => container.pre_stop.as_ref(),
    }
}

impl PodSupervisor {
    fn hook_running(&self, index: usize, kind: HookKind) -> bool {
        self.hooks_running
            .iter()
            .any(|h| h.index == index && h.kind == kind)
    }

    /// Starts the `postStart` hook of container `index`, which just started, if it has
    /// one.
    pub(super) fn begin_post_start(&mut self, index: usize) -> Option<Action> {
        hook_of(self, index, HookKind::PostStart)?;
        self.hooks_running.push(RunningHook {
            index,
            kind: HookKind::PostStart,
        });
        Some(Action::Hook(index, HookKind::PostStart))
    }

    /// Asks running container `index` to stop: through its `preStop` hook when it has one
    /// (SIGTERM follows the hook), else with `signal`. Nothing while its preStop runs
    /// already (its end sends the signal); a container already being stopped for a failed
    /// probe gets the signal without a second run of the hook.
    pub(super) fn terminate(&mut self, index: usize, signal: StopSignal) -> Option<Action> {
        if self.hook_running(index, HookKind::PreStop) {
            return (signal == StopSignal::Kill).then_some(Action::Signal(index, signal));
        }
        let being_stopped = self
            .containers
            .get(index)
            .is_some_and(|c| c.kill_at.is_some());
        if signal == StopSignal::Term
            && !being_stopped
            && hook_of(self, index, HookKind::PreStop).is_some()
        {
            self.hooks_running.push(RunningHook {
                index,
                kind: HookKind::PreStop,
            });
            return Some(Action::Hook(index, HookKind::PreStop));
        }
        Some(Action::Signal(index, signal))
    }

    /// Kills running container `index` on the agent's own account (a failed probe or
    /// postStart): its `preStop` first when there is time for one, then SIGTERM, and
    /// SIGKILL once `grace` seconds have passed.
    pub(super) fn kill_container(&mut self, index: usize, grace: u32, now: Millis) -> Vec<Action> {
        let pre_stop = grace > 0
            && hook_of(self, index, HookKind::PreStop).is_some()
            && !self.hook_running(index, HookKind::PreStop);
        let Some(c) = self.containers.get_mut(index) else {
            return vec![];
        };
        let mut actions = Vec::new();
        if grace > 0 {
            let at = now + Millis::from(grace) * 1000;
            c.kill_at = Some(at);
            actions.push(Action::WakeAt(at));
        }
        if pre_stop {
            // The stop follows the hook (see `hooked`).
            self.hooks_running.push(RunningHook {
                index,
                kind: HookKind::PreStop,
            });
            actions.push(Action::Hook(index, HookKind::PreStop));
        } else {
            actions.push(Action::StopContainer {
                index,
                grace_seconds: grace,
            });
        }
        actions
    }

    /// What to ask of container `index` again once its engine container is found after an
    /// agent restart: the stop it was being given, which could not reach it meanwhile.
    pub fn restate_stop(&self, index: usize, now: Millis) -> Option<Action> {
        let c = self.containers.get(index)?;
        if !matches!(c.phase, ContainerPhase::Running { .. })
            || self.hook_running(index, HookKind::PreStop)
        {
            return None;
        }
        let sidecar = self.spec.is_sidecar(index);
        let own_stop = if sidecar {
            self.sidecars_stopping
        } else {
            self.stopping
        };
        if self.stopping.is_some_and(|s| s.killed) || own_stop.is_some_and(|s| s.killed) {
            return Some(Action::Signal(index, StopSignal::Kill));
        }
        if own_stop.is_some() {
            return Some(Action::Signal(index, StopSignal::Term));
        }
        c.kill_at.map(|at| Action::StopContainer {
            index,
            grace_seconds: u32::try_from(((at - now).max(0) + 999) / 1000).unwrap_or(u32::MAX),
        })
    }

    /// The outcome of a hook asked for with [`Action::Hook`]; `message` says why it failed.
    pub fn hooked(
        &mut self,
        index: usize,
        kind: HookKind,
        success: bool,
        message: &str,
        now: Millis,
    ) -> Vec<Action> {
        let Some(at) = self
            .hooks_running
            .iter()
            .position(|h| h.index == index && h.kind == kind)
        else {
            return vec![];
        };
        self.hooks_running.remove(at);
        let sidecar = self.spec.is_sidecar(index);
        let asked_to_stop =
            self.stopping.is_some() || (sidecar && self.sidecars_stopping.is_some());
        let killed = self.stopping.is_some_and(|s| s.killed)
            || (sidecar && self.sidecars_stopping.is_some_and(|s| s.killed));
        let grace = self.spec.termination_grace_seconds;
        let (Some(c), Some(spec)) = (self.containers.get_mut(index), self.spec.container(index))
        else {
            return vec![];
        };
        if !matches!(c.phase, ContainerPhase::Running { .. }) {
            return vec![];
        }
        let mut actions = Vec::new();
        match kind {
            HookKind::PostStart if asked_to_stop => {}
            HookKind::PostStart if success => {
                c.prober.start(spec, now);
                actions.extend(c.prober.next_at().map(Action::WakeAt));
                actions.extend(self.advance());
            }
            HookKind::PostStart => {
                actions.push(Action::Event {
                    warning: true,
                    reason: "FailedPostStartHook",
                    message: format!("PostStartHook failed: {message}"),
                });
                actions.push(Action::Event {
                    warning: false,
                    reason: "Killing",
                    message: format!("Stopping container {}: its postStart hook failed", c.name),
                });
                actions.extend(self.kill_container(index, grace, now));
            }
            HookKind::PreStop => {
                if !success {
                    actions.push(Action::Event {
                        warning: true,
                        reason: "FailedPreStopHook",
                        message: format!("PreStopHook failed: {message}"),
                    });
                }
                if let (Some(kill_at), false) = (c.kill_at, asked_to_stop) {
                    // Killed for a failed probe: what is left of that grace period.
                    let left = (kill_at - now).max(0);
                    actions.push(Action::StopContainer {
                        index,
                        grace_seconds: u32::try_from((left + 999) / 1000).unwrap_or(u32::MAX),
                    });
                } else {
                    let signal = if killed {
                        StopSignal::Kill
                    } else {
                        StopSignal::Term
                    };
                    actions.push(Action::Signal(index, signal));
                }
            }
        }
        actions
    }

    /// The agent restarted: the hooks that were running are lost. A `postStart` counts as
    /// done (the container ran it), a `preStop` as over (SIGTERM follows).
    pub(super) fn resume_hooks(&mut self, now: Millis) -> Vec<Action> {
        let lost = self.hooks_running.clone();
        lost.into_iter()
            .flat_map(|h| {
                self.hooked(
                    h.index,
                    h.kind,
                    true,
                    "the agent restarted while it ran",
                    now,
                )
            })
            .collect()
    }
}
