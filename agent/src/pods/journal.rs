//! Append-only record files: each version of a record is appended as
//! `[length u32][crc32 u32][bytes]`, and reading takes the last complete, intact entry. A
//! crash mid-append leaves a torn tail that reading skips, so the previous version stands,
//! as with write-and-rename, but an update creates no new file (no inode allocated and freed
//! per update, which on a busy node was most of the agent's kernel time). A file that grew
//! well past its last entry is rewritten with that entry alone, atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::identity::write_atomically;

const HEADER: usize = 8;
/// Largest entry accepted when reading (a corrupt length must not allocate gigabytes).
const MAX_ENTRY: usize = 64 << 20;
/// Files up to this size are never compacted.
const COMPACT_FLOOR: u64 = 64 << 10;

fn entry(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Appends a version of the record at `path` (creating the file). Compacts the file when it
/// is over 64 KiB and four times the size of this version.
pub fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = crate::private_fs::append_file(path)?;
    let entry = entry(bytes);
    file.write_all(&entry)?;
    let size = file.metadata()?.len();
    if size > COMPACT_FLOOR && size > 4 * entry.len() as u64 {
        write_atomically(path, &entry, false)?;
    }
    Ok(())
}

/// The last intact version in `data`.
pub fn last_entry(data: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    let mut last = None;
    while data.len() - at >= HEADER {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(data[at + 4..at + 8].try_into().ok()?);
        let start = at + HEADER;
        if len > MAX_ENTRY || data.len() - start < len {
            break;
        }
        let bytes = &data[start..start + len];
        if crc32fast::hash(bytes) != crc {
            break;
        }
        last = Some(bytes);
        at = start + len;
    }
    last
}

/// The last intact version of the record at `path`; `Ok(None)` when the file has none.
pub fn read_last(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let data = fs::read(path)?;
    Ok(last_entry(&data).map(<[u8]>::to_vec))
}

/// Deletes the record.
pub fn remove(path: &Path) {
    let _ = fs::remove_file(path);
}

/// Opens the record's directory for `syncfs`.
pub fn open_dir(dir: &Path) -> io::Result<File> {
    File::open(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_version_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        for version in [b"one".as_slice(), b"two", b"three"] {
            append(&path, version).unwrap();
        }
        assert_eq!(
            read_last(&path).unwrap().as_deref(),
            Some(b"three".as_slice())
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_leaves_the_previous_version() {
        let mut data = entry(b"good");
        let second = entry(b"newer version");
        // Every way of cutting the second entry short.
        for cut in 0..second.len() {
            let mut torn = data.clone();
            torn.extend_from_slice(&second[..cut]);
            assert_eq!(last_entry(&torn), Some(b"good".as_slice()), "cut at {cut}");
        }
        // A flipped byte in the payload.
        let mut corrupt = second.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        data.extend_from_slice(&corrupt);
        assert_eq!(last_entry(&data), Some(b"good".as_slice()));
        // A huge length does not allocate or read out of bounds.
        let mut huge = entry(b"good");
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert_eq!(last_entry(&huge), Some(b"good".as_slice()));
        assert_eq!(last_entry(&[]), None);
    }

    #[test]
    fn files_are_compacted_to_their_last_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let payload = vec![7u8; 1000];
        for _ in 0..200 {
            append(&path, &payload).unwrap();
        }
        let size = fs::metadata(&path).unwrap().len();
        assert!(size <= COMPACT_FLOOR + 1008, "{size}");
        assert_eq!(read_last(&path).unwrap(), Some(payload));
    }
}
