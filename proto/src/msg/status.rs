//! Pod status reports (agent → controller), their acknowledgements, and agent events.

use serde::{Deserialize, Serialize};

/// Pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WirePhase {
    /// Accepted, not every container started yet.
    Pending,
    /// At least one container runs or restarts.
    Running,
    /// Every container exited 0 and none will restart.
    Succeeded,
    /// Every container terminated, one non-zero, none will restart.
    Failed,
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireContainerState {
    /// Not running: being created, or backing off.
    Waiting {
        /// `ContainerCreating`, `CrashLoopBackOff`, `ContainerCannotRun`, …
        reason: String,
        /// Details.
        message: String,
    },
    /// Running since (unix milliseconds, agent clock).
    Running {
        /// Start time.
        started_at_ms: i64,
    },
    /// Exited.
    Terminated {
        /// Exit code (128+N for signal N).
        exit_code: i32,
        /// Signal that killed it, 0 for none.
        signal: i32,
        /// `Completed`, `Error`, `OOMKilled`, `AgentRestart`, …
        reason: String,
        /// Details.
        message: String,
        /// Start time.
        started_at_ms: i64,
        /// End time.
        finished_at_ms: i64,
    },
}

/// One container's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireContainerStatus {
    /// Container name.
    pub name: String,
    /// Current state.
    pub state: WireContainerState,
    /// The state before the last restart.
    pub last_state: Option<WireContainerState>,
    /// Restarts so far.
    pub restart_count: u32,
    /// Running (process pods have no probes: running is ready).
    pub ready: bool,
}

/// A pod's status as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePodStatus {
    /// Pod UID.
    pub uid: String,
    /// Increases with every change of this pod's status on the agent (persisted there):
    /// the controller applies a report only if its revision is newer than the last one.
    pub revision: u64,
    /// Phase.
    pub phase: WirePhase,
    /// Pod-level reason (e.g. `AgentRestart`), empty if none.
    pub reason: String,
    /// Pod-level message, e.g. resource limits that are not enforced.
    pub message: String,
    /// When the agent accepted the pod (unix ms).
    pub start_time_ms: i64,
    /// Containers.
    pub containers: Vec<WireContainerStatus>,
    /// The pod was stopped and forgotten by the agent (after deletion).
    pub removed: bool,
    /// Init containers, in order.
    pub init_containers: Vec<WireContainerStatus>,
}

/// Something that happened to a pod on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEvent {
    /// Pod UID.
    pub pod_uid: String,
    /// `Normal` or `Warning`.
    pub warning: bool,
    /// `Started`, `Killing`, `BackOff`, …
    pub reason: String,
    /// Details.
    pub message: String,
    /// When (unix ms).
    pub at_ms: i64,
}

/// Pod statuses from an agent. Topic: status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Changed pods (every pod the agent has, when `full`).
    pub pods: Vec<WirePodStatus>,
    /// Whether this lists every pod the agent runs (sent after each connection).
    pub full: bool,
    /// Events since the last report.
    pub events: Vec<WireEvent>,
}

/// The controller has durably stored these pod revisions. Topic: ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAck {
    /// (pod UID, revision) pairs.
    pub pods: Vec<(String, u64)>,
}
