//! The control loop driven directly: in-memory store, a channel for what it publishes, and
//! a hand-held clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_proto::keys::SigningKey;
use drover_proto::manifest::Kind;
use drover_proto::msg::*;
use drover_proto::topic::NodeTopic;
use drover_proto::Message;
use tokio::sync::mpsc;

use super::*;
use crate::credentials::Credentials;
use crate::mqtt::{route, Outgoing, Routed};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

struct Harness {
    control: Control,
    published: mpsc::UnboundedReceiver<Outgoing>,
    metrics: Arc<Metrics>,
    security: Security,
}

fn controller_key() -> SigningKey {
    SigningKey::from_seed([42; 32])
}

/// A node's key in these tests: derived from its name.
fn node_key(node: &str) -> SigningKey {
    SigningKey::from_seed(drover_proto::keys::sha256(node.as_bytes()))
}

fn security() -> Security {
    Security {
        credentials: Credentials::new("controller"),
        session: Arc::new(drover_proto::session::ControllerSession::new(
            controller_key(),
        )),
        ca_der: Vec::new(),
        attestation: Vec::new(),
        accounts: Arc::new(crate::accounts::ManagedElsewhere),
    }
}

fn control_with(
    store: Store,
    now: DateTime<Utc>,
) -> (
    Control,
    mpsc::UnboundedReceiver<Outgoing>,
    Arc<Metrics>,
    Security,
) {
    let (queue, published) = mpsc::unbounded_channel();
    let security = security();
    let metrics = Arc::new(Metrics::default());
    let control = Control::new(
        store,
        crate::mqtt::Publisher::new(queue, security.session.clone()),
        metrics.clone(),
        ControlSettings::with_grace(Duration::from_secs(40)),
        security.clone(),
        now,
    )
    .unwrap();
    (control, published, metrics, security)
}

fn harness() -> Harness {
    let (control, published, metrics, security) = control_with(Store::in_memory().unwrap(), t(0));
    Harness {
        control,
        published,
        metrics,
        security,
    }
}

/// What a published message says (its seal checked with the controller's key).
fn unseal(o: &Outgoing) -> Result<Message, drover_proto::DecodeError> {
    drover_proto::open(&o.topic, &o.payload, &controller_key().public())
}

fn info(name: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        uid: format!("uid-{name}"),
        labels: vec![("zone".into(), "a".into())],
        architecture: "arm64".into(),
        operating_system: "linux".into(),
        kernel_version: "6.1".into(),
        os_image: "Raspberry Pi OS".into(),
        model: None,
        cpus: 4,
        memory_bytes: 1 << 30,
        agent_version: "0.1.0".into(),
        boot_id: "boot".into(),
        addresses: vec!["10.0.0.2".into()],
        heartbeat_interval_ms: 10_000,
        container_runtime: "docker://28.2.2".into(),
        container_runtime_problem: String::new(),
        disk_pressure: false,
        agent_instance: 1,
    }
}

fn session(agent_start: u64, connection: u64) -> Session {
    Session {
        agent_start,
        connection,
    }
}

impl Harness {
    /// An API request through the control loop's front door.
    fn api(&mut self, request: ApiRequest, now: DateTime<Utc>) -> ApiResult {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.control.handle(Input::Api(request, reply), now);
        answer.blocking_recv().expect("an answer")
    }

    /// Gives `node` credentials, as an enrollment does.
    fn enroll(&mut self, node: &str, now: DateTime<Utc>) {
        self.control
            .enroll_local(node, node_key(node).public(), "pw", now)
            .unwrap();
    }

    /// Delivers raw bytes as the MQTT adapter does: checked, then handed to the loop.
    fn deliver(&mut self, topic: &str, payload: &[u8], now: DateTime<Utc>) {
        self.deliver_as(topic, payload, false, now);
    }

    /// As [`Harness::deliver`], with the delivery's retain flag.
    fn deliver_as(&mut self, topic: &str, payload: &[u8], retained: bool, now: DateTime<Utc>) {
        let routed = route(
            &self.security.session,
            &self.security.credentials,
            &self.metrics,
            topic,
            payload,
        );
        if let Routed::Control(received) = routed {
            self.control.handle(
                Input::Mqtt(MqttInput::Received {
                    message: received,
                    retained,
                }),
                now,
            );
        }
    }

    /// A message from `node`, sealed with its key.
    fn send(&mut self, node: &str, topic: NodeTopic, message: Message, now: DateTime<Utc>) {
        let topic = topic.for_node(node);
        let payload = drover_proto::seal(&topic, &message, &node_key(node)).unwrap();
        self.deliver(&topic, &payload, now);
    }

    fn online(&mut self, node: &str, s: Session, now: DateTime<Utc>) {
        if self.security.credentials.node_key(node).is_none() {
            self.enroll(node, now);
        }
        let msg = Message::Presence(Presence {
            session: s,
            state: PresenceState::Online(Box::new(info(node))),
        });
        self.send(node, NodeTopic::Presence, msg, now);
    }

