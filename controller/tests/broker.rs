//! The embedded broker over real sockets: pub/sub, retained messages, authentication, the
//! ACL, client-id takeover, wills, revocation, TLS, and the abuse it must survive.

mod support;

use std::sync::Arc;
use std::time::Duration;

use drover::broker::Identity;
use rumqttc::mqttbytes::v4::{LastWill, Packet, Subscribe, SubscribeReasonCode};
use rumqttc::mqttbytes::QoS;
use rumqttc::{ConnectReturnCode, ConnectionError};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

fn refused_with(result: Result<(), ConnectionError>) -> Option<ConnectReturnCode> {
    match result {
        Err(ConnectionError::ConnectionRefused(code)) => Some(code),
        _ => None,
    }
}

#[tokio::test]
async fn qos0_and_qos1_messages_reach_subscribers_at_the_granted_qos() {
    let (_broker, addr) = start_broker(|_| {}).await;
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    assert_eq!(
        controller
            .subscribe("drover/v1/nodes/+/status", QoS::AtLeastOnce)
            .await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    assert_eq!(
        controller
            .subscribe("drover/v1/nodes/+/heartbeat", QoS::AtMostOnce)
            .await,
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    let node = connected_client(addr, "drover-agent-a", NODE_A).await;
    node.client
        .publish("drover/v1/nodes/a/status", QoS::AtLeastOnce, false, "s1")
        .await
        .expect("queued");
    let p = controller
        .next_publish(5 * SECOND)
        .await
        .expect("status arrives");
    assert_eq!(
        (p.topic.as_str(), p.qos, &p.payload[..]),
        ("drover/v1/nodes/a/status", QoS::AtLeastOnce, &b"s1"[..])
    );
    // QoS 1 published, QoS 0 granted: delivered at QoS 0.
    node.client
        .publish("drover/v1/nodes/a/heartbeat", QoS::AtLeastOnce, false, "h1")
        .await
        .expect("queued");
    let p = controller
        .next_publish(5 * SECOND)
        .await
        .expect("heartbeat arrives");
    assert_eq!(
        (p.topic.as_str(), p.qos),
        ("drover/v1/nodes/a/heartbeat", QoS::AtMostOnce)
    );
}

#[tokio::test]
async fn retained_desired_state_is_delivered_on_subscribe_and_cleared_by_an_empty_one() {
    let (_broker, addr) = start_broker(|_| {}).await;
    let controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .client
        .publish("drover/v1/nodes/a/desired", QoS::AtLeastOnce, true, "pods")
        .await
        .expect("queued");
    // The controller's publish is routed once its PUBACK arrives; a retained message of
    // its own shows it stored.
    let mut node = connected_client(addr, "drover-agent-a", NODE_A).await;
    let mut retained = None;
    for _ in 0..100 {
        node.subscribe("drover/v1/nodes/a/desired", QoS::AtLeastOnce)
            .await;
        if let Some(p) = node.next_publish(Duration::from_millis(100)).await {
            retained = Some(p);
            break;
        }
    }
    let p = retained.expect("retained desired state delivered");
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"pods");

    controller
        .client
        .publish("drover/v1/nodes/a/desired", QoS::AtLeastOnce, true, "")
        .await
        .expect("queued");
    let cleared = node
        .next_publish(5 * SECOND)
        .await
        .expect("the empty message is forwarded");
    assert!(cleared.payload.is_empty() && !cleared.retain);
    // Dropping the client alone would leave its event loop, and so its connection, alive
    // until its next event: the broker would rightly refuse the node's id meanwhile.
    node.client.disconnect().await.expect("queued");
    assert!(node.closed_within(5 * SECOND).await);
    let mut node = reconnected_client(addr, "drover-agent-a", NODE_A).await;
    node.subscribe("drover/v1/nodes/a/desired", QoS::AtLeastOnce)
        .await;
    controller
        .client
        .publish(
            "drover/v1/nodes/a/desired",
            QoS::AtLeastOnce,
            false,
            "marker",
        )
        .await
        .expect("queued");
    let first = node.next_publish(5 * SECOND).await.expect("marker arrives");
    assert_eq!(&first.payload[..], b"marker", "no retained message is left");
}

#[tokio::test]
async fn anonymous_client_is_refused() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut c = client(options(addr, "drover-agent-a", None));
    assert_eq!(
        refused_with(c.connected().await),
        Some(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(broker.handle().stats().connected, 0);
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut c = client(options(addr, "drover-agent-a", Some(("node-a", "guess"))));
    assert_eq!(
        refused_with(c.connected().await),
        Some(ConnectReturnCode::BadUserNamePassword)
    );
    assert_eq!(broker.handle().stats().refused_bad_credentials, 1);
}

#[tokio::test]
async fn node_cannot_use_another_nodes_client_id() {
    let (broker, addr) = start_broker(|_| {}).await;
    for client_id in [
        "drover-agent-b",
        "drover-controller-x",
        "drover-agent-a-1.1",
    ] {
        let mut c = client(options(addr, client_id, Some(NODE_A)));
        assert_eq!(
            refused_with(c.connected().await),
            Some(ConnectReturnCode::BadClientId),
            "{client_id}"
        );
    }
    assert_eq!(broker.handle().stats().refused_client_id, 3);
}

#[tokio::test]
async fn node_will_must_be_its_own_presence() {
    let (_broker, addr) = start_broker(|_| {}).await;
    let will = LastWill::new("drover/v1/nodes/b/presence", "gone", QoS::AtLeastOnce, true);
    let (_stream, ack) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 30, Some(will)).await;
    assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::NotAuthorized));
}

