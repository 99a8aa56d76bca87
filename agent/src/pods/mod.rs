//! The pod manager: runs the pods of the node's desired state through their supervisors,
//! keeps their records on disk, and reports their status.
//!
//! It works without the broker: at start it runs the pods of the last desired state it
//! stored, and whatever happens while offline is reported when the link is back. Status
//! reports carry a per-pod revision; a report is resent until the controller acknowledges
//! that revision, so terminal results are never lost and duplicates are harmless.

mod journal;
mod logs;
mod probes;
mod records;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drover_proto::msg::{
    DesiredPod, DesiredState, LogChunk, LogRequest, StatusAck, StatusReport, WireContainerState,
    WireEvent, WirePodStatus,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::clock::ClockStamp;
use crate::runtime::cgroup::Cgroups;
use crate::runtime::container::engine::ListedContainer;
use crate::runtime::container::plan::PlanContext;
use crate::runtime::container::{
    driver, plan, volumes, ContainerEngine, ContainerEvent, EngineSlot,
};
use crate::runtime::logfile::LogPaths;
use crate::runtime::process::{self, Adopted, Kept, Launch, ProcessExit, RunKey};
use crate::supervisor::{Action, BackoffPolicy, ContainerPhase, Millis, PodSupervisor};
use records::PodRecord;
pub use records::Records;

/// Inputs of the pod manager.
#[derive(Debug)]
pub enum PodInput {
    /// A new desired state from the controller.
    Desired(DesiredState),
    /// The controller stored these revisions.
    Ack(StatusAck),
    /// A log request.
    Logs(LogRequest),
    /// The broker link is up (send everything) or down (hold reports).
    Link(bool),
    /// The container engine was looked for: what was found, and the containers it holds
    /// for this node.
    Engine {
        /// The engine, or why there is none.
        slot: EngineSlot,
        /// The node's containers, for re-adoption.
        listed: Vec<ListedContainer>,
    },
    /// The data directory's disk became (nearly) full, or has space again.
    DiskPressure(bool),
    /// Another agent holds this node's name: stop every pod, keep nothing of them, and end
    /// once every pod has stopped.
    StandDown,
}

/// What the pod manager sends to the controller.
#[derive(Debug)]
pub enum Outbound {
    /// Pod statuses.
    Status(StatusReport),
    /// Log data.
    Log(LogChunk),
}

/// Settings of the pod manager.
#[derive(Debug, Clone)]
pub struct PodSettings {
    /// Node name.
    pub node: String,
    /// Agent data directory.
    pub data_dir: PathBuf,
    /// Crash back-off.
    pub backoff: BackoffPolicy,
    /// Size cap of each part of a container log.
    pub log_max_bytes: u64,
    /// Where resource limits are applied (or why they cannot be).
    pub cgroups: Cgroups,
    /// The container engine for pods with images (or why there is none); usually
    /// [`EngineSlot::Discovering`] at start, then set by [`PodInput::Engine`].
    pub engine: EngineSlot,
    /// The binary that keeps process pods ([`crate::runtime::keeper`]): the agent's own;
    /// `None` where it cannot run (pods are then the agent's children and stop with it).
    pub keeper: Option<PathBuf>,
    /// Process pods stop when the agent stops and restart when it starts (the behaviour
    /// before they outlived it), instead of running on and being adopted.
    pub stop_pods_on_exit: bool,
    /// Finished pods whose final status the controller has are forgotten (record, logs,
    /// volumes) beyond this many, oldest first.
    pub max_finished_pods: usize,
    /// ...and once they finished this long ago.
    pub max_finished_age: Duration,
    /// This agent stood down (or was standing down) for another running as its node: run
    /// nothing of the stored desired state; [`PodInput::StandDown`] follows.
    pub standing_down: bool,
}

/// How long unacknowledged reports wait before they are sent again.
const RESEND_AFTER: Duration = Duration::from_secs(5);
/// Status changes within this window go out in one report.
const COALESCE: Duration = Duration::from_millis(2);
/// The longest an agent shutdown waits for pod processes to exit after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Why a container waits while the disk is full.
const DISK_PRESSURE_MESSAGE: &str =
    "the node's disk is nearly full (DiskPressure): the container starts once there is space";
/// How often process pods' logs are checked against their size cap.
const LOG_CAP_CHECK: Duration = Duration::from_secs(2);

struct Entry {
    sup: PodSupervisor,
    /// Process group of each container's current run.
    pids: Vec<Option<u32>>,
    /// The keeper of each process container's current run, while it runs.
    kept: Vec<Option<Kept>>,
    /// Current run number of each container.
    runs: Vec<u64>,
    /// Engine container of each container's current run.
    engine_ids: Vec<Option<String>>,
    /// Engine container of each container's previous run (kept for `logs --previous`).
    previous_ids: Vec<Option<String>>,
    /// Highest revision the controller acknowledged.
    acked: u64,
    /// The last status computed (revision excluded), to detect changes.
    last_status: Option<WirePodStatus>,
    /// The address each container's current run answered probes at.
    addresses: Vec<Option<std::net::IpAddr>>,
}

/// The pod manager's state.
pub struct PodManager {
    settings: PodSettings,
    records: Records,
    logs_root: PathBuf,
    pods: HashMap<String, Entry>,
    wakes: BTreeSet<(Millis, String)>,
    dirty: HashSet<String>,
    events: Vec<WireEvent>,
    outbound: mpsc::UnboundedSender<Outbound>,
    exits: mpsc::UnboundedSender<ProcessExit>,
    exits_rx: Option<mpsc::UnboundedReceiver<ProcessExit>>,
    container_events: mpsc::UnboundedSender<ContainerEvent>,
    container_events_rx: Option<mpsc::UnboundedReceiver<ContainerEvent>>,
    probes: mpsc::UnboundedSender<probes::ProbeDone>,
    probes_rx: Option<mpsc::UnboundedReceiver<probes::ProbeDone>>,
    volumes_dir: PathBuf,
    connected: bool,
    flush_at: Option<Instant>,
    follows: logs::Follows,
    shutting_down: bool,
    /// Standing down for another agent ([`PodInput::StandDown`]).
    standing_down: bool,
    /// Records of final results were written but not yet made durable.
    unsynced: bool,
    /// Generation of the desired state loaded from the records at start.
    generation: u64,
    /// Engine container starts waiting for the engine to be found.
    awaiting_engine: Vec<(String, usize)>,
    /// A full report went out and its acknowledgement has not arrived.
    awaiting_full_ack: bool,
    /// Pods whose latest record could not be written: not reported until it is.
    unsaved: HashSet<String>,
    /// Finished pods forgotten while a desired state may still list them to run.
    forgotten: std::collections::BTreeSet<String>,
    /// The disk is nearly full: containers wait in `awaiting_disk` instead of starting.
    disk_pressure: bool,
    awaiting_disk: Vec<(String, usize)>,
    /// This boot, which the records' times are on.
    boot_id: String,
}

/// The supervisors' clock: boot time, so that a wall-clock step moves no deadline.
fn now_ms() -> Millis {
    crate::clock::mono_ms()
}

/// A status with its boot-clock times put on the wall clock, for the controller.
fn on_wall(mut status: WirePodStatus, offset: Millis) -> WirePodStatus {
    fn state(state: &mut WireContainerState, offset: Millis) {
        match state {
            WireContainerState::Waiting { .. } => {}
            WireContainerState::Running { started_at_ms } => *started_at_ms += offset,
            WireContainerState::Terminated {
                started_at_ms,
                finished_at_ms,
                ..
            } => {
                *started_at_ms += offset;
                *finished_at_ms += offset;
            }
        }
    }
    status.start_time_ms += offset;
    for c in status
        .init_containers
        .iter_mut()
        .chain(&mut status.containers)
    {
        state(&mut c.state, offset);
        if let Some(last) = &mut c.last_state {
            state(last, offset);
        }
    }
    status
}

fn without_revision(mut status: WirePodStatus) -> WirePodStatus {
    status.revision = 0;
    status
}

fn new_entry(sup: PodSupervisor, acked: u64) -> Entry {
    let count = sup.containers.len();
    Entry {
        sup,
        pids: vec![None; count],
        kept: vec![None; count],
        runs: vec![0; count],
        engine_ids: vec![None; count],
        previous_ids: vec![None; count],
        acked,
        last_status: None,
        addresses: vec![None; count],
    }
}

fn in_engine(entry: &Entry, index: usize) -> bool {
    entry
        .sup
        .spec
        .container(index)
        .is_some_and(|c| c.image.is_some())
}

fn engine_of(slot: &EngineSlot) -> Option<Arc<dyn ContainerEngine>> {
    match slot {
        EngineSlot::Available(engine) => Some(engine.clone()),
        EngineSlot::Discovering | EngineSlot::Missing(_) => None,
    }
}

/// Removes engine containers in the background (a failure only leaves a stopped container).
fn remove_containers(engine: &Arc<dyn ContainerEngine>, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let engine = engine.clone();
    tokio::spawn(async move {
        for id in ids {
            if let Err(e) = engine.remove(&id).await {
                debug!(id, error = %e, "cannot remove a container");
            }
        }
    });
}

/// Starts a run of an engine container; its outcome arrives as a [`ContainerEvent`]. While
/// the engine is still being looked for, the start waits in `awaiting` (the container shows
/// `ContainerCreating`).
fn start_in_engine(
    settings: &PodSettings,
    volumes_dir: &Path,
    entry: &mut Entry,
    key: RunKey,
    events: &mpsc::UnboundedSender<ContainerEvent>,
    awaiting: &mut Vec<(String, usize)>,
    now: Millis,
) -> Vec<Action> {
    let index = key.index;
    let engine = match &settings.engine {
        EngineSlot::Discovering => {
            awaiting.push((key.uid, index));
            return Vec::new();
        }
        EngineSlot::Available(engine) => engine.clone(),
        EngineSlot::Missing(why) => {
            return entry.sup.start_failed(
                index,
                format!("this node has no container engine: {why}"),
                now,
            )
        }
    };
    // Keep the last run's container for `logs --previous`; the one before goes.
    if let Some(current) = entry.engine_ids[index].take() {
        if let Some(older) = entry.previous_ids[index].replace(current) {
            remove_containers(&engine, vec![older]);
        }
    }
    if let Err(message) = volumes::prepare(&entry.sup.spec, volumes_dir) {
        return entry.sup.start_failed(index, message, now);
    }
    let context = PlanContext {
        node: &settings.node,
        run: key.run,
        volumes_dir,
    };
    let plan = match plan::plan(&entry.sup.spec, index, context) {
        Ok(plan) => plan,
        Err(message) => return entry.sup.start_failed(index, message, now),
    };
    let policy = entry
        .sup
        .spec
        .container(index)
        .map(|c| c.pull_policy)
        .unwrap_or_default();
    tokio::spawn(driver::run(engine, plan, policy, key, events.clone()));
    Vec::new()
}

impl PodManager {
    /// Loads the stored desired state and pod records, and starts what the records say
    /// should run. Engine containers are re-adopted when the engine is known
    /// ([`PodInput::Engine`]).
    pub fn start(
        settings: PodSettings,
        outbound: mpsc::UnboundedSender<Outbound>,
    ) -> anyhow::Result<PodManager> {
        let records = Records::open(&settings.data_dir)?;
        let (exits, exits_rx) = mpsc::unbounded_channel();
        let (container_events, container_events_rx) = mpsc::unbounded_channel();
        let (probes, probes_rx) = mpsc::unbounded_channel();
        let known_engine = !matches!(settings.engine, EngineSlot::Discovering);
        let mut manager = PodManager {
            awaiting_engine: Vec::new(),
            logs_root: settings.data_dir.join("logs"),
            volumes_dir: settings.data_dir.join("volumes"),
            container_events,
            container_events_rx: Some(container_events_rx),
            probes,
            probes_rx: Some(probes_rx),
            settings,
            records,
            pods: HashMap::new(),
            wakes: BTreeSet::new(),
            dirty: HashSet::new(),
            events: Vec::new(),
            outbound,
            exits,
            exits_rx: Some(exits_rx),
            connected: false,
            flush_at: None,
            follows: logs::Follows::default(),
            shutting_down: false,
            standing_down: false,
            unsynced: false,
            generation: 0,
            awaiting_full_ack: false,
            unsaved: HashSet::new(),
            forgotten: Default::default(),
            disk_pressure: false,
            awaiting_disk: Vec::new(),
            boot_id: crate::clock::boot_id(),
        };
        manager.forgotten = manager.records.load_forgotten();
        manager.recover(now_ms());
        if known_engine {
            manager.on_engine(manager.settings.engine.clone(), Vec::new(), now_ms());
        }
        if manager.settings.standing_down {
            info!("standing down for another agent running as this node: the stored desired state is not run");
            // The floor stays: a replayed older desired state is refused later too.
            if let Some(desired) = manager.records.load_desired() {
                manager.generation = desired.generation;
            }
        } else if let Some(desired) = manager.records.load_desired() {
            info!(
                generation = desired.generation,
                pods = desired.pods.len(),
                "running the stored desired state"
            );
            manager.generation = desired.generation;
            manager.apply_desired(desired, now_ms());
        }
        Ok(manager)
    }

