//! The agent's MQTT link: a thin adapter that carries out what the sans-I/O
//! [`AgentSession`] decides.
//!
//! Three tasks, so that nothing ever cancels or blocks the one that polls the connection:
//! the poller owns rumqttc's event loop and only forwards its events; the sender owns the
//! client handle and performs publishes and subscriptions (it may wait on a full request
//! queue during a broker outage without stopping the poller); the driver (this function)
//! holds the session and reacts to events, heartbeats, node-info changes and pod reports.
//! rumqttc does not tolerate a `poll()` dropped while it is connecting: a half-open
//! connection's will was then published by the broker while the agent was connected.

use std::future::Future;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drover_proto::msg::NodeInfo;
use drover_proto::session::{AgentReceived, AgentSession, Publish, Qos};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, LastWill,
    MqttOptions, Outgoing, QoS,
};
use tokio::sync::mpsc;
use tokio::time::{interval, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config::BrokerAddress;
use crate::credentials::Credentials;
use crate::pods::{Outbound, PodInput};

/// How long a clean shutdown waits for the offline message to leave.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// Everything the session needs to know about this node.
pub struct LinkSettings {
    /// Broker to connect to.
    pub broker: BrokerAddress,
    /// The node's credentials (from enrollment).
    pub credentials: Credentials,
    /// Description sent when online; sent again whenever it changes (the container engine
    /// is found after the agent registered).
    pub info: tokio::sync::watch::Receiver<NodeInfo>,
    /// Agent start count (orders sessions).
    pub agent_start: u64,
    /// Generation of the desired state the agent stored: nothing older is accepted.
    pub applied_generation: u64,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Longest reconnection delay.
    pub reconnect_backoff_max: Duration,
    /// Report the connection in the systemd status line.
    pub notify_service: bool,
    /// How long the broker may refuse the node's client id (held by another connection)
    /// before the link ends as refused.
    pub name_held_timeout: Duration,
}

/// Why the link ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEnd {
    /// The agent is shutting down.
    Shutdown,
    /// Another agent holds the node's name: this one must stand down. The reason.
    Refused(String),
}

/// Messages the agent dropped, by reason (logged as they happen).
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Desired states, acks or log requests without the controller's valid seal.
    pub rejected_signature: AtomicU64,
    /// Messages that were undecodable or did not belong on their topic.
    pub rejected_other: AtomicU64,
    /// Desired states older than the one applied.
    pub rejected_stale: AtomicU64,
}

/// The local address this machine uses to reach the broker (no packet is sent).
pub fn local_address_towards(broker: &BrokerAddress) -> Option<String> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect((broker.host.as_str(), broker.port)).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

fn last_will(publish: Publish) -> LastWill {
    LastWill::new(
        publish.topic,
        publish.payload,
        qos(publish.qos),
        publish.retain,
    )
}

fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

fn seed_from(uid: &str) -> u64 {
    drover_proto::hash::fnv1a64(uid.as_bytes())
}

/// What the sender task does with the client handle.
enum Command {
    Publish(Publish),
    Subscribe(Vec<String>),
    Disconnect,
}

/// What the poller needs before it reconnects.
struct Reconnect {
    will: Option<LastWill>,
    delay: Duration,
}

fn spawn_poller(
    mut events: EventLoop,
    forward: mpsc::Sender<Result<Event, ConnectionError>>,
    mut reconnect: mpsc::Receiver<Reconnect>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let event = events.poll().await;
            let failed = event.is_err();
            if forward.send(event).await.is_err() {
                return;
            }
            if failed {
                let Some(next) = reconnect.recv().await else {
                    return;
                };
                if let Some(will) = next.will {
                    events.mqtt_options.set_last_will(will);
                }
                tokio::time::sleep(next.delay).await;
            }
        }
    })
}

fn spawn_sender(client: AsyncClient, mut commands: mpsc::UnboundedReceiver<Command>) {
    tokio::spawn(async move {
        while let Some(command) = commands.recv().await {
            let result = match command {
                Command::Publish(p) => {
                    client
                        .publish(p.topic, qos(p.qos), p.retain, p.payload)
                        .await
                }
                Command::Subscribe(filters) => {
                    let mut result = Ok(());
                    for filter in filters {
                        result = result.and(client.subscribe(filter, QoS::AtLeastOnce).await);
                    }
                    result
                }
                Command::Disconnect => client.disconnect().await,
            };
            if let Err(e) = result {
                debug!(error = %e, "MQTT request not queued");
            }
        }
    });
}

