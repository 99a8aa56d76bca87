//! The generated Mosquitto configuration and dynamic-security commands against the real
//! Mosquitto (2.0.11 on Debian 12), over TLS: every node and join token is confined to its
//! own topics. Skipped, with a message, where Mosquitto is not installed.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover::cli::broker_config::{write_files, ServerCertIssuer};
use drover::mosquitto::config::{self, BrokerLayout, KEY_FILE, SALT_LEN};
use drover::mosquitto::dynsec::{self, Response, COMMAND_TOPIC, RESPONSE_TOPIC};
use drover::mosquitto::CONTROLLER_USERNAME;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const CONTROLLER_PASSWORD: &str = "controller-test-password";
/// How long a message the broker lets through may take; also the bound on every wait.
const WAIT: Duration = Duration::from_secs(5);

/// A Mosquitto started from `drover broker-config`'s files; killed on drop.
struct Broker {
    child: Child,
    port: u16,
    ca_pem: String,
    dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("mosquitto.log"));
            eprintln!("--- mosquitto.log ---\n{}", log.unwrap_or_default());
        }
    }
}

/// A TCP port on 127.0.0.1 that no other test of this process has been given. Ports come
/// from below the kernel's ephemeral range, one after another from an offset of this
/// process: two tests asking at once never get the same port (port 0 can hand the same
/// number to both before either binds it, and a client of one test then reaches the other
/// test's server).
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    let offset = (std::process::id() * 7919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (offset + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Mosquitto started as root drops to the user `mosquitto`, which must read the key and
/// rewrite the dynamic-security file (what `drover broker-config` tells operators to chown).
fn hand_to_mosquitto_user(dir: &Path) {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if !is_root {
        return;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "mosquitto"]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    let (Some(uid), Some(gid)) = (id("-u"), id("-g")) else {
        return;
    };
    for path in [
        dir.to_path_buf(),
        dir.join(config::DYNSEC_FILE),
        dir.join(KEY_FILE),
    ] {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown to mosquitto");
    }
}

impl Broker {
    /// `None` (with a message) when Mosquitto is not installed.
    fn start() -> Option<Broker> {
        if !Path::new(MOSQUITTO).exists() {
            eprintln!("SKIPPED: {MOSQUITTO} is missing (apt-get install -y mosquitto)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let layout = BrokerLayout {
            dir: dir.path().to_path_buf(),
            port,
            bind: Some("127.0.0.1".into()),
            insecure_port: None,
            plugin: config::default_plugin_path(),
        };
        let tls = drover::pki::Pki::load_or_create(&dir.path().join("pki"), &[])
            .expect("test CA")
            .server_tls(&["127.0.0.1".to_owned()])
            .expect("test certificate");
        let files = config::files(&layout, &tls, CONTROLLER_PASSWORD, &[42; SALT_LEN]);
        write_files(dir.path(), &files).expect("write broker files");
        hand_to_mosquitto_user(dir.path());

        let log = std::fs::File::create(dir.path().join("mosquitto.log")).expect("log file");
        let child = Command::new(MOSQUITTO)
            .arg("-v")
            .arg("-c")
            .arg(dir.path().join(config::CONF_FILE))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        let broker = Broker {
            child,
            port,
            ca_pem: tls.ca_pem,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(broker)
    }

    fn tls(&self) -> TlsConfiguration {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut self.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        TlsConfiguration::Rustls(Arc::new(config))
    }

    /// Connects and waits for the CONNACK; `Err` is the broker's refusal.
    async fn connect(
        &self,
        client_id: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<Client, ConnectionError> {
        self.connect_with_will(client_id, credentials, None).await
    }

    async fn connect_with_will(
        &self,
        client_id: &str,
        credentials: Option<(&str, &str)>,
        will: Option<LastWill>,
    ) -> Result<Client, ConnectionError> {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", self.port);
        options.set_transport(Transport::tls_with_config(self.tls()));
        options.set_keep_alive(Duration::from_secs(30));
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        if let Some(will) = will {
            options.set_last_will(will);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        match timeout(WAIT, eventloop.poll())
            .await
            .expect("CONNACK in time")
        {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {}
            Ok(other) => panic!("expected CONNACK, got {other:?}"),
            Err(e) => return Err(e),
        }
        let (tx, events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(drive(eventloop, tx));
        Ok(Client {
            client,
            events,
            driver,
        })
    }

    async fn controller(&self) -> Client {
        let mut c = self
            .connect(
                "drover-controller-test",
                Some((CONTROLLER_USERNAME, CONTROLLER_PASSWORD)),
            )
            .await
            .expect("the controller connects");
        c.subscribe_ok(RESPONSE_TOPIC).await;
        c
    }

    async fn node(&self, node: &str, password: &str) -> Client {
        self.connect(&format!("drover-agent-{node}"), Some((node, password)))
            .await
            .unwrap_or_else(|e| panic!("node {node} connects: {e}"))
    }
}

/// Forwards a connection's incoming packets until it fails, then reports the failure.
async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<Result<Packet, String>>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(packet)) => {
                if tx.send(Ok(packet)).is_err() {
                    return;
                }
            }
            Ok(Event::Outgoing(_)) => {}
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        }
    }
}

struct Client {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, String>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Client {
    /// Closes the socket without a DISCONNECT, as a crash would: the broker sends the will.
    fn crash(self) {
        self.driver.abort();
    }

    /// The next packet matching `want`, skipping others; panics after `WAIT`.
    async fn next<T>(&mut self, what: &str, mut want: impl FnMut(&Packet) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("timed out waiting for {what}"),
                Ok(None) => panic!("connection gone while waiting for {what}"),
                Ok(Some(Err(e))) => panic!("connection failed while waiting for {what}: {e}"),
                Ok(Some(Ok(packet))) => {
                    if let Some(found) = want(&packet) {
                        return found;
                    }
                }
            }
        }
    }

    async fn suback(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queue SUBSCRIBE");
        self.next(&format!("SUBACK for {filter}"), |p| match p {
            Packet::SubAck(ack) => ack.return_codes.first().copied(),
            _ => None,
        })
        .await
    }

    async fn subscribe_ok(&mut self, filter: &str) {
        assert_eq!(
            self.suback(filter).await,
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            "subscribing to {filter}"
        );
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .await
            .expect("queue PUBLISH");
    }

    /// The next message received, as (topic, payload).
    async fn message(&mut self) -> (String, Vec<u8>) {
        self.next("a PUBLISH", |p| match p {
            Packet::Publish(m) => Some((m.topic.clone(), m.payload.to_vec())),
            _ => None,
        })
        .await
    }

    /// Publishes a dynamic-security command and returns the broker's answer.
    async fn dynsec(&mut self, payload: Vec<u8>) -> Vec<Response> {
        self.publish(COMMAND_TOPIC, payload, false).await;
        let (topic, body) = self.message().await;
        assert_eq!(topic, RESPONSE_TOPIC);
        dynsec::parse_responses(&body).expect("dynsec reply")
    }

    async fn dynsec_ok(&mut self, payload: Vec<u8>) {
        let responses = self.dynsec(payload).await;
        dynsec::check(&responses).expect("dynsec commands succeed");
    }

    /// Waits until the broker closes this connection.
    async fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

fn refused(result: Result<Client, ConnectionError>) -> ConnectReturnCode {
    match result {
        Ok(_) => panic!("the broker accepted the connection"),
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(e) => panic!("expected a CONNACK refusal, got {e}"),
    }
}

async fn enroll(controller: &mut Client, node: &str, password: &str) {
    controller
        .dynsec_ok(dynsec::enroll_node(node, password).expect("valid node"))
        .await;
}

#[tokio::test]
async fn enroll_node_commands_succeed_and_are_idempotent() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    let first = controller
        .dynsec(dynsec::enroll_node("a", "pw-a").expect("valid"))
        .await;
    assert_eq!(first.len(), 4);
    assert!(first
        .iter()
        .all(|r| r.correlation.as_deref() == Some("enroll_node:a")));
    dynsec::check(&first).expect("first enrollment");
    enroll(&mut controller, "a", "pw-a2").await;
    // The plugin persists every change into the generated state file.
    let state =
        std::fs::read_to_string(broker.dir.path().join(config::DYNSEC_FILE)).expect("dynsec state");
    assert!(state.contains("drover-node-a"), "{state}");
    // Re-enrolling replaced the password.
    refused(broker.connect("drover-agent-a", Some(("a", "pw-a"))).await);
    broker.node("a", "pw-a2").await;
}

#[tokio::test]
async fn a_node_publishes_only_its_own_topics() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    enroll(&mut controller, "a", "pw-a").await;
    enroll(&mut controller, "b", "pw-b").await;
    controller.subscribe_ok("drover/v1/nodes/+/status").await;
    controller.subscribe_ok("drover/v1/nodes/+/presence").await;
    let mut a = broker.node("a", "pw-a").await;

    a.publish("drover/v1/nodes/a/presence", "online", true)
        .await;
    assert_eq!(
        controller.message().await,
        ("drover/v1/nodes/a/presence".into(), b"online".to_vec())
    );
    a.publish("drover/v1/nodes/b/status", "forged", false).await;
    a.publish("drover/v1/nodes/b/presence", "forged", true)
        .await;
    // The broker acknowledges all three QoS 1 publishes, the forbidden ones too, and keeps
    // the connection...
    for _ in 0..3 {
        a.next("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
    }
    // ...but delivers neither: messages from one client arrive in order, so the forged
    // ones would have come before this one.
    a.publish("drover/v1/nodes/a/status", "mine", false).await;
    assert_eq!(
        controller.message().await,
        ("drover/v1/nodes/a/status".into(), b"mine".to_vec())
    );
}

#[tokio::test]
async fn a_node_uses_every_topic_of_its_own() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    enroll(&mut controller, "a", "pw-a").await;
    controller.subscribe_ok("drover/v1/nodes/+/#").await;
    let mut a = broker.node("a", "pw-a").await;
    for leaf in ["desired", "ack", "logs/request"] {
        a.subscribe_ok(&format!("drover/v1/nodes/a/{leaf}")).await;
    }
    for leaf in ["presence", "heartbeat", "status", "logs/data"] {
        let topic = format!("drover/v1/nodes/a/{leaf}");
        a.publish(&topic, leaf, false).await;
        assert_eq!(
            controller.message().await,
            (topic, leaf.as_bytes().to_vec())
        );
    }
    for leaf in ["desired", "ack", "logs/request"] {
        let topic = format!("drover/v1/nodes/a/{leaf}");
        controller.publish(&topic, leaf, false).await;
        assert_eq!(a.message().await, (topic, leaf.as_bytes().to_vec()));
    }
}

#[tokio::test]
async fn a_node_receives_only_its_own_desired_state() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    enroll(&mut controller, "a", "pw-a").await;
    enroll(&mut controller, "b", "pw-b").await;
    controller
        .publish("drover/v1/nodes/b/desired", "desired-b", true)
        .await;
    controller
        .publish("drover/v1/nodes/a/desired", "desired-a", true)
        .await;
    // Wait until both retained messages are stored: the controller sees its own.
    controller.subscribe_ok("drover/v1/nodes/+/desired").await;
    for _ in 0..2 {
        controller.message().await;
    }

    let mut a = broker.node("a", "pw-a").await;
    assert_eq!(
        a.suback("drover/v1/nodes/b/desired").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(
        a.suback("drover/v1/nodes/+/desired").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(a.suback("drover/v1/#").await, SubscribeReasonCode::Failure);
    a.subscribe_ok("drover/v1/nodes/a/desired").await;
    assert_eq!(
        a.message().await,
        ("drover/v1/nodes/a/desired".into(), b"desired-a".to_vec())
    );
    // A live update to b is not delivered to a either; a's own next one is.
    controller
        .publish("drover/v1/nodes/b/desired", "desired-b2", true)
        .await;
    controller
        .publish("drover/v1/nodes/a/desired", "desired-a2", true)
        .await;
    assert_eq!(
        a.message().await,
        ("drover/v1/nodes/a/desired".into(), b"desired-a2".to_vec())
    );
}

#[tokio::test]
async fn a_node_cannot_leave_its_last_will_on_another_nodes_topic() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    enroll(&mut controller, "a", "pw-a").await;
    enroll(&mut controller, "b", "pw-b").await;
    controller.subscribe_ok("drover/v1/nodes/+/presence").await;
    let will = |node: &str| {
        LastWill::new(
            format!("drover/v1/nodes/{node}/presence"),
            format!("{node} lost"),
            QoS::AtLeastOnce,
            true,
        )
    };
    let credentials = Some(("a", "pw-a"));
    // Mosquitto 2.0.11 accepts the CONNECT and drops the will when it would be published;
    // refusing the CONNECT would confine the node as well.
    match broker
        .connect_with_will("drover-agent-a", credentials, Some(will("b")))
        .await
    {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, ConnectReturnCode::NotAuthorized)
        }
        Err(e) => panic!("unexpected failure: {e}"),
        Ok(forger) => forger.crash(),
    }
    let a = broker
        .connect_with_will("drover-agent-a", credentials, Some(will("a")))
        .await
        .expect("a connects with its own will");
    a.crash();
    // A forged will would have been published at the first crash, before this one.
    assert_eq!(
        controller.message().await,
        ("drover/v1/nodes/a/presence".into(), b"a lost".to_vec())
    );
}