    /// Generation of the desired state stored before this start (0 without one): the link
    /// accepts nothing older. (Called at start, before any other is applied.)
    pub fn stored_generation(&self) -> u64 {
        self.generation
    }

    /// Restores pods from their records. Process containers of a previous agent run are
    /// adopted: still running, they are watched again (no restart); ended meanwhile, their
    /// exit is taken as it happened. With `stop_pods_on_exit`, or without a keeper to adopt
    /// (a record from an older agent), what is left is stopped and the container restarts
    /// as its restart policy says. Engine containers recorded as running are left for
    /// [`PodManager::on_engine`].
    fn recover(&mut self, now: Millis) {
        let mut adopted = 0;
        let (records, damaged) = self.records.load_pods();
        for damage in damaged {
            // An older version cannot say which of the pod's processes run now: none may
            // run unsupervised beside what that version starts.
            let killed = process::kill_pod_processes(&damage.uid);
            if killed > 0 {
                warn!(pod_uid = %damage.uid, killed, "stopped the processes of a pod whose record is damaged");
            }
            self.events.push(WireEvent {
                pod_uid: damage.uid,
                warning: true,
                reason: "RecordDamaged".into(),
                message: damage.message,
                at_ms: now,
            });
        }
        let current = ClockStamp {
            boot_id: self.boot_id.clone(),
            wall_offset_ms: crate::clock::wall_offset_ms(),
        };
        for record in records {
            let uid = record.sup.spec.uid.clone();
            let mut sup = record.sup;
            sup.set_backoff(self.settings.backoff);
            // Older agents kept wall-clock times; times of another boot are moved to this
            // boot's clock through the wall time they stood for.
            let same_boot = record.clock.as_ref().is_some_and(|c| c.same_boot(&current));
            sup.shift_times(match &record.clock {
                Some(stamp) => stamp.shift_to(&current),
                None => -current.wall_offset_ms,
            });
            let count = sup.containers.len();
            let mut entry = new_entry(sup, record.acked);
            for (index, run) in record.runs.iter().enumerate().take(count) {
                entry.runs[index] = *run;
            }
            self.pods.insert(uid.clone(), entry);
            let mut actions = Vec::new();
            let mut ended = Vec::new();
            for index in 0..count {
                let Some(entry) = self.pods.get_mut(&uid) else {
                    break;
                };
                match entry.sup.containers[index].phase.clone() {
                    ContainerPhase::Running { .. } if in_engine(entry, index) => {}
                    ContainerPhase::Running { .. } => {
                        // Processes do not outlive a reboot.
                        let kept = record
                            .kept
                            .get(index)
                            .copied()
                            .flatten()
                            .filter(|_| same_boot);
                        match kept.filter(|_| !self.settings.stop_pods_on_exit) {
                            Some(kept) => {
                                let key = RunKey {
                                    uid: uid.clone(),
                                    index,
                                    run: entry.runs[index],
                                };
                                let Some(container) = entry.sup.spec.container(index) else {
                                    continue;
                                };
                                let Ok(logs) =
                                    LogPaths::new(&self.logs_root, &uid, &container.name)
                                else {
                                    continue;
                                };
                                let launch = Launch {
                                    pod: &entry.sup.spec,
                                    container,
                                    node: &self.settings.node,
                                    logs,
                                    cgroups: &self.settings.cgroups,
                                    keeper: self.settings.keeper.as_deref(),
                                    die_with_agent: false,
                                };
                                match process::adopt(&launch, key, kept, self.exits.clone()) {
                                    Adopted::Running => {
                                        adopted += 1;
                                        entry.pids[index] = Some(kept.pid);
                                        entry.kept[index] = Some(kept);
                                    }
                                    Adopted::Ended(exit) => ended.push(exit),
                                }
                            }
                            None => {
                                if let Some(Some(pgid)) = record.pids.get(index) {
                                    let killed = process::kill_leftovers(*pgid, &uid);
                                    if killed > 0 {
                                        info!(pod = %entry.sup.spec.name, killed, "stopped processes left by the previous agent run");
                                    }
                                }
                                if !self.settings.standing_down {
                                    actions.extend(entry.sup.lost_to_agent_restart(
                                        index,
                                        "the drover agent restarted; process pods stop and start with it (--stop-pods-on-exit)",
                                        now,
                                    ));
                                }
                            }
                        }
                    }
                    // Standing down, nothing starts: what runs is stopped next.
                    ContainerPhase::Waiting { .. } if self.settings.standing_down => {}
                    ContainerPhase::Waiting { retry_at: None, .. } => {
                        actions.push(Action::Start(index))
                    }
                    ContainerPhase::Waiting {
                        retry_at: Some(at), ..
                    } => actions.push(Action::WakeAt(at)),
                    ContainerPhase::Terminated(_) | ContainerPhase::Queued => {}
                }
            }
            if let Some(at) = self.pods.get(&uid).and_then(|e| e.sup.pending_kill()) {
                // Stopping when the agent went: its grace period still ends in a kill.
                actions.push(Action::WakeAt(at));
            }
            if let Some(entry) = self.pods.get_mut(&uid) {
                let resumed = entry.sup.resume_probes(now);
                // Standing down, nothing starts (a sidecar's postStart counts as done).
                let standing_down = self.settings.standing_down;
                actions.extend(
                    resumed
                        .into_iter()
                        .filter(|a| !(standing_down && matches!(a, Action::Start(_)))),
                );
            }
            self.execute(&uid, actions, now);
            self.note_change(&uid);
            for exit in ended {
                self.on_exit(exit, now);
            }
        }
        if !self.settings.stop_pods_on_exit {
            let groups: HashMap<String, HashSet<u32>> = self
                .pods
                .iter()
                .filter(|(_, e)| e.sup.spec.all_containers().all(|c| c.image.is_none()))
                .map(|(uid, e)| {
                    let groups = e.kept.iter().flatten().map(|k| k.pid).collect();
                    (uid.clone(), groups)
                })
                .collect();
            let killed = process::kill_strays(&groups);
            if killed > 0 {
                warn!(
                    killed,
                    "stopped pod processes no record accounts for (the agent stopped as they started)"
                );
            }
        }
        if adopted > 0 {
            info!(
                containers = adopted,
                "adopted the process pods of the previous agent run"
            );
        }
    }

