//! Pod placement: which nodes may run a pod, and which one gets it. Pure functions of the
//! pod's scheduling constraints and the nodes' labels, taints and readiness.

use std::collections::{BTreeMap, HashMap};

use super::action::{Action, ObjectKey};

use drover_proto::manifest::{
    runs_in_engine, NodeSelectorOperator, PodSpec, Taint, TaintEffect, Toleration,
    TolerationOperator,
};

/// The node label naming the node's container engine: `docker`, `podman`, or `none` when
/// its agent found none. The controller sets it from the agent's report; a device cannot.
pub const LABEL_CONTAINER_RUNTIME: &str = "drover.io/container-runtime";

/// The value of [`LABEL_CONTAINER_RUNTIME`] for what an agent reports: the engine's scheme
/// (`docker://28.2.2` → `docker`), `none` when the agent says why it has no engine, and
/// `None` while it is still looking (the node keeps the value it had, so an agent's restart
/// does not move its pods) and for a scheme that is no label value.
pub fn container_runtime_label(runtime: &str, problem: &str) -> Option<String> {
    if runtime.is_empty() {
        return (!problem.is_empty()).then(|| "none".to_string());
    }
    let scheme = runtime
        .split_once("://")
        .map_or(runtime, |(scheme, _)| scheme)
        .to_ascii_lowercase();
    (!scheme.is_empty() && drover_proto::manifest::validate_label_value(&scheme).is_ok())
        .then_some(scheme)
}

/// Whether a node can run `spec`'s containers: a pod whose containers run in the container
/// engine cannot go to a node labelled `drover.io/container-runtime=none`. A node whose
/// agent has not reported yet (no label) is given the benefit of the doubt: its agent waits
/// for the engine, as after any start.
fn runtime_fits(spec: &PodSpec, node: &NodeView) -> bool {
    !runs_in_engine(spec)
        || node.labels.get(LABEL_CONTAINER_RUNTIME).map(String::as_str) != Some("none")
}

/// What scheduling needs to know about a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Taints.
    pub taints: Vec<Taint>,
    /// `Ready=True`.
    pub ready: bool,
    /// Cordoned.
    pub unschedulable: bool,
}

/// Whether `toleration` tolerates `taint` (Kubernetes' matching rules).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect {
        if effect != taint.effect {
            return false;
        }
    }
    match toleration.operator.unwrap_or(TolerationOperator::Equal) {
        TolerationOperator::Exists => toleration
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || k == taint.key),
        TolerationOperator::Equal => {
            toleration.key.as_deref() == Some(taint.key.as_str())
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

fn requirement_holds(
    labels: &BTreeMap<String, String>,
    key: &str,
    operator: NodeSelectorOperator,
    values: &[String],
) -> bool {
    let value = labels.get(key);
    match operator {
        NodeSelectorOperator::In => value.is_some_and(|v| values.contains(v)),
        NodeSelectorOperator::NotIn => value.is_none_or(|v| !values.contains(v)),
        NodeSelectorOperator::Exists => value.is_some(),
        NodeSelectorOperator::DoesNotExist => value.is_none(),
        NodeSelectorOperator::Gt | NodeSelectorOperator::Lt => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if operator == NodeSelectorOperator::Gt {
                v > bound
            } else {
                v < bound
            }
        }
    }
}

/// Why a node cannot take a pod, if it cannot (readiness and cordon aside).
pub fn unfit_reason(spec: &PodSpec, node: &NodeView) -> Option<&'static str> {
    if !spec
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
    {
        return Some("didn't match Pod's node affinity/selector");
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(selector) = required {
        let any_term = selector.node_selector_terms.iter().any(|term| {
            term.match_expressions
                .iter()
                .all(|r| requirement_holds(&node.labels, &r.key, r.operator, &r.values))
        });
        if !any_term {
            return Some("didn't match Pod's node affinity/selector");
        }
    }
    let untolerated = node.taints.iter().any(|taint| {
        matches!(
            taint.effect,
            TaintEffect::NoSchedule | TaintEffect::NoExecute
        ) && !spec.tolerations.iter().any(|t| tolerates(t, taint))
    });
    if untolerated {
        return Some("had untolerated taint");
    }
    if !runtime_fits(spec, node) {
        return Some("had no container engine");
    }
    None
}