#[tokio::test]
async fn a_node_must_use_its_own_client_id() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    enroll(&mut controller, "a", "pw-a").await;
    enroll(&mut controller, "b", "pw-b").await;
    for client_id in ["drover-agent-b", "drover-agent-a-1.0", "anything"] {
        assert_eq!(
            refused(broker.connect(client_id, Some(("a", "pw-a"))).await),
            ConnectReturnCode::NotAuthorized,
            "{client_id}"
        );
    }
    broker.node("a", "pw-a").await;
}

#[tokio::test]
async fn anonymous_and_wrong_passwords_are_refused() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    enroll(&mut controller, "a", "pw-a").await;
    assert_eq!(
        refused(broker.connect("drover-agent-a", None).await),
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        refused(broker.connect("drover-agent-a", Some(("a", "pw-b"))).await),
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        refused(
            broker
                .connect("drover-controller-x", Some((CONTROLLER_USERNAME, "guess")))
                .await
        ),
        ConnectReturnCode::NotAuthorized
    );
}

#[tokio::test]
async fn revoking_a_node_closes_its_connection_and_refuses_it() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    enroll(&mut controller, "a", "pw-a").await;
    let mut a = broker.node("a", "pw-a").await;
    controller
        .dynsec_ok(dynsec::revoke_node("a").expect("valid"))
        .await;
    assert!(
        a.closed_within(Duration::from_secs(1)).await,
        "a's connection is still open 1 s after revocation"
    );
    assert_eq!(
        refused(broker.connect("drover-agent-a", Some(("a", "pw-a"))).await),
        ConnectReturnCode::NotAuthorized
    );
    // Revoking again is not an error.
    controller
        .dynsec_ok(dynsec::revoke_node("a").expect("valid"))
        .await;
}

