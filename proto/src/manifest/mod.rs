//! Kubernetes manifests: parsing, the accepted object types, and validation.

mod kind;
mod parse;
mod types;
mod validate;
pub mod yaml;

pub use kind::Kind;
pub use parse::{parse_manifests, Manifest, ManifestError};
pub use types::*;
pub use validate::{
    is_dns_label, is_dns_subdomain, is_valid_uid, runs_in_engine, validate_label_key,
    validate_label_value,
};
