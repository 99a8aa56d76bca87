//! Join tokens: what an operator hands a device so that it may enroll.
//!
//! `drv1.<ca>.<id>.<secret>`: `ca` is the SHA-256 of the controller's CA certificate (64 hex
//! digits), so the agent verifies the broker it enrolls through before it sends anything
//! (no trust on first use); `id` (8 hex digits) names the token; `secret` (32 hex digits)
//! proves possession.
//!
//! Two keys are derived from the secret, so that no single party learns enough to act as the
//! holder: the *login* password the agent gives the broker (the broker sees it, and the
//! controller keeps only its hash), and the *proof key* that authenticates the enrollment
//! request end to end (the controller keeps it; the broker never sees it). A broker that
//! logs every password still cannot enroll a node of its own.

use std::fmt;
use std::str::FromStr;

use crate::keys::{constant_time_eq, hmac_sha256, sha256};

const PREFIX: &str = "drv1";

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// SHA-256 of the CA certificate (DER) the broker's certificate must chain to.
    pub ca_fingerprint: [u8; 32],
    /// The token's public name.
    pub id: String,
    /// The secret part.
    pub secret: String,
}

/// Why text is not a join token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Wrong shape.
    #[error("not a Drover join token (expected drv1.<64 hex>.<8 hex>.<32 hex>, as printed by `drover token create`)")]
    Malformed,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `id` has the shape of a token id (8 lowercase hex digits).
pub fn is_token_id(id: &str) -> bool {
    is_lower_hex(id, 8)
}

impl JoinToken {
    /// A new token for the CA with this fingerprint, from 20 random bytes.
    pub fn from_random(ca_fingerprint: [u8; 32], random: [u8; 20]) -> JoinToken {
        JoinToken {
            ca_fingerprint,
            id: hex::encode(&random[..4]),
            secret: hex::encode(&random[4..]),
        }
    }

    /// The MQTT user name an enrolling agent connects as; also its client id (the broker
    /// binds the two, so a token holder cannot take over another client's id).
    pub fn mqtt_username(&self) -> String {
        format!("drover-enroll-{}", self.id)
    }

    /// The password an enrolling agent gives the broker.
    pub fn mqtt_password(&self) -> String {
        hex::encode(hmac_sha256(self.secret.as_bytes(), b"drover token login"))
    }

    /// The key of the enrollment proof; the controller stores it, the broker never sees it.
    pub fn proof_key(&self) -> [u8; 32] {
        hmac_sha256(self.secret.as_bytes(), b"drover token proof")
    }

    /// Proof that an enrollment request comes from a holder of the token: an HMAC over what
    /// the request asks for, keyed by the proof key.
    pub fn proof(&self, node: &str, public_key: &[u8; 32], password: &str) -> [u8; 32] {
        proof(&self.proof_key(), node, public_key, password)
    }

    /// What the controller keeps of the broker login: its hash.
    pub fn login_hash(&self) -> [u8; 32] {
        login_hash(&self.mqtt_password())
    }
}

/// The stored hash of a token's broker login password.
pub fn login_hash(password: &str) -> [u8; 32] {
    sha256(password.as_bytes())
}

fn proof(proof_key: &[u8; 32], node: &str, public_key: &[u8; 32], password: &str) -> [u8; 32] {
    let mut message = Vec::with_capacity(node.len() + password.len() + 48);
    message.extend_from_slice(b"drover-enroll\0");
    message.extend_from_slice(node.as_bytes());
    message.push(0);
    message.extend_from_slice(public_key);
    message.extend_from_slice(password.as_bytes());
    hmac_sha256(proof_key, &message)
}

/// Checks an enrollment request's proof against the token's stored proof key.
pub fn proof_matches(
    proof_key: &[u8; 32],
    node: &str,
    public_key: &[u8; 32],
    password: &str,
    claimed: &[u8],
) -> bool {
    constant_time_eq(&proof(proof_key, node, public_key, password), claimed)
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}.{}.{}.{}",
            hex::encode(self.ca_fingerprint),
            self.id,
            self.secret
        )
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinToken({}, secret hidden)", self.id)
    }
}

