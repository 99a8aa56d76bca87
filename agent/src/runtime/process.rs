//! Containers as host processes: one process group per container, output to its log file,
//! the whole group signalled on stop and killed when the main process ends (no process of
//! a pod outlives it).

use std::io;
use std::process::Stdio;

use drover_proto::msg::{DesiredContainer, DesiredPod};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;

use super::cgroup::Cgroups;
use super::env::expand;
use super::logfile::{LogPaths, LogWriter};
use crate::supervisor::StopSignal;

/// PATH given to process pods (they do not inherit the agent's environment).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment variable that marks a process as belonging to a pod (used to find
/// leftovers of a previous agent run).
pub const POD_UID_ENV: &str = "DROVER_POD_UID";

/// Identifies one run of one container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunKey {
    /// Pod UID.
    pub uid: String,
    /// Container index.
    pub index: usize,
    /// Run number (increases with every start).
    pub run: u64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessExit {
    /// Which run.
    pub key: RunKey,
    /// 128+N for signal N.
    pub exit_code: i32,
    /// Killing signal or 0.
    pub signal: i32,
    /// The kernel's OOM killer acted in the container's cgroup.
    pub oom_killed: bool,
}

/// What a new process needs to know beyond its container.
pub struct Launch<'a> {
    /// The pod.
    pub pod: &'a DesiredPod,
    /// The container.
    pub container: &'a DesiredContainer,
    /// The node's name.
    pub node: &'a str,
    /// Its log files.
    pub logs: LogPaths,
    /// Log size cap per part.
    pub log_cap: u64,
    /// Where resource limits are applied.
    pub cgroups: &'a Cgroups,
}

fn environment(launch: &Launch) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOME".to_string(), "/".to_string()),
        (
            "HOSTNAME".to_string(),
            super::container::plan::pod_hostname(launch.pod),
        ),
        ("DROVER_POD_NAME".to_string(), launch.pod.name.clone()),
        (
            "DROVER_POD_NAMESPACE".to_string(),
            launch.pod.namespace.clone(),
        ),
        (POD_UID_ENV.to_string(), launch.pod.uid.clone()),
        ("DROVER_NODE_NAME".to_string(), launch.node.to_string()),
    ];
    env.extend(launch.container.env.iter().cloned());
    env
}

/// Starts a run; its end is sent to `exits`. Returns the process id (also its group id).
pub fn spawn(
    launch: &Launch,
    key: RunKey,
    exits: mpsc::UnboundedSender<ProcessExit>,
) -> Result<u32, String> {
    let container = launch.container;
    if let Some(image) = &container.image {
        return Err(format!(
            "image \"{image}\" needs a container engine, which this agent does not support yet; set runtimeClassName: process to run the container's command as a host process"
        ));
    }
    let env = environment(launch);
    let mut argv: Vec<String> = container
        .command
        .iter()
        .chain(container.args.iter())
        .map(|a| expand(a, &env))
        .collect();
    if argv.is_empty() {
        return Err("the container has no command".into());
    }
    let program = argv.remove(0);
    launch
        .logs
        .start_run(key.run > 1)
        .map_err(|e| format!("cannot prepare the log directory: {e}"))?;
    let writer = LogWriter::open(&launch.logs, launch.log_cap)
        .map_err(|e| format!("cannot open the log file: {e}"))?;

    let mut command = Command::new(&program);
    command
        .args(&argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(container.working_dir.as_deref().unwrap_or("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(uid) = container.run_as_user {
        command.uid(uid);
    }
    if let Some(gid) = container.run_as_group {
        command.gid(gid);
    }
    let limited = container.memory_limit_bytes.is_some() || container.cpu_limit_millis.is_some();
    let cgroup = if limited {
        let name = crate::pod_paths::cgroup_name(&launch.pod.uid, &container.name, key.run)
            .map_err(|e| format!("cannot create the container's cgroup: {e}"))?;
        launch
            .cgroups
            .create(
                &name,
                container.memory_limit_bytes,
                container.cpu_limit_millis,
            )
            .map_err(|e| format!("cannot create the container's cgroup: {e}"))?
    } else {
        None
    };
    prepare_child(
        &mut command,
        cgroup.as_ref().map(|c| c.procs_fds()).unwrap_or_default(),
    );
    let mut child = command
        .spawn()
        .map_err(|e| describe_spawn_error(&program, container.working_dir.as_deref(), &e))?;
    let pid = child
        .id()
        .ok_or("the process exited before it could be watched")?;

    let mut copies = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        copies.push(tokio::spawn(copy_to_log(stdout, writer.clone())));
    }
    if let Some(stderr) = child.stderr.take() {
        copies.push(tokio::spawn(copy_to_log(stderr, writer)));
    }
    tokio::spawn(async move {
        let status = child.wait().await;
        // The main process is gone: nothing else of the container may keep running.
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        for copy in copies {
            let _ = copy.await;
        }
        let oom_killed = cgroup.as_ref().is_some_and(|c| c.oom_killed());
        if let Some(cgroup) = cgroup {
            cgroup.remove();
        }
        let (exit_code, signal) = match status {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(code), _) => (code, 0),
                    (None, Some(sig)) => (128 + sig, sig),
                    (None, None) => (255, 0),
                }
            }
            Err(_) => (255, 0),
        };
        let _ = exits.send(ProcessExit {
            key,
            exit_code,
            signal,
            oom_killed,
        });
    });
    Ok(pid)
}

