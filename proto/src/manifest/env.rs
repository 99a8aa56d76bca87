//! A container's environment as Kubernetes builds it: literal values, the downward API
//! (`fieldRef`, `resourceFieldRef`), and `$(VAR)` expansion. No I/O: the controller gives
//! what it knows of the pod and its node.

use std::collections::BTreeMap;

use super::types::{Container, EnvVar, PodSpec};
use crate::quantity::{parse_bytes, parse_cpu_millis};

/// A pod field an environment variable can take (`fieldRef.fieldPath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    /// `metadata.name`.
    Name,
    /// `metadata.namespace`.
    Namespace,
    /// `metadata.uid`.
    Uid,
    /// `metadata.labels['key']`.
    Label(String),
    /// `metadata.annotations['key']`.
    Annotation(String),
    /// `spec.nodeName`.
    NodeName,
    /// `spec.serviceAccountName`.
    ServiceAccountName,
    /// `status.hostIP` (also `status.hostIPs`).
    HostIp,
    /// `status.podIP` (also `status.podIPs`).
    PodIp,
}

/// The paths Kubernetes accepts in an environment variable's `fieldRef`.
pub const SUPPORTED_FIELD_PATHS: &str = "\"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"metadata.labels['<KEY>']\", \"metadata.annotations['<KEY>']\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"";

impl FieldPath {
    /// The field `path` names; `None` for any other.
    pub fn parse(path: &str) -> Option<FieldPath> {
        let keyed = |prefix: &str| {
            let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
            (!key.is_empty()).then(|| key.to_string())
        };
        Some(match path {
            "metadata.name" => FieldPath::Name,
            "metadata.namespace" => FieldPath::Namespace,
            "metadata.uid" => FieldPath::Uid,
            "spec.nodeName" => FieldPath::NodeName,
            "spec.serviceAccountName" => FieldPath::ServiceAccountName,
            "status.hostIP" | "status.hostIPs" => FieldPath::HostIp,
            "status.podIP" | "status.podIPs" => FieldPath::PodIp,
            _ => {
                if let Some(key) = keyed("metadata.labels['") {
                    FieldPath::Label(key)
                } else if let Some(key) = keyed("metadata.annotations['") {
                    FieldPath::Annotation(key)
                } else {
                    return None;
                }
            }
        })
    }
}

/// A container resource an environment variable can take (`resourceFieldRef.resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceField {
    /// `limits.cpu`.
    LimitsCpu,
    /// `limits.memory`.
    LimitsMemory,
    /// `requests.cpu`.
    RequestsCpu,
    /// `requests.memory`.
    RequestsMemory,
}

/// The resources Drover accepts in a `resourceFieldRef`.
pub const SUPPORTED_RESOURCES: &str =
    "\"limits.cpu\", \"limits.memory\", \"requests.cpu\", \"requests.memory\"";

impl ResourceField {
    /// The resource `name` names; `None` for any other.
    pub fn parse(name: &str) -> Option<ResourceField> {
        Some(match name {
            "limits.cpu" => ResourceField::LimitsCpu,
            "limits.memory" => ResourceField::LimitsMemory,
            "requests.cpu" => ResourceField::RequestsCpu,
            "requests.memory" => ResourceField::RequestsMemory,
            _ => return None,
        })
    }

    fn is_cpu(self) -> bool {
        matches!(self, ResourceField::LimitsCpu | ResourceField::RequestsCpu)
    }
}

