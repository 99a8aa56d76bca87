//! Containers as host processes: one process group per container, led by its keeper
//! ([`super::keeper`]), output straight into its log file, the whole group signalled on
//! stop and killed when the main process ends (no process of a pod outlives it). Neither
//! the processes nor their output depend on the agent, so they outlive its restarts; a
//! new agent adopts them ([`adopt`]).

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use drover_proto::msg::{DesiredContainer, DesiredPod};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::mpsc;

use super::cgroup::{Cgroups, ContainerCgroup};
use super::env::expand;
use super::keeper::{self, KeptStatus};
use super::logfile::LogPaths;
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
    /// The command never started (the keeper could not exec it): why.
    pub cannot_run: Option<String>,
}

/// What identifies a running container process across agent restarts: its keeper's pid
/// (also the pod's process group) and that process's start time, so a reused pid is not
/// taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Kept {
    /// The keeper's pid, which is the process group of the container.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub started: u64,
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
    /// Where resource limits are applied.
    pub cgroups: &'a Cgroups,
    /// The keeper's binary (the agent's own), or `None` where no keeper can run: then the
    /// agent is the parent and the pod dies with it.
    pub keeper: Option<&'a Path>,
    /// Whether the pod dies with the agent (the old behaviour, `--stop-pods-on-exit`).
    pub die_with_agent: bool,
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

/// Finds `program` as execvp would, to refuse a missing command with Kubernetes' message
/// before the keeper starts (the keeper reports what is left, such as a bad format).
fn check_command(
    program: &str,
    env: &[(String, String)],
    working_dir: Option<&str>,
) -> Result<(), String> {
    if let Some(dir) = working_dir {
        if !Path::new(dir).is_dir() {
            return Err(format!(
                "working directory \"{dir}\": no such file or directory"
            ));
        }
    }
    let found = if program.contains('/') {
        let path = Path::new(working_dir.unwrap_or("/")).join(program);
        path.exists()
    } else {
        let search = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        search
            .split(':')
            .filter(|dir| !dir.is_empty())
            .any(|dir| Path::new(dir).join(program).is_file())
    };
    if found {
        Ok(())
    } else {
        Err(format!("exec \"{program}\": no such file or directory"))
    }
}

/// Why a run could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnError {
    /// For users.
    pub message: String,
    /// The disk is full: the run may start once there is space (not the container's fault).
    pub no_space: bool,
}

impl From<String> for SpawnError {
    fn from(message: String) -> SpawnError {
        SpawnError {
            message,
            no_space: false,
        }
    }
}

impl From<&str> for SpawnError {
    fn from(message: &str) -> SpawnError {
        SpawnError::from(message.to_string())
    }
}

fn file_error(what: &str, e: io::Error) -> SpawnError {
    SpawnError {
        message: format!("{what}: {e}"),
        no_space: e.raw_os_error() == Some(nix::libc::ENOSPC),
    }
}