#[tokio::test]
async fn node_cannot_publish_on_another_nodes_topics_nor_its_own_desired() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller.subscribe("#", QoS::AtLeastOnce).await;
    let node = connected_client(addr, "drover-agent-a", NODE_A).await;
    for topic in [
        "drover/v1/nodes/b/status",
        "drover/v1/nodes/b/presence",
        "drover/v1/nodes/a/desired",
        "drover/v1/nodes/b/desired",
        "somewhere/else",
    ] {
        node.client
            .publish(topic, QoS::AtLeastOnce, true, "forged")
            .await
            .expect("queued");
    }
    node.client
        .publish(
            "drover/v1/nodes/a/status",
            QoS::AtLeastOnce,
            false,
            "marker",
        )
        .await
        .expect("queued");
    let first = controller
        .next_publish(5 * SECOND)
        .await
        .expect("marker arrives");
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("drover/v1/nodes/a/status", &b"marker"[..])
    );
    assert_eq!(broker.handle().stats().dropped_acl_publish, 5);
}

#[tokio::test]
async fn node_cannot_subscribe_to_another_nodes_desired_nor_to_wildcards() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut node = connected_client(addr, "drover-agent-a", NODE_A).await;
    for filter in [
        "drover/v1/nodes/b/desired",
        "drover/v1/nodes/+/desired",
        "drover/v1/nodes/a/#",
        "#",
        "drover/v1/nodes/b/status",
    ] {
        assert_eq!(
            node.subscribe(filter, QoS::AtLeastOnce).await,
            SubscribeReasonCode::Failure,
            "{filter}"
        );
    }
    assert_eq!(
        node.subscribe("drover/v1/nodes/a/desired", QoS::AtLeastOnce)
            .await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    assert_eq!(broker.handle().stats().denied_acl_subscribe, 5);
    // And nothing of b's reaches it.
    let controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .client
        .publish("drover/v1/nodes/b/desired", QoS::AtLeastOnce, false, "b")
        .await
        .expect("queued");
    controller
        .client
        .publish("drover/v1/nodes/a/desired", QoS::AtLeastOnce, false, "a")
        .await
        .expect("queued");
    let first = node
        .next_publish(5 * SECOND)
        .await
        .expect("a's message arrives");
    assert_eq!(&first.payload[..], b"a");
}

