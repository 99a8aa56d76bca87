//! A node's desired state: everything it should run, as one snapshot.

use serde::{Deserialize, Serialize};

/// The complete set of pods a node should run. Level-triggered: each snapshot replaces the
/// previous one, so an agent that missed messages needs only the latest (retained) one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    /// Increases with every change of this node's desired state.
    pub generation: u64,
    /// Pods to run.
    pub pods: Vec<DesiredPod>,
    /// UIDs of the node's finished pods whose final status the controller has: the agent
    /// keeps their records and logs (within its limits on finished pods), and runs nothing
    /// for them. (A finished pod the agent does not know is not started.)
    pub finished: Vec<String>,
}

/// Restart policy on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum WireRestartPolicy {
    /// Restart after every exit.
    #[default]
    Always,
    /// Restart after non-zero exits.
    OnFailure,
    /// Never restart.
    Never,
}

/// One pod, reduced to what an agent needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DesiredPod {
    /// Pod UID: the identity of everything the agent does for this pod.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Restart policy.
    pub restart_policy: WireRestartPolicy,
    /// Seconds between SIGTERM and SIGKILL.
    pub termination_grace_seconds: u32,
    /// Containers.
    pub containers: Vec<DesiredContainer>,
    /// Engine containers share the host's network namespace.
    pub host_network: bool,
    /// Volumes the containers may mount.
    pub volumes: Vec<DesiredVolume>,
    /// Host name of the pod (`spec.hostname`); the pod's name when `None`.
    pub hostname: Option<String>,
    /// Init containers, run in order before `containers`.
    pub init_containers: Vec<DesiredInitContainer>,
    /// The group that owns the pod's `emptyDir` volumes (`fsGroup`).
    pub fs_group: Option<u32>,
}

/// An init container: run to completion before the next one starts, or, as a sidecar
/// (`restartPolicy: Always`), started before the next one and kept running beside the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredInitContainer {
    /// What it runs.
    pub container: DesiredContainer,
    /// A native sidecar: restarted whenever it exits, stopped after the app containers.
    pub sidecar: bool,
}

impl DesiredPod {
    /// How many containers the pod has, init containers included.
    pub fn container_count(&self) -> usize {
        self.init_containers.len() + self.containers.len()
    }

    /// Container `index` of the pod's containers in start order: its init containers, then
    /// its app containers.
    pub fn container(&self, index: usize) -> Option<&DesiredContainer> {
        match index.checked_sub(self.init_containers.len()) {
            None => self.init_containers.get(index).map(|i| &i.container),
            Some(app) => self.containers.get(app),
        }
    }

    /// Every container in start order (init containers first).
    pub fn all_containers(&self) -> impl Iterator<Item = &DesiredContainer> {
        self.init_containers
            .iter()
            .map(|i| &i.container)
            .chain(&self.containers)
    }

    /// Whether container `index` (in start order) is an init container.
    pub fn is_init(&self, index: usize) -> bool {
        index < self.init_containers.len()
    }

    /// Whether container `index` (in start order) is a native sidecar.
    pub fn is_sidecar(&self, index: usize) -> bool {
        self.init_containers.get(index).is_some_and(|i| i.sidecar)
    }
}

/// When the container engine pulls an image (Kubernetes `imagePullPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum WirePullPolicy {
    /// Pull before every start.
    Always,
    /// Pull only when the image is missing.
    #[default]
    IfNotPresent,
    /// Never pull; a missing image is an error.
    Never,
}