    fn ready(&self, node: &str) -> Option<String> {
        let object = self.control.store.get(Kind::Node, "", node).unwrap()?;
        crate::nodes::recorded_ready_status(&object)
    }

    fn drain(&mut self) -> Vec<Outgoing> {
        let mut out = vec![];
        while let Ok(o) = self.published.try_recv() {
            out.push(o);
        }
        out
    }
}

#[test]
fn registration_creates_a_ready_node_and_publishes_its_desired_state_retained() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
    let published = h.drain();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].topic, "drover/v1/nodes/pi/desired");
    assert!(published[0].retain);
    match unseal(&published[0]).unwrap() {
        Message::Desired(d) => assert_eq!((d.generation, d.pods.len()), (1, 0)),
        other => panic!("{other:?}"),
    }
    // Re-registration does not publish an unchanged desired state again...
    h.online("pi", session(2, 1), t(5));
    assert!(h.drain().is_empty());
    // ...but a new broker session republishes everything.
    h.control.handle(Input::Mqtt(MqttInput::Connected), t(6));
    assert_eq!(h.drain().len(), 1);
}

#[test]
fn silence_past_grace_marks_unknown_and_a_heartbeat_restores_ready() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    h.control.tick(t(40));
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
    h.control.tick(t(41));
    assert_eq!(h.ready("pi").as_deref(), Some("Unknown"));
    let beat = Message::Heartbeat(Heartbeat {
        session: session(1, 1),
        sequence: 5,
    });
    h.send("pi", NodeTopic::Heartbeat, beat, t(42));
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
}

#[test]
fn wall_clock_steps_of_an_hour_flap_no_node_and_hide_no_silence() {
    use crate::reconcile::clock::Mono;
    let mono = |s: u64| Mono::at(Duration::from_secs(s));
    let mut h = harness();
    h.control.set_monotonic(mono(0));
    h.online("pi", session(1, 1), t(0));
    // An hour ahead: nothing was silent for an hour.
    h.control.set_monotonic(mono(5));
    h.control.tick(t(3605));
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
    let beat = |sequence| {
        Message::Heartbeat(Heartbeat {
            session: session(1, 1),
            sequence,
        })
    };
    h.control.set_monotonic(mono(10));
    h.send("pi", NodeTopic::Heartbeat, beat(1), t(3610));
    // An hour back: a node that goes silent is still noticed one grace period later.
    h.control.set_monotonic(mono(50));
    h.control.tick(t(-3550));
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
    h.control.set_monotonic(mono(51));
    h.control.tick(t(-3549));
    assert_eq!(h.ready("pi").as_deref(), Some("Unknown"));
}

#[test]
fn duplicate_messages_are_harmless() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    let rv = h
        .control
        .store
        .get(Kind::Node, "", "pi")
        .unwrap()
        .unwrap()
        .resource_version;
    h.online("pi", session(1, 1), t(0));
    let events = {
        let node = h.control.store.get(Kind::Node, "", "pi").unwrap().unwrap();
        h.control.store.events(&node.uid).unwrap()
    };
    assert_eq!(
        events
            .iter()
            .filter(|e| e.reason == "RegisteredNode")
            .count(),
        1
    );
    assert_eq!(events.iter().filter(|e| e.reason == "NodeReady").count(), 1);
    let node = h.control.store.get(Kind::Node, "", "pi").unwrap().unwrap();
    assert!(node.resource_version >= rv);
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
}

#[test]
fn garbage_wrong_types_foreign_names_and_unknown_nodes_are_counted() {
    let mut h = harness();
    h.enroll("pi", t(0));
    h.deliver("drover/v1/nodes/pi/status", &[0xff, 1, 2], t(0));
    h.deliver("somewhere/else", &[1], t(0));
    // Sealed by pi, but not a message at all.
    let topic = "drover/v1/nodes/pi/status";
    let mut bogus = vec![2, 0xff, 0xff, 0xff, 0xff, 0x0f];
    let signature = node_key("pi").sign(&{
        let mut signed = b"drover-v2\0".to_vec();
        signed.extend_from_slice(topic.as_bytes());
        signed.push(0);
        signed.extend_from_slice(&bogus);
        signed
    });
    bogus.extend_from_slice(&signature);
    h.deliver(topic, &bogus, t(0));
    let beat = Message::Heartbeat(Heartbeat {
        session: session(1, 1),
        sequence: 1,
    });
    h.send("ghost", NodeTopic::Heartbeat, beat.clone(), t(0));
    h.send("pi", NodeTopic::Presence, beat, t(0));
    let impostor = Message::Presence(Presence {
        session: session(1, 1),
        state: PresenceState::Online(Box::new(info("other"))),
    });
    h.send("pi", NodeTopic::Presence, impostor, t(0));
    let text = h.metrics.render(&Default::default());
    for (reason, n) in [
        ("signature", 1),
        ("decode", 1),
        ("topic", 1),
        ("unknown_node", 1),
        ("mismatch", 2),
    ] {
        assert!(
            text.contains(&format!(
                "drover_mqtt_messages_dropped_total{{reason=\"{reason}\"}} {n}"
            )),
            "{reason}: {text}"
        );
    }
    assert!(h.control.store.list(Kind::Node, None).unwrap().is_empty());
}

