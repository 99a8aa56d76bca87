//! The agent's MQTT session: registration, heartbeats, desired state, clean shutdown.
//!
//! One task owns the rumqttc event loop; everything the agent sends goes through it.

use std::future::Future;
use std::net::UdpSocket;
use std::time::Duration;

use drover_proto::msg::{Heartbeat, NodeInfo, OfflineReason, Presence, PresenceState, Session};
use drover_proto::topic::NodeTopic;
use drover_proto::{decode, encode, Message};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS};
use tokio::sync::mpsc;
use tokio::time::{interval, sleep, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::BrokerAddress;
use crate::pods::{Outbound, PodInput};

/// How long a clean shutdown waits for the offline message to leave.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// Everything the session needs to know about this node.
pub struct LinkSettings {
    /// Broker to connect to.
    pub broker: BrokerAddress,
    /// Description sent when online; sent again whenever it changes (the container engine
    /// is found after the agent registered).
    pub info: tokio::sync::watch::Receiver<NodeInfo>,
    /// Agent start count (orders sessions).
    pub agent_start: u64,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Longest reconnection delay.
    pub reconnect_backoff_max: Duration,
    /// Report the connection in the systemd status line.
    pub notify_service: bool,
}

fn presence(session: Session, state: PresenceState) -> Vec<u8> {
    // Presence messages are tiny and always within bounds.
    encode(&Message::Presence(Presence { session, state })).unwrap_or_default()
}

fn last_will(node: &str, session: Session) -> LastWill {
    LastWill::new(
        NodeTopic::Presence.for_node(node),
        presence(
            session,
            PresenceState::Offline(OfflineReason::ConnectionLost),
        ),
        QoS::AtLeastOnce,
        true,
    )
}

/// The local address this machine uses to reach the broker (no packet is sent).
pub fn local_address_towards(broker: &BrokerAddress) -> Option<String> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect((broker.host.as_str(), broker.port)).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// A client id of its own for every connection. Sessions are clean and ordered by the
/// session numbers in the payloads, so nothing relies on reusing an id; and the embedded
/// broker (rumqttd 0.20) can panic, and stop accepting connections, when an id comes back
/// after a connection with it failed half-way.
fn client_id(node: &str, session: Session) -> String {
    format!(
        "drover-agent-{node}-{}.{}",
        session.agent_start, session.connection
    )
}

fn seed_from(uid: &str) -> u64 {
    uid.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Runs the session until `shutdown` resolves, then goes offline cleanly. Messages for
/// the pod manager go to `pods`; what it sends comes from `outbound`.
pub async fn run(
    settings: LinkSettings,
    pods: mpsc::Sender<PodInput>,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    shutdown: impl Future<Output = ()>,
) {
    let mut info = settings.info.clone();
    let node = info.borrow().name.clone();
    let uid = info.borrow().uid.clone();
    let mut info_open = true;
    let mut session = Session {
        agent_start: settings.agent_start,
        connection: 1,
    };
    let mut options = MqttOptions::new(
        client_id(&node, session),
        settings.broker.host.clone(),
        settings.broker.port,
    );
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
        )
        .set_last_will(last_will(&node, session));
    if let Some(user) = &settings.broker.username {
        options.set_credentials(user, settings.broker.password.clone().unwrap_or_default());
    }
    let (client, mut events) = AsyncClient::new(options, 1024);
    // Small messages must not wait for Nagle's algorithm.
    events.network_options.set_tcp_nodelay(true);
    let sender = client.clone();
    let status_topic = NodeTopic::Status.for_node(&node);
    let log_topic = NodeTopic::LogData.for_node(&node);
    let forwarder = tokio::spawn(async move {
        while let Some(message) = outbound.recv().await {
            let (topic, message) = match message {
                Outbound::Status(report) => (&status_topic, Message::Status(report)),
                Outbound::Log(chunk) => (&log_topic, Message::LogChunk(chunk)),
            };
            match encode(&message) {
                Ok(bytes) => {
                    let _ = sender
                        .publish(topic.as_str(), QoS::AtLeastOnce, false, bytes)
                        .await;
                }
                Err(e) => warn!(error = %e, "cannot encode an outgoing message"),
            }
        }
    });
    let mut backoff = Backoff::new(
        Duration::from_millis(250),
        settings.reconnect_backoff_max,
        seed_from(&uid),
    );
    let mut heartbeat = interval(settings.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sequence = 0u64;
    let mut connected = false;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = info.changed(), if info_open => {
                info_open = changed.is_ok();
                if info_open && connected {
                    let current = info.borrow_and_update().clone();
                    publish_online(&client, &node, session, &current).await;
                }
            }
            _ = heartbeat.tick(), if connected => {
                sequence += 1;
                let beat = Message::Heartbeat(Heartbeat { session, sequence });
                if let Ok(bytes) = encode(&beat) {
                    let _ = client.try_publish(NodeTopic::Heartbeat.for_node(&node), QoS::AtMostOnce, false, bytes);
                }
            }
            event = events.poll() => match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    info!(broker = %settings.broker, ?session, "connected");
                    connected = true;
                    backoff.reset();
                    heartbeat.reset();
                    let current = info.borrow_and_update().clone();
                    announce(&client, &node, session, &current).await;
                    let _ = pods.send(PodInput::Link(true)).await;
                    if settings.notify_service {
                        crate::service::status(&format!(
                            "node {node}: connected to {}",
                            settings.broker
                        ));
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    if let Some(input) = route(&node, &publish.topic, &publish.payload) {
                        let _ = pods.send(input).await;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    if connected {
                        warn!(%error, "lost the broker; reconnecting");
                        let _ = pods.send(PodInput::Link(false)).await;
                        if settings.notify_service {
                            crate::service::status(&format!(
                                "node {node}: broker {} unreachable, reconnecting; pods keep running",
                                settings.broker
                            ));
                        }
                    } else {
                        debug!(%error, "broker unreachable");
                    }
                    connected = false;
                    session.connection += 1;
                    events.mqtt_options.set_last_will(last_will(&node, session));
                    events.mqtt_options.set_client_id(client_id(&node, session));
                    let delay = backoff.next_delay();
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = sleep(delay) => {}
                    }
                }
            }
        }
    }
    forwarder.abort();
    go_offline(&client, &mut events, &node, session, connected).await;
}

