//! The envelope every MQTT payload travels in, and a decoder for untrusted bytes.
//!
//! Layout: one byte of protocol version, the postcard encoding of a [`Message`], and — on the
//! wire, where every payload is sealed — the sender's Ed25519 signature (64 bytes) over a
//! context string, the topic and everything before it. Signing the topic binds a message to
//! its node and its kind: a signed status of node A is not a valid status of node B, nor a
//! valid presence of A.

use crate::keys::{PublicKey, SigningKey, SIGNATURE_BYTES};
use crate::manifest::{is_dns_subdomain, is_valid_uid};
use crate::msg::{Message, PresenceState};

/// Version byte at the start of every payload. Version 2 seals every message; version 3
/// adds init containers to desired pods and pod statuses.
pub const PROTOCOL_VERSION: u8 = 3;

/// The version before init containers, still read (see [`crate::msg::legacy`]): from agents
/// not upgraded yet, and in the desired state an agent stored before its upgrade.
const BEFORE_INIT_VERSION: u8 = 2;

/// Largest payload accepted or produced, in bytes. A node's desired state is the largest
/// message; 1 MiB holds several hundred pods.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Longest string field accepted in a decoded message.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// Most entries accepted in any list of a decoded message.
pub const MAX_LIST_ENTRIES: usize = 4096;

/// Why bytes were not accepted as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes.
    #[error("empty payload")]
    Empty,
    /// More than [`MAX_PAYLOAD_BYTES`].
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")]
    Oversized(usize),
    /// A version this build does not speak.
    #[error("unsupported protocol version {0} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u8),
    /// Not a valid postcard encoding of a message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Well-formed, but a field is out of bounds.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// Unsigned, or not signed by the expected key for this topic.
    #[error("bad signature")]
    BadSignature,
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoding exceeds [`MAX_PAYLOAD_BYTES`].
    #[error("encoded message of {0} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")]
    Oversized(usize),
    /// Serialization failed.
    #[error("cannot encode message: {0}")]
    Serialize(String),
}

/// Encodes `message` in the envelope.
pub fn encode(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut bytes = vec![PROTOCOL_VERSION];
    let body = postcard::to_stdvec(message).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    bytes.extend_from_slice(&body);
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(EncodeError::Oversized(bytes.len()));
    }
    Ok(bytes)
}

/// Decodes an untrusted payload. Never panics; allocation is bounded by the payload limit.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::Oversized(bytes.len()));
    }
    let message = match version {
        PROTOCOL_VERSION => {
            let (message, rest) = postcard::take_from_bytes::<Message>(body)
                .map_err(|e| DecodeError::Malformed(e.to_string()))?;
            if !rest.is_empty() {
                return Err(DecodeError::Malformed(format!(
                    "{} trailing bytes",
                    rest.len()
                )));
            }
            message
        }
        BEFORE_INIT_VERSION => crate::msg::legacy::decode_before_init(body)
            .ok_or_else(|| DecodeError::Malformed("not a version 2 message".to_string()))?,
        _ => return Err(DecodeError::UnsupportedVersion(version)),
    };
    check_bounds(&message).map_err(DecodeError::Invalid)?;
    Ok(message)
}

fn signed_bytes(topic: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12 + topic.len() + body.len());
    bytes.extend_from_slice(b"drover-v2\0");
    bytes.extend_from_slice(topic.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(body);
    bytes
}

/// Encodes `message` for `topic` and signs it with `key`.
pub fn seal(topic: &str, message: &Message, key: &SigningKey) -> Result<Vec<u8>, EncodeError> {
    let mut bytes = encode(message)?;
    let signature = key.sign(&signed_bytes(topic, &bytes));
    bytes.extend_from_slice(&signature);
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(EncodeError::Oversized(bytes.len()));
    }
    Ok(bytes)
}

fn split_signature(bytes: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::Oversized(bytes.len()));
    }
    if bytes.len() <= SIGNATURE_BYTES {
        return Err(DecodeError::BadSignature);
    }
    Ok(bytes.split_at(bytes.len() - SIGNATURE_BYTES))
}

/// Verifies that `bytes` were sealed for `topic` by `key`, then decodes them. The signature
/// is checked before a byte of the message is parsed.
pub fn open(topic: &str, bytes: &[u8], key: &PublicKey) -> Result<Message, DecodeError> {
    let (body, signature) = split_signature(bytes)?;
    if !key.verifies(&signed_bytes(topic, body), signature) {
        return Err(DecodeError::BadSignature);
    }
    decode(body)
}