#[test]
fn deleting_a_node_empties_its_desired_state_clears_its_presence_and_ignores_its_heartbeats() {
    let mut h = harness();
    h.online("pi", session(1, 1), t(0));
    h.drain();
    let result = h.api(
        ApiRequest::Delete {
            kind: Kind::Node,
            namespace: String::new(),
            name: "pi".into(),
        },
        t(1),
    );
    assert!(result.is_ok());
    let cleared = h.drain();
    assert_eq!(cleared.len(), 2);
    assert!(cleared.iter().all(|o| o.retain));
    let desired = cleared
        .iter()
        .find(|o| o.topic.ends_with("/desired"))
        .unwrap();
    assert!(
        matches!(unseal(desired).unwrap(), Message::Desired(d) if d.pods.is_empty() && d.generation == 2)
    );
    let presence = cleared
        .iter()
        .find(|o| o.topic.ends_with("/presence"))
        .unwrap();
    assert!(presence.payload.is_empty());
    let beat = Message::Heartbeat(Heartbeat {
        session: session(1, 1),
        sequence: 2,
    });
    h.send("pi", NodeTopic::Heartbeat, beat, t(2));
    assert!(h.control.store.get(Kind::Node, "", "pi").unwrap().is_none());
    // Its credentials went with it: its agent's next presence is dropped, not registered.
    assert!(h.security.credentials.node_key("pi").is_none());
    let msg = Message::Presence(Presence {
        session: session(1, 2),
        state: PresenceState::Online(Box::new(info("pi"))),
    });
    h.send("pi", NodeTopic::Presence, msg, t(3));
    assert!(h.control.store.get(Kind::Node, "", "pi").unwrap().is_none());
    // Enrolled again (a new token), it registers again.
    h.online("pi", session(1, 3), t(4));
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
}

#[test]
fn a_restarted_controller_gives_known_nodes_one_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (control, published, metrics, security) =
            control_with(Store::open(dir.path()).unwrap(), t(0));
        let mut h = Harness {
            control,
            published,
            metrics,
            security,
        };
        h.online("pi", session(1, 1), t(0));
    }
    let (mut control, _rx, _, _) = control_with(Store::open(dir.path()).unwrap(), t(1000));
    control.tick(t(1040));
    let node = control.store.get(Kind::Node, "", "pi").unwrap().unwrap();
    assert_eq!(
        crate::nodes::recorded_ready_status(&node).as_deref(),
        Some("True")
    );
    control.tick(t(1041));
    let node = control.store.get(Kind::Node, "", "pi").unwrap().unwrap();
    assert_eq!(
        crate::nodes::recorded_ready_status(&node).as_deref(),
        Some("Unknown")
    );
}

#[test]
fn apply_is_all_or_nothing_and_create_or_update() {
    let mut h = harness();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, command: [sleep, '1']}]}\n";
    let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: []}\n";
    let err = h
        .control
        .handle_api(
            ApiRequest::Apply {
                files: vec![("a.yaml".into(), pod.into()), ("b.yaml".into(), bad.into())],
            },
            t(0),
        )
        .unwrap_err();
    assert_eq!(err.status, 422);
    assert!(err.message.starts_with("b.yaml:4:"), "{}", err.message);
    assert!(h.control.store.list(Kind::Pod, None).unwrap().is_empty());
    let ok = h
        .control
        .handle_api(
            ApiRequest::Apply {
                files: vec![("a.yaml".into(), pod.into())],
            },
            t(0),
        )
        .unwrap();
    assert_eq!(ok["items"][0]["result"], "created");
    let dup = h.api(
        ApiRequest::Apply {
            files: vec![("a.yaml".into(), format!("{pod}---\n{pod}"))],
        },
        t(0),
    );
    assert!(dup.unwrap_err().message.contains("more than once"));
}

mod pod_status {
    use super::*;
    use drover_proto::msg::{
        StatusReport, WireContainerState, WireContainerStatus, WirePhase, WirePodStatus,
    };

