//! What arrived from the broker and is not yet checked, queued per sender and served in
//! turn, so that one node flooding the controller with messages it must verify delays
//! every other node by at most one message of its own.
//!
//! Checking a message costs a signature verification; taking it off the connection costs
//! a topic lookup. The adapter takes everything off the connection at once (so the broker's
//! queue to the controller stays short) and checks one message per turn. A sender whose
//! queue is full loses what it sends next: it is the one sending more than the controller
//! can check. Agents resend status reports until acknowledged, and heartbeats come again.

use std::collections::{HashMap, VecDeque};

/// Bounds of one sender's queue.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub messages: usize,
    pub bytes: usize,
}

/// Per sender: a few seconds of a busy agent's reports (a Job of 2,000 pods makes one
/// publish a few hundred a second), and no more memory than a handful of the largest
/// messages.
pub const PER_SENDER: Bounds = Bounds {
    messages: 1_024,
    bytes: 8 << 20,
};

/// A queue per sender, served round-robin.
#[derive(Debug)]
pub struct Backlog<T> {
    bounds: Bounds,
    queues: HashMap<String, (VecDeque<(T, usize)>, usize)>,
    turns: VecDeque<String>,
}

impl<T> Backlog<T> {
    pub fn new(bounds: Bounds) -> Backlog<T> {
        Backlog {
            bounds,
            queues: HashMap::new(),
            turns: VecDeque::new(),
        }
    }

    /// Queues `item` (of `bytes`) from `sender`; false (and dropped) when its queue is full.
    /// A message larger than the byte bound passes when the sender's queue is empty.
    pub fn push(&mut self, sender: &str, item: T, bytes: usize) -> bool {
        let (queue, queued_bytes) = self
            .queues
            .entry(sender.to_string())
            .or_insert_with(|| (VecDeque::new(), 0));
        if queue.len() >= self.bounds.messages
            || (!queue.is_empty() && *queued_bytes + bytes > self.bounds.bytes)
        {
            return false;
        }
        if queue.is_empty() {
            self.turns.push_back(sender.to_string());
        }
        queue.push_back((item, bytes));
        *queued_bytes += bytes;
        true
    }

    /// The oldest item of the sender whose turn it is.
    pub fn pop(&mut self) -> Option<T> {
        let sender = self.turns.pop_front()?;
        let (queue, queued_bytes) = self.queues.get_mut(&sender)?;
        let (item, bytes) = queue.pop_front()?;
        *queued_bytes -= bytes;
        if queue.is_empty() {
            self.queues.remove(&sender);
        } else {
            self.turns.push_back(sender);
        }
        Some(item)
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Bounds = Bounds {
        messages: 3,
        bytes: 100,
    };

    #[test]
    fn senders_are_served_in_turn_each_in_its_own_order() {
        let mut backlog = Backlog::new(SMALL);
        for i in 0..3 {
            assert!(backlog.push("flood", format!("flood-{i}"), 1));
        }
        assert!(backlog.push("edge", "edge-0".to_string(), 1));
        let served: Vec<String> = std::iter::from_fn(|| backlog.pop()).collect();
        assert_eq!(served, ["flood-0", "edge-0", "flood-1", "flood-2"]);
        assert!(backlog.is_empty());
    }

    #[test]
    fn a_full_queue_drops_only_its_own_senders_messages() {
        let mut backlog = Backlog::new(SMALL);
        for i in 0..3 {
            assert!(backlog.push("flood", i, 1));
        }
        assert!(!backlog.push("flood", 3, 1), "over the message bound");
        assert!(backlog.push("edge", 10, 60));
        assert!(!backlog.push("edge", 11, 60), "over the byte bound");
        assert!(backlog.push("edge", 12, 40));
        assert!(backlog.push("big", 20, 1_000), "alone, over the byte bound");
        let served: Vec<i32> = std::iter::from_fn(|| backlog.pop()).collect();
        assert_eq!(served, [0, 10, 20, 1, 12, 2]);
        // Drained, a sender may queue again.
        assert!(backlog.push("flood", 4, 1));
    }
}
