//! The controller's MQTT link: a thin adapter around rumqttc. Every incoming message is
//! checked by the sans-I/O [`ControllerSession`] (a node's seal, its topic, its kind)
//! before the control loop sees it; what the control loop publishes it has sealed already.
//!
//! As in the agent, the task that polls the connection does nothing else: a full request
//! queue during a broker outage cannot stop it.

use std::sync::Arc;
use std::time::Duration;

use drover_proto::broker_url::BrokerAddress;
use drover_proto::msg::LogChunk;
use drover_proto::session::{ControllerReceived, ControllerSession};
use drover_proto::Message;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::control::Input;
use crate::credentials::{Credentials, CONTROLLER_USER};
use crate::logs::LogRouter;
use crate::metrics::Metrics;

/// A message for the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Topic.
    pub topic: String,
    /// Payload (sealed); empty with `retain` clears a retained message.
    pub payload: Vec<u8>,
    /// Retain flag.
    pub retain: bool,
}

/// Where the control loop and the API send what they publish; seals messages with the
/// controller's key.
#[derive(Clone)]
pub struct Publisher {
    queue: mpsc::UnboundedSender<Outgoing>,
    session: Arc<ControllerSession>,
}

impl Publisher {
    /// A publisher feeding `queue`, sealing with `session`'s key.
    pub fn new(
        queue: mpsc::UnboundedSender<Outgoing>,
        session: Arc<ControllerSession>,
    ) -> Publisher {
        Publisher { queue, session }
    }

    /// Queues a message whose payload is final (sealed already, or empty).
    pub fn send(&self, message: Outgoing) {
        let _ = self.queue.send(message);
    }

    /// Seals `message` for `topic` and queues it; returns the sealed payload.
    pub fn send_sealed(
        &self,
        topic: String,
        message: &Message,
        retain: bool,
    ) -> Result<Vec<u8>, drover_proto::EncodeError> {
        let payload = self.session.seal(&topic, message)?;
        self.send(Outgoing {
            topic,
            payload: payload.clone(),
            retain,
        });
        Ok(payload)
    }
}

/// Something that arrived from the broker.
#[derive(Debug)]
pub enum MqttInput {
    /// The session (re)connected: subscriptions are in place, retained state must be
    /// republished.
    Connected,
    /// A message whose seal and topic were checked; `retained` when the broker delivered
    /// it from its store (on subscribing) rather than as it was published.
    Received {
        /// The message.
        message: ControllerReceived,
        /// The retain flag of the delivery.
        retained: bool,
    },
}

/// How the controller reaches its broker.
pub struct LinkSettings {
    /// Broker address (with the controller's password for an external broker).
    pub broker: BrokerAddress,
    /// The controller's MQTT password.
    pub password: String,
    /// The CA the broker's certificate must chain to.
    pub ca_der: Vec<u8>,
}

