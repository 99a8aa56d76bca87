//! `drover server`: store, broker (embedded or external), control loop, HTTP API and the
//! local agent, in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use drover_agent::config::{parse_duration, parse_label};
use drover_agent::AgentConfig;
use drover_proto::broker_url::BrokerAddress;
use tokio::sync::mpsc;
use tracing::info;

use drover_proto::keys::SigningKey;
use drover_proto::msg::controller_key_statement;
use drover_proto::session::ControllerSession;

use crate::accounts::{EmbeddedAccounts, ManagedElsewhere, MosquittoAccounts};
use crate::control::{Control, ControlSettings, Security};
use crate::credentials::Credentials;
use crate::metrics::Metrics;
use crate::store::Store;

mod descriptors;

/// Checked broker messages waiting for the control loop; more wait in the MQTT adapter,
/// queued per sender (see `mqtt::backlog`).
const FROM_BROKER_QUEUE: usize = 16;

/// Flags of `drover server`. Each can also be set by its `DROVER_*` environment variable or,
/// without the leading dashes, as a key of the configuration file (flags > environment >
/// file > defaults).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address of the HTTPS API (Kubernetes API, used by kubectl and the CLI); a
    /// non-loopback address makes it reachable from the network (with tokens)
    #[arg(
        long,
        env = "DROVER_API_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:6443"
    )]
    pub api_listen: SocketAddr,

    /// Address of the embedded MQTT broker's TLS listener
    #[arg(
        long,
        env = "DROVER_MQTT_LISTEN",
        value_name = "ADDR",
        default_value = "0.0.0.0:8883"
    )]
    pub mqtt_listen: SocketAddr,

    /// Also accept plain, unencrypted MQTT here (lab use only: credentials and pod specs
    /// travel in clear text; signatures still protect desired states and reports)
    #[arg(long, env = "DROVER_MQTT_INSECURE_LISTEN", value_name = "ADDR")]
    pub mqtt_insecure_listen: Option<SocketAddr>,

    /// Extra names and addresses for the server certificate (besides localhost, the
    /// hostname and the local interface addresses), repeatable
    #[arg(
        long = "tls-san",
        env = "DROVER_TLS_SAN",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub tls_san: Vec<String>,

    /// Use this external broker and start none: mqtts://drover-controller:PASSWORD@HOST:8883
    /// (see `drover broker-config mosquitto`)
    #[arg(long, env = "DROVER_BROKER", value_name = "URL")]
    pub broker: Option<String>,

    /// File holding the controller's password on the external broker (instead of putting
    /// it in the URL)
    #[arg(long, env = "DROVER_BROKER_PASSWORD_FILE", value_name = "FILE")]
    pub broker_password_file: Option<PathBuf>,

    /// The external broker is a Mosquitto with the dynamic-security plugin (as `drover
    /// broker-config mosquitto` sets up): keep its accounts in step with enrollments, join
    /// tokens and deleted nodes. Only for such a broker: the commands carry passwords
    #[arg(long, env = "DROVER_BROKER_DYNAMIC_SECURITY")]
    pub broker_dynamic_security: bool,

    /// Directory for the store
    #[arg(
        long,
        env = "DROVER_DATA_DIR",
        value_name = "DIR",
        default_value = "/var/lib/drover/server"
    )]
    pub data_dir: PathBuf,

    /// Start even if the store is damaged: drop objects whose checksum does not match (each
    /// logged; a workload's controller creates again what it owned) and go on without a
    /// lost write-ahead log, instead of refusing to start
    #[arg(long)]
    pub repair_store: bool,

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

    /// How often every object is reconciled without any input, so a missed trigger heals
    /// by itself (0s: never)
    #[arg(long, env = "DROVER_RESYNC_PERIOD", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub resync_period: Duration,

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
    let mut store = Store::open_with(&args.data_dir, args.repair_store)
        .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?;
    // Watches see every store write from here on; older versions are expired (410).
    // They show objects as get and list do, Kubernetes' defaults included: a watcher such
    // as `kubectl rollout status` reads a DaemonSet's updateStrategy from each event.
    let watch_hub = crate::api::watch::WatchHub::with_renderer(
        store.resource_version()?,
        crate::api::watch::HubSettings::default(),
        std::sync::Arc::new(crate::control::kube_shape),
    );
    store.set_change_sink(Box::new(watch_hub.clone()));

    let mut sans = args.tls_san.clone();
    if !args.api_listen.ip().is_unspecified() {
        sans.push(args.api_listen.ip().to_string());
    }
    let pki = crate::pki::Pki::load_or_create(&args.data_dir.join("pki"), &sans)
        .context("cannot set up the server's CA and certificates")?;
    let session = Arc::new(ControllerSession::new(SigningKey::from_seed(
        pki.signing_seed,
    )));
    let attestation = pki.attest(&controller_key_statement(&session.public()))?;

    let api_listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("cannot listen for the API on {}", args.api_listen))?;
    // The real port, in case the flag asked for port 0.
    let api_addr = api_listener.local_addr()?;
    let kubeconfig = crate::kubeconfig::ensure_admin(
        &mut store,
        &args.data_dir,
        &crate::kubeconfig::local_url(api_addr),
        &pki.ca_pem,
    )?;
    let api_tokens = store.api_token_table();

    let (broker, password, embedded) = match &args.broker {
        Some(url) => {
            let mut broker = BrokerAddress::parse(url)?;
            let password = match (&args.broker_password_file, broker.password.take()) {
                (Some(file), _) => std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?
                    .trim()
                    .to_string(),
                (None, Some(password)) => password,
                (None, None) => String::new(),
            };
            (broker, password, None)
        }
        None => {
            let password = controller_password(&args.data_dir)?;
            let credentials = Credentials::new(&password);
            let defaults = crate::broker::BrokerSettings::default();
            let max_connections = match descriptors::raise_soft_limit() {
                Some(soft) => descriptors::broker_sockets(soft, defaults.max_connections),
                None => defaults.max_connections,
            };
            info!(
                max_connections,
                "embedded MQTT broker connection limit (below the file-descriptor limit)"
            );
            let embedded = crate::broker::start(
                crate::broker::BrokerSettings {
                    tls_listen: Some(args.mqtt_listen),
                    tls: Some(pki.server_tls_config()),
                    insecure_listen: args.mqtt_insecure_listen,
                    max_connections,
                    ..defaults
                },
                Arc::new(credentials.clone()),
            )
            .await?;
            let (tls_addr, insecure_addr) = embedded.local_addrs();
            info!(listen = %args.mqtt_listen, "embedded MQTT broker listening (TLS)");
            if let Some(insecure) = insecure_addr {
                tracing::warn!(listen = %insecure, "embedded MQTT broker also listening WITHOUT TLS (lab use only)");
            }
            let port = tls_addr.map_or(args.mqtt_listen.port(), |a| a.port());
            let broker = BrokerAddress {
                tls: true,
                host: loopback_for(args.mqtt_listen),
                port,
                username: None,
                password: None,
            };
            (broker, password, Some((embedded, credentials)))
        }
    };
    let credentials = match &embedded {
        Some((_, credentials)) => credentials.clone(),
        None => Credentials::new(""),
    };

    let metrics = Arc::new(Metrics::default());
    if let Some((broker, _)) = &embedded {
        metrics.watch_broker(broker.handle());
    }
    let (inputs, input_rx) = mpsc::channel(4096);
    let (from_broker, from_broker_rx) = mpsc::channel(FROM_BROKER_QUEUE);
    let logs = crate::logs::LogRouter::default();
    let publisher = crate::mqtt::start(
        crate::mqtt::LinkSettings {
            broker: broker.clone(),
            password,
            ca_der: pki.ca_der.clone(),
        },
        session.clone(),
        credentials.clone(),
        from_broker,
        logs.clone(),
        metrics.clone(),
    )?;
    let security = Security {
        credentials,
        session: session.clone(),
        ca_der: pki.ca_der.clone(),
        attestation,
        accounts: match (&embedded, args.broker_dynamic_security) {
            (Some((broker, _)), _) => Arc::new(EmbeddedAccounts(broker.handle())),
            (None, true) => Arc::new(MosquittoAccounts(publisher.clone())),
            (None, false) => Arc::new(ManagedElsewhere),
        },
    };
    let mut control = Control::new(
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
            resync_period: args.resync_period,
        },
        security,
        Utc::now(),
    )?;
    let local_agent = if args.disable_agent {
        None
    } else {
        Some(prepare_local_agent(
            &args,
            &broker,
            &mut control,
            &pki.ca_der,
        )?)
    };
    let control_task = tokio::spawn(crate::control::run(control, input_rx, from_broker_rx));

    let listener = crate::api::tls::TlsListener::new(api_listener, &pki.server_tls_config())
        .context("cannot serve TLS on the API listener")?;
    if api_addr.ip().is_loopback() {
        info!(listen = %api_addr, kubeconfig = %kubeconfig.display(), "API listening (HTTPS)");
    } else {
        tracing::warn!(listen = %api_addr, kubeconfig = %kubeconfig.display(), "API listening (HTTPS) on a non-loopback address: reachable from the network (every request but health and version needs a token)");
    }
    let app = crate::api::router(inputs.clone(), metrics, publisher, logs, watch_hub)
        .merge(crate::api::kubeconfigs::router(inputs, api_tokens.clone()))
        .merge(crate::api::reviews::router());
    let app = crate::api::auth::protect(app, api_tokens);
    let api_task = tokio::spawn(async move { axum::serve(listener, app).await });

    let (stop_agent, agent_stopped) = tokio::sync::watch::channel(false);
    let mut agent_task = local_agent.map(|config| {
        let mut stopped = agent_stopped.clone();
        let mut held_until_stopped = agent_stopped.clone();
        tokio::spawn(async move {
            let ran = drover_agent::run(config, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
            match ran {
                // Another agent runs as the server's node: the local agent stood down, and
                // the controller, broker and API serve on without it.
                Err(e) if e.downcast_ref::<drover_agent::NameHeld>().is_some() => {
                    tracing::error!("the local agent stood down: {e}; serving without it");
                    let _ = held_until_stopped.wait_for(|s| *s).await;
                    Ok(())
                }
                other => other,
            }
        })
    });

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
    if let Some((broker, _)) = embedded {
        broker.shutdown();
    }
    Ok(())
}

