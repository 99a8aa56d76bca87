//! Resource limits for process pods through cgroups: the unified (v2) hierarchy when it
//! offers the `memory` and `cpu` controllers, else the v1 `memory` and `cpu` hierarchies.
//! A node with neither runs pods without limits and says so.
//!
//! Each limited container gets a cgroup below the agent's own: `<agent cgroup>/drover/<name>`.
//! The child process enters it itself between fork and exec, so nothing it starts escapes.
//! Paths are read below a root so tests can point them at a fixture.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What the node offers for resource limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSupport {
    /// Whether limits are applied.
    pub enforced: bool,
    /// Why not, for users (or which hierarchy enforces them).
    pub reason: String,
}

/// CPU period for quotas, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// Where container cgroups are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// Unified hierarchy: one directory per container below `base`.
    V2 {
        /// `<agent cgroup>/drover`, with `memory` and `cpu` enabled for its children.
        base: PathBuf,
        /// The agent found itself at the root of its delegated cgroup and moved into the
        /// `agent` leaf. Whatever is placed at that root later (systemd starting the agent
        /// again, without `DelegateSubgroup=agent`) is refused while pod cgroups exist.
        moved_out_of_root: bool,
    },
    /// v1: a directory per container in each of the two hierarchies.
    V1 {
        /// `<memory mount><agent cgroup>/drover`.
        memory: PathBuf,
        /// `<cpu mount><agent cgroup>/drover`.
        cpu: PathBuf,
    },
    /// No usable controllers.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// The cgroup(s) of one container run.
#[derive(Debug)]
pub struct ContainerCgroup {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each directory, open for the child to write itself into.
    procs: Vec<OwnedFd>,
    /// Where the OOM kill counter is read.
    oom_file: PathBuf,
}

fn own_path(root: &Path, controller: Option<&str>) -> Option<String> {
    let text = fs::read_to_string(root.join("proc/self/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            None => controllers.is_empty(),
            Some(c) => controllers.split(',').any(|x| x == c),
        };
        matches.then(|| path.to_string())
    })
}

fn join(mount: &Path, cgroup: &str) -> PathBuf {
    mount.join(cgroup.trim_start_matches('/'))
}

impl Cgroups {
    /// Finds and prepares a hierarchy that can enforce limits, below `root` (`/` on a node).
    pub fn detect(root: &Path) -> Cgroups {
        let unified = root.join("sys/fs/cgroup");
        let controllers =
            fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        if has("memory") && has("cpu") {
            if let Some(own) = own_path(root, None) {
                match prepare_v2(&join(&unified, &own)) {
                    Ok((base, moved_out_of_root)) => {
                        return Cgroups::V2 {
                            base,
                            moved_out_of_root,
                        }
                    }
                    Err(e) => {
                        return Cgroups::Unavailable {
                            reason: format!("cannot create cgroups below the agent's own cgroup {own} ({e}); give the agent a delegated cgroup (systemd: Delegate=yes)"),
                        }
                    }
                }
            }
        }
        let memory_mount = unified.join("memory");
        let cpu_mount = ["cpu,cpuacct", "cpu"]
            .iter()
            .map(|d| unified.join(d))
            .find(|p| p.join("cpu.cfs_quota_us").exists());
        if let (true, Some(cpu_mount)) = (
            memory_mount.join("memory.limit_in_bytes").exists(),
            cpu_mount,
        ) {
            let memory_own = own_path(root, Some("memory")).unwrap_or_else(|| "/".into());
            let cpu_own = own_path(root, Some("cpu")).unwrap_or_else(|| "/".into());
            let memory = join(&memory_mount, &memory_own).join("drover");
            let cpu = join(&cpu_mount, &cpu_own).join("drover");
            return match fs::create_dir_all(&memory).and_then(|_| fs::create_dir_all(&cpu)) {
                Ok(()) => Cgroups::V1 { memory, cpu },
                Err(e) => Cgroups::Unavailable {
                    reason: format!("cannot create cgroups in the v1 memory/cpu hierarchies ({e})"),
                },
            };
        }
        let reason = if controllers.is_empty() {
            "this node has no cgroup memory and cpu controllers the agent can use".to_string()
        } else {
            "the cgroup v2 memory and cpu controllers are not available (enable them, e.g. cgroup_enable=memory on a Raspberry Pi)".to_string()
        };
        Cgroups::Unavailable { reason }
    }

