//! `securityContext` beyond the user and group: which settings hold for a pod, which the
//! runtime can enforce (the engine enforces all; host processes only some), and what the
//! agent is sent.

use serde::{Deserialize, Serialize};

use super::types::{Container, ContainerSecurityContext, PodSecurityContext, PodSpec};
use crate::msg::WireSecurity;

/// `capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capabilities {
    /// Capabilities added, as `NET_ADMIN` (or `CAP_NET_ADMIN`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Capabilities dropped; `ALL` drops every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// `seccompProfile`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeccompProfile {
    /// `RuntimeDefault`, `Unconfined` or `Localhost`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A profile file on the node (`Localhost`): not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

/// `appArmorProfile`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppArmorProfile {
    /// `RuntimeDefault`, `Unconfined` or `Localhost`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A profile loaded on the node (`Localhost`): not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

/// The two confinement profiles a securityContext names, at pod or container level.
#[derive(Clone, Copy)]
enum Profile {
    Seccomp,
    AppArmor,
}

/// A profile as written: its `type`, and whether it names a `localhostProfile`.
type Written<'a> = Option<(&'a str, bool)>;

impl Profile {
    const ALL: [Profile; 2] = [Profile::Seccomp, Profile::AppArmor];

    fn field(self) -> &'static str {
        match self {
            Profile::Seccomp => "seccompProfile",
            Profile::AppArmor => "appArmorProfile",
        }
    }

    fn in_container(self, s: &ContainerSecurityContext) -> Written<'_> {
        match self {
            Profile::Seccomp => s
                .seccomp_profile
                .as_ref()
                .map(|p| (p.kind.as_str(), p.localhost_profile.is_some())),
            Profile::AppArmor => s
                .app_armor_profile
                .as_ref()
                .map(|p| (p.kind.as_str(), p.localhost_profile.is_some())),
        }
    }

    fn in_pod(self, s: &PodSecurityContext) -> Written<'_> {
        match self {
            Profile::Seccomp => s
                .seccomp_profile
                .as_ref()
                .map(|p| (p.kind.as_str(), p.localhost_profile.is_some())),
            Profile::AppArmor => s
                .app_armor_profile
                .as_ref()
                .map(|p| (p.kind.as_str(), p.localhost_profile.is_some())),
        }
    }

    /// The type a container runs with: its own, else the pod's.
    fn of<'a>(self, pod: &'a PodSpec, container: &'a Container) -> Option<&'a str> {
        container
            .security_context
            .as_ref()
            .and_then(|s| self.in_container(s))
            .or(pod.security_context.as_ref().and_then(|s| self.in_pod(s)))
            .map(|(kind, _)| kind)
    }
}

fn is_capability_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    !bare.is_empty()
        && bare.len() <= 32
        && bare
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks the security settings of the pod (at `path`, its spec) and of each container.
/// `in_engine`: the pod runs in the container engine, which enforces every setting; host
/// processes refuse what the agent cannot enforce for them.
pub fn validate_security(
    path: &str,
    spec: &PodSpec,
    in_engine: bool,
    errors: &mut Vec<(String, String)>,
) {
    const PROCESSES: &str = "host processes cannot be held to it (the agent enforces runAsUser, runAsGroup, runAsNonRoot and allowPrivilegeEscalation for them); give the pod's containers an image";
    let pod = spec.security_context.clone().unwrap_or_default();
    if !in_engine {
        if pod.fs_group.is_some() {
            errors.push((
                format!("{path}.securityContext.fsGroup"),
                PROCESSES.to_string(),
            ));
        }
        if !pod.supplemental_groups.is_empty() {
            errors.push((
                format!("{path}.securityContext.supplementalGroups"),
                PROCESSES.to_string(),
            ));
        }
    }
    for profile in Profile::ALL {
        if let Some((kind, localhost)) = profile.in_pod(&pod) {
            let at = format!("{path}.securityContext.{}", profile.field());
            check_profile(&at, kind, localhost, errors);
        }
    }
    if let Some(policy) = pod.fs_group_change_policy.as_deref() {
        if policy != "Always" && policy != "OnRootMismatch" {
            errors.push((
                format!("{path}.securityContext.fsGroupChangePolicy"),
                format!("Unsupported value: \"{policy}\": supported values: \"Always\", \"OnRootMismatch\""),
            ));
        }
    }
    for (field, c) in spec.all_containers() {
        let at = format!("{path}.{field}.securityContext");
        let own = c.security_context.clone().unwrap_or_default();
        // Without runAsUser, the agent checks the user the image (or the agent) runs as.
        let non_root = own.run_as_non_root.or(pod.run_as_non_root) == Some(true);
        if non_root && own.run_as_user.or(pod.run_as_user) == Some(0) {
            let field = if own.run_as_user.is_some() {
                format!("{at}.runAsUser")
            } else {
                format!("{path}.securityContext.runAsUser")
            };
            if !errors.iter().any(|(f, _)| *f == field) {
                errors.push((field, "must be non-zero when runAsNonRoot is true".into()));
            }
        }
        if own.allow_privilege_escalation == Some(false) && own.privileged == Some(true) {
            errors.push((
                format!("{at}.allowPrivilegeEscalation"),
                "cannot be false when privileged is true".into(),
            ));
        }
        if let Some(caps) = &own.capabilities {
            for (list, names) in [("add", &caps.add), ("drop", &caps.drop)] {
                for (i, name) in names.iter().enumerate() {
                    if !is_capability_name(name) {
                        errors.push((
                            format!("{at}.capabilities.{list}[{i}]"),
                            format!("invalid capability name \"{name}\""),
                        ));
                    }
                }
            }
            let any = !caps.add.is_empty() || !caps.drop.is_empty();
            if any && !in_engine {
                errors.push((format!("{at}.capabilities"), PROCESSES.to_string()));
            }
        }
        if own.read_only_root_filesystem == Some(true) && !in_engine {
            errors.push((
                format!("{at}.readOnlyRootFilesystem"),
                PROCESSES.to_string(),
            ));
        }
        for profile in Profile::ALL {
            let own_profile = profile.in_container(&own);
            if let Some((kind, localhost)) = own_profile {
                check_profile(
                    &format!("{at}.{}", profile.field()),
                    kind,
                    localhost,
                    errors,
                );
            }
            // Host processes run unconfined: the engine's default profile cannot hold.
            if !in_engine && profile.of(spec, c) == Some("RuntimeDefault") {
                let field = match own_profile {
                    Some(_) => format!("{at}.{}", profile.field()),
                    None => format!("{path}.securityContext.{}", profile.field()),
                };
                if !errors.iter().any(|(f, _)| *f == field) {
                    errors.push((field, PROCESSES.to_string()));
                }
            }
        }
    }
}

