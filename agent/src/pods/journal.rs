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
#[cfg(test)]
fn last_entry(data: &[u8]) -> Option<&[u8]> {
    scan(data).0
}

/// The last intact version in `data`, and where a complete entry failed its checksum if
/// one did. An entry cut short is what a crash mid-append leaves and is no damage; a
/// complete one with the wrong checksum is (a flipped bit, a bad block), and everything
/// from it on is ignored.
#[cfg(test)]
fn scan(data: &[u8]) -> (Option<&[u8]>, Option<usize>) {
    let (last, damaged_at, _) = scan_to(data);
    (last, damaged_at)
}

/// As [`scan`], with where the intact entries end.
fn scan_to(data: &[u8]) -> (Option<&[u8]>, Option<usize>, usize) {
    let mut at = 0;
    let mut last = None;
    while data.len() - at >= HEADER {
        let (Ok(len), Ok(crc)) = (
            data[at..at + 4].try_into().map(u32::from_le_bytes),
            data[at + 4..at + 8].try_into().map(u32::from_le_bytes),
        ) else {
            break;
        };
        let len = len as usize;
        let start = at + HEADER;
        // No record is empty: a zero length is the zeros a crash can leave past the end.
        if len == 0 || len > MAX_ENTRY || data.len() - start < len {
            break;
        }
        let bytes = &data[start..start + len];
        if crc32fast::hash(bytes) != crc {
            // Zeros where the payload should be are an append a crash cut short (the size
            // grew, the data never came), not damage.
            let torn = data[start..].iter().all(|b| *b == 0);
            return (last, (!torn).then_some(at), at);
        }
        last = Some(bytes);
        at = start + len;
    }
    (last, None, at)
}

/// A record file as read.
#[derive(Debug, PartialEq, Eq)]
pub struct Read {
    /// The last intact version, if any.
    pub last: Option<Vec<u8>>,
    /// The byte offset of an entry that failed its checksum.
    pub damaged_at: Option<usize>,
}

/// Reads the record at `path`: its last intact version and any damage found. A file with
/// anything after its intact entries (a torn append, zeros, damage) is rewritten with its
/// last intact version alone, so that what is appended next is read again.
pub fn read(path: &Path) -> io::Result<Read> {
    let data = fs::read(path)?;
    let (last, damaged_at, end) = scan_to(&data);
    if end < data.len() {
        if let Some(last) = last {
            write_atomically(path, &entry(last), true)?;
        }
    }
    Ok(Read {
        last: last.map(<[u8]>::to_vec),
        damaged_at,
    })
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
            read(&path).unwrap().last.as_deref(),
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
        assert_eq!(scan(&data).1, Some(entry(b"good").len()), "reported where");
        for cut in 0..second.len() {
            let mut torn = entry(b"good");
            torn.extend_from_slice(&second[..cut]);
            assert_eq!(
                scan(&torn).1,
                None,
                "a torn tail is no damage (cut at {cut})"
            );
        }
        // A huge length does not allocate or read out of bounds.
        let mut huge = entry(b"good");
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert_eq!(last_entry(&huge), Some(b"good".as_slice()));
        assert_eq!(last_entry(&[]), None);
    }

    #[test]
    fn an_append_after_a_torn_tail_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        append(&path, b"before the crash").unwrap();
        let mut torn = fs::read(&path).unwrap();
        torn.extend_from_slice(&entry(b"cut short")[..6]);
        torn.extend_from_slice(&[0; 16]);
        fs::write(&path, torn).unwrap();
        // Reading at start repairs the file, so the next version is found after it.
        let read = read(&path).unwrap();
        assert_eq!(read.last.as_deref(), Some(b"before the crash".as_slice()));
        assert_eq!(read.damaged_at, None);
        append(&path, b"after the restart").unwrap();
        assert_eq!(
            super::read(&path).unwrap().last.as_deref(),
            Some(b"after the restart".as_slice())
        );
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
        assert_eq!(read(&path).unwrap().last, Some(payload));
    }
}