/// What the controller knows of a pod and its node when it sends the pod there.
#[derive(Debug, Clone, Default)]
pub struct PodFacts<'a> {
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.namespace`.
    pub namespace: &'a str,
    /// `metadata.uid`.
    pub uid: &'a str,
    /// `metadata.labels`.
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// `metadata.annotations`.
    pub annotations: Option<&'a BTreeMap<String, String>>,
    /// The node's address (`status.hostIP`).
    pub host_ip: Option<&'a str>,
    /// The pod's address (`status.podIP`).
    pub pod_ip: Option<&'a str>,
    /// The node's CPUs, in millicores: a limit not set is the node's.
    pub node_cpu_millis: Option<u64>,
    /// The node's memory, in bytes: a limit not set is the node's.
    pub node_memory_bytes: Option<u64>,
}

/// The environment of `container` of the pod with `spec`, in order, each value expanded
/// over the variables before it, as the kubelet builds it.
pub fn container_env(
    spec: &PodSpec,
    container: &Container,
    facts: &PodFacts,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = Vec::with_capacity(container.env.len());
    for var in &container.env {
        let value = match &var.value_from {
            None => expand(&var.value, &env),
            Some(_) => value_from(spec, container, var, facts)?,
        };
        match env.iter_mut().find(|(name, _)| *name == var.name) {
            // A later definition of a name replaces the earlier one, in its place.
            Some(existing) => existing.1 = value,
            None => env.push((var.name.clone(), value)),
        }
    }
    Ok(env)
}

fn value_from(
    spec: &PodSpec,
    container: &Container,
    var: &EnvVar,
    facts: &PodFacts,
) -> Result<String, String> {
    let source = var.value_from.as_ref().ok_or("no value source")?;
    if let Some(field) = &source.field_ref {
        let path = FieldPath::parse(&field.field_path)
            .ok_or_else(|| format!("unsupported fieldPath \"{}\"", field.field_path))?;
        // Sent only once known: the agent keeps the values a pod started with.
        let address = |v: Option<&str>| {
            v.map(str::to_string).ok_or(
                "the node's address is not known yet (it has not registered, or reported none)",
            )
        };
        let keyed = |map: Option<&BTreeMap<String, String>>, key: &str| {
            map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
        };
        return Ok(match path {
            FieldPath::Name => facts.name.to_string(),
            FieldPath::Namespace => facts.namespace.to_string(),
            FieldPath::Uid => facts.uid.to_string(),
            FieldPath::Label(key) => keyed(facts.labels, &key),
            FieldPath::Annotation(key) => keyed(facts.annotations, &key),
            FieldPath::NodeName => spec.node_name.clone().unwrap_or_default(),
            FieldPath::ServiceAccountName => spec
                .service_account_name
                .clone()
                .or_else(|| spec.service_account.clone())
                .unwrap_or_else(|| "default".to_string()),
            FieldPath::HostIp => address(facts.host_ip)?,
            FieldPath::PodIp => address(facts.pod_ip)?,
        });
    }
    if let Some(field) = &source.resource_field_ref {
        let resource = ResourceField::parse(&field.resource)
            .ok_or_else(|| format!("unsupported resource \"{}\"", field.resource))?;
        let target = match &field.container_name {
            Some(name) if !name.is_empty() => spec
                .all_containers()
                .map(|(_, c)| c)
                .find(|c| &c.name == name)
                .ok_or_else(|| format!("no container \"{name}\""))?,
            _ => container,
        };
        return resource_value(target, resource, field.divisor.as_ref(), facts);
    }
    Err("ConfigMaps and Secrets are not served by Drover yet".to_string())
}

/// A limit or request in units of `divisor`, rounded up as Kubernetes rounds it. A limit
/// not set is the node's capacity; a request not set is the limit.
fn resource_value(
    container: &Container,
    resource: ResourceField,
    divisor: Option<&super::types::Quantity>,
    facts: &PodFacts,
) -> Result<String, String> {
    let parse = |text: &str| {
        if resource.is_cpu() {
            parse_cpu_millis(text)
        } else {
            parse_bytes(text)
        }
    };
    let name = if resource.is_cpu() { "cpu" } else { "memory" };
    let resources = container.resources.as_ref();
    let limit = resources
        .and_then(|r| r.limits.get(name))
        .and_then(|q| parse(&q.0));
    let request = resources
        .and_then(|r| r.requests.get(name))
        .and_then(|q| parse(&q.0));
    let capacity = if resource.is_cpu() {
        facts.node_cpu_millis
    } else {
        facts.node_memory_bytes
    };
    let amount = match resource {
        ResourceField::LimitsCpu | ResourceField::LimitsMemory => Some(
            limit
                .or(capacity)
                .ok_or("the node's capacity is not known yet (it has not registered)")?,
        ),
        ResourceField::RequestsCpu | ResourceField::RequestsMemory => request.or(limit),
    }
    .unwrap_or(0);
    // CPU amounts are in millicores: a divisor of 1 is 1000 of them.
    let unit = match divisor {
        None => None,
        Some(q) => Some(
            parse(&q.0)
                .filter(|d| *d > 0)
                .ok_or_else(|| format!("divisor \"{}\" is not a positive {name} quantity", q.0))?,
        ),
    }
    .unwrap_or(if resource.is_cpu() { 1000 } else { 1 });
    Ok(amount.div_ceil(unit).to_string())
}

/// `$(NAME)` replaced by the value of `NAME` in `vars`; `$$` is a literal `$`; a reference
/// to a name not defined is left as written.
pub fn expand(text: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(reference) = after.strip_prefix('(') {
            match reference.find(')') {
                Some(end) => {
                    let name = &reference[..end];
                    match vars.iter().rev().find(|(n, _)| n == name) {
                        Some((_, value)) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &reference[end + 1..];
                }
                None => {
                    out.push_str(&rest[at..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: serde_json::Value) -> PodSpec {
        serde_json::from_value(json!({
            "nodeName": "pi-7",
            "serviceAccountName": "reporter",
            "containers": containers,
        }))
        .expect("a valid spec")
    }

    fn facts<'a>(labels: &'a BTreeMap<String, String>) -> PodFacts<'a> {
        PodFacts {
            name: "web-1",
            namespace: "shop",
            uid: "0f6f5b47-3b1e-4d0a-9a64-5cbbd3b1b0a1",
            labels: Some(labels),
            annotations: None,
            host_ip: Some("10.0.0.7"),
            pod_ip: Some("10.0.0.7"),
            node_cpu_millis: Some(4000),
            node_memory_bytes: Some(8 << 30),
        }
    }

    fn env_of(spec: &PodSpec, labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
        container_env(spec, &spec.containers[0], &facts(labels)).expect("an environment")
    }

    fn field(name: &str, path: &str) -> serde_json::Value {
        json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
    }

    #[test]
    fn the_downward_api_gives_the_pods_own_fields() {
        let spec = pod(json!([{"name": "main", "command": ["env"], "env": [
            field("POD", "metadata.name"),
            field("NS", "metadata.namespace"),
            field("UID", "metadata.uid"),
            field("APP", "metadata.labels['app']"),
            field("MISSING", "metadata.annotations['none']"),
            field("NODE", "spec.nodeName"),
            field("SA", "spec.serviceAccountName"),
            field("HOST", "status.hostIP"),
            field("IP", "status.podIP"),
        ]}]));
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let env = env_of(&spec, &labels);
        let value = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(value("POD"), Some("web-1"));
        assert_eq!(value("NS"), Some("shop"));
        assert_eq!(value("UID"), Some("0f6f5b47-3b1e-4d0a-9a64-5cbbd3b1b0a1"));
        assert_eq!(value("APP"), Some("web"));
        assert_eq!(value("MISSING"), Some(""));
        assert_eq!(value("NODE"), Some("pi-7"));
        assert_eq!(value("SA"), Some("reporter"));
        assert_eq!(value("HOST"), Some("10.0.0.7"));
        assert_eq!(value("IP"), Some("10.0.0.7"));
    }

    #[test]
    fn resources_are_in_units_of_the_divisor_rounded_up() {
        let resource = |name: &str, resource: &str, divisor: Option<&str>| {
            let mut r = json!({"resource": resource});
            if let Some(d) = divisor {
                r["divisor"] = json!(d);
            }
            json!({"name": name, "valueFrom": {"resourceFieldRef": r}})
        };
        let spec = pod(json!([{"name": "main", "command": ["env"],
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
            "env": [
                resource("CPU", "limits.cpu", None),
                resource("MILLI", "limits.cpu", Some("1m")),
                resource("MEM", "limits.memory", None),
                resource("MEM_MI", "limits.memory", Some("1Mi")),
                resource("REQ", "requests.memory", Some("1Mi")),
                resource("REQ_CPU", "requests.cpu", Some("1m")),
            ]},
            {"name": "side", "command": ["true"]}]));
        let env = env_of(&spec, &BTreeMap::new());
        assert_eq!(
            env,
            [
                ("CPU", "1"),
                ("MILLI", "500"),
                ("MEM", "67108864"),
                ("MEM_MI", "64"),
                ("REQ", "64"),
                ("REQ_CPU", "500"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        // Without a limit: the node's capacity.
        let spec = pod(json!([{"name": "main", "command": ["env"], "env": [
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "SIDE", "valueFrom": {"resourceFieldRef": {"containerName": "main", "resource": "limits.memory", "divisor": "1Gi"}}},
        ]}]));
        assert_eq!(
            env_of(&spec, &BTreeMap::new()),
            [("CPUS", "4"), ("SIDE", "8")].map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn what_only_the_node_knows_is_not_made_up_before_it_registered() {
        let spec = pod(
            json!([{"name": "main", "command": ["env"], "env": [field("HOST", "status.hostIP")]}]),
        );
        let unknown = PodFacts {
            name: "p",
            ..PodFacts::default()
        };
        assert!(container_env(&spec, &spec.containers[0], &unknown).is_err());
        let spec = pod(json!([{"name": "main", "command": ["env"], "env": [
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}]));
        assert!(container_env(&spec, &spec.containers[0], &unknown).is_err());
        // A limit of its own, or a request, needs nothing of the node.
        let spec = pod(
            json!([{"name": "main", "command": ["env"], "resources": {"limits": {"cpu": "2"}}, "env": [
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}}]}]),
        );
        let env = container_env(&spec, &spec.containers[0], &unknown).unwrap();
        assert_eq!(
            env,
            [("CPUS", "2"), ("REQ", "0")].map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn values_expand_the_variables_defined_before_them() {
        let spec = pod(json!([{"name": "main", "command": ["env"], "env": [
            field("POD", "metadata.name"),
            {"name": "URL", "value": "http://$(POD).$(LATER):8080/$(NONE)"},
            {"name": "LATER", "value": "x"},
            {"name": "PRICE", "value": "$$(POD) and $$ and $5"},
        ]}]));
        let env = env_of(&spec, &BTreeMap::new());
        assert_eq!(env[1].1, "http://web-1.$(LATER):8080/$(NONE)");
        assert_eq!(env[3].1, "$(POD) and $ and $5");
    }

    #[test]
    fn a_name_defined_twice_keeps_its_place_and_takes_the_last_value() {
        let spec = pod(json!([{"name": "main", "command": ["env"], "env": [
            {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "A", "value": "$(B)3"},
        ]}]));
        assert_eq!(
            env_of(&spec, &BTreeMap::new()),
            [("A", "23"), ("B", "2")].map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn expansion_leaves_what_is_not_a_reference() {
        let vars = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)$(A)", &vars), "11");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("$", &vars), "$");
        assert_eq!(expand("a$b", &vars), "a$b");
        assert_eq!(expand("$$$(A)", &vars), "$1");
        assert_eq!(expand("", &vars), "");
    }

    #[test]
    fn field_paths_are_those_kubernetes_accepts() {
        assert_eq!(
            FieldPath::parse("metadata.labels['a.b/c']"),
            Some(FieldPath::Label("a.b/c".into()))
        );
        assert_eq!(FieldPath::parse("metadata.labels['']"), None);
        assert_eq!(FieldPath::parse("metadata.labels"), None);
        assert_eq!(FieldPath::parse("spec.containers"), None);
        assert_eq!(FieldPath::parse("status.podIPs"), Some(FieldPath::PodIp));
        assert_eq!(ResourceField::parse("limits.ephemeral-storage"), None);
    }
}
