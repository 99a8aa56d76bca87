use super::*;
use crate::msg::EnrollReply;

fn controller() -> SigningKey {
    SigningKey::from_seed([1; 32])
}

fn node_key() -> SigningKey {
    SigningKey::from_seed([2; 32])
}

fn info(name: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        uid: "u".into(),
        labels: vec![],
        architecture: "arm64".into(),
        operating_system: "linux".into(),
        kernel_version: "6".into(),
        os_image: "x".into(),
        model: None,
        cpus: 4,
        memory_bytes: 1,
        agent_version: "0".into(),
        boot_id: "b".into(),
        addresses: vec![],
        heartbeat_interval_ms: 10_000,
        container_runtime: String::new(),
        container_runtime_problem: String::new(),
        disk_pressure: false,
        agent_instance: 1,
    }
}

fn agent() -> AgentSession {
    AgentSession::new("pi", node_key(), controller().public(), 7)
}

fn desired(generation: u64) -> Message {
    Message::Desired(DesiredState {
        generation,
        pods: vec![],
        finished: vec![],
    })
}

fn presence_of(publish: &Publish, key: &SigningKey) -> Presence {
    match open(&publish.topic, &publish.payload, &key.public()).unwrap() {
        Message::Presence(p) => p,
        other => panic!("not a presence: {other:?}"),
    }
}

#[test]
fn each_connection_gets_a_new_session_and_a_will_for_it() {
    let mut s = agent();
    assert_eq!(s.client_id(), "drover-agent-pi");
    let first = presence_of(&s.will().unwrap(), &node_key());
    assert_eq!(
        first.session,
        Session {
            agent_start: 7,
            connection: 1
        }
    );
    assert_eq!(
        first.state,
        PresenceState::Offline(OfflineReason::ConnectionLost)
    );
    s.on_connected(&info("pi")).unwrap();
    s.on_connection_lost();
    let second = presence_of(&s.will().unwrap(), &node_key());
    assert_eq!(
        second.session,
        Session {
            agent_start: 7,
            connection: 2
        }
    );
    assert_eq!(
        s.client_id(),
        "drover-agent-pi",
        "the client id stays bound to the node"
    );
}

#[test]
fn connecting_subscribes_to_the_nodes_own_topics_and_announces_it() {
    let mut s = agent();
    let (subscriptions, online) = s.on_connected(&info("pi")).unwrap();
    assert_eq!(
        subscriptions,
        vec![
            "drover/v1/nodes/pi/desired",
            "drover/v1/nodes/pi/ack",
            "drover/v1/nodes/pi/logs/request"
        ]
    );
    assert!(online.retain);
    assert!(matches!(
        presence_of(&online, &node_key()).state,
        PresenceState::Online(_)
    ));
}

#[test]
fn heartbeats_only_while_connected_and_numbered() {
    let mut s = agent();
    assert_eq!(s.heartbeat().unwrap(), None);
    s.on_connected(&info("pi")).unwrap();
    let one = s.heartbeat().unwrap().unwrap();
    let two = s.heartbeat().unwrap().unwrap();
    assert_eq!(one.qos, Qos::AtMostOnce);
    let seq = |p: &Publish| match open(&p.topic, &p.payload, &node_key().public()).unwrap() {
        Message::Heartbeat(h) => h.sequence,
        _ => 0,
    };
    assert_eq!((seq(&one), seq(&two)), (1, 2));
    assert!(s.shutdown().unwrap().is_some());
    s.on_connection_lost();
    assert_eq!(s.heartbeat().unwrap(), None);
    assert_eq!(s.shutdown().unwrap(), None);
}

#[test]
fn an_agent_accepts_only_what_the_controller_signed_for_it() {
    let mut s = agent();
    let topic = "drover/v1/nodes/pi/desired";
    let good = seal(topic, &desired(3), &controller()).unwrap();
    assert_eq!(
        s.receive(topic, &good),
        Ok(AgentReceived::Desired(DesiredState {
            generation: 3,
            pods: vec![],
            finished: vec![]
        }))
    );
    let forged = seal(topic, &desired(3), &node_key()).unwrap();
    assert_eq!(s.receive(topic, &forged), Err(Dropped::Signature));
    let unsigned = crate::encode(&desired(3)).unwrap();
    assert_eq!(s.receive(topic, &unsigned), Err(Dropped::Signature));
    let for_other = seal("drover/v1/nodes/other/desired", &desired(3), &controller()).unwrap();
    assert_eq!(
        s.receive(topic, &for_other),
        Err(Dropped::Signature),
        "signed for another node"
    );
    assert_eq!(
        s.receive("drover/v1/nodes/other/desired", &for_other),
        Err(Dropped::Topic)
    );
    let ack_on_desired = seal(
        topic,
        &Message::Ack(StatusAck { pods: vec![] }),
        &controller(),
    )
    .unwrap();
    assert_eq!(s.receive(topic, &ack_on_desired), Err(Dropped::Mismatch));
    assert_eq!(s.receive(topic, &[]), Ok(AgentReceived::Cleared));
}