    /// The engine was looked for. Re-adopts the containers of pods recorded as running
    /// (still there: watched as before, no new container, no restart counted; gone: ended,
    /// and the restart policy decides), removes containers of pods this node no longer
    /// has, and starts the engine containers that waited.
    fn on_engine(&mut self, slot: EngineSlot, listed: Vec<ListedContainer>, now: Millis) {
        self.settings.engine = slot;
        let engine = engine_of(&self.settings.engine);
        let mut by_container: HashMap<(String, String), Vec<ListedContainer>> = HashMap::new();
        for container in listed {
            by_container
                .entry((container.pod_uid.clone(), container.container.clone()))
                .or_default()
                .push(container);
        }
        for runs in by_container.values_mut() {
            runs.sort_by_key(|c| std::cmp::Reverse(c.run));
        }
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            let mut actions = Vec::new();
            let Some(entry) = self.pods.get_mut(&uid) else {
                continue;
            };
            for index in 0..entry.sup.containers.len() {
                if !in_engine(entry, index) || entry.engine_ids[index].is_some() {
                    continue;
                }
                let name = entry.sup.containers[index].name.clone();
                let mut found = by_container
                    .remove(&(uid.clone(), name))
                    .unwrap_or_default()
                    .into_iter();
                let current = found.next();
                let previous = found.next();
                if let Some(engine) = &engine {
                    remove_containers(engine, found.map(|c| c.id).collect());
                }
                entry.runs[index] = entry.runs[index].max(current.as_ref().map_or(0, |c| c.run));
                entry.previous_ids[index] = previous.map(|c| c.id);
                entry.engine_ids[index] = current.as_ref().map(|c| c.id.clone());
                if !matches!(
                    entry.sup.containers[index].phase,
                    ContainerPhase::Running { .. }
                ) {
                    continue;
                }
                match (&current, &engine) {
                    (Some(container), Some(engine)) => {
                        // Running, or ended while the agent was away: watched as before.
                        info!(pod = %entry.sup.spec.name, container = %container.container, running = container.running, "re-adopted container");
                        let key = RunKey {
                            uid: uid.clone(),
                            index,
                            run: container.run,
                        };
                        entry.runs[index] = container.run;
                        let (engine, id, events) = (
                            engine.clone(),
                            container.id.clone(),
                            self.container_events.clone(),
                        );
                        tokio::spawn(async move {
                            let _ = events.send(driver::watch(engine.as_ref(), &id, key).await);
                        });
                        // A stop asked for while its id was unknown could not reach it.
                        actions.extend(entry.sup.restate_stop(index, now));
                    }
                    _ => actions.extend(entry.sup.lost_to_agent_restart(
                        index,
                        "the container was gone when the drover agent restarted",
                        now,
                    )),
                }
            }
            self.execute(&uid, actions, now);
            self.note_change(&uid);
        }
        if let Some(engine) = &engine {
            let orphans: Vec<String> = by_container.into_values().flatten().map(|c| c.id).collect();
            if !orphans.is_empty() {
                info!(
                    count = orphans.len(),
                    "removing containers of pods this node no longer runs"
                );
            }
            remove_containers(engine, orphans);
        }
        for (uid, index) in std::mem::take(&mut self.awaiting_engine) {
            let Some(entry) = self.pods.get_mut(&uid) else {
                continue;
            };
            let still_starting = matches!(
                entry.sup.containers.get(index).map(|c| &c.phase),
                Some(ContainerPhase::Waiting { retry_at: None, .. })
            );
            if !still_starting {
                continue;
            }
            let actions = if !entry.sup.may_start(index) {
                entry.sup.start_failed(
                    index,
                    "the pod was stopped before its container started".into(),
                    now,
                )
            } else {
                vec![Action::Start(index)]
            };
            self.execute(&uid, actions, now);
            self.note_change(&uid);
        }
    }