/// A port a container publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePort {
    /// Port inside the container.
    pub container_port: u16,
    /// Port on the host it is published on, if any.
    pub host_port: Option<u16>,
    /// UDP (else TCP).
    pub udp: bool,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMount {
    /// Name of the pod volume.
    pub volume: String,
    /// Path inside the container.
    pub path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A pod volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredVolume {
    /// Name, unique in the pod.
    pub name: String,
    /// Where its files live.
    pub source: VolumeSource,
}

/// Where a volume's files live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeSource {
    /// A path on the node.
    HostPath {
        /// Absolute path.
        path: String,
        /// Kubernetes hostPath `type` (empty: no check).
        kind: String,
    },
    /// A directory created for the pod and deleted with it.
    EmptyDir,
    /// A directory of the node's tmpfs (`/dev/shm`) created for the pod (`medium: Memory`)
    /// and deleted with it.
    MemoryDir,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DesiredContainer {
    /// Name, unique in the pod.
    pub name: String,
    /// Image; `None` runs a host process.
    pub image: Option<String>,
    /// Entrypoint.
    pub command: Vec<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Run as this uid.
    pub run_as_user: Option<u32>,
    /// Run as this gid.
    pub run_as_group: Option<u32>,
    /// Memory limit in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// CPU limit in millicores.
    pub cpu_limit_millis: Option<u64>,
    /// When to pull `image`.
    pub pull_policy: WirePullPolicy,
    /// Privileged engine container.
    pub privileged: bool,
    /// Ports.
    pub ports: Vec<WirePort>,
    /// Volume mounts.
    pub mounts: Vec<WireMount>,
    /// Gates the other probes until it succeeds.
    pub startup_probe: Option<WireProbe>,
    /// Restarts the container when it fails.
    pub liveness_probe: Option<WireProbe>,
    /// Decides whether the container is ready.
    pub readiness_probe: Option<WireProbe>,
    /// Runs once the container has started; its failure kills the container.
    pub post_start: Option<WireHook>,
    /// Runs before the container is sent SIGTERM.
    pub pre_stop: Option<WireHook>,
    /// Security settings beyond the user and group.
    pub security: WireSecurity,
}

/// A container's `securityContext` beyond its user, group and `privileged`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WireSecurity {
    /// Set no_new_privs (`allowPrivilegeEscalation: false`).
    pub no_new_privileges: bool,
    /// The image's filesystem is mounted read-only.
    pub read_only_root: bool,
    /// Capabilities added, without `CAP_`.
    pub capabilities_add: Vec<String>,
    /// Capabilities dropped, without `CAP_` (`ALL`: every one).
    pub capabilities_drop: Vec<String>,
    /// Run without a seccomp filter.
    pub seccomp_unconfined: bool,
    /// Run without an AppArmor profile.
    pub app_armor_unconfined: bool,
    /// Supplementary groups: the pod's `fsGroup`, then its `supplementalGroups`.
    pub groups: Vec<u32>,
    /// Refuse to start as uid 0 (`runAsNonRoot`), checked against the user it would run as.
    pub run_as_non_root: bool,
}

/// A lifecycle hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireHook {
    /// An `exec` or `httpGet`, run as a probe's is.
    Check(WireProbeHandler),
    /// Wait this long.
    Sleep {
        /// Seconds.
        seconds: u32,
    },
}

/// A container probe, with Kubernetes' defaults filled in and named ports resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireProbe {
    /// What is checked.
    pub handler: WireProbeHandler,
    /// Seconds after the container starts before the first probe.
    pub initial_delay_seconds: u32,
    /// Seconds between probes (at least 1).
    pub period_seconds: u32,
    /// Seconds a probe may take (at least 1).
    pub timeout_seconds: u32,
    /// Successes in a row that make the probe succeed.
    pub success_threshold: u32,
    /// Failures in a row that make the probe fail.
    pub failure_threshold: u32,
    /// Grace period of a container killed for failing this probe (`None`: the pod's).
    pub termination_grace_seconds: Option<u32>,
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireProbeHandler {
    /// A command in the container exits 0.
    Exec {
        /// Command and arguments.
        command: Vec<String>,
    },
    /// An HTTP GET answers 200–399.
    HttpGet {
        /// Host (`None`: the pod's address).
        host: Option<String>,
        /// Port.
        port: u16,
        /// Path, starting with `/`.
        path: String,
        /// TLS, without certificate verification.
        https: bool,
        /// Request headers.
        headers: Vec<(String, String)>,
    },
    /// A TCP connection opens.
    TcpSocket {
        /// Host (`None`: the pod's address).
        host: Option<String>,
        /// Port.
        port: u16,
    },
    /// `grpc.health.v1.Health/Check` answers `SERVING`.
    Grpc {
        /// Port.
        port: u16,
        /// Service name asked about.
        service: String,
    },
}
