//! One segment file: create it (zero-filled, header written, synced), map
//! it, read committed bytes out of the map, write and sync through the I/O
//! seam. This is the only module with `unsafe`: it owns the memory maps.
//!
//! The argument that reading through the maps is sound rests on three
//! invariants, each kept by this crate:
//!
//! 1. **No file is shrunk while mapped.** Segments have one fixed size from
//!    creation on; annals never truncates one, so a read inside the map
//!    cannot fault (SIGBUS).
//! 2. **Committed bytes never change.** The writer only ever writes at or
//!    past a segment's committed watermark; bytes below it were synced
//!    before the watermark moved and are never written again. Slices handed
//!    out by this module cover only bytes below the watermark (or, during
//!    recovery, bytes that nothing else writes).
//! 3. **One writer.** The data directory's exclusive lock keeps other annals
//!    processes from writing. A process that ignores the lock and writes
//!    into a segment breaks invariant 2; annals cannot defend against that,
//!    and checksums are what would notice it.
//!
//! This module is the only one allowed `unsafe` (the crate root denies it):
//! every block here carries a `// SAFETY:` comment naming the invariant it
//! relies on.

#![allow(unsafe_code)]

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions, MmapRaw};

use crate::error::Error;
use crate::format::{
    FORMAT_VERSION, FRAME_HEADER_LEN, MIN_FORMAT_VERSION, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
    Salt, SegmentHeader, check_segment_header, encode_segment_header, segment_format_version,
};
use crate::io::FileIo;

/// The file name of segment `number`: twenty decimal digits, so that names
/// sort in number order.
pub(crate) fn file_name(number: u64) -> String {
    format!("{number:020}.seg")
}

/// The suffix of a segment still being prepared; see [`Segment::create`].
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// How much zero-fill one write carries when a segment is preallocated.
const ZERO_CHUNK_LEN: usize = 1 << 20;

/// How far segment 0 is zero-filled when it is created, and the least the
/// writer zero-fills ahead of itself in it.
pub(crate) const ZERO_AHEAD_MIN_LEN: usize = 1 << 20;

/// The most the writer zero-fills ahead at once: the cost of one fill
/// lands on one append.
pub(crate) const ZERO_AHEAD_MAX_LEN: usize = 8 << 20;

/// How far past `write_end` the writer of a sparse segment zero-fills when
/// a frame would pass the zero-filled part: as far again as the segment
/// already holds, between [`ZERO_AHEAD_MIN_LEN`] and
/// [`ZERO_AHEAD_MAX_LEN`]. Growing geometrically keeps the fills few (about
/// ten for a 64 MiB segment), so that the `fdatasync`s that must also
/// allocate blocks are a handful among thousands of appends, while a small
/// store stays within a MiB or two of its data.
pub(crate) fn zero_ahead_len(write_end: usize) -> usize {
    write_end.clamp(ZERO_AHEAD_MIN_LEN, ZERO_AHEAD_MAX_LEN)
}

/// Writes zeros over `range` of `file` through the I/O seam, a chunk at a
/// time.
pub(crate) fn zero_fill(
    io: &dyn FileIo,
    file: &File,
    path: &Path,
    range: std::ops::Range<usize>,
) -> std::io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK_LEN.min(range.len())];
    let mut at = range.start;
    while at < range.end {
        let n = zeros.len().min(range.end - at);
        io.write_at(file, path, &zeros[..n], at as u64)?;
        at += n;
    }
    Ok(())
}

/// Who else may write to a segment while the recovery scan reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Nothing: this process holds the directory lock and its writer does
    /// not exist yet, or the segment was sealed before the scan began.
    Exclusive,
    /// A live writer in another process may be appending to it.
    Shared,
}