    fn pod_on(h: &mut Harness, node: &str) -> String {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  containers: [{{name: c, command: ['true']}}]\n"
        );
        h.api(
            ApiRequest::Apply {
                files: vec![("p.yaml".into(), text)],
            },
            t(0),
        )
        .unwrap();
        h.control
            .store
            .get(Kind::Pod, "default", "p")
            .unwrap()
            .unwrap()
            .uid
    }

    fn report(uid: &str, revision: u64, phase: WirePhase, removed: bool) -> Message {
        Message::Status(StatusReport {
            pods: vec![WirePodStatus {
                uid: uid.into(),
                revision,
                phase,
                reason: String::new(),
                message: String::new(),
                start_time_ms: 1_800_000_000_000,
                containers: vec![WireContainerStatus {
                    name: "c".into(),
                    state: WireContainerState::Running {
                        started_at_ms: 1_800_000_000_000,
                    },
                    last_state: None,
                    restart_count: 0,
                    ready: true,
                }],
                removed,
                init_containers: vec![],
            }],
            full: false,
            events: vec![],
        })
    }

    fn acks(published: Vec<Outgoing>) -> Vec<(String, u64)> {
        published
            .into_iter()
            .filter(|o| o.topic.ends_with("/ack"))
            .flat_map(|o| match unseal(&o).unwrap() {
                Message::Ack(a) => a.pods,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn phase(h: &Harness) -> String {
        let pod = h
            .control
            .store
            .get(Kind::Pod, "default", "p")
            .unwrap()
            .unwrap();
        pod.status["phase"].as_str().unwrap_or("").to_string()
    }

    #[test]
    fn a_bound_pod_goes_into_its_nodes_desired_state() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        h.drain();
        let uid = pod_on(&mut h, "pi");
        let published = h.drain();
        let desired = published
            .iter()
            .find(|o| o.topic.ends_with("/desired"))
            .unwrap();
        match unseal(desired).unwrap() {
            Message::Desired(d) => {
                assert_eq!(d.generation, 2);
                assert_eq!(d.pods[0].uid, uid);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicates_and_stale_revisions_are_acknowledged_but_not_applied() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        let uid = pod_on(&mut h, "pi");
        h.drain();
        h.send(
            "pi",
            NodeTopic::Status,
            report(&uid, 2, WirePhase::Succeeded, false),
            t(1),
        );
        assert_eq!(acks(h.drain()), vec![(uid.clone(), 2)]);
        let stored = h
            .control
            .store
            .get(Kind::Pod, "default", "p")
            .unwrap()
            .unwrap();
        // The same report again (QoS 1 redelivery), and an older one arriving late.
        h.send(
            "pi",
            NodeTopic::Status,
            report(&uid, 2, WirePhase::Succeeded, false),
            t(2),
        );
        h.send(
            "pi",
            NodeTopic::Status,
            report(&uid, 1, WirePhase::Running, false),
            t(3),
        );
        assert_eq!(acks(h.drain()), vec![(uid.clone(), 2), (uid.clone(), 1)]);
        let after = h
            .control
            .store
            .get(Kind::Pod, "default", "p")
            .unwrap()
            .unwrap();
        assert_eq!(
            after.resource_version, stored.resource_version,
            "nothing was written again"
        );
        assert_eq!(phase(&h), "Succeeded");
    }

    #[test]
    fn a_finished_pod_travels_as_a_uid_once_its_agent_reported_it() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        let uid = pod_on(&mut h, "pi");
        h.drain();
        h.send(
            "pi",
            NodeTopic::Status,
            report(&uid, 2, WirePhase::Succeeded, false),
            t(1),
        );
        // A status change alone does not touch the desired state; the next change does.
        h.control.ensure_desired("pi").unwrap();
        h.control.flush_desired(t(0));
        let desired = h
            .drain()
            .into_iter()
            .find(|o| o.topic.ends_with("/desired"))
            .unwrap();
        match unseal(&desired).unwrap() {
            Message::Desired(d) => {
                assert!(d.pods.is_empty());
                assert_eq!(d.finished, vec![uid]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_node_that_finished_thousands_of_pods_is_sent_the_newest_only() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        let template = {
            let uid = pod_on(&mut h, "pi");
            h.control.store.get_by_uid(&uid).unwrap().unwrap()
        };
        let total = crate::control::desired::MAX_FINISHED_LISTED + 500;
        let mut newest = String::new();
        for i in 0..total {
            let mut pod = template.clone();
            pod.name = format!("done-{i:05}");
            pod.uid = format!("uid-{i:05}");
            pod.status = serde_json::json!({"phase": "Succeeded"});
            pod.agent_revision = 1;
            newest = h.control.store.put(&pod).unwrap().uid;
        }
        h.drain();
        h.control.ensure_desired("pi").unwrap();
        h.control.flush_desired(t(0));
        let desired = h
            .drain()
            .into_iter()
            .find(|o| o.topic.ends_with("/desired"))
            .unwrap();
        match unseal(&desired).unwrap() {
            Message::Desired(d) => {
                assert_eq!(
                    d.finished.len(),
                    crate::control::desired::MAX_FINISHED_LISTED
                );
                assert_eq!(d.finished[0], newest, "newest first");
                assert!(!d.finished.contains(&"uid-00000".to_string()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_from_another_node_are_dropped() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        h.online("other", session(1, 1), t(0));
        let uid = pod_on(&mut h, "pi");
        h.drain();
        h.send(
            "other",
            NodeTopic::Status,
            report(&uid, 5, WirePhase::Failed, false),
            t(1),
        );
        assert!(acks(h.drain()).is_empty());
        assert_eq!(phase(&h), "Pending");
    }

    #[test]
    fn deletion_completes_when_the_agent_reports_the_pod_removed() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        let uid = pod_on(&mut h, "pi");
        h.drain();
        h.api(
            ApiRequest::Delete {
                kind: Kind::Pod,
                namespace: "default".into(),
                name: "p".into(),
            },
            t(1),
        )
        .unwrap();
        let pod = h
            .control
            .store
            .get(Kind::Pod, "default", "p")
            .unwrap()
            .unwrap();
        assert!(
            pod.deletion_timestamp.is_some(),
            "Terminating until the node confirms"
        );
        let desired = h
            .drain()
            .into_iter()
            .find(|o| o.topic.ends_with("/desired"))
            .unwrap();
        assert!(matches!(unseal(&desired).unwrap(), Message::Desired(d) if d.pods.is_empty()));
        h.send(
            "pi",
            NodeTopic::Status,
            report(&uid, 3, WirePhase::Running, true),
            t(2),
        );
        assert!(h
            .control
            .store
            .get(Kind::Pod, "default", "p")
            .unwrap()
            .is_none());
        assert_eq!(acks(h.drain()), vec![(uid, 3)]);
    }

    #[test]
    fn a_pod_on_an_unreachable_node_is_deleted_at_once() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        pod_on(&mut h, "pi");
        h.control.tick(t(100));
        h.api(
            ApiRequest::Delete {
                kind: Kind::Pod,
                namespace: "default".into(),
                name: "p".into(),
            },
            t(100),
        )
        .unwrap();
        assert!(h
            .control
            .store
            .get(Kind::Pod, "default", "p")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_job_pod_under_replacement_policy_failed_waits_for_its_unreachable_node() {
        for (policy, kept) in [("Failed", true), ("TerminatingOrFailed", false)] {
            let mut h = harness();
            h.online("pi", session(1, 1), t(0));
            let job = format!("apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  podReplacementPolicy: {policy}\n  template:\n    spec:\n      nodeName: pi\n      restartPolicy: Never\n      containers: [{{name: c, command: [sleep, '60']}}]\n");
            h.api(
                ApiRequest::Apply {
                    files: vec![("j.yaml".into(), job)],
                },
                t(0),
            )
            .unwrap();
            h.control.settle(t(0));
            let pods = |h: &Harness| h.control.store.list(Kind::Pod, None).unwrap();
            let name = pods(&h)[0].name.clone();
            h.control.tick(t(100));
            h.api(
                ApiRequest::Delete {
                    kind: Kind::Pod,
                    namespace: "default".into(),
                    name: name.clone(),
                },
                t(100),
            )
            .unwrap();
            // Past the replacement back-off of one failure (10 s).
            h.control.settle(t(100));
            h.control.tick(t(111));
            h.control.settle(t(111));
            let left = pods(&h);
            let original = left.iter().find(|p| p.name == name);
            assert_eq!(original.is_some(), kept, "{policy}");
            if kept {
                assert!(original.is_some_and(|p| p.deletion_timestamp.is_some()));
                assert_eq!(
                    left.len(),
                    1,
                    "{policy}: not replaced while it may still run"
                );
            } else {
                assert_eq!(left.len(), 1, "{policy}: replaced after the back-off");
            }
        }
    }

    #[test]
    fn a_pods_spec_cannot_change_but_its_labels_can() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        pod_on(&mut h, "pi");
        let changed = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  nodeName: pi\n  restartPolicy: Never\n  containers: [{name: c, command: ['false']}]\n";
        let err = h
            .control
            .handle_api(
                ApiRequest::Apply {
                    files: vec![("p.yaml".into(), changed.into())],
                },
                t(1),
            )
            .unwrap_err();
        assert!(err.message.contains("cannot change"), "{}", err.message);
        let relabelled = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: b}}\nspec:\n  nodeName: pi\n  restartPolicy: Never\n  containers: [{name: c, command: ['true']}]\n";
        let ok = h
            .control
            .handle_api(
                ApiRequest::Apply {
                    files: vec![("p.yaml".into(), relabelled.into())],
                },
                t(1),
            )
            .unwrap();
        assert_eq!(ok["items"][0]["result"], "configured");
    }
}

mod workloads {
    use super::*;

    #[test]
    fn a_per_node_cronjob_run_has_one_pinned_pod_per_eligible_node() {
        let mut h = harness();
        h.online("a", session(1, 1), t(0));
        h.online("b", session(1, 1), t(0));
        h.online("c", session(1, 1), t(0));
        h.api(
            ApiRequest::LabelNode {
                name: "c".into(),
                set: [("role".to_string(), "gateway".to_string())].into(),
                remove: vec![],
                overwrite: false,
            },
            t(0),
        )
        .unwrap();
        let cron = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  annotations: {drover.io/per-node: \"true\"}\nspec:\n  schedule: '* * * * *'\n  timeZone: Etc/UTC\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          affinity:\n            nodeAffinity:\n              requiredDuringSchedulingIgnoredDuringExecution:\n                nodeSelectorTerms: [{matchExpressions: [{key: role, operator: DoesNotExist}]}]\n          containers: [{name: c, command: ['true']}]\n";
        h.api(
            ApiRequest::Apply {
                files: vec![("cron.yaml".into(), cron.into())],
            },
            t(0),
        )
        .unwrap();
        h.control.settle(t(61));
        let jobs = h.control.store.list(Kind::Job, None).unwrap();
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(job.name, format!("nightly-{}", t(60).timestamp() / 60));
        assert_eq!(
            job.annotations["drover.io/per-node-targets"], "a,b",
            "c is not eligible"
        );
        assert_eq!(job.spec["completions"], 2);
        let mut nodes: Vec<String> = h
            .control
            .store
            .list(Kind::Pod, None)
            .unwrap()
            .iter()
            .map(|p| p.spec["nodeName"].as_str().unwrap().to_string())
            .collect();
        nodes.sort();
        assert_eq!(nodes, vec!["a", "b"]);
        // The same minute again creates nothing new.
        h.control.workloads_changed();
        h.control.settle(t(62));
        assert_eq!(h.control.store.list(Kind::Job, None).unwrap().len(), 1);
    }

    #[test]
    fn a_job_pod_deleted_before_any_node_could_confirm_still_counts_as_failed() {
        let mut h = harness();
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, command: ['true']}]\n";
        h.api(
            ApiRequest::Apply {
                files: vec![("job.yaml".into(), job.into())],
            },
            t(0),
        )
        .unwrap();
        h.control.settle(t(0));
        let pods = h.control.store.list(Kind::Pod, None).unwrap();
        assert_eq!(pods.len(), 1, "one pod, unscheduled: no node");
        // Gone from the store at once: no node can confirm its stop.
        h.api(
            ApiRequest::Delete {
                kind: Kind::Pod,
                namespace: "default".into(),
                name: pods[0].name.clone(),
            },
            t(1),
        )
        .unwrap();
        h.control.settle(t(1));
        let job = h
            .control
            .store
            .get(Kind::Job, "default", "j")
            .unwrap()
            .unwrap();
        assert_eq!(job.status["failed"], 1, "{}", job.status);
        h.control.settle(t(2));
        let job = h
            .control
            .store
            .get(Kind::Job, "default", "j")
            .unwrap()
            .unwrap();
        assert_eq!(crate::control::jobs::job_finished(&job), Some(false));
    }
}

fn stored(kind: Kind, name: &str, spec: serde_json::Value) -> crate::store::StoredObject {
    let uid = format!("3f2b8c1e-9d4a-4e6b-8f00-00000000{:04x}", name.len());
    crate::store::StoredObject {
        spec,
        status: serde_json::Value::Null,
        ..crate::store::StoredObject::new(kind, "default", name, uid, t(0))
    }
}

fn template() -> serde_json::Value {
    serde_json::json!({
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "command": ["true"]}]}
    })
}

#[test]
fn a_stored_job_out_of_bounds_is_left_alone_without_allocating() {
    let mut h = harness();
    h.online("a", session(1, 1), t(0));
    // As an older version would have stored it: validation at apply now refuses it.
    let job = stored(
        Kind::Job,
        "big",
        serde_json::json!({
            "completionMode": "Indexed",
            "completions": i32::MAX,
            "parallelism": i32::MAX,
            "template": template(),
        }),
    );
    h.control.store.put(&job).unwrap();
    h.control.workloads_changed();
    h.control.settle(t(1));
    assert!(h.control.store.list(Kind::Pod, None).unwrap().is_empty());
}

#[test]
fn a_stored_non_indexed_job_with_huge_parallelism_creates_no_pods() {
    let mut h = harness();
    h.online("a", session(1, 1), t(0));
    let job = stored(
        Kind::Job,
        "wide",
        serde_json::json!({
            "completions": i32::MAX,
            "parallelism": i32::MAX,
            "template": template(),
        }),
    );
    h.control.store.put(&job).unwrap();
    h.control.workloads_changed();
    h.control.settle(t(1));
    assert!(h.control.store.list(Kind::Pod, None).unwrap().is_empty());
}

#[test]
fn a_stored_cronjob_with_an_out_of_bounds_template_starts_no_job() {
    let mut h = harness();
    h.online("a", session(1, 1), t(0));
    let cron = stored(
        Kind::CronJob,
        "big-cron",
        serde_json::json!({
            "schedule": "* * * * *",
            "timeZone": "Etc/UTC",
            "jobTemplate": {"spec": {
                "completionMode": "Indexed",
                "completions": i32::MAX,
                "template": template(),
            }},
        }),
    );
    h.control.store.put(&cron).unwrap();
    h.control.workloads_changed();
    h.control.settle(t(61));
    assert!(h.control.store.list(Kind::Job, None).unwrap().is_empty());
    assert!(h.control.store.list(Kind::Pod, None).unwrap().is_empty());
}

mod daemon_failures;
mod kube;
mod ownership;
mod resync;

#[test]
fn another_agent_process_with_the_same_start_is_a_node_name_conflict() {
    let mut h = harness();
    h.online("pi", session(3, 1), t(0));
    // A copy made while the agent was stopped: the same start, another process, which the
    // broker lets take the connection over.
    let copy = Message::Presence(Presence {
        session: session(3, 2),
        state: PresenceState::Online(Box::new(NodeInfo {
            agent_instance: 2,
            ..info("pi")
        })),
    });
    h.send("pi", NodeTopic::Presence, copy, t(1));
    let node = h.control.store.get(Kind::Node, "", "pi").unwrap().unwrap();
    let events: Vec<_> = h
        .control
        .store
        .events(&node.uid)
        .unwrap()
        .into_iter()
        .filter(|e| e.reason == "NodeNameConflict")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]
            .message
            .starts_with("two agents are connected as node pi: another agent process of start 3 announced itself"),
        "{}",
        events[0].message
    );
    assert_eq!(h.ready("pi").as_deref(), Some("True"));
}