    fn apply_desired(&mut self, desired: DesiredState, now: Millis) {
        let wanted: HashSet<String> = desired
            .pods
            .iter()
            .map(|p| p.uid.clone())
            .chain(desired.finished.iter().cloned())
            .collect();
        let before = self.forgotten.len();
        if before > 0 {
            let listed: HashSet<&str> = desired.pods.iter().map(|p| p.uid.as_str()).collect();
            self.forgotten.retain(|uid| listed.contains(uid.as_str()));
        }
        if self.forgotten.len() != before {
            if let Err(e) = self.records.save_forgotten(&self.forgotten) {
                warn!(error = %e, "cannot store the forgotten finished pods");
            }
        }
        for pod in desired.pods {
            if self.forgotten.contains(&pod.uid) {
                // It finished here and its final status is stored: it never runs again.
                continue;
            }
            if !drover_proto::manifest::is_valid_uid(&pod.uid) {
                // Its UID would name the pod's files: refuse the pod, not just the paths.
                warn!(pod = %format!("{}/{}", pod.namespace, pod.name), uid = ?pod.uid, "ignoring a desired pod with an invalid UID");
                continue;
            }
            if !self.pods.contains_key(&pod.uid) {
                self.accept(pod, now);
            }
        }
        let leaving: Vec<String> = self
            .pods
            .iter()
            .filter(|(uid, e)| {
                !wanted.contains(*uid) && !e.sup.is_stopping() && !e.sup.is_removed()
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in leaving {
            let actions = match self.pods.get_mut(&uid) {
                Some(entry) => entry.sup.stop(now),
                None => continue,
            };
            self.execute(&uid, actions, now);
            self.release_held_starts(&uid, now);
            self.note_change(&uid);
        }
    }

    fn accept(&mut self, pod: DesiredPod, now: Millis) {
        info!(pod = %format!("{}/{}", pod.namespace, pod.name), uid = %pod.uid, "starting pod");
        let uid = pod.uid.clone();
        let has_limits = pod
            .all_containers()
            .any(|c| c.memory_limit_bytes.is_some() || c.cpu_limit_millis.is_some());
        let (mut sup, actions) = PodSupervisor::new(pod, self.settings.backoff, now);
        let support = self.settings.cgroups.support();
        if has_limits && !support.enforced {
            sup.message = format!("resources.limits are not enforced: {}", support.reason);
            self.events.push(WireEvent {
                pod_uid: uid.clone(),
                warning: true,
                reason: "LimitsNotEnforced".into(),
                message: sup.message.clone(),
                at_ms: now,
            });
        }
        self.pods.insert(uid.clone(), new_entry(sup, 0));
        self.execute(&uid, actions, now);
        self.note_change(&uid);
    }

    /// Carries out a supervisor's actions (which may produce more).
    fn execute(&mut self, uid: &str, actions: Vec<Action>, now: Millis) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let Some(entry) = self.pods.get_mut(uid) else {
                return;
            };
            match action {
                Action::Start(index) if self.disk_pressure && !entry.sup.may_start(index) => {
                    let more = entry.sup.start_failed(
                        index,
                        "the pod was stopped before its container started".into(),
                        now,
                    );
                    queue.extend(more);
                }
                Action::Start(index) if self.disk_pressure => {
                    // A new run needs log and status files: it waits for space, and what
                    // runs keeps running.
                    entry.sup.message = DISK_PRESSURE_MESSAGE.to_string();
                    self.awaiting_disk.push((uid.to_string(), index));
                }
                Action::Start(index) if in_engine(entry, index) => {
                    entry.runs[index] += 1;
                    // A new container may have a new address.
                    entry.addresses[index] = None;
                    let key = RunKey {
                        uid: uid.to_string(),
                        index,
                        run: entry.runs[index],
                    };
                    let more = start_in_engine(
                        &self.settings,
                        &self.volumes_dir,
                        entry,
                        key,
                        &self.container_events,
                        &mut self.awaiting_engine,
                        now,
                    );
                    queue.extend(more);
                }
                Action::Start(index) => {
                    let Some(container) = entry.sup.spec.container(index) else {
                        continue;
                    };
                    if container.security.run_as_non_root
                        && container.run_as_user.is_none()
                        && process::agent_is_root()
                    {
                        // A host process without runAsUser runs as the agent.
                        let message = "container has runAsNonRoot and would run as root, the agent's user: set runAsUser".to_string();
                        queue.extend(entry.sup.image_failed(
                            index,
                            "CreateContainerConfigError",
                            message,
                            now,
                        ));
                        continue;
                    }
                    entry.runs[index] += 1;
                    let key = RunKey {
                        uid: uid.to_string(),
                        index,
                        run: entry.runs[index],
                    };
                    let spawned = LogPaths::new(&self.logs_root, uid, &container.name)
                        .map_err(|e| process::SpawnError::from(e.to_string()))
                        .and_then(|logs| {
                            let launch = Launch {
                                pod: &entry.sup.spec,
                                container,
                                node: &self.settings.node,
                                logs,
                                cgroups: &self.settings.cgroups,
                                keeper: self.settings.keeper.as_deref(),
                                die_with_agent: self.settings.stop_pods_on_exit,
                            };
                            process::spawn(&launch, key, self.exits.clone())
                        });
                    let more = match spawned {
                        Ok(kept) => {
                            entry.pids[index] = Some(kept.pid);
                            entry.kept[index] = Some(kept);
                            entry.sup.started(index, now)
                        }
                        Err(e) if e.no_space => {
                            // Not the container's failure: it starts once there is space.
                            warn!(pod = %entry.sup.spec.name, message = %e.message, "container waits for disk space");
                            entry.sup.message = DISK_PRESSURE_MESSAGE.to_string();
                            self.awaiting_disk.push((uid.to_string(), index));
                            Vec::new()
                        }
                        Err(e) => {
                            warn!(pod = %entry.sup.spec.name, container = %entry.sup.containers[index].name, message = %e.message, "container cannot run");
                            entry.sup.start_failed(index, e.message, now)
                        }
                    };
                    queue.extend(more);
                }
                Action::Signal(index, signal) if in_engine(entry, index) => {
                    let id = entry.engine_ids.get(index).cloned().flatten();
                    if let (Some(id), Some(engine)) = (id, engine_of(&self.settings.engine)) {
                        let grace = entry.sup.spec.termination_grace_seconds;
                        tokio::spawn(async move {
                            let stopped = match signal {
                                crate::supervisor::StopSignal::Term => {
                                    engine.stop(&id, grace).await
                                }
                                crate::supervisor::StopSignal::Kill => engine.kill(&id).await,
                            };
                            // An error here usually means it had ended already.
                            if let Err(e) = stopped {
                                debug!(id, error = %e, "stopping a container");
                            }
                        });
                    }
                }
                Action::Signal(index, signal) => {
                    if let Some(pgid) = entry.pids.get(index).copied().flatten() {
                        process::signal_group(pgid, signal);
                    }
                }
                Action::StopContainer {
                    index,
                    grace_seconds,
                } if in_engine(entry, index) => {
                    let id = entry.engine_ids.get(index).cloned().flatten();
                    if let (Some(id), Some(engine)) = (id, engine_of(&self.settings.engine)) {
                        tokio::spawn(async move {
                            if let Err(e) = engine.stop(&id, grace_seconds).await {
                                debug!(id, error = %e, "stopping a container");
                            }
                        });
                    }
                }
                Action::StopContainer {
                    index,
                    grace_seconds,
                } => {
                    if let Some(pgid) = entry.pids.get(index).copied().flatten() {
                        let signal = if grace_seconds == 0 {
                            crate::supervisor::StopSignal::Kill
                        } else {
                            crate::supervisor::StopSignal::Term
                        };
                        process::signal_group(pgid, signal);
                    }
                }
                Action::Probe(index, kind) => {
                    let started = probes::start(
                        &self.settings,
                        &self.logs_root,
                        entry,
                        uid,
                        index,
                        probes::Check::Probe(kind),
                        &self.probes,
                    );
                    if !started {
                        queue.extend(entry.sup.probe_not_run(index, kind));
                    }
                }
                Action::Hook(index, kind) => {
                    let started = probes::start(
                        &self.settings,
                        &self.logs_root,
                        entry,
                        uid,
                        index,
                        probes::Check::Hook(kind),
                        &self.probes,
                    );
                    if !started {
                        // Nowhere to run it (an engine container not known yet): failed.
                        queue.extend(entry.sup.hooked(
                            index,
                            kind,
                            false,
                            "the hook could not be run",
                            now,
                        ));
                    }
                }
                Action::WakeAt(at) => {
                    self.wakes.insert((at, uid.to_string()));
                }
                Action::Removed => {
                    info!(pod = %entry.sup.spec.name, "pod stopped");
                    self.follows.stop_pod(uid);
                    if let Some(engine) = engine_of(&self.settings.engine) {
                        let ids: Vec<String> = entry
                            .engine_ids
                            .iter_mut()
                            .chain(entry.previous_ids.iter_mut())
                            .filter_map(Option::take)
                            .collect();
                        remove_containers(&engine, ids);
                    }
                    volumes::remove(&self.volumes_dir, uid);
                }
                Action::Event {
                    warning,
                    reason,
                    message,
                } => self.events.push(WireEvent {
                    pod_uid: uid.to_string(),
                    warning,
                    reason: reason.to_string(),
                    message,
                    at_ms: now,
                }),
            }
        }
    }

