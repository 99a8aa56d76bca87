//! The accept loop of one listening socket.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Shared;

/// How long to wait when the process is out of file descriptors (or memory for sockets):
/// retrying at once would spin, and the condition only clears when connections close.
const OUT_OF_RESOURCES_BACKOFF: Duration = Duration::from_millis(100);
/// After any other accept error, so that an error that repeats cannot spin either.
const OTHER_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Decrements the open-socket count when a connection task ends, however it ends.
struct SocketSlot(Arc<Shared>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.open_sockets.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                shared.count(|c| &c.accept_errors);
                let out_of_resources = matches!(
                    e.raw_os_error(),
                    Some(
                        nix::libc::EMFILE
                            | nix::libc::ENFILE
                            | nix::libc::ENOBUFS
                            | nix::libc::ENOMEM
                    )
                );
                if let Some(suppressed) = shared.throttles.accept.allow(Instant::now()) {
                    tracing::warn!(error = %e, errors_since_last_report = suppressed + 1, "the MQTT broker cannot accept connections");
                }
                tokio::time::sleep(if out_of_resources {
                    OUT_OF_RESOURCES_BACKOFF
                } else {
                    OTHER_ERROR_BACKOFF
                })
                .await;
                continue;
            }
        };
        shared.count(|c| &c.accepted);
        if shared.open_sockets.load(Ordering::Relaxed) >= shared.settings.max_connections {
            shared.count(|c| &c.refused_limit);
            if let Some(suppressed) = shared.throttles.refused.allow(Instant::now()) {
                tracing::warn!(%peer, limit = shared.settings.max_connections, refused_since_last_report = suppressed + 1, "MQTT connection refused: too many connections");
            }
            continue;
        }
        // Drover's messages are small and each waits for the previous one's ACK otherwise.
        let _ = tcp.set_nodelay(true);
        shared.open_sockets.fetch_add(1, Ordering::Relaxed);
        let slot = SocketSlot(shared.clone());
        let deadline = tokio::time::Instant::now() + shared.settings.connect_timeout;
        let tls = tls.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => super::connection::serve(shared, tcp, deadline).await,
                Some(acceptor) => {
                    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => super::connection::serve(shared, stream, deadline).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            shared.count(|c| &c.connect_timeouts);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
}