fn spawn_poller(
    mut events: EventLoop,
    forward: mpsc::Sender<Result<Event, ConnectionError>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let event = events.poll().await;
            let failed = event.is_err();
            if forward.send(event).await.is_err() {
                return;
            }
            if failed {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
}

/// Starts the session; returns the publisher the control loop uses.
/// Log data goes straight to `logs` (it is not state the control loop keeps).
pub fn start(
    settings: LinkSettings,
    session: Arc<ControllerSession>,
    credentials: Credentials,
    inputs: mpsc::Sender<Input>,
    logs: LogRouter,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Publisher> {
    let broker = settings.broker;
    let tls = match broker.tls {
        true => Some(drover_agent::tls::pinned_ca_config(&settings.ca_der)?),
        false => None,
    };
    // One client id per process: a reconnection replaces this controller's older
    // connection, never another client's.
    let mut options = MqttOptions::new(
        format!("{CONTROLLER_USER}-{}", std::process::id()),
        broker.host.clone(),
        broker.port,
    );
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(true)
        .set_inflight(500)
        .set_credentials(
            broker
                .username
                .clone()
                .unwrap_or_else(|| CONTROLLER_USER.to_string()),
            settings.password,
        )
        .set_transport(drover_agent::tls::transport(&broker, tls)?)
        .set_max_packet_size(
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
        );
    let (client, mut events) = AsyncClient::new(options, 1024);
    // Small messages must not wait for Nagle's algorithm.
    events.network_options.set_tcp_nodelay(true);
    let (queue, mut outgoing) = mpsc::unbounded_channel::<Outgoing>();
    let publisher = Publisher::new(queue, session.clone());
    let (event_tx, mut event_rx) = mpsc::channel(256);
    spawn_poller(events, event_tx);

    let sender = client.clone();
    tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            if let Err(e) = sender
                .publish(
                    message.topic,
                    QoS::AtLeastOnce,
                    message.retain,
                    message.payload,
                )
                .await
            {
                warn!(error = %e, "cannot queue an MQTT publish");
            }
        }
    });

    let (subscriptions, subscriber) = mpsc::unbounded_channel::<()>();
    spawn_subscriber(client, subscriber);
    tokio::spawn(async move {
        let mut was_connected = false;
        while let Some(event) = event_rx.recv().await {
            match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    info!(broker = %broker, "controller connected to the broker");
                    was_connected = true;
                    let _ = subscriptions.send(());
                    if inputs
                        .send(Input::Mqtt(MqttInput::Connected))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    match route(&session, &credentials, &metrics, &p.topic, &p.payload) {
                        Routed::Log(node, chunk) => {
                            if !logs.deliver(&node, chunk) {
                                metrics.dropped_reason("unrequested_log");
                            }
                        }
                        Routed::Control(received) => {
                            let input = Input::Mqtt(MqttInput::Received {
                                message: received,
                                retained: p.retain,
                            });
                            if inputs.send(input).await.is_err() {
                                return;
                            }
                        }
                        Routed::Nowhere => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if was_connected {
                        warn!(error = %e, "controller lost the broker; reconnecting");
                        was_connected = false;
                    } else {
                        tracing::debug!(error = %e, "broker unreachable");
                    }
                }
            }
        }
    });
    Ok(publisher)
}

/// Where a message from the broker goes once checked.
#[derive(Debug)]
pub enum Routed {
    /// To the control loop.
    Control(ControllerReceived),
    /// Log data from a node, for the log router.
    Log(String, LogChunk),
    /// Nowhere (counted and logged if it was dropped).
    Nowhere,
}

/// The kind of a topic, as metrics label it: the node topic's leaf (`status`), `enroll`, or
/// `other` for anything outside the scheme.
fn topic_kind(topic: &str) -> &'static str {
    if let Some((_, kind)) = drover_proto::topic::parse_node_topic(topic) {
        kind.leaf()
    } else if drover_proto::topic::parse_enroll_topic(topic).is_some() {
        "enroll"
    } else {
        "other"
    }
}

/// Checks a message from the broker with `session` (the sender's seal, topic and kind)
/// and says where it goes; drops are counted in `metrics` and logged.
pub fn route(
    session: &ControllerSession,
    credentials: &Credentials,
    metrics: &Metrics,
    topic: &str,
    payload: &[u8],
) -> Routed {
    metrics.received(topic_kind(topic));
    match session.receive(topic, payload, |node| credentials.node_key(node)) {
        Ok(Some(ControllerReceived::Node {
            node,
            message: Message::LogChunk(chunk),
        })) => Routed::Log(node, chunk),
        Ok(Some(received)) => Routed::Control(received),
        Ok(None) => Routed::Nowhere,
        Err(dropped) => {
            metrics.dropped_reason(dropped.reason());
            warn!(
                topic,
                bytes = payload.len(),
                reason = dropped.reason(),
                "dropped an MQTT message"
            );
            Routed::Nowhere
        }
    }
}

fn spawn_subscriber(client: AsyncClient, mut connected: mpsc::UnboundedReceiver<()>) {
    tokio::spawn(async move {
        while connected.recv().await.is_some() {
            for filter in ControllerSession::subscriptions() {
                if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                    warn!(error = %e, "cannot subscribe");
                }
            }
        }
    });
}
