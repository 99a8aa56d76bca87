//! The Drover agent: registers its node with the controller over MQTT and keeps it alive.
//! Used by the `drover-agent` binary and embedded in `drover server`.

pub mod backoff;
pub mod config;
pub mod config_file;
pub mod credentials;
pub mod data_lock;
pub mod enroll;
pub mod identity;
pub mod link;
pub mod logging;
pub mod name_held;
pub mod pod_paths;
pub mod private_fs;
pub mod service;
pub mod sysinfo;
pub mod tls;

use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use drover_proto::manifest::is_dns_subdomain;
use drover_proto::msg::NodeInfo;

pub use config::AgentConfig;
pub use name_held::{NameHeld, EXIT_NAME_HELD};

/// The agent's version, reported at registration.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Resolves the node name: the flag, else the hostname; it must be an RFC 1123 subdomain.
pub fn node_name(config: &AgentConfig) -> anyhow::Result<String> {
    let name = match &config.node_name {
        Some(name) => name.clone(),
        None => sysinfo::hostname(Path::new("/"))
            .context("cannot read the hostname; set --node-name")?,
    };
    if !is_dns_subdomain(&name) {
        bail!("node name \"{name}\" is not a valid RFC 1123 subdomain (lowercase letters, digits, '-', '.'); set --node-name");
    }
    Ok(name)
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let Some(broker) = &config.broker else {
        bail!(
            "no broker: set --broker, DROVER_BROKER, or broker in {}",
            config.config.display()
        );
    };
    let broker = config::BrokerAddress::parse(broker)?;
    let name = node_name(&config)?;
    // emptyDir volumes keep the modes their pods need.
    private_fs::secure_data_dir(&config.data_dir, &["volumes"]).with_context(|| {
        format!(
            "cannot make the data directory {} private (0700)",
            config.data_dir.display()
        )
    })?;
    // Before anything in the directory is read or counted: a second agent there exits here.
    let _data_dir_lock = data_lock::lock(&config.data_dir)?;
    // It stood down for another agent running as this node: it only makes sure that
    // nothing of the node's runs here (a stand-down cut short), and exits.
    let held = name_held::check(&config.data_dir).err();
    let credentials = credentials_for(&config, &broker, &name).await?;
    let identity =
        identity::Identity::load_and_count_start(&config.data_dir).with_context(|| {
            format!(
                "cannot load the node identity from {}",
                config.data_dir.display()
            )
        })?;
    let facts = sysinfo::read_facts(Path::new("/"));
    // Tells this process apart from a second agent with a copy of this data directory.
    let agent_instance = u64::from_le_bytes(
        drover_proto::random::random_bytes::<8>().context("cannot draw the agent's instance id")?,
    );
    // Registration and process pods do not wait for the container engine: it is looked
    // for meanwhile, and the node's description is sent again once it is known.
    let info = NodeInfo {
        name,
        uid: identity.uid,
        labels: config.labels.clone(),
        architecture: facts.architecture,
        operating_system: std::env::consts::OS.to_string(),
        kernel_version: facts.kernel_version,
        os_image: facts.os_image,
        model: facts.model,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: facts.memory_bytes,
        agent_version: VERSION.to_string(),
        boot_id: facts.boot_id,
        addresses: link::local_address_towards(&broker).into_iter().collect(),
        heartbeat_interval_ms: config.heartbeat_interval.as_millis() as u64,
        container_runtime: String::new(),
        container_runtime_problem: String::new(),
        disk_pressure: false,
        agent_instance,
    };
    tracing::info!(node = %info.name, uid = %info.uid, start = identity.starts, "agent starting");
    let (outbound, outbound_rx) = tokio::sync::mpsc::unbounded_channel();
    let (pod_inputs, pod_inputs_rx) = tokio::sync::mpsc::channel(1024);
    let cgroups = runtime::cgroup::Cgroups::detect(Path::new("/"));
    let mut stop_pods_on_exit = config.stop_pods_on_exit;
    if !stop_pods_on_exit
        && cgroups.restart_needs_stopped_pods(std::env::var_os("INVOCATION_ID").is_some())
    {
        tracing::warn!("systemd started the agent at the root of its cgroup (DelegateSubgroup=agent needs systemd 254 or later): pods left running would keep systemd from starting the agent again, so process pods stop with the agent (as with --stop-pods-on-exit); with this systemd, also set KillMode=mixed");
        stop_pods_on_exit = true;
    }
    let keeper = PathBuf::from("/proc/self/exe");
    let keeper = if stop_pods_on_exit {
        // Pods that stop with the agent need no keeper: as its children they die with it.
        None
    } else if runtime::keeper::can_keep(&keeper) {
        Some(keeper)
    } else {
        tracing::warn!("this agent's binary cannot be started again here (an emulator?): process pods run as the agent's children and stop with it");
        stop_pods_on_exit = true;
        None
    };
    let pods = pods::PodManager::start(
        pods::PodSettings {
            node: info.name.clone(),
            data_dir: config.data_dir.clone(),
            backoff: supervisor::BackoffPolicy {
                initial: config.crash_backoff_initial,
                max: config.crash_backoff_max,
                reset_after: config.crash_backoff_reset,
            },
            log_max_bytes: config.container_log_max_size,
            cgroups,
            engine: runtime::container::EngineSlot::Discovering,
            keeper,
            stop_pods_on_exit,
            max_finished_pods: config.max_finished_pods,
            max_finished_age: config.max_finished_age,
            standing_down: held.is_some(),
        },
        outbound,
    )
    .context("cannot start the pod manager")?;
    let (info_updates, info_watch) = tokio::sync::watch::channel(info.clone());
    tokio::spawn(disk::watch_pressure(
        config.data_dir.clone(),
        config.min_free_disk,
        info_updates.clone(),
        pod_inputs.clone(),
    ));
    tokio::spawn(find_engine(
        config.container_engine_socket.clone(),
        info.name.clone(),
        info_updates,
        pod_inputs.clone(),
    ));
    if config.notify_service {
        // Serving: the stored pods run (with or without the broker).
        service::ready(&format!(
            "node {}: running the stored pods; connecting to {broker}",
            info.name
        ));
        service::spawn_watchdog();
    }
    let applied_generation = pods.stored_generation();
    let stand_down = pod_inputs.clone();
    let (stop_pods, pods_stopping) = tokio::sync::watch::channel(false);
    let mut pods_stopping_rx = pods_stopping.clone();
    let pod_task = tokio::spawn(pods.run(pod_inputs_rx, async move {
        let _ = pods_stopping_rx.wait_for(|s| *s).await;
    }));
    if let Some(held) = held {
        tracing::error!("{held}");
        let _ = stand_down.send(pods::PodInput::StandDown).await;
        drop(stand_down);
        let _ = pod_task.await;
        return Err(held.into());
    }
    let end = link::run(
        link::LinkSettings {
            broker,
            credentials,
            info: info_watch,
            agent_start: identity.starts,
            applied_generation,
            heartbeat_interval: config.heartbeat_interval,
            reconnect_backoff_max: config.reconnect_backoff_max,
            notify_service: config.notify_service,
            name_held_timeout: config.name_held_timeout,
        },
        pod_inputs,
        outbound_rx,
        Default::default(),
        shutdown,
    )
    .await;
    if config.notify_service {
        service::stopping();
    }
    if let link::LinkEnd::Refused(reason) = end {
        // Its pods are the other agent's to run: this one stops them, and keeps nothing to
        // start again, before it exits. The mark comes first: a stand-down cut short (a
        // power loss, SIGKILL) is finished at the next start.
        let held = name_held::mark(&config.data_dir, &reason);
        let _ = stand_down.send(pods::PodInput::StandDown).await;
        drop(stand_down);
        let _ = pod_task.await;
        return Err(held.into());
    }
    drop(stand_down);
    drop(pods_stopping);
    let _ = stop_pods.send(true);
    let _ = pod_task.await;
    Ok(())
}

