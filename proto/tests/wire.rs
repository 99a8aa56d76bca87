//! Round trips for every message, and the decoder against hostile bytes.

use drover_proto::msg::*;
use drover_proto::wire::{decode, encode, DecodeError, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn node_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,20}[a-z0-9]"
}

fn session() -> impl Strategy<Value = Session> {
    (any::<u64>(), any::<u64>()).prop_map(|(agent_start, connection)| Session {
        agent_start,
        connection,
    })
}

fn node_info() -> impl Strategy<Value = NodeInfo> {
    (
        node_name(),
        "[0-9a-f][0-9a-f-]{34}[0-9a-f]",
        vec(("[a-z./]{1,20}", "[a-zA-Z0-9]{0,10}"), 0..5),
        ("[a-z0-9]{3,6}", "\\PC{0,30}", option::of("\\PC{0,30}")),
        (any::<u32>(), any::<u64>(), any::<u64>()),
        (vec("[0-9.]{7,15}", 0..3), any::<u64>()),
    )
        .prop_map(
            |(
                name,
                uid,
                labels,
                (arch, text, model),
                (cpus, memory_bytes, hb),
                (addresses, instance),
            )| {
                NodeInfo {
                    name,
                    uid,
                    labels,
                    architecture: arch,
                    operating_system: "linux".into(),
                    kernel_version: text.clone(),
                    os_image: text.clone(),
                    model,
                    cpus,
                    memory_bytes,
                    agent_version: "0.1.0".into(),
                    boot_id: text,
                    addresses,
                    heartbeat_interval_ms: hb,
                    container_runtime: "docker://28.2.2".into(),
                    container_runtime_problem: String::new(),
                    disk_pressure: false,
                    agent_instance: instance,
                }
            },
        )
}

fn restart_policy() -> impl Strategy<Value = WireRestartPolicy> {
    prop_oneof![
        Just(WireRestartPolicy::Always),
        Just(WireRestartPolicy::OnFailure),
        Just(WireRestartPolicy::Never),
    ]
}

fn container() -> impl Strategy<Value = DesiredContainer> {
    (
        "[a-z]{1,10}",
        option::of("\\PC{1,20}"),
        vec("\\PC{0,10}", 0..4),
        vec(("[A-Z_]{1,8}", "\\PC{0,10}"), 0..4),
        option::of("/[a-z/]{0,10}"),
        (option::of(any::<u32>()), option::of(any::<u32>())),
        (option::of(any::<u64>()), option::of(any::<u64>())),
        (
            pull_policy(),
            any::<bool>(),
            vec(
                (any::<u16>(), option::of(any::<u16>()), any::<bool>()).prop_map(
                    |(container_port, host_port, udp)| WirePort {
                        container_port,
                        host_port,
                        udp,
                    },
                ),
                0..3,
            ),
            vec(
                ("[a-z]{1,8}", "/[a-z/]{0,10}", any::<bool>()).prop_map(
                    |(volume, path, read_only)| WireMount {
                        volume,
                        path,
                        read_only,
                    },
                ),
                0..3,
            ),
        ),
        (
            option::of(probe()),
            option::of(probe()),
            option::of(probe()),
        ),
        (option::of(hook()), option::of(hook()), security()),
    )
        .prop_map(
            |(
                name,
                image,
                command,
                env,
                working_dir,
                (uid, gid),
                (mem, cpu),
                (pull_policy, privileged, ports, mounts),
                (startup_probe, liveness_probe, readiness_probe),
                (post_start, pre_stop, security),
            )| DesiredContainer {
                name,
                image,
                args: command.clone(),
                command,
                env,
                working_dir,
                run_as_user: uid,
                run_as_group: gid,
                memory_limit_bytes: mem,
                cpu_limit_millis: cpu,
                pull_policy,
                privileged,
                ports,
                mounts,
                startup_probe,
                liveness_probe,
                readiness_probe,
                post_start,
                pre_stop,
                security,
            },
        )
}

