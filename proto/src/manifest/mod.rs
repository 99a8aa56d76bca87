//! Kubernetes manifests: parsing, the accepted object types, and validation.

pub mod env;
pub mod ignored;
#[cfg(test)]
mod init_container_tests;
mod job_bounds;
mod kind;
pub mod lifecycle;
mod parse;
pub mod probe;
pub mod security;
mod types;
mod validate;
pub mod yaml;

pub use job_bounds::{
    job_spec_bounds, MAX_FAILED_INDEXES, MAX_INDEXED_COMPLETIONS, MAX_PARALLELISM,
};
pub use kind::Kind;
pub use parse::{
    parse_manifests, parse_manifests_warned, parse_manifests_with, Manifest, ManifestError,
    ManifestWarning,
};
pub use types::*;
pub use validate::{
    is_dns_label, is_dns_subdomain, is_valid_uid, runs_in_engine, validate_label_key,
    validate_label_value,
};