    /// Whether and how limits are enforced.
    pub fn support(&self) -> LimitSupport {
        match self {
            Cgroups::V2 { .. } => LimitSupport {
                enforced: true,
                reason: "cgroup v2".into(),
            },
            Cgroups::V1 { .. } => LimitSupport {
                enforced: true,
                reason: "cgroup v1".into(),
            },
            Cgroups::Unavailable { reason } => LimitSupport {
                enforced: false,
                reason: reason.clone(),
            },
        }
    }

    /// Creates the cgroup of a container run with its limits.
    pub fn create(
        &self,
        name: &str,
        memory_bytes: Option<u64>,
        cpu_millis: Option<u64>,
    ) -> io::Result<Option<ContainerCgroup>> {
        let quota = cpu_millis.map(|m| (m * CPU_PERIOD_US / 1000).max(1000));
        match self {
            Cgroups::Unavailable { .. } => Ok(None),
            Cgroups::V2 { base, .. } => {
                let dir = base.join(name);
                fs::create_dir_all(&dir)?;
                if let Some(bytes) = memory_bytes {
                    fs::write(dir.join("memory.max"), bytes.to_string())?;
                    // No swap: a memory limit means the process is killed at it.
                    let _ = fs::write(dir.join("memory.swap.max"), "0");
                }
                if let Some(quota) = quota {
                    fs::write(dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_US}"))?;
                }
                Ok(Some(ContainerCgroup {
                    procs: vec![open_procs(&dir)?],
                    oom_file: dir.join("memory.events"),
                    dirs: vec![dir],
                }))
            }
            Cgroups::V1 { memory, cpu } => {
                let memory_dir = memory.join(name);
                let cpu_dir = cpu.join(name);
                fs::create_dir_all(&memory_dir)?;
                fs::create_dir_all(&cpu_dir)?;
                if let Some(bytes) = memory_bytes {
                    fs::write(memory_dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                    let _ = fs::write(
                        memory_dir.join("memory.memsw.limit_in_bytes"),
                        bytes.to_string(),
                    );
                }
                if let Some(quota) = quota {
                    fs::write(cpu_dir.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())?;
                    fs::write(cpu_dir.join("cpu.cfs_quota_us"), quota.to_string())?;
                }
                Ok(Some(ContainerCgroup {
                    procs: vec![open_procs(&memory_dir)?, open_procs(&cpu_dir)?],
                    oom_file: memory_dir.join("memory.oom_control"),
                    dirs: vec![memory_dir, cpu_dir],
                }))
            }
        }
    }
}

impl Cgroups {
    /// The cgroup of a container run a previous agent run created, if it is still there
    /// (to read its OOM kills and remove it when the run ends).
    pub fn existing(&self, name: &str) -> Option<ContainerCgroup> {
        let (dirs, oom_file) = match self {
            Cgroups::Unavailable { .. } => return None,
            Cgroups::V2 { base, .. } => {
                let dir = base.join(name);
                (vec![dir.clone()], dir.join("memory.events"))
            }
            Cgroups::V1 { memory, cpu } => (
                vec![memory.join(name), cpu.join(name)],
                memory.join(name).join("memory.oom_control"),
            ),
        };
        dirs.iter().any(|d| d.is_dir()).then_some(ContainerCgroup {
            dirs,
            procs: Vec::new(),
            oom_file,
        })
    }
}

fn open_procs(dir: &Path) -> io::Result<OwnedFd> {
    Ok(fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))?
        .into())
}

