//! Running one probe: a command (in the process container's environment and cgroup, or in
//! the engine container), an HTTP GET, a TCP connection or a gRPC health check, each bounded
//! by the probe's timeout. The outcome's message says why a probe failed, as Kubernetes'
//! `Unhealthy` events do.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use drover_proto::msg::WireProbeHandler;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::container::engine::ContainerEngine;
use super::container::engine::EXEC_OUTPUT_MAX;
use super::process::ProbeCommand;

/// The `User-Agent` of HTTP probes, Kubernetes' own (some servers answer probes by it).
const USER_AGENT: &str = "kube-probe/1.32";

/// Most bytes of an HTTP answer read to find its status.
const HTTP_HEAD_MAX: usize = 10 * 1024;

/// Where a probe's command runs.
pub enum ExecIn {
    /// A process container: this command, ready to start.
    Process(Box<Result<ProbeCommand, String>>),
    /// An engine container.
    Engine {
        /// The engine.
        engine: Arc<dyn ContainerEngine>,
        /// The container.
        id: String,
    },
}

/// Where a probe without a `host` connects: the pod's address.
#[derive(Clone)]
pub enum PodAddress {
    /// Known: the host's loopback for pods on the host's network.
    Known(IpAddr),
    /// The engine container's address, to be asked for.
    Engine {
        /// The engine.
        engine: Arc<dyn ContainerEngine>,
        /// The container.
        id: String,
    },
}

impl PodAddress {
    /// The loopback address, for pods sharing the host's network.
    pub fn host() -> PodAddress {
        PodAddress::Known(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    async fn resolve(&self) -> Result<IpAddr, String> {
        match self {
            PodAddress::Known(ip) => Ok(*ip),
            PodAddress::Engine { engine, id } => match engine.address(id).await {
                Ok(Some(ip)) => Ok(ip),
                // On the host's network after all.
                Ok(None) => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                Err(e) => Err(format!("cannot find the container's address: {e}")),
            },
        }
    }
}

/// How a probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// It succeeded.
    pub success: bool,
    /// Why it failed (or what a command wrote).
    pub message: String,
    /// The pod address it used, to be given next time.
    pub address: Option<IpAddr>,
}

/// Runs a probe. `exec` is where a command runs (needed for `exec` probes only).
pub async fn run(
    handler: &WireProbeHandler,
    timeout: Duration,
    exec: Option<ExecIn>,
    pod: PodAddress,
) -> Outcome {
    let mut address = None;
    let result = match handler {
        WireProbeHandler::Exec { command } => match exec {
            Some(exec) => run_command(exec, command, timeout).await,
            None => Err("the probe's command has nowhere to run".into()),
        },
        WireProbeHandler::HttpGet {
            host,
            port,
            path,
            https,
            headers,
        } => match target(host.as_deref(), &pod).await {
            Ok((host, resolved)) => {
                address = resolved;
                let request = HttpRequest {
                    host: &host,
                    port: *port,
                    path,
                    https: *https,
                    headers,
                };
                bounded(timeout, http_get(&request)).await
            }
            Err(e) => Err(e),
        },
        WireProbeHandler::TcpSocket { host, port } => match target(host.as_deref(), &pod).await {
            Ok((host, resolved)) => {
                address = resolved;
                bounded(timeout, async {
                    connect(&host, *port).await.map(|_| String::new())
                })
                .await
            }
            Err(e) => Err(e),
        },
        WireProbeHandler::Grpc { port, service } => match pod.resolve().await {
            Ok(ip) => {
                address = Some(ip);
                let host = ip.to_string();
                bounded(timeout, super::grpc_health::check(&host, *port, service)).await
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(message) => Outcome {
            success: true,
            message,
            address,
        },
        Err(message) => Outcome {
            success: false,
            message,
            address,
        },
    }
}

/// The host a network probe connects to, and the pod address it resolved to, if it used one.
async fn target(host: Option<&str>, pod: &PodAddress) -> Result<(String, Option<IpAddr>), String> {
    match host {
        Some(host) => Ok((host.to_string(), None)),
        None => {
            let ip = pod.resolve().await?;
            Ok((ip.to_string(), Some(ip)))
        }
    }
}

async fn bounded(
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<String, String>>,
) -> Result<String, String> {
    match tokio::time::timeout(timeout, probe).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "timeout: no answer within {}",
            humantime::format_duration(timeout)
        )),
    }
}

