//! What each kind of Drover client may do on the broker, as dynamic-security ACL entries.
//!
//! The broker's default access denies everything (see `config`), so these lists are the
//! whole of what a client may do. In Mosquitto 2.0.11 a denied subscription gets the SUBACK
//! failure code 0x80, and a denied publish is dropped (acknowledged at QoS 1, delivered to
//! nobody).

use drover_proto::topic::{NodeTopic, ROOT};
use serde::Serialize;

/// One dynamic-security ACL entry, in the JSON shape of `createRole`'s `acls` and of the
/// plugin's configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acl {
    /// `publishClientSend`, `publishClientReceive`, `subscribeLiteral`, ...
    pub acltype: &'static str,
    /// A topic or filter; `+`/`#` in it are wildcards for the publish and `*Pattern` types.
    pub topic: String,
    /// Allow or deny.
    pub allow: bool,
}

fn allow(acltype: &'static str, topic: impl Into<String>) -> Acl {
    Acl {
        acltype,
        topic: topic.into(),
        allow: true,
    }
}

fn deny(acltype: &'static str, topic: impl Into<String>) -> Acl {
    Acl {
        allow: false,
        ..allow(acltype, topic)
    }
}

/// The topics a node publishes; the node's last will goes to `presence` and is checked too.
const NODE_PUBLISHES: [NodeTopic; 4] = [
    NodeTopic::Presence,
    NodeTopic::Heartbeat,
    NodeTopic::Status,
    NodeTopic::LogData,
];

/// The topics a node subscribes to, each exactly as the agent does.
const NODE_RECEIVES: [NodeTopic; 3] = [NodeTopic::Desired, NodeTopic::Ack, NodeTopic::LogRequest];

/// A node's role: publish its own agent → controller topics, subscribe to and receive its
/// own controller → agent topics, nothing else.
pub fn node_acls(node: &str) -> Vec<Acl> {
    let mut acls: Vec<Acl> = NODE_PUBLISHES
        .iter()
        .map(|t| allow("publishClientSend", t.for_node(node)))
        .collect();
    for t in NODE_RECEIVES {
        let topic = t.for_node(node);
        // Literal, not pattern: a node must not subscribe with wildcards even to a filter
        // that would match only its own topics.
        acls.push(allow("subscribeLiteral", topic.clone()));
        acls.push(allow("publishClientReceive", topic.clone()));
        acls.push(allow("unsubscribeLiteral", topic));
    }
    acls
}

/// The request topics an enrolling agent with token `id` publishes on (one per node name
/// it asks for).
pub fn enroll_request_filter(id: &str) -> String {
    format!("{ROOT}/enroll/{id}/request/+")
}

/// The reply topics of token `id`.
pub fn enroll_reply_filter(id: &str) -> String {
    format!("{ROOT}/enroll/{id}/reply/+")
}

/// An enrolling agent's role: publish requests under its token, subscribe to a reply under
/// its token. The node name is the agent's choice, so it cannot be pinned here; the
/// `subscribePattern` entry lets it subscribe to `reply/{node}` for any one node.
/// Mosquitto 2.0.11 also lets that pattern grant the subscription `reply/+` itself (the
/// ACL's `+` matches the filter's `+`), so `reply/+` is denied by name; a literal entry
/// wins over a pattern of the same priority. The pattern already refuses `reply/#`; it is
/// denied by name as well so the confinement does not rest on that.
pub fn enroll_acls(id: &str) -> Vec<Acl> {
    let reply_level = format!("{ROOT}/enroll/{id}/reply");
    vec![
        deny("subscribeLiteral", format!("{reply_level}/+")),
        deny("subscribeLiteral", format!("{reply_level}/#")),
        allow("publishClientSend", enroll_request_filter(id)),
        allow("subscribePattern", enroll_reply_filter(id)),
        allow("publishClientReceive", enroll_reply_filter(id)),
        allow("unsubscribePattern", enroll_reply_filter(id)),
    ]
}

/// The controller's role: every Drover topic and the dynamic-security API. `#` does not
/// match topics starting with `$`, so `$CONTROL` is granted by name.
pub fn controller_acls() -> Vec<Acl> {
    let mut acls = Vec::new();
    for topic in ["#", "$CONTROL/dynamic-security/#"] {
        for acltype in [
            "publishClientSend",
            "publishClientReceive",
            "subscribePattern",
            "unsubscribePattern",
        ] {
            acls.push(allow(acltype, topic));
        }
    }
    acls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(acls: &[Acl], acltype: &str) -> Vec<String> {
        acls.iter()
            .filter(|a| a.acltype == acltype && a.allow)
            .map(|a| a.topic.clone())
            .collect()
    }

    #[test]
    fn a_node_publishes_only_its_own_agent_topics() {
        assert_eq!(
            topics(&node_acls("pi"), "publishClientSend"),
            [
                "drover/v1/nodes/pi/presence",
                "drover/v1/nodes/pi/heartbeat",
                "drover/v1/nodes/pi/status",
                "drover/v1/nodes/pi/logs/data",
            ]
        );
    }

    #[test]
    fn a_node_subscribes_and_receives_only_its_own_controller_topics() {
        let own = [
            "drover/v1/nodes/pi/desired",
            "drover/v1/nodes/pi/ack",
            "drover/v1/nodes/pi/logs/request",
        ];
        let acls = node_acls("pi");
        assert_eq!(topics(&acls, "subscribeLiteral"), own);
        assert_eq!(topics(&acls, "publishClientReceive"), own);
        assert_eq!(topics(&acls, "unsubscribeLiteral"), own);
        assert!(topics(&acls, "subscribePattern").is_empty());
    }

    #[test]
    fn an_enrolling_agent_is_confined_to_its_token() {
        let acls = enroll_acls("t1");
        assert_eq!(
            topics(&acls, "publishClientSend"),
            ["drover/v1/enroll/t1/request/+"]
        );
        assert_eq!(
            topics(&acls, "subscribePattern"),
            ["drover/v1/enroll/t1/reply/+"]
        );
        assert_eq!(
            topics(&acls, "publishClientReceive"),
            ["drover/v1/enroll/t1/reply/+"]
        );
        let denied: Vec<&str> = acls
            .iter()
            .filter(|a| !a.allow)
            .map(|a| a.topic.as_str())
            .collect();
        assert_eq!(
            denied,
            ["drover/v1/enroll/t1/reply/+", "drover/v1/enroll/t1/reply/#"]
        );
    }

    #[test]
    fn the_controller_may_use_drover_topics_and_the_dynsec_api() {
        let acls = controller_acls();
        for acltype in [
            "publishClientSend",
            "publishClientReceive",
            "subscribePattern",
        ] {
            assert_eq!(
                topics(&acls, acltype),
                ["#", "$CONTROL/dynamic-security/#"],
                "{acltype}"
            );
        }
    }
}
