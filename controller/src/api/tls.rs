//! The API's HTTPS listener: TCP accepts feed TLS handshakes that run as their own tasks,
//! so a client that stalls mid-handshake delays nobody else; `axum::serve` is handed only
//! finished TLS streams.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// A handshake that has not finished by then is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at most; more connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// A bound TLS listener for `axum::serve`.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl TlsListener {
    /// Serves TLS with `config` on an already bound `listener`. The config is copied with
    /// ALPN set to HTTP/1.1, the only protocol the API speaks (clients that offer h2 fall
    /// back to it).
    pub fn new(listener: TcpListener, config: &rustls::ServerConfig) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let mut config = config.clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (done, ready) = mpsc::channel(64);
        let accept_task = tokio::spawn(accept_loop(listener, acceptor, done));
        Ok(TlsListener {
            local_addr,
            ready,
            accept_task,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    done: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Typically out of file descriptors: give other tasks a moment to close some.
                warn!(error = %e, "API: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = async {
                if !starts_with_tls(&tcp).await {
                    refuse_plain_http(tcp).await;
                    return Err(io::Error::other("plain HTTP"));
                }
                acceptor.accept(tcp).await
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => {
                    let _ = done.send((stream, peer)).await;
                }
                // Plain HTTP, port scanners and clients that distrust our CA end here.
                Ok(Err(e)) => debug!(%peer, error = %e, "API: TLS handshake failed"),
                Err(_) => debug!(%peer, "API: TLS handshake timed out"),
            }
        });
    }
}

/// Whether the client's first byte opens a TLS handshake record.
async fn starts_with_tls(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(tcp.peek(&mut first).await, Ok(1) if first[0] == 0x16)
}

/// Tells a plain-HTTP client what is wrong, as kube-apiserver does, and hangs up.
async fn refuse_plain_http(mut tcp: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = "Client sent an HTTP request to an HTTPS server.\n";
    let answer = format!(
        "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(answer.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn listener(dir: &std::path::Path) -> (TlsListener, crate::pki::Pki) {
        let pki = crate::pki::Pki::load_or_create(dir, &[]).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (
            TlsListener::new(tcp, &pki.server_tls_config()).unwrap(),
            pki,
        )
    }

    fn connector(pki: &crate::pki::Pki) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(pki.ca_der.clone()))
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    #[tokio::test]
    async fn a_stalled_client_does_not_delay_the_next_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let (mut listener, pki) = listener(dir.path()).await;
        let addr = listener.local_addr().unwrap();
        // Connected, silent: its handshake task waits, the accept loop does not.
        let _stalled = TcpStream::connect(addr).await.unwrap();
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector(&pki).connect(name, tcp).await.unwrap();
            tls.write_all(b"ping").await.unwrap();
            tls.flush().await.unwrap();
            tls
        });
        let (mut served, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("the second client is served while the first stalls");
        let mut ping = [0u8; 4];
        served.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping, b"ping");
        drop(client.await.unwrap());
    }

    #[tokio::test]
    async fn plain_http_is_answered_400_and_never_served() {
        let dir = tempfile::tempdir().unwrap();
        let (mut listener, _pki) = listener(dir.path()).await;
        let addr = listener.local_addr().unwrap();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(
            answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("Client sent an HTTP request to an HTTPS server.\n"));
        let served = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(served.is_err(), "nothing reached axum");
    }
}