/// Decodes an enrollment request sealed with the key it carries, and verifies that seal:
/// proves the sender holds the key it asks to register.
pub fn open_self_signed(topic: &str, bytes: &[u8]) -> Result<Message, DecodeError> {
    let (body, signature) = split_signature(bytes)?;
    let message = decode(body)?;
    let Message::EnrollRequest(request) = &message else {
        return Err(DecodeError::Invalid(format!(
            "{} is not self-signed",
            message.name()
        )));
    };
    if !request
        .public_key
        .verifies(&signed_bytes(topic, body), signature)
    {
        return Err(DecodeError::BadSignature);
    }
    Ok(message)
}

/// Decodes an enrollment reply. An acceptance must carry the seal of the controller key it
/// announces (the caller then checks that the CA the token names vouches for that key); a
/// refusal cannot be verified before the agent knows the key, and is only reported.
pub fn open_enroll_reply(
    topic: &str,
    bytes: &[u8],
) -> Result<crate::msg::EnrollReply, DecodeError> {
    use crate::msg::EnrollReply;
    let (body, signature) = split_signature(bytes)?;
    let Message::EnrollReply(reply) = decode(body)? else {
        return Err(DecodeError::Invalid("not an enrollment reply".to_string()));
    };
    if let EnrollReply::Accepted { controller_key, .. } = &reply {
        if !controller_key.verifies(&signed_bytes(topic, body), signature) {
            return Err(DecodeError::BadSignature);
        }
    }
    Ok(reply)
}

fn check_str(field: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_STRING_BYTES {
        return Err(format!("{field} is {} bytes long", s.len()));
    }
    Ok(())
}

/// Pod UIDs name files on agents: nothing else may pass for one.
fn check_uid(field: &str, uid: &str) -> Result<(), String> {
    if !is_valid_uid(uid) {
        return Err(format!(
            "{field} \"{}\" is not a valid UID",
            uid.escape_default()
        ));
    }
    Ok(())
}

fn check_len(field: &str, n: usize) -> Result<(), String> {
    if n > MAX_LIST_ENTRIES {
        return Err(format!("{field} has {n} entries"));
    }
    Ok(())
}

