//! Online backup: a consistent copy of a live store into a destination
//! directory, while appends go on, made incremental by a manifest.
//!
//! **What is copied.** Under the index's read lock (a moment: no byte is
//! copied under it) the backup takes the segments up to the last one
//! holding data and each one's committed watermark, the in-memory index
//! tables of the sealed segments and the catalog that goes with the last
//! seal. Bytes below a watermark were synced before it moved and never
//! change again (the invariant the memory maps rest on), so they can be
//! read afterwards (with `pread`, which keeps the store's pages out of this
//! process's resident memory) while the writer appends past them.
//! The copy therefore holds every acknowledged event up to that point,
//! whole commit frames only, and zeros after them: its first open finds a
//! clean end. (From a read-only store the watermark is the follower's,
//! which may include a frame its writer has written but not yet synced; see
//! [`Store::refresh`](crate::Store::refresh).)
//!
//! **Copied, never hard-linked.** A sealed segment is immutable in the
//! origin, but a hard link shares the inode: the backup's last segment is
//! its active one, which an open of the backup writes in place (appends, a
//! torn tail zeroed), and that would change the origin's sealed segment
//! under its checksums. A link would also share the origin's damage rather
//! than guard against it. So every byte is copied, once, and the rest of
//! each file is left a hole (reads as zeros; the writer zero-fills ahead of
//! itself before appending into one, as in a new store's segment 0).
//!
//! **Index files and catalog.** They are derived data, and a backup that
//! lacked them would scan every segment at its first open. They are written
//! from the origin's memory in the same snapshot, so they are consistent
//! with the copied segments by construction: the index file of every
//! sealed segment the copy holds but its last, and the catalog of the last
//! seal when that seal's index is the one on disk and written. The copy's
//! last segment gets no index file, even when the origin has sealed it
//! (a snapshot between a seal and the next segment's first frame): its
//! open scans it, as after any crash, and refuses a sealed index for it.
//! An open checks them all anyway, as it checks any index file.
//!
//! **Crash safety.** The destination is a store directory, so a backup
//! opens, verifies and restores as any store. A run first writes every
//! segment it must copy whole under a dot-name (which an open ignores),
//! synced; the previous backup is untouched and good meanwhile. Then it
//! creates the marker file [`MARKER`] and syncs the directory: an open
//! refuses a directory holding a file annals does not know with
//! [`Error::NotAStore`], so from here until the marker goes the destination
//! does not open as a store. Under the marker it extends the segment it
//! copied last time in place, renames the copies into place, writes the
//! index files and catalog, removes what no longer belongs, syncs the
//! directory, writes the manifest ([`MANIFEST`]) under a temporary name,
//! syncs and renames it, and only then removes the marker and syncs the
//! directory. A crash at any point leaves the previous good backup, a
//! directory that does not open as a store, or the new backup whole.
//!
//! **Incremental.** The manifest records, per segment, the bytes copied,
//! their CRC-32 and the file's identity (inode, size, modification and
//! change times) as it was left. The next run into the same destination
//! leaves a segment alone when the origin's watermark is where the
//! manifest says and the file is unchanged since; extends it in place when
//! the origin's watermark has moved on (committed bytes never change, so
//! the copy is a prefix of the origin's); and copies it whole otherwise. A
//! run that finds the marker (an earlier run was cut short) trusts no
//! manifest and copies everything. Before it keeps a copy, it compares the
//! copy's last 4 KiB with the origin's: a store restored from a backup keeps
//! its store id, and two diverged copies of one store must not pass for
//! each other on lengths alone.
//!
//! The destination's `LOCK` is held for the run, so two backups into one
//! destination, or a backup into a destination that is open for writing,
//! meet [`Error::Locked`].
//!
//! `destination` checks where a backup may go; `manifest` reads and writes
//! the manifest; this file takes the snapshot and copies.

mod destination;
mod manifest;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Error;
use crate::format::{Frames, SEGMENT_HEADER_LEN, SegmentHeader, decode_segment_header};
use crate::index::Index;
use crate::index::base::encode_base;
use crate::index::file::INDEX_HEADER_LEN;
use crate::index::persist::{
    BASE_FILE, CATALOG_FILE, index_file_name, sealed_index_bytes, write_base, write_catalog,
    write_index,
};
use crate::index::shared::SharedIndex;
use crate::io::{FILE_MODE, FileIo};
use crate::log::segment::{self, Segment};
use crate::options::Options;