#[tokio::test]
async fn enrolling_device_may_only_request_and_hear_its_reply() {
    let (_broker, addr) = start_broker(|_| {}).await;
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .subscribe("drover/v1/enroll/+/request/+", QoS::AtLeastOnce)
        .await;
    let mut device = connected_client(addr, "drover-enroll-0a0b0c01", ENROLL_T1).await;
    assert_eq!(
        device
            .subscribe("drover/v1/enroll/0a0b0c01/reply/+", QoS::AtLeastOnce)
            .await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(
        device
            .subscribe("drover/v1/enroll/0a0b0c01/reply/pi-9", QoS::AtLeastOnce)
            .await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    device
        .client
        .publish(
            "drover/v1/enroll/0a0b0c02/request/pi-9",
            QoS::AtLeastOnce,
            false,
            "x",
        )
        .await
        .expect("queued");
    device
        .client
        .publish(
            "drover/v1/enroll/0a0b0c01/request/pi-9",
            QoS::AtLeastOnce,
            false,
            "req",
        )
        .await
        .expect("queued");
    let p = controller
        .next_publish(5 * SECOND)
        .await
        .expect("request arrives");
    assert_eq!(p.topic, "drover/v1/enroll/0a0b0c01/request/pi-9");
    controller
        .client
        .publish(
            "drover/v1/enroll/0a0b0c01/reply/pi-9",
            QoS::AtLeastOnce,
            false,
            "welcome",
        )
        .await
        .expect("queued");
    let p = device
        .next_publish(5 * SECOND)
        .await
        .expect("reply arrives");
    assert_eq!(&p.payload[..], b"welcome");
}

fn offline_will() -> LastWill {
    LastWill::new(
        "drover/v1/nodes/a/presence",
        "offline",
        QoS::AtLeastOnce,
        true,
    )
}

#[tokio::test]
async fn a_node_client_id_held_by_a_live_connection_is_refused_and_the_holder_stays() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .subscribe("drover/v1/nodes/a/#", QoS::AtLeastOnce)
        .await;
    let (mut holder, ack) = raw_connect(
        addr,
        "drover-agent-a",
        Some(NODE_A),
        30,
        Some(offline_will()),
    )
    .await;
    assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::Success));
    // A second agent with the node's own credentials (a copy of its data directory).
    let mut second_options = options(addr, "drover-agent-a", Some(NODE_A));
    second_options.set_last_will(offline_will());
    let mut second = client(second_options);
    assert_eq!(
        refused_with(second.connected().await),
        Some(ConnectReturnCode::BadClientId)
    );
    // The holder is still served, and no will was published for it.
    holder
        .write_all(&encode(&publish(
            "drover/v1/nodes/a/status",
            QoS::AtMostOnce,
            "still here",
            0,
        )))
        .await
        .expect("written");
    let first = controller
        .next_publish(5 * SECOND)
        .await
        .expect("the holder's publish arrives");
    assert_eq!(&first.payload[..], b"still here", "no will of the holder");
    let stats = broker.handle().stats();
    assert_eq!(
        (
            stats.refused_client_id_in_use,
            stats.takeovers,
            stats.wills_published
        ),
        (1, 0, 0)
    );
    drop(second);

    // Gone (its socket closed, as when its agent is killed): its will, then the id is free.
    drop(holder);
    let will = controller
        .next_publish(5 * SECOND)
        .await
        .expect("the holder's will");
    assert_eq!(&will.payload[..], b"offline");
    let mut next = client(options(addr, "drover-agent-a", Some(NODE_A)));
    next.connected()
        .await
        .expect("accepted once the holder is gone");
}

#[tokio::test]
async fn a_controller_takeover_closes_the_older_connection_without_publishing_its_will() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut watcher = connected_client(addr, "drover-controller-watcher", CONTROLLER).await;
    watcher
        .subscribe("drover/v1/nodes/a/#", QoS::AtLeastOnce)
        .await;
    let (mut older, ack) = raw_connect(
        addr,
        "drover-controller-1",
        Some(CONTROLLER),
        30,
        Some(offline_will()),
    )
    .await;
    assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::Success));
    let mut newer_options = options(addr, "drover-controller-1", Some(CONTROLLER));
    newer_options.set_last_will(offline_will());
    let mut newer = client(newer_options);
    newer
        .connected()
        .await
        .expect("the newer connection is accepted");
    assert!(
        closed_within(&mut older, 2 * SECOND).await,
        "the older connection is closed"
    );
    // The older connection's end (and a will, were it due) precedes the close of its socket.
    newer
        .client
        .publish(
            "drover/v1/nodes/a/status",
            QoS::AtLeastOnce,
            false,
            "marker",
        )
        .await
        .expect("queued");
    let first = watcher
        .next_publish(5 * SECOND)
        .await
        .expect("marker arrives");
    assert_eq!(
        &first.payload[..],
        b"marker",
        "no will of a connected client"
    );
    let stats = broker.handle().stats();
    assert_eq!((stats.takeovers, stats.wills_published), (1, 0));
}