/// Picks the node for a pod: Ready, schedulable, fitting, with the fewest active pods (ties
/// by name). On failure, the `Unschedulable` message kubectl users know.
pub fn pick_node(
    spec: &PodSpec,
    nodes: &[NodeView],
    active: &HashMap<String, usize>,
) -> Result<String, String> {
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut best: Option<(&NodeView, usize)> = None;
    for node in nodes {
        let reason = if !node.ready {
            Some("not ready")
        } else if node.unschedulable {
            Some("unschedulable")
        } else {
            unfit_reason(spec, node)
        };
        if let Some(reason) = reason {
            *reasons.entry(reason).or_default() += 1;
            continue;
        }
        let load = active.get(&node.name).copied().unwrap_or(0);
        if best.is_none_or(|(b, l)| load < l || (load == l && node.name < b.name)) {
            best = Some((node, load));
        }
    }
    match best {
        Some((node, _)) => Ok(node.name.clone()),
        None => {
            let detail: Vec<String> = reasons
                .iter()
                .map(|(r, n)| format!("{n} node(s) {r}"))
                .collect();
            let mut message = format!("0/{} nodes are available", nodes.len());
            if !detail.is_empty() {
                message.push_str(": ");
                message.push_str(&detail.join(", "));
            }
            message.push('.');
            Err(message)
        }
    }
}

/// A pod waiting for a node.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingPod {
    /// The pod.
    pub key: ObjectKey,
    /// Its spec.
    pub spec: PodSpec,
    /// Why it fits no node, as last said (None: not said).
    pub unschedulable: Option<String>,
}

