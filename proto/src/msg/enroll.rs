//! Enrollment: an agent holding a join token asks for admission; the controller answers.

use serde::{Deserialize, Serialize};

use crate::keys::PublicKey;

/// An agent's request to join. Topic: enroll/{token}/request/{node}. Sealed with the key it
/// registers, which proves the agent holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The node name asked for.
    pub node: String,
    /// The node's key: everything the node publishes from now on is signed with it.
    pub public_key: PublicKey,
    /// The MQTT password the node will log in with (chosen by the agent, random).
    pub password: String,
    /// HMAC over node, key and password under the token's secret
    /// ([`crate::token::JoinToken::proof`]).
    pub token_proof: Vec<u8>,
}

/// The controller's answer. Topic: enroll/{token}/reply/{node}. Sealed with the controller's
/// key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollReply {
    /// Admitted: the node's credentials are in place.
    Accepted {
        /// The key every desired state is signed with.
        controller_key: PublicKey,
        /// The CA's ECDSA P-256 signature (ASN.1 DER) of
        /// [`controller_key_statement`] for this key: ties the key to the CA the token names.
        attestation: Vec<u8>,
        /// The CA certificate (DER); its SHA-256 is the token's fingerprint.
        ca_der: Vec<u8>,
        /// The key that was admitted: an answer meant for another request (two devices
        /// asking for one name at once, or a replay) is not taken for one's own.
        node_key: PublicKey,
        /// Every desired state published so far has a lower generation: the agent refuses
        /// anything below it (a snapshot of an earlier holder of the name, replayed).
        generation_floor: u64,
    },
    /// Refused, and why (shown to the operator).
    Refused {
        /// Human-readable reason.
        reason: String,
    },
}

/// The bytes the CA signs to vouch for the controller's key.
pub fn controller_key_statement(key: &PublicKey) -> Vec<u8> {
    let mut statement = b"drover controller key\0".to_vec();
    statement.extend_from_slice(&key.0);
    statement
}