fn check_bounds(message: &Message) -> Result<(), String> {
    match message {
        Message::Presence(p) => {
            if let PresenceState::Online(info) = &p.state {
                if !is_dns_subdomain(&info.name) {
                    return Err(format!(
                        "node name \"{}\" is not an RFC 1123 subdomain",
                        info.name.escape_default()
                    ));
                }
                check_uid("node uid", &info.uid)?;
                check_len("labels", info.labels.len())?;
                check_len("addresses", info.addresses.len())?;
                for (k, v) in &info.labels {
                    check_str("label", k)?;
                    check_str("label", v)?;
                }
                for s in [
                    &info.uid,
                    &info.architecture,
                    &info.operating_system,
                    &info.kernel_version,
                    &info.os_image,
                    &info.agent_version,
                    &info.boot_id,
                ] {
                    check_str("node info", s)?;
                }
            }
            Ok(())
        }
        Message::Heartbeat(_) => Ok(()),
        Message::Status(report) => {
            check_len("pods", report.pods.len())?;
            check_len("events", report.events.len())?;
            for pod in &report.pods {
                check_uid("pod uid", &pod.uid)?;
                check_len("containers", pod.containers.len())?;
                check_len("init containers", pod.init_containers.len())?;
            }
            for event in &report.events {
                check_uid("event pod uid", &event.pod_uid)?;
            }
            Ok(())
        }
        Message::Ack(ack) => {
            check_len("pods", ack.pods.len())?;
            for (uid, _) in &ack.pods {
                check_uid("acknowledged pod uid", uid)?;
            }
            Ok(())
        }
        Message::LogRequest(request) => check_uid("pod uid", &request.pod_uid),
        Message::LogChunk(_) => Ok(()),
        Message::EnrollRequest(request) => {
            if !is_dns_subdomain(&request.node) {
                return Err(format!(
                    "node name \"{}\" is not an RFC 1123 subdomain",
                    request.node.escape_default()
                ));
            }
            if request.password.len() > 256 || request.token_proof.len() > 64 {
                return Err("oversized credentials".to_string());
            }
            Ok(())
        }
        Message::EnrollReply(crate::msg::EnrollReply::Refused { reason }) => {
            check_str("reason", reason)
        }
        Message::EnrollReply(crate::msg::EnrollReply::Accepted {
            attestation,
            ca_der,
            ..
        }) => {
            if attestation.len() > 256 || ca_der.len() > 16 * 1024 {
                return Err("oversized attestation or CA".to_string());
            }
            Ok(())
        }
        Message::Desired(d) => {
            check_len("pods", d.pods.len())?;
            check_len("finished", d.finished.len())?;
            for uid in &d.finished {
                check_uid("finished pod uid", uid)?;
            }
            for pod in &d.pods {
                check_uid("pod uid", &pod.uid)?;
                check_len("containers", pod.containers.len())?;
                check_len("init containers", pod.init_containers.len())?;
                check_len("volumes", pod.volumes.len())?;
                for c in pod.all_containers() {
                    check_len("command", c.command.len())?;
                    check_len("args", c.args.len())?;
                    check_len("env", c.env.len())?;
                    check_len("ports", c.ports.len())?;
                    check_len("mounts", c.mounts.len())?;
                    check_len("capabilities", c.security.capabilities_add.len())?;
                    check_len("capabilities", c.security.capabilities_drop.len())?;
                    check_len("groups", c.security.groups.len())?;
                    let hooks = [&c.post_start, &c.pre_stop]
                        .into_iter()
                        .flatten()
                        .filter_map(|hook| match hook {
                            crate::msg::WireHook::Check(handler) => Some(handler),
                            crate::msg::WireHook::Sleep { .. } => None,
                        });
                    for handler in [&c.startup_probe, &c.liveness_probe, &c.readiness_probe]
                        .into_iter()
                        .flatten()
                        .map(|probe| &probe.handler)
                        .chain(hooks)
                    {
                        match handler {
                            crate::msg::WireProbeHandler::Exec { command } => {
                                check_len("probe command", command.len())?;
                            }
                            crate::msg::WireProbeHandler::HttpGet { headers, .. } => {
                                check_len("probe headers", headers.len())?;
                            }
                            _ => {}
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod seal_tests {
    use super::*;
    use crate::msg::{Heartbeat, Session};

    fn beat() -> Message {
        Message::Heartbeat(Heartbeat {
            session: Session {
                agent_start: 1,
                connection: 2,
            },
            sequence: 3,
        })
    }

    #[test]
    fn a_sealed_message_opens_only_with_its_key_and_topic() {
        let key = SigningKey::from_seed([1; 32]);
        let other = SigningKey::from_seed([2; 32]);
        let topic = "drover/v1/nodes/a/heartbeat";
        let sealed = seal(topic, &beat(), &key).unwrap();
        assert_eq!(open(topic, &sealed, &key.public()), Ok(beat()));
        assert_eq!(
            open(topic, &sealed, &other.public()),
            Err(DecodeError::BadSignature),
            "another key"
        );
        assert_eq!(
            open("drover/v1/nodes/b/heartbeat", &sealed, &key.public()),
            Err(DecodeError::BadSignature),
            "another node's topic"
        );
        assert_eq!(
            open(topic, &sealed[..sealed.len() - 1], &key.public()),
            Err(DecodeError::BadSignature),
            "truncated signature"
        );
        assert_eq!(
            open(topic, &encode(&beat()).unwrap(), &key.public()),
            Err(DecodeError::BadSignature),
            "unsigned"
        );
        let mut flipped = sealed.clone();
        flipped[3] ^= 1;
        assert_eq!(
            open(topic, &flipped, &key.public()),
            Err(DecodeError::BadSignature)
        );
    }

    #[test]
    fn an_enrollment_request_must_be_sealed_by_the_key_it_carries() {
        use crate::msg::EnrollRequest;
        let key = SigningKey::from_seed([3; 32]);
        let topic = "drover/v1/enroll/0a0b0c0d/request/pi";
        let request = |public_key| {
            Message::EnrollRequest(EnrollRequest {
                node: "pi".into(),
                public_key,
                password: "pw".into(),
                token_proof: vec![0; 32],
            })
        };
        let sealed = seal(topic, &request(key.public()), &key).unwrap();
        assert!(open_self_signed(topic, &sealed).is_ok());
        let other = SigningKey::from_seed([4; 32]);
        let forged = seal(topic, &request(other.public()), &key).unwrap();
        assert_eq!(
            open_self_signed(topic, &forged),
            Err(DecodeError::BadSignature)
        );
        let not_a_request = seal(topic, &beat(), &key).unwrap();
        assert!(matches!(
            open_self_signed(topic, &not_a_request),
            Err(DecodeError::Invalid(_))
        ));
    }
}