#[tokio::test]
async fn abrupt_close_publishes_the_will() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .subscribe("drover/v1/nodes/+/presence", QoS::AtLeastOnce)
        .await;
    let (stream, ack) = raw_connect(
        addr,
        "drover-agent-a",
        Some(NODE_A),
        30,
        Some(offline_will()),
    )
    .await;
    assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::Success));
    drop(stream);
    let will = controller
        .next_publish(5 * SECOND)
        .await
        .expect("the will arrives");
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("drover/v1/nodes/a/presence", &b"offline"[..])
    );
    assert_eq!(broker.handle().stats().wills_published, 1);
    // Retained, as asked.
    let mut later = connected_client(addr, "drover-controller-2", CONTROLLER).await;
    later
        .subscribe("drover/v1/nodes/a/presence", QoS::AtLeastOnce)
        .await;
    assert!(
        later
            .next_publish(5 * SECOND)
            .await
            .expect("retained will")
            .retain
    );
}

#[tokio::test]
async fn clean_disconnect_does_not_publish_the_will() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .subscribe("drover/v1/nodes/a/#", QoS::AtLeastOnce)
        .await;
    let (mut stream, _) = raw_connect(
        addr,
        "drover-agent-a",
        Some(NODE_A),
        30,
        Some(offline_will()),
    )
    .await;
    stream
        .write_all(&encode(&Packet::Disconnect))
        .await
        .expect("write");
    assert!(closed_within(&mut stream, 2 * SECOND).await);
    let node = connected_client(addr, "drover-agent-a", NODE_A).await;
    node.client
        .publish(
            "drover/v1/nodes/a/status",
            QoS::AtLeastOnce,
            false,
            "marker",
        )
        .await
        .expect("queued");
    assert_eq!(
        &controller
            .next_publish(5 * SECOND)
            .await
            .expect("marker")
            .payload[..],
        b"marker"
    );
    assert_eq!(broker.handle().stats().wills_published, 0);
}

#[tokio::test]
async fn revocation_closes_every_connection_of_the_identity_within_a_second() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut a = connected_client(addr, "drover-agent-a", NODE_A).await;
    let mut b = connected_client(addr, "drover-agent-b", NODE_B).await;
    let started = Instant::now();
    broker.handle().disconnect(&Identity::Node("a".into()));
    assert!(a.closed_within(SECOND).await, "a is closed");
    assert!(started.elapsed() < SECOND);
    assert!(
        !b.closed_within(Duration::from_millis(200)).await,
        "b stays"
    );
    assert_eq!(broker.handle().stats().revoked, 1);
}

#[tokio::test]
async fn keep_alive_timeout_closes_a_silent_connection() {
    let (broker, addr) = start_broker(|_| {}).await;
    let (mut stream, ack) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 1, None).await;
    assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::Success));
    let started = Instant::now();
    assert!(closed_within(&mut stream, 5 * SECOND).await);
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "not before 1.5 x keep-alive"
    );
    assert_eq!(broker.handle().stats().keep_alive_timeouts, 1);
}

#[tokio::test]
async fn pings_keep_a_connection_alive() {
    let (_broker, addr) = start_broker(|_| {}).await;
    let (mut stream, _) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 1, None).await;
    for _ in 0..5 {
        stream
            .write_all(&encode(&Packet::PingReq))
            .await
            .expect("write");
        assert_eq!(
            read_packet(&mut stream, 2 * SECOND).await,
            Some(Packet::PingResp)
        );
        tokio::time::sleep(Duration::from_millis(500)).await; // the client's pace, not synchronisation
    }
}

