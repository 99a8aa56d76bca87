//! Types that exist only to be described: the statuses Drover writes as hand-built JSON
//! (`pods.rs`, `control/jobs.rs`, `control/cronjobs.rs`, `control/daemonsets.rs`, `nodes.rs`),
//! the kinds that have no manifest type (Node, Namespace, Event, ControllerRevision) and the
//! `meta/v1` types of responses. Nothing serializes them; their derived schemas are the
//! documentation `kubectl explain` prints, so keep them in step with the JSON those files write.

// Their fields are never read: only their schemas are used.
#![allow(dead_code)]

use std::collections::BTreeMap;

use drover_proto::manifest::{ObjectMeta, Quantity, Taint};
use schemars::JsonSchema;

/// An RFC 3339 timestamp (`2026-01-02T15:04:05Z`).
pub struct Time;

impl JsonSchema for Time {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Time".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }

    fn inline_schema() -> bool {
        true
    }
}

/// A condition of a Pod, Job or Node.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Ready`, `PodScheduled`, `Complete`, `Failed`, `SuccessCriteriaMet`,
    /// `FailureTarget`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason of the last transition.
    pub reason: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// When the status last changed.
    pub last_transition_time: Option<Time>,
    /// When the condition was last probed.
    pub last_probe_time: Option<Time>,
}

/// `state.waiting` of a container.
#[derive(JsonSchema)]
pub struct ContainerStateWaiting {
    /// Why it is not running yet (`ContainerCreating`, `ErrImagePull`, `CrashLoopBackOff`, …).
    pub reason: Option<String>,
    /// Details.
    pub message: Option<String>,
}

/// `state.running` of a container.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateRunning {
    /// When the container (or process) started.
    pub started_at: Option<Time>,
}

