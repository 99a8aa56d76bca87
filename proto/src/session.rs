//! The MQTT session of an agent and of the controller, without I/O: what to subscribe, what
//! to send when, and what an incoming message means once its seal is checked. A thin
//! adapter around an MQTT client carries out what these return; everything here is tested
//! without sockets.

use crate::keys::{PublicKey, SigningKey};
use crate::msg::{
    DesiredState, EnrollRequest, Heartbeat, LogChunk, LogRequest, NodeInfo, OfflineReason,
    Presence, PresenceState, Session, StatusAck, StatusReport,
};
use crate::topic::{parse_enroll_topic, parse_node_topic, EnrollTopic, NodeTopic};
use crate::wire::{open, open_self_signed, seal, DecodeError, EncodeError};
use crate::Message;

/// MQTT delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Fire and forget.
    AtMostOnce,
    /// Acknowledged, may arrive twice.
    AtLeastOnce,
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Topic.
    pub topic: String,
    /// Sealed payload; empty with `retain` clears a retained message.
    pub payload: Vec<u8>,
    /// QoS.
    pub qos: Qos,
    /// Retain flag.
    pub retain: bool,
}

/// Why an incoming message was not used. Each is counted and logged by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Not a topic of this session.
    Topic,
    /// Undecodable or out of bounds.
    Decode(DecodeError),
    /// Unsigned, or signed by another key.
    Signature,
    /// A message type that does not belong on its topic, or names another node.
    Mismatch,
    /// From a node without credentials.
    UnknownNode,
    /// A desired state older than the one already applied: a stale retained message, or
    /// a replay.
    Stale,
}

impl Dropped {
    /// A stable name for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Dropped::Topic => "topic",
            Dropped::Decode(_) => "decode",
            Dropped::Signature => "signature",
            Dropped::Mismatch => "mismatch",
            Dropped::UnknownNode => "unknown_node",
            Dropped::Stale => "stale",
        }
    }
}

fn opened(topic: &str, payload: &[u8], key: &PublicKey) -> Result<Message, Dropped> {
    open(topic, payload, key).map_err(|e| match e {
        DecodeError::BadSignature => Dropped::Signature,
        other => Dropped::Decode(other),
    })
}

/// What an agent received, verified.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentReceived {
    /// The node's desired state, signed by the controller for this node, and not older
    /// than the last one accepted.
    Desired(DesiredState),
    /// Stored status revisions.
    Ack(StatusAck),
    /// A log request.
    LogRequest(LogRequest),
    /// The retained desired state was cleared (the node was deleted).
    Cleared,
}

/// An agent's session with the broker: one per agent start, across reconnections.
#[derive(Debug)]
pub struct AgentSession {
    node: String,
    key: SigningKey,
    controller: PublicKey,
    session: Session,
    sequence: u64,
    connected: bool,
    /// Generation of the newest desired state accepted (or stored before this start).
    applied: u64,
}

impl AgentSession {
    /// A session for `node`, signing with `key`, trusting `controller`; `agent_start` orders
    /// this start after every earlier one.
    pub fn new(
        node: &str,
        key: SigningKey,
        controller: PublicKey,
        agent_start: u64,
    ) -> AgentSession {
        AgentSession {
            node: node.to_string(),
            key,
            controller,
            session: Session {
                agent_start,
                connection: 1,
            },
            sequence: 0,
            connected: false,
            applied: 0,
        }
    }

    /// The same session, refusing desired states older than `generation` (the one the
    /// agent stored: a restart must not forget it).
    pub fn with_applied_generation(mut self, generation: u64) -> AgentSession {
        self.applied = generation;
        self
    }

    /// The client id, bound to the node's identity by the broker: a connection with it
    /// replaces this node's older one, and no other node may use it.
    pub fn client_id(&self) -> String {
        format!("drover-agent-{}", self.node)
    }

    /// The current session numbers.
    pub fn session(&self) -> Session {
        self.session
    }

    /// Whether the broker connection is up.
    pub fn connected(&self) -> bool {
        self.connected
    }

    fn sealed(&self, kind: NodeTopic, message: &Message) -> Result<Vec<u8>, EncodeError> {
        seal(&kind.for_node(&self.node), message, &self.key)
    }

