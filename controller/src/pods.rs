//! Pods between the store's Kubernetes shape and the wire: what an agent is asked to run,
//! and how its reports read as `status`.

use chrono::{DateTime, Utc};
use drover_proto::manifest::env::{container_env, PodFacts};
use drover_proto::manifest::lifecycle::wire_hook;
use drover_proto::manifest::probe::wire_probe;
use drover_proto::manifest::security::wire_security;
use drover_proto::manifest::{
    runs_in_engine, Container, ContainerRestartPolicy, Kind, PodSpec, PullPolicy, RestartPolicy,
};
use drover_proto::msg::{
    DesiredContainer, DesiredInitContainer, DesiredPod, DesiredVolume, VolumeSource,
    WireContainerState, WireContainerStatus, WireMount, WirePodStatus, WirePort, WirePullPolicy,
    WireRestartPolicy,
};
use drover_proto::phase::PodPhase;
use drover_proto::quantity::{parse_bytes, parse_cpu_millis};
use serde_json::{json, Value};

use crate::object::timestamp;
use crate::store::StoredObject;

/// Default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: u32 = 30;

/// The typed spec of a stored pod.
pub fn pod_spec(pod: &StoredObject) -> Result<PodSpec, String> {
    serde_json::from_value(pod.spec.clone())
        .map_err(|e| format!("stored pod spec is unreadable: {e}"))
}