#[tokio::test]
async fn shutdown_closes_connections() {
    let (broker, addr) = start_broker(|_| {}).await;
    let mut a = connected_client(addr, "drover-agent-a", NODE_A).await;
    broker.shutdown();
    assert!(a.closed_within(SECOND).await);
}

#[tokio::test]
async fn mqtt_over_tls_with_a_test_ca() {
    let (server_config, ca) = test_tls();
    let client_config = client_tls_trusting(ca);
    let (broker, _) = start_broker(|s| {
        s.insecure_listen = None;
        s.tls_listen = Some("127.0.0.1:0".parse().expect("address"));
        s.tls = Some(Arc::new(server_config));
    })
    .await;
    let addr = broker.local_addrs().0.expect("TLS address");
    let tls = |client_id: &str, login| {
        let mut o = options(addr, client_id, Some(login));
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(client_config.clone()),
        ));
        o
    };
    let mut controller = client(tls("drover-controller-1", CONTROLLER));
    controller
        .connected()
        .await
        .expect("TLS connection accepted");
    controller
        .subscribe("drover/v1/nodes/+/status", QoS::AtLeastOnce)
        .await;
    let mut node = client(tls("drover-agent-a", NODE_A));
    node.connected().await.expect("TLS connection accepted");
    node.client
        .publish(
            "drover/v1/nodes/a/status",
            QoS::AtLeastOnce,
            false,
            "over tls",
        )
        .await
        .expect("queued");
    let p = controller
        .next_publish(5 * SECOND)
        .await
        .expect("arrives over TLS");
    assert_eq!(&p.payload[..], b"over tls");
    // Plain MQTT on the TLS port is no CONNECT.
    let (mut plain, ack) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 30, None).await;
    assert!(ack.is_none());
    assert!(closed_within(&mut plain, 5 * SECOND).await);
}

// ---- abuse ----

#[tokio::test]
async fn odd_client_ids_and_rapid_reuse_neither_panic_nor_stop_service() {
    let (broker, addr) = start_broker(|_| {}).await;
    let long = format!("drover-controller-{}", "x".repeat(60_000));
    for client_id in [
        "drover-controller/a/b",
        "drover-controller+#",
        "drover-controller/#",
        long.as_str(),
    ] {
        for _ in 0..2 {
            let (_stream, ack) = raw_connect(addr, client_id, Some(CONTROLLER), 30, None).await;
            assert_eq!(
                ack.map(|a| a.code),
                Some(ConnectReturnCode::Success),
                "{}",
                &client_id[..30.min(client_id.len())]
            );
        }
    }
    for client_id in ["", "a/b", "+", "#", "drover-agent-a/"] {
        let (_stream, ack) = raw_connect(addr, client_id, Some(NODE_A), 30, None).await;
        assert_eq!(
            ack.map(|a| a.code),
            Some(ConnectReturnCode::BadClientId),
            "{client_id:?}"
        );
    }
    // One client id reused hundreds of times as fast as possible, each connection kept open
    // until the next takes it over (the controller's), or refused while the first holds it
    // (a node's).
    let started = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..300 {
        let (stream, ack) = raw_connect(
            addr,
            "drover-controller-reused",
            Some(CONTROLLER),
            30,
            Some(offline_will()),
        )
        .await;
        assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::Success));
        streams.push(stream);
    }
    let (_holder, ack) = raw_connect(
        addr,
        "drover-agent-a",
        Some(NODE_A),
        30,
        Some(offline_will()),
    )
    .await;
    assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::Success));
    for _ in 0..300 {
        let (stream, ack) = raw_connect(
            addr,
            "drover-agent-a",
            Some(NODE_A),
            30,
            Some(offline_will()),
        )
        .await;
        assert_eq!(ack.map(|a| a.code), Some(ConnectReturnCode::BadClientId));
        streams.push(stream);
    }
    let rate = 601.0 / started.elapsed().as_secs_f64();
    let handle = broker.handle();
    assert!(
        eventually(5 * SECOND, || handle.stats().takeovers >= 299).await,
        "{:?}",
        handle.stats()
    );
    assert_eq!(handle.stats().refused_client_id_in_use, 300);
    assert_eq!(
        handle.stats().wills_published,
        0,
        "no will of a reconnected client, nor of the node's holder"
    );
    println!("reused one client id at {rate:.0} connections/s");
    // Still serving real clients.
    let mut controller = connected_client(addr, "drover-controller-ok", CONTROLLER).await;
    controller
        .subscribe("drover/v1/nodes/b/status", QoS::AtLeastOnce)
        .await;
    let b = connected_client(addr, "drover-agent-b", NODE_B).await;
    b.client
        .publish("drover/v1/nodes/b/status", QoS::AtLeastOnce, false, "ok")
        .await
        .expect("queued");
    assert!(controller.next_publish(5 * SECOND).await.is_some());
}

