//! Helpers for the broker's integration tests: a broker on 127.0.0.1:0 with fixed
//! credentials, rumqttc clients whose events arrive on a channel, and raw TCP clients.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use drover::broker::{self, Authenticator, BrokerSettings, EmbeddedBroker, Identity};
use rumqttc::mqttbytes::v4::{ConnAck, Connect, LastWill, Packet};
use rumqttc::mqttbytes::QoS;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub const CONTROLLER: (&str, &str) = ("controller", "controller-secret");
pub const NODE_A: (&str, &str) = ("node-a", "a-secret");
pub const NODE_B: (&str, &str) = ("node-b", "b-secret");
pub const ENROLL_T1: (&str, &str) = ("join-t1", "t1-secret");

/// Fixed credentials: the controller, nodes `a` and `b`, join token `0a0b0c01`.
pub struct TestAuth;

impl Authenticator for TestAuth {
    fn authenticate(&self, username: &str, password: &[u8]) -> Option<Identity> {
        let known = [
            (CONTROLLER, Identity::Controller),
            (NODE_A, Identity::Node("a".into())),
            (NODE_B, Identity::Node("b".into())),
            (ENROLL_T1, Identity::Enrollment("0a0b0c01".into())),
        ];
        known
            .into_iter()
            .find(|((u, p), _)| *u == username && p.as_bytes() == password)
            .map(|(_, identity)| identity)
    }
}

pub async fn start_broker(
    adjust: impl FnOnce(&mut BrokerSettings),
) -> (EmbeddedBroker, SocketAddr) {
    let mut settings = BrokerSettings {
        insecure_listen: Some("127.0.0.1:0".parse().expect("address")),
        ..Default::default()
    };
    adjust(&mut settings);
    let broker = broker::start(settings, Arc::new(TestAuth))
        .await
        .expect("the broker starts");
    let addr = broker
        .local_addrs()
        .1
        .or(broker.local_addrs().0)
        .expect("bound");
    (broker, addr)
}

/// Polls `condition` every 10 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, f).await.ok()
}

/// A rumqttc client; its event loop runs in a task until the first error.
pub struct Client {
    pub client: AsyncClient,
    pub events: mpsc::UnboundedReceiver<Result<Event, ConnectionError>>,
}

pub fn options(addr: SocketAddr, client_id: &str, login: Option<(&str, &str)>) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(4 << 20, 4 << 20);
    if let Some((u, p)) = login {
        options.set_credentials(u, p);
    }
    options
}

pub fn client(options: MqttOptions) -> Client {
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(event) => {
                    if tx.send(Ok(event)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    Client { client, events }
}

impl Client {
    /// Waits for CONNACK: `Ok` if accepted, the error otherwise.
    pub async fn connected(&mut self) -> Result<(), ConnectionError> {
        loop {
            match within(Duration::from_secs(5), self.events.recv()).await {
                Some(Some(Ok(Event::Incoming(Packet::ConnAck(_))))) => return Ok(()),
                Some(Some(Ok(_))) => {}
                Some(Some(Err(e))) => return Err(e),
                Some(None) => panic!("event loop ended"),
                None => panic!("no CONNACK within 5 s"),
            }
        }
    }

    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
    ) -> rumqttc::mqttbytes::v4::SubscribeReasonCode {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("subscribe queued");
        loop {
            match within(Duration::from_secs(5), self.events.recv()).await {
                Some(Some(Ok(Event::Incoming(Packet::SubAck(ack))))) => return ack.return_codes[0],
                Some(Some(Ok(_))) => {}
                other => panic!("no SUBACK: {other:?}"),
            }
        }
    }

    /// The next message within `limit`, or `None`.
    pub async fn next_publish(
        &mut self,
        limit: Duration,
    ) -> Option<rumqttc::mqttbytes::v4::Publish> {
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(Event::Incoming(Packet::Publish(p))))) => return Some(p),
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
    }

    /// Whether the connection fails within `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) | Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// A connected rumqttc client; panics if refused.
pub async fn connected_client(addr: SocketAddr, client_id: &str, login: (&str, &str)) -> Client {
    let mut c = client(options(addr, client_id, Some(login)));
    c.connected().await.expect("connected");
    c
}

/// A client connected again right after its previous connection was dropped: the broker
/// refuses a node's client id until it has seen the old socket close, as an agent
/// restarting at once may find; like the agent, retry.
pub async fn reconnected_client(addr: SocketAddr, client_id: &str, login: (&str, &str)) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = client(options(addr, client_id, Some(login)));
        match c.connected().await {
            Ok(()) => return c,
            Err(ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("not connected again: {e:?}"),
        }
    }
}

pub fn encode(packet: &Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.write(&mut buf, 16 << 20).expect("encodes");
    buf.to_vec()
}

/// Connects over raw TCP; returns the stream and the CONNACK.
pub async fn raw_connect(
    addr: SocketAddr,
    client_id: &str,
    login: Option<(&str, &str)>,
    keep_alive: u16,
    will: Option<LastWill>,
) -> (TcpStream, Option<ConnAck>) {
    let stream = TcpStream::connect(addr).await.expect("TCP connect");
    mqtt_connect_over(stream, client_id, login, keep_alive, will).await
}

/// Sends CONNECT over `stream`; returns it and the CONNACK.
pub async fn mqtt_connect_over(
    mut stream: TcpStream,
    client_id: &str,
    login: Option<(&str, &str)>,
    keep_alive: u16,
    will: Option<LastWill>,
) -> (TcpStream, Option<ConnAck>) {
    let mut connect = Connect::new(client_id);
    connect.keep_alive = keep_alive;
    connect.last_will = will;
    if let Some((u, p)) = login {
        connect.set_login(u, p);
    }
    stream
        .write_all(&encode(&Packet::Connect(connect)))
        .await
        .expect("write CONNECT");
    let ack = match read_packet(&mut stream, Duration::from_secs(5)).await {
        Some(Packet::ConnAck(ack)) => Some(ack),
        _ => None,
    };
    (stream, ack)
}

/// Reads one packet within `limit`.
pub async fn read_packet(stream: &mut TcpStream, limit: Duration) -> Option<Packet> {
    let deadline = Instant::now() + limit;
    let mut buf = BytesMut::new();
    loop {
        match Packet::read(&mut buf, 16 << 20) {
            Ok(packet) => return Some(packet),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(_) => return None,
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// Whether the broker closes `stream` within `limit` (whatever it sent before).
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut sink = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

pub fn publish(topic: &str, qos: QoS, payload: impl Into<Vec<u8>>, pkid: u16) -> Packet {
    let mut p = rumqttc::mqttbytes::v4::Publish::new(topic, qos, payload);
    if qos != QoS::AtMostOnce {
        p.pkid = pkid;
    }
    Packet::Publish(p)
}

/// A server configuration with a certificate for 127.0.0.1 from a fresh test CA, and the
/// CA's certificate (DER).
pub fn test_tls() -> (rustls::ServerConfig, Vec<u8>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let server_key = rcgen::KeyPair::generate().expect("key");
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .expect("server config");
    (server_config, ca.der().to_vec())
}

/// A client configuration trusting only the CA `ca_der`.
pub fn client_tls_trusting(ca_der: Vec<u8>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(ca_der))
        .expect("root");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
