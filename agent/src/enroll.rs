//! Enrollment: the first boot of a node, with a join token. The agent verifies the broker
//! against the CA the token names, asks the controller for admission under a key and a
//! password it just made, and keeps what it gets back as its [`Credentials`].

use std::time::Duration;

use anyhow::{bail, Context};
use drover_proto::keys::{PublicKey, SigningKey};
use drover_proto::msg::{controller_key_statement, EnrollReply, EnrollRequest};
use drover_proto::token::JoinToken;
use drover_proto::topic::EnrollTopic;
use drover_proto::{keys::sha256, open_enroll_reply, seal, Message};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, MqttOptions,
    Outgoing, QoS,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::BrokerAddress;
use crate::credentials::Credentials;

/// How long one attempt waits for the controller's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a finished attempt waits for its DISCONNECT to be written.
const DISCONNECT_FLUSH: Duration = Duration::from_secs(1);

/// Why an enrollment attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The controller or the broker said no; trying again will not help.
    #[error("{0}")]
    Refused(String),
    /// The broker could not be reached or did not answer; worth another attempt.
    #[error("{0}")]
    Unreachable(String),
}

/// Whether the CA certificate `ca_der` vouches for `key`: `attestation` is the CA key's
/// ECDSA P-256 signature of the key statement.
pub fn ca_vouches_for(ca_der: &[u8], key: &PublicKey, attestation: &[u8]) -> bool {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
    const EC_PUBLIC_KEY: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const PRIME256V1: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let cert = rustls_pki_types::CertificateDer::from(ca_der);
    let Ok(anchor) = webpki::anchor_from_trusted_cert(&cert) else {
        return false;
    };
    // The SubjectPublicKeyInfo's contents: the algorithm, then BIT STRING 03 42 00 and the
    // uncompressed point (65 bytes starting with 04).
    let spki = anchor.subject_public_key_info.as_ref();
    if spki.len() < 65 + 3 {
        return false;
    }
    let (head, point) = spki.split_at(spki.len() - 65);
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if !head.ends_with(&[0x03, 0x42, 0x00])
        || point[0] != 0x04
        || !contains(&EC_PUBLIC_KEY)
        || !contains(&PRIME256V1)
    {
        return false;
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(&controller_key_statement(key), attestation)
        .is_ok()
}

/// What an enrollment gives the agent.
#[derive(Debug)]
pub struct Enrolled {
    /// Its credentials.
    pub credentials: Credentials,
    /// No desired state below this generation is the node's.
    pub generation_floor: u64,
}

/// Enrolls `node` with `token` through `broker`, retrying while the broker is unreachable;
/// returns the credentials (already stored in `data_dir`).
pub async fn enroll(
    broker: &BrokerAddress,
    token: &JoinToken,
    node: &str,
    data_dir: &std::path::Path,
    retry_max: Duration,
) -> anyhow::Result<Enrolled> {
    if !broker.tls {
        warn!(%broker, "enrolling over plain MQTT: the token and the node's password cross the network readable, and nothing proves the broker genuine (lab use only)");
    }
    let key = SigningKey::generate()?;
    let password = hex::encode(drover_proto::random::random_bytes::<24>()?);
    let mut backoff = crate::backoff::Backoff::new(
        Duration::from_millis(250),
        retry_max,
        u64::from_le_bytes(key.seed()[..8].try_into().unwrap_or_default()),
    );
    loop {
        match attempt(broker, token, node, &key, &password).await {
            Ok(enrolled) => {
                enrolled.credentials.save(data_dir).with_context(|| {
                    format!(
                        "cannot store the node's credentials in {}",
                        data_dir.display()
                    )
                })?;
                info!(node, controller = %enrolled.credentials.controller_key, "enrolled");
                return Ok(enrolled);
            }
            Err(EnrollError::Refused(why)) => bail!("enrollment refused: {why}"),
            Err(EnrollError::Unreachable(why)) => {
                let delay = backoff.next_delay();
                warn!(reason = %why, retry_in = ?delay, "cannot enroll yet");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn attempt(
    broker: &BrokerAddress,
    token: &JoinToken,
    node: &str,
    key: &SigningKey,
    password: &str,
) -> Result<Enrolled, EnrollError> {
    let tls = broker
        .tls
        .then(|| crate::tls::fingerprint_config(token.ca_fingerprint).0);
    // A broker URL with a user name logs in as that account (a broker whose accounts the
    // operator manages); otherwise as the token's own enrollment login. Either way, the
    // controller admits the node only for the token's proof in the request.
    let (username, password_for_broker, refused_login) = match &broker.username {
        Some(user) => (
            user.clone(),
            broker.password.clone().unwrap_or_default(),
            format!("the broker refused the user name and password in the broker URL (user {user:?}); enrollment logs in with them when the URL has them"),
        ),
        None => (
            token.mqtt_username(),
            token.mqtt_password(),
            "the broker refused the join token: it is unknown, deleted or mistyped (create one with `drover token create`)".to_string(),
        ),
    };
    let mut options = MqttOptions::new(token.mqtt_username(), broker.host.clone(), broker.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_credentials(username, password_for_broker)
        .set_transport(
            crate::tls::transport(broker, tls).map_err(|e| EnrollError::Refused(e.to_string()))?,
        );
    let (client, events) = AsyncClient::new(options, 16);
    // The poller only polls and forwards, as in the link: the exchange below may wait on
    // the client's request queue without stopping the connection it needs drained.
    let (event_tx, mut event_rx) = mpsc::channel(16);
    let poller = spawn_poller(events, event_tx);
    let request_topic = EnrollTopic::Request.for_token(&token.id, node);
    let reply_topic = EnrollTopic::Reply.for_token(&token.id, node);
    let request = Message::EnrollRequest(EnrollRequest {
        node: node.to_string(),
        public_key: key.public(),
        password: password.to_string(),
        token_proof: token.proof(node, &key.public().0, password).to_vec(),
    });
    let sealed = seal(&request_topic, &request, key)
        .map_err(|e| EnrollError::Refused(format!("cannot encode the request: {e}")))?;
    let exchange = async {
        while let Some(event) = event_rx.recv().await {
            match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    client
                        .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
                        .await
                        .map_err(|e| EnrollError::Unreachable(e.to_string()))?;
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    client
                        .publish(request_topic.clone(), QoS::AtLeastOnce, false, sealed.clone())
                        .await
                        .map_err(|e| EnrollError::Unreachable(e.to_string()))?;
                }
                Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == reply_topic => {
                    return interpret(&reply_topic, &p.payload, token, node, key, password);
                }
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => {
                    return Err(EnrollError::Refused(match code {
                        ConnectReturnCode::BadUserNamePassword
                        | ConnectReturnCode::NotAuthorized => refused_login,
                        other => format!("the broker refused the connection: {other:?}"),
                    }))
                }
                Err(ConnectionError::Tls(e)) => {
                    return Err(EnrollError::Refused(format!(
                        "the broker's certificate does not chain to the CA the join token names ({e}): wrong broker address, or a token of another controller"
                    )))
                }
                Err(e) => return Err(EnrollError::Unreachable(e.to_string())),
            }
        }
        Err(EnrollError::Unreachable(
            "the broker connection ended".to_string(),
        ))
    };
    let result = tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(EnrollError::Unreachable(
                "no answer from the controller".to_string(),
            ))
        });
    // A clean DISCONNECT, for the poller to write; it is stopped either way.
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(DISCONNECT_FLUSH, async {
            while let Some(event) = event_rx.recv().await {
                if matches!(event, Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)) {
                    break;
                }
            }
        })
        .await;
    }
    poller.abort();
    result
}

