//! [`ContainerEngine`] on the Docker Engine API over a unix socket (Docker, or Podman's
//! Docker-compatible service), and finding that socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, ContainerSummaryStateEnum, HostConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::engine::{
    ContainerEngine, ContainerState, CreatePlan, EngineError, EngineFuture, ExecOutput,
    ListedContainer, LogStream, EXEC_OUTPUT_MAX,
};
use super::plan::{CONTAINER_LABEL, NODE_LABEL, POD_UID_LABEL, RUN_LABEL};

/// Seconds an engine call may take before it counts as unanswered (waits and pulls only
/// count until the engine's first answer).
const CALL_TIMEOUT_SECONDS: u64 = 120;

/// The Engine API version spoken: Docker 20.10 and later and Podman's compatible API all
/// serve it, so no negotiation round trip is needed (each `/version` call costs the engine
/// about 10 ms, which delays the node's registration).
const API_VERSION: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// Sockets tried, in order, when none is configured.
const USUAL_SOCKETS: [&str; 3] = [
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/podman/podman.sock",
];

/// A Docker Engine API client.
pub struct DockerEngine {
    docker: Docker,
}

/// A connected engine and its version string (`docker://28.2.2`).
pub struct Connected {
    /// The engine.
    pub engine: Arc<dyn ContainerEngine>,
    /// Name and version.
    pub runtime: String,
    /// The socket used.
    pub socket: PathBuf,
}

fn unix_path(host: &str) -> Option<PathBuf> {
    host.strip_prefix("unix://").map(PathBuf::from)
}

/// The sockets to try: the configured one only, else `DOCKER_HOST`, `CONTAINER_HOST`
/// (Podman's), the usual system paths and the user's Podman socket.
pub fn candidate_sockets(
    configured: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    if let Some(path) = configured {
        return vec![path.to_path_buf()];
    }
    let mut candidates: Vec<PathBuf> = ["DOCKER_HOST", "CONTAINER_HOST"]
        .iter()
        .filter_map(|var| env(var).and_then(|v| unix_path(&v)))
        .collect();
    candidates.extend(USUAL_SOCKETS.iter().map(PathBuf::from));
    if let Some(runtime_dir) = env("XDG_RUNTIME_DIR") {
        candidates.push(Path::new(&runtime_dir).join("podman/podman.sock"));
    }
    candidates
}

/// Connects to the first candidate socket whose engine answers.
pub async fn connect(configured: Option<&Path>) -> Result<Connected, String> {
    let candidates = candidate_sockets(configured, &|var| std::env::var(var).ok());
    let mut problems = Vec::new();
    for socket in &candidates {
        if !socket.exists() {
            continue;
        }
        match connect_to(socket).await {
            Ok(connected) => return Ok(connected),
            Err(e) => problems.push(format!("{}: {e}", socket.display())),
        }
    }
    if problems.is_empty() {
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        Err(format!(
            "no container engine socket at {}; set --container-engine-socket",
            looked.join(", ")
        ))
    } else {
        Err(problems.join("; "))
    }
}

async fn connect_to(socket: &Path) -> Result<Connected, String> {
    let path = socket.to_string_lossy();
    let docker = Docker::connect_with_unix(&path, CALL_TIMEOUT_SECONDS, &API_VERSION)
        .map_err(|e| e.to_string())?;
    let version = docker.version().await.map_err(|e| e.to_string())?;
    let podman = version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"));
    let runtime = format!(
        "{}://{}",
        if podman { "podman" } else { "docker" },
        version.version.unwrap_or_default()
    );
    Ok(Connected {
        engine: Arc::new(DockerEngine { docker }),
        runtime,
        socket: socket.to_path_buf(),
    })
}

fn engine_error(e: BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404, ..
        } => EngineError::NoSuchContainer,
        BollardError::DockerResponseServerError {
            status_code: 409, ..
        } => EngineError::NameInUse,
        BollardError::DockerResponseServerError { message, .. } => EngineError::Other(message),
        BollardError::RequestTimeoutError => EngineError::Timeout,
        other => EngineError::Other(other.to_string()),
    }
}

