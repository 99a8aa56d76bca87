//! Per-container log files: stdout and stderr interleaved in `current.log`, rotated to
//! `current.log.1` at a size cap; the previous run's log is `previous.log`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::pod_paths::UnsafeName;
use crate::private_fs;

/// Log paths of one container.
#[derive(Debug, Clone)]
pub struct LogPaths {
    dir: PathBuf,
}

impl LogPaths {
    /// Logs of `container` of pod `uid` under `root`; refused for names that are no UID
    /// or DNS label (they come from the wire).
    pub fn new(root: &Path, uid: &str, container: &str) -> Result<LogPaths, UnsafeName> {
        Ok(LogPaths {
            dir: crate::pod_paths::pod_entry(root, uid, "container", container)?,
        })
    }

    /// The running process's log.
    pub fn current(&self) -> PathBuf {
        self.dir.join("current.log")
    }

    /// The rotated part of the running process's log.
    pub fn rotated(&self) -> PathBuf {
        self.dir.join("current.log.1")
    }

    /// The previous run's log.
    pub fn previous(&self) -> PathBuf {
        self.dir.join("previous.log")
    }

    /// Where the keeper of the current run writes how it ended ([`super::keeper`]).
    pub fn status(&self) -> PathBuf {
        self.dir.join("status")
    }

    /// The current log, opened for a process to write its stdout and stderr into: appended
    /// to, so that [`LogPaths::enforce_cap`] can cut it while the process writes.
    pub fn open_for_process(&self) -> io::Result<File> {
        private_fs::create_dir_all(&self.dir)?;
        private_fs::append_file(&self.current())
    }

    /// Creates the current run's status file, with room reserved for the keeper's status
    /// so that it can write it on a full disk.
    pub fn create_status(&self) -> io::Result<File> {
        use std::io::Write;
        private_fs::create_dir_all(&self.dir)?;
        let mut file = private_fs::create_file(&self.status())?;
        file.write_all(&[b'\n'; super::keeper::STATUS_ROOM])?;
        Ok(file)
    }

    /// Keeps the current log within `cap`: once it is larger, its content becomes the
    /// rotated part and the file starts over. The process keeps writing to it (it appends,
    /// so its next write lands at the new end); what it writes between the copy and the
    /// cut is lost, as with logrotate's copytruncate. Returns whether it rotated.
    pub fn enforce_cap(&self, cap: u64) -> io::Result<bool> {
        let current = self.current();
        let size = match fs::metadata(&current) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if size <= cap.max(1024) {
            return Ok(false);
        }
        // The cut happens even when the copy fails (a full disk): the log must stay bounded,
        // and then its older part is what is lost.
        let copied = private_fs::create_file(&self.rotated())
            .and_then(|mut rotated| io::copy(&mut File::open(&current)?, &mut rotated));
        fs::OpenOptions::new()
            .write(true)
            .open(&current)?
            .set_len(0)?;
        copied.map(|_| true)
    }

    /// Prepares for a new run: the last run's log (both parts) becomes `previous.log`.
    pub fn start_run(&self, restart: bool) -> io::Result<()> {
        // At a restart the last run's log, possibly empty, becomes the previous one; a first
        // run has none.
        if !restart {
            return Ok(());
        }
        private_fs::create_dir_all(&self.dir)?;
        let mut previous = private_fs::create_file(&self.previous())?;
        for part in [self.rotated(), self.current()] {
            if let Ok(mut f) = File::open(&part) {
                io::copy(&mut f, &mut previous)?;
            }
            let _ = fs::remove_file(part);
        }
        Ok(())
    }

    /// Reads a log: the current run (rotated part first) or the previous one, keeping the
    /// last `tail_lines` lines when non-zero.
    pub fn read(&self, previous: bool, tail_lines: u32) -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        let parts = if previous {
            vec![self.previous()]
        } else {
            vec![self.rotated(), self.current()]
        };
        let mut found = false;
        for part in parts {
            match File::open(&part) {
                Ok(mut f) => {
                    found = true;
                    f.read_to_end(&mut data)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if !found && previous {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "there is no previous run of this container",
            ));
        }
        Ok(tail(&data, tail_lines).to_vec())
    }
}

/// The last `lines` lines of `data` (all of it for 0).
pub fn tail(data: &[u8], lines: u32) -> &[u8] {
    if lines == 0 {
        return data;
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return &data[i + 1..];
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", 0), b"a\nb\n");
    }

    #[test]
    fn log_paths_refuse_uids_and_container_names_that_leave_the_root() {
        let root = Path::new("/data/logs");
        for (uid, container) in [
            ("../../etc", "c"),
            ("a/b", "c"),
            ("uid", ".."),
            ("uid", "a/b"),
        ] {
            assert!(
                LogPaths::new(root, uid, container).is_err(),
                "{uid} {container}"
            );
        }
    }

    fn write_as_a_process(paths: &LogPaths, text: &[u8]) {
        use std::io::Write;
        paths.open_for_process().unwrap().write_all(text).unwrap();
    }

    #[test]
    fn log_files_their_rotated_part_and_directories_are_private() {
        use crate::private_fs::mode_of;
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        write_as_a_process(&paths, &[b'x'; 2000]);
        assert!(paths.enforce_cap(1024).unwrap());
        paths.create_status().unwrap();
        assert_eq!(mode_of(&root.path().join("uid")), 0o700);
        assert_eq!(mode_of(&root.path().join("uid/c")), 0o700);
        assert_eq!(mode_of(&paths.current()), 0o600);
        assert_eq!(mode_of(&paths.rotated()), 0o600);
        assert_eq!(mode_of(&paths.status()), 0o600);
    }

    #[test]
    fn logs_are_cut_at_the_cap_while_the_writer_keeps_appending() {
        use std::io::Write;
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        paths.start_run(false).unwrap();
        let mut writer = paths.open_for_process().unwrap();
        for i in 0..300 {
            writer
                .write_all(format!("line {i:04}\n").as_bytes())
                .unwrap();
            paths.enforce_cap(1024).unwrap();
        }
        let current = fs::metadata(paths.current()).unwrap().len();
        let rotated = fs::metadata(paths.rotated()).unwrap().len();
        assert!(
            current <= 1024 && rotated <= 1024 + 10,
            "{current} {rotated}"
        );
        assert_eq!(paths.read(false, 1).unwrap(), b"line 0299\n");
        // The file was cut under the open descriptor, yet holds no hole of zeros.
        assert!(!paths.read(false, 0).unwrap().contains(&0));
        paths.start_run(true).unwrap();
        assert!(!paths.current().exists());
        let previous = paths.read(true, 0).unwrap();
        assert!(previous.ends_with(b"line 0299\n"));
        assert_eq!(crate::private_fs::mode_of(&paths.previous()), 0o600);
        assert!(paths.read(false, 0).unwrap().is_empty());
    }

    #[test]
    fn a_log_under_its_cap_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        assert!(!paths.enforce_cap(1024).unwrap(), "no file yet");
        write_as_a_process(&paths, b"short\n");
        assert!(!paths.enforce_cap(1024).unwrap());
        assert!(!paths.rotated().exists());
    }

    #[test]
    fn a_missing_previous_log_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        assert!(paths.read(true, 0).is_err());
    }
}