/// Starts a run through a keeper; its end is sent to `exits`.
pub fn spawn(
    launch: &Launch,
    key: RunKey,
    exits: mpsc::UnboundedSender<ProcessExit>,
) -> Result<Kept, SpawnError> {
    let container = launch.container;
    if let Some(image) = &container.image {
        return Err(format!(
            "image \"{image}\" needs a container engine, which this agent does not support yet; set runtimeClassName: process to run the container's command as a host process"
        )
        .into());
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
    check_command(&program, &env, container.working_dir.as_deref())?;
    // The status file first: on a full disk it is what fails, before the last run's log
    // has been moved to previous.log (a retry would move it again, over the real one).
    let status = launch
        .logs
        .create_status()
        .map_err(|e| file_error("cannot create the container's status file", e))?;
    launch
        .logs
        .start_run(key.run > 1)
        .map_err(|e| file_error("cannot prepare the log directory", e))?;
    let log = launch
        .logs
        .open_for_process()
        .map_err(|e| file_error("cannot open the log file", e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| file_error("cannot open the log file", e))?;

    let mut command = match launch.keeper {
        Some(path) => {
            let mut command = Command::new(path);
            command
                .arg0(keeper::KEEPER_NAME)
                .arg(keeper::KEEPER_ARG)
                .arg(&program);
            command
        }
        None => Command::new(&program),
    };
    command
        .args(&argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(container.working_dir.as_deref().unwrap_or("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .process_group(0)
        .kill_on_drop(false);
    if let Some(uid) = container.run_as_user {
        command.uid(uid);
    }
    if let Some(gid) = container.run_as_group {
        command.gid(gid);
    }
    let cgroup = container_cgroup(launch, &key, true)?;
    prepare_child(
        &mut command,
        cgroup.as_ref().map(|c| c.procs_fds()).unwrap_or_default(),
        launch.keeper.map(|_| status.as_raw_fd()),
        launch.die_with_agent || launch.keeper.is_none(),
        container.security.no_new_privileges,
    );
    let spawned = command.spawn().map_err(|e| {
        let program = launch.keeper.map_or(program.as_ref(), Path::as_os_str);
        keeper::describe_spawn_error(program, &e)
    });
    let mut child = spawned?;
    drop(status);
    let pid = child
        .id()
        .ok_or("the process exited before it could be watched")?;
    let started = start_time(pid).unwrap_or(0);
    let status_path = launch.logs.status();
    let kept_by_keeper = launch.keeper.is_some();
    tokio::spawn(async move {
        let waited = child.wait().await;
        let status = if kept_by_keeper {
            read_status(&status_path)
        } else {
            // Without a keeper, nothing else takes the rest of the group with the process.
            kill_leftovers(pid, &key.uid);
            waited.ok().map(|exit| KeptStatus::of(&exit))
        };
        let _ = exits.send(finish(key, pid, status, cgroup));
    });
    Ok(Kept { pid, started })
}

/// Whether the agent runs as root (its effective uid is 0), as its host processes do
/// without `runAsUser`.
pub fn agent_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            uids.split_whitespace()
                .nth(1)
                .map(|effective| effective == "0")
        })
        // Unknown: assume the worst, and refuse.
        .unwrap_or(true)
}

/// A probe's command for a running process container: in the container's environment,
/// working directory, user and cgroup, in a process group of its own (to be killed whole
/// at its timeout), dying with the agent. Its output is piped.
pub fn probe_command(
    launch: &Launch,
    key: &RunKey,
    command: &[String],
) -> Result<ProbeCommand, String> {
    let env = environment(launch);
    let container = launch.container;
    let (program, args) = command.split_first().ok_or("the probe has no command")?;
    check_command(program, &env, container.working_dir.as_deref())?;
    let mut probe = Command::new(program);
    probe
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(container.working_dir.as_deref().unwrap_or("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(uid) = container.run_as_user {
        probe.uid(uid);
    }
    if let Some(gid) = container.run_as_group {
        probe.gid(gid);
    }
    let mut cgroup = container_cgroup(launch, key, false)?;
    if let Some(cgroup) = &mut cgroup {
        cgroup
            .open_for_joining()
            .map_err(|e| format!("cannot enter the container's cgroup: {e}"))?;
    }
    prepare_child(
        &mut probe,
        cgroup.as_ref().map(|c| c.procs_fds()).unwrap_or_default(),
        None,
        true,
        container.security.no_new_privileges,
    );
    Ok(ProbeCommand {
        command: probe,
        cgroup,
    })
}

/// A probe's command, holding open the cgroup files its child writes itself into.
pub struct ProbeCommand {
    command: Command,
    cgroup: Option<ContainerCgroup>,
}

impl ProbeCommand {
    /// Starts it.
    pub fn spawn(mut self) -> io::Result<tokio::process::Child> {
        let child = self.command.spawn();
        drop(self.cgroup);
        child
    }
}

/// What became of a container process a previous agent run started.
#[derive(Debug)]
pub enum Adopted {
    /// It still runs and is watched again; its end goes to `exits` as for a new one.
    Running,
    /// It ended while the agent was away.
    Ended(ProcessExit),
}

/// Takes over the watch of a container process a previous agent run started.
pub fn adopt(
    launch: &Launch,
    key: RunKey,
    kept: Kept,
    exits: mpsc::UnboundedSender<ProcessExit>,
) -> Adopted {
    let status_path = launch.logs.status();
    let cgroup = container_cgroup(launch, &key, false).ok().flatten();
    // Opened first, then checked: the pidfd names one process even if the pid is reused.
    let pidfd = pidfd_open(kept.pid);
    let uid = key.uid.clone();
    let is_ours = move || is_keeper_of(kept, &uid);
    if !is_ours() {
        return Adopted::Ended(finish(key, kept.pid, read_status(&status_path), cgroup));
    }
    match pidfd {
        Ok(fd) => {
            tokio::spawn(async move {
                wait_pidfd(fd, kept).await;
                let _ = exits.send(finish(key, kept.pid, read_status(&status_path), cgroup));
            });
        }
        Err(_) => {
            // No pidfd (a kernel before 5.3, a seccomp filter, no descriptor left): the
            // process is watched through /proc.
            tokio::spawn(async move {
                while is_ours() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                let _ = exits.send(finish(key, kept.pid, read_status(&status_path), cgroup));
            });
        }
    }
    Adopted::Running
}

/// Whether `kept.pid` is still the keeper that was recorded: same start time, or, where
/// none could be read at spawn, a process that carries the pod's marker.
fn is_keeper_of(kept: Kept, pod_uid: &str) -> bool {
    match start_time(kept.pid) {
        None => false,
        Some(_) if kept.started == 0 => {
            let marker = format!("{POD_UID_ENV}={pod_uid}");
            std::fs::read(format!("/proc/{}/environ", kept.pid))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        }
        Some(started) => started == kept.started,
    }
}

fn container_cgroup(
    launch: &Launch,
    key: &RunKey,
    create: bool,
) -> Result<Option<ContainerCgroup>, String> {
    let container = launch.container;
    let limited = container.memory_limit_bytes.is_some() || container.cpu_limit_millis.is_some();
    if !limited {
        return Ok(None);
    }
    let name = crate::pod_paths::cgroup_name(&launch.pod.uid, &container.name, key.run)
        .map_err(|e| format!("cannot create the container's cgroup: {e}"))?;
    if !create {
        return Ok(launch.cgroups.existing(&name));
    }
    launch
        .cgroups
        .create(
            &name,
            container.memory_limit_bytes,
            container.cpu_limit_millis,
        )
        .map_err(|e| format!("cannot create the container's cgroup: {e}"))
}

fn read_status(path: &Path) -> Option<KeptStatus> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| KeptStatus::parse(&text))
}

/// After the keeper (or the container's process, without one) ended: how the container
/// ended. Without a status the keeper was killed, and the container with it (SIGKILL).
fn finish(
    key: RunKey,
    pgid: u32,
    status: Option<KeptStatus>,
    cgroup: Option<ContainerCgroup>,
) -> ProcessExit {
    // A keeper that wrote its status took the rest of its group with it. Otherwise, what is
    // left goes: only processes that carry the pod's marker, since the group's id may
    // belong to someone else by now.
    if status.is_none() {
        kill_leftovers(pgid, &key.uid);
    }
    let oom_killed = cgroup.as_ref().is_some_and(|c| c.oom_killed());
    if let Some(cgroup) = cgroup {
        tokio::spawn(cgroup.remove_when_empty());
    }
    let (exit_code, signal, cannot_run) = match status {
        Some(KeptStatus::Exited { code, signal }) => (code, signal, None),
        Some(KeptStatus::CannotRun(message)) => (128, 0, Some(message)),
        None => (137, 9, None),
    };
    ProcessExit {
        key,
        exit_code,
        signal,
        oom_killed,
        cannot_run,
    }
}

/// A process's start time in clock ticks since boot, if it exists and is not a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // Fields after the command name (which may contain spaces) start after ") ".
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    // `rest` starts at field 3 (state); the start time is field 22.
    fields.nth(18)?.parse().ok()
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, nix::errno::Errno> {
    #[allow(unsafe_code)]
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    #[allow(unsafe_code)]
    // SAFETY: the descriptor was just returned to this process and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the process behind a pidfd ends (the descriptor becomes readable).
async fn wait_pidfd(fd: OwnedFd, kept: Kept) {
    #[allow(unsafe_code)]
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and unchanged until it drops.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    };
    match registered {
        Ok(fd) => {
            let _ = fd.readable().await;
        }
        Err(_) => {
            while start_time(kept.pid) == Some(kept.started) {
                tokio::time::sleep(Duration::from_millis(500)).await;
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
    kill_marked(Some(pgid), pod_uid)
}

/// Kills the processes of the given pods that are in none of their adopted process groups:
/// what a run left whose record did not say it started (the agent stopped between the
/// start and the record). `pods` maps a pod UID to the groups of its adopted keepers; only
/// process pods belong there (an engine container's processes carry the marker too).
pub fn kill_strays(pods: &HashMap<String, HashSet<u32>>) -> usize {
    let mut killed = 0;
    for (pid, group, uid) in marked_processes() {
        let Some(adopted) = pods.get(&uid) else {
            continue;
        };
        if !adopted.contains(&group) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed += 1;
        }
    }
    killed
}

/// Every process that carries a pod marker: (pid, process group, pod UID).
fn marked_processes() -> Vec<(i32, u32, String)> {
    processes()
        .into_iter()
        .filter_map(|(pid, group)| pod_marker(pid).map(|uid| (pid, group, uid)))
        .collect()
}

/// Every process: (pid, process group).
fn processes() -> Vec<(i32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name (which may contain spaces) start after ") ".
            let group = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                .and_then(|g| g.parse::<u32>().ok())?;
            Some((pid, group))
        })
        .collect()
}

/// The pod UID a process carries in its environment, if any.
fn pod_marker(pid: i32) -> Option<String> {
    let prefix = format!("{POD_UID_ENV}=");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .map(|uid| String::from_utf8_lossy(uid).into_owned())
}

/// Kills every process that carries the pod's UID in its environment, whatever its group:
/// for a pod whose record cannot say which of its processes run.
pub fn kill_pod_processes(pod_uid: &str) -> usize {
    kill_marked(None, pod_uid)
}

fn kill_marked(pgid: Option<u32>, pod_uid: &str) -> usize {
    let mut killed = 0;
    for (pid, group) in processes() {
        if pgid.is_some_and(|pgid| pgid != group) {
            continue;
        }
        if pod_marker(pid).as_deref() == Some(pod_uid) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed += 1;
        }
    }
    killed
}

