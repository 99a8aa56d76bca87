//! Translating a pod's container into an engine create request, Kubernetes' way: `command`
//! replaces the image's ENTRYPOINT (and drops its CMD), `args` replaces CMD, `$(VAR)`
//! references expand from the container's environment, and the engine's own restart
//! policy stays off because the agent applies the pod's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drover_proto::msg::{DesiredPod, VolumeSource};

use super::engine::{CreatePlan, PlannedPort};
use crate::pod_paths::UnsafeName;
use crate::runtime::env::expand;

/// Label naming the node that owns a container.
pub const NODE_LABEL: &str = "drover.io/node";
/// Label carrying the pod UID.
pub const POD_UID_LABEL: &str = "drover.io/pod-uid";
/// Label carrying `namespace/name` of the pod (for people reading `docker ps`).
pub const POD_LABEL: &str = "drover.io/pod";
/// Label carrying the container's name in the pod.
pub const CONTAINER_LABEL: &str = "drover.io/container";
/// Label carrying the run number (1 for the first start, +1 per restart).
pub const RUN_LABEL: &str = "drover.io/run";

/// Where a container of a pod runs from.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'a> {
    /// The node's name.
    pub node: &'a str,
    /// This run's number.
    pub run: u64,
    /// Root of the pods' emptyDir volumes.
    pub volumes_dir: &'a Path,
}

/// The directory of a pod's emptyDir volume.
pub fn empty_dir(volumes_dir: &Path, pod_uid: &str, volume: &str) -> Result<PathBuf, UnsafeName> {
    crate::pod_paths::pod_entry(volumes_dir, pod_uid, "volume", volume)
}

/// Where `medium: Memory` emptyDirs live: a directory of the node's own tmpfs, which the
/// engine sees as the agent does (a tmpfs the agent mounted itself would not reach an engine
/// outside the agent's mount namespace, as under systemd's ProtectHome), and which outlives
/// each container, unlike an engine tmpfs volume.
pub const MEMORY_VOLUMES_ROOT: &str = "/dev/shm/drover";

/// The directory of a pod's `medium: Memory` emptyDir.
pub fn memory_dir(pod_uid: &str, volume: &str) -> Result<PathBuf, UnsafeName> {
    crate::pod_paths::pod_entry(Path::new(MEMORY_VOLUMES_ROOT), pod_uid, "volume", volume)
}

/// The pod's host name: `spec.hostname`, else its name (cut to a DNS label's 63 bytes).
pub fn pod_hostname(pod: &DesiredPod) -> String {
    match &pod.hostname {
        Some(hostname) => hostname.clone(),
        None => pod.name.chars().take(63).collect(),
    }
}

/// The engine name of one run of a container: unique per pod UID and run.
pub fn container_name(pod: &DesiredPod, container: &str, run: u64) -> String {
    let uid: String = pod.uid.chars().filter(|c| *c != '-').take(12).collect();
    format!(
        "drover_{container}_{}_{}_{uid}_{run}",
        pod.name, pod.namespace
    )
}

