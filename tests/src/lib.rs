//! Harness for end-to-end tests: starts the real `drover` and `drover-agent` binaries (and
//! Mosquitto) on random loopback ports, and waits for conditions by polling with deadlines.
//!
//! The binaries must be built first (`cargo build --bins`, which `scripts/test` does).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Directory holding the built binaries (`target/debug` next to the test executable).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DROVER_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

/// Path of a built binary; panics with a hint when it is missing.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --bins, or scripts/test)",
        path.display()
    );
    path
}

/// A TCP port on 127.0.0.1 that no other test of this process has been given. Ports come
/// from below the kernel's ephemeral range, one after another from an offset of this
/// process: two tests asking at once never get the same port (port 0 can hand the same
/// number to both before either binds it, and a client of one test then reaches the other
/// test's server).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    let offset = (std::process::id() * 7919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (offset + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks `check` continuously for `duration`, panicking the first time it fails: for
/// properties that must hold over a window (e.g. "stays Ready").
pub fn holds_for(what: &str, duration: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        assert!(check(), "{what} stopped holding");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process that is killed when dropped.
pub struct Proc {
    child: Option<Child>,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Proc {
    fn spawn(mut command: Command, log: PathBuf) -> Proc {
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        command
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Proc {
            child: Some(child),
            log,
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit (after a signal), returning its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let code = wait_for("process exit", timeout, || child.try_wait().ok().flatten());
        self.child = None;
        code.code()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what its processes said last.
        if std::thread::panicking() {
            let output = self.output();
            let lines: Vec<&str> = output.lines().filter(|l| !l.starts_with("  ")).collect();
            let from = lines.len().saturating_sub(60);
            eprintln!("--- last lines of {} ---", self.log.display());
            for panic in lines.iter().filter(|l| l.contains("panicked")) {
                eprintln!("{panic}");
            }
            for line in &lines[from..] {
                eprintln!("{line}");
            }
        }
    }
}

/// Settings every test server uses: short grace and heartbeat so tests run fast.
pub const GRACE: Duration = Duration::from_secs(3);
/// Heartbeat interval of test agents.
pub const HEARTBEAT: &str = "500ms";

/// Where agents join a server: its broker and a join token.
#[derive(Debug, Clone, Default)]
pub struct Broker {
    /// Broker URL agents connect to (`mqtts://…`).
    pub url: String,
    /// A join token of the server (unlimited uses).
    pub token: String,
}

/// A running `drover server`.
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// API base URL.
    pub api: String,
    /// How agents join it.
    pub broker: Broker,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Extra arguments it was started with.
    args: Vec<String>,
    env: Vec<(String, String)>,
    nofile: Option<u32>,
    api_port: u16,
    /// One client for all raw API calls: connections are kept alive across polls.
    http: std::sync::OnceLock<ureq::Agent>,
}

/// How to start a server.
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// An external broker instead of the embedded one.
    pub external_broker: Option<ExternalBroker>,
    /// `--disable-agent`.
    pub disable_agent: bool,
    /// Node name of the local agent.
    pub node_name: Option<String>,
    /// Extra environment of the server process (e.g. libfaketime's).
    pub env: Vec<(String, String)>,
    /// A lower file-descriptor limit (`RLIMIT_NOFILE`, soft and hard) for the server.
    pub nofile: Option<u32>,
}

impl Server {
    /// Starts a server in `dir` and waits for its API.
    pub fn start(dir: &Path, options: ServerOptions) -> Server {
        Server::start_with(dir, options, &[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(dir: &Path, options: ServerOptions, extra: &[&str]) -> Server {
        let api_port = free_port();
        let data_dir = dir.join("server");
        let mut args = vec![
            "--node-monitor-grace-period".to_string(),
            format!("{}s", GRACE.as_secs()),
            "--heartbeat-interval".into(),
            HEARTBEAT.into(),
        ];
        let url = match &options.external_broker {
            Some(external) => {
                args.extend(["--broker".into(), external.controller_url.clone()]);
                args.extend([
                    "--broker-password-file".into(),
                    external.password_file.to_string_lossy().into_owned(),
                    "--broker-dynamic-security".into(),
                ]);
                external.agent_url.clone()
            }
            None => {
                let port = free_port();
                args.extend(["--mqtt-listen".into(), format!("127.0.0.1:{port}")]);
                format!("mqtts://127.0.0.1:{port}")
            }
        };
        if options.disable_agent {
            args.push("--disable-agent".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        // Scaled down so failure tests run in seconds.
        args.extend(["--job-backoff-initial".to_string(), "200ms".to_string()]);
        args.extend([
            "--node-name".into(),
            options
                .node_name
                .clone()
                .unwrap_or_else(|| "server-node".into()),
        ]);
        let mut server = Server {
            proc: Proc::spawn(Command::new("true"), dir.join("unused.log")),
            api: format!("https://127.0.0.1:{api_port}"),
            broker: Broker {
                url,
                token: String::new(),
            },
            data_dir,
            args,
            env: options.env.clone(),
            nofile: options.nofile,
            api_port,
            http: std::sync::OnceLock::new(),
        };
        server.proc = server.spawn(dir.join("server.log"));
        server.wait_healthy();
        server.broker.token = server.create_token(&[]);
        server
    }

    /// Creates a join token (`drover token create` with `flags`) and returns it.
    pub fn create_token(&self, flags: &[&str]) -> String {
        let mut args = vec!["token", "create"];
        args.extend_from_slice(flags);
        self.cli_ok(&args).trim().to_string()
    }

    fn spawn(&self, log: PathBuf) -> Proc {
        let mut command = match self.nofile {
            // The shell lowers the limit and becomes the server (same process id).
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(binary("drover"));
                sh
            }
            None => Command::new(binary("drover")),
        };
        command
            .arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--api-listen")
            .arg(format!("127.0.0.1:{}", self.api_port))
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DROVER_SERVER_CONFIG", "/dev/null")
            .env("DROVER_LOG", "debug");
        Proc::spawn(command, log)
    }

    fn wait_healthy(&self) {
        wait_for("the API to answer", Duration::from_secs(20), || {
            if !self.kubeconfig().exists() {
                return None;
            }
            self.http().get(format!("{}/healthz", self.api)).call().ok()
        });
    }

    /// The admin kubeconfig the server writes into its data directory.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig.yaml")
    }

    /// The admin bearer token (from the kubeconfig).
    pub fn token(&self) -> String {
        let text = std::fs::read_to_string(self.kubeconfig()).expect("the admin kubeconfig");
        text.lines()
            .find_map(|line| line.trim().strip_prefix("token: "))
            .expect("a token in the kubeconfig")
            .trim()
            .to_string()
    }

    /// An HTTPS client that trusts only the server's CA; non-2xx answers are errors, as
    /// with ureq's defaults.
    pub fn http(&self) -> ureq::Agent {
        self.http.get_or_init(|| self.http_agent(true)).clone()
    }

    /// Like [`Server::http`], but every status is an answer (to look at 401s and 403s).
    pub fn http_any_status(&self) -> ureq::Agent {
        self.http_agent(false)
    }

    fn http_agent(&self, status_as_error: bool) -> ureq::Agent {
        https_agent(&server_ca(self), status_as_error)
    }

    /// GET `path` of the API as admin.
    pub fn api_get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.http()
            .get(format!("{}{path}", self.api))
            .header("Authorization", format!("Bearer {}", self.token()))
    }

    /// POST to `path` of the API as admin.
    pub fn api_post(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.http()
            .post(format!("{}{path}", self.api))
            .header("Authorization", format!("Bearer {}", self.token()))
    }

    /// Runs `/usr/bin/kubectl --kubeconfig <the admin kubeconfig>` with `args`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command(args)
            .output()
            .expect("run /usr/bin/kubectl")
    }

    /// `/usr/bin/kubectl --kubeconfig <the admin kubeconfig> args…`, not started yet (for
    /// commands that stream: `get -w`, `logs -f`, `wait`). Its discovery cache is the
    /// server's own, so tests never share one.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("/usr/bin/kubectl");
        command
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.data_dir.with_file_name("kube-cache"))
            .args(args);
        command
    }

    /// Kills the server (SIGKILL); its embedded broker goes with it.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts a killed server again with the same data and ports.
    pub fn start_again(&mut self) {
        let log = self.proc.log.with_extension("again.log");
        self.proc = self.spawn(log);
        self.wait_healthy();
    }

    /// Starts a stopped server again with `extra` arguments this once; waits until it
    /// serves (`None`) or has exited (its exit code).
    pub fn start_again_with(&mut self, extra: &[&str]) -> Option<i32> {
        let saved = self.args.clone();
        self.args.extend(extra.iter().map(|s| s.to_string()));
        let log = self.proc.log.with_extension("again.log");
        self.proc = self.spawn(log);
        self.args = saved;
        let healthz = format!("{}/healthz", self.api);
        wait_for(
            "the server to serve or exit",
            Duration::from_secs(20),
            || {
                if !self.proc.is_running() {
                    return Some(Some(
                        self.proc.wait_exit(Duration::from_secs(1)).unwrap_or(-1),
                    ));
                }
                self.http().get(&healthz).call().ok().map(|_| None)
            },
        )
    }

    /// Kills the server (SIGKILL) and starts it again with the same data and ports.
    pub fn restart(&mut self) {
        self.proc.kill();
        let log = self.proc.log.with_extension("restarted.log");
        self.proc = self.spawn(log);
        self.wait_healthy();
    }

    /// Runs the CLI against this server, as admin.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(binary("drover"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .output()
            .expect("run drover")
    }

    /// Runs the CLI and returns stdout, panicking with stderr on failure.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "drover {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A Job's status (`null` while it does not exist).
    pub fn job_status(&self, name: &str) -> Value {
        let out = self.cli(&["get", "job", name, "-o", "json"]);
        serde_json::from_slice::<Value>(&out.stdout).map_or(Value::Null, |j| j["status"].clone())
    }

    /// `get KIND -o json` items.
    pub fn items(&self, kind: &str) -> Vec<Value> {
        let text = self.cli_ok(&["get", kind, "-o", "json"]);
        let list: Value = serde_json::from_str(&text).expect("json list");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// The node object, if it exists.
    pub fn node(&self, name: &str) -> Option<Value> {
        self.items("nodes")
            .into_iter()
            .find(|n| n["metadata"]["name"] == name)
    }

    /// The status of a node's Ready condition (`True`, `False`, `Unknown`).
    pub fn ready_status(&self, name: &str) -> Option<String> {
        let node = self.node(name)?;
        node["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["status"].as_str())
            .map(str::to_string)
    }

    /// Waits until the node's Ready condition has `status`; returns how long it took.
    pub fn wait_ready_status(&self, name: &str, status: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        wait_for(&format!("node {name} Ready={status}"), timeout, || {
            (self.ready_status(name).as_deref() == Some(status)).then_some(())
        });
        start.elapsed()
    }

    /// The API's Prometheus text.
    pub fn metrics(&self) -> String {
        self.api_get("/metrics")
            .call()
            .expect("metrics")
            .body_mut()
            .read_to_string()
            .expect("metrics body")
    }
}

/// An HTTPS client that trusts only `ca_der`.
pub fn https_agent(ca_der: &[u8], status_as_error: bool) -> ureq::Agent {
    use std::sync::Arc;
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(vec![Certificate::from_der(
            ca_der,
        )
        .to_owned()])))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(status_as_error)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A running `drover-agent`.
