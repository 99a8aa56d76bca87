//! Runs the probes and lifecycle hooks the supervisors ask for, each in a task of its own
//! whose outcome comes back to the pod manager as a [`ProbeDone`].

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use drover_proto::msg::{WireHook, WireProbeHandler};
use tokio::sync::mpsc;

use super::{engine_of, in_engine, Entry, PodSettings};
use crate::prober::{probe_of, ProbeKind};
use crate::runtime::logfile::LogPaths;
use crate::runtime::probe::{self, ExecIn, Outcome, PodAddress};
use crate::runtime::process::{self, Launch, RunKey};
use crate::supervisor::{hook_of, HookKind};

/// Longest a `postStart` hook may run (Kubernetes sets none; a hook that never ends would
/// keep its container unready forever).
const POST_START_TIMEOUT: Duration = Duration::from_secs(300);

/// What is run: a probe or a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A probe.
    Probe(ProbeKind),
    /// A lifecycle hook.
    Hook(HookKind),
}

/// A probe's or hook's outcome, for the run of the container it was made for.
#[derive(Debug)]
pub struct ProbeDone {
    /// The container's run.
    pub key: RunKey,
    /// What ran.
    pub check: Check,
    /// How it went.
    pub outcome: Outcome,
}

/// Starts `check` for the current run of container `index`. False when it cannot run now
/// (an engine container whose id is not known yet).
pub fn start(
    settings: &PodSettings,
    logs_root: &Path,
    entry: &Entry,
    uid: &str,
    index: usize,
    check: Check,
    done: &mpsc::UnboundedSender<ProbeDone>,
) -> bool {
    let Some(container) = entry.sup.spec.container(index) else {
        return false;
    };
    let (handler, timeout) = match check {
        Check::Probe(kind) => match probe_of(container, kind) {
            Some(spec) => (
                &spec.handler,
                Duration::from_secs(u64::from(spec.timeout_seconds.max(1))),
            ),
            None => return false,
        },
        Check::Hook(kind) => match hook_of(&entry.sup, index, kind) {
            Some(WireHook::Check(handler)) => (
                handler,
                match kind {
                    HookKind::PostStart => POST_START_TIMEOUT,
                    // Within the grace period (the pod's, or a probe's that killed it),
                    // which the supervisor enforces with SIGKILL.
                    HookKind::PreStop => {
                        let probe_graces = [
                            &container.startup_probe,
                            &container.liveness_probe,
                            &container.readiness_probe,
                        ]
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.termination_grace_seconds);
                        let grace = probe_graces
                            .chain([entry.sup.spec.termination_grace_seconds])
                            .max()
                            .unwrap_or(0);
                        Duration::from_secs(u64::from(grace.max(1)))
                    }
                },
            ),
            Some(WireHook::Sleep { seconds }) => {
                let key = RunKey {
                    uid: uid.to_string(),
                    index,
                    run: entry.runs[index],
                };
                let wait = Duration::from_secs(u64::from(*seconds));
                let wait = match kind {
                    HookKind::PostStart => wait.min(POST_START_TIMEOUT),
                    HookKind::PreStop => wait,
                };
                let done = done.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let outcome = Outcome {
                        success: true,
                        message: String::new(),
                        address: None,
                    };
                    let _ = done.send(ProbeDone {
                        key,
                        check,
                        outcome,
                    });
                });
                return true;
            }
            None => return false,
        },
    };
    let key = RunKey {
        uid: uid.to_string(),
        index,
        run: entry.runs[index],
    };
    let cached = entry.addresses.get(index).copied().flatten();
    let command = match handler {
        WireProbeHandler::Exec { command } => Some(command.as_slice()),
        _ => None,
    };
    let (exec, address) = if in_engine(entry, index) {
        let (Some(engine), Some(id)) = (
            engine_of(&settings.engine),
            entry.engine_ids.get(index).cloned().flatten(),
        ) else {
            return false;
        };
        let address = match cached {
            Some(ip) => PodAddress::Known(ip),
            None if entry.sup.spec.host_network => PodAddress::host(),
            None => PodAddress::Engine {
                engine: engine.clone(),
                id: id.clone(),
            },
        };
        (command.map(|_| ExecIn::Engine { engine, id }), address)
    } else {
        let exec = command.map(|command| {
            let prepared = LogPaths::new(logs_root, uid, &container.name)
                .map_err(|e| e.to_string())
                .and_then(|logs| {
                    let launch = Launch {
                        pod: &entry.sup.spec,
                        container,
                        node: &settings.node,
                        logs,
                        cgroups: &settings.cgroups,
                        keeper: None,
                        die_with_agent: true,
                    };
                    process::probe_command(&launch, &key, command)
                });
            ExecIn::Process(Box::new(prepared))
        });
        (exec, PodAddress::host())
    };
    let handler = handler.clone();
    let done = done.clone();
    tokio::spawn(async move {
        let outcome = probe::run(&handler, timeout, exec, address).await;
        let _ = done.send(ProbeDone {
            key,
            check,
            outcome,
        });
    });
    true
}

/// Remembers the pod address a probe of the container's current run used.
pub fn remember_address(entry: &mut Entry, key: &RunKey, address: Option<IpAddr>) {
    if let (Some(slot), Some(ip)) = (entry.addresses.get_mut(key.index), address) {
        *slot = Some(ip);
    }
}