/// The node a pod is bound to.
pub fn node_name(pod: &StoredObject) -> Option<&str> {
    pod.spec
        .get("nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// The node's address (its `InternalIP`), as `status.hostIP` shows it.
pub fn node_address(node: &StoredObject) -> Option<&str> {
    node.status["addresses"]
        .as_array()?
        .iter()
        .find(|a| a["type"] == "InternalIP")?["address"]
        .as_str()
}

/// What the downward API gives a pod on `node`: its own fields, and the node's address and
/// capacity. A pod's address is its node's: process pods share the host's network, and
/// container pods have no network of their own yet.
fn pod_facts<'a>(pod: &'a StoredObject, node: Option<&'a StoredObject>) -> PodFacts<'a> {
    let host_ip = node.and_then(node_address);
    let capacity = |resource: &str| {
        node.and_then(|n| n.status["capacity"][resource].as_str())
            .map(str::to_string)
    };
    // A pod its node has reported runs with the values it started with (the agent keeps a
    // pod's spec): one the node no longer gives an address for must not be left out, and
    // stopped, for want of one.
    let started = pod.agent_revision > 0;
    let host_ip = host_ip.or(started.then_some(""));
    let known = |value: Option<u64>| value.or(started.then_some(0));
    PodFacts {
        name: &pod.name,
        namespace: &pod.namespace,
        uid: &pod.uid,
        labels: Some(&pod.labels),
        annotations: Some(&pod.annotations),
        host_ip,
        pod_ip: host_ip,
        node_cpu_millis: known(capacity("cpu").and_then(|c| parse_cpu_millis(&c))),
        node_memory_bytes: known(capacity("memory").and_then(|m| parse_bytes(&m))),
    }
}

/// What the agent runs for a stored pod on `node` (the node object, for the downward API).
pub fn desired_pod(pod: &StoredObject, node: Option<&StoredObject>) -> Result<DesiredPod, String> {
    let spec = pod_spec(pod)?;
    let pod_security = spec.security_context.clone().unwrap_or_default();
    let host_processes = !runs_in_engine(&spec);
    let facts = pod_facts(pod, node);
    let wire_container = |c: &Container| {
        let security = c.security_context.clone().unwrap_or_default();
        let limits = c.resources.as_ref().map(|r| &r.limits);
        let lifecycle = c.lifecycle.as_ref();
        // The agent expands `$(VAR)` in the command and arguments from it.
        let env = container_env(&spec, c, &facts)
            .map_err(|e| format!("container {}: env: {e}", c.name))?;
        Ok(DesiredContainer {
            name: c.name.clone(),
            // `runtimeClassName: process` runs even image containers as host processes.
            image: if host_processes {
                None
            } else {
                c.image.clone()
            },
            command: c.command.clone(),
            args: c.args.clone(),
            env,
            working_dir: c.working_dir.clone(),
            run_as_user: security.run_as_user.or(pod_security.run_as_user),
            run_as_group: security.run_as_group.or(pod_security.run_as_group),
            memory_limit_bytes: limits
                .and_then(|l| l.get("memory"))
                .and_then(|q| parse_bytes(&q.0)),
            cpu_limit_millis: limits
                .and_then(|l| l.get("cpu"))
                .and_then(|q| parse_cpu_millis(&q.0)),
            pull_policy: match c.image.as_deref().map(|image| {
                c.image_pull_policy
                    .unwrap_or_else(|| PullPolicy::default_for(image))
            }) {
                Some(PullPolicy::Always) => WirePullPolicy::Always,
                Some(PullPolicy::Never) => WirePullPolicy::Never,
                Some(PullPolicy::IfNotPresent) | None => WirePullPolicy::IfNotPresent,
            },
            privileged: security.privileged.unwrap_or(false),
            ports: c
                .ports
                .iter()
                .map(|p| WirePort {
                    container_port: p.container_port,
                    host_port: p.host_port,
                    udp: p.protocol.as_deref() == Some("UDP"),
                })
                .collect(),
            mounts: c
                .volume_mounts
                .iter()
                .map(|m| WireMount {
                    volume: m.name.clone(),
                    path: m.mount_path.clone(),
                    read_only: m.read_only.unwrap_or(false),
                })
                .collect(),
            startup_probe: c.startup_probe.as_ref().and_then(|p| wire_probe(p, c)),
            liveness_probe: c.liveness_probe.as_ref().and_then(|p| wire_probe(p, c)),
            readiness_probe: c.readiness_probe.as_ref().and_then(|p| wire_probe(p, c)),
            security: wire_security(&spec, c),
            post_start: lifecycle
                .and_then(|l| l.post_start.as_ref())
                .and_then(|h| wire_hook(h, c)),
            pre_stop: lifecycle
                .and_then(|l| l.pre_stop.as_ref())
                .and_then(|h| wire_hook(h, c)),
        })
    };
    let containers = spec
        .containers
        .iter()
        .map(wire_container)
        .collect::<Result<Vec<_>, String>>()?;
    let init_containers = spec
        .init_containers
        .iter()
        .map(|c| {
            Ok(DesiredInitContainer {
                container: wire_container(c)?,
                sidecar: c.restart_policy == Some(ContainerRestartPolicy::Always),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(DesiredPod {
        uid: pod.uid.clone(),
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        restart_policy: match spec.restart_policy.unwrap_or_default() {
            RestartPolicy::Always => WireRestartPolicy::Always,
            RestartPolicy::OnFailure => WireRestartPolicy::OnFailure,
            RestartPolicy::Never => WireRestartPolicy::Never,
        },
        termination_grace_seconds: spec
            .termination_grace_period_seconds
            .map_or(DEFAULT_GRACE_SECONDS, |g| {
                g.clamp(0, i64::from(u32::MAX)) as u32
            }),
        containers,
        init_containers,
        fs_group: spec.security_context.as_ref().and_then(|s| s.fs_group),
        host_network: spec.host_network.unwrap_or(false),
        hostname: spec.hostname.clone(),
        volumes: spec
            .volumes
            .iter()
            .map(|v| DesiredVolume {
                name: v.name.clone(),
                source: match &v.host_path {
                    Some(host) => VolumeSource::HostPath {
                        path: host.path.clone(),
                        kind: host.kind.clone().unwrap_or_default(),
                    },
                    None => match v.empty_dir.as_ref() {
                        Some(dir) if dir.medium.as_deref() == Some("Memory") => {
                            VolumeSource::MemoryDir
                        }
                        _ => VolumeSource::EmptyDir,
                    },
                },
            })
            .collect(),
    })
}

fn time_ms(ms: i64) -> Value {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or(Value::Null, |t| json!(timestamp(t)))
}

fn state_json(state: &WireContainerState) -> Value {
    match state {
        WireContainerState::Waiting { reason, message } => {
            let mut waiting = json!({"reason": reason});
            if !message.is_empty() {
                waiting["message"] = json!(message);
            }
            json!({"waiting": waiting})
        }
        WireContainerState::Running { started_at_ms } => {
            json!({"running": {"startedAt": time_ms(*started_at_ms)}})
        }
        WireContainerState::Terminated {
            exit_code,
            signal,
            reason,
            message,
            started_at_ms,
            finished_at_ms,
        } => {
            let mut terminated = json!({
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": time_ms(*started_at_ms),
                "finishedAt": time_ms(*finished_at_ms),
            });
            if *signal != 0 {
                terminated["signal"] = json!(signal);
            }
            if !message.is_empty() {
                terminated["message"] = json!(message);
            }
            json!({"terminated": terminated})
        }
    }
}

fn condition(kind: &str, ok: bool) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }})
}

/// The pod's `status` from an agent report. `spec` (the pod's) gives each container's
/// image: Kubernetes clients require `image` and `imageID` in every container status, so a
/// process container (no image) shows both empty.
pub fn status_from_report(report: &WirePodStatus, spec: &Value, host_ip: Option<&str>) -> Value {
    let spec_of = |name: &str| {
        ["initContainers", "containers"]
            .into_iter()
            .filter_map(|field| spec[field].as_array())
            .flatten()
            .find(|c| c["name"] == name)
    };
    let is_sidecar = |name: &str| spec_of(name).is_some_and(|c| c["restartPolicy"] == "Always");
    let container_status = |c: &WireContainerStatus| {
        let spec = spec_of(&c.name);
        let has_startup_probe = spec.is_some_and(|s| s.get("startupProbe").is_some());
        let mut status = json!({
            "name": c.name,
            "image": spec.and_then(|s| s["image"].as_str()).unwrap_or_default(),
            "imageID": "",
            "ready": c.ready,
            "restartCount": c.restart_count,
            // The agent reports readiness, not the startup probe's own result: a
            // container with a startup probe shows as started once it is ready.
            "started": matches!(c.state, WireContainerState::Running { .. })
                && (c.ready || !has_startup_probe),
            "state": state_json(&c.state),
        });
        if let Some(last) = &c.last_state {
            status["lastState"] = state_json(last);
        }
        status
    };
    let sidecars = || {
        report
            .init_containers
            .iter()
            .filter(|c| is_sidecar(&c.name))
    };
    // Sidecars count for readiness beside the app containers, as in Kubernetes.
    let all_ready = !report.containers.is_empty()
        && report.containers.iter().chain(sidecars()).all(|c| c.ready);
    // Every init container has done its part: run to success, or (a sidecar) started at
    // some time, since when it may have been restarted or, its pod done, stopped.
    let initialized = report.init_containers.iter().all(|c| {
        if is_sidecar(&c.name) {
            !matches!(c.state, WireContainerState::Waiting { .. }) || c.last_state.is_some()
        } else {
            matches!(c.state, WireContainerState::Terminated { exit_code: 0, .. })
        }
    });
    let phase = PodPhase::from(report.phase).as_str();
    let containers: Vec<Value> = report.containers.iter().map(container_status).collect();
    let mut status = json!({
        "phase": phase,
        "conditions": [
            condition("PodScheduled", true),
            condition("Initialized", initialized),
            condition("ContainersReady", all_ready),
            condition("Ready", all_ready),
        ],
        "startTime": time_ms(report.start_time_ms),
        "containerStatuses": containers,
    });
    if !report.init_containers.is_empty() {
        status["initContainerStatuses"] = report
            .init_containers
            .iter()
            .map(container_status)
            .collect();
    }
    if let Some(ip) = host_ip {
        // Process pods share the node's network.
        status["hostIP"] = json!(ip);
        status["podIP"] = json!(ip);
    }
    if !report.reason.is_empty() {
        status["reason"] = json!(report.reason);
    }
    if !report.message.is_empty() {
        status["message"] = json!(report.message);
    }
    status
}

/// Gives each condition of `status` its `lastTransitionTime`: kept from `previous` where
/// the condition's status did not change, `now` where it did.
pub fn stamp_transitions(status: &mut Value, previous: &Value, now: DateTime<Utc>) {
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let before = previous["conditions"].as_array();
    for condition in conditions {
        if condition.get("lastTransitionTime").is_some() {
            continue;
        }
        let unchanged = before
            .into_iter()
            .flatten()
            .find(|c| c["type"] == condition["type"] && c["status"] == condition["status"]);
        let kept = match unchanged {
            Some(c) => c.get("lastTransitionTime").cloned().or_else(|| {
                // Stored before transitions were timed: the latest container start is the
                // best guess, not now (a pod ready for days would look ready since now).
                latest_start(previous).map(|t| json!(timestamp(t)))
            }),
            None => None,
        };
        condition["lastTransitionTime"] = kept.unwrap_or_else(|| json!(timestamp(now)));
    }
}

fn latest_start(status: &Value) -> Option<DateTime<Utc>> {
    status["containerStatuses"]
        .as_array()?
        .iter()
        .filter_map(|c| crate::object::timestamp_of(&c["state"]["running"]["startedAt"]))
        .max()
}

/// Status of a pod placed on a node but not yet reported by its agent.
pub fn scheduled_status() -> Value {
    json!({
        "phase": PodPhase::Pending.as_str(),
        "conditions": [condition("PodScheduled", true)],
    })
}

/// The status a newly created object of `kind` starts with: a pod created bound to a node
/// (`spec.nodeName`) is scheduled already; anything else starts empty.
pub fn initial_status(kind: Kind, spec: &Value) -> Value {
    if kind == Kind::Pod && spec.get("nodeName").is_some() {
        scheduled_status()
    } else {
        json!({})
    }
}

/// Status of a pod no node can take.
pub fn unschedulable_status(message: &str) -> Value {
    json!({
        "phase": PodPhase::Pending.as_str(),
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
        }],
    })
}