#[tokio::test]
async fn an_enrolling_agent_is_confined_to_its_token() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    controller
        .dynsec_ok(dynsec::add_token("t1", "secret-1").expect("valid"))
        .await;
    controller
        .dynsec_ok(dynsec::add_token("t2", "secret-2").expect("valid"))
        .await;
    controller
        .subscribe_ok("drover/v1/enroll/+/request/+")
        .await;
    controller.subscribe_ok("drover/v1/nodes/+/presence").await;
    let mut agent = broker
        .connect("drover-enroll-t1", Some(("drover-enroll-t1", "secret-1")))
        .await
        .expect("the token's credentials connect");

    for filter in [
        "drover/v1/enroll/t1/reply/+",
        "drover/v1/enroll/t1/reply/#",
        "drover/v1/enroll/t1/#",
        "drover/v1/enroll/t1/+/n1",
        "drover/v1/enroll/+/reply/n1",
        "drover/v1/enroll/t2/reply/n1",
        "drover/v1/nodes/n1/desired",
        "#",
    ] {
        assert_eq!(
            agent.suback(filter).await,
            SubscribeReasonCode::Failure,
            "{filter}"
        );
    }
    agent.subscribe_ok("drover/v1/enroll/t1/reply/n1").await;

    agent
        .publish("drover/v1/enroll/t2/request/n1", "other token", false)
        .await;
    agent
        .publish("drover/v1/nodes/n1/presence", "not a node yet", true)
        .await;
    agent
        .publish("drover/v1/enroll/t1/reply/n1", "forged reply", false)
        .await;
    agent
        .publish("drover/v1/enroll/t1/request/n1", "request", false)
        .await;
    assert_eq!(
        controller.message().await,
        ("drover/v1/enroll/t1/request/n1".into(), b"request".to_vec())
    );

    controller
        .publish("drover/v1/enroll/t1/reply/n1", "welcome", false)
        .await;
    assert_eq!(
        agent.message().await,
        ("drover/v1/enroll/t1/reply/n1".into(), b"welcome".to_vec())
    );
}

