//! The controller's MQTT session: one task drives the connection and forwards incoming
//! messages to the control loop; another sends what the control loop publishes.

use std::time::Duration;

use drover_agent::config::BrokerAddress;
use drover_proto::topic::{parse_node_topic, NodeTopic};
use drover_proto::{decode, Message};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::control::Input;
use crate::logs::LogRouter;

/// A message for the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Topic.
    pub topic: String,
    /// Payload; empty with `retain` clears a retained message.
    pub payload: Vec<u8>,
    /// Retain flag.
    pub retain: bool,
}

/// Where the control loop sends what it publishes.
pub type Publisher = mpsc::UnboundedSender<Outgoing>;

/// Something that arrived from the broker.
#[derive(Debug)]
pub enum MqttInput {
    /// The session (re)connected: subscriptions are in place, retained state must be
    /// republished.
    Connected,
    /// A message on a subscribed topic.
    Message {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
    },
}

const SUBSCRIPTIONS: [NodeTopic; 4] = [
    NodeTopic::Presence,
    NodeTopic::Heartbeat,
    NodeTopic::Status,
    NodeTopic::LogData,
];

/// Starts the session; returns the publisher the control loop uses.
/// Log data goes straight to `logs` (it is not state the control loop keeps).
pub fn start(
    broker: BrokerAddress,
    client_id: String,
    inputs: mpsc::Sender<Input>,
    logs: LogRouter,
) -> Publisher {
    // A new client id for every connection: see the agent's link for why.
    let mut connection = 1u64;
    let mut options = MqttOptions::new(
        format!("{client_id}.{connection}"),
        broker.host.clone(),
        broker.port,
    );
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(true)
        .set_inflight(500)
        .set_max_packet_size(
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
            drover_proto::MAX_PAYLOAD_BYTES + 1024,
        );
    if let Some(user) = &broker.username {
        options.set_credentials(user, broker.password.clone().unwrap_or_default());
    }
    let (client, mut events) = AsyncClient::new(options, 1024);
    // Small messages must not wait for Nagle's algorithm.
    events.network_options.set_tcp_nodelay(true);
    let (publisher, mut outgoing) = mpsc::unbounded_channel::<Outgoing>();

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

    tokio::spawn(async move {
        let mut was_connected = false;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    info!(broker = %broker, "controller connected to the broker");
                    was_connected = true;
                    for topic in SUBSCRIPTIONS {
                        if let Err(e) = client
                            .subscribe(topic.all_nodes_filter(), QoS::AtLeastOnce)
                            .await
                        {
                            warn!(error = %e, "cannot subscribe");
                        }
                    }
                    if inputs
                        .send(Input::Mqtt(MqttInput::Connected))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p)))
                    if matches!(parse_node_topic(&p.topic), Some((_, NodeTopic::LogData))) =>
                {
                    match decode(&p.payload) {
                        Ok(Message::LogChunk(chunk)) => {
                            logs.deliver(chunk);
                        }
                        _ => warn!(topic = %p.topic, "dropped: invalid log data"),
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let input = Input::Mqtt(MqttInput::Message {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    });
                    if inputs.send(input).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if was_connected {
                        warn!(error = %e, "controller lost the broker; reconnecting");
                        was_connected = false;
                    }
                    connection += 1;
                    events
                        .mqtt_options
                        .set_client_id(format!("{client_id}.{connection}"));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    publisher
}
