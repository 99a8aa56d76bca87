//! The Kubernetes messages Drover reads in protobuf: for each, its fields' numbers (from
//! Kubernetes' `generated.proto` files), JSON names and kinds. Only fields Drover's
//! manifests take are listed (plus the defaults clients send and the JSON path drops);
//! any other field with a value is refused by name, so no setting is lost silently.

/// What a field holds.
#[derive(Clone, Copy)]
pub enum Kind {
    Str,
    /// int32 or int64 (negative values are ten-byte varints either way).
    Int,
    Bool,
    Msg(&'static Message),
    /// A message whose fields Go embeds (`json:",inline"`) in the enclosing object.
    Inline(&'static Message),
    /// `resource.Quantity`: a message holding the quantity's text as field 1.
    Quantity,
    /// `intstr.IntOrString`: a number (`intVal`, 2) or a name (`strVal`, 3), as `type` (1)
    /// says.
    IntOrString,
    /// `map<string, string>`.
    StrMap,
    /// `map<string, resource.Quantity>`.
    QuantityMap,
    /// Sent by clients, set by the server (status, timestamps): read past.
    Skip,
    /// A Kubernetes setting Drover does not model, listed so that the error names it:
    /// refused when set (a pointer field when present, another when not zero).
    Refuse,
}

/// One field of a message.
#[derive(Clone, Copy)]
pub struct Field {
    pub number: u32,
    pub name: &'static str,
    pub kind: Kind,
    pub repeated: bool,
    /// A Go pointer: present means set, even to zero. Other fields are always on the
    /// wire, and their zero value means unset (JSON's `omitempty`).
    pub pointer: bool,
}

/// A message type.
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

const fn field(number: u32, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: false,
        pointer: false,
    }
}

/// A plain (non-pointer) field.
const fn f(number: u32, name: &'static str, kind: Kind) -> Field {
    field(number, name, kind)
}

/// A pointer field.
const fn p(number: u32, name: &'static str, kind: Kind) -> Field {
    Field {
        pointer: true,
        ..field(number, name, kind)
    }
}

/// A repeated field.
const fn r(number: u32, name: &'static str, kind: Kind) -> Field {
    Field {
        repeated: true,
        ..field(number, name, kind)
    }
}

use Kind::{Bool, Inline, Int, IntOrString, Msg, Quantity, QuantityMap, Refuse, Skip, Str, StrMap};

// meta/v1 (apimachinery pkg/apis/meta/v1/generated.proto).

pub static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", Str),
        f(2, "generateName", Str),
        f(3, "namespace", Str),
        f(4, "selfLink", Str),
        f(5, "uid", Str),
        f(6, "resourceVersion", Str),
        f(7, "generation", Int),
        f(8, "creationTimestamp", Skip),
        f(9, "deletionTimestamp", Skip),
        p(10, "deletionGracePeriodSeconds", Int),
        f(11, "labels", StrMap),
        f(12, "annotations", StrMap),
        r(13, "ownerReferences", Msg(&OWNER_REFERENCE)),
        r(14, "finalizers", Str),
        r(17, "managedFields", Skip),
    ],
};

/// A template's metadata. kubectl names a CronJob's job template after the CronJob;
/// Kubernetes ignores template names (a Job's name comes from its CronJob), and so does
/// Drover, whose templates take labels and annotations only.
pub static TEMPLATE_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", Skip),
        f(2, "generateName", Str),
        f(3, "namespace", Str),
        f(4, "selfLink", Str),
        f(5, "uid", Str),
        f(6, "resourceVersion", Str),
        f(7, "generation", Int),
        f(8, "creationTimestamp", Skip),
        f(9, "deletionTimestamp", Skip),
        p(10, "deletionGracePeriodSeconds", Int),
        f(11, "labels", StrMap),
        f(12, "annotations", StrMap),
        r(13, "ownerReferences", Msg(&OWNER_REFERENCE)),
        r(14, "finalizers", Str),
        r(17, "managedFields", Skip),
    ],
};

pub static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        f(1, "kind", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
        f(5, "apiVersion", Str),
        p(6, "controller", Bool),
        p(7, "blockOwnerDeletion", Bool),
    ],
};

