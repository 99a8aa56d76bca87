//! Drover's embedded MQTT 3.1.1 broker, for fleets that do not bring their own.
//!
//! Every client authenticates at CONNECT ([`Authenticator`]) and is then confined by
//! [`acl`] to what its [`Identity`] plays in the protocol: a node publishes and subscribes
//! only to its own topics. Packets are parsed and encoded by rumqttc's codec; this module
//! adds authentication, ACLs, routing ([`router`]), wills ([`sessions`]) and the limits that
//! keep one client from hurting the others ([`limits`], [`connection`]).
//!
//! What it does not do, by design (see `docs/broker.md`): QoS 2 (a QoS 2 publish closes the
//! connection), persistent sessions (clean_session=false is accepted and treated as clean;
//! CONNACK never reports a session present), persistence of retained messages (the
//! controller republishes desired states whenever its connection comes up), MQTT 5.

pub mod acl;
pub mod connection;
pub mod limits;
mod listener;
pub mod router;
pub mod sessions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use rumqttc::mqttbytes::QoS;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use limits::{LogThrottle, Rate};
use router::{ConnectionId, Delivery, Router};
use sessions::{Ending, Sessions};

/// Who a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Controller,
    Node(String),
    /// A device enrolling with the join token of this id.
    Enrollment(String),
}

/// Decides credentials at CONNECT (implemented by the controller from its credential
/// table; called from broker tasks, so Send + Sync).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, username: &str, password: &[u8]) -> Option<Identity>;
}

/// How much may wait for one slow subscriber before it is dropped from (QoS 0) or
/// disconnected (QoS 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundBudget {
    pub messages: usize,
    pub bytes: usize,
}

#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// MQTT over TLS.
    pub tls_listen: Option<SocketAddr>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Plain MQTT, for labs only.
    pub insecure_listen: Option<SocketAddr>,
    /// Open sockets, including those not yet past CONNECT.
    pub max_connections: usize,
    /// Largest packet accepted or sent (fixed header excluded).
    pub max_packet_bytes: usize,
    /// From accept to a complete CONNECT, TLS handshake included.
    pub connect_timeout: Duration,
    /// How long a connection with keep-alive 0 may stay silent.
    pub max_idle: Duration,
    /// Inbound packets per second of each connection, by identity. Over the rate the broker
    /// stops reading from the connection until a token is available (TCP back-pressure),
    /// so nothing is lost.
    pub controller_rate: Rate,
    pub node_rate: Rate,
    pub enrollment_rate: Rate,
    pub controller_outbound: OutboundBudget,
    pub client_outbound: OutboundBudget,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            tls_listen: None,
            tls: None,
            insecure_listen: None,
            max_connections: 20_000,
            max_packet_bytes: drover_proto::MAX_PAYLOAD_BYTES + 1024,
            connect_timeout: Duration::from_secs(10),
            max_idle: Duration::from_secs(300),
            controller_rate: Rate::UNLIMITED,
            // A Job of 2,000 pods makes an agent publish a few hundred status messages a
            // second while they start.
            node_rate: Rate {
                per_second: 2_000.0,
                burst: 5_000.0,
            },
            enrollment_rate: Rate {
                per_second: 10.0,
                burst: 20.0,
            },
            // The controller hears every node: 10,000 nodes reconnecting at once send a
            // presence and a full status each.
            controller_outbound: OutboundBudget {
                messages: 200_000,
                bytes: 512 << 20,
            },
            client_outbound: OutboundBudget {
                messages: 1_000,
                bytes: 8 << 20,
            },
        }
    }
}

macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Counters since the broker started, and the connections open now.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct BrokerStats { $($(#[$doc])* pub $name: u64,)* }

        impl BrokerStats {
            /// Every counter with its name, for `/metrics`.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }

        #[derive(Debug, Default)]
        struct Counters { $($name: AtomicU64,)* }

        impl Counters {
            fn snapshot(&self) -> BrokerStats {
                BrokerStats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

stats! {
    /// Open sockets now, including those not yet past CONNECT.
    connections_now,
    /// Sockets accepted.
    accepted,
    /// Connections that completed CONNECT.
    connected,
    refused_bad_credentials,
    refused_client_id,
    /// A node's client id that a live connection holds (a second agent for the node).
    refused_client_id_in_use,
    /// A will the identity may not leave, or an unsupported protocol level.
    refused_not_authorized,
    /// Sockets closed at accept because `max_connections` were open.
    refused_limit,
    /// No complete CONNECT within `connect_timeout`.
    connect_timeouts,
    keep_alive_timeouts,
    takeovers,
    revoked,
    wills_published,
    /// Publishes dropped because the identity may not publish on the topic.
    dropped_acl_publish,
    /// Subscriptions refused because the identity may not subscribe to the filter.
    denied_acl_subscribe,
    /// Inbound packets that had to wait for the connection's rate limit.
    rate_limited,
    /// QoS 0 messages dropped for a subscriber whose queue was full.
    dropped_slow_subscriber,
    /// Subscribers disconnected because a QoS 1 message did not fit their queue.
    disconnected_slow_subscriber,
    /// Connections closed for a packet over `max_packet_bytes`.
    oversized,
    /// Connections closed for bytes that are not MQTT 3.1.1, or a protocol violation.
    malformed,
    /// Connections closed for a QoS 2 publish.
    unsupported_qos,
    accept_errors,
}

/// Logs of events that can repeat thousands of times a second, throttled.
#[derive(Debug)]
struct Throttles {
    denied: LogThrottle,
    accept: LogThrottle,
    refused: LogThrottle,
    dropped: LogThrottle,
}

/// Something a connection task is told from outside: close, and why. The first reason
/// wins.
#[derive(Debug, Default)]
pub(crate) struct Control {
    notify: Notify,
    ending: Mutex<Option<Ending>>,
}

impl Control {
    fn close(&self, ending: Ending) {
        let mut current = self.ending.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() {
            *current = Some(ending);
            self.notify.notify_one();
        }
    }

    fn ending(&self) -> Option<Ending> {
        *self.ending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The queue of messages to one connection, bounded in messages (the channel) and bytes.
#[derive(Debug)]
pub(crate) struct Outbox {
    sender: mpsc::Sender<Delivery>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

#[derive(Debug)]
struct Registered {
    identity: Identity,
    client_id: String,
    will: Option<rumqttc::mqttbytes::v4::LastWill>,
    outbox: Outbox,
    control: Arc<Control>,
}

#[derive(Debug, Default)]
struct State {
    router: Router,
    sessions: Sessions,
    connections: HashMap<ConnectionId, Registered>,
}

struct Shared {
    settings: BrokerSettings,
    auth: Arc<dyn Authenticator>,
    state: Mutex<State>,
    counters: Counters,
    throttles: Throttles,
    next_connection: AtomicU64,
    open_sockets: AtomicUsize,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn new(settings: BrokerSettings, auth: Arc<dyn Authenticator>) -> Shared {
        let (shutdown, _) = watch::channel(false);
        Shared {
            settings,
            auth,
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            throttles: Throttles {
                denied: LogThrottle::new(Duration::from_secs(10)),
                accept: LogThrottle::new(Duration::from_secs(10)),
                refused: LogThrottle::new(Duration::from_secs(10)),
                dropped: LogThrottle::new(Duration::from_secs(10)),
            },
            next_connection: AtomicU64::new(1),
            open_sockets: AtomicUsize::new(0),
            shutdown,
        }
    }

    fn count(&self, counter: fn(&Counters) -> &AtomicU64) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
    }

    /// The state, also after a panic elsewhere poisoned the lock: every mutation of it is
    /// a few map operations that leave it consistent.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `deliveries` to their connections, applying the slow-subscriber policy.
    fn deliver(&self, state: &State, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            let Some(target) = state.connections.get(&delivery.connection) else {
                continue;
            };
            let size = delivery.message.payload.len() + delivery.message.topic.len();
            let queued = target.outbox.queued_bytes.load(Ordering::Relaxed);
            let qos = delivery.qos;
            let fits = queued + size <= target.outbox.max_bytes || queued == 0;
            // Counted before it is sent, so that the connection task, which subtracts as it
            // takes the message, never sees it uncounted.
            if fits {
                target
                    .outbox
                    .queued_bytes
                    .fetch_add(size, Ordering::Relaxed);
                match target.outbox.sender.try_send(delivery) {
                    Ok(()) => continue,
                    Err(e) => {
                        target
                            .outbox
                            .queued_bytes
                            .fetch_sub(size, Ordering::Relaxed);
                        // Its task has ended and is about to unregister it.
                        if matches!(e, mpsc::error::TrySendError::Closed(_)) {
                            continue;
                        }
                    }
                }
            }
            if qos == QoS::AtMostOnce {
                self.count(|c| &c.dropped_slow_subscriber);
            } else {
                if target.control.ending().is_none() {
                    self.count(|c| &c.disconnected_slow_subscriber);
                    if let Some(suppressed) =
                        self.throttles.dropped.allow(std::time::Instant::now())
                    {
                        tracing::warn!(client_id = %target.client_id, suppressed, "disconnecting a subscriber too slow to take its QoS 1 messages");
                    }
                }
                target.control.close(Ending::Lost);
            }
        }
    }
}

/// A running broker.
pub struct EmbeddedBroker {
    shared: Arc<Shared>,
    accept_tasks: Vec<JoinHandle<()>>,
    tls_addr: Option<SocketAddr>,
    insecure_addr: Option<SocketAddr>,
}

/// Talks to a running broker; cheap to clone.
#[derive(Clone)]
pub struct BrokerHandle {
    shared: Arc<Shared>,
}

impl EmbeddedBroker {
    pub fn handle(&self) -> BrokerHandle {
        BrokerHandle {
            shared: self.shared.clone(),
        }
    }

    /// The addresses actually bound, (TLS, insecure): with port 0, the port chosen.
    pub fn local_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (self.tls_addr, self.insecure_addr)
    }

    /// Stops accepting and closes every connection (without publishing wills).
    pub fn shutdown(self) {
        for task in &self.accept_tasks {
            task.abort();
        }
        let _ = self.shared.shutdown.send(true);
    }
}

impl BrokerHandle {
    /// Closes every connection of `identity` (revocation), at once: each connection task
    /// is woken and drops its socket. The will of each is published, because the client
    /// is now gone, as it would be had its connection been lost.
    pub fn disconnect(&self, identity: &Identity) {
        let state = self.shared.state();
        for registered in state.connections.values() {
            if registered.identity == *identity {
                self.shared.count(|c| &c.revoked);
                registered.control.close(Ending::Revoked);
            }
        }
    }

    pub fn stats(&self) -> BrokerStats {
        let mut stats = self.shared.counters.snapshot();
        stats.connections_now = self.shared.open_sockets.load(Ordering::Relaxed) as u64;
        stats
    }
}

/// Binds the configured listeners and starts accepting connections.
pub async fn start(
    settings: BrokerSettings,
    auth: Arc<dyn Authenticator>,
) -> anyhow::Result<EmbeddedBroker> {
    let tls = match (settings.tls_listen, &settings.tls) {
        (Some(addr), Some(config)) => Some((addr, config.clone())),
        (Some(addr), None) => anyhow::bail!("a TLS listener on {addr} needs a TLS configuration"),
        (None, _) => None,
    };
    if tls.is_none() && settings.insecure_listen.is_none() {
        anyhow::bail!("the embedded MQTT broker needs a TLS or an insecure listen address");
    }
    let mut bound = Vec::new();
    if let Some((addr, config)) = tls {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("the embedded MQTT broker cannot listen on {addr} (TLS)"))?;
        bound.push((listener, Some(tokio_rustls::TlsAcceptor::from(config))));
    }
    if let Some(addr) = settings.insecure_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("the embedded MQTT broker cannot listen on {addr}"))?;
        bound.push((listener, None));
    }
    let shared = Arc::new(Shared::new(settings, auth));
    let mut broker = EmbeddedBroker {
        shared: shared.clone(),
        accept_tasks: Vec::new(),
        tls_addr: None,
        insecure_addr: None,
    };
    for (listener, acceptor) in bound {
        let addr = listener
            .local_addr()
            .context("the broker's listening socket has no address")?;
        if acceptor.is_some() {
            broker.tls_addr = Some(addr);
        } else {
            broker.insecure_addr = Some(addr);
        }
        broker.accept_tasks.push(tokio::spawn(listener::accept_loop(
            listener,
            acceptor,
            shared.clone(),
        )));
    }
    Ok(broker)
}