#[test]
fn an_older_agent_start_announcing_itself_after_a_newer_one_is_a_node_name_conflict() {
    let mut h = harness();
    h.online("pi", session(2, 0), t(0));
    let conflicts = |h: &Harness| {
        let node = h.control.store.get(Kind::Node, "", "pi").unwrap().unwrap();
        h.control
            .store
            .events(&node.uid)
            .unwrap()
            .into_iter()
            .filter(|e| e.reason == "NodeNameConflict")
            .collect::<Vec<_>>()
    };
    // An old announcement from the broker's store (a broker restored from a snapshot)
    // says nothing about two agents running now.
    let topic = NodeTopic::Presence.for_node("pi");
    let old = Message::Presence(Presence {
        session: session(1, 3),
        state: PresenceState::Online(Box::new(info("pi"))),
    });
    let sealed = drover_proto::seal(&topic, &old, &node_key("pi")).unwrap();
    h.deliver_as(&topic, &sealed, true, t(1));
    assert!(conflicts(&h).is_empty());
    // Live announcements of the older start, as the two agents take turns.
    h.online("pi", session(1, 4), t(2));
    h.online("pi", session(1, 5), t(3));
    let events = conflicts(&h);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].kind.as_str(), events[0].count), ("Warning", 2));
    assert!(
        events[0].message.starts_with(
            "two agents are connected as node pi: agent start 1 announced itself after start 2"
        ),
        "{}",
        events[0].message
    );
    assert_eq!(
        h.ready("pi").as_deref(),
        Some("True"),
        "the newer agent's node"
    );
}