/// A mapped segment file, or one mapped on first use.
///
/// A sealed segment that the stream catalog lets the open skip is made
/// with [`Segment::deferred`]: nothing of it is opened until
/// [`Segment::ensure_open`] (every reader of its bytes calls it first),
/// which opens it, maps it and checks its header exactly as an open does.
/// Until then it has no map, and its bytes read as none.
#[derive(Debug)]
pub(crate) struct Segment {
    number: u64,
    path: PathBuf,
    salt: Salt,
    /// The map, once the file is open.
    map: OnceLock<MmapRaw>,
    /// For a deferred segment: segment 0's header, which its own must
    /// match when it is opened.
    expected: Option<SegmentHeader>,
    /// The segment size: the file's length once checked, the store's
    /// before (a deferred segment's header check requires them equal).
    size: usize,
    /// Bytes from the start of the file that hold synced, published frames:
    /// the watermark no read goes past.
    committed: AtomicUsize,
    /// Bytes from the start of the file past which it is a hole (reads as
    /// zeros), as the file system said at open, or as far as creation wrote.
    data_len: AtomicUsize,
    /// The format version its header gives: the writer puts a control
    /// record only in a segment of version 2 or later, which a build that
    /// cannot read control records refuses.
    format_version: AtomicU32,
    /// Which records of this map a read has checked, made at the first
    /// check: see [`Segment::is_verified`].
    verified: OnceLock<Verified>,
}

