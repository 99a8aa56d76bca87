//! Running Drover on an external Mosquitto (2.0) with its dynamic-security plugin.
//!
//! `config` renders the files Mosquitto starts from; `dynsec` builds the commands the
//! controller publishes on `$CONTROL/dynamic-security/v1` to keep the broker's clients and
//! roles in step with enrolled nodes and join tokens, and parses the broker's replies;
//! `acl` says which topics each kind of client may use.
//!
//! Mosquitto 2.0.11's dynamic-security plugin does not substitute `%u`/`%c` in role ACL
//! topics (a topic `drover/v1/nodes/%u/#` only ever matches the literal `%u`), so every
//! node and every join token gets a role of its own with its exact topics.

pub mod acl;
pub mod config;
pub mod dynsec;

use drover_proto::manifest::is_dns_subdomain;
use thiserror::Error;

/// The controller's MQTT username and dynamic-security role.
pub const CONTROLLER_USERNAME: &str = "drover-controller";

/// Usernames of enrolling agents start with this, followed by the token id.
pub const ENROLL_PREFIX: &str = "drover-enroll-";

/// Role names of nodes start with this, followed by the node name.
pub const NODE_ROLE_PREFIX: &str = "drover-node-";

/// A name that cannot become a broker identity.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Node names become topic levels and usernames; RFC 1123 keeps `+`, `#` and `/` out.
    #[error("node name {0:?} is not an RFC 1123 subdomain")]
    InvalidNode(String),
    /// The node's username would be the controller's or an enrolling agent's.
    #[error("node name {0:?} is reserved for Drover's own broker clients (drover-controller, drover-enroll-*)")]
    ReservedNode(String),
    /// Token ids become topic levels and usernames.
    #[error("join token id {0:?} must be 1 to 63 characters of a-z, A-Z, 0-9, '-' or '_'")]
    InvalidToken(String),
}

/// The node's MQTT username (its name) once it is known to be safe as one.
pub fn node_username(node: &str) -> Result<&str, NameError> {
    if !is_dns_subdomain(node) {
        return Err(NameError::InvalidNode(node.to_owned()));
    }
    if node == CONTROLLER_USERNAME || node.starts_with(ENROLL_PREFIX) {
        return Err(NameError::ReservedNode(node.to_owned()));
    }
    Ok(node)
}

/// The only client id a node may connect with.
pub fn node_client_id(node: &str) -> String {
    format!("drover-agent-{node}")
}

/// The dynamic-security role holding a node's topics.
pub fn node_role(node: &str) -> String {
    format!("{NODE_ROLE_PREFIX}{node}")
}

/// The username (and role name) of agents enrolling with token `id`, once `id` is known to
/// be safe as a topic level.
pub fn enroll_username(id: &str) -> Result<String, NameError> {
    let valid = (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(NameError::InvalidToken(id.to_owned()));
    }
    Ok(format!("{ENROLL_PREFIX}{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_that_would_impersonate_drover_clients_are_refused() {
        for node in ["drover-controller", "drover-enroll-t1"] {
            assert_eq!(
                node_username(node),
                Err(NameError::ReservedNode(node.into()))
            );
        }
        assert_eq!(node_username("pi-7"), Ok("pi-7"));
    }

    #[test]
    fn node_names_with_topic_wildcards_are_refused() {
        for node in ["a/b", "+", "#", "", "Pi"] {
            assert_eq!(
                node_username(node),
                Err(NameError::InvalidNode(node.into()))
            );
        }
    }

    #[test]
    fn token_ids_must_be_a_single_plain_topic_level() {
        for id in ["", "a/b", "+", "#", "a b", &"x".repeat(64)] {
            assert!(enroll_username(id).is_err(), "{id:?}");
        }
        assert_eq!(
            enroll_username("Tok_1-a").as_deref(),
            Ok("drover-enroll-Tok_1-a")
        );
    }
}
