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
    /// and there is time for it (SIGTERM follows the hook), else with `signal`.
    pub(super) fn terminate(&mut self, index: usize, signal: StopSignal) -> Action {
        if signal == StopSignal::Term && hook_of(self, index, HookKind::PreStop).is_some() {
            if !self.hook_running(index, HookKind::PreStop) {
                self.hooks_running.push(RunningHook {
                    index,
                    kind: HookKind::PreStop,
                });
            }
            return Action::Hook(index, HookKind::PreStop);
        }
        Action::Signal(index, signal)
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
