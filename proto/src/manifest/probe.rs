//! Container probes (`startupProbe`, `livenessProbe`, `readinessProbe`): the manifest's
//! shape, its validation, and what an agent is sent to run them.
//!
//! Defaults are Kubernetes': a probe runs every 10 s, times out after 1 s, and changes its
//! result after 3 failures or 1 success in a row.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::{Container, ContainerPort};
use crate::msg::{WireProbe, WireProbeHandler};

/// A probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probe {
    /// Run a command in the container; exit status 0 is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// An HTTP GET; a status from 200 to 399 is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// A TCP connection that opens is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// A gRPC health check (`grpc.health.v1.Health/Check`) answering `SERVING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcAction>,
    /// Seconds after the container starts before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds a probe may take (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Seconds between probes (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Successes in a row that make a failed probe succeed (default 1; 1 for liveness and
    /// startup probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    /// Failures in a row that make a probe fail (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    /// Grace period of a container killed for failing this probe (default: the pod's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

/// `exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecAction {
    /// The command and its arguments; no shell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// `httpGet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpGetAction {
    /// Path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port number or the name of one of the container's ports.
    pub port: PortRef,
    /// Host to connect to (default: the pod's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP` (default) or `HTTPS` (the certificate is not verified, as in Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// One request header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    #[serde(default)]
    pub value: String,
}

/// `tcpSocket`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpSocketAction {
    /// Port number or the name of one of the container's ports.
    pub port: PortRef,
    /// Host to connect to (default: the pod's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `grpc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcAction {
    /// Port number.
    pub port: i32,
    /// Service name sent in the health check request (default: empty, the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A port given by number or by the name of a container port (Kubernetes `IntOrString`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    /// A port number.
    Number(i64),
    /// A container port's name.
    Name(String),
}

impl Serialize for PortRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PortRef::Number(n) => s.serialize_i64(*n),
            PortRef::Name(name) => s.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for PortRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = PortRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or a port name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRef, E> {
                Ok(PortRef::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRef, E> {
                Ok(PortRef::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRef, E> {
                // Digits in quotes are taken as the number: Kubernetes refuses them (a port
                // name needs a letter), and nothing else could be meant.
                Ok(match v.parse::<i64>() {
                    Ok(n) => PortRef::Number(n),
                    Err(_) => PortRef::Name(v.to_string()),
                })
            }
        }
        d.deserialize_any(PortVisitor)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for PortRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IntOrString".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        <super::types::IntOrPercent as schemars::JsonSchema>::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <super::types::IntOrPercent as schemars::JsonSchema>::json_schema(generator)
    }
}

/// Which probe of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `startupProbe`.
    Startup,
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
}

impl ProbeKind {
    /// The container field.
    pub fn field(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
        }
    }
}

/// Each probe a container sets, with its kind.
pub fn probes_of(container: &Container) -> impl Iterator<Item = (ProbeKind, &Probe)> {
    [
        (ProbeKind::Startup, container.startup_probe.as_ref()),
        (ProbeKind::Liveness, container.liveness_probe.as_ref()),
        (ProbeKind::Readiness, container.readiness_probe.as_ref()),
    ]
    .into_iter()
    .filter_map(|(kind, probe)| probe.map(|p| (kind, p)))
}

/// Most request headers a probe may send.
const MAX_HEADERS: usize = 64;

