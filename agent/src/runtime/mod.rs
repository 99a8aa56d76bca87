//! Running containers: as host processes (with their log files and cgroups) or in the
//! node's container engine.

pub mod cgroup;
pub mod container;
pub mod env;
pub mod grpc_health;
pub mod keeper;
pub mod logfile;
pub mod probe;
pub mod process;
