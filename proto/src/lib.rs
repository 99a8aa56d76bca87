//! Drover's shared vocabulary: wire messages and their envelope, the MQTT topic scheme, and
//! the Kubernetes manifest types with their validation. No I/O lives here.

pub mod backoff;
pub mod broker_url;
pub mod hash;
pub mod keys;
pub mod manifest;
pub mod msg;
pub mod phase;
pub mod quantity;
pub mod random;
pub mod selector;
pub mod session;
pub mod token;
pub mod topic;
pub mod wire;

pub use broker_url::{BrokerAddress, BrokerUrlError};
pub use msg::Message;
pub use wire::{
    decode, encode, open, open_enroll_reply, open_self_signed, seal, DecodeError, EncodeError,
    MAX_PAYLOAD_BYTES, PROTOCOL_VERSION,
};