/// The create request of run `ctx.run` of container `index`.
pub fn plan(pod: &DesiredPod, index: usize, ctx: PlanContext) -> Result<CreatePlan, String> {
    let container = pod
        .container(index)
        .ok_or_else(|| format!("the pod has no container number {index}"))?;
    let image = container
        .image
        .clone()
        .ok_or_else(|| format!("container {} has no image", container.name))?;
    let mut env_pairs = vec![
        ("DROVER_POD_NAME".to_string(), pod.name.clone()),
        ("DROVER_POD_NAMESPACE".to_string(), pod.namespace.clone()),
        ("DROVER_POD_UID".to_string(), pod.uid.clone()),
        ("DROVER_NODE_NAME".to_string(), ctx.node.to_string()),
    ];
    env_pairs.extend(container.env.iter().cloned());
    let expand_all =
        |words: &[String]| -> Vec<String> { words.iter().map(|w| expand(w, &env_pairs)).collect() };
    let (entrypoint, cmd) = match (container.command.is_empty(), container.args.is_empty()) {
        (true, true) => (None, None),
        (true, false) => (None, Some(expand_all(&container.args))),
        // An explicit (possibly empty) CMD: the image's CMD belongs to its ENTRYPOINT.
        (false, _) => (
            Some(expand_all(&container.command)),
            Some(expand_all(&container.args)),
        ),
    };
    let user = match (container.run_as_user, container.run_as_group) {
        (Some(uid), Some(gid)) => Some(format!("{uid}:{gid}")),
        (Some(uid), None) => Some(uid.to_string()),
        (None, Some(_)) => {
            return Err(
                "runAsGroup without runAsUser cannot be expressed to the container engine; set runAsUser too".into(),
            )
        }
        (None, None) => None,
    };
    let mut binds = Vec::new();
    for mount in &container.mounts {
        let volume = pod
            .volumes
            .iter()
            .find(|v| v.name == mount.volume)
            .ok_or_else(|| format!("no volume named \"{}\" in the pod", mount.volume))?;
        let source = match &volume.source {
            VolumeSource::HostPath { path, .. } => path.clone(),
            VolumeSource::EmptyDir => empty_dir(ctx.volumes_dir, &pod.uid, &volume.name)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned(),
            VolumeSource::MemoryDir => memory_dir(&pod.uid, &volume.name)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned(),
        };
        let mut bind = format!("{source}:{}", mount.path);
        if mount.read_only {
            bind.push_str(":ro");
        }
        binds.push(bind);
    }
    let ports = if pod.host_network {
        // With the host's network the ports are the host's already.
        Vec::new()
    } else {
        container
            .ports
            .iter()
            .map(|p| PlannedPort {
                container: format!("{}/{}", p.container_port, if p.udp { "udp" } else { "tcp" }),
                host_port: p.host_port,
            })
            .collect()
    };
    let labels = BTreeMap::from([
        (NODE_LABEL.to_string(), ctx.node.to_string()),
        (POD_UID_LABEL.to_string(), pod.uid.clone()),
        (
            POD_LABEL.to_string(),
            format!("{}/{}", pod.namespace, pod.name),
        ),
        (CONTAINER_LABEL.to_string(), container.name.clone()),
        (RUN_LABEL.to_string(), ctx.run.to_string()),
    ]);
    Ok(CreatePlan {
        name: container_name(pod, &container.name, ctx.run),
        image,
        entrypoint,
        cmd,
        env: env_pairs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: container.working_dir.clone(),
        user,
        hostname: if pod.host_network {
            None
        } else {
            Some(pod_hostname(pod))
        },
        labels,
        memory_bytes: container
            .memory_limit_bytes
            .map(|b| b.min(i64::MAX as u64) as i64),
        nano_cpus: container
            .cpu_limit_millis
            .map(|m| m.saturating_mul(1_000_000).min(i64::MAX as u64) as i64),
        privileged: container.privileged,
        host_network: pod.host_network,
        binds,
        ports,
        read_only_root: container.security.read_only_root,
        cap_add: container.security.capabilities_add.clone(),
        cap_drop: container.security.capabilities_drop.clone(),
        security_opt: [
            (container.security.no_new_privileges, "no-new-privileges"),
            (container.security.seccomp_unconfined, "seccomp=unconfined"),
            (
                container.security.app_armor_unconfined,
                "apparmor=unconfined",
            ),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, option)| option.to_string())
        .collect(),
        group_add: container
            .security
            .groups
            .iter()
            .map(u32::to_string)
            .collect(),
        run_as_non_root: container.security.run_as_non_root,
    })
}

#[cfg(test)]
mod tests {
    use drover_proto::msg::{DesiredContainer, DesiredVolume, WireMount, WirePort};

    use super::*;

    fn pod(container: DesiredContainer) -> DesiredPod {
        DesiredPod {
            uid: "0a1b2c3d-4e5f-6789-abcd-ef0123456789".into(),
            namespace: "default".into(),
            name: "web".into(),
            containers: vec![container],
            volumes: vec![
                DesiredVolume {
                    name: "logs".into(),
                    source: VolumeSource::HostPath {
                        path: "/var/log".into(),
                        kind: "Directory".into(),
                    },
                },
                DesiredVolume {
                    name: "scratch".into(),
                    source: VolumeSource::EmptyDir,
                },
            ],
            ..DesiredPod::default()
        }
    }

    fn image_container() -> DesiredContainer {
        DesiredContainer {
            name: "app".into(),
            image: Some("busybox:1".into()),
            ..DesiredContainer::default()
        }
    }

