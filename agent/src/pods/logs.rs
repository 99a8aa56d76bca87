//! Serving log requests: a read of a container's log, optionally followed by its new output.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drover_proto::msg::{LogChunk, LogRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use futures_util::StreamExt;

use super::Outbound;
use crate::runtime::container::ContainerEngine;
use crate::runtime::logfile::LogPaths;

/// Largest log chunk per message (well under the payload limit).
const CHUNK: usize = 256 * 1024;
/// A follow that is not renewed for this long stops.
const FOLLOW_LEASE: Duration = Duration::from_secs(30);
const FOLLOW_POLL: Duration = Duration::from_millis(200);

struct Follow {
    pod_uid: String,
    renewed: Arc<AtomicI64>,
    task: JoinHandle<()>,
}

/// Running follows, by request id.
#[derive(Default)]
pub struct Follows {
    running: HashMap<u64, Follow>,
}

impl Follows {
    /// Keeps a follow task, ended by a cancel, its pod's stop, or its lease running out.
    fn register(
        &mut self,
        id: u64,
        pod_uid: String,
        renewed: Arc<AtomicI64>,
        task: JoinHandle<()>,
    ) {
        self.running.insert(
            id,
            Follow {
                pod_uid,
                renewed,
                task,
            },
        );
    }

    /// Ends the follows of a pod that stopped.
    pub fn stop_pod(&mut self, uid: &str) {
        self.running.retain(|_, f| {
            if f.pod_uid == uid {
                f.task.abort();
                false
            } else {
                true
            }
        });
    }
}

fn seconds_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn send(
    out: &mpsc::UnboundedSender<Outbound>,
    id: u64,
    data: Vec<u8>,
    done: bool,
    error: Option<String>,
) {
    let _ = out.send(Outbound::Log(LogChunk {
        id,
        data,
        done,
        error,
    }));
}

/// Where a container's output is kept.
pub enum LogSource {
    /// The agent's log files (host processes).
    Files,
    /// The engine's log of the current and previous container.
    Engine {
        /// The engine.
        engine: Arc<dyn ContainerEngine>,
        /// The current run's container.
        current: Option<String>,
        /// The previous run's container, while it exists.
        previous: Option<String>,
    },
}

/// A pod on this node, as a log request needs it.
pub struct Located {
    /// Pod name.
    pub pod_name: String,
    /// Each container's name and log source, init containers first.
    pub containers: Vec<(String, LogSource)>,
    /// How many of them are init containers.
    pub init_count: usize,
}

fn previous_not_found(container: &str, pod_name: &str) -> String {
    format!("previous terminated container \"{container}\" in pod \"{pod_name}\" not found")
}