async fn run_command(
    exec: ExecIn,
    command: &[String],
    timeout: Duration,
) -> Result<String, String> {
    let shown = command.join(" ");
    match exec {
        ExecIn::Process(prepared) => {
            let child = (*prepared)?
                .spawn()
                .map_err(|e| format!("cannot run \"{shown}\": {e}"))?;
            let group = child.id();
            let waited = tokio::time::timeout(timeout, collect(child)).await;
            match waited {
                Ok(Ok((0, output))) => Ok(output),
                Ok(Ok((_, output))) => Err(output),
                Ok(Err(e)) => Err(format!("cannot run \"{shown}\": {e}")),
                Err(_) => {
                    // The whole group: what the command started goes with it.
                    if let Some(pgid) = group {
                        super::process::signal_group(pgid, crate::supervisor::StopSignal::Kill);
                    }
                    Err(format!(
                        "command \"{shown}\" timed out after {}",
                        humantime::format_duration(timeout)
                    ))
                }
            }
        }
        ExecIn::Engine { engine, id } => {
            match tokio::time::timeout(timeout, engine.exec(&id, command)).await {
                Ok(Ok(done)) if done.exit_code == 0 => Ok(text(&done.output)),
                Ok(Ok(done)) if done.output.is_empty() => Err(format!(
                    "command \"{shown}\" exited with {}",
                    done.exit_code
                )),
                Ok(Ok(done)) => Err(text(&done.output)),
                Ok(Err(e)) => Err(format!("cannot run \"{shown}\" in the container: {e}")),
                Err(_) => Err(format!(
                    "command \"{shown}\" timed out after {}",
                    humantime::format_duration(timeout)
                )),
            }
        }
    }
}

/// Waits for a probe's command, keeping the start of its output (stdout, then stderr).
async fn collect(mut child: tokio::process::Child) -> std::io::Result<(i32, String)> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (out, err, status) = tokio::join!(read_capped(stdout), read_capped(stderr), child.wait());
    let mut output = out;
    output.extend(err);
    output.truncate(EXEC_OUTPUT_MAX);
    let status = status?;
    let code = status.code().unwrap_or(128 + 9);
    let mut shown = text(&output);
    if shown.is_empty() && code != 0 {
        shown = format!("exited with {code}");
    }
    Ok((code, shown))
}

async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buffer = [0u8; 4096];
    // Read to the end (a full pipe would block the command), keeping only the start.
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let room = EXEC_OUTPUT_MAX.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
    }
    kept
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_string()
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("dial tcp {}: {e}", join_host_port(host, port)))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

struct HttpRequest<'a> {
    host: &'a str,
    port: u16,
    path: &'a str,
    https: bool,
    headers: &'a [(String, String)],
}

impl HttpRequest<'_> {
    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!(
            "{scheme}://{}{}",
            join_host_port(self.host, self.port),
            self.path
        )
    }

    /// The request's bytes. A header the probe sets replaces the default of that name.
    fn bytes(&self) -> Vec<u8> {
        let set = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let mut head = format!("GET {} HTTP/1.1\r\n", self.path);
        if !set("host") {
            head.push_str(&format!(
                "Host: {}\r\n",
                join_host_port(self.host, self.port)
            ));
        }
        if !set("user-agent") {
            head.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
        }
        if !set("accept") {
            head.push_str("Accept: */*\r\n");
        }
        for (name, value) in self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        head.into_bytes()
    }
}

