//! Log requests (controller → agent) and log data (agent → controller).

use serde::{Deserialize, Serialize};

/// Asks an agent for a container's log. Topic: logs/request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRequest {
    /// Identifies the answer's chunks.
    pub id: u64,
    /// Pod UID.
    pub pod_uid: String,
    /// Container; empty means the pod's only container.
    pub container: String,
    /// Only the last N lines (0: all).
    pub tail_lines: u32,
    /// The previous run's log.
    pub previous: bool,
    /// Keep sending new output until cancelled (or not renewed for 30 s).
    pub follow: bool,
    /// Stop a follow (the other fields are ignored).
    pub cancel: bool,
}

/// A piece of a log. Topic: logs/data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// The request's id.
    pub id: u64,
    /// Log bytes.
    pub data: Vec<u8>,
    /// No more chunks follow.
    pub done: bool,
    /// Why the log cannot be served, if so.
    pub error: Option<String>,
}
