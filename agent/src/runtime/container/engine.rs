//! The container engine as the agent needs it: a small trait over the Docker Engine API,
//! so the pod manager's container logic runs against a fake in unit tests and against
//! Docker or Podman for real.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;

/// A boxed engine call.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// A boxed stream of log bytes.
pub type LogStream<'a> = Pin<Box<dyn Stream<Item = Result<Vec<u8>, EngineError>> + Send + 'a>>;

/// What an engine call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The image is not in the engine's store.
    #[error("no such image")]
    NoSuchImage,
    /// The container does not exist.
    #[error("no such container")]
    NoSuchContainer,
    /// A container with that name exists already.
    #[error("container name already in use")]
    NameInUse,
    /// A call timed out.
    #[error("the container engine did not answer in time")]
    Timeout,
    /// Anything else, with the engine's message.
    #[error("{0}")]
    Other(String),
}

/// Everything needed to create one container: the engine-neutral result of translating a
/// pod's container (see [`super::plan`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatePlan {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Replaces the image's ENTRYPOINT when set.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's CMD when set.
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// `uid` or `uid:gid`.
    pub user: Option<String>,
    /// Host name inside the container (unset with the host's network).
    pub hostname: Option<String>,
    /// Labels that tie the container to its node, pod and run.
    pub labels: BTreeMap<String, String>,
    /// Memory limit (also the memory+swap limit: no swap).
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// Privileged.
    pub privileged: bool,
    /// Use the host's network namespace.
    pub host_network: bool,
    /// `source:target[:ro]` bind mounts.
    pub binds: Vec<String>,
    /// Exposed ports, and the host port each is published on.
    pub ports: Vec<PlannedPort>,
    /// The image's filesystem is read-only.
    pub read_only_root: bool,
    /// Capabilities added to the engine's default set.
    pub cap_add: Vec<String>,
    /// Capabilities dropped from it.
    pub cap_drop: Vec<String>,
    /// `no-new-privileges:true`, `seccomp=unconfined`.
    pub security_opt: Vec<String>,
    /// Supplementary groups (numeric).
    pub group_add: Vec<String>,
    /// Refuse to start it as uid 0 (`runAsNonRoot`).
    pub run_as_non_root: bool,
}

/// One container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPort {
    /// `80/tcp`.
    pub container: String,
    /// Published on this host port.
    pub host_port: Option<u16>,
}

/// A container's state as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Still running.
    pub running: bool,
    /// Exit code (128+N when killed by signal N).
    pub exit_code: i32,
    /// Killed by the memory limit.
    pub oom_killed: bool,
}

/// How a command run in a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code.
    pub exit_code: i64,
    /// The start of what it wrote (stdout and stderr).
    pub output: Vec<u8>,
}

/// The most output of an exec that is kept (Kubernetes keeps 10 KiB of a probe's).
pub const EXEC_OUTPUT_MAX: usize = 10 * 1024;

/// A container the engine holds for this node, found through its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    /// Engine id.
    pub id: String,
    /// Pod UID label.
    pub pod_uid: String,
    /// Container name label.
    pub container: String,
    /// Run number label.
    pub run: u64,
    /// Running now.
    pub running: bool,
}

/// The calls the agent makes to a container engine.
pub trait ContainerEngine: Send + Sync {
    /// Pulls `image`; the error carries the engine's message.
    fn pull<'a>(&'a self, image: &'a str) -> EngineFuture<'a, ()>;
    /// Creates a container; returns its id.
    fn create<'a>(&'a self, plan: &'a CreatePlan) -> EngineFuture<'a, String>;
    /// Starts a created container.
    fn start<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()>;
    /// Resolves when the container is not running.
    fn wait<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()>;
    /// The container's state.
    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ContainerState>;
    /// SIGTERM, then SIGKILL after `grace_seconds`.
    fn stop<'a>(&'a self, id: &'a str, grace_seconds: u32) -> EngineFuture<'a, ()>;
    /// SIGKILL.
    fn kill<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()>;
    /// Removes the container (killing it if needed).
    fn remove<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()>;
    /// Every container labelled with `node`, running or not.
    fn list<'a>(&'a self, node: &'a str) -> EngineFuture<'a, Vec<ListedContainer>>;
    /// The user a created container runs as (its own, else its image's); empty: root.
    fn user_of<'a>(&'a self, id: &'a str) -> EngineFuture<'a, String>;
    /// Runs `command` in the running container and waits for it to end.
    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> EngineFuture<'a, ExecOutput>;
    /// The container's address on the engine's network (`None` on the host's network).
    fn address<'a>(&'a self, id: &'a str) -> EngineFuture<'a, Option<std::net::IpAddr>>;
    /// The container's output (stdout and stderr), the last `tail` lines or all of it,
    /// then, with `follow`, what it writes until it stops.
    fn logs<'a>(&'a self, id: &'a str, tail: Option<u32>, follow: bool) -> LogStream<'a>;
}