/// Prepares `<root>/drover` for containers, `<root>` being the agent's delegated cgroup.
/// The agent must be in a leaf (`<root>/agent`) so that `<root>` may enable controllers for
/// its children (cgroup v2 allows no processes in an inner cgroup): systemd puts it there
/// with `DelegateSubgroup=agent`, and an agent started again by an agent's parent is there
/// already; otherwise the agent moves itself (and returns `true`).
fn prepare_v2(own: &Path) -> io::Result<(PathBuf, bool)> {
    let in_leaf = own.file_name().is_some_and(|n| n == "agent")
        && own
            .parent()
            .is_some_and(|p| p.join("cgroup.subtree_control").exists());
    let (root, moved) = match (in_leaf, own.parent()) {
        (true, Some(parent)) => (parent.to_path_buf(), false),
        _ => {
            let agent = own.join("agent");
            fs::create_dir_all(&agent)?;
            let procs = fs::read_to_string(own.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter(|l| !l.trim().is_empty()) {
                fs::write(agent.join("cgroup.procs"), pid)?;
            }
            (own.to_path_buf(), true)
        }
    };
    fs::write(root.join("cgroup.subtree_control"), "+memory +cpu")?;
    let base = root.join("drover");
    fs::create_dir_all(&base)?;
    fs::write(base.join("cgroup.subtree_control"), "+memory +cpu")?;
    Ok((base, moved))
}

impl Cgroups {
    /// Whether pods that outlive the agent would keep systemd from starting it again: the
    /// agent had to leave the root of its cgroup ([`prepare_v2`]) and runs under systemd,
    /// which places a restarted agent at that root unless `DelegateSubgroup=agent` (systemd
    /// 254 and later) says otherwise.
    pub fn restart_needs_stopped_pods(&self, under_systemd: bool) -> bool {
        matches!(
            self,
            Cgroups::V2 {
                moved_out_of_root: true,
                ..
            }
        ) && under_systemd
    }
}

impl ContainerCgroup {
    /// Descriptors the child writes "0" to (entering the cgroups) before exec.
    /// Opens its `cgroup.procs` files, so that a new process can be put into it.
    pub fn open_for_joining(&mut self) -> io::Result<()> {
        self.procs = self
            .dirs
            .iter()
            .map(|d| open_procs(d))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(())
    }

    pub fn procs_fds(&self) -> Vec<i32> {
        self.procs.iter().map(|fd| fd.as_raw_fd()).collect()
    }

    /// Whether the kernel's OOM killer killed something in it.
    pub fn oom_killed(&self) -> bool {
        fs::read_to_string(&self.oom_file)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
            })
            .is_some_and(|n| n > 0)
    }

    /// Removes the cgroup (its processes are gone).
    pub fn remove(self) {
        for dir in self.dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }

    /// Removes the cgroup once the processes just killed in it have finished exiting (a
    /// cgroup with tasks cannot be removed), trying for up to two seconds.
    pub async fn remove_when_empty(self) {
        for _ in 0..100 {
            let left: Vec<&PathBuf> = self
                .dirs
                .iter()
                .rev()
                .filter(|dir| fs::remove_dir(dir).is_err() && dir.exists())
                .collect();
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tracing::debug!(dirs = ?self.dirs, "a container's cgroup is still busy; left in place");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn nodes_without_controllers_say_why() {
        let root = tempfile::tempdir().unwrap();
        let cgroups = Cgroups::detect(root.path());
        assert!(!cgroups.support().enforced);
        write(
            root.path(),
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset io pids\n",
        );
        let support = Cgroups::detect(root.path()).support();
        assert!(
            !support.enforced && support.reason.contains("not available"),
            "{support:?}"
        );
    }

    #[test]
    fn v1_limits_are_written_below_the_agents_cgroups() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(
            r,
            "proc/self/cgroup",
            "4:memory:/system.slice/agent\n2:cpu,cpuacct:/system.slice/agent\n0::/\n",
        );
        write(r, "sys/fs/cgroup/memory/memory.limit_in_bytes", "max");
        write(r, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1");
        let cgroups = Cgroups::detect(r);
        assert!(matches!(cgroups, Cgroups::V1 { .. }), "{cgroups:?}");
        // A fixture has no kernel behind it: the control files must exist to be opened.
        for dir in [
            "sys/fs/cgroup/memory/system.slice/agent/drover/c1",
            "sys/fs/cgroup/cpu,cpuacct/system.slice/agent/drover/c1",
        ] {
            write(r, &format!("{dir}/cgroup.procs"), "");
        }
        let cg = cgroups
            .create("c1", Some(64 << 20), Some(500))
            .unwrap()
            .unwrap();
        let memory = r.join("sys/fs/cgroup/memory/system.slice/agent/drover/c1");
        let cpu = r.join("sys/fs/cgroup/cpu,cpuacct/system.slice/agent/drover/c1");
        assert_eq!(
            fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap(),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "50000"
        );
        assert_eq!(cg.procs_fds().len(), 2);
        write(
            r,
            "sys/fs/cgroup/memory/system.slice/agent/drover/c1/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        assert!(cg.oom_killed());
    }

    #[test]
    fn v2_limits_and_oom_events() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(
            r,
            "proc/self/cgroup",
            "0::/system.slice/drover-agent.service\n",
        );
        write(
            r,
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        write(
            r,
            "sys/fs/cgroup/system.slice/drover-agent.service/cgroup.procs",
            "123\n",
        );
        let cgroups = Cgroups::detect(r);
        let Cgroups::V2 {
            base,
            moved_out_of_root: true,
        } = &cgroups
        else {
            panic!("{cgroups:?}")
        };
        let own = r.join("sys/fs/cgroup/system.slice/drover-agent.service");
        assert_eq!(
            fs::read_to_string(own.join("agent/cgroup.procs")).unwrap(),
            "123",
            "the agent moved to a leaf"
        );
        assert_eq!(
            fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
            "+memory +cpu"
        );
        write(
            r,
            &format!(
                "{}/c1/cgroup.procs",
                base.strip_prefix(r).unwrap().display()
            ),
            "",
        );
        let cg = cgroups
            .create("c1", Some(1 << 20), Some(250))
            .unwrap()
            .unwrap();
        assert_eq!(
            fs::read_to_string(base.join("c1/memory.max")).unwrap(),
            (1u64 << 20).to_string()
        );
        assert_eq!(
            fs::read_to_string(base.join("c1/cpu.max")).unwrap(),
            "25000 100000"
        );
        assert!(!cg.oom_killed());
        fs::write(
            base.join("c1/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(cg.oom_killed());
        assert!(cgroups.restart_needs_stopped_pods(true));
        assert!(!cgroups.restart_needs_stopped_pods(false));
    }

    #[test]
    fn an_agent_systemd_placed_in_its_leaf_stays_there() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(
            r,
            "proc/self/cgroup",
            "0::/system.slice/drover-agent.service/agent\n",
        );
        write(
            r,
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        let unit = "sys/fs/cgroup/system.slice/drover-agent.service";
        write(r, &format!("{unit}/cgroup.subtree_control"), "");
        write(r, &format!("{unit}/agent/cgroup.procs"), "123\n");
        let cgroups = Cgroups::detect(r);
        let Cgroups::V2 {
            base,
            moved_out_of_root: false,
        } = &cgroups
        else {
            panic!("{cgroups:?}")
        };
        assert_eq!(base, &r.join(unit).join("drover"));
        assert!(
            !r.join(unit).join("agent/agent").exists(),
            "no leaf below the leaf"
        );
        assert_eq!(
            fs::read_to_string(r.join(unit).join("cgroup.subtree_control")).unwrap(),
            "+memory +cpu"
        );
        assert!(!cgroups.restart_needs_stopped_pods(true));
    }
}