use destination::{check_destination, is_store_file};
use manifest::{Identity, Manifest, Recorded};

/// The marker present while a backup run changes the destination's
/// segments: its name is not a dot-name, so an open refuses the directory
/// with [`Error::NotAStore`] as long as it is there.
pub const MARKER: &str = "BACKUP-INCOMPLETE";

/// The manifest of the last complete backup in a destination: what each
/// segment file holds and how it was left, for the next run to compare.
/// A dot-name, so an open of the backup ignores it.
pub const MANIFEST: &str = ".annals-backup";

/// The manifest being written.
const MANIFEST_TEMP: &str = ".annals-backup.tmp";

/// The suffix of a segment copy being written under a dot-name.
const COPY_SUFFIX: &str = ".backup-tmp";

/// How much one write of a copy carries: large enough that the system
/// calls cost nothing next to the bytes, small enough to stay in cache.
const COPY_CHUNK_LEN: usize = 4 << 20;

/// What [`Store::backup`](crate::Store::backup) did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// Events in the backup: the position its log reaches, which is its
    /// [`global_position`](crate::Store::global_position) when opened.
    pub events: u64,
    /// Segment files in the backup.
    pub segments: u64,
    /// Segment bytes written by this run (the data copied; the holes after
    /// it are not written).
    pub bytes_copied: u64,
    /// Segments the destination already held as they are, left alone.
    pub segments_unchanged: u64,
    /// Segments extended in place by what their origin appended since the
    /// last backup.
    pub segments_extended: u64,
    /// Bytes of index files and catalog written.
    pub index_bytes: u64,
}

/// One segment as the snapshot took it.
struct Taken {
    segment: Arc<Segment>,
    /// The committed watermark at the snapshot: the bytes to copy.
    len: usize,
}

/// What the index's read lock gave: a consistent point of the log.
struct Snapshot {
    store_id: u64,
    segment_size: u64,
    segments: Vec<Taken>,
    /// Index file bytes of the sealed segments among `segments`.
    indexes: Vec<(u64, Bytes)>,
    /// The catalog of the last seal, when its index is among `indexes`.
    catalog: Option<Vec<u8>>,
    /// The log's base, when retention dropped the store's first segments:
    /// not derived data, so a copy without it could not be opened.
    base: Option<Vec<u8>>,
}

impl Snapshot {
    fn take(index: &SharedIndex) -> Result<Snapshot, Error> {
        let index = index.read();
        // Every sealed segment opened and checked, with its watermark set.
        index.load_all()?;
        let header = first_header(&index)?;
        let all = index.segments();
        // The last segment holding data (segment 0 for an empty store); a
        // segment prepared ahead of need is left out, as in a new store.
        let last = all
            .iter()
            .rposition(|s| s.committed_len() > SEGMENT_HEADER_LEN)
            .unwrap_or(0);
        let segments: Vec<Taken> = all
            .iter()
            .take(last + 1)
            .map(|s| Taken {
                segment: Arc::clone(s),
                len: s.committed_len(),
            })
            .collect();
        // Sealed segments only, and never the backup's last one. The
        // active segment's tables (a clean close's open index, say)
        // describe a segment that goes on growing. And a snapshot taken
        // between a seal and the first frame of the next segment ends with
        // a sealed segment, which the backup's open takes as its active
        // one: recovery refuses a sealed index for the last segment (with a
        // warning, scanning it instead), so it is left out, and with it the
        // catalog that names it.
        let active = u64::from(index.active_segment());
        let backup_active = last as u64;
        let mut indexes = Vec::new();
        for t in &segments {
            let number = t.segment.number();
            if number >= active.min(backup_active) {
                break;
            }
            let Ok(n) = u32::try_from(number) else { break };
            // Missing tables (never the case for a sealed segment) or ones
            // that do not follow on: leave the file out, and the backup's
            // first open scans that segment.
            if let Some(bytes) = sealed_index_bytes(&index.tables_of(n)) {
                indexes.push((number, bytes));
            }
        }
        // The catalog names the last sealed segment's index by its header
        // CRC; it goes only with that very index file, the one just before
        // the backup's active segment.
        let catalog = index.sealed_catalog_bytes().filter(|_| {
            active == backup_active && indexes.last().is_some_and(|(n, _)| n + 1 == active)
        });
        // The base as the index stands, with these very segments (the
        // base file on disk may already name a later start, for a drop
        // under way).
        // (The first segment may be the active one, with no events yet,
        // once retention dropped every sealed one: its start is then the
        // active segment's.)
        let base = match index.first_segment() {
            0 => None,
            _ => Some(
                encode_base(&index.base(index.start_position()))
                    .ok_or_else(|| crate::read::internal("the log base does not encode".into()))?,
            ),
        };
        Ok(Snapshot {
            store_id: header.store_id,
            segment_size: header.segment_size,
            segments,
            indexes,
            catalog,
            base,
        })
    }