/// The node's stored credentials, or new ones from enrolling with the configured token.
async fn credentials_for(
    config: &AgentConfig,
    broker: &config::BrokerAddress,
    name: &str,
) -> anyhow::Result<credentials::Credentials> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let stored = credentials::Credentials::load(&config.data_dir)?;
    if let Some(stored) = stored {
        if stored.node != name {
            bail!(
                "{} holds the credentials of node \"{}\", not \"{name}\": run with --node-name {} or another --data-dir",
                config.data_dir.display(),
                stored.node,
                stored.node
            );
        }
        return Ok(stored);
    }
    let Some(token) = &config.token else {
        bail!(
            "node \"{name}\" is not enrolled: start it once with --token TOKEN (or DROVER_TOKEN); `drover token create` on the controller prints one"
        );
    };
    let token: drover_proto::token::JoinToken = token.parse()?;
    tracing::info!(node = name, token = %token.id, "enrolling");
    let enrolled = enroll::enroll(
        broker,
        &token,
        name,
        &config.data_dir,
        config.reconnect_backoff_max,
    )
    .await?;
    // What an earlier enrollment stored says nothing now; an empty desired state at the
    // controller's floor makes the agent refuse any older snapshot, also after a restart.
    pods::Records::open(&config.data_dir)?.start_over(enrolled.generation_floor)?;
    Ok(enrolled.credentials)
}

/// Looks for the container engine and lists its containers for this node; tells the pod
/// manager, and updates the node's description.
async fn find_engine(
    socket: Option<std::path::PathBuf>,
    node: String,
    info: tokio::sync::watch::Sender<NodeInfo>,
    pods: tokio::sync::mpsc::Sender<pods::PodInput>,
) {
    use runtime::container::EngineSlot;
    let (slot, runtime) = runtime::container::discover(socket.as_deref()).await;
    let listed = match &slot {
        EngineSlot::Available(engine) => match engine.list(&node).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the node's containers; running ones cannot be re-adopted");
                Vec::new()
            }
        },
        EngineSlot::Discovering | EngineSlot::Missing(_) => Vec::new(),
    };
    let problem = match &slot {
        EngineSlot::Missing(why) => why.clone(),
        EngineSlot::Discovering | EngineSlot::Available(_) => String::new(),
    };
    info.send_modify(|info| {
        info.container_runtime = runtime;
        info.container_runtime_problem = problem;
    });
    let _ = pods.send(pods::PodInput::Engine { slot, listed }).await;
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
pub mod clock;
pub mod disk;
pub mod pods;
pub mod prober;
pub mod runtime;
pub mod supervisor;