fn describe_spawn_error(program: &str, working_dir: Option<&str>, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => match working_dir {
            Some(dir) if !std::path::Path::new(dir).is_dir() => {
                format!("working directory \"{dir}\": no such file or directory")
            }
            _ => format!("exec \"{program}\": no such file or directory"),
        },
        io::ErrorKind::PermissionDenied => format!("exec \"{program}\": permission denied"),
        _ => format!("exec \"{program}\": {error}"),
    }
}

async fn copy_to_log(mut stream: impl tokio::io::AsyncRead + Unpin, writer: LogWriter) {
    let mut buffer = vec![0u8; 8192];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if writer.write(&buffer[..n]).is_err() {
                    // The log is lost but the process must not block on a full pipe.
                    continue;
                }
            }
        }
    }
}

/// Signals every process of a container's group.
pub fn signal_group(pgid: u32, signal: StopSignal) {
    let signal = match signal {
        StopSignal::Term => Signal::SIGTERM,
        StopSignal::Kill => Signal::SIGKILL,
    };
    let _ = killpg(Pid::from_raw(pgid as i32), signal);
}

/// Kills what is left of a pod's processes from a previous agent run: every process in
/// group `pgid` that carries the pod's UID in its environment (a reused group id of some
/// other process is left alone).
pub fn kill_leftovers(pgid: u32, pod_uid: &str) -> usize {
    let marker = format!("{POD_UID_ENV}={pod_uid}");
    let mut killed = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may contain spaces) start after ") ".
        let Some(after) = stat.rsplit_once(") ").map(|(_, rest)| rest) else {
            continue;
        };
        let group = after
            .split_whitespace()
            .nth(2)
            .and_then(|g| g.parse::<u32>().ok());
        if group != Some(pgid) {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes())
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed += 1;
        }
    }
    killed
}

/// Between fork and exec, the child: asks the kernel to kill it if the agent dies (kill -9
/// included), so a crashed agent leaves no unmanaged pod process (leftovers in the group are
/// killed at the next start, [`kill_leftovers`]); and enters its cgroups, so that nothing it
/// starts escapes the limits.
#[allow(unsafe_code)]
fn prepare_child(command: &mut Command, cgroup_procs: Vec<i32>) {
    // SAFETY: the closure runs in the child between fork and exec. It only calls prctl(2)
    // and write(2), both async-signal-safe, on descriptors the parent opened and keeps open
    // until the child has been spawned; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            for fd in &cgroup_procs {
                let fd = std::os::fd::BorrowedFd::borrow_raw(*fd);
                nix::unistd::write(fd, b"0").map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
}
