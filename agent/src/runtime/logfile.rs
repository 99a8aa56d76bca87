//! Per-container log files: stdout and stderr interleaved in `current.log`, rotated to
//! `current.log.1` at a size cap; the previous run's log is `previous.log`.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

    /// Prepares for a new run: the last run's log (both parts) becomes `previous.log`.
    pub fn start_run(&self, restart: bool) -> io::Result<()> {
        // The directory and file are created on first output (a pod that prints nothing
        // costs no files); at a restart the last run's log, possibly empty, becomes the
        // previous one.
        if !self.dir.exists() {
            if restart {
                private_fs::create_dir_all(&self.dir)?;
                private_fs::create_file(&self.previous())?;
            }
        } else {
            let mut previous = private_fs::create_file(&self.previous())?;
            for part in [self.rotated(), self.current()] {
                if let Ok(mut f) = File::open(&part) {
                    io::copy(&mut f, &mut previous)?;
                }
                let _ = fs::remove_file(part);
            }
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

/// A size-capped log file shared by a process's stdout and stderr.
#[derive(Debug, Clone)]
pub struct LogWriter {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// Opened on the first output: a process that prints nothing costs no file.
    file: Option<File>,
    size: u64,
    cap: u64,
    paths: LogPaths,
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let mut file = private_fs::append_file(path)?;
    let size = file.seek(SeekFrom::End(0))?;
    Ok((file, size))
}

impl LogWriter {
    /// A writer appending to the current log.
    pub fn open(paths: &LogPaths, cap: u64) -> io::Result<LogWriter> {
        Ok(LogWriter {
            inner: Arc::new(Mutex::new(Inner {
                file: None,
                size: 0,
                cap: cap.max(1024),
                paths: paths.clone(),
            })),
        })
    }

    /// Appends bytes, rotating when the cap is reached.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("log writer poisoned"))?;
        if inner.file.is_none() {
            private_fs::create_dir_all(&inner.paths.dir)?;
            let (file, size) = open_append(&inner.paths.current())?;
            inner.file = Some(file);
            inner.size = size;
        }
        if inner.size + bytes.len() as u64 > inner.cap && inner.size > 0 {
            fs::rename(inner.paths.current(), inner.paths.rotated())?;
            inner.file = Some(open_append(&inner.paths.current())?.0);
            inner.size = 0;
        }
        if let Some(file) = inner.file.as_mut() {
            file.write_all(bytes)?;
        }
        inner.size += bytes.len() as u64;
        Ok(())
    }
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

    #[test]
    fn log_files_their_rotated_part_and_directories_are_private() {
        use crate::private_fs::mode_of;
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        let writer = LogWriter::open(&paths, 1024).unwrap();
        for _ in 0..100 {
            writer.write(b"0123456789abcdef\n").unwrap();
        }
        assert_eq!(mode_of(&root.path().join("uid")), 0o700);
        assert_eq!(mode_of(&root.path().join("uid/c")), 0o700);
        assert_eq!(mode_of(&paths.current()), 0o600);
        assert_eq!(mode_of(&paths.rotated()), 0o600);
    }

    #[test]
    fn logs_rotate_at_the_cap_and_move_to_previous_on_restart() {
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        paths.start_run(false).unwrap();
        let writer = LogWriter::open(&paths, 1024).unwrap();
        for i in 0..300 {
            writer.write(format!("line {i:04}\n").as_bytes()).unwrap();
        }
        let total = fs::metadata(paths.current()).unwrap().len()
            + fs::metadata(paths.rotated()).unwrap().len();
        assert!(total <= 2048, "bounded by two parts: {total}");
        let current = paths.read(false, 1).unwrap();
        assert_eq!(current, b"line 0299\n");
        paths.start_run(true).unwrap();
        assert!(!paths.current().exists());
        let previous = paths.read(true, 0).unwrap();
        assert!(previous.ends_with(b"line 0299\n"));
        assert_eq!(crate::private_fs::mode_of(&paths.previous()), 0o600);
        assert!(paths.read(false, 0).unwrap().is_empty());
    }

    #[test]
    fn a_silent_run_creates_no_file_and_reads_as_empty() {
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        paths.start_run(false).unwrap();
        let _writer = LogWriter::open(&paths, 1024).unwrap();
        assert!(!paths.current().exists());
        assert!(!root.path().join("uid").exists(), "no directory either");
        assert!(paths.read(false, 0).unwrap().is_empty());
        paths.start_run(true).unwrap();
        assert!(
            paths.read(true, 0).unwrap().is_empty(),
            "the silent run is the previous one"
        );
    }

    #[test]
    fn a_missing_previous_log_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let paths = LogPaths::new(root.path(), "uid", "c").unwrap();
        assert!(paths.read(true, 0).is_err());
    }
}
