//! Who may do what: pure functions of an [`Identity`] and a client id, topic or filter.
//!
//! A node is confined to the topics of its own subtree, and only to the direction it plays
//! in the protocol (`docs/protocol.md`): it publishes presence, heartbeats, status and log
//! data and subscribes to its desired state, acks and log requests. A device holding a join
//! token may only ask to enroll and hear the answer. Only the controller may use wildcards.

use drover_proto::manifest::is_dns_subdomain;
use drover_proto::topic::{parse_enroll_topic, parse_node_topic, EnrollTopic, NodeTopic};

use super::sessions::Claim;
use super::Identity;

/// Client ids of the controller start with this.
pub const CONTROLLER_CLIENT_ID_PREFIX: &str = "drover-controller";

/// The client id the agent of `node` must use.
pub fn node_client_id(node: &str) -> String {
    format!("drover-agent-{node}")
}

/// Whether `identity`'s client id is refused while held, or taken over (see
/// [`super::sessions`]): a node's is exclusive, so that two agents never run one node.
pub fn client_id_claim(identity: &Identity) -> Claim {
    match identity {
        Identity::Node(_) => Claim::Exclusive,
        Identity::Controller | Identity::Enrollment(_) => Claim::TakeOver,
    }
}

/// Whether `identity` may connect as `client_id`. Binding the client id to the identity
/// means a client-id takeover can only ever come from the same identity.
pub fn may_use_client_id(identity: &Identity, client_id: &str) -> bool {
    match identity {
        Identity::Controller => client_id.starts_with(CONTROLLER_CLIENT_ID_PREFIX),
        Identity::Node(node) => client_id == node_client_id(node),
        // Exactly its user name, as Mosquitto's dynamic security binds it too.
        Identity::Enrollment(token) => client_id == format!("drover-enroll-{token}"),
    }
}

/// Whether `identity` may publish on `topic` (a topic name, never a filter).
pub fn may_publish(identity: &Identity, topic: &str) -> bool {
    match identity {
        Identity::Controller => true,
        Identity::Node(node) => matches!(
            parse_node_topic(topic),
            Some((n, NodeTopic::Presence | NodeTopic::Heartbeat | NodeTopic::Status | NodeTopic::LogData))
                if n == node
        ),
        Identity::Enrollment(token) => matches!(
            parse_enroll_topic(topic),
            Some((t, node, EnrollTopic::Request)) if t == token && is_dns_subdomain(node)
        ),
    }
}

/// Whether a publish of `identity` on `topic` may be stored as the retained message. An
/// enrolling device could otherwise fill the broker's memory with one retained request per
/// invented node name; its retain flag is ignored instead.
pub fn may_retain(identity: &Identity) -> bool {
    !matches!(identity, Identity::Enrollment(_))
}

/// Whether `identity` may subscribe to `filter`.
pub fn may_subscribe(identity: &Identity, filter: &str) -> bool {
    if has_wildcards(filter) && *identity != Identity::Controller {
        return false;
    }
    match identity {
        Identity::Controller => true,
        Identity::Node(node) => matches!(
            parse_node_topic(filter),
            Some((n, NodeTopic::Desired | NodeTopic::Ack | NodeTopic::LogRequest)) if n == node
        ),
        Identity::Enrollment(token) => matches!(
            parse_enroll_topic(filter),
            Some((t, _, EnrollTopic::Reply)) if t == token
        ),
    }
}

/// Whether `identity` may leave a will on `topic`: a node only its own presence (the
/// broker publishes it on the node's behalf, so it must be something the node could
/// publish itself and nothing else); an enrolling device none.
pub fn may_leave_will(identity: &Identity, topic: &str) -> bool {
    match identity {
        Identity::Controller => true,
        Identity::Node(node) => {
            matches!(parse_node_topic(topic), Some((n, NodeTopic::Presence)) if n == node)
        }
        Identity::Enrollment(_) => false,
    }
}