impl Segment {
    /// Creates segment `number` in `dir`, ready for appends, and returns it
    /// with an open file for the writer.
    ///
    /// The file is made whole (header, then zeros to its full size),
    /// synced, and only then renamed from a temporary name into place and the
    /// directory synced. A crash at any point leaves either no segment or a
    /// complete one: recovery never sees a half-prepared segment under a
    /// segment's name.
    ///
    /// Segment 1 on are written full of zeros rather than `fallocate`-d:
    /// the blocks are then allocated and written, so the `fdatasync` of each
    /// append carries only data, never metadata. Segment 0 is different,
    /// because most stores are small: it is grown to its size as a hole
    /// (which reads as zeros) with only its first [`ZERO_AHEAD_MIN_LEN`]
    /// bytes written, and the writer zero-fills further ahead of itself as
    /// it goes (see [`zero_ahead_len`]). A new store then costs about a MiB
    /// of disk rather than a whole segment, and its recovery scan reads only
    /// the written part (see [`Segment::data_len`]).
    pub(crate) fn create(
        io: &dyn FileIo,
        dir: &Path,
        header: &SegmentHeader,
    ) -> Result<(Arc<Segment>, File), Error> {
        let name = file_name(header.segment_number);
        let path = dir.join(&name);
        let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
        let size = usize::try_from(header.segment_size).map_err(|_| Error::InvalidOptions {
            reason: "segment size does not fit this platform's address space".into(),
        })?;
        if std::fs::symlink_metadata(&path).is_ok() {
            let e = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "segment exists");
            return Err(Error::io("create segment", &path, e));
        }
        // A temporary file under this name is left from a preparation that
        // failed earlier in this process (we hold the directory lock, so it is
        // ours): it holds nothing and goes.
        if std::fs::symlink_metadata(&temp).is_ok() {
            io.remove_file(&temp)
                .map_err(|e| Error::io("remove failed segment preparation", &temp, e))?;
        }
        let file = io
            .create_new(&temp)
            .map_err(|e| Error::io("create segment", &temp, e))?;
        let sparse = header.segment_number == 0;
        let zeroed = if sparse {
            io.set_len(&file, &temp, size as u64)
                .map_err(|e| Error::io("size segment", &temp, e))?;
            ZERO_AHEAD_MIN_LEN.min(size)
        } else {
            size
        };
        zero_fill(io, &file, &temp, 0..zeroed)
            .map_err(|e| Error::io("zero-fill segment", &temp, e))?;
        io.write_at(&file, &temp, &encode_segment_header(header), 0)
            .map_err(|e| Error::io("write segment header", &temp, e))?;
        io.sync_data(&file, &temp)
            .map_err(|e| Error::io("sync new segment", &temp, e))?;
        io.rename(&temp, &path)
            .map_err(|e| Error::io("rename new segment into place", &path, e))?;
        // Without this the rename could be lost in a crash while appends to
        // the new segment were acknowledged.
        io.sync_dir(dir)
            .map_err(|e| Error::io("sync data directory", dir, e))?;
        let mut segment = Segment::map(
            &file,
            path,
            header.segment_number,
            Salt::new(header.store_id, header.segment_number),
        )?;
        segment
            .committed
            .store(SEGMENT_HEADER_LEN, Ordering::Release);
        segment.data_len = AtomicUsize::new(zeroed);
        Ok((Arc::new(segment), file))
    }

    /// Opens and maps the existing segment file `number` at `path`,
    /// read-only, and checks its header against its name, its length and,
    /// once one segment was opened, against segment 0's header in `first`
    /// (which the first call fills in). Nothing is committed until
    /// [`publish`](Segment::publish) says so.
    ///
    /// The header is copied out of the map rather than borrowed: a live
    /// writer in another process may be writing elsewhere in the file.
    pub(crate) fn open(
        path: PathBuf,
        number: u64,
        first: &mut Option<SegmentHeader>,
    ) -> Result<Segment, Error> {
        let file = File::open(&path).map_err(|e| Error::io("open segment", &path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("inspect segment", &path, e))?
            .len();
        if file_len < (SEGMENT_HEADER_LEN + FRAME_HEADER_LEN) as u64 {
            return Err(Error::corruption(
                &path,
                file_len,
                format!("segment file of {file_len} bytes is too short to hold a header"),
            ));
        }
        // The salt needs the store id from the header; it is set below.
        let mut segment = Segment::map(&file, path, number, Salt::new(0, number))?;
        let untrusted = segment.copy_out(0, SEGMENT_HEADER_LEN).unwrap_or_default();
        let header = check_segment_header(&untrusted, number, file_len, first.as_ref())
            .map_err(|e| Error::corruption(segment.path(), e.offset as u64, e.reason))?;
        first.get_or_insert(header);
        segment.format_version =
            AtomicU32::new(segment_format_version(&untrusted).unwrap_or(MIN_FORMAT_VERSION));
        segment.salt = Salt::new(header.store_id, number);
        segment.data_len = AtomicUsize::new(data_len(&file, segment.len()));
        Ok(segment)
    }

    /// Segment `number` at `path`, to be opened on first use
    /// ([`ensure_open`](Segment::ensure_open)) and checked then against
    /// segment 0's header `first`. No I/O: the open that makes it has seen
    /// the file's name in the directory, and nothing more.
    pub(crate) fn deferred(path: PathBuf, number: u64, first: &SegmentHeader) -> Segment {
        Segment {
            number,
            path,
            salt: Salt::new(first.store_id, number),
            map: OnceLock::new(),
            expected: Some(*first),
            size: usize::try_from(first.segment_size).unwrap_or(usize::MAX),
            committed: AtomicUsize::new(0),
            data_len: AtomicUsize::new(0),
            format_version: AtomicU32::new(MIN_FORMAT_VERSION),
            verified: OnceLock::new(),
        }
    }

    /// Whether the file is open and its header checked.
    pub(crate) fn is_open(&self) -> bool {
        self.map.get().is_some()
    }

    /// Opens, maps and checks a segment made with
    /// [`deferred`](Segment::deferred), once: the same checks as
    /// [`open`](Segment::open) (its length is the segment size; its header
    /// passes its checksum, names this number and segment 0's store and
    /// size). A missing file, or one that fails a check, is
    /// `Error::Corruption` naming it (a segment the open listed cannot
    /// vanish from a sound store); the next call tries again. A segment
    /// opened at open passes at once.
    pub(crate) fn ensure_open(&self) -> Result<(), Error> {
        if self.is_open() {
            return Ok(());
        }
        let Some(first) = self.expected else {
            return Err(Error::corruption(&self.path, 0, "segment has no map"));
        };
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corruption(
                    &self.path,
                    0,
                    format!(
                        "segment {} is missing (it was there when the store was opened)",
                        self.number
                    ),
                ));
            }
            Err(e) => return Err(Error::io("open segment", &self.path, e)),
        };
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("inspect segment", &self.path, e))?
            .len();
        if file_len < (SEGMENT_HEADER_LEN + FRAME_HEADER_LEN) as u64 {
            return Err(Error::corruption(
                &self.path,
                file_len,
                format!("segment file of {file_len} bytes is too short to hold a header"),
            ));
        }
        let mut untrusted = vec![0u8; SEGMENT_HEADER_LEN];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut untrusted, 0)
            .map_err(|e| Error::io("read segment header", &self.path, e))?;
        let map = MmapOptions::new()
            .map_raw_read_only(&file)
            .map_err(|e| Error::io("map segment", &self.path, e))?;
        check_segment_header(&untrusted, self.number, file_len, Some(&first))
            .map_err(|e| Error::corruption(&self.path, e.offset as u64, e.reason))?;
        self.format_version.store(
            segment_format_version(&untrusted).unwrap_or(MIN_FORMAT_VERSION),
            Ordering::Release,
        );
        self.data_len
            .store(data_len(&file, map.len()), Ordering::Release);
        // Another thread may have opened it meanwhile: either map is of the
        // same file, checked the same way.
        let _ = self.map.set(map);
        Ok(())
    }

    fn map(file: &File, path: PathBuf, number: u64, salt: Salt) -> Result<Segment, Error> {
        let map = MmapOptions::new()
            .map_raw_read_only(file)
            .map_err(|e| Error::io("map segment", &path, e))?;
        let size = map.len();
        Ok(Segment {
            number,
            path,
            salt,
            map: OnceLock::from(map),
            expected: None,
            size,
            committed: AtomicUsize::new(0),
            data_len: AtomicUsize::new(0),
            format_version: AtomicU32::new(FORMAT_VERSION),
            verified: OnceLock::new(),
        })
    }

    /// The format version its header gives.
    pub(crate) fn format_version(&self) -> u32 {
        self.format_version.load(Ordering::Acquire)
    }

    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn salt(&self) -> Salt {
        self.salt
    }

    /// The size of the file, which is the size of the map (the segment
    /// size, for a deferred segment not opened yet).
    pub(crate) fn len(&self) -> usize {
        self.map.get().map_or(self.size, MmapRaw::len)
    }

    /// Bytes from the start of the file past which the file is a hole,
    /// known to read as zeros: the recovery scan reads no further, and the
    /// writer zero-fills from here before it writes past it. Never more
    /// than [`len`](Segment::len).
    pub(crate) fn data_len(&self) -> usize {
        self.data_len.load(Ordering::Acquire).min(self.len())
    }

    /// The committed watermark: bytes below it hold published frames.
    pub(crate) fn committed_len(&self) -> usize {
        self.committed.load(Ordering::Acquire)
    }

    /// Moves the watermark to `len` after the bytes below it were synced.
    pub(crate) fn publish(&self, len: usize) {
        debug_assert!(len <= self.len() && len >= self.committed_len());
        self.committed.store(len.min(self.len()), Ordering::Release);
    }

    /// The bytes below the committed watermark.
    pub(crate) fn committed(&self) -> &[u8] {
        let Some(map) = self.map.get() else {
            return &[];
        };
        let len = self.committed_len().min(map.len());
        // SAFETY: the map is `map.len()` bytes long and lives as long as
        // `self` (a set `OnceLock` is never taken back); no file is shrunk
        // while mapped (invariant 1), so the range is readable. Bytes below
        // the watermark are never written again (invariant 2), so they may
        // be shared as an immutable slice.
        unsafe { std::slice::from_raw_parts(map.as_ptr(), len) }
    }

    /// The whole file.
    ///
    /// # Safety
    ///
    /// No process may write to the file while the returned slice lives: a
    /// `&[u8]` over bytes that change is undefined behaviour. That holds
    /// for any segment while this process holds the directory lock and its
    /// writer does not exist yet, and for a sealed segment, which nothing
    /// writes again (invariant 2). `&mut self` means the segment is not
    /// shared yet. Callers outside recovery use [`copy_out`](Segment::copy_out).
    unsafe fn whole(&mut self) -> &[u8] {
        let Some(map) = self.map.get() else {
            return &[];
        };
        // SAFETY: the map is `map.len()` bytes long and readable in full
        // (invariant 1); the caller promises that nothing writes to the file
        // while the slice lives (this function's `# Safety`).
        unsafe { std::slice::from_raw_parts(map.as_ptr(), map.len()) }
    }

    /// The file up to [`data_len`](Segment::data_len) for the recovery scan
    /// that decides where the watermark goes: borrowed from the map when
    /// `access` says nothing writes to it, copied when a live writer may.
    /// The rest of the file is a hole, zeros by the file system's word, so
    /// the scan's rule "frames, then zeros to the end" reads the same on
    /// the shorter slice, and a small store's scan touches (and copies)
    /// only what was written.
    pub(crate) fn scan_bytes(&mut self, access: Access) -> Cow<'_, [u8]> {
        let len = self.data_len();
        match access {
            Access::Shared => Cow::Owned(self.copy_out(0, len).unwrap_or_default()),
            Access::Exclusive => {
                // SAFETY: `Access::Exclusive` is passed only by a writable
                // open, which holds the directory lock before its writer
                // exists, or for a segment sealed before the scan began (see
                // `Access`): nothing writes to the file while the slice lives.
                let whole = unsafe { self.whole() };
                Cow::Borrowed(whole.get(..len).unwrap_or(whole))
            }
        }
    }

    /// A copy of `len` bytes at `offset`, which may lie past the watermark,
    /// or `None` past the end of the file. For a read-only store following a
    /// writer in another process: the bytes may be changing while they are
    /// copied, so they are copied out through a raw pointer rather than
    /// borrowed, and the copy is checked before anything trusts it.
    /// A copy of `len` bytes at `offset` for a check of a few bytes: for a
    /// segment opened on first use, read with `pread` from the file rather
    /// than through the map (a file that was read in large runs sits in the
    /// page cache in large folios, and touching one byte through the map
    /// maps a whole folio, up to 2 MiB on Linux 6.x, into this process's
    /// resident set); otherwise as [`copy_out`](Segment::copy_out). The
    /// file is opened for the read and closed after, so that a store keeps
    /// no descriptor per segment.
    pub(crate) fn read_at(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        if self.expected.is_none() || !self.is_open() {
            return self.copy_out(offset, len);
        }
        if offset.checked_add(len)? > self.len() {
            return None;
        }
        let file = File::open(&self.path).ok()?;
        let mut copy = vec![0u8; len];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut copy, offset as u64).ok()?;
        Some(copy)
    }

    /// A deferred segment not opened yet has no bytes: `None`.
    pub(crate) fn copy_out(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        copy_from(self.map.get()?, offset, len)
    }

    /// Whether the record of `position` passed its checksum in this map
    /// before ([`set_verified`](Segment::set_verified)): a read may then
    /// decode it without checking its checksum again. Bytes below the
    /// watermark never change while the segment is mapped (invariant 2), so
    /// a record checked once reads the same for as long as this map lives;
    /// a scavenge that replaces the file makes a new `Segment`, with
    /// nothing verified.
    pub(crate) fn is_verified(&self, position: u64) -> bool {
        self.verified.get().is_some_and(|v| v.contains(position))
    }

    /// Records that the record of `position`, at the offset the index gives
    /// for it, passed its checksum and every check of the read that found
    /// it. `first_position` is the segment's first position (by the index),
    /// which the bits count from; a position outside what the segment can
    /// hold is not recorded.
    pub(crate) fn set_verified(&self, position: u64, first_position: u64) {
        self.verified
            .get_or_init(|| Verified::new(first_position, self.len()))
            .insert(position);
    }

    /// The committed bytes as a [`Bytes`] that keeps the segment mapped:
    /// slices of it are the zero-copy payloads handed to readers.
    pub(crate) fn committed_bytes(self: &Arc<Self>) -> Bytes {
        Bytes::from_owner(CommittedBytes {
            len: self.committed_len(),
            segment: Arc::clone(self),
        })
    }
}

