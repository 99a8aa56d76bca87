//! The pod manager's files: the last desired state and one record per pod, each an
//! append-only journal of versions (a crash leaves the old or the new version, never a torn
//! one; see [`super::journal`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use drover_proto::msg::DesiredState;
use drover_proto::{decode, encode, Message};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::journal;
use crate::pod_paths::UnsafeName;
use crate::supervisor::PodSupervisor;

/// What the agent keeps about one pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    /// The supervisor, with the pod's spec and its containers' states.
    pub sup: PodSupervisor,
    /// Process group of each container's run, to find leftovers after a crash.
    pub pids: Vec<Option<u32>>,
    /// Highest revision the controller acknowledged.
    pub acked: u64,
}

/// The files below `<data-dir>/state`.
pub struct Records {
    desired: PathBuf,
    pods: PathBuf,
}

impl Records {
    /// Opens (creating) the state directory.
    pub fn open(data_dir: &Path) -> io::Result<Records> {
        let state = data_dir.join("state");
        let pods = state.join("pods");
        crate::private_fs::create_dir_all(&pods)?;
        Ok(Records {
            desired: state.join("desired.bin"),
            pods,
        })
    }

    /// Replaces the stored desired state with an empty one of generation `floor`, durably:
    /// a node that enrolls anew must not run what it was told before, and must refuse any
    /// desired state older than `floor`.
    pub fn start_over(&self, floor: u64) -> io::Result<()> {
        match fs::remove_file(&self.desired) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.save_desired(&DesiredState {
            generation: floor,
            pods: Vec::new(),
            finished: Vec::new(),
        })?;
        self.sync()
    }

    /// Stores the desired state (made durable by the next [`Records::sync`]).
    pub fn save_desired(&self, desired: &DesiredState) -> io::Result<()> {
        let bytes = encode(&Message::Desired(desired.clone())).map_err(io::Error::other)?;
        journal::append(&self.desired, &bytes)
    }

    /// The stored desired state, if any and readable.
    pub fn load_desired(&self) -> Option<DesiredState> {
        let bytes = journal::read_last(&self.desired).ok()??;
        match decode(&bytes) {
            Ok(Message::Desired(d)) => Some(d),
            _ => {
                warn!(path = %self.desired.display(), "ignoring an unreadable stored desired state");
                None
            }
        }
    }

    fn pod_path(&self, uid: &str) -> Result<PathBuf, UnsafeName> {
        crate::pod_paths::record_file(&self.pods, uid)
    }

    /// Writes a pod's record.
    pub fn save_pod(&self, record: &PodRecord, durable: bool) -> io::Result<()> {
        let bytes = postcard::to_stdvec(record).map_err(io::Error::other)?;
        journal::append(&self.pod_path(&record.sup.spec.uid)?, &bytes)?;
        if durable {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every record written so far durable (one syncfs for any number of records,
    /// so a burst of finished pods costs one flush to storage, not one per pod).
    pub fn sync(&self) -> io::Result<()> {
        let dir = journal::open_dir(&self.pods)?;
        nix::unistd::syncfs(&dir).map_err(io::Error::from)
    }

    /// Deletes a pod's record.
    pub fn forget_pod(&self, uid: &str) {
        match self.pod_path(uid) {
            Ok(path) => journal::remove(&path),
            Err(e) => warn!(error = %e, "not removing a pod record"),
        }
    }

    /// Every readable record; unreadable ones are reported and skipped.
    pub fn load_pods(&self) -> Vec<PodRecord> {
        let Ok(entries) = fs::read_dir(&self.pods) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("rec") {
                continue;
            }
            match journal::read_last(&path)
                .ok()
                .flatten()
                .and_then(|b| postcard::from_bytes::<PodRecord>(&b).ok())
            {
                Some(record) => records.push(record),
                None => warn!(path = %path.display(), "ignoring an unreadable pod record"),
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_directories_and_the_desired_state_are_private() {
        use crate::private_fs::mode_of;
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("agent");
        let records = Records::open(&data).unwrap();
        records
            .save_desired(&DesiredState {
                generation: 1,
                pods: Vec::new(),
                finished: Vec::new(),
            })
            .unwrap();
        assert_eq!(mode_of(&data.join("state")), 0o700);
        assert_eq!(mode_of(&data.join("state/pods")), 0o700);
        assert_eq!(mode_of(&data.join("state/desired.bin")), 0o600);
    }

    #[test]
    fn forgetting_a_hostile_uid_deletes_nothing() {
        let data = tempfile::tempdir().unwrap();
        let records = Records::open(data.path()).unwrap();
        // `state/pods/../../etc.rec` would be `<data>/etc.rec`.
        let victim = data.path().join("etc.rec");
        fs::write(&victim, b"keep").unwrap();
        let sibling = data.path().join("state/desired.bin.rec");
        fs::write(&sibling, b"keep").unwrap();
        for uid in ["../../etc", "../desired.bin", "a/b", ""] {
            records.forget_pod(uid);
        }
        assert!(victim.exists());
        assert!(sibling.exists());
    }
}
