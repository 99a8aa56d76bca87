//! The server's file descriptors: how many the embedded broker may hold, so that MQTT
//! clients can never take the ones the API, the store and the local agent need.
//!
//! Without a reserve, 2,000 idle connections at a 1,024-descriptor limit took every
//! descriptor: the broker kept serving its clients, but the API, the store and the local
//! agent competed for whatever a closing socket freed (a pod applied then took 1.4 s to run,
//! against a budget of 1 s, in `tests/tests/trust.rs`).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept out of the broker's reach whatever the number of MQTT clients: API
/// connections, the store's files, the local agent's pods (pipes, logs), TLS reloads.
pub const KEPT_FOR_THE_REST: u64 = 256;

/// Fewest sockets the broker is given, even at a tiny limit.
const BROKER_FLOOR: u64 = 64;

/// Highest soft limit asked for; Linux refuses more than `fs.nr_open` (1,048,576 by default).
const MOST_ASKED: u64 = 1 << 20;

/// How many sockets a broker may hold under soft limit `soft`, at most `configured`.
pub fn broker_sockets(soft: u64, configured: usize) -> usize {
    let budget = soft.saturating_sub(KEPT_FOR_THE_REST).max(BROKER_FLOOR);
    usize::try_from(budget).map_or(configured, |b| b.min(configured))
}

/// Raises the soft descriptor limit to the hard one (systemd starts services with 1,024
/// soft and far more hard, as Go programs raise it themselves); returns the soft limit now
/// in force, or `None` when it cannot be read.
pub fn raise_soft_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let wanted = hard.min(MOST_ASKED);
    if wanted > soft && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        return Some(wanted);
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_is_left_what_the_rest_of_the_server_does_not_need() {
        assert_eq!(broker_sockets(1024, 20_000), 768);
        assert_eq!(broker_sockets(65_536, 20_000), 20_000);
        assert_eq!(broker_sockets(100, 20_000), 64);
        assert_eq!(broker_sockets(u64::MAX, 20_000), 20_000);
    }
}
