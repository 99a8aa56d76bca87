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
use tokio::time::{interval, sleep, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::BrokerAddress;

/// How long a clean shutdown waits for the offline message to leave.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// Everything the session needs to know about this node.
pub struct LinkSettings {
    /// Broker to connect to.
    pub broker: BrokerAddress,
    /// Description sent when online.
    pub info: NodeInfo,
    /// Agent start count (orders sessions).
    pub agent_start: u64,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Longest reconnection delay.
    pub reconnect_backoff_max: Duration,
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

fn seed_from(uid: &str) -> u64 {
    uid.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Runs the session until `shutdown` resolves, then goes offline cleanly.
pub async fn run(settings: LinkSettings, shutdown: impl Future<Output = ()>) {
    let node = settings.info.name.clone();
    let mut session = Session {
        agent_start: settings.agent_start,
        connection: 1,
    };
    let mut options = MqttOptions::new(
        format!("drover-agent-{node}"),
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
    let (client, mut events) = AsyncClient::new(options, 64);
    let mut backoff = Backoff::new(
        Duration::from_millis(250),
        settings.reconnect_backoff_max,
        seed_from(&settings.info.uid),
    );
    let mut heartbeat = interval(settings.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sequence = 0u64;
    let mut connected = false;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = heartbeat.tick(), if connected => {
                sequence += 1;
                let beat = Message::Heartbeat(Heartbeat { session, sequence });
                if let Ok(bytes) = encode(&beat) {
                    let _ = client.try_publish(NodeTopic::Heartbeat.for_node(&node), QoS::AtMostOnce, false, bytes);
                }
            }
            event = events.poll() => match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    info!(broker = %format!("{}:{}", settings.broker.host, settings.broker.port), ?session, "connected");
                    connected = true;
                    backoff.reset();
                    heartbeat.reset();
                    announce(&client, &node, session, &settings.info).await;
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    handle_publish(&node, &publish.topic, &publish.payload);
                }
                Ok(_) => {}
                Err(error) => {
                    if connected {
                        warn!(%error, "lost the broker; reconnecting");
                    } else {
                        debug!(%error, "broker unreachable");
                    }
                    connected = false;
                    session.connection += 1;
                    events.mqtt_options.set_last_will(last_will(&node, session));
                    let delay = backoff.next_delay();
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = sleep(delay) => {}
                    }
                }
            }
        }
    }
    go_offline(&client, &mut events, &node, session, connected).await;
}

async fn announce(client: &AsyncClient, node: &str, session: Session, info: &NodeInfo) {
    let desired = NodeTopic::Desired.for_node(node);
    if let Err(e) = client.subscribe(desired, QoS::AtLeastOnce).await {
        warn!(error = %e, "cannot subscribe to desired state");
    }
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

fn handle_publish(node: &str, topic: &str, payload: &[u8]) {
    if topic != NodeTopic::Desired.for_node(node) {
        debug!(topic, "ignoring message on an unexpected topic");
        return;
    }
    match decode(payload) {
        Ok(Message::Desired(desired)) => {
            debug!(
                generation = desired.generation,
                pods = desired.pods.len(),
                "desired state received"
            );
        }
        Ok(other) => warn!(
            topic,
            message = other.name(),
            "dropped: wrong message type for topic"
        ),
        Err(error) => warn!(topic, %error, "dropped: undecodable desired state"),
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