    fn presence(&self, state: PresenceState) -> Result<Publish, EncodeError> {
        let message = Message::Presence(Presence {
            session: self.session,
            state,
        });
        Ok(Publish {
            topic: NodeTopic::Presence.for_node(&self.node),
            payload: self.sealed(NodeTopic::Presence, &message)?,
            qos: Qos::AtLeastOnce,
            retain: true,
        })
    }

    /// The last will for the next connection: offline, for the session it will have.
    pub fn will(&self) -> Result<Publish, EncodeError> {
        self.presence(PresenceState::Offline(OfflineReason::ConnectionLost))
    }

    /// The broker accepted the connection: subscribe to the node's own topics, then say it
    /// is online.
    pub fn on_connected(&mut self, info: &NodeInfo) -> Result<(Vec<String>, Publish), EncodeError> {
        self.connected = true;
        let subscriptions = [NodeTopic::Desired, NodeTopic::Ack, NodeTopic::LogRequest]
            .into_iter()
            .map(|t| t.for_node(&self.node))
            .collect();
        Ok((subscriptions, self.online(info)?))
    }

    /// Online, with the node's description (also when it changes while connected).
    pub fn online(&self, info: &NodeInfo) -> Result<Publish, EncodeError> {
        self.presence(PresenceState::Online(Box::new(info.clone())))
    }

    /// The connection ended: the next one is a new session, with a new will.
    pub fn on_connection_lost(&mut self) {
        self.connected = false;
        self.session.connection += 1;
    }

    /// The next heartbeat, while connected.
    pub fn heartbeat(&mut self) -> Result<Option<Publish>, EncodeError> {
        if !self.connected {
            return Ok(None);
        }
        self.sequence += 1;
        let message = Message::Heartbeat(Heartbeat {
            session: self.session,
            sequence: self.sequence,
        });
        Ok(Some(Publish {
            topic: NodeTopic::Heartbeat.for_node(&self.node),
            payload: self.sealed(NodeTopic::Heartbeat, &message)?,
            qos: Qos::AtMostOnce,
            retain: false,
        }))
    }

    /// A status report.
    pub fn status(&self, report: StatusReport) -> Result<Publish, EncodeError> {
        Ok(Publish {
            topic: NodeTopic::Status.for_node(&self.node),
            payload: self.sealed(NodeTopic::Status, &Message::Status(report))?,
            qos: Qos::AtLeastOnce,
            retain: false,
        })
    }

    /// Log data.
    pub fn log(&self, chunk: LogChunk) -> Result<Publish, EncodeError> {
        Ok(Publish {
            topic: NodeTopic::LogData.for_node(&self.node),
            payload: self.sealed(NodeTopic::LogData, &Message::LogChunk(chunk))?,
            qos: Qos::AtLeastOnce,
            retain: false,
        })
    }

    /// Offline on a clean shutdown (retained), while connected.
    pub fn shutdown(&self) -> Result<Option<Publish>, EncodeError> {
        if !self.connected {
            return Ok(None);
        }
        self.presence(PresenceState::Offline(OfflineReason::Shutdown))
            .map(Some)
    }

    /// Checks and interprets a message from the broker.
    pub fn receive(&mut self, topic: &str, payload: &[u8]) -> Result<AgentReceived, Dropped> {
        let kind = match parse_node_topic(topic) {
            Some((node, kind)) if node == self.node => kind,
            _ => return Err(Dropped::Topic),
        };
        if payload.is_empty() {
            return match kind {
                NodeTopic::Desired => Ok(AgentReceived::Cleared),
                _ => Err(Dropped::Mismatch),
            };
        }
        match (kind, opened(topic, payload, &self.controller)?) {
            (NodeTopic::Desired, Message::Desired(d)) if d.generation < self.applied => {
                Err(Dropped::Stale)
            }
            (NodeTopic::Desired, Message::Desired(d)) => {
                self.applied = d.generation;
                Ok(AgentReceived::Desired(d))
            }
            (NodeTopic::Ack, Message::Ack(a)) => Ok(AgentReceived::Ack(a)),
            (NodeTopic::LogRequest, Message::LogRequest(r)) => Ok(AgentReceived::LogRequest(r)),
            _ => Err(Dropped::Mismatch),
        }
    }
}

