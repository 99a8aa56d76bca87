//! Node rows: STATUS from the `Ready` condition, ROLES from the role labels.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{age, name, or, text, Column, AGE, NAME};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", "Kubelet Version reported by the node."),
    Column::new(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
    )
    .wide(),
    Column::new(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
    )
    .wide(),
    Column::new(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    )
    .wide(),
    Column::new(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    )
    .wide(),
    Column::new(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    )
    .wide(),
];

const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

/// `Ready`, `NotReady` (Ready is False or Unknown), `Unknown` (no Ready condition yet), with
/// `,SchedulingDisabled` when cordoned.
pub fn status(node: &Value) -> String {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().rev().find(|c| c["type"] == "Ready"));
    let mut status = match ready {
        Some(c) if c["status"] == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// Roles from `node-role.kubernetes.io/<role>` and `kubernetes.io/role=<role>` labels.
pub fn roles(node: &Value) -> String {
    let mut roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| match k.strip_prefix(ROLE_PREFIX) {
                    Some(role) if !role.is_empty() => Some(role),
                    Some(_) => None,
                    None if k == ROLE_LABEL && !text(v).is_empty() => Some(text(v)),
                    None => None,
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn address(node: &Value, kind: &str) -> String {
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["type"] == kind))
        .map_or_else(|| "<none>".into(), |a| text(&a["address"]).to_string())
}

pub(super) fn row(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let info = &node["status"]["nodeInfo"];
    vec![
        json!(name(node)),
        json!(status(node)),
        json!(roles(node)),
        age(node, now),
        json!(text(&info["kubeletVersion"])),
        json!(address(node, "InternalIP")),
        json!(address(node, "ExternalIP")),
        json!(or(&info["osImage"], "<unknown>")),
        json!(or(&info["kernelVersion"], "<unknown>")),
        json!(or(&info["containerRuntimeVersion"], "<unknown>")),
    ]
}