fn security() -> impl Strategy<Value = WireSecurity> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>()),
        vec("[A-Z_]{1,12}", 0..3),
        vec("[A-Z_]{1,12}", 0..3),
        vec(any::<u32>(), 0..3),
    )
        .prop_map(
            |((no_new_privileges, read_only_root, seccomp_unconfined), add, drop, groups)| {
                WireSecurity {
                    no_new_privileges,
                    read_only_root,
                    capabilities_add: add,
                    capabilities_drop: drop,
                    seccomp_unconfined,
                    app_armor_unconfined: !seccomp_unconfined,
                    groups,
                    run_as_non_root: no_new_privileges && read_only_root,
                }
            },
        )
}

fn hook() -> impl Strategy<Value = WireHook> {
    prop_oneof![
        probe().prop_map(|p| WireHook::Check(p.handler)),
        any::<u32>().prop_map(|seconds| WireHook::Sleep { seconds }),
    ]
}

fn probe() -> impl Strategy<Value = WireProbe> {
    let handler = prop_oneof![
        vec("\\PC{0,10}", 0..3).prop_map(|command| WireProbeHandler::Exec { command }),
        (
            option::of("[a-z.]{1,10}"),
            any::<u16>(),
            "/[a-z/]{0,10}",
            any::<bool>(),
            vec(("[A-Za-z-]{1,8}", "\\PC{0,10}"), 0..3),
        )
            .prop_map(
                |(host, port, path, https, headers)| WireProbeHandler::HttpGet {
                    host,
                    port,
                    path,
                    https,
                    headers,
                }
            ),
        (option::of("[a-z.]{1,10}"), any::<u16>())
            .prop_map(|(host, port)| WireProbeHandler::TcpSocket { host, port }),
        (any::<u16>(), "[a-z]{0,8}")
            .prop_map(|(port, service)| WireProbeHandler::Grpc { port, service }),
    ];
    (
        handler,
        (any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), option::of(any::<u32>())),
    )
        .prop_map(
            |(
                handler,
                (initial_delay_seconds, period_seconds, timeout_seconds),
                (success_threshold, failure_threshold, termination_grace_seconds),
            )| WireProbe {
                handler,
                initial_delay_seconds,
                period_seconds,
                timeout_seconds,
                success_threshold,
                failure_threshold,
                termination_grace_seconds,
            },
        )
}

fn pull_policy() -> impl Strategy<Value = WirePullPolicy> {
    prop_oneof![
        Just(WirePullPolicy::Always),
        Just(WirePullPolicy::IfNotPresent),
        Just(WirePullPolicy::Never),
    ]
}

fn volume() -> impl Strategy<Value = DesiredVolume> {
    (
        "[a-z]{1,8}",
        option::of(("/[a-z/]{0,10}", "[A-Za-z]{0,12}")),
    )
        .prop_map(|(name, host)| DesiredVolume {
            name,
            source: match host {
                Some((path, kind)) => VolumeSource::HostPath { path, kind },
                None => VolumeSource::EmptyDir,
            },
        })
}

fn desired_pod() -> impl Strategy<Value = DesiredPod> {
    (
        "[0-9a-f][0-9a-f-]{34}[0-9a-f]",
        "[a-z]{1,10}",
        "[a-z0-9-]{1,30}",
        restart_policy(),
        any::<u32>(),
        vec(container(), 1..3),
        (any::<bool>(), option::of("[a-z0-9-]{1,20}")),
        vec(volume(), 0..3),
        vec(
            (container(), any::<bool>())
                .prop_map(|(container, sidecar)| DesiredInitContainer { container, sidecar }),
            0..2,
        ),
    )
        .prop_map(
            |(
                uid,
                namespace,
                name,
                restart_policy,
                grace,
                containers,
                (host_network, hostname),
                volumes,
                init_containers,
            )| {
                DesiredPod {
                    uid,
                    namespace,
                    name,
                    restart_policy,
                    termination_grace_seconds: grace,
                    containers,
                    host_network,
                    volumes,
                    hostname,
                    init_containers,
                    fs_group: None,
                }
            },
        )
}