/// The scheduling pass: each pending pod, in order, goes to the node [`pick_node`] chooses,
/// counting the pods placed before it (`active`: the pods each node runs); a pod that fits
/// nowhere is told why, once for each reason.
pub fn schedule(
    pending: &[PendingPod],
    nodes: &[NodeView],
    mut active: HashMap<String, usize>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for pod in pending {
        match pick_node(&pod.spec, nodes, &active) {
            Ok(node) => {
                let message = format!(
                    "Successfully assigned {}/{} to {node}",
                    pod.key.namespace, pod.key.name
                );
                *active.entry(node.clone()).or_default() += 1;
                actions.push(Action::Bind {
                    pod: pod.key.clone(),
                    node,
                });
                actions.push(Action::normal(&pod.key, "Scheduled", message));
            }
            Err(message) if pod.unschedulable.as_deref() == Some(message.as_str()) => {}
            Err(message) => {
                actions.push(Action::MarkUnschedulable {
                    pod: pod.key.clone(),
                    message: message.clone(),
                });
                actions.push(Action::warning(&pod.key, "FailedScheduling", message));
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::manifest::{
        Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    };

    fn node(name: &str, labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            taints: vec![],
            ready: true,
            unschedulable: false,
        }
    }

    fn taint(key: &str, value: Option<&str>, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect,
            time_added: None,
        }
    }

    fn pending(name: &str, unschedulable: Option<&str>) -> PendingPod {
        PendingPod {
            key: ObjectKey::new(drover_proto::manifest::Kind::Pod, "default", name),
            spec: PodSpec::default(),
            unschedulable: unschedulable.map(str::to_string),
        }
    }

    #[test]
    fn the_pass_spreads_pending_pods_counting_those_it_placed() {
        let nodes = vec![node("a", &[]), node("b", &[])];
        let active = HashMap::from([("a".to_string(), 1)]);
        let actions = schedule(&[pending("p1", None), pending("p2", None)], &nodes, active);
        let bound: Vec<(&str, &str)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Bind { pod, node } => Some((pod.name.as_str(), node.as_str())),
                _ => None,
            })
            .collect();
        // b has none; then a and b have one each, and a comes first by name.
        assert_eq!(bound, [("p1", "b"), ("p2", "a")]);
        assert_eq!(
            actions[1],
            Action::normal(
                &pending("p1", None).key,
                "Scheduled",
                "Successfully assigned default/p1 to b"
            )
        );
    }

    #[test]
    fn a_pod_that_fits_nowhere_is_told_why_once_for_each_reason() {
        let mut nodes = vec![node("a", &[])];
        nodes[0].ready = false;
        let why = "0/1 nodes are available: 1 node(s) not ready.";
        let actions = schedule(&[pending("p", None)], &nodes, HashMap::new());
        assert_eq!(
            actions,
            vec![
                Action::MarkUnschedulable {
                    pod: pending("p", None).key,
                    message: why.into()
                },
                Action::warning(&pending("p", None).key, "FailedScheduling", why),
            ]
        );
        assert!(schedule(&[pending("p", Some(why))], &nodes, HashMap::new()).is_empty());
        nodes[0].unschedulable = true;
        nodes[0].ready = true;
        assert_eq!(
            schedule(&[pending("p", Some(why))], &nodes, HashMap::new()).len(),
            2
        );
    }

    #[test]
    fn fewest_active_pods_wins_and_ties_go_by_name() {
        let nodes = vec![node("b", &[]), node("a", &[]), node("c", &[])];
        let spec = PodSpec::default();
        assert_eq!(pick_node(&spec, &nodes, &HashMap::new()).unwrap(), "a");
        let load = HashMap::from([
            ("a".to_string(), 2),
            ("b".to_string(), 1),
            ("c".to_string(), 1),
        ]);
        assert_eq!(pick_node(&spec, &nodes, &load).unwrap(), "b");
    }

    #[test]
    fn not_ready_cordoned_and_unselected_nodes_are_skipped_with_reasons() {
        let mut nodes = vec![node("a", &[]), node("b", &[]), node("c", &[("zone", "x")])];
        nodes[0].ready = false;
        nodes[1].unschedulable = true;
        let mut spec = PodSpec::default();
        spec.node_selector.insert("zone".into(), "y".into());
        let err = pick_node(&spec, &nodes, &HashMap::new()).unwrap_err();
        assert_eq!(
            err,
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) not ready, 1 node(s) unschedulable."
        );
        spec.node_selector.insert("zone".into(), "x".into());
        assert_eq!(pick_node(&spec, &nodes, &HashMap::new()).unwrap(), "c");
    }

    #[test]
    fn taints_need_tolerations() {
        let mut n = node("a", &[]);
        n.taints
            .push(taint("dedicated", Some("gpu"), TaintEffect::NoSchedule));
        let mut spec = PodSpec::default();
        assert_eq!(unfit_reason(&spec, &n), Some("had untolerated taint"));
        spec.tolerations.push(Toleration {
            key: Some("dedicated".into()),
            operator: Some(TolerationOperator::Equal),
            value: Some("gpu".into()),
            effect: Some(TaintEffect::NoSchedule),
            toleration_seconds: None,
        });
        assert_eq!(unfit_reason(&spec, &n), None);
        n.taints
            .push(taint("soft", None, TaintEffect::PreferNoSchedule));
        assert_eq!(
            unfit_reason(&spec, &n),
            None,
            "PreferNoSchedule does not block"
        );
    }

    fn engine_pod() -> PodSpec {
        PodSpec {
            containers: vec![drover_proto::manifest::Container {
                name: "c".into(),
                image: Some("busybox:1".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_runtime_label_comes_from_the_engine_the_agent_reports() {
        for (runtime, problem, label) in [
            ("docker://28.2.2", "", Some("docker")),
            ("podman://5.4.0", "", Some("podman")),
            ("Docker://1", "", Some("docker")),
            (
                "",
                "no container engine socket at /run/docker.sock",
                Some("none"),
            ),
            ("", "", None),
            ("bad scheme://1", "", None),
        ] {
            assert_eq!(
                container_runtime_label(runtime, problem).as_deref(),
                label,
                "{runtime:?} {problem:?}"
            );
        }
    }

    #[test]
    fn a_container_pod_does_not_fit_a_node_without_an_engine() {
        let none = node("a", &[(LABEL_CONTAINER_RUNTIME, "none")]);
        let docker = node("b", &[(LABEL_CONTAINER_RUNTIME, "docker")]);
        let unreported = node("c", &[]);
        let spec = engine_pod();
        assert_eq!(unfit_reason(&spec, &none), Some("had no container engine"));
        assert_eq!(unfit_reason(&spec, &docker), None);
        assert_eq!(unfit_reason(&spec, &unreported), None, "not known yet");
        let nodes = vec![none.clone(), docker];
        assert_eq!(pick_node(&spec, &nodes, &HashMap::new()).unwrap(), "b");
        let err = pick_node(&spec, &[none], &HashMap::new()).unwrap_err();
        assert_eq!(
            err,
            "0/1 nodes are available: 1 node(s) had no container engine."
        );
    }

    #[test]
    fn process_pods_fit_a_node_without_an_engine() {
        let none = node("a", &[(LABEL_CONTAINER_RUNTIME, "none")]);
        let mut host_process = engine_pod();
        host_process.containers[0].image = None;
        assert_eq!(unfit_reason(&host_process, &none), None);
        let mut process_class = engine_pod();
        process_class.runtime_class_name = Some("process".into());
        assert_eq!(unfit_reason(&process_class, &none), None);
    }

    #[test]
    fn toleration_matching_table() {
        let t = taint("k", Some("v"), TaintEffect::NoExecute);
        let tol = |key: Option<&str>, op, value: Option<&str>, effect| Toleration {
            key: key.map(Into::into),
            operator: op,
            value: value.map(Into::into),
            effect,
            toleration_seconds: None,
        };
        use TolerationOperator::*;
        for (toleration, expected) in [
            (tol(Some("k"), Some(Equal), Some("v"), None), true),
            (
                tol(Some("k"), None, Some("v"), Some(TaintEffect::NoExecute)),
                true,
            ),
            (tol(Some("k"), Some(Equal), Some("w"), None), false),
            (tol(Some("k"), Some(Exists), None, None), true),
            (tol(None, Some(Exists), None, None), true),
            (
                tol(Some("k"), Some(Exists), None, Some(TaintEffect::NoSchedule)),
                false,
            ),
            (tol(Some("other"), Some(Exists), None, None), false),
        ] {
            assert_eq!(tolerates(&toleration, &t), expected, "{toleration:?}");
        }
    }

    #[test]
    fn required_node_affinity_operators() {
        let n = node("a", &[("zone", "north"), ("cores", "4")]);
        let spec_with = |key: &str, operator, values: &[&str]| PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: vec![NodeSelectorRequirement {
                                key: key.into(),
                                operator,
                                values: values.iter().map(|v| v.to_string()).collect(),
                            }],
                        }],
                    }),
                }),
                pod_anti_affinity: None,
            }),
            ..Default::default()
        };
        use NodeSelectorOperator::*;
        for (key, op, values, fits) in [
            ("zone", In, &["north", "south"][..], true),
            ("zone", In, &["south"][..], false),
            ("zone", NotIn, &["south"][..], true),
            ("zone", NotIn, &["north"][..], false),
            ("zone", Exists, &[][..], true),
            ("gpu", DoesNotExist, &[][..], true),
            ("gpu", Exists, &[][..], false),
            ("cores", Gt, &["2"][..], true),
            ("cores", Lt, &["2"][..], false),
        ] {
            assert_eq!(
                unfit_reason(&spec_with(key, op, values), &n).is_none(),
                fits,
                "{key} {op:?} {values:?}"
            );
        }
    }
}
