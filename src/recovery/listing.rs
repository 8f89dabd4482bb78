//! What a data directory holds: its segment files in order, segments left
//! half-prepared, and nothing else (but `lost+found` and dot-files); and
//! each segment's header checked against its name and against segment 0's.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::format::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, Salt, SegmentHeader, decode_segment_header,
};
use crate::options::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, SEGMENT_SIZE_MULTIPLE};
use crate::segment::{self, Segment, TEMP_SUFFIX};

use super::LOCK_FILE;

/// Checks that `dir` holds nothing but annals' files, without opening any.
pub(crate) fn check_listing(dir: &Path) -> Result<(), Error> {
    list(dir).map(|_| ())
}

/// The files of a data directory, sorted out.
pub(super) struct Listing {
    /// Segment numbers and paths, in number order, checked dense from 0.
    pub segments: Vec<(u64, PathBuf)>,
    /// Segments left half-prepared by a crash.
    pub temps: Vec<PathBuf>,
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
                    "holds {:?}, which annals did not make (only LOCK, segment files, \
                     lost+found and names starting with '.' belong there)",
                    os_name.to_string_lossy()
                ),
            });
        }
    }
    segments.sort_unstable_by_key(|(n, _)| *n);
    for (expected, (number, _)) in segments.iter().enumerate() {
        if *number != expected as u64 {
            return Err(Error::corruption(
                dir.join(segment::file_name(expected as u64)),
                0,
                format!("segment {expected} is missing (segment {number} exists)"),
            ));
        }
    }
    Ok(Listing { segments, temps })
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

/// Opens and maps a segment and checks its header against its name and
/// against the first segment's.
pub(crate) fn open_segment(
    path: PathBuf,
    number: u64,
    first: &mut Option<SegmentHeader>,
) -> Result<Segment, Error> {
    let len = fs::symlink_metadata(&path)
        .map_err(|e| Error::io("inspect segment", &path, e))?
        .len();
    if len < (SEGMENT_HEADER_LEN + FRAME_HEADER_LEN) as u64 {
        return Err(Error::corruption(
            &path,
            len,
            format!("segment file of {len} bytes is too short to hold a header"),
        ));
    }
    let mut seg = Segment::open(path, number)?;
    let header = decode_segment_header(seg.whole())
        .map_err(|e| Error::corruption(seg.path(), e.offset as u64, e.reason))?;
    let bad = |offset: u64, reason: String| Err(Error::corruption(seg.path(), offset, reason));
    if header.segment_number != number {
        return bad(
            24,
            format!(
                "header says segment {}, file name says {number}",
                header.segment_number
            ),
        );
    }
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&header.segment_size)
        || !header.segment_size.is_multiple_of(SEGMENT_SIZE_MULTIPLE)
    {
        return bad(
            32,
            format!(
                "header gives an invalid segment size {}",
                header.segment_size
            ),
        );
    }
    if header.segment_size != len {
        return bad(
            len,
            format!(
                "file is {len} bytes but its header says {}",
                header.segment_size
            ),
        );
    }
    if let Some(first) = first {
        if header.store_id != first.store_id {
            return bad(
                16,
                "segment belongs to another store (store id differs)".into(),
            );
        }
        if header.segment_size != first.segment_size {
            return bad(32, "segment size differs from segment 0's".into());
        }
    } else {
        *first = Some(header);
    }
    seg.set_salt(Salt::new(header.store_id, number));
    Ok(seg)
}