fn container_state() -> impl Strategy<Value = WireContainerState> {
    prop_oneof![
        ("[A-Za-z]{0,20}", "\\PC{0,20}")
            .prop_map(|(reason, message)| WireContainerState::Waiting { reason, message }),
        any::<i64>().prop_map(|started_at_ms| WireContainerState::Running { started_at_ms }),
        (
            any::<i32>(),
            any::<i32>(),
            "[A-Za-z]{0,12}",
            "\\PC{0,20}",
            any::<i64>(),
            any::<i64>()
        )
            .prop_map(
                |(exit_code, signal, reason, message, started_at_ms, finished_at_ms)| {
                    WireContainerState::Terminated {
                        exit_code,
                        signal,
                        reason,
                        message,
                        started_at_ms,
                        finished_at_ms,
                    }
                }
            ),
    ]
}

fn pod_status() -> impl Strategy<Value = WirePodStatus> {
    let phase = prop_oneof![
        Just(WirePhase::Pending),
        Just(WirePhase::Running),
        Just(WirePhase::Succeeded),
        Just(WirePhase::Failed)
    ];
    let container = || {
        (
            "[a-z]{1,8}",
            container_state(),
            option::of(container_state()),
            any::<u32>(),
            any::<bool>(),
        )
            .prop_map(|(name, state, last_state, restart_count, ready)| {
                WireContainerStatus {
                    name,
                    state,
                    last_state,
                    restart_count,
                    ready,
                }
            })
    };
    (
        "[0-9a-f][0-9a-f-]{34}[0-9a-f]",
        any::<u64>(),
        phase,
        "[A-Za-z]{0,10}",
        "\\PC{0,20}",
        any::<i64>(),
        vec(container(), 0..3),
        any::<bool>(),
        vec(container(), 0..2),
    )
        .prop_map(
            |(
                uid,
                revision,
                phase,
                reason,
                message,
                start_time_ms,
                containers,
                removed,
                init_containers,
            )| {
                WirePodStatus {
                    uid,
                    revision,
                    phase,
                    reason,
                    message,
                    start_time_ms,
                    containers,
                    removed,
                    init_containers,
                }
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (session(), node_info()).prop_map(|(session, info)| Message::Presence(Presence {
            session,
            state: PresenceState::Online(Box::new(info)),
        })),
        (
            session(),
            prop_oneof![
                Just(OfflineReason::Shutdown),
                Just(OfflineReason::ConnectionLost)
            ]
        )
            .prop_map(|(session, reason)| Message::Presence(Presence {
                session,
                state: PresenceState::Offline(reason),
            })),
        (session(), any::<u64>())
            .prop_map(|(session, sequence)| Message::Heartbeat(Heartbeat { session, sequence })),
        (
            any::<u64>(),
            vec(desired_pod(), 0..4),
            vec("[0-9a-f][0-9a-f-]{34}[0-9a-f]", 0..4)
        )
            .prop_map(
                |(generation, pods, finished)| Message::Desired(DesiredState {
                    generation,
                    pods,
                    finished
                })
            ),
        (
            vec(pod_status(), 0..4),
            any::<bool>(),
            vec(
                (
                    "[a-f0-9]{8}",
                    any::<bool>(),
                    "[A-Za-z]{1,10}",
                    "\\PC{0,20}",
                    any::<i64>()
                ),
                0..3
            )
        )
            .prop_map(|(pods, full, events)| Message::Status(StatusReport {
                pods,
                full,
                events: events
                    .into_iter()
                    .map(|(pod_uid, warning, reason, message, at_ms)| WireEvent {
                        pod_uid,
                        warning,
                        reason,
                        message,
                        at_ms
                    })
                    .collect(),
            })),
        vec(("[a-f0-9]{8}", any::<u64>()), 0..5).prop_map(|pods| Message::Ack(StatusAck { pods })),
        (
            any::<u64>(),
            "[a-f0-9]{8}",
            "[a-z]{0,8}",
            any::<u32>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(id, pod_uid, container, tail_lines, previous, follow, cancel)| {
                    Message::LogRequest(LogRequest {
                        id,
                        pod_uid,
                        container,
                        tail_lines,
                        previous,
                        follow,
                        cancel,
                    })
                }
            ),
        (
            any::<u64>(),
            vec(any::<u8>(), 0..64),
            any::<bool>(),
            option::of("\\PC{0,20}")
        )
            .prop_map(|(id, data, done, error)| Message::LogChunk(LogChunk {
                id,
                data,
                done,
                error
            })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips(msg in message()) {
        let bytes = encode(&msg).unwrap();
        prop_assert_eq!(bytes[0], PROTOCOL_VERSION);
        prop_assert_eq!(decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn random_bodies_behind_a_valid_version_never_panic(body in vec(any::<u8>(), 0..2048)) {
        let mut bytes = vec![PROTOCOL_VERSION];
        bytes.extend(body);
        let _ = decode(&bytes);
    }

    #[test]
    fn every_truncation_is_rejected_without_panic(msg in message()) {
        let bytes = encode(&msg).unwrap();
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut]) {
                Err(_) => {}
                // Only the trailing instance id of an online presence may be missing: an
                // agent older than the field ends its announcement there.
                Ok(decoded) => prop_assert_eq!(decoded, without_instance(&msg)),
            }
        }
    }

    #[test]
    fn an_older_agents_announcement_reads_with_instance_zero(info in node_info(), session in session()) {
        let msg = Message::Presence(Presence {
            session,
            state: PresenceState::Online(Box::new(NodeInfo { agent_instance: 0, ..info })),
        });
        let mut bytes = encode(&msg).unwrap();
        // The field is the message's last byte (0 as a varint): what an older agent sends.
        prop_assert_eq!(bytes.pop(), Some(0));
        prop_assert_eq!(decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn single_byte_corruption_never_panics(msg in message(), index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&msg).unwrap();
        let i = index.index(bytes.len());
        bytes[i] = byte;
        let _ = decode(&bytes);
    }
}

/// `msg` as an older agent would have sent it: an online presence without its instance id.
fn without_instance(msg: &Message) -> Message {
    match msg {
        Message::Presence(Presence {
            session,
            state: PresenceState::Online(info),
        }) => Message::Presence(Presence {
            session: *session,
            state: PresenceState::Online(Box::new(NodeInfo {
                agent_instance: 0,
                ..(**info).clone()
            })),
        }),
        other => other.clone(),
    }
}

#[test]
fn oversized_payloads_are_rejected() {
    let bytes = vec![PROTOCOL_VERSION; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::Oversized(MAX_PAYLOAD_BYTES + 1))
    );
}

#[test]
fn empty_payload_and_unknown_version_are_rejected() {
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
    assert_eq!(decode(&[99, 0]), Err(DecodeError::UnsupportedVersion(99)));
}

#[test]
fn a_huge_length_prefix_does_not_allocate_or_panic() {
    // Desired variant, generation 0, then a pod count of u32::MAX as a varint.
    let bytes = [PROTOCOL_VERSION, 2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(decode(&bytes), Err(DecodeError::Malformed(_))));
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = encode(&Message::Heartbeat(Heartbeat {
        session: Session {
            agent_start: 1,
            connection: 1,
        },
        sequence: 3,
    }))
    .unwrap();
    bytes.push(0);
    assert!(matches!(decode(&bytes), Err(DecodeError::Malformed(_))));
}

#[test]
fn an_online_presence_with_an_invalid_node_name_is_rejected() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut info = node_info().new_tree(&mut runner).unwrap().current();
    info.name = "not/a/node".into();
    let bytes = encode(&Message::Presence(Presence {
        session: Session {
            agent_start: 1,
            connection: 1,
        },
        state: PresenceState::Online(Box::new(info)),
    }))
    .unwrap();
    assert!(matches!(decode(&bytes), Err(DecodeError::Invalid(_))));
}

#[test]
fn a_pod_uid_that_could_name_a_path_is_rejected_at_decode() {
    for uid in ["../../etc", "a/b", "", "UPPER", "-x"] {
        let message = Message::Desired(DesiredState {
            generation: 1,
            pods: vec![],
            finished: vec![uid.to_string()],
        });
        let bytes = encode(&message).unwrap();
        assert!(
            matches!(decode(&bytes), Err(DecodeError::Invalid(_))),
            "{uid:?} accepted"
        );
    }
}