#[tokio::test]
async fn stalled_half_connect_is_closed_at_the_connect_timeout() {
    let (broker, addr) = start_broker(|s| s.connect_timeout = Duration::from_millis(300)).await;
    let mut connect = rumqttc::mqttbytes::v4::Connect::new("drover-agent-a");
    connect.set_login(NODE_A.0, NODE_A.1);
    let bytes = encode(&Packet::Connect(connect));
    let mut half = tokio::net::TcpStream::connect(addr).await.expect("connect");
    half.write_all(&bytes[..bytes.len() / 2])
        .await
        .expect("write");
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // Slow loris: a byte at a time, slower than the deadline allows.
    let mut loris = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    for byte in &bytes[..5] {
        let _ = loris.write_all(&[*byte]).await;
        tokio::time::sleep(Duration::from_millis(100)).await; // the attacker's pace
    }
    assert!(closed_within(&mut half, 2 * SECOND).await);
    assert!(closed_within(&mut silent, 2 * SECOND).await);
    assert!(closed_within(&mut loris, 2 * SECOND).await);
    assert!(started.elapsed() < 2 * SECOND);
    assert_eq!(broker.handle().stats().connect_timeouts, 3);
}

#[tokio::test]
async fn packet_over_the_limit_closes_the_connection() {
    let (broker, addr) = start_broker(|_| {}).await;
    let (mut stream, _) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 30, None).await;
    // A PUBLISH header announcing 2 MiB: refused from the header, before the body.
    stream
        .write_all(&[0x30, 0x80, 0x80, 0x80, 0x01])
        .await
        .expect("write");
    assert!(closed_within(&mut stream, 2 * SECOND).await);
    // Before CONNECT the limit is 64 KiB.
    let mut early = tokio::net::TcpStream::connect(addr).await.expect("connect");
    early
        .write_all(&[0x10, 0x80, 0x80, 0x08])
        .await
        .expect("write");
    assert!(closed_within(&mut early, 2 * SECOND).await);
    assert_eq!(broker.handle().stats().oversized, 2);
}

#[tokio::test]
async fn malformed_bytes_close_the_connection_and_service_goes_on() {
    let (broker, addr) = start_broker(|_| {}).await;
    let garbage: [&[u8]; 6] = [
        &[0x16, 0x03, 0x01, 0x02, 0x00], // a TLS ClientHello on the plain port
        &[0xF0, 0x00],                   // packet type 15
        &[0x10, 0x02, 0xFF, 0xFF],       // CONNECT whose protocol name overruns
        &[0x82, 0x00],                   // SUBSCRIBE before CONNECT
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], // remaining length of five bytes
        b"GET / HTTP/1.1\r\n\r\n",
    ];
    for bytes in garbage {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(bytes).await.expect("write");
        assert!(closed_within(&mut stream, 2 * SECOND).await, "{bytes:?}");
    }
    let (mut stream, _) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 30, None).await;
    stream
        .write_all(&[0x32, 0x03, 0x00, 0x01, b'a'])
        .await
        .expect("write"); // QoS 1 without packet id
    assert!(closed_within(&mut stream, 2 * SECOND).await);
    let (mut stream, _) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 30, None).await;
    stream
        .write_all(&encode(&publish(
            "drover/v1/nodes/a/+",
            QoS::AtMostOnce,
            "x",
            0,
        )))
        .await
        .expect("write");
    assert!(
        closed_within(&mut stream, 2 * SECOND).await,
        "a wildcard in a topic name"
    );
    assert!(
        broker.handle().stats().malformed >= 6,
        "{:?}",
        broker.handle().stats()
    );
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .subscribe("drover/v1/nodes/+/status", QoS::AtLeastOnce)
        .await;
    let a = connected_client(addr, "drover-agent-a", NODE_A).await;
    a.client
        .publish("drover/v1/nodes/a/status", QoS::AtLeastOnce, false, "ok")
        .await
        .expect("queued");
    assert!(controller.next_publish(5 * SECOND).await.is_some());
}