#[tokio::test]
async fn removing_a_token_closes_its_connections_and_refuses_it() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    controller
        .dynsec_ok(dynsec::add_token("t1", "secret-1").expect("valid"))
        .await;
    let mut agent = broker
        .connect("drover-enroll-t1", Some(("drover-enroll-t1", "secret-1")))
        .await
        .expect("the token's credentials connect");
    controller
        .dynsec_ok(dynsec::remove_token("t1").expect("valid"))
        .await;
    assert!(agent.closed_within(Duration::from_secs(1)).await);
    refused(
        broker
            .connect("drover-enroll-t1", Some(("drover-enroll-t1", "secret-1")))
            .await,
    );
}

#[tokio::test]
async fn a_token_holder_cannot_take_another_clients_id() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    controller
        .dynsec_ok(dynsec::add_token("t1", "secret-1").expect("valid"))
        .await;
    for id in [
        "drover-agent-a",
        "drover-controller-1",
        "drover-enroll-t1-x",
    ] {
        refused(
            broker
                .connect(id, Some(("drover-enroll-t1", "secret-1")))
                .await,
        );
    }
}

/// Why every node has a role of its own: Mosquitto 2.0.11 compares `%u` literally.
#[tokio::test]
async fn dynsec_role_topics_do_not_substitute_the_username() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut controller = broker.controller().await;
    let create = serde_json::json!({"commands": [
        {"command": "createRole", "rolename": "pattern", "acls": [
            {"acltype": "publishClientSend", "topic": "drover/v1/nodes/%u/#", "allow": true}]},
        {"command": "createClient", "username": "a", "password": "pw-a",
         "roles": [{"rolename": "pattern"}]},
    ]});
    controller.dynsec_ok(create.to_string().into_bytes()).await;
    controller.subscribe_ok("drover/v1/nodes/#").await;
    let a = broker.node("a", "pw-a").await;
    a.publish("drover/v1/nodes/a/status", "substituted", false)
        .await;
    a.publish("drover/v1/nodes/%u/status", "literal", false)
        .await;
    assert_eq!(
        controller.message().await,
        ("drover/v1/nodes/%u/status".into(), b"literal".to_vec())
    );
}
