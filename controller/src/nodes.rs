//! Node objects: what a registration writes, and how readiness shows in status and taints.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use drover_proto::manifest::Kind;
use drover_proto::msg::NodeInfo;
use serde_json::{json, Value};

use crate::object::timestamp;
use crate::reconcile::node_lifecycle::{Readiness, TAINT_NOT_READY, TAINT_UNREACHABLE};
use crate::reconcile::scheduler::{container_runtime_label, LABEL_CONTAINER_RUNTIME};
use crate::store::StoredObject;

/// Labels the controller sets on every node from what its agent reports. The runtime label
/// is left out while the agent is still looking for its engine, so the node keeps the one
/// it had.
pub fn well_known_labels(info: &NodeInfo) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), info.name.clone()),
        ("kubernetes.io/arch".to_string(), info.architecture.clone()),
        (
            "kubernetes.io/os".to_string(),
            info.operating_system.clone(),
        ),
    ]);
    if let Some(runtime) =
        container_runtime_label(&info.container_runtime, &info.container_runtime_problem)
    {
        labels.insert(LABEL_CONTAINER_RUNTIME.to_string(), runtime);
    }
    labels
}

/// Label prefixes a device may not set on its own node: they say what Kubernetes, the
/// operator or Drover decide about a node (its name, its role, its runtime), and pods and
/// DaemonSets are placed by them.
const RESERVED_LABEL_PREFIXES: [&str; 4] = [
    "kubernetes.io/",
    "k8s.io/",
    "node-role.kubernetes.io/",
    "drover.io/",
];

/// Whether a device may set this label on its node itself: valid, and outside the reserved
/// prefixes (also `*.kubernetes.io/`, as Kubernetes' NodeRestriction does).
pub fn device_may_set_label(key: &str, value: &str) -> bool {
    let reserved = RESERVED_LABEL_PREFIXES.iter().any(|p| key.starts_with(p))
        || key.split_once('/').is_some_and(|(prefix, _)| {
            prefix.ends_with(".kubernetes.io") || prefix.ends_with(".k8s.io")
        });
    !reserved
        && drover_proto::manifest::validate_label_key(key).is_ok()
        && drover_proto::manifest::validate_label_value(value).is_ok()
}

/// The node object after a registration. `trusted` agents (the server's own) may set any
/// label; a device only those [`device_may_set_label`] allows, and the well-known labels the
/// controller derives from its report always win.
pub fn registered(
    existing: Option<&StoredObject>,
    info: &NodeInfo,
    trusted: bool,
    now: DateTime<Utc>,
) -> StoredObject {
    let mut node = existing
        .cloned()
        .unwrap_or_else(|| StoredObject::new(Kind::Node, "", &info.name, &info.uid, now));
    node.uid = info.uid.clone();
    node.labels.extend(
        info.labels
            .iter()
            .filter(|(k, v)| trusted || device_may_set_label(k, v))
            .cloned(),
    );
    node.labels.extend(well_known_labels(info));
    match &info.model {
        Some(model) => {
            node.annotations
                .insert("drover.io/model".into(), model.clone());
        }
        None => {
            node.annotations.remove("drover.io/model");
        }
    }
    let mut addresses = Vec::new();
    if let Some(ip) = info.addresses.first() {
        addresses.push(json!({"type": "InternalIP", "address": ip}));
    }
    addresses.push(json!({"type": "Hostname", "address": info.name}));
    let capacity = json!({
        "cpu": info.cpus.to_string(),
        "memory": format!("{}Ki", info.memory_bytes / 1024),
    });
    let conditions = node.status.get("conditions").cloned().unwrap_or(json!([]));
    node.status = json!({
        "conditions": conditions,
        "addresses": addresses,
        "capacity": capacity,
        "allocatable": capacity,
        "nodeInfo": {
            "architecture": info.architecture,
            "operatingSystem": info.operating_system,
            "kernelVersion": info.kernel_version,
            "osImage": info.os_image,
            "bootID": info.boot_id,
            "machineID": info.uid,
            "kubeletVersion": format!("v{}", info.agent_version),
            "containerRuntimeVersion": info.container_runtime,
        },
    });
    apply_disk_pressure(&mut node, info.disk_pressure, now);
    node
}

/// Kubernetes' taint on a node whose disk is nearly full: no new pod goes there.
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";