    fn ctx() -> PlanContext<'static> {
        PlanContext {
            node: "pi-1",
            run: 3,
            volumes_dir: Path::new("/data/volumes"),
        }
    }

    fn words(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn command_and_args_follow_kubernetes_meaning() {
        type Case = (
            &'static [&'static str],
            &'static [&'static str],
            Option<Vec<String>>,
            Option<Vec<String>>,
        );
        let cases: [Case; 4] = [
            // Neither: the image's ENTRYPOINT and CMD.
            (&[], &[], None, None),
            // args only: the image's ENTRYPOINT with new arguments.
            (&[], &["-c", "echo"], None, words(&["-c", "echo"])),
            // command only: the image's CMD is dropped.
            (&["sleep"], &[], words(&["sleep"]), words(&[])),
            (
                &["sh"],
                &["-c", "true"],
                words(&["sh"]),
                words(&["-c", "true"]),
            ),
        ];
        for (command, args, entrypoint, cmd) in cases {
            let container = DesiredContainer {
                command: command.iter().map(|s| s.to_string()).collect(),
                args: args.iter().map(|s| s.to_string()).collect(),
                ..image_container()
            };
            let plan = plan(&pod(container), 0, ctx()).unwrap();
            assert_eq!(plan.entrypoint, entrypoint, "{command:?} {args:?}");
            assert_eq!(plan.cmd, cmd, "{command:?} {args:?}");
        }
    }

    #[test]
    fn variable_references_expand_from_the_environment() {
        let container = DesiredContainer {
            command: vec![
                "echo".into(),
                "$(GREETING) $(DROVER_NODE_NAME) $$(X)".into(),
            ],
            env: vec![("GREETING".into(), "hi".into())],
            ..image_container()
        };
        let plan = plan(&pod(container), 0, ctx()).unwrap();
        assert_eq!(plan.entrypoint, words(&["echo", "hi pi-1 $(X)"]));
        assert!(plan.env.contains(&"GREETING=hi".to_string()));
        assert!(plan.env.contains(&"DROVER_POD_NAME=web".to_string()));
    }

    #[test]
    fn user_combines_run_as_user_and_group() {
        for (uid, gid, expected) in [
            (None, None, Ok(None)),
            (Some(1000), None, Ok(Some("1000".to_string()))),
            (Some(1000), Some(50), Ok(Some("1000:50".to_string()))),
        ] {
            let container = DesiredContainer {
                run_as_user: uid,
                run_as_group: gid,
                ..image_container()
            };
            assert_eq!(
                plan(&pod(container), 0, ctx()).map(|p| p.user),
                expected,
                "{uid:?} {gid:?}"
            );
        }
        let group_only = DesiredContainer {
            run_as_group: Some(5),
            ..image_container()
        };
        assert!(plan(&pod(group_only), 0, ctx())
            .unwrap_err()
            .contains("runAsUser"));
    }

    #[test]
    fn limits_become_engine_units() {
        let container = DesiredContainer {
            memory_limit_bytes: Some(64 << 20),
            cpu_limit_millis: Some(250),
            ..image_container()
        };
        let plan = plan(&pod(container), 0, ctx()).unwrap();
        assert_eq!(plan.memory_bytes, Some(64 << 20));
        assert_eq!(plan.nano_cpus, Some(250_000_000));
    }

    #[test]
    fn volumes_become_binds() {
        let container = DesiredContainer {
            mounts: vec![
                WireMount {
                    volume: "logs".into(),
                    path: "/host/logs".into(),
                    read_only: true,
                },
                WireMount {
                    volume: "scratch".into(),
                    path: "/scratch".into(),
                    read_only: false,
                },
            ],
            ..image_container()
        };
        let plan = plan(&pod(container), 0, ctx()).unwrap();
        assert_eq!(
            plan.binds,
            vec![
                "/var/log:/host/logs:ro".to_string(),
                "/data/volumes/0a1b2c3d-4e5f-6789-abcd-ef0123456789/scratch:/scratch".to_string(),
            ]
        );
    }

    #[test]
    fn ports_publish_host_ports_unless_on_the_host_network() {
        let container = DesiredContainer {
            ports: vec![
                WirePort {
                    container_port: 80,
                    host_port: Some(8080),
                    udp: false,
                },
                WirePort {
                    container_port: 53,
                    host_port: None,
                    udp: true,
                },
            ],
            ..image_container()
        };
        let bridged = plan(&pod(container.clone()), 0, ctx()).unwrap();
        assert_eq!(
            bridged.ports,
            vec![
                PlannedPort {
                    container: "80/tcp".into(),
                    host_port: Some(8080)
                },
                PlannedPort {
                    container: "53/udp".into(),
                    host_port: None
                },
            ]
        );
        assert_eq!(bridged.hostname.as_deref(), Some("web"));
        let mut host = pod(container);
        host.host_network = true;
        let on_host = plan(&host, 0, ctx()).unwrap();
        assert!(on_host.host_network);
        assert!(on_host.ports.is_empty());
        assert_eq!(on_host.hostname, None);
    }

    #[test]
    fn hostname_is_the_pods_unless_set() {
        let mut indexed = pod(image_container());
        indexed.hostname = Some("train-3".into());
        assert_eq!(
            plan(&indexed, 0, ctx()).unwrap().hostname.as_deref(),
            Some("train-3")
        );
    }

    #[test]
    fn labels_and_name_identify_node_pod_container_and_run() {
        let plan = plan(&pod(image_container()), 0, ctx()).unwrap();
        assert_eq!(plan.name, "drover_app_web_default_0a1b2c3d4e5f_3");
        assert_eq!(plan.labels[NODE_LABEL], "pi-1");
        assert_eq!(
            plan.labels[POD_UID_LABEL],
            "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
        );
        assert_eq!(plan.labels[CONTAINER_LABEL], "app");
        assert_eq!(plan.labels[RUN_LABEL], "3");
        assert_eq!(plan.labels[POD_LABEL], "default/web");
    }

    #[test]
    fn privileged_and_working_dir_carry_over() {
        let container = DesiredContainer {
            privileged: true,
            working_dir: Some("/srv".into()),
            ..image_container()
        };
        let plan = plan(&pod(container), 0, ctx()).unwrap();
        assert!(plan.privileged);
        assert_eq!(plan.working_dir.as_deref(), Some("/srv"));
    }
}