pub static DELETE_OPTIONS: Message = Message {
    name: "DeleteOptions",
    fields: &[
        p(1, "gracePeriodSeconds", Int),
        p(2, "preconditions", Msg(&PRECONDITIONS)),
        p(3, "orphanDependents", Bool),
        p(4, "propagationPolicy", Str),
        r(5, "dryRun", Str),
    ],
};

pub static PRECONDITIONS: Message = Message {
    name: "Preconditions",
    fields: &[p(1, "uid", Str), p(2, "resourceVersion", Str)],
};

// core/v1 (kubernetes/api core/v1/generated.proto).

pub static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&NAMESPACE_SPEC)),
        f(3, "status", Skip),
    ],
};

pub static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[r(1, "finalizers", Str)],
};

pub static POD: Message = Message {
    name: "Pod",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&POD_SPEC)),
        f(3, "status", Skip),
    ],
};

pub static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[
        f(1, "metadata", Msg(&TEMPLATE_META)),
        f(2, "spec", Msg(&POD_SPEC)),
    ],
};

pub static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        r(1, "volumes", Msg(&VOLUME)),
        r(2, "containers", Msg(&CONTAINER)),
        r(20, "initContainers", Msg(&CONTAINER)),
        f(3, "restartPolicy", Str),
        p(4, "terminationGracePeriodSeconds", Int),
        f(6, "dnsPolicy", Str),
        f(7, "nodeSelector", StrMap),
        f(8, "serviceAccountName", Str),
        f(9, "serviceAccount", Str),
        f(10, "nodeName", Str),
        f(11, "hostNetwork", Bool),
        p(14, "securityContext", Msg(&POD_SECURITY_CONTEXT)),
        f(16, "hostname", Str),
        p(18, "affinity", Msg(&AFFINITY)),
        f(19, "schedulerName", Str),
        r(22, "tolerations", Msg(&TOLERATION)),
        p(25, "priority", Int),
        p(29, "runtimeClassName", Str),
        p(30, "enableServiceLinks", Bool),
        p(31, "preemptionPolicy", Str),
        // Accepted and ignored, as in JSON (proto/src/manifest/ignored.rs).
        p(21, "automountServiceAccountToken", Bool),
        f(24, "priorityClassName", Str),
        // Its message is not modelled here; ignored in JSON anyway.
        p(26, "dnsConfig", Skip),
        // Refused by name.
        p(5, "activeDeadlineSeconds", Refuse),
        f(12, "hostPID", Refuse),
        f(13, "hostIPC", Refuse),
        r(15, "imagePullSecrets", Refuse),
        f(17, "subdomain", Refuse),
        r(23, "hostAliases", Refuse),
        p(27, "shareProcessNamespace", Refuse),
        r(28, "readinessGates", Refuse),
        r(33, "topologySpreadConstraints", Refuse),
        r(34, "ephemeralContainers", Refuse),
        p(35, "setHostnameAsFQDN", Refuse),
        p(36, "os", Refuse),
        p(37, "hostUsers", Refuse),
        r(38, "schedulingGates", Refuse),
        r(39, "resourceClaims", Refuse),
        p(40, "resources", Refuse),
    ],
};

pub static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        f(1, "name", Str),
        f(2, "image", Str),
        r(3, "command", Str),
        r(4, "args", Str),
        f(5, "workingDir", Str),
        r(6, "ports", Msg(&CONTAINER_PORT)),
        r(7, "env", Msg(&ENV_VAR)),
        f(8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        r(9, "volumeMounts", Msg(&VOLUME_MOUNT)),
        f(13, "terminationMessagePath", Str),
        f(14, "imagePullPolicy", Str),
        p(15, "securityContext", Msg(&SECURITY_CONTEXT)),
        f(20, "terminationMessagePolicy", Str),
        p(10, "livenessProbe", Msg(&PROBE)),
        p(11, "readinessProbe", Msg(&PROBE)),
        p(22, "startupProbe", Msg(&PROBE)),
        p(24, "restartPolicy", Str),
        p(12, "lifecycle", Msg(&LIFECYCLE)),
        // Refused by name.
        f(16, "stdin", Refuse),
        f(17, "stdinOnce", Refuse),
        f(18, "tty", Refuse),
        r(19, "envFrom", Refuse),
        r(21, "volumeDevices", Refuse),
        r(23, "resizePolicy", Refuse),
    ],
};