/// Writes the node's `DiskPressure` condition, and its `disk-pressure` NoSchedule taint
/// while the agent reports its disk nearly full.
fn apply_disk_pressure(node: &mut StoredObject, pressure: bool, now: DateTime<Utc>) {
    let (status, reason, message) = if pressure {
        (
            "True",
            "KubeletHasDiskPressure",
            "drover agent has disk pressure: its data directory is nearly full",
        )
    } else {
        (
            "False",
            "KubeletHasNoDiskPressure",
            "drover agent has sufficient disk space available",
        )
    };
    let transition = conditions(node)
        .iter()
        .find(|c| c["type"] == "DiskPressure" && c["status"] == status)
        .map_or_else(
            || json!(timestamp(now)),
            |c| c["lastTransitionTime"].clone(),
        );
    upsert_condition(
        node,
        json!({
            "type": "DiskPressure",
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": transition,
        }),
    );
    let mut taints = taints(node);
    taints.retain(|t| t["key"] != TAINT_DISK_PRESSURE);
    if pressure {
        taints.push(json!({"key": TAINT_DISK_PRESSURE, "effect": "NoSchedule", "timeAdded": timestamp(now)}));
    }
    set_taints(node, taints);
}

fn conditions(node: &StoredObject) -> Vec<Value> {
    node.status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Replaces the condition of the same type, or adds it; the Ready condition comes first.
fn upsert_condition(node: &mut StoredObject, condition: Value) {
    let mut all = conditions(node);
    all.retain(|c| c["type"] != condition["type"]);
    all.push(condition);
    all.sort_by_key(|c| c["type"] != "Ready");
    if let Some(obj) = node.status.as_object_mut() {
        obj.insert("conditions".into(), Value::Array(all));
    } else {
        node.status = json!({"conditions": all});
    }
}

fn taints(node: &StoredObject) -> Vec<Value> {
    node.spec
        .get("taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn set_taints(node: &mut StoredObject, taints: Vec<Value>) {
    if let Some(spec) = node.spec.as_object_mut() {
        if taints.is_empty() {
            spec.remove("taints");
        } else {
            spec.insert("taints".into(), Value::Array(taints));
        }
    } else if !taints.is_empty() {
        node.spec = json!({"taints": taints});
    }
}

/// The readiness currently recorded on a node object.
pub fn recorded_ready_status(node: &StoredObject) -> Option<String> {
    node.status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .map(str::to_string)
}

/// Writes `readiness` into the node's Ready condition and lifecycle taints. Returns whether
/// anything changed.
pub fn apply_readiness(node: &mut StoredObject, readiness: Readiness, now: DateTime<Utc>) -> bool {
    let (status, reason, message) = readiness.condition();
    let previous = node
        .status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned());
    let unchanged = previous
        .as_ref()
        .is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message);
    let transition = match &previous {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(timestamp(now)),
    };
    let condition = json!({
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    });
    upsert_condition(node, condition);

    let wanted = readiness.taint_key();
    let mut taints: Vec<Value> = taints(node);
    let before = taints.len();
    taints.retain(|t| {
        let key = t["key"].as_str().unwrap_or("");
        !((key == TAINT_UNREACHABLE || key == TAINT_NOT_READY) && Some(key) != wanted)
    });
    let mut taints_changed = taints.len() != before;
    if let Some(key) = wanted {
        if !taints.iter().any(|t| t["key"] == key) {
            taints.push(json!({"key": key, "effect": "NoExecute", "timeAdded": timestamp(now)}));
            taints_changed = true;
        }
    }
    set_taints(node, taints);
    !unchanged || taints_changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::node_lifecycle::UnknownCause;

    fn info() -> NodeInfo {
        NodeInfo {
            name: "pi-1".into(),
            uid: "uid-1".into(),
            labels: vec![("zone".into(), "north".into())],
            architecture: "arm64".into(),
            operating_system: "linux".into(),
            kernel_version: "6.1".into(),
            os_image: "Debian".into(),
            model: Some("Raspberry Pi 4".into()),
            cpus: 4,
            memory_bytes: 4096 * 1024,
            agent_version: "0.1.0".into(),
            boot_id: "b".into(),
            addresses: vec!["10.0.0.7".into()],
            heartbeat_interval_ms: 10_000,
            container_runtime: "docker://28.2.2".into(),
            container_runtime_problem: String::new(),
            disk_pressure: false,
            agent_instance: 1,
        }
    }

    #[test]
    fn registration_sets_labels_info_and_keeps_operator_changes() {
        let now = Utc::now();
        let mut node = registered(None, &info(), false, now);
        assert_eq!(node.labels["kubernetes.io/arch"], "arm64");
        assert_eq!(node.labels["zone"], "north");
        assert_eq!(node.status["nodeInfo"]["kubeletVersion"], "v0.1.0");
        assert_eq!(node.status["addresses"][0]["address"], "10.0.0.7");
        assert_eq!(node.annotations["drover.io/model"], "Raspberry Pi 4");
        node.labels.insert("team".into(), "ops".into());
        node.spec = json!({"unschedulable": true});
        let again = registered(Some(&node), &info(), false, now);
        assert_eq!(again.labels["team"], "ops");
        assert_eq!(again.spec["unschedulable"], true);
    }

    #[test]
    fn a_device_cannot_set_reserved_or_well_known_labels_on_its_node() {
        let mut hostile = info();
        hostile.labels = vec![
            ("kubernetes.io/hostname".into(), "victim".into()),
            (
                "node-role.kubernetes.io/control-plane".into(),
                "true".into(),
            ),
            ("topology.kubernetes.io/zone".into(), "x".into()),
            ("drover.io/container-runtime".into(), "podman".into()),
            ("bad key".into(), "x".into()),
            ("gpu".into(), "true".into()),
        ];
        let node = registered(None, &hostile, false, Utc::now());
        assert_eq!(node.labels["kubernetes.io/hostname"], "pi-1");
        assert!(!node
            .labels
            .contains_key("node-role.kubernetes.io/control-plane"));
        assert!(!node.labels.contains_key("topology.kubernetes.io/zone"));
        assert_eq!(
            node.labels["drover.io/container-runtime"], "docker",
            "what the agent's engine report says"
        );
        assert!(!node.labels.contains_key("bad key"));
        assert_eq!(node.labels["gpu"], "true");
        let local = registered(None, &hostile, true, Utc::now());
        assert_eq!(
            local.labels["node-role.kubernetes.io/control-plane"],
            "true"
        );
        assert_eq!(local.labels["kubernetes.io/hostname"], "pi-1");
    }

    #[test]
    fn the_runtime_label_follows_the_engine_and_survives_the_search_for_it() {
        let now = Utc::now();
        let node = registered(None, &info(), false, now);
        assert_eq!(node.labels[LABEL_CONTAINER_RUNTIME], "docker");
        let mut restarting = info();
        restarting.container_runtime = String::new();
        let node = registered(Some(&node), &restarting, false, now);
        assert_eq!(
            node.labels[LABEL_CONTAINER_RUNTIME], "docker",
            "kept while the agent looks for its engine"
        );
        let mut missing = restarting.clone();
        missing.container_runtime_problem = "no container engine socket".into();
        let node = registered(Some(&node), &missing, false, now);
        assert_eq!(node.labels[LABEL_CONTAINER_RUNTIME], "none");
        let fresh = registered(None, &restarting, false, now);
        assert!(!fresh.labels.contains_key(LABEL_CONTAINER_RUNTIME));
    }

    #[test]
    fn disk_pressure_is_a_condition_and_a_no_schedule_taint_beside_readiness() {
        let now = Utc::now();
        let mut full = info();
        full.disk_pressure = true;
        let mut node = registered(None, &full, false, now);
        assert!(apply_readiness(&mut node, Readiness::Ready, now));
        let condition = |node: &StoredObject, kind: &str| {
            node.status["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == kind).cloned())
        };
        assert_eq!(
            condition(&node, "DiskPressure").map(|c| c["status"].clone()),
            Some(json!("True"))
        );
        assert_eq!(node.status["conditions"][0]["type"], "Ready", "Ready first");
        assert_eq!(
            node.spec["taints"],
            json!([{"key": TAINT_DISK_PRESSURE, "effect": "NoSchedule", "timeAdded": timestamp(now)}])
        );
        let node = registered(Some(&node), &info(), false, now);
        assert_eq!(
            condition(&node, "DiskPressure").map(|c| c["status"].clone()),
            Some(json!("False"))
        );
        assert_eq!(
            recorded_ready_status(&node).as_deref(),
            Some("True"),
            "kept"
        );
        assert!(node.spec.get("taints").is_none(), "{}", node.spec);
    }

    #[test]
    fn readiness_drives_condition_and_taints() {
        let now = Utc::now();
        let mut node = registered(None, &info(), false, now);
        assert!(apply_readiness(&mut node, Readiness::Ready, now));
        assert!(!apply_readiness(&mut node, Readiness::Ready, now));
        assert_eq!(recorded_ready_status(&node).as_deref(), Some("True"));
        assert!(node.spec.get("taints").is_none());

        assert!(apply_readiness(
            &mut node,
            Readiness::Unknown(UnknownCause::SilentPastGrace),
            now
        ));
        assert_eq!(node.spec["taints"][0]["key"], TAINT_UNREACHABLE);
        assert_eq!(node.spec["taints"][0]["effect"], "NoExecute");

        assert!(apply_readiness(&mut node, Readiness::NotReady, now));
        let taints = node.spec["taints"].as_array().unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0]["key"], TAINT_NOT_READY);

        assert!(apply_readiness(&mut node, Readiness::Ready, now));
        assert!(node.spec.get("taints").is_none());
    }

    #[test]
    fn operator_taints_survive_readiness_changes() {
        let now = Utc::now();
        let mut node = registered(None, &info(), false, now);
        node.spec =
            json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]});
        apply_readiness(&mut node, Readiness::NotReady, now);
        apply_readiness(&mut node, Readiness::Ready, now);
        assert_eq!(node.spec["taints"].as_array().unwrap().len(), 1);
        assert_eq!(node.spec["taints"][0]["key"], "dedicated");
    }
}