/// A stored pod's phase (`Pending` until one is recorded).
pub fn phase(pod: &StoredObject) -> PodPhase {
    PodPhase::of_recorded(pod.status.get("phase").and_then(Value::as_str))
}

/// Why a pending pod fits no node, as its status last said.
pub fn unschedulable_message(pod: &StoredObject) -> Option<String> {
    pod.status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")?["message"]
        .as_str()
        .map(str::to_string)
}

/// Whether a pod's stored phase is terminal.
pub fn is_terminal(pod: &StoredObject) -> bool {
    phase(pod).is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::manifest::Kind;
    use std::collections::BTreeMap;

    fn stored(spec: Value) -> StoredObject {
        StoredObject {
            kind: Kind::Pod,
            namespace: "default".into(),
            name: "p".into(),
            uid: "u".into(),
            resource_version: 1,
            generation: 1,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owner_references: json!([]),
            managed_fields: serde_json::Value::Null,
            spec,
            status: json!({}),
            created_at: Utc::now(),
            deletion_timestamp: None,
            agent_revision: 0,
        }
    }

    #[test]
    fn the_downward_api_is_resolved_for_the_node_the_pod_goes_to() {
        let mut pod = stored(json!({
            "nodeName": "pi-3",
            "containers": [{
                "name": "c", "command": ["sh", "-c", "echo $(POD) $$(POD)"], "args": ["$(CPUS)"],
                "env": [
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                    {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                ],
            }]
        }));
        pod.labels.insert("app".into(), "web".into());
        let mut node = stored(json!({}));
        node.kind = Kind::Node;
        node.status = json!({
            "addresses": [{"type": "InternalIP", "address": "10.1.2.3"}, {"type": "Hostname", "address": "pi-3"}],
            "capacity": {"cpu": "4", "memory": "1048576Ki"},
        });
        let c = &desired_pod(&pod, Some(&node)).unwrap().containers[0];
        let value = |name: &str| {
            c.env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("POD"), Some("p"));
        assert_eq!(value("APP"), Some("web"));
        assert_eq!(value("HOST"), Some("10.1.2.3"));
        assert_eq!(value("CPUS"), Some("4"));
        assert_eq!(value("MEM"), Some("1024"));
        // The agent expands these, once.
        assert_eq!(c.command, ["sh", "-c", "echo $(POD) $$(POD)"]);
        // Without its node's object (not registered yet) it waits: the agent would keep
        // the values it started with.
        let waiting = desired_pod(&pod, None).unwrap_err();
        assert!(waiting.contains("not known yet"), "{waiting}");
        // One its node has reported is sent on whatever the node says of itself now (a
        // restart with no address yet): leaving it out would stop it.
        pod.agent_revision = 3;
        let c = &desired_pod(&pod, None).unwrap().containers[0];
        assert_eq!(c.name, "c");
    }

    #[test]
    fn desired_pod_applies_kubernetes_defaults() {
        let pod = stored(json!({
            "securityContext": {"runAsUser": 1000},
            "containers": [{
                "name": "c", "command": ["sleep"], "args": ["5"],
                "env": [{"name": "A", "value": "1"}],
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                "securityContext": {"runAsGroup": 100}
            }]
        }));
        let d = desired_pod(&pod, None).unwrap();
        assert_eq!(d.restart_policy, WireRestartPolicy::Always);
        assert_eq!(d.termination_grace_seconds, 30);
        let c = &d.containers[0];
        assert_eq!((c.run_as_user, c.run_as_group), (Some(1000), Some(100)));
        assert_eq!(c.memory_limit_bytes, Some(64 << 20));
        assert_eq!(c.cpu_limit_millis, Some(500));
        assert_eq!(c.env, vec![("A".to_string(), "1".to_string())]);
    }

    #[test]
    fn reports_read_as_kubernetes_status() {
        let report = WirePodStatus {
            uid: "u".into(),
            revision: 3,
            phase: drover_proto::msg::WirePhase::Failed,
            reason: String::new(),
            message: "limits not enforced".into(),
            start_time_ms: 1_800_000_000_000,
            containers: vec![WireContainerStatus {
                name: "c".into(),
                state: WireContainerState::Terminated {
                    exit_code: 137,
                    signal: 9,
                    reason: "Error".into(),
                    message: String::new(),
                    started_at_ms: 1_800_000_000_000,
                    finished_at_ms: 1_800_000_001_000,
                },
                last_state: None,
                restart_count: 0,
                ready: false,
            }],
            removed: false,
            init_containers: vec![],
        };
        let status = status_from_report(&report, &json!({}), Some("10.0.0.2"));
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["hostIP"], "10.0.0.2");
        assert_eq!(
            status["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            137
        );
        assert_eq!(
            status["containerStatuses"][0]["state"]["terminated"]["signal"],
            9
        );
        assert_eq!(status["conditions"][3]["type"], "Ready");
        assert_eq!(status["conditions"][3]["status"], "False");
        assert_eq!(status["message"], "limits not enforced");
    }

    #[test]
    fn init_containers_report_apart_and_decide_initialized() {
        let running = |name: &str, ready| WireContainerStatus {
            name: name.into(),
            state: WireContainerState::Running {
                started_at_ms: 1_800_000_000_000,
            },
            last_state: None,
            restart_count: 0,
            ready,
        };
        let completed = WireContainerStatus {
            name: "setup".into(),
            state: WireContainerState::Terminated {
                exit_code: 0,
                signal: 0,
                reason: "Completed".into(),
                message: String::new(),
                started_at_ms: 1_800_000_000_000,
                finished_at_ms: 1_800_000_001_000,
            },
            ..running("setup", false)
        };
        let spec = json!({
            "initContainers": [
                {"name": "setup", "image": "busybox:1"},
                {"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"},
            ],
            "containers": [{"name": "main", "image": "app:2"}],
        });
        let mut report = WirePodStatus {
            uid: "u".into(),
            revision: 1,
            phase: drover_proto::msg::WirePhase::Running,
            containers: vec![running("main", true)],
            init_containers: vec![completed, running("proxy", false)],
            reason: String::new(),
            message: String::new(),
            start_time_ms: 1_800_000_000_000,
            removed: false,
        };
        let condition = |status: &Value, kind: &str| {
            status["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == kind).cloned())
                .map(|c| c["status"].clone())
        };
        let status = status_from_report(&report, &spec, None);
        assert_eq!(status["initContainerStatuses"][1]["image"], "envoy:1");
        assert_eq!(
            status["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(status["containerStatuses"][0]["name"], "main");
        assert_eq!(condition(&status, "Initialized"), Some(json!("True")));
        assert_eq!(
            condition(&status, "Ready"),
            Some(json!("False")),
            "the sidecar is not ready"
        );
        report.init_containers[1].ready = true;
        let status = status_from_report(&report, &spec, None);
        assert_eq!(condition(&status, "Ready"), Some(json!("True")));
        // The app done and the sidecar stopped, the pod stays initialized.
        report.init_containers[1] = WireContainerStatus {
            name: "proxy".into(),
            ..report.init_containers[0].clone()
        };
        let status = status_from_report(&report, &spec, None);
        assert_eq!(condition(&status, "Initialized"), Some(json!("True")));
        report.init_containers[0] = running("setup", false);
        let status = status_from_report(&report, &spec, None);
        assert_eq!(condition(&status, "Initialized"), Some(json!("False")));
    }

    #[test]
    fn condition_times_are_kept_while_unchanged_and_move_on_a_flip() {
        let at = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let status = |ready: &str| {
            json!({
                "conditions": [{"type": "Ready", "status": ready}],
                "containerStatuses": [{"state": {"running": {"startedAt": "2027-01-15T08:00:00Z"}}}],
            })
        };
        let mut first = status("False");
        stamp_transitions(&mut first, &json!({}), at(0));
        assert_eq!(
            first["conditions"][0]["lastTransitionTime"],
            json!(timestamp(at(0)))
        );
        let mut same = status("False");
        stamp_transitions(&mut same, &first, at(10));
        assert_eq!(
            same["conditions"][0]["lastTransitionTime"],
            json!(timestamp(at(0)))
        );
        let mut flipped = status("True");
        stamp_transitions(&mut flipped, &same, at(20));
        assert_eq!(
            flipped["conditions"][0]["lastTransitionTime"],
            json!(timestamp(at(20)))
        );
        // Stored before times were kept: unchanged, it is the latest container start.
        let mut older = status("True");
        stamp_transitions(&mut older, &status("True"), at(30));
        assert_eq!(
            older["conditions"][0]["lastTransitionTime"],
            "2027-01-15T08:00:00Z"
        );
    }
}
