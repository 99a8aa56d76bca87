//! Wire messages. Postcard is not self-describing: variants and fields are only ever
//! appended, and an incompatible change bumps [`crate::wire::PROTOCOL_VERSION`].

mod desired;
mod enroll;
pub mod legacy;
mod logs;
mod node;
mod status;

pub use desired::{
    DesiredContainer, DesiredInitContainer, DesiredPod, DesiredState, DesiredVolume, VolumeSource,
    WireHook, WireMount, WirePort, WireProbe, WireProbeHandler, WirePullPolicy, WireRestartPolicy,
    WireSecurity,
};
pub use enroll::{controller_key_statement, EnrollReply, EnrollRequest};
pub use logs::{LogChunk, LogRequest};
pub use node::{Heartbeat, NodeInfo, OfflineReason, Presence, PresenceState, Session};
pub use status::{
    StatusAck, StatusReport, WireContainerState, WireContainerStatus, WireEvent, WirePhase,
    WirePodStatus,
};

use serde::{Deserialize, Serialize};

/// Every message Drover sends over MQTT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Online with node info, or offline. Topic: presence.
    Presence(Presence),
    /// Liveness. Topic: heartbeat.
    Heartbeat(Heartbeat),
    /// A node's full desired state. Topic: desired.
    Desired(DesiredState),
    /// Pod statuses and events. Topic: status.
    Status(StatusReport),
    /// Stored status revisions. Topic: ack.
    Ack(StatusAck),
    /// A log request. Topic: logs/request.
    LogRequest(LogRequest),
    /// Log data. Topic: logs/data.
    LogChunk(LogChunk),
    /// A request to join the fleet. Topic: enroll/{token}/request/{node}.
    EnrollRequest(EnrollRequest),
    /// The answer to it. Topic: enroll/{token}/reply/{node}.
    EnrollReply(EnrollReply),
}

impl Message {
    /// The message's name, for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Presence(_) => "presence",
            Message::Heartbeat(_) => "heartbeat",
            Message::Desired(_) => "desired",
            Message::Status(_) => "status",
            Message::Ack(_) => "ack",
            Message::LogRequest(_) => "log request",
            Message::LogChunk(_) => "log chunk",
            Message::EnrollRequest(_) => "enroll request",
            Message::EnrollReply(_) => "enroll reply",
        }
    }
}