    /// After a supervisor changed: bump the revision when the status changed, persist the
    /// record, and schedule a report.
    fn note_change(&mut self, uid: &str) {
        let Some(entry) = self.pods.get_mut(uid) else {
            return;
        };
        let status = without_revision(entry.sup.status());
        if entry.last_status.as_ref() == Some(&status) {
            return;
        }
        entry.sup.revision += 1;
        entry.last_status = Some(status);
        // Final results must survive a power loss before they are reported; they are made
        // durable together, just before the next report goes out.
        self.unsynced |= entry.sup.is_terminal() || entry.sup.is_removed();
        self.save_record(uid);
        self.dirty.insert(uid.to_string());
        if self.flush_at.is_none() {
            self.flush_at = Some(Instant::now() + COALESCE);
        }
    }

    /// Writes a pod's record; one that cannot be written is kept from the reports and
    /// written again at the next flush, so nothing is reported that a restart would forget.
    fn save_record(&mut self, uid: &str) {
        let Some(entry) = self.pods.get(uid) else {
            self.unsaved.remove(uid);
            return;
        };
        let record = PodRecord {
            sup: entry.sup.clone(),
            pids: entry.pids.clone(),
            acked: entry.acked,
            runs: entry.runs.clone(),
            kept: entry.kept.clone(),
            clock: Some(ClockStamp {
                boot_id: self.boot_id.clone(),
                wall_offset_ms: crate::clock::wall_offset_ms(),
            }),
        };
        match self.records.save_pod(&record, false) {
            Ok(()) => {
                self.unsaved.remove(uid);
            }
            Err(e) => {
                if self.unsaved.insert(uid.to_string()) {
                    warn!(uid, error = %e, "cannot save the pod record; its status is held back until it is saved");
                }
            }
        }
    }