/// Checks one probe of `container`; errors name the field under `path` (the probe's).
pub fn validate_probe(
    path: &str,
    kind: ProbeKind,
    probe: &Probe,
    container: &Container,
    errors: &mut Vec<(String, String)>,
) {
    let handlers = usize::from(probe.exec.is_some())
        + usize::from(probe.http_get.is_some())
        + usize::from(probe.tcp_socket.is_some())
        + usize::from(probe.grpc.is_some());
    if handlers != 1 {
        errors.push((
            path.to_string(),
            "exactly one of exec, httpGet, tcpSocket or grpc is required".into(),
        ));
    }
    for (field, value) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        if value.is_some_and(|v| v < 0) {
            errors.push((format!("{path}.{field}"), "must not be negative".into()));
        }
    }
    if kind != ProbeKind::Readiness && probe.success_threshold.is_some_and(|v| v > 1) {
        errors.push((
            format!("{path}.successThreshold"),
            format!("must be 1 for a {}", kind.field()),
        ));
    }
    if let Some(grace) = probe.termination_grace_period_seconds {
        if kind == ProbeKind::Readiness {
            errors.push((
                format!("{path}.terminationGracePeriodSeconds"),
                "must not be set for a readinessProbe".into(),
            ));
        } else if grace <= 0 {
            errors.push((
                format!("{path}.terminationGracePeriodSeconds"),
                "must be greater than 0".into(),
            ));
        }
    }
    if let Some(exec) = &probe.exec {
        if exec.command.is_empty() {
            errors.push((format!("{path}.exec.command"), "must not be empty".into()));
        }
    }
    if let Some(http) = &probe.http_get {
        validate_http_get(&format!("{path}.httpGet"), http, container, errors);
    }
    if let Some(tcp) = &probe.tcp_socket {
        check_port(
            &format!("{path}.tcpSocket.port"),
            &tcp.port,
            &container.ports,
            errors,
        );
        if let Some(host) = tcp.host.as_deref().filter(|h| !h.is_empty()) {
            check_host(&format!("{path}.tcpSocket.host"), host, errors);
        }
    }
    if let Some(grpc) = &probe.grpc {
        if !(1..=65535).contains(&grpc.port) {
            errors.push((
                format!("{path}.grpc.port"),
                "must be between 1 and 65535".into(),
            ));
        }
        if grpc.service.as_deref().is_some_and(has_control) {
            errors.push((
                format!("{path}.grpc.service"),
                "must hold no control characters".into(),
            ));
        }
    }
}

