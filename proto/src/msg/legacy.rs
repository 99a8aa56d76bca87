//! Messages as peers before init containers encoded them, read so that a controller
//! upgraded first still hears its older agents, and an upgraded agent still reads the
//! desired state it stored. Postcard keeps no field names: the old shapes are spelled out.

use serde::{Deserialize, Serialize};

use super::{
    DesiredContainer, DesiredPod, DesiredState, DesiredVolume, EnrollReply, EnrollRequest,
    Heartbeat, LogChunk, LogRequest, Message, Presence, StatusAck, StatusReport,
    WireContainerStatus, WireEvent, WireMount, WirePhase, WirePodStatus, WirePort, WireProbe,
    WirePullPolicy, WireRestartPolicy,
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
    containers: Vec<DesiredContainerV2>,
    host_network: bool,
    volumes: Vec<DesiredVolume>,
    hostname: Option<String>,
}

/// A container as version 2 sent it: with probes, without lifecycle hooks. Agents kept
/// pods in this shape too.
#[allow(missing_docs)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesiredContainerV2 {
    pub name: String,
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub memory_limit_bytes: Option<u64>,
    pub cpu_limit_millis: Option<u64>,
    pub pull_policy: WirePullPolicy,
    pub privileged: bool,
    pub ports: Vec<WirePort>,
    pub mounts: Vec<WireMount>,
    pub startup_probe: Option<WireProbe>,
    pub liveness_probe: Option<WireProbe>,
    pub readiness_probe: Option<WireProbe>,
}

impl From<DesiredContainerV2> for DesiredContainer {
    fn from(old: DesiredContainerV2) -> DesiredContainer {
        DesiredContainer {
            name: old.name,
            image: old.image,
            command: old.command,
            args: old.args,
            env: old.env,
            working_dir: old.working_dir,
            run_as_user: old.run_as_user,
            run_as_group: old.run_as_group,
            memory_limit_bytes: old.memory_limit_bytes,
            cpu_limit_millis: old.cpu_limit_millis,
            pull_policy: old.pull_policy,
            privileged: old.privileged,
            ports: old.ports,
            mounts: old.mounts,
            startup_probe: old.startup_probe,
            liveness_probe: old.liveness_probe,
            readiness_probe: old.readiness_probe,
            post_start: None,
            pre_stop: None,
            security: Default::default(),
        }
    }
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
                    containers: p.containers.into_iter().map(Into::into).collect(),
                    host_network: p.host_network,
                    volumes: p.volumes,
                    hostname: p.hostname,
                    init_containers: Vec::new(),
                    fs_group: None,
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
                containers: vec![DesiredContainerV2 {
                    name: "main".into(),
                    image: None,
                    command: vec!["sleep".into(), "60".into()],
                    args: vec![],
                    env: vec![],
                    working_dir: None,
                    run_as_user: None,
                    run_as_group: None,
                    memory_limit_bytes: None,
                    cpu_limit_millis: None,
                    pull_policy: WirePullPolicy::IfNotPresent,
                    privileged: false,
                    ports: vec![],
                    mounts: vec![],
                    startup_probe: None,
                    liveness_probe: None,
                    readiness_probe: None,
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
