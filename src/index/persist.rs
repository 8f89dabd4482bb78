//! Segment index files on disk: where they live, how one is written so that
//! a crash at any point leaves either no file or a whole one, and how one is
//! loaded and checked against its segment before it is trusted.
//!
//! Index files are derived data. Writing one never fails the store: a
//! failure is a warning, and the next open rebuilds the file from its
//! segment. Loading one never fails an open: anything wrong with it is a
//! reason to rebuild it, given back to the caller to warn with.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::format::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, decode_frame_header};
use crate::io::FileIo;
use crate::log::segment::{Mapped, Segment, map_immutable};

use super::Table;
use super::file::{IndexHeader, decode_index_header, decode_index_unchecked, merge_index};

/// The suffix of a segment index file.
pub(crate) const INDEX_SUFFIX: &str = ".idx";
/// The suffix of an index file being written.
pub(crate) const INDEX_TEMP_SUFFIX: &str = ".idx.tmp";

/// The file name of segment `number`'s index: twenty digits, like the
/// segment's own.
pub(crate) fn index_file_name(number: u64) -> String {
    format!("{number:020}{INDEX_SUFFIX}")
}

/// The file name of the stream catalog a clean close writes.
pub(crate) const CATALOG_FILE: &str = "catalog";
/// The name of a catalog being written.
pub(crate) const CATALOG_TEMP: &str = "catalog.tmp";

/// The file name of the log's base, which exists once `$all` retention
/// dropped segments (see [`super::base`]).
pub(crate) const BASE_FILE: &str = "base";
/// The name of a base being written.
pub(crate) const BASE_TEMP: &str = "base.tmp";

/// Reads and checks the log's base in `dir`: `Ok(None)` when there is
/// none (nothing was ever dropped). Not derived data: a base that cannot
/// be read or fails a check is corruption, named.
pub(crate) fn read_base(dir: &Path) -> Result<Option<super::base::Base>, crate::error::Error> {
    use crate::error::Error;
    let path = dir.join(BASE_FILE);
    // Its body length is a u32: a longer file is refused before it is
    // read into memory.
    let max_len = super::base::BASE_HEADER_LEN as u64 + u64::from(u32::MAX);
    match std::fs::metadata(&path) {
        Ok(m) if m.len() > max_len => {
            return Err(Error::corruption(
                &path,
                0,
                format!("a log base of {} bytes, longer than any base", m.len()),
            ));
        }
        _ => {}
    }
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read the log base", &path, e)),
    };
    super::base::decode_base(&bytes)
        .map(Some)
        .map_err(|reason| Error::corruption(&path, 0, reason))
}

/// Writes `bytes` as the log's base in `dir`: under a temporary name,
/// synced, renamed over the old base in one step (`rename(2)`; never
/// removed first, as a derived file may be, since an open cannot do
/// without it), and the directory synced.
pub(crate) fn write_base(io: &dyn FileIo, dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(BASE_FILE);
    let temp = dir.join(BASE_TEMP);
    if std::fs::symlink_metadata(&temp).is_ok() {
        io.remove_file(&temp)?;
    }
    let file = io.create_new(&temp)?;
    io.write_at(&file, &temp, bytes, 0)?;
    io.sync_data(&file, &temp)?;
    io.rename_over(&temp, &path)?;
    io.sync_dir(dir)
}
/// The most one write of a derived file carries; see `write_derived`.
const DERIVED_WRITE_LEN: usize = 64 << 10;

/// Writes `bytes` as the index file of segment `number` in `dir`.
pub(crate) fn write_index(
    io: &dyn FileIo,
    dir: &Path,
    number: u64,
    bytes: &[u8],
) -> io::Result<PathBuf> {
    let temp = format!("{number:020}{INDEX_TEMP_SUFFIX}");
    write_derived(io, dir, &index_file_name(number), &temp, bytes)
}

/// Writes `bytes` as the stream catalog in `dir`.
pub(crate) fn write_catalog(io: &dyn FileIo, dir: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    write_derived(io, dir, CATALOG_FILE, CATALOG_TEMP, bytes)
}

/// The catalog's bytes, if there is one to read.
pub(crate) fn read_catalog(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join(CATALOG_FILE)).ok()
}