/// Checks an `httpGet` (of a probe or a lifecycle hook) at `at`.
pub(super) fn validate_http_get(
    at: &str,
    http: &HttpGetAction,
    container: &Container,
    errors: &mut Vec<(String, String)>,
) {
    check_port(&format!("{at}.port"), &http.port, &container.ports, errors);
    if let Some(scheme) = http.scheme.as_deref().filter(|s| !s.is_empty()) {
        if scheme != "HTTP" && scheme != "HTTPS" {
            errors.push((
                format!("{at}.scheme"),
                format!("unsupported scheme \"{scheme}\" (HTTP or HTTPS)"),
            ));
        }
    }
    if let Some(path) = &http.path {
        if has_control(path) || path.contains(' ') {
            errors.push((
                format!("{at}.path"),
                "must hold no spaces or control characters".into(),
            ));
        }
    }
    if let Some(host) = http.host.as_deref().filter(|h| !h.is_empty()) {
        check_host(&format!("{at}.host"), host, errors);
    }
    if http.http_headers.len() > MAX_HEADERS {
        errors.push((
            format!("{at}.httpHeaders"),
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    for (i, header) in http.http_headers.iter().enumerate() {
        if header.name.is_empty() || !header.name.bytes().all(is_token_byte) {
            errors.push((
                format!("{at}.httpHeaders[{i}].name"),
                format!("invalid HTTP header name \"{}\"", header.name),
            ));
        }
        if has_control(&header.value) {
            errors.push((
                format!("{at}.httpHeaders[{i}].value"),
                "must hold no control characters".into(),
            ));
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_host(path: &str, host: &str, errors: &mut Vec<(String, String)>) {
    let valid = host.parse::<std::net::IpAddr>().is_ok() || super::is_dns_subdomain(host);
    if !valid {
        errors.push((
            path.to_string(),
            format!("invalid host \"{host}\": an IP address or a DNS name"),
        ));
    }
}

fn check_port(
    path: &str,
    port: &PortRef,
    ports: &[ContainerPort],
    errors: &mut Vec<(String, String)>,
) {
    match port {
        PortRef::Number(n) if !(1..=65535).contains(n) => {
            errors.push((path.to_string(), "must be between 1 and 65535".into()));
        }
        PortRef::Number(_) => {}
        PortRef::Name(name) => {
            if named_port(name, ports).is_none() {
                errors.push((
                    path.to_string(),
                    format!("no port named \"{name}\" in the container's ports"),
                ));
            }
        }
    }
}

fn named_port(name: &str, ports: &[ContainerPort]) -> Option<u16> {
    ports
        .iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
}

fn port_number(port: &PortRef, ports: &[ContainerPort]) -> Option<u16> {
    match port {
        PortRef::Number(n) => u16::try_from(*n).ok().filter(|n| *n > 0),
        PortRef::Name(name) => named_port(name, ports),
    }
}

fn seconds(value: Option<i32>, default: u32) -> u32 {
    match value {
        Some(v) if v > 0 => v as u32,
        _ => default,
    }
}

/// What the agent is sent for an `httpGet` of `container` (`None` for a port name the
/// container does not have, which validation refuses).
pub(super) fn wire_http_get(
    http: &HttpGetAction,
    container: &Container,
) -> Option<WireProbeHandler> {
    Some(WireProbeHandler::HttpGet {
        host: http.host.clone().filter(|h| !h.is_empty()),
        port: port_number(&http.port, &container.ports)?,
        // The kubelet adds the leading slash a path lacks.
        path: match http.path.as_deref().unwrap_or("") {
            "" => "/".into(),
            p if p.starts_with('/') => p.to_string(),
            p => format!("/{p}"),
        },
        https: http.scheme.as_deref() == Some("HTTPS"),
        headers: http
            .http_headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
    })
}

/// What the agent is sent for a probe of `container` (a validated one; `None` for one that
/// is not, which validation refuses).
pub fn wire_probe(probe: &Probe, container: &Container) -> Option<WireProbe> {
    let handler = if let Some(exec) = &probe.exec {
        WireProbeHandler::Exec {
            command: exec.command.clone(),
        }
    } else if let Some(http) = &probe.http_get {
        wire_http_get(http, container)?
    } else if let Some(tcp) = &probe.tcp_socket {
        WireProbeHandler::TcpSocket {
            host: tcp.host.clone().filter(|h| !h.is_empty()),
            port: port_number(&tcp.port, &container.ports)?,
        }
    } else if let Some(grpc) = &probe.grpc {
        WireProbeHandler::Grpc {
            port: u16::try_from(grpc.port).ok().filter(|p| *p > 0)?,
            service: grpc.service.clone().unwrap_or_default(),
        }
    } else {
        return None;
    };
    Some(WireProbe {
        handler,
        initial_delay_seconds: probe.initial_delay_seconds.unwrap_or(0).max(0) as u32,
        period_seconds: seconds(probe.period_seconds, 10),
        timeout_seconds: seconds(probe.timeout_seconds, 1),
        success_threshold: seconds(probe.success_threshold, 1),
        failure_threshold: seconds(probe.failure_threshold, 3),
        termination_grace_seconds: probe
            .termination_grace_period_seconds
            .filter(|g| *g > 0)
            .map(|g| g.min(i64::from(u32::MAX)) as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read with the manifests' own YAML reader, as users write probes.
    fn container(yaml: &str) -> Container {
        let mut documents = crate::manifest::yaml::load_documents(yaml).expect("test YAML parses");
        serde_json::from_value(documents.remove(0).value).expect("test container deserializes")
    }

    fn errors(yaml: &str) -> Vec<(String, String)> {
        let c = container(yaml);
        let mut errors = Vec::new();
        for (kind, probe) in probes_of(&c) {
            validate_probe(&format!("c.{}", kind.field()), kind, probe, &c, &mut errors);
        }
        errors
    }

    #[test]
    fn defaults_are_kubernetes_and_named_ports_resolve() {
        let c = container(
            "name: a\nimage: x\nports: [{name: web, containerPort: 8080}]\nlivenessProbe: {httpGet: {port: web}}\n",
        );
        let probe = wire_probe(c.liveness_probe.as_ref().unwrap(), &c).unwrap();
        assert_eq!(
            probe,
            WireProbe {
                handler: WireProbeHandler::HttpGet {
                    host: None,
                    port: 8080,
                    path: "/".into(),
                    https: false,
                    headers: vec![],
                },
                initial_delay_seconds: 0,
                period_seconds: 10,
                timeout_seconds: 1,
                success_threshold: 1,
                failure_threshold: 3,
                termination_grace_seconds: None,
            }
        );
        // A quoted number is read as that number (Kubernetes refuses it as a port name).
        let c = container("name: a\nimage: x\nreadinessProbe: {tcpSocket: {port: \"81\"}, periodSeconds: 0, failureThreshold: 1}\n");
        let probe = wire_probe(c.readiness_probe.as_ref().unwrap(), &c).unwrap();
        assert_eq!(
            probe.handler,
            WireProbeHandler::TcpSocket {
                host: None,
                port: 81
            }
        );
        assert_eq!((probe.period_seconds, probe.failure_threshold), (10, 1));
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases = [
            ("livenessProbe: {}", "c.livenessProbe"),
            (
                "livenessProbe: {exec: {command: [x]}, tcpSocket: {port: 1}}",
                "c.livenessProbe",
            ),
            ("livenessProbe: {exec: {}}", "c.livenessProbe.exec.command"),
            (
                "livenessProbe: {exec: {command: [x]}, successThreshold: 2}",
                "c.livenessProbe.successThreshold",
            ),
            (
                "startupProbe: {exec: {command: [x]}, successThreshold: 3}",
                "c.startupProbe.successThreshold",
            ),
            (
                "readinessProbe: {exec: {command: [x]}, terminationGracePeriodSeconds: 5}",
                "c.readinessProbe.terminationGracePeriodSeconds",
            ),
            (
                "livenessProbe: {exec: {command: [x]}, terminationGracePeriodSeconds: 0}",
                "c.livenessProbe.terminationGracePeriodSeconds",
            ),
            (
                "livenessProbe: {exec: {command: [x]}, periodSeconds: -1}",
                "c.livenessProbe.periodSeconds",
            ),
            (
                "livenessProbe: {httpGet: {port: 0}}",
                "c.livenessProbe.httpGet.port",
            ),
            (
                "livenessProbe: {httpGet: {port: http}}",
                "c.livenessProbe.httpGet.port",
            ),
            (
                "livenessProbe: {httpGet: {port: 80, scheme: FTP}}",
                "c.livenessProbe.httpGet.scheme",
            ),
            (
                "livenessProbe: {httpGet: {port: 80, path: \"/a\\r\\nX: y\"}}",
                "c.livenessProbe.httpGet.path",
            ),
            (
                "livenessProbe: {httpGet: {port: 80, host: \"a b\"}}",
                "c.livenessProbe.httpGet.host",
            ),
            (
                "livenessProbe: {httpGet: {port: 80, httpHeaders: [{name: \"a:b\", value: x}]}}",
                "c.livenessProbe.httpGet.httpHeaders[0].name",
            ),
            (
                "livenessProbe: {httpGet: {port: 80, httpHeaders: [{name: a, value: \"x\\ny\"}]}}",
                "c.livenessProbe.httpGet.httpHeaders[0].value",
            ),
            (
                "readinessProbe: {tcpSocket: {port: 70000}}",
                "c.readinessProbe.tcpSocket.port",
            ),
            (
                "readinessProbe: {grpc: {port: 0}}",
                "c.readinessProbe.grpc.port",
            ),
        ];
        for (probe, field) in cases {
            let found = errors(&format!("name: a\nimage: x\n{probe}\n"));
            assert_eq!(found.len(), 1, "{probe}: {found:?}");
            assert_eq!(found[0].0, field, "{probe}: {found:?}");
        }
    }

    #[test]
    fn what_kubernetes_accepts_and_defaults_is_accepted() {
        let c = container(
            "name: a\nimage: x\nlivenessProbe: {httpGet: {port: 80, path: healthz, scheme: \"\", host: \"\"}}\n",
        );
        let mut errors = Vec::new();
        let probe = c.liveness_probe.as_ref().unwrap();
        validate_probe("p", ProbeKind::Liveness, probe, &c, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        match wire_probe(probe, &c).unwrap().handler {
            WireProbeHandler::HttpGet {
                path, host, https, ..
            } => {
                assert_eq!((path.as_str(), host, https), ("/healthz", None, false));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn valid_probes_pass() {
        let found = errors(
            "name: a\nimage: x\nports: [{name: grpc, containerPort: 9000}]\n\
             startupProbe: {exec: {command: [cat, /ready]}, failureThreshold: 30, periodSeconds: 1}\n\
             livenessProbe: {httpGet: {port: 8080, path: /healthz, scheme: HTTPS, host: 127.0.0.1, httpHeaders: [{name: X-Probe, value: yes}]}, terminationGracePeriodSeconds: 5}\n\
             readinessProbe: {grpc: {port: 9000, service: app}, successThreshold: 2}\n",
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