fn keys(node: &str) -> Option<PublicKey> {
    (node == "pi").then(|| node_key().public())
}

#[test]
fn the_controller_accepts_a_nodes_message_only_under_its_key() {
    let c = ControllerSession::new(controller());
    let mut s = agent();
    let (_, online) = s.on_connected(&info("pi")).unwrap();
    assert!(matches!(
        c.receive(&online.topic, &online.payload, keys),
        Ok(Some(ControllerReceived::Node { .. }))
    ));
    // The same node claiming another's name inside a presence on its own topic.
    let (_, wrong_name) = agent().on_connected(&info("other")).unwrap();
    assert_eq!(
        c.receive(&wrong_name.topic, &wrong_name.payload, keys),
        Err(Dropped::Mismatch)
    );
    // Another key signs a status for pi.
    let intruder = AgentSession::new(
        "pi",
        SigningKey::from_seed([9; 32]),
        controller().public(),
        1,
    );
    let forged = intruder
        .status(StatusReport {
            pods: vec![],
            full: true,
            events: vec![],
        })
        .unwrap();
    assert_eq!(
        c.receive(&forged.topic, &forged.payload, keys),
        Err(Dropped::Signature)
    );
    // A node without credentials.
    let stranger = AgentSession::new("stranger", node_key(), controller().public(), 1);
    let beat = stranger
        .status(StatusReport {
            pods: vec![],
            full: true,
            events: vec![],
        })
        .unwrap();
    assert_eq!(
        c.receive(&beat.topic, &beat.payload, keys),
        Err(Dropped::UnknownNode)
    );
    // pi's status replayed on pi's heartbeat topic.
    let status = s
        .status(StatusReport {
            pods: vec![],
            full: true,
            events: vec![],
        })
        .unwrap();
    assert_eq!(
        c.receive("drover/v1/nodes/pi/heartbeat", &status.payload, keys),
        Err(Dropped::Signature)
    );
}

#[test]
fn the_controller_tells_its_own_desired_states_from_foreign_ones() {
    let c = ControllerSession::new(controller());
    let ours = c
        .to_node("pi", NodeTopic::Desired, &desired(4), true)
        .unwrap();
    assert!(matches!(
        c.receive(&ours.topic, &ours.payload, keys),
        Ok(Some(ControllerReceived::Desired { ours: Some(_), .. }))
    ));
    let foreign = seal(&ours.topic, &desired(9), &node_key()).unwrap();
    assert_eq!(
        c.receive(&ours.topic, &foreign, keys),
        Ok(Some(ControllerReceived::Desired {
            node: "pi".into(),
            ours: None
        }))
    );
}

#[test]
fn enrollment_requests_are_self_sealed_and_name_the_topics_node() {
    let c = ControllerSession::new(controller());
    let key = node_key();
    let topic = EnrollTopic::Request.for_token("0a0b0c0d", "pi");
    let request = |node: &str| {
        Message::EnrollRequest(EnrollRequest {
            node: node.into(),
            public_key: key.public(),
            password: "pw".into(),
            token_proof: vec![1; 32],
        })
    };
    let sealed = seal(&topic, &request("pi"), &key).unwrap();
    assert!(matches!(
        c.receive(&topic, &sealed, keys),
        Ok(Some(ControllerReceived::Enroll { token, .. })) if token == "0a0b0c0d"
    ));
    let other_name = seal(&topic, &request("other"), &key).unwrap();
    assert_eq!(c.receive(&topic, &other_name, keys), Err(Dropped::Mismatch));
    let reply_topic = EnrollTopic::Reply.for_token("0a0b0c0d", "pi");
    let reply = c
        .seal(
            &reply_topic,
            &Message::EnrollReply(EnrollReply::Refused {
                reason: "no".into(),
            }),
        )
        .unwrap();
    assert_eq!(c.receive(&reply_topic, &reply, keys), Ok(None));
}

#[test]
fn an_agent_refuses_desired_states_older_than_the_one_it_applied() {
    let topic = "drover/v1/nodes/pi/desired";
    let sealed = |g| seal(topic, &desired(g), &controller()).unwrap();
    // 5 was stored before this start.
    let mut s = agent().with_applied_generation(5);
    assert_eq!(s.receive(topic, &sealed(4)), Err(Dropped::Stale));
    assert!(
        matches!(s.receive(topic, &sealed(5)), Ok(AgentReceived::Desired(_))),
        "the same again is harmless"
    );
    assert!(matches!(
        s.receive(topic, &sealed(9)),
        Ok(AgentReceived::Desired(_))
    ));
    assert_eq!(
        s.receive(topic, &sealed(8)),
        Err(Dropped::Stale),
        "a replay of an older one"
    );
    assert_eq!(s.receive(topic, &sealed(5)), Err(Dropped::Stale));
}