pub struct Agent {
    /// The process.
    pub proc: Proc,
    /// Node name.
    pub name: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    broker: Broker,
    extra: Vec<String>,
    /// The agent binary, preceded by a runner such as `qemu-aarch64` if any.
    program: Vec<String>,
    /// Extra environment (e.g. libfaketime's).
    env: Vec<(String, String)>,
}

impl Agent {
    /// Starts an agent with its own data directory under `dir`; it enrolls with the
    /// broker's token on its first start.
    pub fn start(dir: &Path, broker: &Broker, name: &str, extra: &[&str]) -> Agent {
        let program = vec![binary("drover-agent").to_string_lossy().into_owned()];
        Agent::start_program(dir, broker, name, extra, program)
    }

    /// Starts an agent from `program` (runner and binary, e.g. a cross-built agent under
    /// qemu-user).
    pub fn start_program(
        dir: &Path,
        broker: &Broker,
        name: &str,
        extra: &[&str],
        program: Vec<String>,
    ) -> Agent {
        Agent::start_full(dir, broker, name, extra, program, Vec::new())
    }

    fn start_full(
        dir: &Path,
        broker: &Broker,
        name: &str,
        extra: &[&str],
        program: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Agent {
        let data_dir = dir.join(format!("agent-{name}"));
        let mut agent = Agent {
            proc: Proc::spawn(Command::new("true"), dir.join("unused.log")),
            name: name.into(),
            data_dir,
            broker: broker.clone(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            program,
            env,
        };
        agent.proc = agent.spawn(dir.join(format!("agent-{name}.log")));
        agent
    }

    /// Starts an agent as [`Agent::start`] does, with extra environment.
    pub fn start_with_env(
        dir: &Path,
        broker: &Broker,
        name: &str,
        extra: &[&str],
        env: Vec<(String, String)>,
    ) -> Agent {
        let program = vec![binary("drover-agent").to_string_lossy().into_owned()];
        Agent::start_full(dir, broker, name, extra, program, env)
    }

    fn spawn(&self, log: PathBuf) -> Proc {
        let mut command = Command::new(&self.program[0]);
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.program[1..])
            .args(["--broker", &self.broker.url, "--node-name", &self.name])
            .args(["--token", &self.broker.token])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args([
                "--heartbeat-interval",
                HEARTBEAT,
                "--reconnect-backoff-max",
                "1s",
            ])
            .args(&self.extra)
            // A configuration file installed on the test machine must not change the tests.
            .env("DROVER_AGENT_CONFIG", "/dev/null")
            .env("DROVER_LOG", "debug");
        Proc::spawn(command, log)
    }

    /// Starts a second agent for the same node, with the same flags, on `data_dir` (the
    /// same directory, or a copy of it). Its log goes to `agent-{name}.{log}.log`.
    pub fn twin(&self, data_dir: PathBuf, log: &str) -> Agent {
        self.twin_running(data_dir, log, self.program.clone(), &[])
    }

    /// As [`Agent::twin`], as on another device: in its own PID namespace (it cannot see,
    /// or adopt, this machine's pod processes) and with `extra` arguments. Needs root.
    pub fn twin_elsewhere(&self, data_dir: PathBuf, log: &str, extra: &[&str]) -> Agent {
        let program = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
            .into_iter()
            .map(str::to_string)
            .chain(self.program.iter().cloned())
            .collect();
        self.twin_running(data_dir, log, program, extra)
    }

    fn twin_running(
        &self,
        data_dir: PathBuf,
        log: &str,
        program: Vec<String>,
        extra: &[&str],
    ) -> Agent {
        let mut twin = Agent {
            proc: Proc::spawn(
                Command::new("true"),
                self.proc.log.with_file_name("unused.log"),
            ),
            name: self.name.clone(),
            data_dir,
            broker: self.broker.clone(),
            extra: self
                .extra
                .iter()
                .cloned()
                .chain(extra.iter().map(|e| e.to_string()))
                .collect(),
            program,
            env: self.env.clone(),
        };
        twin.proc = twin.spawn(
            self.proc
                .log
                .with_file_name(format!("agent-{}.{log}.log", self.name)),
        );
        twin
    }

    /// Starts the agent again with the same data directory. Its log goes to
    /// `agent-{name}.restarted.log` (overwritten by a later restart).
    pub fn restart(&mut self) {
        self.proc.kill();
        let log = self
            .proc
            .log
            .with_file_name(format!("agent-{}.restarted.log", self.name));
        self.proc = self.spawn(log);
    }
}

/// How a server reaches an external broker.
#[derive(Debug, Clone)]
pub struct ExternalBroker {
    /// `--broker` for the server.
    pub controller_url: String,
    /// `--broker-password-file` for the server.
    pub password_file: PathBuf,
    /// What agents connect to.
    pub agent_url: String,
}

/// A Mosquitto broker on a random port, configured by `drover broker-config mosquitto`.
pub struct Mosquitto {
    /// The process.
    pub proc: Proc,
    /// How a server uses it.
    pub external: ExternalBroker,
    /// Its persistence file (`mosquitto.db`), when started with persistence.
    pub persistence_file: Option<PathBuf>,
    program: PathBuf,
    config: PathBuf,
    port: u16,
}

impl Mosquitto {
    /// Writes the configuration for the server whose data directory is `server_dir/server`
    /// (creating its CA there), starts Mosquitto with it, and waits until it listens.
    pub fn start(dir: &Path) -> Mosquitto {
        Mosquitto::start_with(dir, false)
    }

