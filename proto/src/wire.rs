//! The envelope every MQTT payload travels in, and a decoder for untrusted bytes.
//!
//! Layout: one byte of protocol version, then the postcard encoding of a [`Message`].

use crate::manifest::is_dns_subdomain;
use crate::msg::{Message, PresenceState};

/// Version byte at the start of every payload.
pub const PROTOCOL_VERSION: u8 = 1;

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
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let (message, rest) = postcard::take_from_bytes::<Message>(body)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    check_bounds(&message).map_err(DecodeError::Invalid)?;
    Ok(message)
}

fn check_str(field: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_STRING_BYTES {
        return Err(format!("{field} is {} bytes long", s.len()));
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
                check_len("containers", pod.containers.len())?;
            }
            Ok(())
        }
        Message::Ack(ack) => check_len("pods", ack.pods.len()),
        Message::LogRequest(_) | Message::LogChunk(_) => Ok(()),
        Message::Desired(d) => {
            check_len("pods", d.pods.len())?;
            check_len("finished", d.finished.len())?;
            for pod in &d.pods {
                check_len("containers", pod.containers.len())?;
                check_len("volumes", pod.volumes.len())?;
                for c in &pod.containers {
                    check_len("command", c.command.len())?;
                    check_len("args", c.args.len())?;
                    check_len("env", c.env.len())?;
                    check_len("ports", c.ports.len())?;
                    check_len("mounts", c.mounts.len())?;
                }
            }
            Ok(())
        }
    }
}
