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
use crate::clock::ClockStamp;
use crate::pod_paths::UnsafeName;
use crate::runtime::process::Kept;
use crate::supervisor::legacy::{PodSupervisorV1, PodSupervisorV2};
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
    /// Each container's current run number.
    pub runs: Vec<u64>,
    /// Each process container's running keeper, to adopt it after an agent restart.
    pub kept: Vec<Option<Kept>>,
    /// The clock the supervisor's times are on (`None`: the wall clock, as older agents
    /// kept them).
    pub clock: Option<ClockStamp>,
}

/// What a record written since init containers starts with, before its shape's version:
/// no untagged record can start so (its first byte, a pod UID's length, is below 0x80).
const RECORD_TAG: &[u8] = b"\xffDRV";

/// The shape [`PodRecord`] has now; bump it, and keep a reader of the old one, whenever
/// anything stored in a record changes.
const RECORD_VERSION: u8 = 3;

/// A record as agents with probes but before init containers wrote it (untagged).
#[derive(Deserialize)]
struct PodRecordV3 {
    sup: PodSupervisorV2,
    pids: Vec<Option<u32>>,
    acked: u64,
    runs: Vec<u64>,
    kept: Vec<Option<Kept>>,
    clock: Option<ClockStamp>,
}

/// A record as agents before probes wrote it.
#[derive(Deserialize)]
struct PodRecordV2 {
    sup: PodSupervisorV1,
    pids: Vec<Option<u32>>,
    acked: u64,
    runs: Vec<u64>,
    kept: Vec<Option<Kept>>,
    clock: Option<ClockStamp>,
}

/// A record as agents before process pods outlived them wrote it.
#[derive(Deserialize)]
struct PodRecordV1 {
    sup: PodSupervisorV1,
    pids: Vec<Option<u32>>,
    acked: u64,
}

/// Decodes `bytes` as a `T` that fills them exactly (a shorter reading is another shape).
fn exactly<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Some(value),
        _ => None,
    }
}

impl PodRecord {
    fn encode(&self) -> postcard::Result<Vec<u8>> {
        let mut bytes = RECORD_TAG.to_vec();
        bytes.push(RECORD_VERSION);
        postcard::to_extend(self, bytes)
    }

    /// Reads a record, also one an older agent wrote (its processes are not adoptable).
    fn decode(bytes: &[u8]) -> Option<PodRecord> {
        if let Some(tagged) = bytes.strip_prefix(RECORD_TAG) {
            let (&version, body) = tagged.split_first()?;
            return match version {
                RECORD_VERSION => exactly(body),
                _ => None,
            };
        }
        if let Some(old) = exactly::<PodRecordV3>(bytes) {
            return Some(PodRecord {
                sup: old.sup.into(),
                pids: old.pids,
                acked: old.acked,
                runs: old.runs,
                kept: old.kept,
                clock: old.clock,
            });
        }
        if let Some(old) = exactly::<PodRecordV2>(bytes) {
            return Some(PodRecord {
                sup: old.sup.into(),
                pids: old.pids,
                acked: old.acked,
                runs: old.runs,
                kept: old.kept,
                clock: old.clock,
            });
        }
        // Leniently: agents between the two wrote a V1 record followed by their runs and
        // keepers, but no clock; read as V1, their processes are not adopted.
        let old: PodRecordV1 = postcard::from_bytes(bytes).ok()?;
        let sup = PodSupervisor::from(old.sup);
        let count = sup.containers.len();
        Some(PodRecord {
            sup,
            pids: old.pids,
            acked: old.acked,
            runs: vec![0; count],
            kept: vec![None; count],
            clock: None,
        })
    }
}

/// The files below `<data-dir>/state`.
pub struct Records {
    desired: PathBuf,
    pods: PathBuf,
    forgotten: PathBuf,
}