    /// The position the log of the copy reaches: the end of the last
    /// frame of its last segment, which is walked (and so checked) whole.
    fn events(&self) -> Result<u64, Error> {
        let Some(last) = self.segments.last() else {
            return Ok(0);
        };
        let bytes = last.segment.committed();
        let untrusted = bytes.get(SEGMENT_HEADER_LEN..last.len).unwrap_or_default();
        let mut frames = Frames::new(untrusted, last.segment.salt()).based_at(SEGMENT_HEADER_LEN);
        let mut end = None;
        while let Some(frame) = frames.next_frame() {
            end = Some(frame.positions().end);
        }
        let walked = frames.finish();
        if let Some((offset, reason)) = walked.problem() {
            return Err(Error::corruption(
                last.segment.path(),
                offset as u64,
                reason,
            ));
        }
        match end {
            Some(end) => Ok(end),
            // An empty last segment is segment 0 of an empty store.
            None => Ok(0),
        }
    }
}

/// What one run does with one segment.
#[derive(Debug)]
enum Plan {
    /// The destination holds it as it is.
    Unchanged(Recorded),
    /// The destination holds its first `from` bytes; the rest is appended.
    Extend { from: usize, crc: u32 },
    /// Copied whole to the temporary file; `crc` is the CRC-32 of the
    /// bytes copied.
    Copy { temp: PathBuf, crc: u32 },
}

