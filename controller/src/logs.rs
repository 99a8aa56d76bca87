//! Routes log data arriving over MQTT to the API requests waiting for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use drover_proto::msg::LogChunk;
use tokio::sync::mpsc;

/// An open request: the node it was sent to, and where its chunks go.
type Waiting = (String, mpsc::Sender<LogChunk>);

/// Chunks (up to 256 KiB each) held for a request whose HTTP client reads slower than the
/// node sends; more are dropped, so a node cannot grow the controller's memory.
const CHUNKS_HELD: usize = 64;

/// Open log requests, by id, with the node each was sent to: log data is accepted only
/// from that node, for a request that is still open.
#[derive(Clone, Default)]
pub struct LogRouter {
    next_id: Arc<AtomicU64>,
    waiting: Arc<Mutex<HashMap<u64, Waiting>>>,
}

impl LogRouter {
    /// Opens a request to `node`: its id and where its chunks arrive.
    pub fn open(&self, node: &str) -> (u64, mpsc::Receiver<LogChunk>) {
        // Ids start from the clock so a restarted controller does not reuse a live id.
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let id = base.wrapping_add(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(CHUNKS_HELD);
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(id, (node.to_string(), tx));
        }
        (id, rx)
    }

    /// Closes a request.
    pub fn close(&self, id: u64) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(&id);
        }
    }

    /// Delivers a chunk from `node`; false when no request of that id was sent to it, or
    /// its reader is too far behind.
    pub fn deliver(&self, node: &str, chunk: LogChunk) -> bool {
        let Ok(waiting) = self.waiting.lock() else {
            return false;
        };
        match waiting.get(&chunk.id) {
            Some((asked, tx)) if asked == node => tx.try_send(chunk).is_ok(),
            _ => false,
        }
    }
}
