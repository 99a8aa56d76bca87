//! Messages as peers before init containers encoded them, read so that a controller
//! upgraded first still hears its older agents, and an upgraded agent still reads the
//! desired state it stored. Postcard keeps no field names: the old shapes are spelled out.

use serde::Deserialize;

use super::{
    DesiredContainer, DesiredPod, DesiredState, DesiredVolume, EnrollReply, EnrollRequest,
    Heartbeat, LogChunk, LogRequest, Message, Presence, StatusAck, StatusReport,
    WireContainerStatus, WireEvent, WirePhase, WirePodStatus, WireRestartPolicy,
};

/// [`Message`] as it was, variant for variant.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
enum MessageBeforeInit {
    Presence(Presence),
    Heartbeat(Heartbeat),
    Desired(DesiredStateBeforeInit),
    Status(StatusReportBeforeInit),
    Ack(StatusAck),
    LogRequest(LogRequest),
    LogChunk(LogChunk),
    EnrollRequest(EnrollRequest),
    EnrollReply(EnrollReply),
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct DesiredStateBeforeInit {
    generation: u64,
    pods: Vec<DesiredPodBeforeInit>,
    finished: Vec<String>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct DesiredPodBeforeInit {
    uid: String,
    namespace: String,
    name: String,
    restart_policy: WireRestartPolicy,
    termination_grace_seconds: u32,
    containers: Vec<DesiredContainer>,
    host_network: bool,
    volumes: Vec<DesiredVolume>,
    hostname: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct StatusReportBeforeInit {
    pods: Vec<PodStatusBeforeInit>,
    full: bool,
    events: Vec<WireEvent>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct PodStatusBeforeInit {
    uid: String,
    revision: u64,
    phase: WirePhase,
    reason: String,
    message: String,
    start_time_ms: i64,
    containers: Vec<WireContainerStatus>,
    removed: bool,
}

/// Reads `body` (a version 2 message without the envelope), filling it exactly; only the
/// desired state and status changed shape since.
pub(crate) fn decode_before_init(body: &[u8]) -> Option<Message> {
    let (old, rest) = postcard::take_from_bytes::<MessageBeforeInit>(body).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some(match old {
        MessageBeforeInit::Presence(p) => Message::Presence(p),
        MessageBeforeInit::Heartbeat(h) => Message::Heartbeat(h),
        MessageBeforeInit::Ack(a) => Message::Ack(a),
        MessageBeforeInit::LogRequest(r) => Message::LogRequest(r),
        MessageBeforeInit::LogChunk(c) => Message::LogChunk(c),
        MessageBeforeInit::EnrollRequest(r) => Message::EnrollRequest(r),
        MessageBeforeInit::EnrollReply(r) => Message::EnrollReply(r),
        MessageBeforeInit::Desired(d) => Message::Desired(DesiredState {
            generation: d.generation,
            pods: d
                .pods
                .into_iter()
                .map(|p| DesiredPod {
                    uid: p.uid,
                    namespace: p.namespace,
                    name: p.name,
                    restart_policy: p.restart_policy,
                    termination_grace_seconds: p.termination_grace_seconds,
                    containers: p.containers,
                    host_network: p.host_network,
                    volumes: p.volumes,
                    hostname: p.hostname,
                    init_containers: Vec::new(),
                })
                .collect(),
            finished: d.finished,
        }),
        MessageBeforeInit::Status(s) => Message::Status(StatusReport {
            pods: s
                .pods
                .into_iter()
                .map(|p| WirePodStatus {
                    uid: p.uid,
                    revision: p.revision,
                    phase: p.phase,
                    reason: p.reason,
                    message: p.message,
                    start_time_ms: p.start_time_ms,
                    containers: p.containers,
                    removed: p.removed,
                    init_containers: Vec::new(),
                })
                .collect(),
            full: s.full,
            events: s.events,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::WireContainerState;

    fn version_2(message: &MessageBeforeInit) -> Vec<u8> {
        let mut bytes = vec![2];
        bytes.extend(postcard::to_stdvec(message).unwrap());
        bytes
    }

    #[test]
    fn a_status_report_of_an_agent_before_init_containers_is_read() {
        let old = MessageBeforeInit::Status(StatusReportBeforeInit {
            pods: vec![PodStatusBeforeInit {
                uid: "0a0b0c0d-0000-4000-8000-000000000001".into(),
                revision: 4,
                phase: WirePhase::Running,
                reason: String::new(),
                message: String::new(),
                start_time_ms: 1_800_000_000_000,
                containers: vec![WireContainerStatus {
                    name: "main".into(),
                    state: WireContainerState::Running {
                        started_at_ms: 1_800_000_000_000,
                    },
                    last_state: None,
                    restart_count: 2,
                    ready: true,
                }],
                removed: false,
            }],
            full: true,
            events: vec![],
        });
        let Ok(Message::Status(report)) = crate::wire::decode(&version_2(&old)) else {
            panic!("a version 2 status report reads");
        };
        assert!(report.full);
        assert_eq!(report.pods[0].revision, 4);
        assert_eq!(report.pods[0].containers[0].restart_count, 2);
        assert!(report.pods[0].init_containers.is_empty());
        // The version byte decides the shape: the same body as version 3 is not taken.
        let mut as_current = version_2(&old);
        as_current[0] = crate::wire::PROTOCOL_VERSION;
        assert!(!matches!(
            crate::wire::decode(&as_current),
            Ok(Message::Status(ref r)) if *r == report
        ));
    }

    #[test]
    fn a_desired_state_stored_before_init_containers_is_read() {
        let old = MessageBeforeInit::Desired(DesiredStateBeforeInit {
            generation: 17,
            pods: vec![DesiredPodBeforeInit {
                uid: "0a0b0c0d-0000-4000-8000-000000000002".into(),
                namespace: "default".into(),
                name: "web".into(),
                restart_policy: WireRestartPolicy::Always,
                termination_grace_seconds: 30,
                containers: vec![DesiredContainer {
                    name: "main".into(),
                    command: vec!["sleep".into(), "60".into()],
                    ..DesiredContainer::default()
                }],
                host_network: false,
                volumes: vec![],
                hostname: None,
            }],
            finished: vec![],
        });
        let Ok(Message::Desired(desired)) = crate::wire::decode(&version_2(&old)) else {
            panic!("a version 2 desired state reads");
        };
        assert_eq!(
            desired.generation, 17,
            "the replay floor survives the upgrade"
        );
        assert_eq!(desired.pods[0].containers[0].command, ["sleep", "60"]);
        assert!(desired.pods[0].init_containers.is_empty());
    }
}
