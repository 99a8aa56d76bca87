//! What the broker must be told when who may log in changes, behind one small trait: the
//! embedded broker reads the controller's credential table itself and only needs revoked
//! connections closed; an external Mosquitto keeps accounts of its own, kept in step over
//! its dynamic-security API.

use std::time::Duration;

use drover_proto::token::JoinToken;
use tracing::warn;

use crate::broker::{BrokerHandle, Identity};
use crate::mosquitto::dynsec;
use crate::mqtt::{Outgoing, Publisher};

/// How long a revoked node's open connection stays up, so that the empty desired state
/// published just before reaches it and it stops its pods.
const REVOKE_GRACE: Duration = Duration::from_millis(300);

/// The broker's side of enrollments, revocations and join tokens.
pub trait BrokerAccounts: Send + Sync {
    /// `node` may now log in with `password`.
    fn node_enrolled(&self, node: &str, password: &str);
    /// `node` may no longer log in, and its open connection must close.
    fn node_revoked(&self, node: &str);
    /// Devices holding `token` may log in to enroll.
    fn token_added(&self, token: &JoinToken);
    /// Token `id` no longer logs in.
    fn token_removed(&self, id: &str);
    /// Whether the broker keeps accounts of its own, which can fall behind the controller's
    /// (a command lost while the broker was down): the controller then revokes deleted
    /// nodes again at every broker session.
    fn keeps_own_accounts(&self) -> bool;
}

/// The embedded broker.
pub struct EmbeddedAccounts(pub BrokerHandle);

impl BrokerAccounts for EmbeddedAccounts {
    fn node_enrolled(&self, _node: &str, _password: &str) {}

    fn node_revoked(&self, node: &str) {
        let broker = self.0.clone();
        let identity = Identity::Node(node.to_string());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(REVOKE_GRACE).await;
                    broker.disconnect(&identity);
                });
            }
            Err(_) => broker.disconnect(&identity),
        }
    }

    fn token_added(&self, _token: &JoinToken) {}

    fn token_removed(&self, _id: &str) {}

    fn keeps_own_accounts(&self) -> bool {
        false
    }
}

/// A Mosquitto with the dynamic-security plugin: commands on `$CONTROL/dynamic-security/v1`.
pub struct MosquittoAccounts(pub Publisher);

impl MosquittoAccounts {
    fn send(&self, what: &str, command: Result<Vec<u8>, dynsec::DynsecError>) {
        match command {
            Ok(payload) => self.0.send(Outgoing {
                topic: dynsec::COMMAND_TOPIC.to_string(),
                payload,
                retain: false,
            }),
            Err(e) => warn!(error = %e, what, "cannot build a dynamic-security command"),
        }
    }
}

impl BrokerAccounts for MosquittoAccounts {
    fn node_enrolled(&self, node: &str, password: &str) {
        self.send("enroll node", dynsec::enroll_node(node, password));
    }

    fn node_revoked(&self, node: &str) {
        self.send("revoke node", dynsec::revoke_node(node));
    }

    fn token_added(&self, token: &JoinToken) {
        self.send(
            "add token",
            dynsec::add_token(&token.id, &token.mqtt_password()),
        );
    }

    fn token_removed(&self, id: &str) {
        self.send("remove token", dynsec::remove_token(id));
    }

    fn keeps_own_accounts(&self) -> bool {
        true
    }
}

/// A broker whose accounts the operator manages (or none, in tests).
pub struct ManagedElsewhere;

impl BrokerAccounts for ManagedElsewhere {
    fn node_enrolled(&self, _node: &str, _password: &str) {}
    fn node_revoked(&self, _node: &str) {}
    fn token_added(&self, _token: &JoinToken) {}
    fn token_removed(&self, _id: &str) {}
    fn keeps_own_accounts(&self) -> bool {
        false
    }
}