#[tokio::test]
async fn qos2_publish_closes_the_connection() {
    let (broker, addr) = start_broker(|_| {}).await;
    let (mut stream, _) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 30, None).await;
    stream
        .write_all(&encode(&publish(
            "drover/v1/nodes/a/status",
            QoS::ExactlyOnce,
            "x",
            7,
        )))
        .await
        .expect("write");
    assert!(closed_within(&mut stream, 2 * SECOND).await);
    assert_eq!(broker.handle().stats().unsupported_qos, 1);
}

#[tokio::test]
async fn a_flooding_client_is_rate_limited_and_others_keep_being_served() {
    let (broker, addr) = start_broker(|s| {
        s.node_rate = drover::broker::limits::Rate {
            per_second: 500.0,
            burst: 500.0,
        };
    })
    .await;
    let mut controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    controller
        .subscribe("drover/v1/nodes/b/heartbeat", QoS::AtMostOnce)
        .await;
    controller
        .subscribe("drover/v1/nodes/a/status", QoS::AtMostOnce)
        .await;
    let (mut flooder, _) = raw_connect(addr, "drover-agent-a", Some(NODE_A), 30, None).await;
    let batch: Vec<u8> = (0..200)
        .flat_map(|_| {
            encode(&publish(
                "drover/v1/nodes/a/status",
                QoS::AtMostOnce,
                vec![0u8; 100],
                0,
            ))
        })
        .collect();
    let flood = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(4);
        let mut sent = 0u64;
        while Instant::now() < until {
            match tokio::time::timeout(Duration::from_millis(200), flooder.write_all(&batch)).await
            {
                Ok(Ok(())) => sent += 200,
                Ok(Err(_)) => break,
                Err(_) => {} // back-pressure: the broker stopped reading
            }
        }
        sent
    });
    let b = connected_client(addr, "drover-agent-b", NODE_B).await;
    let mut worst = Duration::ZERO;
    for i in 0..10u32 {
        let sent_at = Instant::now();
        b.client
            .publish(
                "drover/v1/nodes/b/heartbeat",
                QoS::AtMostOnce,
                false,
                i.to_string(),
            )
            .await
            .expect("queued");
        loop {
            let p = controller
                .next_publish(2 * SECOND)
                .await
                .expect("a heartbeat arrives during the flood");
            if p.topic == "drover/v1/nodes/b/heartbeat" {
                assert_eq!(&p.payload[..], i.to_string().as_bytes());
                break;
            }
        }
        worst = worst.max(sent_at.elapsed());
        assert!(worst < SECOND, "heartbeat took {worst:?} during the flood");
        tokio::time::sleep(Duration::from_millis(200)).await; // a heartbeat's pace
    }
    let sent = flood.await.expect("flood task");
    let stats = broker.handle().stats();
    println!("flood: {sent} publishes written, worst heartbeat latency {worst:?}, {stats:?}");
    assert!(stats.rate_limited > 0);
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_loses_qos0_and_is_disconnected_over_budget_for_qos1() {
    let (broker, addr) = start_broker(|s| {
        s.client_outbound = drover::broker::OutboundBudget {
            messages: 16,
            bytes: 256 * 1024,
        };
    })
    .await;
    // b subscribes, then never reads.
    let (mut stalled, _) = raw_connect(addr, "drover-agent-b", Some(NODE_B), 0, None).await;
    let mut sub = Subscribe::new("drover/v1/nodes/b/desired", QoS::AtLeastOnce);
    sub.pkid = 1;
    stalled
        .write_all(&encode(&Packet::Subscribe(sub)))
        .await
        .expect("write");
    assert!(matches!(
        read_packet(&mut stalled, 2 * SECOND).await,
        Some(Packet::SubAck(_))
    ));
    let mut a = connected_client(addr, "drover-agent-a", NODE_A).await;
    a.subscribe("drover/v1/nodes/a/desired", QoS::AtLeastOnce)
        .await;
    let controller = connected_client(addr, "drover-controller-1", CONTROLLER).await;
    let big = vec![7u8; 64 * 1024];
    let handle = broker.handle();
    for _ in 0..400 {
        controller
            .client
            .publish(
                "drover/v1/nodes/b/desired",
                QoS::AtMostOnce,
                false,
                big.clone(),
            )
            .await
            .expect("queued");
    }
    assert!(
        eventually(10 * SECOND, || handle.stats().dropped_slow_subscriber > 0).await,
        "{:?}",
        handle.stats()
    );
    assert_eq!(handle.stats().disconnected_slow_subscriber, 0);
    // Others are served meanwhile.
    controller
        .client
        .publish(
            "drover/v1/nodes/a/desired",
            QoS::AtLeastOnce,
            false,
            "for a",
        )
        .await
        .expect("queued");
    let started = Instant::now();
    let mut got = false;
    while let Some(p) = a.next_publish(2 * SECOND).await {
        if &p.payload[..] == b"for a" {
            got = true;
            break;
        }
    }
    assert!(got && started.elapsed() < 2 * SECOND);
    for _ in 0..400 {
        controller
            .client
            .publish(
                "drover/v1/nodes/b/desired",
                QoS::AtLeastOnce,
                false,
                big.clone(),
            )
            .await
            .expect("queued");
        if handle.stats().disconnected_slow_subscriber > 0 {
            break;
        }
    }
    assert!(
        eventually(10 * SECOND, || handle.stats().disconnected_slow_subscriber
            == 1)
        .await,
        "{:?}",
        handle.stats()
    );
    assert!(closed_within(&mut stalled, 10 * SECOND).await);
}

