//! What the workload controllers and the garbage collector ask the store to do: one action
//! type, carried out in order by one executor (`control/execute.rs`). The rules decide what
//! the actions are; the executor only knows how to do each one.

use std::collections::BTreeMap;

use drover_proto::manifest::{JobSpec, Kind, PodSpec};

/// An object by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `kind` `namespace/name`.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// The controller an object is created for: its owner reference, and where its events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The owner's key.
    pub key: ObjectKey,
    /// The owner's UID.
    pub uid: String,
}

/// A pod a controller creates.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPod {
    /// Its owner (and namespace).
    pub owner: Owner,
    /// Its name but for the random suffix the executor adds (Kubernetes' `generateName`).
    pub generate_name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// The spec; a pod with `nodeName` is stored scheduled.
    pub spec: PodSpec,
}

/// A Job a controller creates.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Its owner (and namespace).
    pub owner: Owner,
    /// Its name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// The spec.
    pub spec: JobSpec,
}

/// An event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something the user should look at.
    Warning,
}

impl EventType {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store a new pod; its owner records `SuccessfulCreate` naming it.
    CreatePod(NewPod),
    /// Delete a pod as [`super::pod_deletion`] decides (gracefully while its node can
    /// confirm).
    DeletePod {
        /// The pod.
        pod: ObjectKey,
        /// Its Job deleted it on purpose (excess, suspended, finished): the Job never
        /// counts it as failed, and does not wait for it under `podReplacementPolicy:
        /// Failed`.
        never_counted: bool,
    },
    /// Bind a pending pod to a node (the scheduler's choice).
    Bind {
        /// The pod.
        pod: ObjectKey,
        /// The node.
        node: String,
    },
    /// Mark a pending pod as fitting no node, saying why.
    MarkUnschedulable {
        /// The pod.
        pod: ObjectKey,
        /// kubectl's `0/N nodes are available: …` message.
        message: String,
    },
    /// Evict a pod from a lost node: a `DisruptionTarget` condition naming `taint`, marked
    /// for deletion and out of its node's desired state; `failed_at_once`: shown as failed
    /// (so its Job replaces it now) instead of terminating until its node reports.
    Evict {
        /// The pod.
        pod: ObjectKey,
        /// The `NoExecute` taint it did not tolerate.
        taint: String,
        /// Failed at once, not left terminating.
        failed_at_once: bool,
    },
    /// Store a new Job, unless one of its name exists; its owner records
    /// `SuccessfulCreate` naming it.
    CreateJob(NewJob),
    /// Delete an object now, and its dependents in the background (a Job with its pods).
    DeleteWithDependents(ObjectKey),
    /// Take the owner reference to `owner_uid` off a dependent, which then stays.
    Orphan {
        /// The dependent.
        dependent: ObjectKey,
        /// The owner it is released from.
        owner_uid: String,
    },
    /// Remove an object from the store with what is kept about it (revisions, results,
    /// back-offs), and nothing else.
    Remove {
        /// The object.
        object: ObjectKey,
        /// Its UID (what is kept about it is keyed by it).
        uid: String,
    },
    /// Record an event about an object.
    Event {
        /// The object.
        on: ObjectKey,
        /// Normal or Warning.
        event_type: EventType,
        /// The reason (CamelCase).
        reason: String,
        /// The message.
        message: String,
    },
}

impl Action {
    /// A Normal event about `on`.
    pub fn normal(on: &ObjectKey, reason: &str, message: impl Into<String>) -> Action {
        Action::Event {
            on: on.clone(),
            event_type: EventType::Normal,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    /// A Warning event about `on`.
    pub fn warning(on: &ObjectKey, reason: &str, message: impl Into<String>) -> Action {
        Action::Event {
            on: on.clone(),
            event_type: EventType::Warning,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}