/// Whether `s` contains an MQTT wildcard character anywhere.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: &str) -> Identity {
        Identity::Node(n.to_string())
    }

    fn enrollment(t: &str) -> Identity {
        Identity::Enrollment(t.to_string())
    }

    #[test]
    fn client_ids_are_bound_to_the_identity() {
        let cases = [
            (Identity::Controller, "drover-controller-42.1", true),
            (Identity::Controller, "drover-controller", true),
            (Identity::Controller, "drover-agent-pi", false),
            (Identity::Controller, "", false),
            (node("pi"), "drover-agent-pi", true),
            (node("pi"), "drover-agent-pi2", false),
            (node("pi"), "drover-agent-pi-1.3", false),
            (node("pi"), "drover-agent-other", false),
            (node("pi"), "drover-controller-1", false),
            (node("pi"), "", false),
            (enrollment("0a0b0c0d"), "drover-enroll-0a0b0c0d", true),
            (enrollment("0a0b0c0d"), "drover-enroll-0a0b0c0d-abc", false),
            (enrollment("0a0b0c0d"), "drover-enroll-0a0b0c0d-", false),
            (enrollment("0a0b0c0d"), "drover-enroll-0a0b0c0e-abc", false),
            (enrollment("0a0b0c0d"), "drover-enroll-0f0f0f0f-abc", false),
            (enrollment("0a0b0c0d"), "drover-agent-pi", false),
        ];
        for (identity, client_id, allowed) in cases {
            assert_eq!(
                may_use_client_id(&identity, client_id),
                allowed,
                "{identity:?} as {client_id:?}"
            );
        }
    }

    #[test]
    fn publish_table() {
        let cases = [
            (Identity::Controller, "drover/v1/nodes/pi/desired", true),
            (Identity::Controller, "anything/at/all", true),
            (node("pi"), "drover/v1/nodes/pi/presence", true),
            (node("pi"), "drover/v1/nodes/pi/heartbeat", true),
            (node("pi"), "drover/v1/nodes/pi/status", true),
            (node("pi"), "drover/v1/nodes/pi/logs/data", true),
            (node("pi"), "drover/v1/nodes/pi/desired", false),
            (node("pi"), "drover/v1/nodes/pi/ack", false),
            (node("pi"), "drover/v1/nodes/pi/logs/request", false),
            (node("pi"), "drover/v1/nodes/other/status", false),
            (node("pi"), "drover/v1/nodes/other/presence", false),
            (node("pi"), "drover/v1/nodes/pi/status/extra", false),
            (node("pi"), "drover/v1/enroll/0a0b0c0d/request/pi", false),
            (node("pi"), "other", false),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0a0b0c0d/request/pi-9",
                true,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0a0b0c0d/request/Bad_Name",
                false,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0a0b0c0d/reply/pi-9",
                false,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0f0f0f0f/request/pi-9",
                false,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/nodes/pi-9/presence",
                false,
            ),
        ];
        for (identity, topic, allowed) in cases {
            assert_eq!(
                may_publish(&identity, topic),
                allowed,
                "{identity:?} publishes {topic}"
            );
        }
    }

    #[test]
    fn subscribe_table() {
        let cases = [
            (Identity::Controller, "drover/v1/nodes/+/presence", true),
            (Identity::Controller, "#", true),
            (Identity::Controller, "drover/v1/nodes/pi/status", true),
            (node("pi"), "drover/v1/nodes/pi/desired", true),
            (node("pi"), "drover/v1/nodes/pi/ack", true),
            (node("pi"), "drover/v1/nodes/pi/logs/request", true),
            (node("pi"), "drover/v1/nodes/pi/status", false),
            (node("pi"), "drover/v1/nodes/pi/presence", false),
            (node("pi"), "drover/v1/nodes/other/desired", false),
            (node("pi"), "drover/v1/nodes/+/desired", false),
            (node("pi"), "drover/v1/nodes/pi/#", false),
            (node("pi"), "drover/v1/nodes/pi/+", false),
            (node("pi"), "#", false),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0a0b0c0d/reply/pi-9",
                true,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0a0b0c0d/reply/+",
                false,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0a0b0c0d/request/pi-9",
                false,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0f0f0f0f/reply/pi-9",
                false,
            ),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/nodes/pi-9/desired",
                false,
            ),
        ];
        for (identity, filter, allowed) in cases {
            assert_eq!(
                may_subscribe(&identity, filter),
                allowed,
                "{identity:?} subscribes {filter}"
            );
        }
    }

    #[test]
    fn will_table() {
        let cases = [
            (Identity::Controller, "drover/v1/anything", true),
            (node("pi"), "drover/v1/nodes/pi/presence", true),
            (node("pi"), "drover/v1/nodes/pi/status", false),
            (node("pi"), "drover/v1/nodes/other/presence", false),
            (
                enrollment("0a0b0c0d"),
                "drover/v1/enroll/0a0b0c0d/request/pi",
                false,
            ),
        ];
        for (identity, topic, allowed) in cases {
            assert_eq!(
                may_leave_will(&identity, topic),
                allowed,
                "{identity:?} will on {topic}"
            );
        }
    }

    #[test]
    fn only_enrollment_may_not_retain() {
        assert!(may_retain(&Identity::Controller));
        assert!(may_retain(&node("pi")));
        assert!(!may_retain(&enrollment("0a0b0c0d")));
    }
}
