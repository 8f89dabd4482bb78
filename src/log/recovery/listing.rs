//! What a data directory holds: its segment files in order, segments left
//! half-prepared, segment index files and the stream catalog (derived data,
//! checked when used), and nothing else (but `lost+found` and dot-files).
//! Each segment's header is checked against its name and segment 0's by
//! `Segment::open`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::index::persist::{
    BASE_FILE, BASE_TEMP, CATALOG_FILE, CATALOG_TEMP, INDEX_SUFFIX, INDEX_TEMP_SUFFIX, read_base,
};
use crate::log::segment::{self, TEMP_SUFFIX};

use super::LOCK_FILE;

/// Checks that `dir` holds nothing but annals' files, without opening any.
pub(crate) fn check_listing(dir: &Path) -> Result<(), Error> {
    list(dir).map(|_| ())
}

/// The files of a data directory, sorted out.
pub(super) struct Listing {
    /// The log's base, when retention dropped segments.
    pub base: Option<crate::index::base::Base>,
    /// Segment numbers and paths, in number order, checked dense from the
    /// base's first segment (0 without one).
    pub segments: Vec<(u64, PathBuf)>,
    /// Segments below the base's first segment, and their index files:
    /// left by a crash after the base was written and before they were
    /// removed.
    pub dropped: Vec<PathBuf>,
    /// Segments left half-prepared by a crash.
    pub temps: Vec<PathBuf>,
    /// Segment index files left half-written by a crash.
    pub index_temps: Vec<PathBuf>,
    /// The numbers of the segments that have an index file (of any
    /// content: checked when used).
    pub indexes: std::collections::HashSet<u64>,
}

pub(super) fn list(dir: &Path) -> Result<Listing, Error> {
    let entries = fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotADirectory => Error::NotAStore {
            path: dir.to_path_buf(),
            reason: "is a file, not a directory".to_owned(),
        },
        _ => Error::io("list data directory", dir, e),
    })?;
    let mut segments = Vec::new();
    let mut temps = Vec::new();
    let mut index_temps = Vec::new();
    let mut indexes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list data directory", dir, e))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io("inspect", &path, e))?;
        let os_name = entry.file_name();
        let name = os_name.to_str().unwrap_or("");
        if name == LOCK_FILE || ignored(name) {
            continue;
        }
        let stray = |reason: &str| Err(Error::corruption(&path, 0, reason));
        if name == CATALOG_FILE || name == BASE_FILE {
            continue;
        }
        if name == CATALOG_TEMP || name == BASE_TEMP {
            index_temps.push(path);
            continue;
        }
        if let Some(number) = name.strip_suffix(INDEX_SUFFIX) {
            // Derived data: checked when used, rebuilt when bad.
            if let Some(number) = parse_segment_name(&format!("{number}.seg")) {
                indexes.push((number, path));
                continue;
            }
        }
        if let Some(number) = name.strip_suffix(INDEX_TEMP_SUFFIX)
            && parse_segment_name(&format!("{number}.seg")).is_some()
        {
            index_temps.push(path);
            continue;
        }
        if name
            .strip_suffix(TEMP_SUFFIX)
            .and_then(parse_segment_name)
            .is_some()
        {
            if !file_type.is_file() {
                return stray("a segment being prepared that is not a regular file");
            }
            temps.push(path);
        } else if let Some(number) = parse_segment_name(name) {
            if !file_type.is_file() {
                return stray("a segment that is not a regular file (a symlink or a directory?)");
            }
            segments.push((number, path));
        } else {
            // Not damage to a store but a directory that is not (only) one:
            // a different error, so that nobody restores a backup over it.
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
                reason: format!(
                    "holds {:?}, which annals did not make (only LOCK, segment and \
                     segment index files, the catalog, lost+found and names starting with '.' belong there)",
                    os_name.to_string_lossy()
                ),
            });
        }
    }
    segments.sort_unstable_by_key(|(n, _)| *n);
    // Retention may have dropped the oldest segments: the base says where
    // the log starts, and only a segment missing from there on is damage.
    let base = read_base(dir)?;
    let first = base.as_ref().map_or(0, |b| u64::from(b.first_segment));
    let below = segments.partition_point(|(n, _)| *n < first);
    let mut dropped: Vec<PathBuf> = segments.drain(..below).map(|(_, path)| path).collect();
    // The index files of the segments kept, by number (an open defers a
    // sealed segment only when its index file is there).
    let mut numbers = std::collections::HashSet::with_capacity(indexes.len());
    for (n, path) in indexes {
        if n < first {
            dropped.push(path);
        } else {
            numbers.insert(n);
        }
    }
    let indexes = numbers;
    for (k, (number, _)) in segments.iter().enumerate() {
        let expected = first + k as u64;
        if *number != expected {
            return Err(Error::corruption(
                dir.join(segment::file_name(expected)),
                0,
                format!("segment {expected} is missing (segment {number} exists)"),
            ));
        }
    }
    if segments.is_empty()
        && let Some(b) = &base
    {
        return Err(Error::corruption(
            dir.join(segment::file_name(first)),
            0,
            format!(
                "segment {} is missing: the log base says the log starts there",
                b.first_segment
            ),
        ));
    }
    Ok(Listing {
        base,
        segments,
        dropped,
        temps,
        index_temps,
        indexes,
    })
}

/// Entries a data directory may hold beside annals' own, which annals
/// leaves alone: `lost+found`, which a fresh ext4 file system has at its
/// root (a mount point used whole as the data directory), and names
/// starting with `.` (`.gitkeep`, `.DS_Store`, an editor's or a backup
/// tool's), which annals never makes.
fn ignored(name: &str) -> bool {
    name == "lost+found" || name.starts_with('.')
}

/// The number in a segment file name: twenty digits and `.seg`.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn segment_id(number: u64, path: &Path) -> Result<u32, Error> {
    u32::try_from(number).map_err(|_| Error::corruption(path, 0, "segment number beyond 2^32"))
}