impl FromStr for JoinToken {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<JoinToken, TokenError> {
        let mut parts = text.trim().split('.');
        let (Some(PREFIX), Some(ca), Some(id), Some(secret), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        if !is_lower_hex(ca, 64) || !is_token_id(id) || !is_lower_hex(secret, 32) {
            return Err(TokenError::Malformed);
        }
        let mut ca_fingerprint = [0u8; 32];
        hex::decode_to_slice(ca, &mut ca_fingerprint).map_err(|_| TokenError::Malformed)?;
        Ok(JoinToken {
            ca_fingerprint,
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> JoinToken {
        JoinToken::from_random([0xab; 32], [7; 20])
    }

    #[test]
    fn a_token_round_trips_through_its_text() {
        let text = token().to_string();
        assert!(text.starts_with("drv1.abab"));
        assert_eq!(text.len(), 4 + 1 + 64 + 1 + 8 + 1 + 32);
        assert_eq!(text.parse::<JoinToken>(), Ok(token()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token().to_string();
        for bad in [
            String::new(),
            "K10abc::server:secret".to_string(),
            good.replacen("drv1", "drv2", 1),
            format!("{good}.extra"),
            good[..good.len() - 1].to_string(),
            good.to_uppercase(),
            good.replace('.', ":"),
        ] {
            assert_eq!(
                bad.parse::<JoinToken>(),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_proof_binds_node_key_and_password_to_the_secret() {
        let t = token();
        let proof = t.proof("pi-1", &[1; 32], "pw");
        let hash = t.proof_key();
        assert!(proof_matches(&hash, "pi-1", &[1; 32], "pw", &proof));
        assert!(!proof_matches(&hash, "pi-2", &[1; 32], "pw", &proof));
        assert!(!proof_matches(&hash, "pi-1", &[2; 32], "pw", &proof));
        assert!(!proof_matches(&hash, "pi-1", &[1; 32], "pw2", &proof));
        let other = JoinToken::from_random([0xab; 32], [8; 20]).proof_key();
        assert!(!proof_matches(&other, "pi-1", &[1; 32], "pw", &proof));
        assert!(!proof_matches(&hash, "pi-1", &[1; 32], "pw", &proof[..31]));
    }

    #[test]
    fn what_the_broker_sees_does_not_give_the_proof_key() {
        let t = token();
        assert_ne!(t.mqtt_password().as_bytes(), &t.proof_key()[..]);
        assert_ne!(login_hash(&t.mqtt_password()), t.proof_key());
        assert!(!t.mqtt_password().contains(&t.secret));
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", token()).contains(&token().secret));
    }
}

/// What the controller keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// The token's id.
    pub id: String,
    /// SHA-256 of its broker login password ([`JoinToken::mqtt_password`]).
    pub login_hash: [u8; 32],
    /// The key of its enrollment proofs ([`JoinToken::proof_key`]).
    pub proof_key: [u8; 32],
    /// Creation time (unix ms).
    pub created_ms: i64,
    /// Expiry (unix ms); `None` never expires.
    pub expires_ms: Option<i64>,
    /// Enrollments left; `None` is unlimited.
    pub uses_left: Option<u32>,
    /// Labels a node enrolled with it gets.
    pub labels: Vec<(String, String)>,
}

/// Why a token cannot enroll a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No token with that id (never created, or deleted).
    #[error("the join token is unknown (deleted, or never created)")]
    Unknown,
    /// The secret does not match.
    #[error("the join token's secret is wrong")]
    WrongSecret,
    /// Past its expiry.
    #[error("the join token has expired")]
    Expired,
    /// No uses left.
    #[error("the join token has been used up")]
    UsedUp,
}

impl TokenRecord {
    /// Whether `password` is this token's broker login.
    pub fn login_matches(&self, password: &str) -> bool {
        constant_time_eq(&login_hash(password), &self.login_hash)
    }

    /// Whether the token may still enroll a node at `now_ms`.
    pub fn usable(&self, now_ms: i64) -> Result<(), TokenRefusal> {
        if self.expires_ms.is_some_and(|at| now_ms >= at) {
            return Err(TokenRefusal::Expired);
        }
        if self.uses_left == Some(0) {
            return Err(TokenRefusal::UsedUp);
        }
        Ok(())
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    fn record(expires_ms: Option<i64>, uses_left: Option<u32>) -> TokenRecord {
        TokenRecord {
            id: "0a0b0c0d".into(),
            login_hash: login_hash("s3cret"),
            proof_key: [5; 32],
            created_ms: 0,
            expires_ms,
            uses_left,
            labels: Vec::new(),
        }
    }

    #[test]
    fn a_token_admits_until_it_expires_or_is_used_up() {
        assert_eq!(record(None, None).usable(5), Ok(()));
        assert_eq!(record(Some(10), None).usable(9), Ok(()));
        assert_eq!(
            record(Some(10), None).usable(10),
            Err(TokenRefusal::Expired)
        );
        assert_eq!(record(None, Some(1)).usable(0), Ok(()));
        assert_eq!(record(None, Some(0)).usable(0), Err(TokenRefusal::UsedUp));
        assert!(record(None, None).login_matches("s3cret"));
        assert!(!record(None, None).login_matches("other"));
    }
}