    /// As [`Mosquitto::start`], with persistence: retained messages and sessions are saved
    /// to [`Mosquitto::persistence_file`] when Mosquitto stops.
    pub fn start_persistent(dir: &Path) -> Mosquitto {
        Mosquitto::start_with(dir, true)
    }

    fn start_with(dir: &Path, persistent: bool) -> Mosquitto {
        let mosquitto = [
            "/usr/sbin/mosquitto",
            "/usr/bin/mosquitto",
            "/usr/local/sbin/mosquitto",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect(
            "mosquitto is not installed: apt-get install -y mosquitto (scripts/test does this)",
        );
        let port = free_port();
        let out = dir.join("mosquitto");
        let generated = Command::new(binary("drover"))
            .args(["broker-config", "mosquitto", "--port", &port.to_string()])
            .arg("--out")
            .arg(&out)
            .arg("--data-dir")
            .arg(dir.join("server"))
            .args(["--san", "127.0.0.1"])
            .output()
            .expect("drover broker-config");
        assert!(
            generated.status.success(),
            "drover broker-config mosquitto failed: {}",
            String::from_utf8_lossy(&generated.stderr)
        );
        let config = out.join("mosquitto.conf");
        let persistence_file = persistent.then(|| {
            let db_dir = out.join("db");
            std::fs::create_dir_all(&db_dir).expect("persistence directory");
            let mut conf = std::fs::read_to_string(&config).expect("mosquitto.conf");
            conf.push_str(&format!(
                "\npersistence true\npersistence_location {}/\n",
                db_dir.display()
            ));
            std::fs::write(&config, conf).expect("mosquitto.conf");
            db_dir.join("mosquitto.db")
        });
        // Mosquitto started as root drops to its own user and must still read its files.
        chown_to_mosquitto(&out);
        let mut mosquitto = Mosquitto {
            proc: Proc::spawn(Command::new("true"), dir.join("unused.log")),
            external: ExternalBroker {
                controller_url: format!("mqtts://drover-controller@127.0.0.1:{port}"),
                password_file: out.join("controller.password"),
                agent_url: format!("mqtts://127.0.0.1:{port}"),
            },
            persistence_file,
            program: PathBuf::from(mosquitto),
            config,
            port,
        };
        mosquitto.spawn(dir.join("mosquitto.log"));
        mosquitto
    }

    fn spawn(&mut self, log: PathBuf) {
        let mut command = Command::new(&self.program);
        command.arg("-c").arg(&self.config);
        self.proc = Proc::spawn(command, log);
        let port = self.port;
        wait_for("mosquitto to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// Stops Mosquitto with SIGTERM (which saves its persistence file) and waits for it.
    pub fn stop(&mut self) {
        self.proc.signal("TERM");
        self.proc.wait_exit(Duration::from_secs(10));
    }

    /// Starts a stopped Mosquitto again with the same configuration and port.
    pub fn start_again(&mut self) {
        // mosquitto.log → mosquitto.again.log → mosquitto.again.again.log …
        let log = self.proc.log.with_extension("again.log");
        self.spawn(log);
    }
}

/// Gives `path` (recursively) to the `mosquitto` user when running as root: Mosquitto
/// started as root drops to that user and must still read and write its files.
pub fn chown_to_mosquitto(path: &Path) {
    if nix_is_root() {
        let _ = Command::new("chown")
            .args(["-R", "mosquitto:mosquitto"])
            .arg(path)
            .status();
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Who a raw MQTT client claims to be.
#[derive(Debug, Clone, Default)]
pub struct Login {
    /// Client id.
    pub client_id: String,
    /// User name and password; `None` connects anonymously.
    pub credentials: Option<(String, String)>,
}

impl Login {
    /// An anonymous client.
    pub fn anonymous() -> Login {
        Login {
            client_id: format!("e2e-{}", free_port()),
            credentials: None,
        }
    }

    /// The controller of `server`'s embedded broker (what a compromised broker could
    /// publish), under client id `client_id`.
    pub fn controller(server: &Server, client_id: &str) -> Login {
        let password = std::fs::read_to_string(server.data_dir.join("broker-controller.password"))
            .expect("the controller's broker password");
        Login {
            client_id: format!("drover-controller-{client_id}"),
            credentials: Some(("drover-controller".into(), password.trim().to_string())),
        }
    }

    /// An enrolled node, as its agent logs in (from its stored credentials).
    pub fn node(agent: &Agent) -> Login {
        let credentials = drover_agent::credentials::Credentials::load(&agent.data_dir)
            .expect("readable credentials")
            .expect("the agent has enrolled");
        Login {
            client_id: format!("drover-agent-{}", credentials.node),
            credentials: Some((credentials.node, credentials.password)),
        }
    }
}

/// A raw MQTT client (as a device on the network might run), speaking TLS to a broker
/// whose certificate chains to `ca_pem`.
pub struct RawClient {
    /// The client handle.
    pub client: rumqttc::Client,
    /// Its events.
    pub connection: rumqttc::Connection,
}

/// The server's CA certificate (DER).
pub fn server_ca(server: &Server) -> Vec<u8> {
    let pem = std::fs::read(server.data_dir.join("pki/ca.crt")).expect("the server's CA");
    let mut reader = std::io::BufReader::new(pem.as_slice());
    let first = rustls_pemfile::certs(&mut reader)
        .next()
        .expect("a certificate")
        .expect("a PEM certificate");
    first.to_vec()
}

impl RawClient {
    /// Connects (TLS when the URL is `mqtts://`), without waiting for the broker's answer.
    pub fn new(url: &str, ca_der: &[u8], login: &Login) -> RawClient {
        let (tls, address) = match url.strip_prefix("mqtts://") {
            Some(rest) => (true, rest),
            None => (false, url.trim_start_matches("mqtt://")),
        };
        let (host, port) = address.rsplit_once(':').expect("host:port");
        let mut options =
            rumqttc::MqttOptions::new(login.client_id.clone(), host, port.parse().expect("port"));
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(4 << 20, 4 << 20);
        if let Some((user, password)) = &login.credentials {
            options.set_credentials(user, password);
        }
        if tls {
            let config = drover_agent::tls::pinned_ca_config(ca_der).expect("TLS config");
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config),
            ));
        }
        let (client, connection) = rumqttc::Client::new(options, 10);
        RawClient { client, connection }
    }

    /// Waits for the broker's answer to CONNECT: `Ok` when accepted, `Err` with the
    /// refusal otherwise.
    pub fn connected(&mut self) -> Result<(), String> {
        for event in self.connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("connection closed".into())
    }

    /// Publishes at QoS 1 and waits for the broker's acknowledgement (a broker that drops
    /// a forbidden publish still acknowledges it, as Mosquitto does).
    pub fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> Result<(), String> {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload)
            .map_err(|e| e.to_string())?;
        for event in self.connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("connection closed".into())
    }

    /// Subscribes and returns the broker's return codes.
    pub fn subscribe(&mut self, filter: &str) -> Result<Vec<rumqttc::SubscribeReasonCode>, String> {
        self.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .map_err(|e| e.to_string())?;
        for event in self.connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::SubAck(ack))) => {
                    return Ok(ack.return_codes)
                }
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("connection closed".into())
    }