/// The controller's password on the embedded broker, kept (0600) in the data directory so
/// that an operator's own tools can log in as the controller.
fn controller_password(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join(CONTROLLER_PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let password = hex::encode(drover_proto::random::random_bytes::<24>()?);
    let mut file = drover_agent::private_fs::create_file(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, password.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(password)
}

/// Where the embedded broker's controller password is kept.
pub const CONTROLLER_PASSWORD_FILE: &str = "broker-controller.password";

/// The address the controller's own clients use for a listener on `listen`.
fn loopback_for(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        match listen {
            SocketAddr::V4(_) => "127.0.0.1".to_string(),
            SocketAddr::V6(_) => "::1".to_string(),
        }
    } else {
        listen.ip().to_string()
    }
}

/// The local agent's configuration; at the first start it is enrolled without a token
/// (the server writes its credentials itself).
fn prepare_local_agent(
    args: &ServerArgs,
    broker: &BrokerAddress,
    control: &mut Control,
    ca_der: &[u8],
) -> anyhow::Result<AgentConfig> {
    let mut labels = vec![(
        "node-role.kubernetes.io/control-plane".to_string(),
        "true".to_string(),
    )];
    labels.extend(args.node_labels.clone());
    // The agent logs in with its own credentials, never with the controller's.
    let own = BrokerAddress {
        username: None,
        password: None,
        ..broker.clone()
    };
    let mut config = AgentConfig::defaults(&own.to_string())?;
    config.node_name = args.node_name.clone();
    config.data_dir = args.data_dir.join("agent");
    config.labels = labels;
    config.heartbeat_interval = args.heartbeat_interval;
    config.reconnect_backoff_max = Duration::from_secs(5);
    drover_agent::private_fs::private_dir(&config.data_dir)?;
    if drover_agent::credentials::Credentials::load(&config.data_dir)?.is_none() {
        let node = drover_agent::node_name(&config)?;
        let key = SigningKey::generate()?;
        let password = hex::encode(drover_proto::random::random_bytes::<24>()?);
        control.enroll_local(&node, key.public(), &password, Utc::now())?;
        drover_agent::credentials::Credentials {
            node,
            key_seed: *key.seed(),
            password,
            controller_key: control.controller_key(),
            ca_der: ca_der.to_vec(),
        }
        .save(&config.data_dir)?;
    }
    Ok(config)
}
