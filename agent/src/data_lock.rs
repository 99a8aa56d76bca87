//! One agent per data directory: an exclusive `flock` on `<data-dir>/agent.lock`, held for
//! the agent's life.
//!
//! Two agents on one data directory would count the same starts, apply the same desired
//! state and run every pod twice. The kernel drops the lock when the process ends however
//! it ends (kill -9 included), so a stale lock cannot keep an agent from starting again.
//! The file is opened close-on-exec: the pods and keepers the agent starts do not inherit
//! it, so a keeper that outlives the agent does not hold the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::private_fs::FILE_MODE;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "agent.lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error("another agent{} is running with the data directory {}: stop it first, or give this one its own --data-dir", holder_text(*.holder), .dir.display())]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The pid the holder wrote into the lock file, when it could be read.
        holder: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

fn holder_text(holder: Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (pid {pid})"))
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _lock: Flock<File>,
}

/// Takes the data directory's lock without waiting, and writes this process's pid into the
/// lock file for the next one to name (best effort: a full disk does not stop the agent).
pub fn lock(dir: &Path) -> Result<DataDirLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io_error = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(io_error)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            let _ = write_pid(&mut locked);
            Ok(DataDirLock { _lock: locked })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => Err(LockError::Held {
            dir: dir.to_path_buf(),
            holder: read_pid(&mut file),
        }),
        Err((_, errno)) => Err(io_error(std::io::Error::from(errno))),
    }
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_data_dir_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err();
        match &err {
            LockError::Held { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&format!("another agent (pid {})", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        drop(held);
        lock(dir.path()).expect("free once the holder is gone");
    }

    #[test]
    fn a_lock_file_left_behind_does_not_keep_the_agent_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "4242\n").unwrap();
        let _held = lock(dir.path()).unwrap();
        let pid = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }
}