/// What the controller received, verified.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerReceived {
    /// A node's message, signed with that node's key, on a topic where it belongs.
    Node {
        /// The node.
        node: String,
        /// The message.
        message: Message,
    },
    /// A request to enroll, sealed with the key it carries (its token is not checked yet).
    Enroll {
        /// The token id from the topic.
        token: String,
        /// The request (its node equals the topic's).
        request: EnrollRequest,
    },
    /// A node's retained desired state was cleared (by whom is not known).
    DesiredCleared {
        /// The node.
        node: String,
    },
    /// A desired state on a node's topic: `ours` when it carries the controller's seal.
    Desired {
        /// The node.
        node: String,
        /// The state, if the controller signed it.
        ours: Option<DesiredState>,
    },
}

/// The controller's session: signs what it publishes, checks what nodes send.
#[derive(Debug)]
pub struct ControllerSession {
    key: SigningKey,
}

impl ControllerSession {
    /// A session signing with `key`.
    pub fn new(key: SigningKey) -> ControllerSession {
        ControllerSession { key }
    }

    /// The controller's public key.
    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// What the controller subscribes to after every connection. Desired states are watched
    /// too: one the controller did not publish is replaced by its own.
    pub fn subscriptions() -> Vec<String> {
        let mut filters: Vec<String> = [
            NodeTopic::Presence,
            NodeTopic::Heartbeat,
            NodeTopic::Status,
            NodeTopic::LogData,
            NodeTopic::Desired,
        ]
        .into_iter()
        .map(NodeTopic::all_nodes_filter)
        .collect();
        filters.push(EnrollTopic::all_requests_filter());
        filters
    }

    /// Seals `message` for `topic`.
    pub fn seal(&self, topic: &str, message: &Message) -> Result<Vec<u8>, EncodeError> {
        seal(topic, message, &self.key)
    }

    /// A sealed message for a node's topic.
    pub fn to_node(
        &self,
        node: &str,
        kind: NodeTopic,
        message: &Message,
        retain: bool,
    ) -> Result<Publish, EncodeError> {
        let topic = kind.for_node(node);
        Ok(Publish {
            payload: self.seal(&topic, message)?,
            topic,
            qos: Qos::AtLeastOnce,
            retain,
        })
    }

    /// Checks and interprets a message; `node_key` gives the key a node registered.
    pub fn receive(
        &self,
        topic: &str,
        payload: &[u8],
        node_key: impl Fn(&str) -> Option<PublicKey>,
    ) -> Result<Option<ControllerReceived>, Dropped> {
        if let Some((token, node, kind)) = parse_enroll_topic(topic) {
            if kind != EnrollTopic::Request {
                // The controller's own replies, if it reads them.
                return Ok(None);
            }
            return match open_self_signed(topic, payload) {
                Ok(Message::EnrollRequest(request)) if request.node == node => {
                    Ok(Some(ControllerReceived::Enroll {
                        token: token.to_string(),
                        request,
                    }))
                }
                Ok(_) => Err(Dropped::Mismatch),
                Err(DecodeError::BadSignature) => Err(Dropped::Signature),
                Err(e) => Err(Dropped::Decode(e)),
            };
        }
        let Some((node, kind)) = parse_node_topic(topic) else {
            return Err(Dropped::Topic);
        };
        if payload.is_empty() {
            return Ok(
                (kind == NodeTopic::Desired).then(|| ControllerReceived::DesiredCleared {
                    node: node.to_string(),
                }),
            );
        }
        if kind == NodeTopic::Desired {
            let ours = match open(topic, payload, &self.key.public()) {
                Ok(Message::Desired(d)) => Some(d),
                _ => None,
            };
            return Ok(Some(ControllerReceived::Desired {
                node: node.to_string(),
                ours,
            }));
        }
        if !matches!(
            kind,
            NodeTopic::Presence | NodeTopic::Heartbeat | NodeTopic::Status | NodeTopic::LogData
        ) {
            return Ok(None);
        }
        let key = node_key(node).ok_or(Dropped::UnknownNode)?;
        let message = opened(topic, payload, &key)?;
        let fits = match (&message, kind) {
            (Message::Presence(p), NodeTopic::Presence) => match &p.state {
                PresenceState::Online(info) => info.name == node,
                PresenceState::Offline(_) => true,
            },
            (Message::Heartbeat(_), NodeTopic::Heartbeat)
            | (Message::Status(_), NodeTopic::Status)
            | (Message::LogChunk(_), NodeTopic::LogData) => true,
            _ => false,
        };
        if !fits {
            return Err(Dropped::Mismatch);
        }
        Ok(Some(ControllerReceived::Node {
            node: node.to_string(),
            message,
        }))
    }
}

#[cfg(test)]
mod tests;