    /// Messages received within `window` (on an open connection).
    pub fn received_within(&mut self, window: Duration) -> Vec<rumqttc::Publish> {
        let deadline = Instant::now() + window;
        let mut received = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.connection.recv_timeout(left) {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p)))) => received.push(p),
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        received
    }
}

impl Server {
    /// A server without an agent of its own.
    pub fn start_alone(dir: &Path) -> Server {
        Server::start(
            dir,
            ServerOptions {
                disable_agent: true,
                ..Default::default()
            },
        )
    }

    /// Starts an agent for node `name` and waits until the node is Ready.
    pub fn join(&self, dir: &Path, name: &str, extra: &[&str]) -> Agent {
        let agent = Agent::start(dir, &self.broker, name, extra);
        self.wait_ready_status(name, "True", Duration::from_secs(10));
        agent
    }

    /// A counter from `/metrics` (0 when absent).
    pub fn counter(&self, series: &str) -> u64 {
        self.metrics()
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the server's log contains `text`.
    pub fn output_contains(&self, text: &str) -> bool {
        self.proc.output().contains(text)
    }
}

/// Process ids of the processes that belong to pod `uid` (found by the marker variable the
/// agent puts in every pod process's environment).
pub fn pod_processes(uid: &str) -> Vec<u32> {
    let marker = format!("DROVER_POD_UID={uid}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        // The keeper that holds a container for the agent is not one of the pod's processes.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.split(|b| *b == 0).next() == Some(b"drover-keeper".as_slice()) {
            continue;
        }
        if environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            // A zombie is already dead: only count processes that still run.
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let running = state
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'));
            if running {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The keepers of pod `uid`'s containers (one per running process container).
pub fn pod_keepers(uid: &str) -> Vec<u32> {
    let marker = format!("DROVER_POD_UID={uid}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            cmdline.split(|b| *b == 0).next() == Some(b"drover-keeper".as_slice())
                && environ.split(|b| *b == 0).any(|v| v == marker.as_bytes())
        })
        .collect()
}

/// The main process of pod `uid`'s container, the one its keeper started (for a
/// one-container process pod); `None` when it does not run.
pub fn pod_main_process(uid: &str) -> Option<u32> {
    pod_processes(uid).into_iter().find(|pid| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_string();
        let cmdline = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap_or_default();
        cmdline.split(|b| *b == 0).next() == Some(b"drover-keeper".as_slice())
    })
}

impl Server {
    /// Applies manifest text.
    pub fn apply(&self, text: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(binary("drover"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run drover apply");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write manifest");
        let out = child.wait_with_output().expect("apply");
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pod object, if it exists.
    pub fn pod(&self, name: &str) -> Option<Value> {
        let out = self.cli(&["get", "pod", name, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("pod json"))
    }

    /// Waits until `check` accepts the pod; returns it.
    pub fn wait_pod(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(&format!("pod {name}: {what}"), timeout, || {
            self.pod(name).filter(|p| check(p))
        })
    }
}

/// A pod's phase.
pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// The first container's status.
pub fn container(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

/// A one-container process pod pinned to `node`.
pub fn process_pod(
    name: &str,
    node: &str,
    restart_policy: &str,
    script: &str,
    grace: u32,
) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  restartPolicy: {restart_policy}
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: main
    command: [sh, -c, {script:?}]
"
    )
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The local image the container tests run (built by `scripts/test-image`).
pub fn test_image() -> String {
    let image =
        std::env::var("DROVER_TEST_IMAGE").unwrap_or_else(|_| "drover-test/busybox:1".into());
    let present = Command::new("docker")
        .args(["image", "inspect", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        present,
        "the container tests need the image {image}: run scripts/test-image (scripts/test does)"
    );
    image
}

/// Engine containers carrying `label` (`key=value`): `(id, state)` pairs, as `docker ps -a`
/// lists them.
pub fn engine_containers(label: &str) -> Vec<(String, String)> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("label={label}"),
            "--format",
            "{{.ID}} {{.State}}",
        ])
        .output()
        .expect("run docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, state)| (id.to_string(), state.to_string()))
        .collect()
}

/// Removes, when dropped, every engine container of the given nodes (so a failed test
/// leaves nothing behind).
pub struct EngineCleanup(pub Vec<String>);

impl Drop for EngineCleanup {
    fn drop(&mut self) {
        for node in &self.0 {
            let ids: Vec<String> = engine_containers(&format!("drover.io/node={node}"))
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// The Kubernetes API path of the collection `manifest`'s object belongs to:
/// `/api/v1/namespaces/default/pods`, `/apis/batch/v1/namespaces/default/jobs`.
pub fn collection_path(manifest: &drover_proto::manifest::Manifest) -> String {
    let kind = manifest.kind();
    let group_version = match kind.api_version() {
        v if v.contains('/') => format!("/apis/{v}"),
        v => format!("/api/{v}"),
    };
    if kind.namespaced() {
        format!(
            "{group_version}/namespaces/{}/{}",
            manifest.namespace(),
            kind.plural()
        )
    } else {
        format!("{group_version}/{}", kind.plural())
    }
}

/// Creates every object of manifest `text` with POSTs to the Kubernetes API (no CLI
/// process: for benchmarks that time the server, not the CLI's start).
pub fn create_objects(server: &Server, text: &str) {
    let manifests = drover_proto::manifest::parse_manifests("bench.yaml", text)
        .unwrap_or_else(|e| panic!("invalid manifest: {e:?}"));
    for manifest in &manifests {
        let mut metadata = serde_json::json!({"name": manifest.name()});
        if manifest.kind().namespaced() {
            metadata["namespace"] = serde_json::json!(manifest.namespace());
        }
        let meta = manifest.metadata();
        metadata["labels"] = serde_json::json!(meta.labels);
        metadata["annotations"] = serde_json::json!(meta.annotations);
        let body = serde_json::json!({
            "apiVersion": manifest.kind().api_version(),
            "kind": manifest.kind().as_str(),
            "metadata": metadata,
            "spec": manifest.spec_json(),
        });
        server
            .api_post(&collection_path(manifest))
            .send_json(body)
            .expect("create");
    }
}

/// Creates a one-pod manifest over the Kubernetes API and returns how long until the API
/// shows pod `name` `Running` (polled every 0.5 ms, failing after `timeout`).
pub fn time_apply_to_running(
    server: &Server,
    name: &str,
    manifest: &str,
    timeout: Duration,
) -> Duration {
    let start = Instant::now();
    create_objects(server, manifest);
    while !pod_running(server, name) {
        assert!(start.elapsed() < timeout, "pod {name} never ran");
        std::thread::sleep(Duration::from_micros(500));
    }
    start.elapsed()
}

/// Whether the API shows pod `name` (default namespace) `Running`: a cheap poll for
/// benchmarks, without starting the CLI.
pub fn pod_running(server: &Server, name: &str) -> bool {
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    let Ok(mut response) = server.api_get(&path).call() else {
        return false;
    };
    let Ok(pod) = response.body_mut().read_json::<Value>() else {
        return false;
    };
    pod["status"]["phase"] == "Running"
}

/// Follows `pod`'s log (`logs -f --tail 1`) while it prints `line N` lines and checks that
/// new lines keep arriving (six more after the first).
pub fn assert_log_follow_streams(server: &Server, pod: &str) {
    use std::io::{BufRead, BufReader};
    let mut follow = Command::new(binary("drover"))
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(["logs", pod, "-f", "--tail", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run drover logs -f");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let mut number = |skip: usize| -> u32 {
        let line = lines.nth(skip).expect("a line").expect("readable");
        line.trim_start_matches("line ")
            .parse()
            .unwrap_or_else(|_| panic!("not a numbered line: {line}"))
    };
    let first = number(0);
    let later = number(5);
    assert!(later >= first + 6, "{first} then {later}");
    let _ = follow.kill();
    let _ = follow.wait();
}

/// A QoS 1 round trip through the server's embedded broker, over TLS, as the controller
/// (the only identity that may both publish and subscribe to one topic): a benchmark's
/// floor. The median of `runs`.
pub fn mqtt_round_trip(server: &Server, runs: usize) -> Duration {
    let mut raw = RawClient::new(
        &server.broker.url,
        &server_ca(server),
        &Login::controller(server, "bench-rtt"),
    );
    raw.connection
        .eventloop
        .network_options
        .set_tcp_nodelay(true);
    raw.subscribe("bench/rtt").expect("subscribe");
    let RawClient {
        client,
        mut connection,
    } = raw;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        client
            .publish("bench/rtt", rumqttc::QoS::AtLeastOnce, false, vec![0u8; 64])
            .expect("publish");
        for event in connection.iter() {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(_))) = event {
                break;
            }
        }
        times.push(start.elapsed());
    }
    times.sort();
    percentile(&times, 0.5)
}

impl Server {
    /// `kubectl ARGS` as admin; its stdout, panicking with its stderr on failure.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The Job object, if it exists.
    pub fn job(&self, name: &str) -> Option<Value> {
        let out = self.cli(&["get", "job", name, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("job json"))
    }

    /// The pods labelled as the Job's (`batch.kubernetes.io/job-name`), owned or not.
    pub fn job_pods(&self, job: &str) -> Vec<Value> {
        self.items("pods")
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == job)
            .collect()
    }
}