/// Writes a file of derived data, `name` in `dir`: under the temporary
/// name `temp`, synced, renamed over any older file, and the directory
/// synced, so that a crash at any point leaves the old file, no file, or
/// the whole new one.
fn write_derived(
    io: &dyn FileIo,
    dir: &Path,
    name: &str,
    temp: &str,
    bytes: &[u8],
) -> io::Result<PathBuf> {
    let path = dir.join(name);
    let temp = dir.join(temp);
    if std::fs::symlink_metadata(&temp).is_ok() {
        io.remove_file(&temp)?;
    }
    let file = io.create_new(&temp)?;
    // In pieces: a file written in one large write sits in the page cache
    // in large folios, and a read through a map of it maps a whole folio
    // (up to 2 MiB on Linux 6.x) into the reader's resident set for the few
    // bytes a lookup reads. Pieces of 64 KiB keep that to the fault-around
    // a small page gets anyway.
    for (i, piece) in bytes.chunks(DERIVED_WRITE_LEN).enumerate() {
        io.write_at(&file, &temp, piece, (i * DERIVED_WRITE_LEN) as u64)?;
    }
    io.sync_data(&file, &temp)?;
    if std::fs::symlink_metadata(&path).is_ok() {
        io.remove_file(&path)?;
    }
    io.rename(&temp, &path)?;
    io.sync_dir(dir)?;
    Ok(path)
}

/// The bytes of sealed segment's index file, from its tables: the one
/// table's bytes, or several merged. `None` if they do not follow on.
pub(crate) fn sealed_index_bytes(tables: &[Table]) -> Option<Bytes> {
    let views: Vec<_> = tables.iter().filter_map(Table::view).collect();
    if views.len() != tables.len() {
        return None;
    }
    match (views.as_slice(), tables) {
        ([one], [table]) if !one.header().open => Some(table.bytes()?.clone()),
        _ => merge_index(&views, false).map(Bytes::from),
    }
}

/// Why an index file could not be used.
#[derive(Debug)]
pub(crate) enum Unusable {
    /// There is none (a store written before indexes, or a crash before it
    /// was written).
    Missing,
    /// It fails a check, which the string names.
    Bad(String),
}

/// Loads the index file of `segment` in `dir` and checks it: whole (its
/// checksums), of this store and segment, starting at `first_position`,
/// and agreeing with the segment's last frame it covers, after which the
/// segment holds nothing.
pub(crate) fn load_table(
    dir: &Path,
    segment: &Segment,
    store_id: u64,
    first_position: u64,
) -> Result<Table, Unusable> {
    let (mapped, _) = load_checked(dir, segment, store_id, first_position)?;
    Table::from_map(mapped, false).ok_or_else(|| Unusable::Bad("index header unreadable".into()))
}

/// The checks of [`load_table`], giving the file's map and its header.
pub(crate) fn load_checked(
    dir: &Path,
    segment: &Segment,
    store_id: u64,
    first_position: u64,
) -> Result<(Mapped, IndexHeader), Unusable> {
    let path = dir.join(index_file_name(segment.number()));
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) => return Err(Unusable::Bad(format!("cannot open it: {e}"))),
    };
    let mapped = map_immutable(&file).map_err(|e| Unusable::Bad(format!("cannot map it: {e}")))?;
    let bytes = mapped.bytes().clone();
    // The body is checked on first use (see `Table`): an open reads only
    // the header.
    let h = decode_index_header(&bytes).map_err(Unusable::Bad)?;
    if decode_index_unchecked(&bytes).is_err() {
        return Err(Unusable::Bad(
            "index file's length is not what its header implies".into(),
        ));
    }
    let bad = |reason: String| Err(Unusable::Bad(reason));
    if h.store_id != store_id || h.segment_number != segment.number() {
        return bad(format!(
            "it indexes segment {} of store {:x}, not segment {} of store {store_id:x}",
            h.segment_number,
            h.store_id,
            segment.number()
        ));
    }
    if h.first_position != first_position {
        return bad(format!(
            "it starts at position {} where the log is at {first_position}",
            h.first_position
        ));
    }
    let (at, end) = (h.last_frame_at as usize, h.data_end as usize);
    if at < SEGMENT_HEADER_LEN || at >= end || end > segment.len() {
        return bad(format!(
            "its last frame at {at}..{end} does not fit the segment"
        ));
    }
    let last = segment
        .read_at(at, FRAME_HEADER_LEN)
        .and_then(|head| decode_frame_header(&head, segment.salt()).ok().flatten());
    let covered_end = h.first_position + u64::from(h.event_count);
    match last {
        Some(f)
            if at + f.frame_len as usize == end
                && f.first_position + u64::from(f.event_count) == covered_end => {}
        _ => {
            return bad(format!(
                "the segment holds no frame at {at} ending at {end} with position {}",
                covered_end.saturating_sub(1)
            ));
        }
    }
    // Frames after the covered ones mean the segment was written on after
    // the index was (a crash before the newer index was written).
    if segment
        .read_at(end, 4.min(segment.len() - end))
        .is_some_and(|word| word.iter().any(|b| *b != 0))
    {
        return bad(format!("the segment holds more frames after offset {end}"));
    }
    Ok((mapped, h))
}
