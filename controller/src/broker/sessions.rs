//! Which connection currently holds each client id, and when a will is published.
//!
//! A will says "this client is gone". It is published only when a connection ends without
//! DISCONNECT and no newer connection holds its client id: a client that connected again
//! (a takeover, typical of a registration storm after a network blip) is not gone, and
//! publishing its old will would mark a connected agent offline.

use std::collections::HashMap;

use super::router::ConnectionId;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client sent DISCONNECT.
    Disconnected,
    /// A newer connection with the same client id replaced it.
    TakenOver,
    /// I/O error, end of stream without DISCONNECT, keep-alive timeout, protocol error, or
    /// a subscriber too slow to keep up.
    Lost,
    /// Its identity was revoked ([`super::BrokerHandle::disconnect`]). The client is gone
    /// for good, so its will is published like for a lost connection.
    Revoked,
    /// The broker is shutting down; wills would reach nobody who stays.
    Shutdown,
}

#[derive(Debug, Default)]
pub struct Sessions {
    current: HashMap<String, ConnectionId>,
}

impl Sessions {
    /// Makes `connection` the holder of `client_id`; returns the connection it takes over,
    /// which is to be closed with [`Ending::TakenOver`].
    pub fn register(&mut self, client_id: &str, connection: ConnectionId) -> Option<ConnectionId> {
        self.current
            .insert(client_id.to_string(), connection)
            .filter(|older| *older != connection)
    }

    /// Records that `connection` ended; returns whether its will is to be published.
    pub fn end(&mut self, client_id: &str, connection: ConnectionId, ending: Ending) -> bool {
        let was_current = self.current.get(client_id) == Some(&connection);
        if was_current {
            self.current.remove(client_id);
        }
        was_current && matches!(ending, Ending::Lost | Ending::Revoked)
    }

    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abrupt_end_publishes_the_will() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.register("drover-agent-pi", 1), None);
        assert!(sessions.end("drover-agent-pi", 1, Ending::Lost));
        assert!(sessions.is_empty());
    }

    #[test]
    fn disconnect_does_not_publish_the_will() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1);
        assert!(!sessions.end("c", 1, Ending::Disconnected));
    }

    #[test]
    fn revocation_publishes_the_will() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1);
        assert!(sessions.end("c", 1, Ending::Revoked));
    }

    #[test]
    fn shutdown_does_not_publish_wills() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1);
        assert!(!sessions.end("c", 1, Ending::Shutdown));
    }

    #[test]
    fn takeover_does_not_publish_the_older_will() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1);
        assert_eq!(sessions.register("c", 2), Some(1));
        assert!(!sessions.end("c", 1, Ending::TakenOver));
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn older_connection_lost_after_takeover_does_not_publish_its_will() {
        // The older connection may notice an I/O error before it notices the takeover.
        let mut sessions = Sessions::default();
        sessions.register("c", 1);
        sessions.register("c", 2);
        assert!(!sessions.end("c", 1, Ending::Lost));
        assert!(sessions.end("c", 2, Ending::Lost));
    }

    #[test]
    fn storm_of_reconnects_publishes_only_the_last_will() {
        let mut sessions = Sessions::default();
        for connection in 1..=500 {
            sessions.register("c", connection);
        }
        for connection in 1..500 {
            assert!(!sessions.end("c", connection, Ending::Lost));
        }
        assert!(sessions.end("c", 500, Ending::Lost));
    }
}
