//! Container lifecycle hooks (`lifecycle.postStart`, `lifecycle.preStop`): the manifest's
//! shape, its validation, and what an agent is sent to run them.

use serde::{Deserialize, Serialize};

use super::probe::{validate_http_get, wire_http_get, ExecAction, HttpGetAction, TcpSocketAction};
use super::types::Container;
use crate::msg::{WireHook, WireProbeHandler};

/// `lifecycle`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Lifecycle {
    /// Runs as soon as the container has started; the container is killed if it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<LifecycleHandler>,
    /// Runs before the container is sent SIGTERM, within its grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<LifecycleHandler>,
}

/// What a hook does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LifecycleHandler {
    /// Run a command in the container; a non-zero exit fails the hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// An HTTP GET; a status outside 200–399 fails the hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// Refused: Kubernetes keeps it for compatibility and never runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// Wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<SleepAction>,
}

/// `sleep`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SleepAction {
    /// Seconds to wait.
    pub seconds: i64,
}

/// The container's hooks, with their field names.
pub fn hooks_of(container: &Container) -> impl Iterator<Item = (&'static str, &LifecycleHandler)> {
    let lifecycle = container.lifecycle.as_ref();
    [
        ("postStart", lifecycle.and_then(|l| l.post_start.as_ref())),
        ("preStop", lifecycle.and_then(|l| l.pre_stop.as_ref())),
    ]
    .into_iter()
    .filter_map(|(field, hook)| hook.map(|h| (field, h)))
}

/// Checks one hook of `container`; errors name the field under `path` (the hook's).
pub fn validate_hook(
    path: &str,
    hook: &LifecycleHandler,
    container: &Container,
    errors: &mut Vec<(String, String)>,
) {
    if hook.tcp_socket.is_some() {
        errors.push((
            format!("{path}.tcpSocket"),
            "not supported: Kubernetes never runs a tcpSocket hook (use exec, httpGet or sleep)"
                .into(),
        ));
        return;
    }
    let handlers = usize::from(hook.exec.is_some())
        + usize::from(hook.http_get.is_some())
        + usize::from(hook.sleep.is_some());
    if handlers != 1 {
        errors.push((
            path.to_string(),
            "exactly one of exec, httpGet or sleep is required".into(),
        ));
    }
    if let Some(exec) = &hook.exec {
        if exec.command.is_empty() {
            errors.push((format!("{path}.exec.command"), "must not be empty".into()));
        }
    }
    if let Some(http) = &hook.http_get {
        validate_http_get(&format!("{path}.httpGet"), http, container, errors);
    }
    if let Some(sleep) = &hook.sleep {
        if sleep.seconds <= 0 || sleep.seconds > i64::from(u32::MAX) {
            errors.push((
                format!("{path}.sleep.seconds"),
                "must be a positive number of seconds".into(),
            ));
        }
    }
}

/// What the agent is sent for a hook of `container` (a validated one; `None` for one that
/// is not, which validation refuses).
pub fn wire_hook(hook: &LifecycleHandler, container: &Container) -> Option<WireHook> {
    if let Some(exec) = &hook.exec {
        Some(WireHook::Check(WireProbeHandler::Exec {
            command: exec.command.clone(),
        }))
    } else if let Some(http) = &hook.http_get {
        wire_http_get(http, container).map(WireHook::Check)
    } else {
        let seconds = hook.sleep.as_ref()?.seconds;
        u32::try_from(seconds)
            .ok()
            .filter(|s| *s > 0)
            .map(|seconds| WireHook::Sleep { seconds })
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{parse_manifests, Manifest};
    use crate::msg::{WireHook, WireProbeHandler};

    fn pod(lifecycle: &str) -> String {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  containers:
  - name: web
    command: [serve]
    ports: [{{name: http, containerPort: 8080}}]
    lifecycle:
{lifecycle}"
        )
    }

    fn errors_of(text: &str) -> Vec<(String, String)> {
        match parse_manifests("t.yaml", text) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn exec_http_get_and_sleep_hooks_reach_the_agent() {
        let text = pod("      postStart: {httpGet: {port: http, path: ready}}
      preStop: {sleep: {seconds: 5}}
");
        let manifests = parse_manifests("p.yaml", &text).unwrap();
        let Manifest::Pod(pod) = &manifests[0] else {
            panic!("a pod");
        };
        let c = &pod.spec.containers[0];
        let lifecycle = c.lifecycle.as_ref().unwrap();
        let post_start = super::wire_hook(lifecycle.post_start.as_ref().unwrap(), c);
        assert!(matches!(
            post_start,
            Some(WireHook::Check(WireProbeHandler::HttpGet { port: 8080, ref path, .. })) if path == "/ready"
        ));
        let pre_stop = super::wire_hook(lifecycle.pre_stop.as_ref().unwrap(), c);
        assert_eq!(pre_stop, Some(WireHook::Sleep { seconds: 5 }));
        let exec = pod_with_exec();
        assert!(errors_of(&exec).is_empty(), "{:?}", errors_of(&exec));
    }

    fn pod_with_exec() -> String {
        pod("      preStop: {exec: {command: [sh, -c, 'nginx -s quit']}}\n")
    }

    #[test]
    fn hook_mistakes_are_refused_by_field() {
        let cases = [
            (
                "      preStop: {tcpSocket: {port: 8080}}\n",
                "spec.containers[0].lifecycle.preStop.tcpSocket",
            ),
            (
                "      preStop: {sleep: {seconds: 1}, exec: {command: ['true']}}\n",
                "spec.containers[0].lifecycle.preStop",
            ),
            (
                "      postStart: {exec: {command: []}}\n",
                "spec.containers[0].lifecycle.postStart.exec.command",
            ),
            (
                "      preStop: {sleep: {seconds: 0}}\n",
                "spec.containers[0].lifecycle.preStop.sleep.seconds",
            ),
            (
                "      postStart: {httpGet: {port: admin}}\n",
                "spec.containers[0].lifecycle.postStart.httpGet.port",
            ),
        ];
        for (lifecycle, field) in cases {
            let errors = errors_of(&pod(lifecycle));
            assert!(
                errors.iter().any(|(f, _)| f == field),
                "{field}: {errors:?}"
            );
        }
        let init = pod_with_exec().replace("  containers:\n", "  initContainers:\n");
        let init = format!("{init}  containers:\n  - name: app\n    command: [app]\n");
        let errors = errors_of(&init);
        assert!(
            errors
                .iter()
                .any(|(f, _)| f == "spec.initContainers[0].lifecycle"),
            "{errors:?}"
        );
    }
}