#[tokio::test]
async fn sockets_over_the_connection_limit_are_closed_at_accept() {
    let (broker, addr) = start_broker(|s| s.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let (stream, ack) =
            raw_connect(addr, "drover-controller-x", Some(CONTROLLER), 30, None).await;
        assert!(ack.is_some());
        held.push(stream);
    }
    // Each takes over the previous one, so wait until only the last is open.
    let handle = broker.handle();
    assert!(eventually(5 * SECOND, || handle.stats().connections_now == 1).await);
    let a = connected_client(addr, "drover-agent-a", NODE_A).await;
    let b = connected_client(addr, "drover-agent-b", NODE_B).await;
    let mut extra = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the kernel accepts");
    assert!(closed_within(&mut extra, 2 * SECOND).await);
    assert_eq!(handle.stats().refused_limit, 1);
    drop((a, b));
}

#[tokio::test]
async fn a_client_that_publishes_without_reading_its_acks_is_no_longer_read() {
    let (_broker, addr) = start_broker(|s| {
        s.node_rate = drover::broker::limits::Rate::UNLIMITED;
    })
    .await;
    // A small receive buffer, so that the unread PUBACKs back up into the broker soon.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let (mut flooder, _) = mqtt_connect_over(stream, "drover-agent-a", Some(NODE_A), 0, None).await;
    let batch: Vec<u8> = (1..=1000u16)
        .flat_map(|pkid| {
            encode(&publish(
                "drover/v1/nodes/a/status",
                QoS::AtLeastOnce,
                vec![0u8; 16],
                pkid,
            ))
        })
        .collect();
    // Each publish makes the broker owe a PUBACK; unread, they fill its write buffer, and
    // then the socket stops being read: writing blocks instead of the broker's memory
    // growing.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut blocked = false;
    while Instant::now() < deadline {
        match tokio::time::timeout(SECOND, flooder.write_all(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("connection closed: {e}"),
            Err(_) => {
                blocked = true;
                break;
            }
        }
    }
    assert!(
        blocked,
        "the broker kept reading a client that does not read"
    );
}