    fn on_exit(&mut self, exit: ProcessExit, now: Millis) {
        let uid = exit.key.uid.clone();
        let Some(entry) = self.pods.get_mut(&uid) else {
            return;
        };
        if entry.runs.get(exit.key.index) != Some(&exit.key.run) {
            return;
        }
        entry.pids[exit.key.index] = None;
        entry.kept[exit.key.index] = None;
        if self.shutting_down {
            return;
        }
        let actions = match exit.cannot_run {
            Some(message) => {
                warn!(pod = %entry.sup.spec.name, container = exit.key.index, %message, "container cannot run");
                entry.sup.start_failed(exit.key.index, message, now)
            }
            None => {
                debug!(pod = %entry.sup.spec.name, container = exit.key.index, code = exit.exit_code, "container exited");
                entry.sup.exited(
                    exit.key.index,
                    exit.exit_code,
                    exit.signal,
                    exit.oom_killed,
                    now,
                )
            }
        };
        self.execute(&uid, actions, now);
        self.note_change(&uid);
    }

    fn on_container_event(&mut self, event: ContainerEvent, now: Millis) {
        let key = match &event {
            ContainerEvent::Started { key, .. }
            | ContainerEvent::ImageFailed { key, .. }
            | ContainerEvent::CannotRun { key, .. }
            | ContainerEvent::Exited { key, .. } => key.clone(),
        };
        let current = self
            .pods
            .get(&key.uid)
            .is_some_and(|e| e.runs.get(key.index) == Some(&key.run));
        if !current {
            // A run the pod no longer has (it was removed meanwhile): nothing may be left.
            if let (
                ContainerEvent::Started { id, .. } | ContainerEvent::CannotRun { id: Some(id), .. },
                Some(engine),
            ) = (&event, engine_of(&self.settings.engine))
            {
                remove_containers(&engine, vec![id.clone()]);
            }
            return;
        }
        let Some(entry) = self.pods.get_mut(&key.uid) else {
            return;
        };
        let index = key.index;
        let actions = match event {
            ContainerEvent::Started { id, .. } => {
                entry.engine_ids[index] = Some(id);
                entry.sup.started(index, now)
            }
            ContainerEvent::ImageFailed {
                reason, message, ..
            } => {
                warn!(pod = %entry.sup.spec.name, %message, "image not available");
                entry.sup.image_failed(index, reason, message, now)
            }
            ContainerEvent::CannotRun { id, message, .. } => {
                warn!(pod = %entry.sup.spec.name, %message, "container cannot run");
                entry.engine_ids[index] = id;
                entry.sup.start_failed(index, message, now)
            }
            ContainerEvent::Exited {
                exit_code,
                oom_killed,
                ..
            } => {
                debug!(pod = %entry.sup.spec.name, container = index, code = exit_code, "container exited");
                let signal = if exit_code > 128 { exit_code - 128 } else { 0 };
                entry.sup.exited(index, exit_code, signal, oom_killed, now)
            }
        };
        self.execute(&key.uid, actions, now);
        self.note_change(&key.uid);
    }

    fn on_probe(&mut self, done: probes::ProbeDone, now: Millis) {
        let Some(entry) = self.pods.get_mut(&done.key.uid) else {
            return;
        };
        if entry.runs.get(done.key.index) != Some(&done.key.run) {
            return;
        }
        probes::remember_address(entry, &done.key, done.outcome.address);
        let (index, success, message) =
            (done.key.index, done.outcome.success, &done.outcome.message);
        let (actions, what) = match done.check {
            probes::Check::Probe(kind) => (
                entry.sup.probed(index, kind, success, message, now),
                kind.field(),
            ),
            probes::Check::Hook(kind) => (
                entry.sup.hooked(index, kind, success, message, now),
                kind.field(),
            ),
        };
        if !success {
            debug!(pod = %entry.sup.spec.name, container = index, check = what, %message, "probe or hook failed");
        }
        self.execute(&done.key.uid, actions, now);
        self.note_change(&done.key.uid);
    }

    fn on_wake(&mut self, now: Millis) {
        while let Some((at, uid)) = self.wakes.first().cloned() {
            if at > now {
                break;
            }
            self.wakes.pop_first();
            let actions = match self.pods.get_mut(&uid) {
                Some(entry) => entry.sup.wake(now),
                None => continue,
            };
            self.execute(&uid, actions, now);
            self.note_change(&uid);
        }
    }

    fn on_ack(&mut self, ack: StatusAck) {
        if std::mem::take(&mut self.awaiting_full_ack) {
            info!(
                pods = self.pods.len(),
                "the controller acknowledged the status of every pod"
            );
        }
        for (uid, revision) in ack.pods {
            let Some(entry) = self.pods.get_mut(&uid) else {
                continue;
            };
            if revision <= entry.acked {
                continue;
            }
            entry.acked = revision;
            if entry.sup.is_removed() && entry.acked >= entry.sup.revision {
                // The controller has the final word on this pod: forget it.
                self.pods.remove(&uid);
                self.forget_files(&uid);
            }
            // The acknowledgement is not written to the record: after an agent restart the
            // statuses are sent once more, and the controller ignores revisions it has.
        }
        self.forget_finished(now_ms());
    }