/// `state.terminated` of a container.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateTerminated {
    /// Exit status of the last run.
    pub exit_code: i32,
    /// Signal that ended it, when one did.
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled`, …
    pub reason: Option<String>,
    /// Details.
    pub message: Option<String>,
    /// When it started.
    pub started_at: Option<Time>,
    /// When it exited.
    pub finished_at: Option<Time>,
}

/// A container's state; exactly one member is set.
#[derive(JsonSchema)]
pub struct ContainerState {
    /// Not yet running.
    pub waiting: Option<ContainerStateWaiting>,
    /// Running.
    pub running: Option<ContainerStateRunning>,
    /// Exited.
    pub terminated: Option<ContainerStateTerminated>,
}

/// What the node's agent last reported about one container.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Container name.
    pub name: String,
    /// Whether the container is ready (running).
    pub ready: bool,
    /// Restarts so far.
    pub restart_count: i32,
    /// Whether the container has started.
    pub started: Option<bool>,
    /// Current state.
    pub state: Option<ContainerState>,
    /// State of the previous run, after a restart.
    pub last_state: Option<ContainerState>,
}

/// `status` of a Pod, written by the controller from its agent's reports.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: Option<String>,
    /// `PodScheduled`, `Initialized`, `ContainersReady`, `Ready`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// When the agent started the pod.
    pub start_time: Option<Time>,
    /// Containers, as last reported.
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatus>,
    /// Init containers (sidecars among them), as last reported.
    #[serde(default)]
    pub init_container_statuses: Vec<ContainerStatus>,
    /// The node's address (process pods share it).
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
    /// The pod's address.
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    /// Why the pod is in its phase (`Evicted`, `NodeLost`, …).
    pub reason: Option<String>,
    /// Details.
    pub message: Option<String>,
}

/// `status` of a Job, written by the Job controller.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Pods running now.
    pub active: Option<i32>,
    /// Running pods that are ready.
    pub ready: Option<i32>,
    /// Pods that succeeded.
    pub succeeded: Option<i32>,
    /// Pods that failed.
    pub failed: Option<i32>,
    /// Pods being stopped.
    pub terminating: Option<i32>,
    /// `Complete`, `Failed`, `SuccessCriteriaMet`, `FailureTarget`, `Suspended`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// When the Job first started pods.
    pub start_time: Option<Time>,
    /// When the Job completed.
    pub completion_time: Option<Time>,
    /// Indexed Jobs: indexes that succeeded (`"0-2,5"`).
    pub completed_indexes: Option<String>,
    /// Indexed Jobs with `backoffLimitPerIndex`: indexes that failed.
    pub failed_indexes: Option<String>,
}

/// A reference to another object.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Its API version.
    pub api_version: Option<String>,
    /// Its kind.
    pub kind: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its UID.
    pub uid: Option<String>,
}

/// `status` of a CronJob.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronJobStatus {
    /// Jobs of this CronJob still running.
    #[serde(default)]
    pub active: Vec<ObjectReference>,
    /// When a Job was last scheduled.
    pub last_schedule_time: Option<Time>,
    /// When a Job last succeeded.
    pub last_successful_time: Option<Time>,
}

/// `status` of a DaemonSet, written by the DaemonSet controller.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetStatus {
    /// Nodes that should run the daemon pod.
    pub desired_number_scheduled: i32,
    /// Nodes running at least one daemon pod that should.
    pub current_number_scheduled: i32,
    /// Nodes whose daemon pod is ready.
    pub number_ready: i32,
    /// Nodes whose daemon pod has been ready for `minReadySeconds`.
    pub number_available: Option<i32>,
    /// Nodes that should run an available daemon pod and do not.
    pub number_unavailable: Option<i32>,
    /// Nodes running the current template's pod.
    pub updated_number_scheduled: Option<i32>,
    /// Nodes running a daemon pod that should not.
    pub number_misscheduled: i32,
    /// The generation this status describes.
    pub observed_generation: Option<i64>,
}

/// A node address.
#[derive(JsonSchema)]
pub struct NodeAddress {
    /// `InternalIP` or `Hostname`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The address.
    pub address: String,
}

/// What the node's agent reported about the machine.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSystemInfo {
    /// CPU architecture (`arm64`, `amd64`, …).
    pub architecture: String,
    /// `linux`.
    pub operating_system: String,
    /// Kernel release.
    pub kernel_version: String,
    /// OS name and version.
    pub os_image: String,
    /// Changes on every boot.
    #[serde(rename = "bootID")]
    pub boot_id: String,
    /// The machine's identity.
    #[serde(rename = "machineID")]
    pub machine_id: String,
    /// The Drover agent's version.
    pub kubelet_version: String,
    /// The container engine, if any.
    pub container_runtime_version: String,
}

/// `status` of a Node, written from its agent's registration and heartbeats.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// `Ready` (`Unknown` when heartbeats stop).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Addresses of the node.
    #[serde(default)]
    pub addresses: Vec<NodeAddress>,
    /// Total resources (`cpu`, `memory`).
    #[serde(default)]
    pub capacity: BTreeMap<String, Quantity>,
    /// Resources for pods.
    #[serde(default)]
    pub allocatable: BTreeMap<String, Quantity>,
    /// Facts about the machine.
    pub node_info: Option<NodeSystemInfo>,
}

/// `spec` of a Node.
#[derive(JsonSchema)]
pub struct NodeSpec {
    /// Cordoned: no new pods are scheduled.
    pub unschedulable: Option<bool>,
    /// Taints (Drover adds `node.kubernetes.io/unreachable` while heartbeats stop).
    #[serde(default)]
    pub taints: Vec<Taint>,
}

/// `v1 Node`: a machine running the Drover agent. Created when an agent enrolls.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `v1`.
    pub api_version: Option<String>,
    /// `Node`.
    pub kind: Option<String>,
    /// Metadata.
    pub metadata: Option<ObjectMeta>,
    /// Spec.
    pub spec: Option<NodeSpec>,
    /// Status, from the agent.
    pub status: Option<NodeStatus>,
}

/// `spec` of a Namespace.
#[derive(JsonSchema)]
pub struct NamespaceSpec {}

/// `status` of a Namespace.
#[derive(JsonSchema)]
pub struct NamespaceStatus {
    /// `Active` or `Terminating`.
    pub phase: Option<String>,
}

/// `v1 Namespace`.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// `v1`.
    pub api_version: Option<String>,
    /// `Namespace`.
    pub kind: Option<String>,
    /// Metadata.
    pub metadata: Option<ObjectMeta>,
    /// Spec (empty).
    pub spec: Option<NamespaceSpec>,
    /// Status.
    pub status: Option<NamespaceStatus>,
}

/// Who reported an Event.
#[derive(JsonSchema)]
pub struct EventSource {
    /// Component, e.g. `drover-controller` or a node's agent.
    pub component: Option<String>,
    /// Node it happened on.
    pub host: Option<String>,
}

/// `v1 Event`: something that happened to an object (written by Drover, read-only).
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `v1`.
    pub api_version: Option<String>,
    /// `Event`.
    pub kind: Option<String>,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The object it is about.
    pub involved_object: ObjectReference,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Short machine-readable reason (`Scheduled`, `Pulled`, `BackOff`, …).
    pub reason: Option<String>,
    /// Human-readable description.
    pub message: Option<String>,
    /// Who reported it.
    pub source: Option<EventSource>,
    /// How many times it happened.
    pub count: Option<i32>,
    /// First time it happened.
    pub first_timestamp: Option<Time>,
    /// Last time it happened.
    pub last_timestamp: Option<Time>,
}

/// `apps/v1 ControllerRevision`: a DaemonSet's template at one revision (read-only; `kubectl
/// rollout history` lists them).
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControllerRevision {
    /// `apps/v1`.
    pub api_version: Option<String>,
    /// `ControllerRevision`.
    pub kind: Option<String>,
    /// Metadata.
    pub metadata: Option<ObjectMeta>,
    /// The revision's data: the DaemonSet's `spec.template` as a patch.
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// Revision number, increasing.
    pub revision: i64,
}

