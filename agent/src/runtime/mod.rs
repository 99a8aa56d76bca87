//! Running containers as host processes, and their log files.

pub mod cgroup;
pub mod env;
pub mod logfile;
pub mod process;