async fn http_get(request: &HttpRequest<'_>) -> Result<String, String> {
    let stream = connect(request.host, request.port)
        .await
        .map_err(|e| format!("Get \"{}\": {e}", request.url()))?;
    let answer = if request.https {
        let config = crate::tls::probe_config().map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from(request.host.to_string())
            .map_err(|e| format!("Get \"{}\": {e}", request.url()))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| format!("Get \"{}\": {e}", request.url()))?;
        exchange(tls, request).await
    } else {
        exchange(stream, request).await
    };
    let head = answer.map_err(|e| format!("Get \"{}\": {e}", request.url()))?;
    match status_code(&head) {
        Some(code) if (200..400).contains(&code) => Ok(String::new()),
        Some(code) => Err(format!("HTTP probe failed with statuscode: {code}")),
        None => Err(format!(
            "Get \"{}\": malformed HTTP response",
            request.url()
        )),
    }
}

/// Sends the request and reads the answer up to the end of its status line.
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &HttpRequest<'_>,
) -> std::io::Result<Vec<u8>> {
    stream.write_all(&request.bytes()).await?;
    stream.flush().await?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < HTTP_HEAD_MAX {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    Ok(head)
}

/// The status of `HTTP/1.x NNN reason`.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3)
        .then(|| code.parse::<u16>().ok())
        .flatten()
        .filter(|c| (100..600).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"HTTP/1.1 302\r\n"), Some(302));
        for bad in [
            &b""[..],
            b"SSH-2.0-OpenSSH\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/1.1 abc\r\n",
            b"HTTP/2 200\r\n",
            b"HTTP/1.1 099 x\r\n",
        ] {
            assert_eq!(status_code(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_header_the_probe_sets_replaces_the_default() {
        let headers = vec![("Host".to_string(), "example.org".to_string())];
        let request = HttpRequest {
            host: "10.0.0.5",
            port: 8080,
            path: "/healthz",
            https: false,
            headers: &headers,
        };
        let text = String::from_utf8(request.bytes()).unwrap();
        assert!(text.starts_with("GET /healthz HTTP/1.1\r\n"), "{text}");
        assert_eq!(text.matches("Host:").count(), 1, "{text}");
        assert!(text.contains("Host: example.org\r\n"), "{text}");
        assert!(text.contains("User-Agent: kube-probe/1.32\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\n\r\n"), "{text}");
        let v6 = HttpRequest {
            host: "fd00::1",
            headers: &[],
            ..request
        };
        assert_eq!(v6.url(), "http://[fd00::1]:8080/healthz");
    }

    async fn serve_once(answer: &'static [u8]) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(answer).await;
            }
        });
        port
    }

    fn get(port: u16) -> WireProbeHandler {
        WireProbeHandler::HttpGet {
            host: None,
            port,
            path: "/".into(),
            https: false,
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_real_sockets() {
        let second = Duration::from_secs(1);
        let ok = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let outcome = run(&get(ok), second, None, PodAddress::host()).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(outcome.address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));

        let failing = serve_once(b"HTTP/1.1 500 Internal Server Error\r\n\r\n").await;
        let outcome = run(&get(failing), second, None, PodAddress::host()).await;
        assert_eq!(outcome.message, "HTTP probe failed with statuscode: 500");

        // Nothing listens on a port just closed.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let outcome = run(&get(closed), second, None, PodAddress::host()).await;
        assert!(!outcome.success);
        assert!(
            outcome.message.contains("connection refused")
                || outcome.message.contains("Connection refused"),
            "{}",
            outcome.message
        );
        let tcp = WireProbeHandler::TcpSocket {
            host: Some("127.0.0.1".into()),
            port: closed,
        };
        assert!(!run(&tcp, second, None, PodAddress::host()).await.success);

        // A server that accepts and never answers: the timeout decides.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let outcome = run(
            &get(port),
            Duration::from_millis(200),
            None,
            PodAddress::host(),
        )
        .await;
        assert!(
            outcome.message.starts_with("timeout"),
            "{}",
            outcome.message
        );
        let tcp = WireProbeHandler::TcpSocket { host: None, port };
        assert!(run(&tcp, second, None, PodAddress::host()).await.success);
    }
}