/// A seccomp or AppArmor profile: the engine's default or none; a node's own is not
/// supported.
fn check_profile(
    path: &str,
    kind: &str,
    localhost_profile: bool,
    errors: &mut Vec<(String, String)>,
) {
    match kind {
        "RuntimeDefault" | "Unconfined" => {}
        "Localhost" => errors.push((
            format!("{path}.type"),
            "Localhost profiles are not supported (RuntimeDefault or Unconfined)".into(),
        )),
        other => errors.push((
            format!("{path}.type"),
            format!("Unsupported value: \"{other}\": supported values: \"RuntimeDefault\", \"Unconfined\""),
        )),
    }
    if localhost_profile && kind != "Localhost" {
        errors.push((
            format!("{path}.localhostProfile"),
            "may only be set with type Localhost".into(),
        ));
    }
}

/// What the agent is sent of container `c`'s security settings in pod `pod`.
pub fn wire_security(pod: &PodSpec, c: &Container) -> WireSecurity {
    let own = c.security_context.clone().unwrap_or_default();
    let pod_security = pod.security_context.clone().unwrap_or_default();
    let caps = own.capabilities.unwrap_or_default();
    let bare = |names: Vec<String>| {
        names
            .into_iter()
            .map(|n| {
                let upper = n.to_ascii_uppercase();
                upper
                    .strip_prefix("CAP_")
                    .map(str::to_string)
                    .unwrap_or(upper)
            })
            .collect()
    };
    WireSecurity {
        no_new_privileges: own.allow_privilege_escalation == Some(false),
        read_only_root: own.read_only_root_filesystem == Some(true),
        capabilities_add: bare(caps.add),
        capabilities_drop: bare(caps.drop),
        seccomp_unconfined: Profile::Seccomp.of(pod, c) == Some("Unconfined"),
        app_armor_unconfined: Profile::AppArmor.of(pod, c) == Some("Unconfined"),
        groups: pod_security
            .fs_group
            .into_iter()
            .chain(pod_security.supplemental_groups)
            .collect(),
        run_as_non_root: own.run_as_non_root.or(pod_security.run_as_non_root) == Some(true),
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::{parse_manifests, Manifest};

    fn pod(image: bool, pod_security: &str, container_security: &str) -> String {
        let image = if image { "    image: busybox:1\n" } else { "" };
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  securityContext: {pod_security}
  containers:
  - name: c
{image}    command: [id]
    securityContext: {container_security}
"
        )
    }

    fn errors_of(text: &str) -> Vec<(String, String)> {
        match parse_manifests("t.yaml", text) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn the_engine_takes_every_setting_and_the_agent_is_told_them() {
        let text = pod(
            true,
            "{runAsUser: 1000, runAsNonRoot: true, fsGroup: 2000, supplementalGroups: [3000], seccompProfile: {type: RuntimeDefault}}",
            "{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL], add: [CAP_NET_BIND_SERVICE]}}",
        );
        let manifests = parse_manifests("p.yaml", &text).unwrap();
        let Manifest::Pod(secured) = &manifests[0] else {
            panic!("a pod");
        };
        let wire = super::wire_security(&secured.spec, &secured.spec.containers[0]);
        assert!(wire.no_new_privileges && wire.read_only_root && !wire.seccomp_unconfined);
        assert_eq!(wire.capabilities_drop, ["ALL"]);
        assert_eq!(
            wire.capabilities_add,
            ["NET_BIND_SERVICE"],
            "CAP_ is dropped"
        );
        assert_eq!(wire.groups, [2000, 3000], "fsGroup first");
        let unconfined = pod(true, "{seccompProfile: {type: Unconfined}}", "{}");
        let manifests = parse_manifests("p.yaml", &unconfined).unwrap();
        let Manifest::Pod(unconfined) = &manifests[0] else {
            panic!("a pod");
        };
        let wire = super::wire_security(&unconfined.spec, &unconfined.spec.containers[0]);
        assert!(wire.seccomp_unconfined);
    }

    #[test]
    fn host_processes_take_what_the_agent_enforces_and_refuse_the_rest_by_field() {
        let ok = pod(
            false,
            "{runAsUser: 1000, runAsNonRoot: true, seccompProfile: {type: Unconfined}}",
            "{allowPrivilegeEscalation: false}",
        );
        assert!(errors_of(&ok).is_empty(), "{:?}", errors_of(&ok));
        let cases = [
            ("{fsGroup: 2000}", "{}", "spec.securityContext.fsGroup"),
            (
                "{supplementalGroups: [1]}",
                "{}",
                "spec.securityContext.supplementalGroups",
            ),
            (
                "{}",
                "{readOnlyRootFilesystem: true}",
                "spec.containers[0].securityContext.readOnlyRootFilesystem",
            ),
            (
                "{}",
                "{capabilities: {drop: [ALL]}}",
                "spec.containers[0].securityContext.capabilities",
            ),
            (
                "{seccompProfile: {type: RuntimeDefault}}",
                "{}",
                "spec.securityContext.seccompProfile",
            ),
        ];
        for (pod_security, container_security, field) in cases {
            let errors = errors_of(&pod(false, pod_security, container_security));
            assert!(
                errors
                    .iter()
                    .any(|(f, m)| f == field && m.contains("host processes")),
                "{field}: {errors:?}"
            );
        }
    }

    #[test]
    fn what_restricted_templates_carry_is_taken() {
        let text = pod(
            true,
            "{runAsNonRoot: true, runAsUser: 1000, fsGroupChangePolicy: OnRootMismatch, appArmorProfile: {type: RuntimeDefault}}",
            "{capabilities: {drop: [all], add: [net_bind_service]}, appArmorProfile: {type: Unconfined}}",
        );
        let manifests = parse_manifests("p.yaml", &text).unwrap();
        let Manifest::Pod(taken) = &manifests[0] else {
            panic!("a pod");
        };
        let wire = super::wire_security(&taken.spec, &taken.spec.containers[0]);
        assert_eq!(wire.capabilities_drop, ["ALL"], "names are upper-cased");
        assert_eq!(wire.capabilities_add, ["NET_BIND_SERVICE"]);
        assert!(
            wire.app_armor_unconfined,
            "the container's own profile wins"
        );
        let refused = [
            (
                pod(
                    true,
                    "{appArmorProfile: {type: Localhost, localhostProfile: p}}",
                    "{}",
                ),
                "spec.securityContext.appArmorProfile.type",
            ),
            (
                pod(true, "{fsGroupChangePolicy: Sometimes}", "{}"),
                "spec.securityContext.fsGroupChangePolicy",
            ),
            (
                pod(false, "{appArmorProfile: {type: RuntimeDefault}}", "{}"),
                "spec.securityContext.appArmorProfile",
            ),
        ];
        for (text, field) in refused {
            let errors = errors_of(&text);
            assert!(
                errors.iter().any(|(f, _)| f == field),
                "{field}: {errors:?}"
            );
        }
    }

    #[test]
    fn settings_that_cannot_hold_are_refused_by_field() {
        let cases = [
            (
                "{runAsNonRoot: true, runAsUser: 0}",
                "{}",
                "spec.securityContext.runAsUser",
            ),
            (
                "{runAsNonRoot: true}",
                "{runAsUser: 0}",
                "spec.containers[0].securityContext.runAsUser",
            ),
            (
                "{}",
                "{privileged: true, allowPrivilegeEscalation: false}",
                "spec.containers[0].securityContext.allowPrivilegeEscalation",
            ),
            (
                "{}",
                "{capabilities: {add: ['net admin']}}",
                "spec.containers[0].securityContext.capabilities.add[0]",
            ),
            (
                "{seccompProfile: {type: Localhost, localhostProfile: p.json}}",
                "{}",
                "spec.securityContext.seccompProfile.type",
            ),
        ];
        for (pod_security, container_security, field) in cases {
            let errors = errors_of(&pod(true, pod_security, container_security));
            assert!(
                errors.iter().any(|(f, _)| f == field),
                "{field}: {errors:?}"
            );
        }
        // The container's own runAsUser satisfies the pod's runAsNonRoot; without one, the
        // agent checks the user it would run as.
        for (pod_security, container_security) in [
            ("{runAsNonRoot: true}", "{runAsUser: 1000}"),
            ("{runAsNonRoot: true}", "{}"),
        ] {
            let text = pod(true, pod_security, container_security);
            assert!(errors_of(&text).is_empty(), "{:?}", errors_of(&text));
        }
    }
}