impl Records {
    /// Opens (creating) the state directory.
    pub fn open(data_dir: &Path) -> io::Result<Records> {
        let state = data_dir.join("state");
        let pods = state.join("pods");
        crate::private_fs::create_dir_all(&pods)?;
        Ok(Records {
            desired: state.join("desired.bin"),
            forgotten: state.join("forgotten.bin"),
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
        let read = journal::read(&self.desired).ok()?;
        if let Some(at) = read.damaged_at {
            tracing::error!(path = %self.desired.display(), "the stored desired state is damaged (checksum mismatch at byte {at}); its previous intact version is used until the controller sends the current one");
        }
        let bytes = read.last?;
        match decode(&bytes) {
            Ok(Message::Desired(d)) => Some(d),
            _ => {
                warn!(path = %self.desired.display(), "ignoring an unreadable stored desired state");
                None
            }
        }
    }

    /// Stores the UIDs of finished pods whose records were removed, durably: until the
    /// desired state stops listing such a pod to run, its UID is what keeps it from running
    /// again.
    pub fn save_forgotten(&self, uids: &std::collections::BTreeSet<String>) -> io::Result<()> {
        let bytes = postcard::to_stdvec(uids).map_err(io::Error::other)?;
        journal::append(&self.forgotten, &bytes)?;
        self.sync()
    }

    /// The UIDs stored by [`Records::save_forgotten`].
    pub fn load_forgotten(&self) -> std::collections::BTreeSet<String> {
        let read = match journal::read(&self.forgotten) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Default::default(),
            Err(e) => {
                tracing::error!(path = %self.forgotten.display(), error = %e, "cannot read the finished pods the agent forgot");
                return Default::default();
            }
        };
        if let Some(at) = read.damaged_at {
            tracing::error!(path = %self.forgotten.display(), "the list of forgotten finished pods is damaged (checksum mismatch at byte {at}); its previous intact version is used");
        }
        read.last
            .and_then(|bytes| postcard::from_bytes(&bytes).ok())
            .unwrap_or_default()
    }

    fn pod_path(&self, uid: &str) -> Result<PathBuf, UnsafeName> {
        crate::pod_paths::record_file(&self.pods, uid)
    }

    /// Writes a pod's record.
    pub fn save_pod(&self, record: &PodRecord, durable: bool) -> io::Result<()> {
        let bytes = record.encode().map_err(io::Error::other)?;
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

    /// Every readable record; unreadable ones are reported and skipped. A record whose
    /// newest version fails its checksum is reported (by pod UID, the file's name) and read
    /// at its last intact version, if any.
    pub fn load_pods(&self) -> (Vec<PodRecord>, Vec<DamagedRecord>) {
        let Ok(entries) = fs::read_dir(&self.pods) else {
            return (Vec::new(), Vec::new());
        };
        let mut records = Vec::new();
        let mut damaged = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("rec") {
                continue;
            }
            let uid = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let read = match journal::read(&path) {
                Ok(read) => read,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot read a pod record");
                    continue;
                }
            };
            let record = read.last.as_deref().and_then(PodRecord::decode);
            if let Some(at) = read.damaged_at {
                let message = match &record {
                    Some(_) => format!("the agent's record of this pod is damaged (checksum mismatch at byte {at} of {}); its previous intact version was used", path.display()),
                    None => format!("the agent's record of this pod is damaged (checksum mismatch at byte {at} of {}) and has no intact version", path.display()),
                };
                tracing::error!(pod_uid = %uid, "{message}");
                damaged.push(DamagedRecord {
                    uid: uid.clone(),
                    message,
                });
            }
            match record {
                Some(record) => records.push(record),
                None if read.damaged_at.is_none() => {
                    warn!(path = %path.display(), "ignoring an unreadable pod record")
                }
                None => {}
            }
        }
        (records, damaged)
    }
}