/// Owns the event loop: polls it and forwards every event, until the connection fails or
/// the receiver is gone. An attempt is one connection, so it does not reconnect.
fn spawn_poller(
    mut events: EventLoop,
    forward: mpsc::Sender<Result<Event, ConnectionError>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let event = events.poll().await;
            let failed = event.is_err();
            if forward.send(event).await.is_err() || failed {
                return;
            }
        }
    })
}

fn interpret(
    topic: &str,
    payload: &[u8],
    token: &JoinToken,
    node: &str,
    key: &SigningKey,
    password: &str,
) -> Result<Enrolled, EnrollError> {
    let reply = open_enroll_reply(topic, payload)
        .map_err(|e| EnrollError::Refused(format!("unusable answer from the controller: {e}")))?;
    match reply {
        EnrollReply::Refused { reason } => Err(EnrollError::Refused(reason)),
        EnrollReply::Accepted {
            controller_key,
            attestation,
            ca_der,
            node_key,
            generation_floor,
        } => {
            if node_key != key.public() {
                return Err(EnrollError::Unreachable(
                    "an answer to another enrollment request for this name arrived; asking again"
                        .to_string(),
                ));
            }
            if sha256(&ca_der) != token.ca_fingerprint {
                return Err(EnrollError::Refused(
                    "the answer names a CA other than the join token's".to_string(),
                ));
            }
            if !ca_vouches_for(&ca_der, &controller_key, &attestation) {
                return Err(EnrollError::Refused(
                    "the controller key in the answer is not vouched for by the join token's CA"
                        .to_string(),
                ));
            }
            Ok(Enrolled {
                credentials: Credentials {
                    node: node.to_string(),
                    key_seed: *key.seed(),
                    password: password.to_string(),
                    controller_key,
                    ca_der,
                },
                generation_floor,
            })
        }
    }
}
