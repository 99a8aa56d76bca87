//! The agent's command-line configuration (shared by `drover agent` and `drover-agent`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Where the agent connects and how it describes its node. Every flag can also be set by
/// its `DROVER_*` environment variable or, without the leading dashes, as a key of the
/// configuration file; flags win over the environment, which wins over the file.
#[derive(Debug, Clone, Args)]
pub struct AgentConfig {
    /// MQTT broker, e.g. mqtt://10.0.0.5:1883 (required, here or in the configuration file)
    #[arg(long, env = "DROVER_BROKER", value_name = "URL")]
    pub broker: Option<String>,

    /// Join token for the first start (from `drover token create`); ignored once the node
    /// has enrolled and holds its own credentials
    #[arg(
        long,
        env = "DROVER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Node name (default: the hostname)
    #[arg(long, env = "DROVER_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,

    /// Directory for the agent's identity and state
    #[arg(
        long,
        env = "DROVER_AGENT_DATA_DIR",
        value_name = "DIR",
        default_value = "/var/lib/drover/agent"
    )]
    pub data_dir: PathBuf,

    /// Node label given at registration, repeatable: --label zone=north
    /// (environment: comma-separated)
    #[arg(
        long = "label",
        env = "DROVER_LABELS",
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        value_parser = parse_label
    )]
    pub labels: Vec<(String, String)>,

    /// How often the agent tells the controller it is alive
    #[arg(long, env = "DROVER_HEARTBEAT_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Longest wait between reconnection attempts when the broker is unreachable
    #[arg(long, env = "DROVER_RECONNECT_BACKOFF_MAX", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub reconnect_backoff_max: Duration,

    /// How long the broker may refuse this node's connection because another connection
    /// holds the node's name before this agent concludes a second agent runs as this node:
    /// it then stops its pods and exits with status 78 (the broker drops a dead connection
    /// of this agent's own within 45 s)
    #[arg(long, env = "DROVER_NAME_HELD_TIMEOUT", value_name = "DURATION", default_value = "90s", value_parser = parse_duration)]
    pub name_held_timeout: Duration,

    /// Delay before the second restart of a crashing container (then doubling)
    #[arg(long, env = "DROVER_CRASH_BACKOFF_INITIAL", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub crash_backoff_initial: Duration,

    /// Longest delay between restarts of a crashing container
    #[arg(long, env = "DROVER_CRASH_BACKOFF_MAX", value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub crash_backoff_max: Duration,

    /// Running this long without exiting resets a container's crash back-off
    #[arg(long, env = "DROVER_CRASH_BACKOFF_RESET", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub crash_backoff_reset: Duration,

    /// Size at which a container's log file is rotated (one rotated part is kept)
    #[arg(long, env = "DROVER_CONTAINER_LOG_MAX_SIZE", value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    pub container_log_max_size: u64,

    /// Stop process pods when the agent stops and restart them when it starts again (counted
    /// as restarts), instead of leaving them running for the next agent run to adopt
    #[arg(long, env = "DROVER_STOP_PODS_ON_EXIT")]
    pub stop_pods_on_exit: bool,

    /// Finished pods kept on the node (records and logs) once the controller has their final
    /// status; the oldest beyond this are removed
    #[arg(
        long,
        env = "DROVER_MAX_FINISHED_PODS",
        value_name = "COUNT",
        default_value_t = 100
    )]
    pub max_finished_pods: usize,

    /// Finished pods are removed from the node this long after they ended (once the
    /// controller has their final status)
    #[arg(long, env = "DROVER_MAX_FINISHED_AGE", value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub max_finished_age: Duration,

    /// Free space the data directory's filesystem must keep; below it the node is under
    /// DiskPressure and starts no new pod (running pods keep running)
    #[arg(long, env = "DROVER_MIN_FREE_DISK", value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub min_free_disk: u64,

    /// Docker Engine API socket of Docker or Podman (default: $DOCKER_HOST, $CONTAINER_HOST,
    /// /run/docker.sock, /var/run/docker.sock, /run/podman/podman.sock,
    /// $XDG_RUNTIME_DIR/podman/podman.sock)
    #[arg(long, env = "DROVER_CONTAINER_ENGINE_SOCKET", value_name = "PATH")]
    pub container_engine_socket: Option<PathBuf>,

    /// Configuration file (TOML; keys are the long flag names); a missing default file is
    /// ignored
    #[arg(
        long,
        env = "DROVER_AGENT_CONFIG",
        value_name = "FILE",
        default_value = "/etc/drover/agent.toml"
    )]
    pub config: PathBuf,

    /// Print the effective configuration, with where each value comes from, and exit
    #[arg(long)]
    pub print_config: bool,

    /// Tell systemd (NOTIFY_SOCKET) about readiness, status and the watchdog; set by the
    /// binaries, not for an agent embedded in the server.
    #[arg(skip)]
    pub notify_service: bool,
}

impl AgentConfig {
    /// The configuration with every default, for an agent embedded in another process.
    pub fn defaults(broker: &str) -> Result<AgentConfig, clap::Error> {
        use clap::FromArgMatches;
        let command = AgentConfig::augment_args(clap::Command::new("agent"));
        let matches =
            command.try_get_matches_from(["agent", "--broker", broker, "--config", "/dev/null"])?;
        AgentConfig::from_arg_matches(&matches)
    }
}

/// Parses `KEY=VALUE` into a valid Kubernetes label.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got \"{text}\""))?;
    drover_proto::manifest::validate_label_key(key)?;
    drover_proto::manifest::validate_label_value(value)?;
    Ok((key.to_string(), value.to_string()))
}

/// Parses `10s`, `1m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("invalid duration \"{text}\": {e}"))
}

/// Broker URLs are parsed in `drover-proto` so the controller reads `--broker` the same way.
pub use drover_proto::broker_url::BrokerAddress;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            BrokerAddress::parse("mqtt://10.0.0.5:1884").unwrap(),
            BrokerAddress {
                tls: false,
                host: "10.0.0.5".into(),
                port: 1884,
                username: None,
                password: None,
            }
        );
        assert_eq!(BrokerAddress::parse("tcp://broker").unwrap().port, 1883);
        assert_eq!(BrokerAddress::parse("mqtts://broker").unwrap().port, 8883);
        assert_eq!(
            BrokerAddress::parse("mqtt://[::1]:1883").unwrap().host,
            "::1"
        );
        assert!(BrokerAddress::parse("http://x").is_err());
        assert!(BrokerAddress::parse("mqtt://x:notaport").is_err());
        assert!(BrokerAddress::parse("mqtt://").is_err());
    }

    #[test]
    fn user_and_password_are_not_part_of_the_host() {
        let broker = BrokerAddress::parse("mqtt://node-1:p%40ss@10.0.0.5:1883").unwrap();
        assert_eq!(broker.host, "10.0.0.5");
        assert_eq!(broker.username.as_deref(), Some("node-1"));
        assert_eq!(broker.password.as_deref(), Some("p@ss"));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = AgentConfig::defaults("mqtt://b:1883").unwrap();
        assert_eq!(config.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(config.crash_backoff_initial, Duration::from_secs(10));
        assert_eq!(config.crash_backoff_max, Duration::from_secs(300));
        assert_eq!(config.crash_backoff_reset, Duration::from_secs(600));
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("zone=north").unwrap(),
            ("zone".into(), "north".into())
        );
        assert!(parse_label("zone").is_err());
        assert!(parse_label("bad key=x").is_err());
    }
}