pub static PROBE: Message = Message {
    name: "Probe",
    fields: &[
        f(1, "handler", Inline(&PROBE_HANDLER)),
        f(2, "initialDelaySeconds", Int),
        f(3, "timeoutSeconds", Int),
        f(4, "periodSeconds", Int),
        f(5, "successThreshold", Int),
        f(6, "failureThreshold", Int),
        p(7, "terminationGracePeriodSeconds", Int),
    ],
};

pub static PROBE_HANDLER: Message = Message {
    name: "ProbeHandler",
    fields: &[
        p(1, "exec", Msg(&EXEC_ACTION)),
        p(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        p(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        p(4, "grpc", Msg(&GRPC_ACTION)),
    ],
};

pub static LIFECYCLE: Message = Message {
    name: "Lifecycle",
    fields: &[
        p(1, "postStart", Msg(&LIFECYCLE_HANDLER)),
        p(2, "preStop", Msg(&LIFECYCLE_HANDLER)),
    ],
};

pub static LIFECYCLE_HANDLER: Message = Message {
    name: "LifecycleHandler",
    fields: &[
        p(1, "exec", Msg(&EXEC_ACTION)),
        p(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        p(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        p(4, "sleep", Msg(&SLEEP_ACTION)),
    ],
};

pub static SLEEP_ACTION: Message = Message {
    name: "SleepAction",
    fields: &[f(1, "seconds", Int)],
};

pub static EXEC_ACTION: Message = Message {
    name: "ExecAction",
    fields: &[r(1, "command", Str)],
};

pub static HTTP_GET_ACTION: Message = Message {
    name: "HTTPGetAction",
    fields: &[
        f(1, "path", Str),
        f(2, "port", IntOrString),
        f(3, "host", Str),
        f(4, "scheme", Str),
        r(5, "httpHeaders", Msg(&HTTP_HEADER)),
    ],
};

pub static HTTP_HEADER: Message = Message {
    name: "HTTPHeader",
    fields: &[f(1, "name", Str), f(2, "value", Str)],
};

pub static TCP_SOCKET_ACTION: Message = Message {
    name: "TCPSocketAction",
    fields: &[f(1, "port", IntOrString), f(2, "host", Str)],
};

pub static GRPC_ACTION: Message = Message {
    name: "GRPCAction",
    fields: &[f(1, "port", Int), p(2, "service", Str)],
};

pub static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        f(1, "name", Str),
        f(2, "hostPort", Int),
        f(3, "containerPort", Int),
        f(4, "protocol", Str),
    ],
};

pub static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[
        f(1, "name", Str),
        f(2, "value", Str),
        p(3, "valueFrom", Msg(&ENV_VAR_SOURCE)),
    ],
};

pub static ENV_VAR_SOURCE: Message = Message {
    name: "EnvVarSource",
    fields: &[
        p(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        p(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        p(3, "configMapKeyRef", Refuse),
        p(4, "secretKeyRef", Refuse),
    ],
};

pub static OBJECT_FIELD_SELECTOR: Message = Message {
    name: "ObjectFieldSelector",
    fields: &[f(1, "apiVersion", Str), f(2, "fieldPath", Str)],
};

pub static RESOURCE_FIELD_SELECTOR: Message = Message {
    name: "ResourceFieldSelector",
    fields: &[
        f(1, "containerName", Str),
        f(2, "resource", Str),
        p(3, "divisor", Quantity),
    ],
};

pub static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[f(1, "limits", QuantityMap), f(2, "requests", QuantityMap)],
};

pub static VOLUME_MOUNT: Message = Message {
    name: "VolumeMount",
    fields: &[
        f(1, "name", Str),
        f(2, "readOnly", Bool),
        f(3, "mountPath", Str),
        p(3, "valueFrom", Refuse),
    ],
};

pub static SECURITY_CONTEXT: Message = Message {
    name: "SecurityContext",
    fields: &[
        p(1, "capabilities", Msg(&CAPABILITIES)),
        p(2, "privileged", Bool),
        p(4, "runAsUser", Int),
        p(5, "runAsNonRoot", Bool),
        p(6, "readOnlyRootFilesystem", Bool),
        p(7, "allowPrivilegeEscalation", Bool),
        p(8, "runAsGroup", Int),
        p(11, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        p(12, "appArmorProfile", Msg(&SECCOMP_PROFILE)),
    ],
};

pub static CAPABILITIES: Message = Message {
    name: "Capabilities",
    fields: &[r(1, "add", Str), r(2, "drop", Str)],
};

pub static SECCOMP_PROFILE: Message = Message {
    name: "SeccompProfile",
    fields: &[f(1, "type", Str), p(2, "localhostProfile", Str)],
};

pub static POD_SECURITY_CONTEXT: Message = Message {
    name: "PodSecurityContext",
    fields: &[
        p(2, "runAsUser", Int),
        p(3, "runAsNonRoot", Bool),
        r(4, "supplementalGroups", Int),
        p(5, "fsGroup", Int),
        p(6, "runAsGroup", Int),
        p(9, "fsGroupChangePolicy", Str),
        p(10, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        p(11, "appArmorProfile", Msg(&SECCOMP_PROFILE)),
    ],
};

pub static VOLUME: Message = Message {
    name: "Volume",
    fields: &[
        f(1, "name", Str),
        f(2, "volumeSource", Inline(&VOLUME_SOURCE)),
    ],
};

pub static VOLUME_SOURCE: Message = Message {
    name: "VolumeSource",
    fields: &[
        p(1, "hostPath", Msg(&HOST_PATH)),
        p(2, "emptyDir", Msg(&EMPTY_DIR)),
    ],
};

pub static HOST_PATH: Message = Message {
    name: "HostPathVolumeSource",
    fields: &[f(1, "path", Str), p(2, "type", Str)],
};

pub static EMPTY_DIR: Message = Message {
    name: "EmptyDirVolumeSource",
    fields: &[f(1, "medium", Str), p(2, "sizeLimit", Quantity)],
};

pub static TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        f(1, "key", Str),
        f(2, "operator", Str),
        f(3, "value", Str),
        f(4, "effect", Str),
        p(5, "tolerationSeconds", Int),
    ],
};

pub static AFFINITY: Message = Message {
    name: "Affinity",
    fields: &[p(1, "nodeAffinity", Msg(&NODE_AFFINITY))],
};

pub static NODE_AFFINITY: Message = Message {
    name: "NodeAffinity",
    fields: &[p(
        1,
        "requiredDuringSchedulingIgnoredDuringExecution",
        Msg(&NODE_SELECTOR),
    )],
};

pub static NODE_SELECTOR: Message = Message {
    name: "NodeSelector",
    fields: &[r(1, "nodeSelectorTerms", Msg(&NODE_SELECTOR_TERM))],
};

pub static NODE_SELECTOR_TERM: Message = Message {
    name: "NodeSelectorTerm",
    fields: &[r(1, "matchExpressions", Msg(&NODE_SELECTOR_REQUIREMENT))],
};

pub static NODE_SELECTOR_REQUIREMENT: Message = Message {
    name: "NodeSelectorRequirement",
    fields: &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)],
};

