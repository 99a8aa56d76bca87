//! Paths named after a pod: its record, its logs, its emptyDir volumes, its cgroups.
//!
//! A pod's UID and its containers' and volumes' names arrive over MQTT. Before one of them
//! becomes part of a path it must be a valid UID or DNS label, so `../../etc` or `a/b` can
//! neither name a file outside the data directory nor get one deleted.

use std::path::{Path, PathBuf};

use drover_proto::manifest::{is_dns_label, is_valid_uid};

/// A name from the wire that no path is built from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeName {
    /// The pod UID is not `[a-z0-9-]{1,64}`.
    #[error("invalid pod UID {0:?}: no path is built from it")]
    Uid(String),
    /// A container or volume name is not a DNS label.
    #[error("invalid {kind} name {name:?}: no path is built from it")]
    Name {
        /// `container` or `volume`.
        kind: &'static str,
        /// The name as received.
        name: String,
    },
}

impl From<UnsafeName> for std::io::Error {
    fn from(e: UnsafeName) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

fn check_uid(uid: &str) -> Result<(), UnsafeName> {
    if is_valid_uid(uid) {
        Ok(())
    } else {
        Err(UnsafeName::Uid(uid.to_string()))
    }
}

fn check_name(kind: &'static str, name: &str) -> Result<(), UnsafeName> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(UnsafeName::Name {
            kind,
            name: name.to_string(),
        })
    }
}

/// `root/<uid>`: a pod's directory of logs or of emptyDir volumes.
pub fn pod_dir(root: &Path, uid: &str) -> Result<PathBuf, UnsafeName> {
    check_uid(uid)?;
    Ok(root.join(uid))
}

/// `root/<uid>/<name>`: a container's log directory or an emptyDir volume.
pub fn pod_entry(
    root: &Path,
    uid: &str,
    kind: &'static str,
    name: &str,
) -> Result<PathBuf, UnsafeName> {
    check_name(kind, name)?;
    Ok(pod_dir(root, uid)?.join(name))
}

/// `dir/<uid>.rec`: a pod's record.
pub fn record_file(dir: &Path, uid: &str) -> Result<PathBuf, UnsafeName> {
    check_uid(uid)?;
    Ok(dir.join(format!("{uid}.rec")))
}

/// `<uid>-<container>-<run>`: the cgroup of one run of a container.
pub fn cgroup_name(uid: &str, container: &str, run: u64) -> Result<String, UnsafeName> {
    check_uid(uid)?;
    check_name("container", container)?;
    Ok(format!("{uid}-{container}-{run}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "3f2b8c1e-9d4a-4e6b-8f00-1a2b3c4d5e6f";
    const HOSTILE: [&str; 7] = ["../../etc", "a/b", "..", ".", "", "/etc", "A"];

    #[test]
    fn valid_names_build_paths_below_the_root() {
        let root = Path::new("/data/logs");
        assert_eq!(pod_dir(root, UID).unwrap(), root.join(UID));
        assert_eq!(
            pod_entry(root, UID, "container", "web").unwrap(),
            root.join(UID).join("web")
        );
        assert_eq!(
            record_file(root, UID).unwrap(),
            root.join(format!("{UID}.rec"))
        );
        assert_eq!(cgroup_name(UID, "web", 3).unwrap(), format!("{UID}-web-3"));
    }

    #[test]
    fn hostile_uids_build_no_path() {
        let root = Path::new("/data/logs");
        for uid in HOSTILE {
            assert_eq!(
                pod_dir(root, uid),
                Err(UnsafeName::Uid(uid.into())),
                "{uid:?}"
            );
            assert!(pod_entry(root, uid, "volume", "v").is_err(), "{uid:?}");
            assert!(record_file(root, uid).is_err(), "{uid:?}");
            assert!(cgroup_name(uid, "c", 1).is_err(), "{uid:?}");
        }
    }

    #[test]
    fn hostile_container_and_volume_names_build_no_path() {
        let root = Path::new("/data/volumes");
        for name in HOSTILE {
            assert!(pod_entry(root, UID, "volume", name).is_err(), "{name:?}");
            assert!(cgroup_name(UID, name, 1).is_err(), "{name:?}");
        }
    }
}