/// A pod record that failed its checksum, for the pod's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRecord {
    /// The pod's UID (the record's file name).
    pub uid: String,
    /// What was found and what was done.
    pub message: String,
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

    fn supervisor() -> PodSupervisor {
        use drover_proto::msg::{DesiredContainer, DesiredPod};
        let pod = DesiredPod {
            uid: "uid-1".into(),
            name: "web".into(),
            containers: vec![DesiredContainer {
                name: "main".into(),
                command: vec!["true".into()],
                ..DesiredContainer::default()
            }],
            ..DesiredPod::default()
        };
        PodSupervisor::new(pod, crate::supervisor::BackoffPolicy::default(), 0).0
    }

    #[test]
    fn records_read_back_with_their_keepers() {
        let data = tempfile::tempdir().unwrap();
        let records = Records::open(data.path()).unwrap();
        let kept = Kept {
            pid: 42,
            started: 1234,
        };
        let record = PodRecord {
            sup: supervisor(),
            pids: vec![Some(42)],
            acked: 3,
            runs: vec![2],
            kept: vec![Some(kept)],
            clock: Some(ClockStamp::now()),
        };
        records.save_pod(&record, false).unwrap();
        let (back, damaged) = records.load_pods();
        assert!(damaged.is_empty());
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].kept, vec![Some(kept)]);
        assert_eq!(back[0].runs, vec![2]);
        assert_eq!(back[0].acked, 3);
    }

    #[test]
    fn a_record_of_an_agent_before_probes_keeps_its_keepers() {
        // Postcard writes a struct's fields one after the other.
        let kept = Kept {
            pid: 4242,
            started: 99,
        };
        let mut bytes = crate::supervisor::legacy::sample_bytes();
        let rest = (
            vec![Some(4242u32)],
            6u64,
            vec![3u64],
            vec![Some(kept)],
            None::<ClockStamp>,
        );
        bytes.extend(postcard::to_stdvec(&rest).unwrap());
        let record = PodRecord::decode(&bytes).unwrap();
        assert_eq!(record.kept, vec![Some(kept)], "adoptable");
        assert_eq!(record.runs, vec![3]);
        assert_eq!(record.acked, 6);
        assert!(record.sup.status().containers[0].ready);
    }

    #[test]
    fn a_record_of_an_agent_before_init_containers_keeps_its_probes_and_keepers() {
        let kept = Kept {
            pid: 77,
            started: 5,
        };
        let mut bytes = crate::supervisor::legacy::sample_bytes_v2();
        let rest = (
            vec![Some(77u32)],
            4u64,
            vec![2u64],
            vec![Some(kept)],
            None::<ClockStamp>,
        );
        bytes.extend(postcard::to_stdvec(&rest).unwrap());
        let record = PodRecord::decode(&bytes).unwrap();
        assert_eq!(record.kept, vec![Some(kept)], "adoptable");
        assert_eq!(record.acked, 4);
        assert!(record.sup.spec.containers[0].liveness_probe.is_some());
        // Read back in the current, tagged shape.
        let again = PodRecord::decode(&record.encode().unwrap()).unwrap();
        assert_eq!(again.sup, record.sup);
        // A tag with a version this agent does not know is not guessed at.
        let mut future = record.encode().unwrap();
        future[RECORD_TAG.len()] = RECORD_VERSION + 1;
        assert!(PodRecord::decode(&future).is_none());
    }

    #[test]
    fn a_record_of_an_older_agent_is_read_without_keepers() {
        let mut bytes = crate::supervisor::legacy::sample_bytes();
        bytes.extend(postcard::to_stdvec(&(vec![Some(7u32)], 5u64)).unwrap());
        let record = PodRecord::decode(&bytes).unwrap();
        assert_eq!(record.pids, vec![Some(7)]);
        assert_eq!(record.acked, 5);
        assert_eq!(record.kept, vec![None], "nothing to adopt");
        assert_eq!(record.runs, vec![0]);
        assert!(PodRecord::decode(b"\xff\xff").is_none());
    }

    #[test]
    fn a_flipped_bit_in_a_record_is_reported_by_pod_uid() {
        let data = tempfile::tempdir().unwrap();
        let records = Records::open(data.path()).unwrap();
        let mut record = PodRecord {
            sup: supervisor(),
            pids: vec![None],
            acked: 1,
            runs: vec![1],
            kept: vec![None],
            clock: None,
        };
        records.save_pod(&record, false).unwrap();
        record.acked = 2;
        records.save_pod(&record, false).unwrap();
        let path = data.path().join("state/pods/uid-1.rec");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        let (back, damaged) = records.load_pods();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].acked, 1, "the previous intact version");
        assert_eq!(damaged.len(), 1);
        assert_eq!(damaged[0].uid, "uid-1");
        assert!(
            damaged[0].message.contains("checksum mismatch"),
            "{damaged:?}"
        );
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
