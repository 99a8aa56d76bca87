//! The MQTT topic scheme.
//!
//! Everything about one node lives under `drover/v1/nodes/{node}/`, so a broker ACL of
//! `drover/v1/nodes/{node}/#` confines a device to its own subtree.

use crate::manifest::is_dns_subdomain;

/// Root of every Drover topic; the version changes only with an incompatible topic layout.
pub const ROOT: &str = "drover/v1";

/// A per-node topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeTopic {
    /// Agent → controller, retained, QoS 1: online with node info, or offline (also the
    /// last will).
    Presence,
    /// Agent → controller, QoS 0: liveness every heartbeat interval.
    Heartbeat,
    /// Controller → agent, retained, QoS 1: the node's complete desired state.
    Desired,
    /// Agent → controller, QoS 1: pod status reports and events.
    Status,
    /// Controller → agent, QoS 1: status revisions the controller has stored.
    Ack,
    /// Controller → agent, QoS 1: log requests.
    LogRequest,
    /// Agent → controller, QoS 1: log data.
    LogData,
}

impl NodeTopic {
    /// Every per-node topic.
    pub const ALL: [NodeTopic; 7] = [
        NodeTopic::Presence,
        NodeTopic::Heartbeat,
        NodeTopic::Desired,
        NodeTopic::Status,
        NodeTopic::Ack,
        NodeTopic::LogRequest,
        NodeTopic::LogData,
    ];

    /// The last topic level.
    pub fn leaf(self) -> &'static str {
        match self {
            NodeTopic::Presence => "presence",
            NodeTopic::Heartbeat => "heartbeat",
            NodeTopic::Desired => "desired",
            NodeTopic::Status => "status",
            NodeTopic::Ack => "ack",
            NodeTopic::LogRequest => "logs/request",
            NodeTopic::LogData => "logs/data",
        }
    }

    /// The topic for `node`.
    pub fn for_node(self, node: &str) -> String {
        format!("{ROOT}/nodes/{node}/{}", self.leaf())
    }

    /// The subscription filter matching this topic for every node.
    pub fn all_nodes_filter(self) -> String {
        format!("{ROOT}/nodes/+/{}", self.leaf())
    }
}

/// Splits a topic into node name and per-node topic; `None` for anything else, including
/// node names that are not valid RFC 1123 subdomains.
pub fn parse_node_topic(topic: &str) -> Option<(&str, NodeTopic)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix("/nodes/")?;
    let (node, leaf) = rest.split_once('/')?;
    if !is_dns_subdomain(node) {
        return None;
    }
    let kind = NodeTopic::ALL.into_iter().find(|t| t.leaf() == leaf)?;
    Some((node, kind))
}

/// Enrollment topics, under `drover/v1/enroll/{token}/`: an agent holding token `token`
/// may publish only its request and read only its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollTopic {
    /// Agent → controller, QoS 1: `EnrollRequest`.
    Request,
    /// Controller → agent, QoS 1: `EnrollReply`.
    Reply,
}

impl EnrollTopic {
    /// The level naming the direction.
    pub fn leaf(self) -> &'static str {
        match self {
            EnrollTopic::Request => "request",
            EnrollTopic::Reply => "reply",
        }
    }

    /// The topic for `node` enrolling with token `token`.
    pub fn for_token(self, token: &str, node: &str) -> String {
        format!("{ROOT}/enroll/{token}/{}/{node}", self.leaf())
    }

    /// The controller's subscription: every request, for every token.
    pub fn all_requests_filter() -> String {
        format!("{ROOT}/enroll/+/request/+")
    }
}

/// Splits an enrollment topic into token id, node name and kind; `None` for anything else,
/// including malformed token ids and node names.
pub fn parse_enroll_topic(topic: &str) -> Option<(&str, &str, EnrollTopic)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix("/enroll/")?;
    let mut parts = rest.split('/');
    let (Some(token), Some(leaf), Some(node), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !crate::token::is_token_id(token) || !is_dns_subdomain(node) {
        return None;
    }
    let kind = [EnrollTopic::Request, EnrollTopic::Reply]
        .into_iter()
        .find(|k| k.leaf() == leaf)?;
    Some((token, node, kind))
}

#[cfg(test)]
mod tests {
    #[test]
    fn enroll_topics_round_trip_and_malformed_ones_are_rejected() {
        for kind in [EnrollTopic::Request, EnrollTopic::Reply] {
            let topic = kind.for_token("0a1b2c3d", "pi-7");
            assert_eq!(parse_enroll_topic(&topic), Some(("0a1b2c3d", "pi-7", kind)));
        }
        for topic in [
            "drover/v1/enroll/0a1b2c3d/request",
            "drover/v1/enroll/0a1b2c3d/request/pi/x",
            "drover/v1/enroll/ZZ/request/pi",
            "drover/v1/enroll/0a1b2c3d/other/pi",
            "drover/v1/enroll/0a1b2c3d/request/Bad_Name",
        ] {
            assert_eq!(parse_enroll_topic(topic), None, "{topic}");
        }
    }

    use super::*;

    #[test]
    fn malformed_enroll_topics_are_rejected() {
        for topic in [
            "drover/v1/enroll/0a1b2c3d/request",
            "drover/v1/enroll//request/pi",
            "drover/v1/enroll/tok/other/pi",
            "drover/v1/enroll/tok/request/Bad_Name",
            "drover/v1/enroll/tok/request/pi/extra",
            "drover/v1/enroll/+/request/pi",
            "drover/v1/nodes/pi/status",
        ] {
            assert_eq!(parse_enroll_topic(topic), None, "{topic}");
        }
    }

    #[test]
    fn every_node_topic_round_trips() {
        for t in NodeTopic::ALL {
            let topic = t.for_node("pi-7");
            assert!(topic.starts_with("drover/v1/nodes/pi-7/"));
            assert_eq!(parse_node_topic(&topic), Some(("pi-7", t)));
        }
    }

    #[test]
    fn foreign_and_malformed_topics_are_rejected() {
        for topic in [
            "drover/v1/nodes/pi/unknown",
            "drover/v1/nodes/Bad_Name/status",
            "drover/v2/nodes/pi/status",
            "drover/v1/nodes/pi/status/extra",
            "drover/v1/nodes//status",
            "other",
        ] {
            assert_eq!(parse_node_topic(topic), None, "{topic}");
        }
    }
}
