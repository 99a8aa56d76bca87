//! Keeps a broker with accounts of its own in step after an outage.

use tracing::warn;

use super::Control;

impl Control {
    /// Revokes again, at every broker session, every deleted node: a revocation queued
    /// while the broker was down is lost if the controller restarts meanwhile. (Deleted
    /// names keep their last desired state as a tombstone; revoking is idempotent.)
    pub(super) fn resync_external_broker(&self) {
        if !self.security.accounts.keeps_own_accounts() {
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
                self.security.accounts.node_revoked(node);
            }
        }
    }
}
