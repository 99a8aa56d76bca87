//! The Drover controller: store, embedded broker, control loop, API and CLI.

pub mod accounts;
pub mod api;
pub mod broker;
pub mod cli;
pub mod control;
pub mod credentials;
pub mod kubeconfig;
pub mod logs;
pub mod metrics;
pub mod mosquitto;
pub mod mqtt;
pub mod nodes;
pub mod object;
pub mod pki;
pub mod pods;
pub mod reconcile;
pub mod server;
pub mod store;
