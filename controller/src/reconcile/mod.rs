//! Pure decision logic: functions of (spec, observed state, now) → outcome, no I/O.

pub mod action;
pub mod backoff;
pub mod clock;
pub mod cronjob;
pub mod daemonset;
pub mod eviction;
pub mod garbage_collection;
pub mod job;
pub mod node_lifecycle;
pub mod ownership;
pub mod pod_deletion;
pub mod scheduler;