// batch/v1 (kubernetes/api batch/v1/generated.proto).

pub static JOB: Message = Message {
    name: "Job",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&JOB_SPEC)),
        f(3, "status", Skip),
    ],
};

pub static JOB_SPEC: Message = Message {
    name: "JobSpec",
    fields: &[
        p(1, "parallelism", Int),
        p(2, "completions", Int),
        p(3, "activeDeadlineSeconds", Int),
        f(6, "template", Msg(&POD_TEMPLATE_SPEC)),
        p(7, "backoffLimit", Int),
        p(8, "ttlSecondsAfterFinished", Int),
        p(9, "completionMode", Str),
        p(10, "suspend", Bool),
        p(11, "podFailurePolicy", Msg(&POD_FAILURE_POLICY)),
        p(12, "backoffLimitPerIndex", Int),
        p(13, "maxFailedIndexes", Int),
        p(16, "successPolicy", Msg(&SUCCESS_POLICY)),
        p(14, "podReplacementPolicy", Str),
        // Refused by name.
        p(4, "selector", Refuse),
        p(5, "manualSelector", Refuse),
        p(15, "managedBy", Refuse),
    ],
};

pub static POD_FAILURE_POLICY: Message = Message {
    name: "PodFailurePolicy",
    fields: &[r(1, "rules", Msg(&POD_FAILURE_POLICY_RULE))],
};

