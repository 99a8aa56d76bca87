//! Wire messages. Postcard is not self-describing: variants and fields are only ever
//! appended, and an incompatible change bumps [`crate::wire::PROTOCOL_VERSION`].

mod desired;
mod node;

pub use desired::{DesiredContainer, DesiredPod, DesiredState, WireRestartPolicy};
pub use node::{Heartbeat, NodeInfo, OfflineReason, Presence, PresenceState, Session};

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
}

impl Message {
    /// The message's name, for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Presence(_) => "presence",
            Message::Heartbeat(_) => "heartbeat",
            Message::Desired(_) => "desired",
        }
    }
}