/// Backs up the store at `origin` (whose index is `index`) into `dest`;
/// see the module's documentation.
pub(crate) fn backup(
    origin: &Path,
    index: &SharedIndex,
    options: &Options,
    dest: &Path,
) -> Result<BackupReport, Error> {
    let io = &*options.io;
    let store_id = first_header(&index.read())?.store_id;
    let found = check_destination(origin, dest, store_id)?;
    if !found.exists {
        // With any missing directories above it, each made durable.
        crate::store::create_dir(dest, options)?;
    }
    let _lock = crate::store::lock(dest)?;
    // An earlier run cut short left the marker, and files it may have
    // changed after its manifest was written: trust none of it.
    let previous = if found.marker {
        None
    } else {
        Manifest::read(dest)
    };
    remove_leftover_copies(io, dest)?;

    let snapshot = Snapshot::take(index)?;
    let events = snapshot.events()?;
    let previous = previous
        .filter(|m| m.store_id == snapshot.store_id && m.segment_size == snapshot.segment_size);

    // Phase 1: what must be copied whole goes to dot-names; the previous
    // backup is still whole and good.
    let mut report = BackupReport {
        events,
        segments: snapshot.segments.len() as u64,
        bytes_copied: 0,
        segments_unchanged: 0,
        segments_extended: 0,
        index_bytes: 0,
    };
    let mut plans = Vec::with_capacity(snapshot.segments.len());
    for taken in &snapshot.segments {
        let number = taken.segment.number();
        let name = segment::file_name(number);
        let path = dest.join(&name);
        let recorded = previous
            .as_ref()
            .and_then(|m| m.segments.get(&number))
            .filter(|r| Identity::of(&path) == Some(r.identity))
            .filter(|r| r.data_len <= taken.len as u64 && same_tail(taken, &path, r.data_len));
        let plan = match recorded {
            Some(r) if r.data_len == taken.len as u64 => Plan::Unchanged(r.clone()),
            Some(r) if r.data_len >= SEGMENT_HEADER_LEN as u64 && r.data_len < taken.len as u64 => {
                Plan::Extend {
                    from: r.data_len as usize,
                    crc: r.crc,
                }
            }
            _ => {
                let temp = dest.join(format!(".{name}{COPY_SUFFIX}"));
                let crc = copy_whole(io, taken, snapshot.segment_size, &temp)?;
                report.bytes_copied += taken.len as u64;
                Plan::Copy { temp, crc }
            }
        };
        plans.push(plan);
    }

    // Phase 2: under the marker, the destination does not open as a
    // store until it is whole again.
    create_marker(io, dest)?;
    let mut manifest = Manifest {
        store_id: snapshot.store_id,
        segment_size: snapshot.segment_size,
        segments: BTreeMap::new(),
    };
    for (taken, plan) in snapshot.segments.iter().zip(plans) {
        let number = taken.segment.number();
        let path = dest.join(segment::file_name(number));
        let crc = match plan {
            Plan::Unchanged(r) => {
                report.segments_unchanged += 1;
                manifest.segments.insert(number, r);
                continue;
            }
            Plan::Extend { from, crc } => {
                report.bytes_copied += (taken.len - from) as u64;
                report.segments_extended += 1;
                extend(io, taken, from, crc, &path)?
            }
            Plan::Copy { temp, crc } => {
                replace(io, &temp, &path)?;
                crc
            }
        };
        // Stat after the last write and rename: both move the times.
        let identity = Identity::of(&path).ok_or_else(|| {
            Error::io(
                "inspect segment copy",
                &path,
                std::io::Error::other("not a regular file"),
            )
        })?;
        let recorded = Recorded {
            data_len: taken.len as u64,
            crc,
            identity,
        };
        manifest.segments.insert(number, recorded);
    }
    report.index_bytes = write_derived(io, dest, &snapshot)?;
    remove_strangers(io, dest, &snapshot)?;
    io.sync_dir(dest)
        .map_err(|e| Error::io("sync backup directory", dest, e))?;
    write_manifest(io, dest, &manifest)?;
    let marker = dest.join(MARKER);
    io.remove_file(&marker)
        .map_err(|e| Error::io("remove backup marker", &marker, e))?;
    io.sync_dir(dest)
        .map_err(|e| Error::io("sync backup directory", dest, e))?;
    Ok(report)
}

/// The first segment's header, which names the store and its segment
/// size. Every open store has a first segment (recovery creates or
/// requires it).
fn first_header(index: &Index) -> Result<SegmentHeader, Error> {
    let first = index.segments().first().ok_or(Error::Poisoned)?;
    first
        .committed()
        .get(..SEGMENT_HEADER_LEN)
        .and_then(|h| decode_segment_header(h).ok())
        .ok_or_else(|| Error::corruption(first.path(), 0, "segment header unreadable"))
}

/// Removes copies a run cut short left under dot-names.
fn remove_leftover_copies(io: &dyn FileIo, dest: &Path) -> Result<(), Error> {
    let entries = fs::read_dir(dest).map_err(|e| Error::io("list backup destination", dest, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list backup destination", dest, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.starts_with('.') && name.ends_with(COPY_SUFFIX)) || name == MANIFEST_TEMP {
            let path = entry.path();
            io.remove_file(&path)
                .map_err(|e| Error::io("remove unfinished copy", &path, e))?;
        }
    }
    Ok(())
}

/// How many bytes before the end of a segment's copy are compared with the
/// origin's before the copy is kept: its last frames, whose records carry
/// ids and times unique to this log.
const TAIL_CHECK_LEN: u64 = 4096;