    /// Forgets the finished pods beyond `max_finished_pods` (oldest first) and those that
    /// finished more than `max_finished_age` ago, once the controller has their final
    /// status: their records, logs, volumes and engine containers go, and their UIDs are
    /// kept (durably, first) until no desired state lists them to run.
    fn forget_finished(&mut self, now: Millis) {
        let mut finished: Vec<(Millis, String)> = self
            .pods
            .iter()
            .filter(|(_, e)| {
                e.sup.is_terminal()
                    && !e.sup.is_stopping()
                    && e.acked >= e.sup.revision
                    && e.kept.iter().all(Option::is_none)
            })
            .map(|(uid, e)| (e.sup.finished_at().unwrap_or(now), uid.clone()))
            .collect();
        let max_age = self.settings.max_finished_age.as_millis() as Millis;
        let excess = finished
            .len()
            .saturating_sub(self.settings.max_finished_pods);
        finished.sort();
        let doomed: Vec<String> = finished
            .iter()
            .enumerate()
            .filter(|(i, (at, _))| *i < excess || now - *at > max_age)
            .map(|(_, (_, uid))| uid.clone())
            .collect();
        if doomed.is_empty() {
            return;
        }
        let mut forgotten = self.forgotten.clone();
        forgotten.extend(doomed.iter().cloned());
        if let Err(e) = self.records.save_forgotten(&forgotten) {
            warn!(error = %e, "cannot store the forgotten finished pods; keeping their records");
            return;
        }
        self.forgotten = forgotten;
        debug!(count = doomed.len(), "forgetting finished pods");
        for uid in doomed {
            if let Some(mut entry) = self.pods.remove(&uid) {
                if let Some(engine) = engine_of(&self.settings.engine) {
                    let ids: Vec<String> = entry
                        .engine_ids
                        .iter_mut()
                        .chain(entry.previous_ids.iter_mut())
                        .filter_map(Option::take)
                        .collect();
                    remove_containers(&engine, ids);
                }
            }
            self.forget_files(&uid);
        }
    }

    /// Removes what the agent keeps of a pod on disk.
    fn forget_files(&mut self, uid: &str) {
        self.follows.stop_pod(uid);
        self.dirty.remove(uid);
        self.unsaved.remove(uid);
        self.records.forget_pod(uid);
        match crate::pod_paths::pod_dir(&self.logs_root, uid) {
            Ok(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Err(e) => warn!(error = %e, "not removing the pod's logs"),
        }
        volumes::remove(&self.volumes_dir, uid);
    }

    /// Sends the dirty pods' status (everything, when `full`).
    fn flush(&mut self, full: bool) {
        self.flush_at = None;
        for uid in self.unsaved.clone() {
            self.save_record(&uid);
        }
        // Durable before reported (and also while offline: results wait on disk). Until the
        // records are durable nothing goes out; the resend timer tries again.
        if self.unsynced {
            match self.records.sync() {
                Ok(()) => self.unsynced = false,
                Err(e) => {
                    warn!(error = %e, "cannot make pod records durable; reports wait");
                    return;
                }
            }
        }
        if !self.connected {
            return;
        }
        let uids: Vec<String> = if full {
            self.pods.keys().cloned().collect()
        } else {
            self.dirty.iter().cloned().collect()
        };
        self.dirty.clear();
        let (held, uids): (Vec<String>, Vec<String>) =
            uids.into_iter().partition(|uid| self.unsaved.contains(uid));
        self.dirty.extend(held);
        let offset = crate::clock::wall_offset_ms();
        let pods: Vec<WirePodStatus> = uids
            .iter()
            .filter_map(|uid| self.pods.get(uid).map(|e| on_wall(e.sup.status(), offset)))
            .collect();
        let mut events = std::mem::take(&mut self.events);
        for event in &mut events {
            event.at_ms += offset;
        }
        if pods.is_empty() && events.is_empty() && !full {
            return;
        }
        // Keep each report well under the payload limit.
        let mut chunks: Vec<Vec<WirePodStatus>> = pods.chunks(200).map(<[_]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let last = chunks.len() - 1;
        let mut events = Some(events);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let report = StatusReport {
                pods: chunk,
                full: full && i == last,
                events: if i == last {
                    events.take().unwrap_or_default()
                } else {
                    Vec::new()
                },
            };
            let _ = self.outbound.send(Outbound::Status(report));
        }
        self.awaiting_full_ack |= full;
    }

    fn resend_unacknowledged(&mut self) {
        let pending: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| e.sup.revision > e.acked)
            .map(|(uid, _)| uid.clone())
            .collect();
        if !pending.is_empty() || !self.unsaved.is_empty() || self.unsynced {
            self.dirty.extend(pending);
            self.flush(false);
        }
    }

