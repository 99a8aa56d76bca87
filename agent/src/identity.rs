//! The node's persistent identity: a UID generated once, and a count of agent starts that
//! orders the agent's sessions across restarts (device clocks cannot be trusted for that).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const FILE: &str = "identity";

/// Identity loaded from (and saved to) the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable node UID.
    pub uid: String,
    /// Number of this agent start (1 for the first).
    pub starts: u64,
}

impl Identity {
    /// Loads the identity, creating it on first start, and records one more start.
    pub fn load_and_count_start(data_dir: &Path) -> io::Result<Identity> {
        crate::private_fs::create_dir_all(data_dir)?;
        let path = data_dir.join(FILE);
        let previous = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is corrupt; remove it to give this node a new identity",
                        path.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Identity {
                uid: new_uid()?,
                starts: 0,
            },
            Err(e) => return Err(e),
        };
        let identity = Identity {
            uid: previous.uid,
            starts: previous.starts + 1,
        };
        let text = format!("uid={}\nstarts={}\n", identity.uid, identity.starts);
        match write_atomically(&path, text.as_bytes(), true) {
            Ok(()) => {}
            // A full disk has no block for a new file, but the identity's own block can
            // take the new count: the agent must start on a full disk to keep its pods.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) && path.exists() => {
                overwrite_in_place(&path, text.as_bytes())?
            }
            Err(e) => return Err(e),
        }
        Ok(identity)
    }
}

fn parse(text: &str) -> Option<Identity> {
    let mut uid = None;
    let mut starts = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("uid", v)) if !v.is_empty() => uid = Some(v.to_string()),
            Some(("starts", v)) => starts = v.parse().ok(),
            _ => {}
        }
    }
    Some(Identity {
        uid: uid?,
        starts: starts?,
    })
}

/// A random RFC 4122 version-4 UUID.
pub fn new_uid() -> io::Result<String> {
    drover_proto::random::new_uid().map_err(io::Error::other)
}

/// Rewrites a small file in its own storage (no new block is needed while it does not grow
/// past it), durably. Not atomic across a crash; only for when [`write_atomically`] cannot.
fn overwrite_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(bytes)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_all()
}

/// Replaces `path` with `bytes` so that a crash of the agent leaves either the old or the
/// new content; `durable` also survives a power loss (fsync of file and directory).
pub fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = PathBuf::from(path);
    tmp.set_extension("tmp");
    {
        let mut file = crate::private_fs::create_file(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_restarts_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_and_count_start(dir.path()).unwrap();
        let second = Identity::load_and_count_start(dir.path()).unwrap();
        assert_eq!(first.uid, second.uid);
        assert_eq!((first.starts, second.starts), (1, 2));
        assert_eq!(first.uid.len(), 36);
    }

    #[test]
    fn identity_file_and_data_dir_are_private() {
        use crate::private_fs::mode_of;
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("agent");
        Identity::load_and_count_start(&data).unwrap();
        assert_eq!(mode_of(&data), 0o700);
        assert_eq!(mode_of(&data.join(FILE)), 0o600);
        Identity::load_and_count_start(&data).unwrap();
        assert_eq!(mode_of(&data.join(FILE)), 0o600, "after a rewrite too");
    }

    #[test]
    fn different_data_dirs_get_different_identities() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        assert_ne!(
            Identity::load_and_count_start(a.path()).unwrap().uid,
            Identity::load_and_count_start(b.path()).unwrap().uid
        );
    }

    #[test]
    fn a_corrupt_identity_is_an_error_not_a_new_node() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(Identity::load_and_count_start(dir.path()).is_err());
    }
}
