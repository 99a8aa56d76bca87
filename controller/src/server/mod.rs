//! `drover server`: store, broker (embedded or external), control loop, HTTP API and the
//! local agent, in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use drover_agent::config::{parse_duration, parse_label, BrokerAddress};
use drover_agent::AgentConfig;
use tokio::sync::mpsc;
use tracing::info;

use crate::control::{Control, ControlSettings};
use crate::metrics::Metrics;
use crate::store::Store;

/// Flags of `drover server`. Each can also be set by its `DROVER_*` environment variable or,
/// without the leading dashes, as a key of the configuration file (flags > environment >
/// file > defaults).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address of the HTTP API the CLI uses
    #[arg(
        long,
        env = "DROVER_API_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:6443"
    )]
    pub api_listen: SocketAddr,

    /// Address of the embedded MQTT broker
    #[arg(
        long,
        env = "DROVER_MQTT_LISTEN",
        value_name = "ADDR",
        default_value = "0.0.0.0:1883"
    )]
    pub mqtt_listen: SocketAddr,

    /// Use this external broker (e.g. mqtt://10.0.0.5:1883) and start none
    #[arg(long, env = "DROVER_BROKER", value_name = "URL")]
    pub broker: Option<String>,

    /// Directory for the store
    #[arg(
        long,
        env = "DROVER_DATA_DIR",
        value_name = "DIR",
        default_value = "/var/lib/drover/server"
    )]
    pub data_dir: PathBuf,

    /// Do not run an agent in the server process
    #[arg(long, env = "DROVER_DISABLE_AGENT")]
    pub disable_agent: bool,

    /// Name of the local agent's node (default: the hostname)
    #[arg(long, env = "DROVER_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,

    /// Label for the local agent's node, repeatable (environment: comma-separated)
    #[arg(
        long = "node-label",
        env = "DROVER_NODE_LABELS",
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        value_parser = parse_label
    )]
    pub node_labels: Vec<(String, String)>,

    /// How long a node may be silent before it is marked Ready=Unknown (e.g. 40s, 3s, 1m)
    #[arg(long, env = "DROVER_NODE_MONITOR_GRACE_PERIOD", value_name = "DURATION", default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,

    /// How long Job pods stay on an unreachable node before they are evicted and replaced
    #[arg(long, env = "DROVER_DEFAULT_UNREACHABLE_TOLERATION", value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub default_unreachable_toleration: Duration,

    /// Delay before replacing a failed Job pod (doubling with each failure)
    #[arg(long, env = "DROVER_JOB_BACKOFF_INITIAL", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub job_backoff_initial: Duration,

    /// Longest delay before replacing a failed Job pod
    #[arg(long, env = "DROVER_JOB_BACKOFF_MAX", value_name = "DURATION", default_value = "6m", value_parser = parse_duration)]
    pub job_backoff_max: Duration,

    /// Heartbeat interval of the local agent
    #[arg(long, env = "DROVER_HEARTBEAT_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Configuration file (TOML; keys are the long flag names); a missing default file is
    /// ignored
    #[arg(
        long,
        env = "DROVER_SERVER_CONFIG",
        value_name = "FILE",
        default_value = "/etc/drover/server.toml"
    )]
    pub config: PathBuf,

    /// Print the effective configuration, with where each value comes from, and exit
    #[arg(long)]
    pub print_config: bool,
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    drover_agent::private_fs::private_dir(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} or make it private (0700)",
            args.data_dir.display()
        )
    })?;
    let store = Store::open(&args.data_dir)
        .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?;

    let (broker, embedded) = match &args.broker {
        Some(url) => {
            let broker = BrokerAddress::parse(url)?;
            if broker.tls {
                anyhow::bail!(
                    "broker {broker}: TLS (mqtts://) is not wired into the controller's session yet; use mqtt://"
                );
            }
            (broker, None)
        }
        None => {
            let embedded = crate::broker::start(args.mqtt_listen).await?;
            info!(listen = %args.mqtt_listen, "embedded MQTT broker listening");
            let host = if args.mqtt_listen.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                args.mqtt_listen.ip().to_string()
            };
            (
                BrokerAddress {
                    tls: false,
                    host,
                    port: args.mqtt_listen.port(),
                    username: None,
                    password: None,
                },
                Some(embedded),
            )
        }
    };

    let metrics = Arc::new(Metrics::default());
    let (inputs, input_rx) = mpsc::channel(4096);
    let logs = crate::logs::LogRouter::default();
    let publisher = crate::mqtt::start(
        broker.clone(),
        format!("drover-controller-{}", std::process::id()),
        inputs.clone(),
        logs.clone(),
    );
    let control = Control::new(
        store,
        publisher.clone(),
        metrics.clone(),
        ControlSettings {
            node_monitor_grace_period: args.node_monitor_grace_period,
            unreachable_toleration: args.default_unreachable_toleration,
            job: crate::reconcile::job::JobSettings {
                backoff_initial: args.job_backoff_initial,
                backoff_max: args.job_backoff_max,
            },
        },
        Utc::now(),
    )?;
    let control_task = tokio::spawn(crate::control::run(control, input_rx));

    let listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("cannot listen for the API on {}", args.api_listen))?;
    info!(listen = %args.api_listen, "API listening");
    let app = crate::api::router(inputs, metrics, publisher, logs);
    let api_task = tokio::spawn(async move { axum::serve(listener, app).await });

    let (stop_agent, agent_stopped) = tokio::sync::watch::channel(false);
    let mut agent_task = if args.disable_agent {
        None
    } else {
        let mut labels = vec![(
            "node-role.kubernetes.io/control-plane".to_string(),
            "true".to_string(),
        )];
        labels.extend(args.node_labels.clone());
        // With the password: the local agent logs in to an external broker as the server does.
        let mut config = AgentConfig::defaults(&broker.to_url_with_password())?;
        config.node_name = args.node_name.clone();
        config.data_dir = args.data_dir.join("agent");
        config.labels = labels;
        config.heartbeat_interval = args.heartbeat_interval;
        config.reconnect_backoff_max = Duration::from_secs(5);
        let mut stopped = agent_stopped.clone();
        Some(tokio::spawn(drover_agent::run(config, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })))
    };

    drover_agent::service::ready(&format!(
        "API on {}, MQTT {}, store {}{}",
        args.api_listen,
        match &args.broker {
            Some(url) => format!("via {url}"),
            None => format!("broker on {}", args.mqtt_listen),
        },
        args.data_dir.display(),
        if args.disable_agent {
            ""
        } else {
            ", local agent"
        }
    ));
    drover_agent::service::spawn_watchdog();

    let agent_ended = async {
        match agent_task.as_mut() {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = drover_agent::shutdown_signal() => {
            info!("shutting down");
            drover_agent::service::stopping();
        }
        r = api_task => anyhow::bail!("the API server stopped: {r:?}"),
        _ = control_task => anyhow::bail!("the control loop stopped"),
        r = agent_ended => match r {
            Ok(Err(e)) => return Err(e.context("the local agent failed (use --disable-agent to run without it)")),
            other => anyhow::bail!("the local agent stopped: {other:?}"),
        },
    }
    if let Some(task) = agent_task {
        let _ = stop_agent.send(true);
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "local agent failed"),
            Ok(_) => {}
            Err(_) => tracing::warn!("local agent did not stop in time"),
        }
    }
    if let Some(broker) = embedded {
        broker.task.abort();
    }
    Ok(())
}
