//! Which connection currently holds each client id, who may replace it, and when a will is
//! published.
//!
//! A node's client id is exclusive: while a connection holds it, another CONNECT with it is
//! refused, so that a second agent started under a node's name (or with a copy of its data
//! directory) cannot take the node over and run its pods beside the first. The holder is
//! gone once its connection ends: its socket closed (a killed agent's kernel closes it) or
//! its keep-alive expired. The controller's and enrolling devices' client ids are taken
//! over instead: the newer connection wins and the older one is closed.
//!
//! A will says "this client is gone". It is published only when a connection ends without
//! DISCONNECT and no newer connection holds its client id: a client that connected again
//! (a takeover) is not gone, and publishing its old will would mark it offline.

use std::collections::HashMap;

use super::router::ConnectionId;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client sent DISCONNECT.
    Disconnected,
    /// A newer connection with the same (non-exclusive) client id replaced it.
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

/// Whether a client id may be taken over by a newer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Refused while another connection holds it (a node's).
    Exclusive,
    /// The newer connection wins (the controller's, an enrolling device's).
    TakeOver,
}

/// A CONNECT refused because a live connection holds its exclusive client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held(pub ConnectionId);

#[derive(Debug, Default)]
pub struct Sessions {
    current: HashMap<String, ConnectionId>,
}

impl Sessions {
    /// Makes `connection` the holder of `client_id`. `Ok` with the connection it takes
    /// over, which is to be closed with [`Ending::TakenOver`]; `Err` when the id is
    /// exclusive and held by another connection, which stays.
    pub fn register(
        &mut self,
        client_id: &str,
        connection: ConnectionId,
        claim: Claim,
    ) -> Result<Option<ConnectionId>, Held> {
        if let Some(&holder) = self.current.get(client_id) {
            if claim == Claim::Exclusive && holder != connection {
                return Err(Held(holder));
            }
        }
        Ok(self
            .current
            .insert(client_id.to_string(), connection)
            .filter(|older| *older != connection))
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

    const NODE: Claim = Claim::Exclusive;

    #[test]
    fn abrupt_end_publishes_the_will() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.register("drover-agent-pi", 1, NODE), Ok(None));
        assert!(sessions.end("drover-agent-pi", 1, Ending::Lost));
        assert!(sessions.is_empty());
    }

    #[test]
    fn disconnect_does_not_publish_the_will() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1, NODE).unwrap();
        assert!(!sessions.end("c", 1, Ending::Disconnected));
    }

    #[test]
    fn revocation_publishes_the_will() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1, NODE).unwrap();
        assert!(sessions.end("c", 1, Ending::Revoked));
    }

    #[test]
    fn shutdown_does_not_publish_wills() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1, NODE).unwrap();
        assert!(!sessions.end("c", 1, Ending::Shutdown));
    }

    #[test]
    fn a_held_node_client_id_is_refused_and_the_holder_stays() {
        let mut sessions = Sessions::default();
        sessions.register("drover-agent-pi", 1, NODE).unwrap();
        assert_eq!(sessions.register("drover-agent-pi", 2, NODE), Err(Held(1)));
        assert_eq!(sessions.len(), 1);
        // The refused connection never held the id: its end changes nothing.
        assert!(!sessions.end("drover-agent-pi", 2, Ending::Lost));
        assert!(
            sessions.end("drover-agent-pi", 1, Ending::Lost),
            "still the holder"
        );
    }

    #[test]
    fn a_node_client_id_is_free_again_once_its_holder_is_gone() {
        for ending in [Ending::Lost, Ending::Disconnected, Ending::Revoked] {
            let mut sessions = Sessions::default();
            sessions.register("drover-agent-pi", 1, NODE).unwrap();
            sessions.end("drover-agent-pi", 1, ending);
            assert_eq!(
                sessions.register("drover-agent-pi", 2, NODE),
                Ok(None),
                "{ending:?}"
            );
        }
    }

    #[test]
    fn takeover_does_not_publish_the_older_will() {
        let mut sessions = Sessions::default();
        sessions.register("c", 1, Claim::TakeOver).unwrap();
        assert_eq!(sessions.register("c", 2, Claim::TakeOver), Ok(Some(1)));
        assert!(!sessions.end("c", 1, Ending::TakenOver));
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn older_connection_lost_after_takeover_does_not_publish_its_will() {
        // The older connection may notice an I/O error before it notices the takeover.
        let mut sessions = Sessions::default();
        sessions.register("c", 1, Claim::TakeOver).unwrap();
        sessions.register("c", 2, Claim::TakeOver).unwrap();
        assert!(!sessions.end("c", 1, Ending::Lost));
        assert!(sessions.end("c", 2, Ending::Lost));
    }

    #[test]
    fn storm_of_reconnects_publishes_only_the_last_will() {
        let mut sessions = Sessions::default();
        for connection in 1..=500 {
            sessions.register("c", connection, Claim::TakeOver).unwrap();
        }
        for connection in 1..500 {
            assert!(!sessions.end("c", connection, Ending::Lost));
        }
        assert!(sessions.end("c", 500, Ending::Lost));
    }
}