/// Whether the copy at `path` ends, at `len`, with the same bytes as the
/// taken segment at the same place. The manifest's store id and lengths
/// alone cannot tell a copy from the same place in another log of the same
/// store id (a store restored from a backup and written to since, say):
/// comparing the last frames can, for the price of two small reads.
fn same_tail(taken: &Taken, path: &Path, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let start = len.saturating_sub(TAIL_CHECK_LEN);
    let n = (len - start) as usize;
    let read = |p: &Path| -> Option<Vec<u8>> {
        let mut buf = vec![0u8; n];
        File::open(p).ok()?.read_exact_at(&mut buf, start).ok()?;
        Some(buf)
    };
    let origin = read(taken.segment.path());
    origin.is_some() && origin == read(path)
}

/// Copies the taken bytes of a segment into a new file at `temp`, of the
/// segment's size (a hole after the data), synced; returns their CRC-32.
fn copy_whole(
    io: &dyn FileIo,
    taken: &Taken,
    segment_size: u64,
    temp: &Path,
) -> Result<u32, Error> {
    let file = io
        .create_new(temp)
        .map_err(|e| Error::io("create segment copy", temp, e))?;
    io.set_len(&file, temp, segment_size)
        .map_err(|e| Error::io("size segment copy", temp, e))?;
    let crc = write_range(io, &file, temp, taken, 0, 0)?;
    io.sync_data(&file, temp)
        .map_err(|e| Error::io("sync segment copy", temp, e))?;
    Ok(crc)
}

/// Appends the taken bytes from `from` on to the copy at `path`, which holds
/// the bytes before them (with CRC-32 `crc`), synced; returns the CRC-32 of
/// the whole.
fn extend(
    io: &dyn FileIo,
    taken: &Taken,
    from: usize,
    crc: u32,
    path: &Path,
) -> Result<u32, Error> {
    let file = OpenOptions::new()
        .write(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| Error::io("open segment copy", path, e))?;
    let crc = write_range(io, &file, path, taken, from, crc)?;
    io.sync_data(&file, path)
        .map_err(|e| Error::io("sync segment copy", path, e))?;
    Ok(crc)
}

/// Writes the taken bytes of a segment from `from` on to `file`, at the
/// same offsets; returns the CRC-32 of the taken bytes, continuing `crc`
/// (that of the first `from`).
///
/// The bytes are read with `pread` from the origin's file rather than out
/// of its map: they are the same bytes (below the watermark, synced, never
/// written again), but a read through the map would leave every page of
/// the store counted in this process's resident memory, where a buffer of
/// [`COPY_CHUNK_LEN`] is all a copy needs.
fn write_range(
    io: &dyn FileIo,
    file: &File,
    path: &Path,
    taken: &Taken,
    from: usize,
    crc: u32,
) -> Result<u32, Error> {
    use std::os::unix::fs::FileExt;
    let origin = taken.segment.path();
    let source = File::open(origin).map_err(|e| Error::io("open segment to copy", origin, e))?;
    let mut buf = vec![0u8; COPY_CHUNK_LEN.min(taken.len.saturating_sub(from))];
    let mut hasher = crc32fast::Hasher::new_with_initial_len(crc, from as u64);
    let mut at = from;
    while at < taken.len {
        let n = buf.len().min(taken.len - at);
        let chunk = buf.get_mut(..n).unwrap_or_default();
        source
            .read_exact_at(chunk, at as u64)
            .map_err(|e| Error::io("read segment to copy", origin, e))?;
        hasher.update(chunk);
        io.write_at(file, path, chunk, at as u64)
            .map_err(|e| Error::io("write segment copy", path, e))?;
        at += n;
    }
    Ok(hasher.finalize())
}

/// Renames `temp` to `path`, removing an older `path` first: the I/O seam
/// never renames over a file. Called under the marker only, where a crash
/// between the two leaves a directory that does not open as a store.
fn replace(io: &dyn FileIo, temp: &Path, path: &Path) -> Result<(), Error> {
    if fs::symlink_metadata(path).is_ok() {
        io.remove_file(path)
            .map_err(|e| Error::io("remove older backup file", path, e))?;
    }
    io.rename(temp, path)
        .map_err(|e| Error::io("rename copy into place", path, e))
}