pub static POD_FAILURE_POLICY_RULE: Message = Message {
    name: "PodFailurePolicyRule",
    fields: &[
        f(1, "action", Str),
        p(2, "onExitCodes", Msg(&ON_EXIT_CODES)),
        r(3, "onPodConditions", Msg(&ON_POD_CONDITIONS)),
    ],
};

pub static ON_EXIT_CODES: Message = Message {
    name: "PodFailurePolicyOnExitCodesRequirement",
    fields: &[
        p(1, "containerName", Str),
        f(2, "operator", Str),
        r(3, "values", Int),
    ],
};

pub static ON_POD_CONDITIONS: Message = Message {
    name: "PodFailurePolicyOnPodConditionsPattern",
    fields: &[f(1, "type", Str), f(2, "status", Str)],
};

pub static SUCCESS_POLICY: Message = Message {
    name: "SuccessPolicy",
    fields: &[r(1, "rules", Msg(&SUCCESS_POLICY_RULE))],
};

pub static SUCCESS_POLICY_RULE: Message = Message {
    name: "SuccessPolicyRule",
    fields: &[p(1, "succeededIndexes", Str), p(2, "succeededCount", Int)],
};

pub static CRON_JOB: Message = Message {
    name: "CronJob",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&CRON_JOB_SPEC)),
        f(3, "status", Skip),
    ],
};

pub static CRON_JOB_SPEC: Message = Message {
    name: "CronJobSpec",
    fields: &[
        f(1, "schedule", Str),
        p(2, "startingDeadlineSeconds", Int),
        f(3, "concurrencyPolicy", Str),
        p(4, "suspend", Bool),
        f(5, "jobTemplate", Msg(&JOB_TEMPLATE_SPEC)),
        p(6, "successfulJobsHistoryLimit", Int),
        p(7, "failedJobsHistoryLimit", Int),
        p(8, "timeZone", Str),
    ],
};

pub static JOB_TEMPLATE_SPEC: Message = Message {
    name: "JobTemplateSpec",
    fields: &[
        f(1, "metadata", Msg(&TEMPLATE_META)),
        f(2, "spec", Msg(&JOB_SPEC)),
    ],
};

// policy/v1, authorization.k8s.io/v1, authentication.k8s.io/v1.

pub static EVICTION: Message = Message {
    name: "Eviction",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        p(2, "deleteOptions", Msg(&DELETE_OPTIONS)),
    ],
};

pub static SELF_SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SelfSubjectAccessReview",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
        f(3, "status", Skip),
    ],
};

pub static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        p(1, "resourceAttributes", Msg(&RESOURCE_ATTRIBUTES)),
        p(2, "nonResourceAttributes", Msg(&NON_RESOURCE_ATTRIBUTES)),
    ],
};

pub static RESOURCE_ATTRIBUTES: Message = Message {
    name: "ResourceAttributes",
    fields: &[
        f(1, "namespace", Str),
        f(2, "verb", Str),
        f(3, "group", Str),
        f(4, "version", Str),
        f(5, "resource", Str),
        f(6, "subresource", Str),
        f(7, "name", Str),
    ],
};

pub static NON_RESOURCE_ATTRIBUTES: Message = Message {
    name: "NonResourceAttributes",
    fields: &[f(1, "path", Str), f(2, "verb", Str)],
};

pub static SELF_SUBJECT_REVIEW: Message = Message {
    name: "SelfSubjectReview",
    fields: &[f(1, "metadata", Msg(&OBJECT_META)), f(2, "status", Skip)],
};

/// The message a body of `apiVersion` and `kind` holds, if Drover reads it.
pub fn root(api_version: &str, kind: &str) -> Option<&'static Message> {
    Some(match (api_version, kind) {
        // Every group version serves DeleteOptions (`v1`, `batch/v1`, `meta.k8s.io/v1`).
        (_, "DeleteOptions") => &DELETE_OPTIONS,
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "Pod") => &POD,
        ("batch/v1", "Job") => &JOB,
        ("batch/v1", "CronJob") => &CRON_JOB,
        ("policy/v1", "Eviction") => &EVICTION,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => &SELF_SUBJECT_ACCESS_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => &SELF_SUBJECT_REVIEW,
        _ => return None,
    })
}
