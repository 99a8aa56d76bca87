//! systemd integration of the binaries, against a test NOTIFY_SOCKET (a unix datagram socket
//! the test reads): READY=1 once serving, watchdog pings at half of WatchdogSec, STOPPING=1
//! on SIGTERM, readable STATUS= lines; and the configuration precedence
//! (flags > environment > file > defaults) through `--print-config`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use drover_e2e::*;

/// Collects notifications sent to a socket, with their arrival times.
struct NotifySocket {
    path: std::path::PathBuf,
    received: mpsc::Receiver<(Instant, String)>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                if tx.send((Instant::now(), text)).is_err() {
                    break;
                }
            }
        });
        NotifySocket { path, received }
    }

    /// The next message containing `line`, waiting up to `timeout`; the messages before it
    /// are returned too.
    fn wait_for(&self, line: &str, timeout: Duration) -> (Instant, String, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.received.recv_timeout(left) {
                Ok((at, text)) if text.lines().any(|l| l == line) => return (at, text, before),
                Ok((_, text)) => before.push(text),
                Err(_) => panic!("no {line} within {timeout:?}; got {before:?}"),
            }
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn agent_notifies_ready_watchdog_status_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_alone(dir.path());
    let notify = NotifySocket::bind(dir.path());
    let mut agent = Command::new(binary("drover-agent"))
        .args(["--broker", &server.broker.url, "--node-name", "sd-agent"])
        .args(["--token", &server.broker.token])
        .arg("--data-dir")
        .arg(dir.path().join("agent"))
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let (_, ready, _) = notify.wait_for("READY=1", Duration::from_secs(10));
    assert!(
        ready.contains("STATUS=node sd-agent: running the stored pods"),
        "{ready}"
    );
    let (_, connected, _) = notify.wait_for(
        &format!("STATUS=node sd-agent: connected to {}", server.broker.url),
        Duration::from_secs(10),
    );
    assert!(!connected.is_empty());

    // WatchdogSec=1s: a ping every 500 ms.
    let mut pings = Vec::new();
    while pings.len() < 5 {
        let (at, _, _) = notify.wait_for("WATCHDOG=1", Duration::from_secs(3));
        pings.push(at);
    }
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(400) && gap <= Duration::from_millis(800),
            "watchdog gap {gap:?}"
        );
    }

    signal(agent.id(), "TERM");
    notify.wait_for("STOPPING=1", Duration::from_secs(10));
    let status = agent.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn server_is_ready_only_when_serving_and_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let api_port = free_port();
    let mqtt_port = free_port();
    let mut server = Command::new(binary("drover"))
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path().join("server"))
        .args([
            "--api-listen",
            &format!("127.0.0.1:{api_port}"),
            "--mqtt-listen",
            &format!("127.0.0.1:{mqtt_port}"),
            "--disable-agent",
        ])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_, ready, _) = notify.wait_for("READY=1", Duration::from_secs(20));
    // Serving already: the API answers and the broker accepts connections.
    let ca = std::fs::read(dir.path().join("server/pki/ca.crt")).unwrap();
    let ca = rustls_pemfile::certs(&mut ca.as_slice())
        .next()
        .unwrap()
        .unwrap();
    assert!(https_agent(&ca, true)
        .get(format!("https://127.0.0.1:{api_port}/healthz"))
        .call()
        .is_ok());
    assert!(std::net::TcpStream::connect(("127.0.0.1", mqtt_port)).is_ok());
    assert!(
        ready.contains(&format!("STATUS=API on 127.0.0.1:{api_port}")),
        "{ready}"
    );
    notify.wait_for("WATCHDOG=1", Duration::from_secs(3));
    signal(server.id(), "TERM");
    notify.wait_for("STOPPING=1", Duration::from_secs(10));
    assert!(server.wait().unwrap().success());
}

fn print_config(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(binary("drover-agent"))
        .args(args)
        .arg("--print-config")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn configuration_precedence_is_flags_then_environment_then_file_then_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        "broker = \"mqtt://from-file:1883\"\nnode-name = \"file-node\"\nheartbeat-interval = \"3s\"\nlabel = [\"zone=file\"]\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let text = print_config(
        &["--config", config, "--node-name", "flag-node"],
        &[
            ("DROVER_NODE_NAME", "env-node"),
            ("DROVER_HEARTBEAT_INTERVAL", "4s"),
        ],
    );
    for line in [
        "broker = \"mqtt://from-file:1883\"  # file",
        "node-name = \"flag-node\"  # flag",
        "heartbeat-interval = \"4s\"  # environment",
        "label = [\"zone=file\"]  # file",
        "reconnect-backoff-max = \"30s\"  # default",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // The file's path may come from the environment too.
    let from_env = print_config(&[], &[("DROVER_AGENT_CONFIG", config)]);
    assert!(
        from_env.contains("node-name = \"file-node\"  # file"),
        "{from_env}"
    );
}

#[test]
fn configuration_errors_name_the_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        "broker = \"mqtt://x:1883\"\n\nheartbeat-intervall = \"3s\"\n",
    )
    .unwrap();
    let out = Command::new(binary("drover-agent"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3:1: unknown key \"heartbeat-intervall\"",
            file.display()
        )),
        "{stderr}"
    );
    // A server file is checked the same way.
    let server_file = dir.path().join("server.toml");
    std::fs::write(&server_file, "node-monitor-grace-period = \"soon\"\n").unwrap();
    let out = Command::new(binary("drover"))
        .args(["server", "--config"])
        .arg(&server_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":1:1: node-monitor-grace-period: invalid value 'soon'"),
        "{stderr}"
    );
}

/// Runs `scripts/install.sh agent` into `root` with this build's agent.
fn install_agent(root: &Path, extra: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install.sh");
    let out = Command::new("sh")
        .arg(&script)
        .args(["agent", "--root"])
        .arg(root)
        .arg("--binary")
        .arg(binary("drover-agent"))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn install_script_places_binary_unit_and_a_config_the_agent_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    install_agent(
        &root,
        &[
            "--broker",
            "mqtt://10.0.0.5:1883",
            "--node-name",
            "pi-1",
            "--label",
            "zone=north",
        ],
    );
    let installed = root.join("usr/local/bin/drover-agent");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(binary("drover-agent")).unwrap()
    );
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/drover-agent.service")).unwrap();
    assert!(unit.contains("Type=notify"), "{unit}");
    // The status an agent exits with when another runs as its node (nodes.rs tests it).
    assert!(unit.contains("\nRestartPreventExitStatus=78\n"), "{unit}");
    let config = root.join("etc/drover/agent.toml");
    let text = print_config(&["--config", config.to_str().unwrap()], &[]);
    for line in [
        "broker = \"mqtt://10.0.0.5:1883\"  # file",
        "node-name = \"pi-1\"  # file",
        "label = [\"zone=north\"]  # file",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // Installing again keeps the existing configuration.
    std::fs::write(&config, "broker = \"mqtt://edited:1883\"\n").unwrap();
    install_agent(&root, &[]);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "broker = \"mqtt://edited:1883\"\n"
    );
}
