//! Who may talk to the broker, shared by the control loop (which changes it on enrollment,
//! token changes and node deletion) and the embedded broker and MQTT adapter (which read it
//! on every connection and message).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use drover_proto::keys::{constant_time_eq, sha256, PublicKey};

use crate::broker::{Authenticator, Identity};

/// The MQTT user name of the controller.
pub const CONTROLLER_USER: &str = "drover-controller";

/// A node's credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCredential {
    /// The key everything the node publishes is signed with.
    pub public_key: PublicKey,
    /// SHA-256 of its MQTT password (a random secret, so no slow hash is needed).
    pub password_hash: [u8; 32],
}

#[derive(Debug, Default)]
struct Table {
    controller_password_hash: [u8; 32],
    nodes: HashMap<String, NodeCredential>,
    tokens: HashMap<String, [u8; 32]>,
}

/// The shared credential table.
#[derive(Debug, Clone, Default)]
pub struct Credentials(Arc<RwLock<Table>>);

impl Credentials {
    /// A table where the controller logs in with `controller_password`.
    pub fn new(controller_password: &str) -> Credentials {
        let table = Table {
            controller_password_hash: sha256(controller_password.as_bytes()),
            ..Default::default()
        };
        Credentials(Arc::new(RwLock::new(table)))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        // A panic while holding the lock is impossible here (no code that can panic runs
        // under it), so poisoning is recovered from rather than propagated.
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits `node` with this credential.
    pub fn set_node(&self, node: &str, credential: NodeCredential) {
        self.write().nodes.insert(node.to_string(), credential);
    }

    /// Revokes `node`'s credential.
    pub fn remove_node(&self, node: &str) {
        self.write().nodes.remove(node);
    }

    /// The key `node` signs with, if it is enrolled.
    pub fn node_key(&self, node: &str) -> Option<PublicKey> {
        self.read().nodes.get(node).map(|c| c.public_key)
    }

    /// Lets clients holding token `id` connect to enroll (`login_hash`: the hash of the
    /// token's broker password).
    pub fn set_token(&self, id: &str, login_hash: [u8; 32]) {
        self.write().tokens.insert(id.to_string(), login_hash);
    }

    /// Forgets token `id`.
    pub fn remove_token(&self, id: &str) {
        self.write().tokens.remove(id);
    }
}

impl Authenticator for Credentials {
    fn authenticate(&self, username: &str, password: &[u8]) -> Option<Identity> {
        let table = self.read();
        let hash = sha256(password);
        if username == CONTROLLER_USER {
            return constant_time_eq(&hash, &table.controller_password_hash)
                .then_some(Identity::Controller);
        }
        if let Some(token) = username.strip_prefix("drover-enroll-") {
            let stored = table.tokens.get(token)?;
            return constant_time_eq(&hash, stored)
                .then(|| Identity::Enrollment(token.to_string()));
        }
        let node = table.nodes.get(username)?;
        constant_time_eq(&hash, &node.password_hash).then(|| Identity::Node(username.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::token::login_hash;

    #[test]
    fn each_kind_of_client_authenticates_with_its_own_secret() {
        let credentials = Credentials::new("controller-pw");
        credentials.set_node(
            "pi",
            NodeCredential {
                public_key: PublicKey([1; 32]),
                password_hash: sha256(b"node-pw"),
            },
        );
        credentials.set_token("0a0b0c0d", login_hash("tok"));
        let auth = |u: &str, p: &str| credentials.authenticate(u, p.as_bytes());
        assert_eq!(
            auth(CONTROLLER_USER, "controller-pw"),
            Some(Identity::Controller)
        );
        assert_eq!(auth(CONTROLLER_USER, "node-pw"), None);
        assert_eq!(auth("pi", "node-pw"), Some(Identity::Node("pi".into())));
        assert_eq!(auth("pi", "controller-pw"), None);
        assert_eq!(auth("other", "node-pw"), None);
        assert_eq!(
            auth("drover-enroll-0a0b0c0d", "tok"),
            Some(Identity::Enrollment("0a0b0c0d".into()))
        );
        assert_eq!(auth("drover-enroll-0a0b0c0d", "wrong"), None);
        assert_eq!(auth("", ""), None);
        credentials.remove_node("pi");
        assert_eq!(auth("pi", "node-pw"), None, "revoked");
        credentials.remove_token("0a0b0c0d");
        assert_eq!(auth("drover-enroll-0a0b0c0d", "tok"), None, "deleted token");
    }
}
