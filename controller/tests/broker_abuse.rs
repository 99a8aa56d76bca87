//! Abuse that needs a process of its own: the broker runs in a child process (this test
//! binary again, running `broker_child_process`) so that its file-descriptor limit can be
//! lowered, and its CPU time and memory measured, apart from the clients.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, Packet};
use rumqttc::mqttbytes::QoS;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const CHILD_ENV: &str = "DROVER_BROKER_CHILD";
/// Set: the child listens with TLS only and writes its test CA's certificate to this path.
const CHILD_CA_ENV: &str = "DROVER_BROKER_CHILD_CA";

/// Not a test of its own: the broker of the tests below, in a child process. Prints its
/// port, then its counters every 100 ms, until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the other tests of this file, in a child process"]
async fn broker_child_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    // Idle sockets hold their descriptors for the whole test: the connect timeout has its
    // own test in broker.rs.
    let tls = std::env::var_os(CHILD_CA_ENV).map(|path| {
        let (config, ca) = test_tls();
        std::fs::write(path, ca).expect("CA written for the parent");
        config
    });
    let (broker, addr) = start_broker(|s| {
        s.connect_timeout = Duration::from_secs(60);
        if let Some(config) = tls {
            s.insecure_listen = None;
            s.tls_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
            s.tls = Some(Arc::new(config));
        }
    })
    .await;
    println!("PORT {}", addr.port());
    let handle = broker.handle();
    loop {
        let s = handle.stats();
        println!(
            "STATS {} {} {} {}",
            s.accepted, s.accept_errors, s.connections_now, s.connect_timeouts
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct ChildStats {
    accepted: u64,
    accept_errors: u64,
    connections_now: u64,
    connect_timeouts: u64,
}

struct BrokerProcess {
    child: Child,
    addr: SocketAddr,
    stats: Arc<Mutex<ChildStats>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl BrokerProcess {
    /// Starts the child with soft file-descriptor limit `nofile`.
    fn start(nofile: u32) -> BrokerProcess {
        Self::start_with(nofile, None)
    }

    /// With `ca_path`, the child speaks TLS only and writes its CA there.
    fn start_with(nofile: u32, ca_path: Option<&std::path::Path>) -> BrokerProcess {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -Sn {nofile} && exec \"$0\" \"$@\""))
            .arg(exe)
            .args([
                "broker_child_process",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_ENV, "1")
            .envs(ca_path.map(|p| (CHILD_CA_ENV, p)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("child starts");
        let stats = Arc::new(Mutex::new(ChildStats::default()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let s = stats.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("PORT ") {
                    let _ = port_tx.send(port.parse::<u16>().expect("port"));
                } else if let Some(rest) = line.strip_prefix("STATS ") {
                    let n: Vec<u64> = rest.split(' ').filter_map(|v| v.parse().ok()).collect();
                    if let [accepted, accept_errors, connections_now, connect_timeouts] = n[..] {
                        *s.lock().expect("stats") = ChildStats {
                            accepted,
                            accept_errors,
                            connections_now,
                            connect_timeouts,
                        };
                    }
                }
            }
        });
        let child_stderr = child.stderr.take().expect("stderr");
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(child_stderr).lines().map_while(Result::ok) {
                e.lock().expect("stderr").push(line);
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child prints its port");
        BrokerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stats,
            stderr,
        }
    }

    fn stats(&self) -> ChildStats {
        *self.stats.lock().expect("stats")
    }

    /// User + system CPU time of the child, from /proc (clock ticks of 10 ms, Linux's
    /// USER_HZ).
    fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("/proc stat");
        let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after_comm.split(' ').collect();
        // Fields 14 and 15 of stat(5); after_comm starts at field 3.
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_millis(ticks * 10)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens up to `n` TCP connections, 100 at a time; those the kernel's backlog cannot take
/// within a second are given up.
async fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n.div_ceil(100) {
        let batch: Vec<_> = (0..100)
            .map(|_| {
                tokio::spawn(tokio::time::timeout(
                    Duration::from_secs(1),
                    TcpStream::connect(addr),
                ))
            })
            .collect();
        for task in batch {
            if let Ok(Ok(Ok(stream))) = task.await {
                streams.push(stream);
            }
        }
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_fd_limit_neither_spin_nor_stop_service() {
    let broker = BrokerProcess::start(1024);
    let mut controller = connected_client(broker.addr, "drover-controller-1", CONTROLLER).await;
    controller
        .subscribe("drover/v1/nodes/+/status", QoS::AtMostOnce)
        .await;
    let a = connected_client(broker.addr, "drover-agent-a", NODE_A).await;

    let started = Instant::now();
    let idle = open_idle(broker.addr, 2_000).await;
    println!(
        "{} idle connections open after {:?}",
        idle.len(),
        started.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(10), || broker.stats().accept_errors > 0).await,
        "the child runs out of file descriptors: {:?}",
        broker.stats()
    );

    // Out of descriptors, the accept loop backs off instead of spinning.
    let cpu_before = broker.cpu_time();
    let errors_before = broker.stats().accept_errors;
    let window = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..5u32 {
        let sent = Instant::now();
        a.client
            .publish(
                "drover/v1/nodes/a/status",
                QoS::AtMostOnce,
                false,
                i.to_string(),
            )
            .await
            .expect("queued");
        let p = controller
            .next_publish(Duration::from_secs(1))
            .await
            .expect("existing clients are served");
        assert_eq!(&p.payload[..], i.to_string().as_bytes());
        worst = worst.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await; // measurement window
    }
    let cpu = broker.cpu_time().saturating_sub(cpu_before);
    let share = cpu.as_secs_f64() / window.elapsed().as_secs_f64();
    let stats = broker.stats();
    println!(
        "out of fds: child CPU {:.0}% of a core, worst latency {worst:?}, {stats:?}",
        share * 100.0
    );
    assert!(share < 0.3, "the broker spins: {:.0}% CPU", share * 100.0);
    // Still out of descriptors, retrying accept() every 100 ms, not as fast as the timer
    // allows.
    let retries = stats.accept_errors - errors_before;
    let allowed = (window.elapsed().as_secs_f64() * 15.0) as u64 + 5;
    assert!(
        retries > 0,
        "the window measured a broker out of descriptors: {stats:?}"
    );
    assert!(
        stats.connections_now > 900 && stats.accepted >= stats.connections_now,
        "its descriptors are held by idle connections: {stats:?}"
    );
    assert_eq!(stats.connect_timeouts, 0, "none timed out yet: {stats:?}");
    assert!(
        retries <= allowed,
        "{retries} accept retries in {:?}",
        window.elapsed()
    );

    // Once descriptors are free, new clients get in again.
    drop(idle);
    let mut newcomer = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while newcomer.is_none() && Instant::now() < deadline {
        let mut c = client(options(broker.addr, "drover-agent-b", Some(NODE_B)));
        if c.connected().await.is_ok() {
            newcomer = Some(c);
        }
    }
    assert!(
        newcomer.is_some(),
        "a new client is accepted once descriptors are free: {:?}",
        broker.stats()
    );

    let warnings = broker
        .stderr
        .lock()
        .expect("stderr")
        .iter()
        .filter(|l| l.contains("cannot accept"))
        .count();
    let allowed = 1 + started.elapsed().as_secs() as usize / 10;
    println!(
        "{warnings} accept warnings logged in {:?}",
        started.elapsed()
    );
    assert!(
        warnings <= allowed,
        "{warnings} accept warnings, at most one per 10 s allowed"
    );
}

fn connect_bytes(client_id: &str) -> Vec<u8> {
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 0;
    connect.set_login(CONTROLLER.0, CONTROLLER.1);
    encode(&Packet::Connect(connect))
}

async fn read_connack(stream: &mut TcpStream) -> bool {
    let mut buf = BytesMut::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while buf.len() < 4 {
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return false,
        }
    }
    buf[..4] == [0x20, 0x02, 0x00, 0x00]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_authenticated_connections_cost_a_few_kib_each() {
    const N: usize = 2_000;
    let broker = BrokerProcess::start(20_000);
    // Warm up allocator and runtime with a few connections first.
    let mut warm = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(broker.addr).await.expect("connect");
        s.write_all(&connect_bytes(&format!("drover-controller-warm-{i}")))
            .await
            .expect("write");
        assert!(read_connack(&mut s).await);
        warm.push(s);
    }
    let before = broker.rss_kib();
    let mut streams = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = TcpStream::connect(broker.addr).await.expect("connect");
        s.write_all(&connect_bytes(&format!("drover-controller-{i}")))
            .await
            .expect("write");
        assert!(read_connack(&mut s).await, "connection {i} accepted");
        streams.push(s);
    }
    let after = broker.rss_kib();
    let per_connection = (after.saturating_sub(before)) as f64 / N as f64;
    println!(
        "RSS {before} KiB -> {after} KiB for {N} idle connections: {per_connection:.1} KiB each"
    );
    assert!(
        per_connection < 16.0,
        "{per_connection:.1} KiB per idle connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_connections_cost_what_rustls_needs_and_a_few_kib() {
    const N: usize = 500;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_path = dir.path().join("ca.der");
    let broker = BrokerProcess::start_with(20_000, Some(&ca_path));
    let connector = tokio_rustls::TlsConnector::from(client_tls_trusting(
        std::fs::read(&ca_path).expect("the child wrote its CA"),
    ));
    let server_name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let connect = |i: usize| {
        let connector = connector.clone();
        let server_name = server_name.clone();
        let addr = broker.addr;
        async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let mut tls = connector
                .connect(server_name, tcp)
                .await
                .expect("TLS handshake");
            tls.write_all(&connect_bytes(&format!("drover-controller-{i}")))
                .await
                .expect("write");
            let mut ack = [0u8; 4];
            tls.read_exact(&mut ack).await.expect("CONNACK");
            assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
            tls
        }
    };
    let mut warm = Vec::new();
    for i in 0..20 {
        warm.push(connect(100_000 + i).await);
    }
    let before = broker.rss_kib();
    let mut streams = Vec::with_capacity(N);
    for i in 0..N {
        streams.push(connect(i).await);
    }
    let after = broker.rss_kib();
    let per_connection = (after.saturating_sub(before)) as f64 / N as f64;
    println!("TLS: RSS {before} KiB -> {after} KiB for {N} idle connections: {per_connection:.1} KiB each");
    assert!(
        per_connection < 32.0,
        "{per_connection:.1} KiB per idle TLS connection"
    );
}
