//! Supervisors as older agents stored them (before probes, and before init containers),
//! read so that an upgraded agent adopts the pods its predecessor ran instead of taking
//! their records for damaged. Postcard keeps no field names: each stored shape needs its
//! own type.

use drover_proto::msg::legacy::DesiredContainerV2;
use drover_proto::msg::{
    DesiredContainer, DesiredPod, DesiredVolume, WireMount, WirePort, WirePullPolicy,
    WireRestartPolicy,
};
use serde::Deserialize;

use super::{
    BackoffPolicy, ContainerPhase, ContainerSupervisor, Exit, Millis, PodSupervisor, Stopping,
};
use crate::prober::ContainerProber;

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct PodV1 {
    uid: String,
    namespace: String,
    name: String,
    restart_policy: WireRestartPolicy,
    termination_grace_seconds: u32,
    containers: Vec<ContainerSpecV1>,
    host_network: bool,
    volumes: Vec<DesiredVolume>,
    hostname: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct ContainerSpecV1 {
    name: String,
    image: Option<String>,
    command: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<String>,
    run_as_user: Option<u32>,
    run_as_group: Option<u32>,
    memory_limit_bytes: Option<u64>,
    cpu_limit_millis: Option<u64>,
    pull_policy: WirePullPolicy,
    privileged: bool,
    ports: Vec<WirePort>,
    mounts: Vec<WireMount>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct ContainerV1 {
    name: String,
    phase: ContainerPhase,
    last_exit: Option<Exit>,
    restart_count: u32,
    crashes: u32,
    started_once: bool,
    image_failures: u32,
}

/// A supervisor as agents without probes stored it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct PodSupervisorV1 {
    spec: PodV1,
    containers: Vec<ContainerV1>,
    revision: u64,
    start_time: Millis,
    message: String,
    reason: String,
    stopping: Option<Stopping>,
    removed: bool,
    backoff: BackoffPolicy,
}

impl From<PodSupervisorV1> for PodSupervisor {
    fn from(old: PodSupervisorV1) -> PodSupervisor {
        let spec = DesiredPod {
            uid: old.spec.uid,
            namespace: old.spec.namespace,
            name: old.spec.name,
            restart_policy: old.spec.restart_policy,
            termination_grace_seconds: old.spec.termination_grace_seconds,
            containers: old
                .spec
                .containers
                .into_iter()
                .map(|c| DesiredContainer {
                    name: c.name,
                    image: c.image,
                    command: c.command,
                    args: c.args,
                    env: c.env,
                    working_dir: c.working_dir,
                    run_as_user: c.run_as_user,
                    run_as_group: c.run_as_group,
                    memory_limit_bytes: c.memory_limit_bytes,
                    cpu_limit_millis: c.cpu_limit_millis,
                    pull_policy: c.pull_policy,
                    privileged: c.privileged,
                    ports: c.ports,
                    mounts: c.mounts,
                    startup_probe: None,
                    liveness_probe: None,
                    readiness_probe: None,
                    post_start: None,
                    pre_stop: None,
                    security: Default::default(),
                })
                .collect(),
            host_network: old.spec.host_network,
            volumes: old.spec.volumes,
            hostname: old.spec.hostname,
            init_containers: Vec::new(),
            fs_group: None,
        };
        let containers = old
            .containers
            .into_iter()
            .zip(&spec.containers)
            .map(|(c, container)| {
                let mut prober = ContainerProber::default();
                if let ContainerPhase::Running { started_at } = c.phase {
                    // Without probes, a running container is ready, as it was reported.
                    prober.start(container, started_at);
                }
                ContainerSupervisor {
                    name: c.name,
                    phase: c.phase,
                    last_exit: c.last_exit,
                    restart_count: c.restart_count,
                    crashes: c.crashes,
                    started_once: c.started_once,
                    image_failures: c.image_failures,
                    prober,
                    kill_at: None,
                }
            })
            .collect();
        PodSupervisor {
            spec,
            containers,
            revision: old.revision,
            start_time: old.start_time,
            message: old.message,
            reason: old.reason,
            stopping: old.stopping,
            removed: old.removed,
            backoff: old.backoff,
            sidecars_stopping: None,
            hooks_running: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct PodV2 {
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

/// A supervisor as agents with probes but without init containers stored it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct PodSupervisorV2 {
    spec: PodV2,
    containers: Vec<ContainerSupervisor>,
    revision: u64,
    start_time: Millis,
    message: String,
    reason: String,
    stopping: Option<Stopping>,
    removed: bool,
    backoff: BackoffPolicy,
}

impl From<PodSupervisorV2> for PodSupervisor {
    fn from(old: PodSupervisorV2) -> PodSupervisor {
        PodSupervisor {
            spec: DesiredPod {
                uid: old.spec.uid,
                namespace: old.spec.namespace,
                name: old.spec.name,
                restart_policy: old.spec.restart_policy,
                termination_grace_seconds: old.spec.termination_grace_seconds,
                containers: old.spec.containers.into_iter().map(Into::into).collect(),
                host_network: old.spec.host_network,
                volumes: old.spec.volumes,
                hostname: old.spec.hostname,
                init_containers: Vec::new(),
                fs_group: None,
            },
            containers: old.containers,
            revision: old.revision,
            start_time: old.start_time,
            message: old.message,
            reason: old.reason,
            stopping: old.stopping,
            removed: old.removed,
            backoff: old.backoff,
            sidecars_stopping: None,
            hooks_running: Vec::new(),
        }
    }
}

/// The postcard bytes of a supervisor as an agent without probes stored it: one running
/// container started at 1000.
#[cfg(test)]
pub fn sample_bytes() -> Vec<u8> {
    let old = PodSupervisorV1 {
        spec: PodV1 {
            uid: "uid-1".into(),
            namespace: "default".into(),
            name: "web".into(),
            restart_policy: WireRestartPolicy::Always,
            termination_grace_seconds: 30,
            containers: vec![ContainerSpecV1 {
                name: "c0".into(),
                image: None,
                command: vec!["sleep".into()],
                args: vec!["60".into()],
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
            }],
            host_network: false,
            volumes: vec![],
            hostname: None,
        },
        containers: vec![ContainerV1 {
            name: "c0".into(),
            phase: ContainerPhase::Running { started_at: 1000 },
            last_exit: None,
            restart_count: 2,
            crashes: 1,
            started_once: true,
            image_failures: 0,
        }],
        revision: 4,
        start_time: 900,
        message: String::new(),
        reason: String::new(),
        stopping: None,
        removed: false,
        backoff: BackoffPolicy::default(),
    };
    postcard::to_stdvec(&old).expect("a test value encodes")
}

/// The postcard bytes of a supervisor as an agent with probes but without init containers
/// stored it: one running container with a liveness probe, started at 1000.
#[cfg(test)]
pub fn sample_bytes_v2() -> Vec<u8> {
    use drover_proto::msg::{WireProbe, WireProbeHandler};
    let container = DesiredContainerV2 {
        name: "c0".into(),
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
        readiness_probe: None,
        liveness_probe: Some(WireProbe {
            handler: WireProbeHandler::TcpSocket {
                host: None,
                port: 8080,
            },
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            success_threshold: 1,
            failure_threshold: 3,
            termination_grace_seconds: None,
        }),
    };
    let (mut current, _) = PodSupervisor::new(
        DesiredPod {
            uid: "uid-2".into(),
            name: "probed".into(),
            containers: vec![container.clone().into()],
            ..DesiredPod::default()
        },
        BackoffPolicy::default(),
        900,
    );
    current.started(0, 1000);
    current.containers[0].restart_count = 1;
    let old = PodSupervisorV2 {
        spec: PodV2 {
            uid: "uid-2".into(),
            namespace: "default".into(),
            name: "probed".into(),
            restart_policy: WireRestartPolicy::Always,
            termination_grace_seconds: 30,
            containers: vec![container],
            host_network: false,
            volumes: vec![],
            hostname: None,
        },
        containers: current.containers,
        revision: 7,
        start_time: 900,
        message: String::new(),
        reason: String::new(),
        stopping: None,
        removed: false,
        backoff: BackoffPolicy::default(),
    };
    postcard::to_stdvec(&old).expect("a test value encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervisor_stored_before_probes_reads_as_a_running_ready_container() {
        let old: PodSupervisorV1 = postcard::from_bytes(&sample_bytes()).unwrap();
        let sup = PodSupervisor::from(old);
        assert_eq!(sup.spec.containers[0].args, vec!["60".to_string()]);
        assert_eq!(sup.containers[0].restart_count, 2);
        assert_eq!(sup.revision, 4);
        let status = sup.status();
        assert!(status.containers[0].ready, "{status:?}");
        // The current shape does not read it: the fallback is what keeps the pod.
        assert!(postcard::from_bytes::<PodSupervisor>(&sample_bytes()).is_err());
    }

    #[test]
    fn a_supervisor_stored_before_init_containers_keeps_its_probes() {
        let old: PodSupervisorV2 = postcard::from_bytes(&sample_bytes_v2()).unwrap();
        let sup = PodSupervisor::from(old);
        assert!(sup.spec.containers[0].liveness_probe.is_some());
        assert!(sup.spec.init_containers.is_empty());
        assert_eq!(sup.containers[0].restart_count, 1);
        assert_eq!(sup.revision, 7);
        assert_eq!(
            sup.containers[0].phase,
            ContainerPhase::Running { started_at: 1000 }
        );
        assert_eq!(sup.phase(), drover_proto::msg::WirePhase::Running);
    }
}