/// `metadata` of a list.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The store's version when the list was read; watch from it.
    pub resource_version: Option<String>,
    /// Pass as `continue` to get the next page.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
    /// Objects left after this page, when known.
    pub remaining_item_count: Option<i64>,
}

/// A cause of a failed request.
#[derive(JsonSchema)]
pub struct StatusCause {
    /// Machine-readable cause (`FieldValueInvalid`, …).
    pub reason: Option<String>,
    /// Human-readable description.
    pub message: Option<String>,
    /// The field at fault (`spec.containers[0].image`).
    pub field: Option<String>,
}

/// Details of a failed request.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// Name of the object concerned.
    pub name: Option<String>,
    /// Its group.
    pub group: Option<String>,
    /// Its kind (resource).
    pub kind: Option<String>,
    /// Its UID.
    pub uid: Option<String>,
    /// Causes.
    #[serde(default)]
    pub causes: Vec<StatusCause>,
    /// Seconds to wait before retrying.
    pub retry_after_seconds: Option<i32>,
}

/// `v1 Status`: the result of a request that returns no object, and every error.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `v1`.
    pub api_version: Option<String>,
    /// `Status`.
    pub kind: Option<String>,
    /// List metadata.
    pub metadata: Option<ListMeta>,
    /// `Success` or `Failure`.
    pub status: Option<String>,
    /// Human-readable description.
    pub message: Option<String>,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, …).
    pub reason: Option<String>,
    /// Details.
    pub details: Option<StatusDetails>,
    /// HTTP status code.
    pub code: Option<i32>,
}

/// Options of a delete.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    /// `v1`.
    pub api_version: Option<String>,
    /// `DeleteOptions`.
    pub kind: Option<String>,
    /// Seconds to wait before killing the pods; 0 deletes at once.
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    /// `All` to only validate.
    #[serde(default)]
    pub dry_run: Vec<String>,
}

/// `policy/v1 Eviction`: the body of `pods/{name}/eviction`.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Eviction {
    /// `policy/v1`.
    pub api_version: Option<String>,
    /// `Eviction`.
    pub kind: Option<String>,
    /// The pod to evict (name and namespace).
    pub metadata: Option<ObjectMeta>,
    /// Options of the deletion.
    pub delete_options: Option<DeleteOptions>,
}

/// One event of a watch stream.
#[derive(JsonSchema)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The object (a Status for `ERROR`).
    pub object: serde_json::Map<String, serde_json::Value>,
}

/// The object another belongs to; deleting the owner deletes what it owns.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    /// The owner's API version.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// The owner's UID.
    pub uid: String,
    /// Whether the owner is the managing controller.
    pub controller: Option<bool>,
    /// Whether the owner waits for this object when deleted in the foreground.
    pub block_owner_deletion: Option<bool>,
}
