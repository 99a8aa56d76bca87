//! Keeps an external Mosquitto's dynamic-security state in step with enrollments, join
//! tokens and revocations (the embedded broker reads the credential table directly).

use drover_proto::token::JoinToken;
use tracing::warn;

use super::Control;
use crate::mosquitto::dynsec;
use crate::mqtt::Outgoing;

impl Control {
    fn dynsec(&self, what: &str, command: Result<Vec<u8>, dynsec::DynsecError>) {
        if !self.security.dynsec {
            return;
        }
        match command {
            Ok(payload) => self.publisher.send(Outgoing {
                topic: dynsec::COMMAND_TOPIC.to_string(),
                payload,
                retain: false,
            }),
            Err(e) => warn!(error = %e, what, "cannot build a dynamic-security command"),
        }
    }

    /// Revokes again, at every broker session, every deleted node: a revocation queued
    /// while the broker was down is lost if the controller restarts meanwhile. (Deleted
    /// names keep their last desired state as a tombstone; revoking is idempotent.)
    pub(super) fn resync_external_broker(&self) {
        if !self.security.dynsec {
            return;
        }
        let (desired, credentials) = match (self.store.desired_states(), self.store.credentials()) {
            (Ok(desired), Ok(credentials)) => (desired, credentials),
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "cannot read the store to resync the broker's accounts");
                return;
            }
        };
        let enrolled: std::collections::HashSet<&str> =
            credentials.iter().map(|c| c.node.as_str()).collect();
        for (node, _, _) in &desired {
            if !enrolled.contains(node.as_str()) {
                self.mosquitto_revoked(node);
            }
        }
    }

    pub(super) fn mosquitto_enrolled(&self, node: &str, password: &str) {
        self.dynsec("enroll node", dynsec::enroll_node(node, password));
    }

    pub(super) fn mosquitto_revoked(&self, node: &str) {
        self.dynsec("revoke node", dynsec::revoke_node(node));
    }

    pub(super) fn mosquitto_token_added(&self, token: &JoinToken) {
        self.dynsec(
            "add token",
            dynsec::add_token(&token.id, &token.mqtt_password()),
        );
    }

    pub(super) fn mosquitto_token_removed(&self, id: &str) {
        self.dynsec("remove token", dynsec::remove_token(id));
    }
}
