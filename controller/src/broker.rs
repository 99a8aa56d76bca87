//! The embedded MQTT broker (rumqttd), for fleets that do not bring their own.
//!
//! It keeps retained messages in memory only, which is why the controller republishes every
//! node's desired state whenever its MQTT connection comes up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use rumqttd::protocol::v4::V4;
use rumqttd::{Config, ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};
use tokio::task::JoinHandle;

/// A running broker; dropping the handle does not stop it (rumqttd has no shutdown call),
/// aborting the task stops accepting connections.
pub struct EmbeddedBroker {
    /// The accept loop.
    pub task: JoinHandle<()>,
}

/// Starts the broker on `listen` and waits until it accepts connections.
pub async fn start(listen: SocketAddr) -> anyhow::Result<EmbeddedBroker> {
    // rumqttd's defaults are zeros: every limit must be set.
    let router = RouterConfig {
        max_connections: 20_000,
        max_outgoing_packet_count: 200,
        max_segment_size: 16 * 1024 * 1024,
        max_segment_count: 4,
        ..Default::default()
    };
    let server = ServerSettings {
        name: "drover".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: drover_proto::MAX_PAYLOAD_BYTES + 1024,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        router: router.clone(),
        v4: Some(HashMap::from([("drover".to_string(), server.clone())])),
        ..Default::default()
    };
    let router_tx = Router::new(config.id, router).spawn();
    let mut server = Server::new(server, router_tx, V4);
    let task = tokio::spawn(async move {
        if let Err(e) = server.start(LinkType::Remote).await {
            tracing::error!(error = %e, "embedded MQTT broker stopped");
        }
    });
    // Ready once its listening socket exists. No client connection probes it: rare broker
    // failures in tests (rumqttd logging a connection id "already gone") followed a probe
    // connection that came and went while the first clients connected.
    for _ in 0..400 {
        if task.is_finished() {
            bail!("the embedded MQTT broker could not listen on {listen} (is the port in use? see the log above)");
        }
        if disable_nagle(listen.port()) {
            return Ok(EmbeddedBroker { task });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    Err(anyhow::anyhow!("timed out"))
        .with_context(|| format!("the embedded MQTT broker did not start on {listen}"))
}

/// Finds rumqttd's listening socket among this process's file descriptors (by its port) and
/// sets `TCP_NODELAY` on it; false while there is none yet.
///
/// rumqttd leaves Nagle's algorithm on for the sockets it accepts, so each small message that
/// follows another would wait for the peer's delayed ACK (40 ms on Linux); accepted sockets
/// inherit `TCP_NODELAY` from their listening socket.
fn disable_nagle(port: u16) -> bool {
    use nix::sys::socket::{
        getsockname, getsockopt, setsockopt, sockopt, SockaddrLike, SockaddrStorage,
    };
    use std::os::fd::{BorrowedFd, RawFd};

    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    let mut done = false;
    for entry in entries.flatten() {
        let Some(raw) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        let Ok(address) = getsockname::<SockaddrStorage>(raw) else {
            continue;
        };
        let bound_port = address
            .as_sockaddr_in()
            .map(|a| a.port())
            .or_else(|| address.as_sockaddr_in6().map(|a| a.port()));
        if bound_port != Some(port) || address.family().is_none() {
            continue;
        }
        // SAFETY: the descriptor was just listed as open in this process and belongs to the
        // broker's listener, which lives as long as the process; it is only borrowed for
        // these two calls.
        #[allow(unsafe_code)]
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        if getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false)
            && setsockopt(&fd, sockopt::TcpNoDelay, &true).is_ok()
        {
            done = true;
        }
    }
    done
}