    fn handle(&mut self, input: PodInput, now: Millis) {
        match input {
            PodInput::Desired(desired) => {
                // Start pods first: storing the state durably takes an fsync, and the pod
                // records already say what runs.
                self.generation = self.generation.max(desired.generation);
                self.apply_desired(desired.clone(), now);
                match self.records.save_desired(&desired) {
                    // What the node runs after a reboot: durable with the next flush.
                    Ok(()) => {
                        self.unsynced = true;
                        if self.flush_at.is_none() {
                            self.flush_at = Some(Instant::now() + COALESCE);
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot store the desired state"),
                }
            }
            PodInput::Ack(ack) => self.on_ack(ack),
            PodInput::Logs(request) => self.serve_logs(request),
            PodInput::Link(up) => {
                self.connected = up;
                if up {
                    self.flush(true);
                }
            }
            PodInput::Engine { slot, listed } => self.on_engine(slot, listed, now),
            PodInput::DiskPressure(pressure) => self.on_disk_pressure(pressure, now),
            PodInput::StandDown => self.stand_down(now),
        }
    }

    /// Stops every pod as if the controller wanted none, and stores that: a start of this
    /// agent runs nothing until a controller says otherwise.
    fn stand_down(&mut self, now: Millis) {
        info!(pods = self.pods.len(), "standing down: stopping every pod");
        self.standing_down = true;
        let nothing = DesiredState {
            generation: self.generation,
            pods: Vec::new(),
            finished: Vec::new(),
        };
        self.apply_desired(nothing.clone(), now);
        let saved = self
            .records
            .save_desired(&nothing)
            .and_then(|()| self.records.sync());
        if let Err(e) = saved {
            warn!(error = %e, "cannot store the empty desired state");
        }
    }

    /// Standing down, and nothing runs any more.
    fn stood_down(&self) -> bool {
        self.standing_down && self.pods.values().all(|e| e.sup.is_removed())
    }

    /// A stopped pod's containers that wait for disk space will never start: they end.
    fn release_held_starts(&mut self, uid: &str, now: Millis) {
        let (held, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.awaiting_disk)
            .into_iter()
            .partition(|(u, _)| u == uid);
        self.awaiting_disk = others;
        for (_, index) in held {
            let actions = match self.pods.get_mut(uid) {
                Some(entry) => entry.sup.start_failed(
                    index,
                    "the pod was stopped before its container started".into(),
                    now,
                ),
                None => continue,
            };
            self.execute(uid, actions, now);
        }
    }

    fn on_disk_pressure(&mut self, pressure: bool, now: Millis) {
        self.disk_pressure = pressure;
        if pressure {
            return;
        }
        for (uid, index) in std::mem::take(&mut self.awaiting_disk) {
            let Some(entry) = self.pods.get_mut(&uid) else {
                continue;
            };
            if entry.sup.message == DISK_PRESSURE_MESSAGE {
                entry.sup.message.clear();
            }
            let still_starting = matches!(
                entry.sup.containers.get(index).map(|c| &c.phase),
                Some(ContainerPhase::Waiting { retry_at: None, .. })
            );
            if still_starting && entry.sup.may_start(index) {
                self.execute(&uid, vec![Action::Start(index)], now);
            }
            self.note_change(&uid);
        }
    }

    fn serve_logs(&mut self, request: LogRequest) {
        let engine = engine_of(&self.settings.engine);
        let located = self.pods.get(&request.pod_uid).map(|e| logs::Located {
            pod_name: e.sup.spec.name.clone(),
            init_count: e.sup.spec.init_containers.len(),
            containers: e
                .sup
                .spec
                .all_containers()
                .enumerate()
                .map(|(i, c)| {
                    let source = match (&engine, in_engine(e, i)) {
                        (Some(engine), true) => logs::LogSource::Engine {
                            engine: engine.clone(),
                            current: e.engine_ids[i].clone(),
                            previous: e.previous_ids[i].clone(),
                        },
                        _ => logs::LogSource::Files,
                    };
                    (c.name.clone(), source)
                })
                .collect(),
        });
        logs::serve(
            &mut self.follows,
            &self.logs_root,
            request,
            located,
            self.outbound.clone(),
        );
    }

    /// Leaves the pods running for the next agent run to adopt; with `stop_pods_on_exit`,
    /// stops every pod process (SIGTERM, then SIGKILL) instead, and the records keep them as
    /// running, so the next start restarts them. Engine containers keep running either way.
    async fn shut_down(&mut self, exits: &mut mpsc::UnboundedReceiver<ProcessExit>) {
        self.shutting_down = true;
        if !self.settings.stop_pods_on_exit {
            return;
        }
        let groups: Vec<u32> = self
            .pods
            .values()
            .flat_map(|e| e.pids.iter().flatten().copied())
            .collect();
        if groups.is_empty() {
            return;
        }
        info!(processes = groups.len(), "stopping pod processes");
        for pgid in &groups {
            process::signal_group(*pgid, crate::supervisor::StopSignal::Term);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self
            .pods
            .values()
            .any(|e| e.pids.iter().any(Option::is_some))
        {
            tokio::select! {
                exit = exits.recv() => match exit {
                    Some(exit) => self.on_exit(exit, now_ms()),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    for pgid in self.pods.values().flat_map(|e| e.pids.iter().flatten()) {
                        process::signal_group(*pgid, crate::supervisor::StopSignal::Kill);
                    }
                    break;
                }
            }
        }
    }

    /// Process pods write their logs themselves: cut those that grew past the cap.
    fn enforce_log_caps(&self) {
        for (uid, entry) in &self.pods {
            for (index, container) in entry.sup.spec.all_containers().enumerate() {
                if entry.kept[index].is_none() {
                    continue;
                }
                let Ok(logs) = LogPaths::new(&self.logs_root, uid, &container.name) else {
                    continue;
                };
                if let Err(e) = logs.enforce_cap(self.settings.log_max_bytes) {
                    debug!(pod = %entry.sup.spec.name, error = %e, "cannot rotate a log");
                }
            }
        }
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<PodInput>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let (Some(mut exits), Some(mut container_events), Some(mut probe_outcomes)) = (
            self.exits_rx.take(),
            self.container_events_rx.take(),
            self.probes_rx.take(),
        ) else {
            return;
        };
        let mut resend = tokio::time::interval(RESEND_AFTER);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut log_caps = tokio::time::interval(LOG_CAP_CHECK);
        log_caps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let next_wake = self.wakes.first().map(|(at, _)| {
                let delay = (*at - now_ms()).max(0) as u64;
                Instant::now() + Duration::from_millis(delay)
            });
            tokio::select! {
                _ = &mut shutdown => break,
                input = inputs.recv() => match input {
                    Some(input) => self.handle(input, now_ms()),
                    None => break,
                },
                Some(exit) = exits.recv() => self.on_exit(exit, now_ms()),
                Some(event) = container_events.recv() => self.on_container_event(event, now_ms()),
                Some(done) = probe_outcomes.recv() => self.on_probe(done, now_ms()),
                _ = sleep_until_opt(next_wake) => self.on_wake(now_ms()),
                _ = sleep_until_opt(self.flush_at) => self.flush(false),
                _ = resend.tick() => {
                    self.resend_unacknowledged();
                    self.forget_finished(now_ms());
                    if !self.disk_pressure && !self.awaiting_disk.is_empty() {
                        // Held by a write that found the disk full before pressure was seen.
                        self.on_disk_pressure(false, now_ms());
                    }
                }
                _ = log_caps.tick() => self.enforce_log_caps(),
            }
            if self.stood_down() {
                // This agent's copies of the pods are not the node's: nothing of them is kept
                // (a later run, once it holds the name, starts them as the controller says).
                let uids: Vec<String> = self.pods.keys().cloned().collect();
                for uid in uids {
                    self.pods.remove(&uid);
                    self.forget_files(&uid);
                }
                if let Err(e) = self.records.sync() {
                    warn!(error = %e, "cannot sync the records after standing down");
                }
                break;
            }
        }
        self.shut_down(&mut exits).await;
        self.flush(false);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