#[test]
fn a_generated_pod_name_that_is_taken_is_drawn_again() {
    let mut h = harness();
    h.api(
        ApiRequest::Apply {
            files: vec![(
                "p.yaml".into(),
                "apiVersion: v1\nkind: Pod\nmetadata: {name: web-bbbbb}\nspec:\n  containers: [{name: c, command: ['true']}]\n".into(),
            )],
        },
        t(0),
    )
    .unwrap();
    let mut drawn = ["bbbbb", "ccccc"].into_iter().map(str::to_string);
    let name = h
        .control
        .free_name("default", "web-", || drawn.next().unwrap_or_default())
        .unwrap();
    assert_eq!(name, "web-ccccc");
    assert_eq!(
        h.control
            .free_name("other", "web-", || "bbbbb".to_string())
            .unwrap(),
        "web-bbbbb",
        "another namespace's pod takes nothing"
    );
    let always_taken = h
        .control
        .free_name("default", "web-", || "bbbbb".to_string());
    assert!(always_taken.is_err());
}

mod bounded_reports {
    use super::*;
    use crate::control::pods::MAX_EVENTS_PER_REPORT;
    use crate::logs::LogRouter;
    use crate::mqtt::deliver_log;

    fn pod_named(h: &mut Harness, name: &str, node: &str) -> String {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  containers: [{{name: c, command: ['true']}}]\n"
        );
        h.api(
            ApiRequest::Apply {
                files: vec![(format!("{name}.yaml"), text)],
            },
            t(0),
        )
        .unwrap();
        h.control
            .store
            .get(Kind::Pod, "default", name)
            .unwrap()
            .unwrap()
            .uid
    }

    fn event(uid: &str, reason: &str) -> WireEvent {
        WireEvent {
            pod_uid: uid.into(),
            warning: true,
            reason: reason.into(),
            message: "back-off restarting".into(),
            at_ms: 1_800_000_001_000,
        }
    }

    fn events_report(events: Vec<WireEvent>) -> Message {
        Message::Status(StatusReport {
            pods: Vec::new(),
            full: false,
            events,
        })
    }

    /// How often the pod `uid` had an event of `reason` recorded.
    fn recorded(h: &Harness, uid: &str, reason: &str) -> u64 {
        let pod = h.control.store.get_by_uid(uid).unwrap().unwrap();
        h.control
            .store
            .events(&pod.uid)
            .unwrap()
            .iter()
            .filter(|e| e.reason == reason)
            .map(|e| e.count)
            .sum()
    }

    fn dropped(h: &Harness, reason: &str) -> u64 {
        let text = h.metrics.render(&Default::default());
        let series = format!("drover_mqtt_messages_dropped_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {series}in {text}"))
    }

    #[test]
    fn a_report_records_at_most_256_events() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        let uid = pod_named(&mut h, "p", "pi");
        // Identical events are counted on one record, so the count is what was recorded.
        let flood = (0..MAX_EVENTS_PER_REPORT + 300)
            .map(|_| event(&uid, "BackOff"))
            .collect();
        h.send("pi", NodeTopic::Status, events_report(flood), t(1));
        assert_eq!(recorded(&h, &uid, "BackOff"), MAX_EVENTS_PER_REPORT as u64);
    }

    #[test]
    fn events_about_pods_bound_to_another_node_are_dropped_and_counted() {
        let mut h = harness();
        h.online("pi", session(1, 1), t(0));
        h.online("other", session(1, 1), t(0));
        let own = pod_named(&mut h, "mine", "pi");
        let foreign = pod_named(&mut h, "theirs", "other");
        let report = events_report(vec![
            event(&foreign, "Killing"),
            event(&own, "Started"),
            event(&foreign, "Killing"),
            event(&foreign, "BackOff"),
        ]);
        h.send("pi", NodeTopic::Status, report, t(1));
        assert_eq!(recorded(&h, &own, "Started"), 1);
        assert_eq!(recorded(&h, &foreign, "Killing"), 0);
        assert_eq!(recorded(&h, &foreign, "BackOff"), 0);
        assert_eq!(dropped(&h, "foreign_event"), 3);
    }

    /// Log data sealed by `node` for request `id`, routed as the MQTT adapter does.
    fn log_from(h: &Harness, node: &str, id: u64, logs: &LogRouter) {
        let topic = NodeTopic::LogData.for_node(node);
        let chunk = Message::LogChunk(LogChunk {
            id,
            data: b"line\n".to_vec(),
            done: false,
            error: None,
        });
        let payload = drover_proto::seal(&topic, &chunk, &node_key(node)).unwrap();
        match route(
            &h.security.session,
            &h.security.credentials,
            &h.metrics,
            &topic,
            &payload,
        ) {
            Routed::Log(node, chunk) => deliver_log(logs, &h.metrics, &node, chunk),
            other => panic!("log data routed to {other:?}"),
        }
    }

    #[test]
    fn log_data_for_no_request_made_to_that_node_is_dropped_and_counted() {
        let mut h = harness();
        h.enroll("pi", t(0));
        h.enroll("other", t(0));
        let logs = LogRouter::default();
        let (id, mut chunks) = logs.open("pi");
        // Another node answering pi's request, and pi answering a request never made.
        log_from(&h, "other", id, &logs);
        log_from(&h, "pi", id.wrapping_add(1000), &logs);
        assert!(chunks.try_recv().is_err(), "foreign log data was delivered");
        assert_eq!(dropped(&h, "unrequested_log"), 2);
        // The node asked delivers; once the request is closed, its data is dropped too.
        log_from(&h, "pi", id, &logs);
        assert_eq!(chunks.try_recv().unwrap().data, b"line\n");
        logs.close(id);
        log_from(&h, "pi", id, &logs);
        assert_eq!(dropped(&h, "unrequested_log"), 3);
    }
}

#[test]
fn watch_events_show_the_defaults_get_and_list_show() {
    // Stored without its defaults (a DaemonSet's updateStrategy is dropped when it holds
    // Kubernetes' default); `kubectl rollout status` reads it from every watch event.
    let ds = stored(
        Kind::DaemonSet,
        "beat",
        serde_json::json!({"selector": {"matchLabels": {"app": "beat"}}, "template": template()}),
    );
    let shown = crate::control::kube_shape(&ds);
    assert_eq!(shown["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(shown["spec"]["revisionHistoryLimit"], 10);
}