/// Creates the marker and makes it durable before anything it guards is
/// changed.
fn create_marker(io: &dyn FileIo, dest: &Path) -> Result<(), Error> {
    let marker = dest.join(MARKER);
    if fs::symlink_metadata(&marker).is_err() {
        let file = io
            .create_new(&marker)
            .map_err(|e| Error::io("create backup marker", &marker, e))?;
        drop(file);
    }
    io.sync_dir(dest)
        .map_err(|e| Error::io("sync backup directory", dest, e))
}

/// Writes the index files and the catalog of the snapshot where the
/// destination does not hold the same already; returns the bytes written.
fn write_derived(io: &dyn FileIo, dest: &Path, snapshot: &Snapshot) -> Result<u64, Error> {
    let mut written = 0u64;
    for (number, bytes) in &snapshot.indexes {
        let path = dest.join(index_file_name(*number));
        if same_index(&path, bytes) {
            continue;
        }
        write_index(io, dest, *number, bytes)
            .map_err(|e| Error::io("write index file", &path, e))?;
        written += bytes.len() as u64;
    }
    if let Some(base) = &snapshot.base {
        let path = dest.join(BASE_FILE);
        if !fs::read(&path).is_ok_and(|old| old == *base) {
            write_base(io, dest, base).map_err(|e| Error::io("write the log base", &path, e))?;
            written += base.len() as u64;
        }
    }
    if let Some(catalog) = &snapshot.catalog {
        let path = dest.join(CATALOG_FILE);
        if !fs::read(&path).is_ok_and(|old| old == *catalog) {
            write_catalog(io, dest, catalog).map_err(|e| Error::io("write catalog", &path, e))?;
            written += catalog.len() as u64;
        }
    }
    Ok(written)
}

/// Whether the index file at `path` holds `bytes`, judged by its length and
/// its header, whose last eight bytes are the CRC-32 of the body and of the
/// header (FORMAT.md, "Segment index file"): reading only the header keeps
/// a backup that changed nothing from reading every index file again. A
/// file that only looks the same is derived data that an open checks and
/// rebuilds if it must.
fn same_index(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(bytes.len() as u64) {
        return false;
    }
    let mut header = [0u8; INDEX_HEADER_LEN];
    file.read_exact(&mut header).is_ok() && bytes.get(..INDEX_HEADER_LEN) == Some(&header[..])
}

/// Removes what the new backup does not hold: segments past its last, index
/// files it did not write (the active segment's, say), a catalog it did not
/// write, temporary files.
fn remove_strangers(io: &dyn FileIo, dest: &Path, snapshot: &Snapshot) -> Result<(), Error> {
    let keep: Vec<String> = snapshot
        .segments
        .iter()
        .map(|t| segment::file_name(t.segment.number()))
        .chain(snapshot.indexes.iter().map(|(n, _)| index_file_name(*n)))
        .chain(snapshot.catalog.iter().map(|_| CATALOG_FILE.to_owned()))
        .chain(snapshot.base.iter().map(|_| BASE_FILE.to_owned()))
        .collect();
    let entries = fs::read_dir(dest).map_err(|e| Error::io("list backup destination", dest, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list backup destination", dest, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_store_file(&name) && !keep.contains(&name) {
            let path = entry.path();
            io.remove_file(&path)
                .map_err(|e| Error::io("remove stale backup file", &path, e))?;
        }
    }
    Ok(())
}

/// Writes the manifest under a temporary name, synced, and renames it into
/// place, the directory synced.
fn write_manifest(io: &dyn FileIo, dest: &Path, manifest: &Manifest) -> Result<(), Error> {
    let temp = dest.join(MANIFEST_TEMP);
    let path = dest.join(MANIFEST);
    let file = io
        .create_new(&temp)
        .map_err(|e| Error::io("create backup manifest", &temp, e))?;
    io.write_at(&file, &temp, manifest.encode().as_bytes(), 0)
        .map_err(|e| Error::io("write backup manifest", &temp, e))?;
    io.sync_data(&file, &temp)
        .map_err(|e| Error::io("sync backup manifest", &temp, e))?;
    replace(io, &temp, &path)?;
    io.sync_dir(dest)
        .map_err(|e| Error::io("sync backup directory", dest, e))
}