/// Between fork and exec, the keeper: enters the container's cgroups, so that nothing it
/// starts escapes the limits; finds its status file on [`keeper::STATUS_FD`]; sets
/// no_new_privs for `allowPrivilegeEscalation: false` (inherited by the container's
/// process, which the keeper executes); and, only in the old behaviour, asks the kernel to
/// kill it when the agent dies.
#[allow(unsafe_code)]
fn prepare_child(
    command: &mut Command,
    cgroup_procs: Vec<i32>,
    status_fd: Option<i32>,
    die_with_agent: bool,
    no_new_privs: bool,
) {
    // SAFETY: the closure runs in the child between fork and exec. It only calls prctl(2),
    // write(2), dup2(2) and fcntl(2), all async-signal-safe, on descriptors the parent
    // opened and keeps open until the child has been spawned; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if die_with_agent {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            }
            if no_new_privs {
                nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
            }
            for fd in &cgroup_procs {
                let fd = std::os::fd::BorrowedFd::borrow_raw(*fd);
                nix::unistd::write(fd, b"0").map_err(io::Error::from)?;
            }
            let failed = match status_fd {
                None => false,
                Some(fd) if fd == keeper::STATUS_FD => {
                    nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) < 0
                }
                Some(fd) => nix::libc::dup2(fd, keeper::STATUS_FD) < 0,
            };
            if failed {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_are_read_past_a_command_name_with_spaces() {
        let stat =
            "4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        let zombie = "4242 (x) Z 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_start_time(zombie), None);
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn this_process_has_a_start_time() {
        assert!(start_time(std::process::id()).is_some_and(|t| t > 0));
    }

    #[test]
    fn missing_commands_and_working_directories_are_named() {
        let env = vec![("PATH".to_string(), "/nonexistent:/bin:/usr/bin".to_string())];
        assert_eq!(check_command("sh", &env, None), Ok(()));
        assert_eq!(
            check_command("no-such-command-here", &env, None),
            Err("exec \"no-such-command-here\": no such file or directory".into())
        );
        assert_eq!(check_command("/bin/sh", &env, Some("/")), Ok(()));
        assert_eq!(
            check_command("sh", &env, Some("/no/such/dir")),
            Err("working directory \"/no/such/dir\": no such file or directory".into())
        );
    }
}
