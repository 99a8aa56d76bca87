//! Files only the agent reads: its data directory is 0700 and every file it writes 0600.
//!
//! The identity, pod records, the stored desired state (pods' environment) and container logs
//! are nobody else's business on a shared device. Modes are given explicitly when a file or
//! directory is created rather than through a umask, because a umask would be inherited by
//! the process pods the agent spawns.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory the agent creates for itself.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the agent writes.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and its missing parents with mode 0700 (existing ones are left alone).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates `path` (0700) or tightens it to 0700; what is inside is left alone.
pub fn private_dir(path: &Path) -> io::Result<()> {
    create_dir_all(path)?;
    tighten(path, DIR_MODE)
}

/// Creates `path` empty with mode 0600 if it is missing, or tightens it to 0600; the
/// content is kept. For files another library opens (SQLite's database).
pub fn private_file(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)?;
    tighten(path, FILE_MODE)
}

/// Tightens `path` to 0600 if it exists.
pub fn tighten_file_if_present(path: &Path) -> io::Result<()> {
    match tighten(path, FILE_MODE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Creates or truncates `path` for writing, with mode 0600 if it is new.
pub fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Opens `path` for appending, creating it with mode 0600.
pub fn append_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Prepares the data directory: creates it 0700, and tightens what an older agent left with
/// looser modes (directories to 0700, files to 0600). Entries directly below it named in
/// `skip` are left as they are: emptyDir volumes belong to the pods, which may run as other
/// users. Symbolic links are never followed.
pub fn secure_data_dir(data_dir: &Path, skip: &[&str]) -> io::Result<()> {
    private_dir(data_dir)?;
    for entry in fs::read_dir(data_dir)? {
        let entry = entry?;
        if skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        tighten_tree(&entry.path())?;
    }
    Ok(())
}

fn tighten_tree(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        tighten(path, DIR_MODE)?;
        for entry in fs::read_dir(path)? {
            tighten_tree(&entry?.path())?;
        }
    } else if meta.is_file() {
        tighten(path, FILE_MODE)?;
    }
    Ok(())
}

/// Removes group and other permissions beyond `mode`; never widens.
fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    let current = fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    let wanted = current & mode;
    if wanted != current {
        fs::set_permissions(path, fs::Permissions::from_mode(wanted))?;
    }
    Ok(())
}

/// The permission bits of `path` (0 if it cannot be read); for tests.
pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn new_directories_and_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode_of(&root.path().join("a")), 0o700);
        assert_eq!(mode_of(&dir), 0o700);
        create_file(&dir.join("f"))
            .unwrap()
            .write_all(b"x")
            .unwrap();
        append_file(&dir.join("g"))
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(mode_of(&dir.join("f")), 0o600);
        assert_eq!(mode_of(&dir.join("g")), 0o600);
    }

    #[test]
    fn an_older_data_dir_is_tightened_except_the_skipped_entries() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        fs::create_dir_all(data.join("state/pods")).unwrap();
        fs::create_dir_all(data.join("volumes/u/v")).unwrap();
        fs::write(data.join("identity"), "uid=x").unwrap();
        fs::write(data.join("state/pods/u.rec"), "r").unwrap();
        fs::write(data.join("volumes/u/v/shared"), "s").unwrap();
        for path in ["", "state", "state/pods", "volumes/u/v"] {
            fs::set_permissions(data.join(path), fs::Permissions::from_mode(0o777)).unwrap();
        }
        for path in ["identity", "state/pods/u.rec", "volumes/u/v/shared"] {
            fs::set_permissions(data.join(path), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let outside = root.path().join("outside");
        fs::write(&outside, "o").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("state/link")).unwrap();

        secure_data_dir(&data, &["volumes"]).unwrap();

        assert_eq!(mode_of(&data), 0o700);
        assert_eq!(mode_of(&data.join("state")), 0o700);
        assert_eq!(mode_of(&data.join("state/pods")), 0o700);
        assert_eq!(mode_of(&data.join("identity")), 0o600);
        assert_eq!(mode_of(&data.join("state/pods/u.rec")), 0o600);
        assert_eq!(
            mode_of(&data.join("volumes/u/v")),
            0o777,
            "pods' volumes untouched"
        );
        assert_eq!(mode_of(&data.join("volumes/u/v/shared")), 0o644);
        assert_eq!(mode_of(&outside), 0o644, "symlinks are not followed");
    }

    #[test]
    fn private_file_keeps_content_and_tightens() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("db");
        fs::write(&file, "data").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
        private_file(&file).unwrap();
        assert_eq!(mode_of(&file), 0o600);
        assert_eq!(fs::read_to_string(&file).unwrap(), "data");
        let new = root.path().join("new");
        private_file(&new).unwrap();
        assert_eq!(mode_of(&new), 0o600);
        tighten_file_if_present(&root.path().join("missing")).unwrap();
    }

    #[test]
    fn tightening_never_widens() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();
        secure_data_dir(root.path(), &[]).unwrap();
        assert_eq!(mode_of(&file), 0o400);
    }
}