/// Runs the session until `shutdown` resolves, then goes offline cleanly. Messages for
/// the pod manager go to `pods`; what it sends comes from `outbound`.
pub async fn run(
    settings: LinkSettings,
    pods: mpsc::Sender<PodInput>,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    counters: Arc<LinkCounters>,
    shutdown: impl Future<Output = ()>,
) -> LinkEnd {
    let mut info = settings.info.clone();
    let uid = info.borrow().uid.clone();
    let node = settings.credentials.node.clone();
    let mut info_open = true;
    let mut session = AgentSession::new(
        &node,
        settings.credentials.signing_key(),
        settings.credentials.controller_key,
        settings.agent_start,
    )
    .with_applied_generation(settings.applied_generation);
    let broker = &settings.broker;
    let tls = match broker.tls {
        true => match crate::tls::pinned_ca_config(&settings.credentials.ca_der) {
            Ok(config) => Some(config),
            Err(e) => {
                error!(error = %e, "the stored CA certificate is unusable; re-enroll this node");
                None
            }
        },
        false => None,
    };
    let mut options = MqttOptions::new(session.client_id(), broker.host.clone(), broker.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_credentials(
            // A broker with accounts of its own (given in the URL) is used as configured;
            // otherwise the node logs in with what it got at enrollment.
            broker.username.clone().unwrap_or_else(|| node.clone()),
            broker
                .password
                .clone()
                .unwrap_or_else(|| settings.credentials.password.clone()),
        )
        .set_transport(match crate::tls::transport(broker, tls) {
            Ok(transport) => transport,
            Err(e) => {
                error!(error = %e, "cannot set up the broker connection");
                return LinkEnd::Shutdown;
            }
        })
        .set_max_packet_size(
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
        );
    if let Ok(will) = session.will() {
        options.set_last_will(last_will(will));
    }
    let (client, mut events) = AsyncClient::new(options, 1024);
    // Small messages must not wait for Nagle's algorithm.
    events.network_options.set_tcp_nodelay(true);
    let (event_tx, mut event_rx) = mpsc::channel(64);
    let (reconnect_tx, reconnect_rx) = mpsc::channel(1);
    let poller = spawn_poller(events, event_tx, reconnect_rx);
    let (commands, commands_rx) = mpsc::unbounded_channel();
    spawn_sender(client, commands_rx);
    let send = |publish: Result<Option<Publish>, drover_proto::EncodeError>| match publish {
        Ok(Some(p)) => {
            let _ = commands.send(Command::Publish(p));
        }
        Ok(None) => {}
        Err(e) => warn!(error = %e, "cannot encode an outgoing message"),
    };

    let mut backoff = Backoff::new(
        Duration::from_millis(250),
        settings.reconnect_backoff_max,
        seed_from(&uid),
    );
    let mut heartbeat = interval(settings.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut refused_logged = false;
    let mut in_use_logged = false;
    // Since when the broker has refused the node's client id, without a connection since.
    let mut held_since: Option<tokio::time::Instant> = None;
    let mut end = LinkEnd::Shutdown;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = info.changed(), if info_open => {
                info_open = changed.is_ok();
                if info_open && session.connected() {
                    let current = info.borrow_and_update().clone();
                    send(session.online(&current).map(Some));
                }
            }
            _ = heartbeat.tick(), if session.connected() => send(session.heartbeat()),
            Some(message) = outbound.recv() => {
                // Reports wait in the pod manager (resent until acknowledged) while the
                // link is down; log data for a client that is gone is not worth keeping.
                if session.connected() {
                    send(match message {
                        Outbound::Status(report) => session.status(report).map(Some),
                        Outbound::Log(chunk) => session.log(chunk).map(Some),
                    });
                }
            }
            Some(event) = event_rx.recv() => match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    info!(broker = %broker, session = ?session.session(), "connected");
                    backoff.reset();
                    heartbeat.reset();
                    refused_logged = false;
                    in_use_logged = false;
                    held_since = None;
                    let current = info.borrow_and_update().clone();
                    match session.on_connected(&current) {
                        Ok((subscriptions, online)) => {
                            let _ = commands.send(Command::Subscribe(subscriptions));
                            let _ = commands.send(Command::Publish(online));
                        }
                        Err(e) => warn!(error = %e, "cannot encode the node's presence"),
                    }
                    let _ = pods.send(PodInput::Link(true)).await;
                    if settings.notify_service {
                        crate::service::status(&format!("node {node}: connected to {broker}"));
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    match session.receive(&publish.topic, &publish.payload) {
                        Ok(AgentReceived::Desired(desired)) => {
                            debug!(generation = desired.generation, pods = desired.pods.len(), "desired state received");
                            let _ = pods.send(PodInput::Desired(desired)).await;
                        }
                        Ok(AgentReceived::Ack(ack)) => {
                            let _ = pods.send(PodInput::Ack(ack)).await;
                        }
                        Ok(AgentReceived::LogRequest(request)) => {
                            let _ = pods.send(PodInput::Logs(request)).await;
                        }
                        Ok(AgentReceived::Cleared) => debug!("the retained desired state was cleared"),
                        Err(drover_proto::session::Dropped::Stale) => {
                            let total = counters.rejected_stale.fetch_add(1, Ordering::Relaxed) + 1;
                            warn!(topic = %publish.topic, total, "refused a desired state older than the one already applied (a stale retained message or a replay)");
                        }
                        Err(dropped) => {
                            let counter = match dropped {
                                drover_proto::session::Dropped::Signature => &counters.rejected_signature,
                                _ => &counters.rejected_other,
                            };
                            let total = counter.fetch_add(1, Ordering::Relaxed) + 1;
                            warn!(topic = %publish.topic, reason = dropped.reason(), total, "rejected a message that the controller did not sign for this node");
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    if session.connected() {
                        warn!(%error, "lost the broker; reconnecting");
                        let _ = pods.send(PodInput::Link(false)).await;
                        if settings.notify_service {
                            crate::service::status(&format!(
                                "node {node}: broker {broker} unreachable, reconnecting; pods keep running"
                            ));
                        }
                    } else if let ConnectionError::ConnectionRefused(
                        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
                    ) = &error
                    {
                        if !refused_logged {
                            error!("the broker refused this node's credentials: the node was deleted or revoked; enroll it again with a new join token (drover token create)");
                            refused_logged = true;
                        }
                    } else if let ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId) = &error {
                        // Also for a moment after a quick restart, until the broker has seen
                        // the old connection close: the retry then gets in.
                        if !in_use_logged {
                            let retrying = if broker.username.is_none() {
                                format!("retrying for {}", humantime::format_duration(settings.name_held_timeout))
                            } else {
                                "retrying".to_string()
                            };
                            error!("the broker refused node {node}: another connection holds {node}'s client id (a second agent with a copy of this node's data directory, or this agent's own earlier connection the broker has not yet seen end, which it drops within 45 s); {retrying}");
                            in_use_logged = true;
                        } else {
                            debug!("the broker still refuses node {node}: another connection holds {node}'s client id");
                        }
                        // With its own login the node's client id is the only one it may use,
                        // so this refusal means the id is held; under another account
                        // (credentials in the broker URL) it may mean the account's ids differ.
                        let own_login = broker.username.is_none();
                        let since = *held_since.get_or_insert_with(tokio::time::Instant::now);
                        if own_login && since.elapsed() >= settings.name_held_timeout {
                            let reason = format!("the broker refused node {node}'s client id for {}: another agent holds it", humantime::format_duration(settings.name_held_timeout));
                            error!("{reason}; stopping this agent's pods and exiting");
                            end = LinkEnd::Refused(reason);
                            break;
                        }
                    } else {
                        debug!(%error, "broker unreachable");
                    }
                    if !matches!(error, ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId)) {
                        held_since = None;
                    }
                    session.on_connection_lost();
                    let will = session.will().ok().map(last_will);
                    let delay = backoff.next_delay();
                    if reconnect_tx.send(Reconnect { will, delay }).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    match end {
        LinkEnd::Refused(_) => leave_quietly(&session, &commands, &mut event_rx).await,
        LinkEnd::Shutdown => go_offline(&session, &commands, &mut event_rx).await,
    }
    poller.abort();
    end
}

/// Disconnects cleanly, saying nothing: the name, and its retained presence, are another
/// agent's (a last will would overwrite them).
async fn leave_quietly(
    session: &AgentSession,
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::Receiver<Result<Event, ConnectionError>>,
) {
    if !session.connected() {
        return;
    }
    let _ = commands.send(Command::Disconnect);
    let _ = tokio::time::timeout(SHUTDOWN_FLUSH, disconnected(events)).await;
}

async fn disconnected(events: &mut mpsc::Receiver<Result<Event, ConnectionError>>) {
    while let Some(event) = events.recv().await {
        if matches!(event, Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)) {
            break;
        }
    }
}

async fn go_offline(
    session: &AgentSession,
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::Receiver<Result<Event, ConnectionError>>,
) {
    let Ok(Some(offline)) = session.shutdown() else {
        return;
    };
    let _ = commands.send(Command::Publish(offline));
    let _ = commands.send(Command::Disconnect);
    let flushed = tokio::time::timeout(SHUTDOWN_FLUSH, disconnected(events)).await;
    if flushed.is_err() {
        warn!("broker did not take the offline message in time");
    } else {
        info!("offline");
    }
}
