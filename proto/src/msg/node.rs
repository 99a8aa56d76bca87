//! Node presence and liveness.

use serde::{Deserialize, Serialize};

/// Orders an agent's connections: later sessions supersede earlier ones, so a last will
/// delivered late cannot mark a reconnected agent offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Session {
    /// How many times the agent has started on this node (persisted).
    pub agent_start: u64,
    /// Connection number within this agent start.
    pub connection: u64,
}

/// What an agent tells about its node when it comes online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name (RFC 1123 subdomain).
    pub name: String,
    /// Stable identity, kept in the agent's data directory.
    pub uid: String,
    /// Labels given on the agent's command line.
    pub labels: Vec<(String, String)>,
    /// Kubernetes architecture name: `amd64`, `arm64`, `arm`, …
    pub architecture: String,
    /// `linux`.
    pub operating_system: String,
    /// Kernel release.
    pub kernel_version: String,
    /// OS release (`PRETTY_NAME` of os-release).
    pub os_image: String,
    /// Hardware model, e.g. from the device tree.
    pub model: Option<String>,
    /// Logical CPUs.
    pub cpus: u32,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Agent version.
    pub agent_version: String,
    /// Kernel boot id.
    pub boot_id: String,
    /// Addresses the node is reached at (the one used towards the broker first).
    pub addresses: Vec<String>,
    /// Heartbeat interval in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// The container engine, as `docker://28.2.2` or `podman://5.4.0`; empty without one.
    pub container_runtime: String,
    /// Why the node has no container engine (empty when it has one).
    pub container_runtime_problem: String,
    /// The agent's data directory is (nearly) full: no new pod starts on the node.
    pub disk_pressure: bool,
    /// Random for each agent process: tells apart two agents that run under one node name
    /// (a copy of a data directory has the same identity and start count). 0 from agents
    /// older than the field, whose announcement ends where it would start.
    #[serde(deserialize_with = "absent_is_zero")]
    pub agent_instance: u64,
}

/// The last field of a message from an older peer is absent: read as 0.
fn absent_is_zero<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(u64::deserialize(deserializer).unwrap_or(0))
}

/// Why an agent went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfflineReason {
    /// The agent stopped cleanly.
    Shutdown,
    /// The broker lost the connection (the last will).
    ConnectionLost,
}

/// Online or offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PresenceState {
    /// Connected, with the node's description.
    Online(Box<NodeInfo>),
    /// Gone.
    Offline(OfflineReason),
}

/// A presence announcement (retained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The session this announcement belongs to.
    pub session: Session,
    /// Online or offline.
    pub state: PresenceState,
}

/// A periodic liveness signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender's session.
    pub session: Session,
    /// Increments with every heartbeat of the session.
    pub sequence: u64,
}