/// Asks the CPU to bring the cache line of `bytes[at]` in, without
/// waiting for it; nothing past the end of `bytes`. A read walking records
/// spread over a segment calls it for records a few ahead of the one it
/// decodes, so that their cache misses overlap rather than come one after
/// another.
#[inline]
pub(crate) fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = bytes.get(at) {
        // SAFETY: a prefetch is a hint that neither reads nor writes
        // memory as far as the program can see, and never faults; the
        // address is inside `bytes` anyway (checked above).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                std::ptr::from_ref(byte).cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// Positions per chunk of [`Verified`] bits.
const VERIFIED_CHUNK_POSITIONS: usize = 4096;

/// One chunk of [`Verified`] bits: 512 bytes.
type VerifiedChunk = [AtomicU64; VERIFIED_CHUNK_POSITIONS / 64];

/// Which records of one segment's map passed their checksum: a bit per
/// position from the segment's first position, in chunks of
/// [`VERIFIED_CHUNK_POSITIONS`] made when a record of theirs is first
/// checked. So memory follows what was read, at most a bit per event
/// (128 KiB for a 64 MiB segment of the smallest records), plus 16 bytes
/// per chunk slot made with the first check. Bits are only ever set.
#[derive(Debug)]
struct Verified {
    first_position: u64,
    chunks: Box<[OnceLock<Box<VerifiedChunk>>]>,
}

impl Verified {
    /// Bits for a segment of `len` bytes whose first position is
    /// `first_position`: it holds at most one record per
    /// [`RECORD_HEADER_LEN`] bytes.
    fn new(first_position: u64, len: usize) -> Verified {
        let positions = len / RECORD_HEADER_LEN;
        let chunks = positions.div_ceil(VERIFIED_CHUNK_POSITIONS);
        Verified {
            first_position,
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The chunk, word and bit of `position`, when the segment can hold it.
    fn slot(&self, position: u64) -> Option<(usize, usize, u64)> {
        let i = usize::try_from(position.checked_sub(self.first_position)?).ok()?;
        let chunk = i / VERIFIED_CHUNK_POSITIONS;
        (chunk < self.chunks.len()).then(|| {
            let bit = i % VERIFIED_CHUNK_POSITIONS;
            (chunk, bit / 64, 1u64 << (bit % 64))
        })
    }

    fn contains(&self, position: u64) -> bool {
        let Some((chunk, word, bit)) = self.slot(position) else {
            return false;
        };
        self.chunks[chunk]
            .get()
            .is_some_and(|c| c[word].load(Ordering::Relaxed) & bit != 0)
    }

    fn insert(&self, position: u64) {
        let Some((chunk, word, bit)) = self.slot(position) else {
            return;
        };
        let words =
            self.chunks[chunk].get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        // Readers of a hot record set its bit once, not on every read: no
        // write to a shared cache line when it is set already.
        if words[word].load(Ordering::Relaxed) & bit == 0 {
            words[word].fetch_or(bit, Ordering::Relaxed);
        }
    }
}

/// A copy of `len` bytes at `offset` of `map`, or `None` past its end; see
/// [`Segment::copy_out`].
fn copy_from(map: &MmapRaw, offset: usize, len: usize) -> Option<Vec<u8>> {
    let end = offset.checked_add(len)?;
    if end > map.len() {
        return None;
    }
    let mut copy = vec![0u8; len];
    // SAFETY: `offset..end` lies inside the map (checked above), which stays
    // readable while it lives (invariant 1). No reference to the mapped
    // bytes is created, so bytes another process is writing at this moment
    // reach only the copy, whose checksums are verified before use.
    unsafe {
        std::ptr::copy_nonoverlapping(map.as_ptr().add(offset), copy.as_mut_ptr(), len);
    }
    Some(copy)
}

/// Where the data of `file` (of `len` bytes) ends: the start of the hole
/// that runs to its end, from `lseek`'s `SEEK_DATA` and `SEEK_HOLE`; `len`
/// when the file system cannot say (then the whole file is read, as
/// before sparse segments). A hole reads as zeros by definition, on every
/// file system that reports one.
fn data_len(file: &File, len: usize) -> usize {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut end: i64 = 0;
    let mut from: i64 = 0;
    loop {
        // SAFETY: `lseek` on a descriptor that `file` owns and keeps open
        // for the call; it touches no memory of ours. The file offset it
        // moves is used by nothing else (segments are read through the map
        // and written with positioned writes).
        let data = unsafe { libc::lseek(fd, from, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: no data at or after `from`, so `end` is the end of
            // the last data; anything else: the file system cannot say.
            let nothing_after = std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
            return if nothing_after {
                usize::try_from(end).map_or(len, |e| e.min(len))
            } else {
                len
            };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole <= data {
            return len;
        }
        end = hole;
        from = hole;
    }
}

/// Maps a segment index file read-only, whole.
///
/// Index files are written whole under a temporary name, synced, and only
/// then renamed into place; annals never writes to one in place or
/// shortens it, and replaces one only by renaming a new file over it, which
/// leaves a mapped old file's bytes as they were. (Another process that
/// shortens the file kills this one with SIGBUS, as for a segment.)
pub(crate) fn map_immutable(file: &File) -> std::io::Result<Mapped> {
    if file.metadata()?.len() == 0 {
        // An empty map is an error on some systems; an empty file is just
        // a bad index.
        return Ok(Mapped(Bytes::new()));
    }
    // SAFETY: the file's bytes never change while mapped (see above: index
    // files are immutable once renamed into place, and replaced only by
    // rename), and the map is never written through, so sharing it as an
    // immutable slice is sound.
    let map = unsafe { Mmap::map(file) }?;
    // Lookups read a few scattered parts of an index: no readahead, so that
    // a cold file's pages come into the page cache (and this process's
    // resident set) one at a time, not in large runs. Best effort.
    let _ = map.advise(memmap2::Advice::Random);
    Ok(Mapped(Bytes::from_owner(map)))
}

/// An immutable file's whole read-only map, from [`map_immutable`]: the
/// only bytes whose resident pages [`Mapped::release`] may give back.
#[derive(Clone, Debug)]
pub(crate) struct Mapped(Bytes);

impl Mapped {
    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Gives back the pages of the map that this process has touched, so
    /// that a pass over a whole index file (its checksum) does not stay in
    /// the process's resident memory: the pages stay in the page cache,
    /// and a later read of them maps them again. Best effort: an error
    /// only leaves the pages resident.
    pub(crate) fn release(&self) {
        if self.0.is_empty() {
            return;
        }
        // SAFETY: the bytes are the whole of a shared, read-only file map
        // (`Mmap::map` in `map_immutable`, the only constructor), which
        // starts page-aligned and lives as long as `self.0`. MADV_DONTNEED
        // on a shared file map only drops this process's page-table entries:
        // the next access faults the same bytes back in from the page cache
        // (the file never changes while mapped, see `map_immutable`), so no
        // reader of any slice of it ever sees other bytes.
        let _ = unsafe {
            libc::madvise(
                self.0.as_ptr() as *mut libc::c_void,
                self.0.len(),
                libc::MADV_DONTNEED,
            )
        };
    }
}

/// An owner for [`Bytes`]: a segment's bytes below the watermark as it was
/// when the owner was made.
struct CommittedBytes {
    segment: Arc<Segment>,
    len: usize,
}

impl AsRef<[u8]> for CommittedBytes {
    fn as_ref(&self) -> &[u8] {
        let committed = self.segment.committed();
        committed.get(..self.len).unwrap_or(committed)
    }
}