/// Answers `request`; `located` describes the pod when it is here.
pub fn serve(
    follows: &mut Follows,
    logs_root: &Path,
    request: LogRequest,
    located: Option<Located>,
    out: mpsc::UnboundedSender<Outbound>,
) {
    follows.running.retain(|_, f| !f.task.is_finished());
    if request.cancel {
        if let Some(f) = follows.running.remove(&request.id) {
            f.task.abort();
        }
        return;
    }
    if let Some(f) = follows.running.get(&request.id) {
        f.renewed.store(seconds_now(), Ordering::Relaxed);
        return;
    }
    let Some(Located {
        pod_name,
        containers: sources,
        init_count,
    }) = located
    else {
        send(
            &out,
            request.id,
            Vec::new(),
            true,
            Some("the pod is not on this node".into()),
        );
        return;
    };
    let containers: Vec<String> = sources.iter().map(|(name, _)| name.clone()).collect();
    let (init, app) = containers.split_at(init_count.min(containers.len()));
    let container = if request.container.is_empty() {
        // As the API server: the pod's only app container, whatever its init containers.
        match app {
            [only] => only.clone(),
            _ => {
                let mut message = format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    app.join(" ")
                );
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                send(&out, request.id, Vec::new(), true, Some(message));
                return;
            }
        }
    } else if containers.contains(&request.container) {
        request.container.clone()
    } else {
        let message = format!(
            "container {} is not valid for pod {pod_name}",
            request.container
        );
        send(&out, request.id, Vec::new(), true, Some(message));
        return;
    };
    if let Some((_, LogSource::Engine { .. })) = sources.iter().find(|(n, _)| *n == container) {
        let Some((
            _,
            LogSource::Engine {
                engine,
                current,
                previous,
            },
        )) = sources.into_iter().find(|(n, _)| *n == container)
        else {
            return;
        };
        let id = if request.previous { previous } else { current };
        let Some(id) = id else {
            let message = if request.previous {
                previous_not_found(&container, &pod_name)
            } else {
                format!("container \"{container}\" in pod \"{pod_name}\" is waiting to start")
            };
            send(&out, request.id, Vec::new(), true, Some(message));
            return;
        };
        let follow = request.follow && !request.previous;
        let renewed = Arc::new(AtomicI64::new(seconds_now()));
        let tail = (request.tail_lines > 0).then_some(request.tail_lines);
        let task = tokio::spawn(stream_engine_log(
            engine,
            id,
            tail,
            follow,
            request.id,
            renewed.clone(),
            out,
        ));
        if follow {
            follows.register(request.id, request.pod_uid, renewed, task);
        }
        return;
    }
    let paths = match LogPaths::new(logs_root, &request.pod_uid, &container) {
        Ok(paths) => paths,
        Err(e) => {
            send(&out, request.id, Vec::new(), true, Some(e.to_string()));
            return;
        }
    };
    let data = match paths.read(request.previous, request.tail_lines) {
        Ok(data) => data,
        Err(e) => {
            let message = if request.previous {
                previous_not_found(&container, &pod_name)
            } else {
                format!("cannot read the log: {e}")
            };
            send(&out, request.id, Vec::new(), true, Some(message));
            return;
        }
    };
    let follow = request.follow && !request.previous;
    let chunks: Vec<Vec<u8>> = data.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let count = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        send(&out, request.id, chunk, !follow && i + 1 == count, None);
    }
    if count == 0 && !follow {
        send(&out, request.id, Vec::new(), true, None);
    }
    if follow {
        let renewed = Arc::new(AtomicI64::new(seconds_now()));
        let offset = std::fs::metadata(paths.current()).map_or(0, |m| m.len());
        let task = tokio::spawn(follow_file(
            paths.current(),
            offset,
            request.id,
            renewed.clone(),
            out,
        ));
        follows.register(request.id, request.pod_uid, renewed, task);
    }
}

async fn follow_file(
    path: PathBuf,
    mut offset: u64,
    id: u64,
    renewed: Arc<AtomicI64>,
    out: mpsc::UnboundedSender<Outbound>,
) {
    let mut ticker = tokio::time::interval(FOLLOW_POLL);
    loop {
        ticker.tick().await;
        if seconds_now() - renewed.load(Ordering::Relaxed) > FOLLOW_LEASE.as_secs() as i64 {
            send(&out, id, Vec::new(), true, None);
            return;
        }
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        if len < offset {
            // Rotated, or the container restarted: the file starts over.
            offset = 0;
        }
        if len == offset {
            continue;
        }
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        if file.seek(SeekFrom::Start(offset)).is_err() {
            continue;
        }
        let mut data = Vec::new();
        if file
            .take((len - offset).min(CHUNK as u64))
            .read_to_end(&mut data)
            .is_ok()
            && !data.is_empty()
        {
            offset += data.len() as u64;
            send(&out, id, data, false, None);
        }
    }
}

/// Sends an engine container's log, following it while the lease is renewed.
async fn stream_engine_log(
    engine: Arc<dyn ContainerEngine>,
    id: String,
    tail: Option<u32>,
    follow: bool,
    request: u64,
    renewed: Arc<AtomicI64>,
    out: mpsc::UnboundedSender<Outbound>,
) {
    let mut stream = engine.logs(&id, tail, follow);
    let mut pending: Vec<u8> = Vec::new();
    let mut lease = tokio::time::interval(FOLLOW_POLL);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(data)) => {
                    pending.extend_from_slice(&data);
                    // While following, send output as it comes; else in full chunks.
                    if follow || pending.len() >= CHUNK {
                        for chunk in pending.chunks(CHUNK) {
                            send(&out, request, chunk.to_vec(), false, None);
                        }
                        pending.clear();
                    }
                }
                Some(Err(e)) => {
                    send(&out, request, pending, true, Some(format!("cannot read the container log: {e}")));
                    return;
                }
                None => break,
            },
            _ = lease.tick(), if follow => {
                if seconds_now() - renewed.load(Ordering::Relaxed) > FOLLOW_LEASE.as_secs() as i64 {
                    break;
                }
            }
        }
    }
    let mut chunks: Vec<&[u8]> = pending.chunks(CHUNK).collect();
    let last = chunks.pop().unwrap_or(&[]);
    for chunk in chunks {
        send(&out, request, chunk.to_vec(), false, None);
    }
    send(&out, request, last.to_vec(), true, None);
}