fn create_body(plan: &CreatePlan) -> ContainerCreateBody {
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &plan.ports {
        if let Some(host_port) = port.host_port {
            port_bindings.insert(
                port.container.clone(),
                Some(vec![PortBinding {
                    host_ip: None,
                    host_port: Some(host_port.to_string()),
                }]),
            );
        }
    }
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        entrypoint: plan.entrypoint.clone(),
        cmd: plan.cmd.clone(),
        env: Some(plan.env.clone()),
        working_dir: plan.working_dir.clone(),
        user: plan.user.clone(),
        hostname: plan.hostname.clone(),
        labels: Some(plan.labels.clone().into_iter().collect()),
        exposed_ports: (!plan.ports.is_empty())
            .then(|| plan.ports.iter().map(|p| p.container.clone()).collect()),
        host_config: Some(HostConfig {
            memory: plan.memory_bytes,
            memory_swap: plan.memory_bytes,
            nano_cpus: plan.nano_cpus,
            privileged: Some(plan.privileged),
            network_mode: plan.host_network.then(|| "host".to_string()),
            binds: (!plan.binds.is_empty()).then(|| plan.binds.clone()),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            readonly_rootfs: plan.read_only_root.then_some(true),
            cap_add: (!plan.cap_add.is_empty()).then(|| plan.cap_add.clone()),
            cap_drop: (!plan.cap_drop.is_empty()).then(|| plan.cap_drop.clone()),
            security_opt: (!plan.security_opt.is_empty()).then(|| plan.security_opt.clone()),
            group_add: (!plan.group_add.is_empty()).then(|| plan.group_add.clone()),
            // The agent applies the pod's restartPolicy itself.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

impl ContainerEngine for DockerEngine {
    fn pull<'a>(&'a self, image: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let options = CreateImageOptions {
                from_image: Some(image.to_string()),
                ..CreateImageOptions::default()
            };
            let mut progress = self.docker.create_image(Some(options), None, None);
            while let Some(step) = progress.next().await {
                step.map_err(|e| match e {
                    BollardError::DockerStreamError { error } => EngineError::Other(error),
                    other => engine_error(other),
                })?;
            }
            Ok(())
        })
    }

    fn create<'a>(&'a self, plan: &'a CreatePlan) -> EngineFuture<'a, String> {
        Box::pin(async move {
            let options = CreateContainerOptions {
                name: Some(plan.name.clone()),
                ..CreateContainerOptions::default()
            };
            match self
                .docker
                .create_container(Some(options), create_body(plan))
                .await
            {
                Ok(created) => Ok(created.id),
                // Creating answers 404 only for the image.
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => Err(EngineError::NoSuchImage),
                Err(e) => Err(engine_error(e)),
            }
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.docker
                .start_container(id, None)
                .await
                .map_err(engine_error)
        })
    }

    fn wait<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let mut waiting = self.docker.wait_container(id, None);
            match waiting.next().await {
                // A non-zero exit arrives as an error carrying the code: still an end.
                Some(Ok(_)) | Some(Err(BollardError::DockerContainerWaitError { .. })) | None => {
                    Ok(())
                }
                Some(Err(e)) => Err(engine_error(e)),
            }
        })
    }

    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ContainerState> {
        Box::pin(async move {
            let found = self
                .docker
                .inspect_container(id, None)
                .await
                .map_err(engine_error)?;
            let state = found.state.unwrap_or_default();
            Ok(ContainerState {
                running: matches!(
                    state.status,
                    Some(ContainerStateStatusEnum::RUNNING)
                        | Some(ContainerStateStatusEnum::RESTARTING)
                        | Some(ContainerStateStatusEnum::PAUSED)
                ),
                exit_code: state.exit_code.unwrap_or(0).clamp(0, 255) as i32,
                oom_killed: state.oom_killed.unwrap_or(false),
            })
        })
    }

    fn user_of<'a>(&'a self, id: &'a str) -> EngineFuture<'a, String> {
        Box::pin(async move {
            let found = self
                .docker
                .inspect_container(id, None)
                .await
                .map_err(engine_error)?;
            Ok(found.config.and_then(|c| c.user).unwrap_or_default())
        })
    }

    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> EngineFuture<'a, ExecOutput> {
        Box::pin(async move {
            let created = self
                .docker
                .create_exec(
                    id,
                    bollard::exec::CreateExecOptions {
                        cmd: Some(command.to_vec()),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .map_err(engine_error)?;
            let mut output = Vec::new();
            if let bollard::exec::StartExecResults::Attached {
                output: mut stream, ..
            } = self
                .docker
                .start_exec(&created.id, None)
                .await
                .map_err(engine_error)?
            {
                // Read to the end, keeping the start: the command ends when its output does.
                while let Some(item) = stream.next().await {
                    let bytes = item.map_err(engine_error)?.into_bytes();
                    let room = EXEC_OUTPUT_MAX.saturating_sub(output.len());
                    output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            let inspected = self
                .docker
                .inspect_exec(&created.id)
                .await
                .map_err(engine_error)?;
            Ok(ExecOutput {
                // Still running after its output closed counts as a failure.
                exit_code: inspected.exit_code.unwrap_or(-1),
                output,
            })
        })
    }

    fn address<'a>(&'a self, id: &'a str) -> EngineFuture<'a, Option<std::net::IpAddr>> {
        Box::pin(async move {
            let found = self
                .docker
                .inspect_container(id, None)
                .await
                .map_err(engine_error)?;
            let settings = found.network_settings.unwrap_or_default();
            Ok(settings
                .networks
                .unwrap_or_default()
                .into_values()
                .filter_map(|n| n.ip_address)
                .find_map(|ip| ip.parse().ok()))
        })
    }

    fn stop<'a>(&'a self, id: &'a str, grace_seconds: u32) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let options = StopContainerOptions {
                signal: None,
                t: Some(grace_seconds.min(i32::MAX as u32) as i32),
            };
            self.docker
                .stop_container(id, Some(options))
                .await
                .map_err(engine_error)
        })
    }

    fn kill<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let options = KillContainerOptions {
                signal: "SIGKILL".into(),
            };
            self.docker
                .kill_container(id, Some(options))
                .await
                .map_err(engine_error)
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            };
            self.docker
                .remove_container(id, Some(options))
                .await
                .map_err(engine_error)
        })
    }

    fn list<'a>(&'a self, node: &'a str) -> EngineFuture<'a, Vec<ListedContainer>> {
        Box::pin(async move {
            let options = ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([(
                    "label".to_string(),
                    vec![format!("{NODE_LABEL}={node}")],
                )])),
                ..ListContainersOptions::default()
            };
            let found = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(engine_error)?;
            Ok(found
                .into_iter()
                .filter_map(|c| {
                    let labels = c.labels.unwrap_or_default();
                    Some(ListedContainer {
                        id: c.id?,
                        pod_uid: labels.get(POD_UID_LABEL)?.clone(),
                        container: labels.get(CONTAINER_LABEL)?.clone(),
                        run: labels.get(RUN_LABEL)?.parse().ok()?,
                        running: matches!(
                            c.state,
                            Some(ContainerSummaryStateEnum::RUNNING)
                                | Some(ContainerSummaryStateEnum::RESTARTING)
                                | Some(ContainerSummaryStateEnum::PAUSED)
                        ),
                    })
                })
                .collect())
        })
    }

    fn logs<'a>(&'a self, id: &'a str, tail: Option<u32>, follow: bool) -> LogStream<'a> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
            ..LogsOptions::default()
        };
        Box::pin(
            self.docker
                .logs(id, Some(options))
                .map(|item| item.map(|o| o.into_bytes().to_vec()).map_err(engine_error)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::container::engine::PlannedPort;

    #[test]
    fn configured_socket_is_the_only_candidate() {
        let none = |_: &str| None;
        assert_eq!(
            candidate_sockets(Some(Path::new("/x.sock")), &none),
            vec![PathBuf::from("/x.sock")]
        );
    }

    #[test]
    fn environment_sockets_come_before_the_usual_paths() {
        let env = |var: &str| match var {
            "DOCKER_HOST" => Some("unix:///custom/docker.sock".to_string()),
            "CONTAINER_HOST" => Some("tcp://10.0.0.1:2375".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_string()),
            _ => None,
        };
        let candidates = candidate_sockets(None, &env);
        assert_eq!(candidates[0], PathBuf::from("/custom/docker.sock"));
        assert_eq!(candidates[1], PathBuf::from("/run/docker.sock"));
        assert_eq!(
            candidates.last(),
            Some(&PathBuf::from("/run/user/1000/podman/podman.sock"))
        );
    }

    #[test]
    fn create_body_turns_off_engine_restarts_and_publishes_host_ports() {
        let plan = CreatePlan {
            name: "n".into(),
            image: "img:1".into(),
            memory_bytes: Some(1 << 26),
            host_network: false,
            ports: vec![
                PlannedPort {
                    container: "80/tcp".into(),
                    host_port: Some(8080),
                },
                PlannedPort {
                    container: "53/udp".into(),
                    host_port: None,
                },
            ],
            ..CreatePlan::default()
        };
        let body = create_body(&plan);
        let host = body.host_config.unwrap();
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        assert_eq!(host.memory_swap, Some(1 << 26));
        let bindings = host.port_bindings.unwrap();
        assert_eq!(bindings.len(), 1);
        assert_eq!(
            bindings["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        assert_eq!(body.exposed_ports.unwrap().len(), 2);
        assert_eq!(host.network_mode, None);
    }
}