async fn announce(client: &AsyncClient, node: &str, session: Session, info: &NodeInfo) {
    for topic in [NodeTopic::Desired, NodeTopic::Ack, NodeTopic::LogRequest] {
        if let Err(e) = client
            .subscribe(topic.for_node(node), QoS::AtLeastOnce)
            .await
        {
            warn!(error = %e, topic = topic.leaf(), "cannot subscribe");
        }
    }
    publish_online(client, node, session, info).await;
}

/// Publishes (retained) that the node is online, with its description.
async fn publish_online(client: &AsyncClient, node: &str, session: Session, info: &NodeInfo) {
    let online = presence(session, PresenceState::Online(Box::new(info.clone())));
    if let Err(e) = client
        .publish(
            NodeTopic::Presence.for_node(node),
            QoS::AtLeastOnce,
            true,
            online,
        )
        .await
    {
        warn!(error = %e, "cannot announce presence");
    }
}

/// Decodes a message for this node; what fails is logged and dropped.
fn route(node: &str, topic: &str, payload: &[u8]) -> Option<PodInput> {
    let kind = match drover_proto::topic::parse_node_topic(topic) {
        Some((n, kind)) if n == node => kind,
        _ => {
            debug!(topic, "ignoring message on an unexpected topic");
            return None;
        }
    };
    if payload.is_empty() {
        // A cleared retained message: this node was deleted from the fleet.
        return None;
    }
    let message = match decode(payload) {
        Ok(m) => m,
        Err(error) => {
            warn!(topic, %error, "dropped: undecodable message");
            return None;
        }
    };
    match (kind, message) {
        (NodeTopic::Desired, Message::Desired(desired)) => {
            debug!(
                generation = desired.generation,
                pods = desired.pods.len(),
                "desired state received"
            );
            Some(PodInput::Desired(desired))
        }
        (NodeTopic::Ack, Message::Ack(ack)) => Some(PodInput::Ack(ack)),
        (NodeTopic::LogRequest, Message::LogRequest(request)) => Some(PodInput::Logs(request)),
        (_, other) => {
            warn!(
                topic,
                message = other.name(),
                "dropped: wrong message type for topic"
            );
            None
        }
    }
}

async fn go_offline(
    client: &AsyncClient,
    events: &mut EventLoop,
    node: &str,
    session: Session,
    connected: bool,
) {
    if !connected {
        return;
    }
    let offline = presence(session, PresenceState::Offline(OfflineReason::Shutdown));
    let _ = client
        .publish(
            NodeTopic::Presence.for_node(node),
            QoS::AtLeastOnce,
            true,
            offline,
        )
        .await;
    let _ = client.disconnect().await;
    let flushed = tokio::time::timeout(SHUTDOWN_FLUSH, async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    if flushed.is_err() {
        warn!("broker did not take the offline message in time");
    } else {
        info!("offline");
    }
}
