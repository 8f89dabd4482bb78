//! The open-time scan: every segment is checked, the index is rebuilt, and
//! the one kind of damage that is expected after a crash — a torn tail of
//! the active segment — is repaired. Everything else is refused.
//!
//! The *active* segment is the last one holding data; segments before it are
//! *sealed* and never change again. At most one empty segment may follow the
//! active one: a segment prepared ahead of need.
//!
//! | case | what the scan sees | decision | test |
//! | --- | --- | --- | --- |
//! | clean end | frames, then a zero length word and zeros to the end of the file | open; appends continue at the end | `recovery_table::clean_end` |
//! | zero tail | no frame at all after the header | open; an empty segment | `recovery_table::zero_tail` |
//! | torn tail | the last frames of the active segment fail a check, no valid frame header follows in the segment, and no later segment holds data | zero the torn bytes (the file never shrinks), sync, `warn!` with file, offset and bytes dropped; open | `recovery_table::torn_tail_at_every_offset` |
//! | bad record, valid data after | a frame fails a check, and a valid frame header follows it in the same segment, or a later segment holds data | `Corruption` at the bad frame; nothing modified | `recovery_table::bad_record_followed_by_valid_data` |
//! | damage in a sealed segment | any frame of a sealed segment fails a check, or non-zero bytes follow its end | `Corruption`; nothing modified | `recovery_table::damage_in_sealed_segment` |
//! | inconsistent frame | a frame whose checksums pass but whose positions or versions do not follow on | `Corruption`; nothing modified | `recovery_table::inconsistent_positions` |
//! | bad or foreign header | a header that fails its checksum, magic or version, names another number, store or size, or a file whose length is not the segment size | `Corruption`; nothing modified | `recovery_table::bad_or_foreign_header` |
//! | gap in segment numbers | a number missing below the highest (segment 0 included) | `Corruption` naming the missing file; nothing modified | `recovery_table::missing_segment` |
//! | stray file | a file or directory that is neither the lock, a segment, nor a segment being prepared; a segment that is a symlink or not a regular file | `Corruption` naming it; nothing modified | `recovery_table::stray_file` |
//! | interrupted preparation | a `NNN.seg.tmp` left by a crash while a segment was being created | remove it, sync the directory, `warn!`; open | `recovery_table::interrupted_preparation` |
//! | extra empty segments | more than one empty segment after the active one, or an empty segment followed by one holding data | `Corruption`; nothing modified | `recovery_table::extra_empty_segments` |
//! | bad first frame, segment after | the first frame of a segment fails a check and another segment follows it (one is prepared only after a frame of this one was durable) | `Corruption`; nothing modified | `regressions::damage_to_the_first_frame_of_a_segment_before_a_prepared_one_is_refused` |
//!
//! A writable open ends by syncing the directory, so that a segment name a
//! crash left unsynced is durable before any append goes into it; a
//! read-only open scans the last two segments from copies, since a live
//! writer may be appending to them.
//!
//! A torn tail is told apart from damage by what follows it. The writer
//! writes sequentially into zeroed space and acknowledges a frame only after
//! it is synced, so an unacknowledged write is always the last thing in the
//! log; a valid frame after a bad one means acknowledged data would be lost
//! by truncating, and that is never done. The one ambiguity left is damage
//! to the very last frame with nothing after it: it looks exactly like a
//! torn write and is treated as one. FORMAT.md says the same.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::format::{
    FRAME_HEADER_LEN, RawRecordView, SEGMENT_HEADER_LEN, Salt, SegmentHeader, align_up,
    decode_frame_bytes, decode_frame_header, decode_segment_header, first_nonzero, last_nonzero,
};
use crate::index::Index;
use crate::io::FileIo;
use crate::options::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, SEGMENT_SIZE_MULTIPLE};
use crate::segment::{self, Segment, TEMP_SUFFIX};

/// The name of the lock file in a data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// What the scan found: the index and where appends continue.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub store_id: u64,
    pub segment_size: u64,
    pub index: Index,
    /// The number of the active segment.
    pub active: u32,
    /// Where the next frame goes in the active segment.
    pub write_offset: usize,
}

/// Scans the store in `dir`. With `writable`, repairs a torn tail and
/// removes interrupted preparations, and creates the first segment of a new
/// store (of `new_segment_size` bytes); without, modifies nothing and stops
/// the log where the tail is torn.
pub(crate) fn recover(
    dir: &Path,
    io: &dyn FileIo,
    writable: bool,
    new_segment_size: u64,
) -> Result<Recovered, Error> {
    let listing = list(dir)?;
    if listing.segments.is_empty() {
        if !writable {
            let e = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no segment files: this is not an annals store",
            );
            return Err(Error::io("open store read-only", dir, e));
        }
        remove_temps(dir, io, &listing.temps)?;
        return create_store(dir, io, new_segment_size);
    }

    let count = listing.segments.len();
    // Segments before the last two are sealed: nothing writes to them. A live
    // writer may be appending to the last two while a read-only open scans
    // them, so those are scanned from copies, never borrowed from the map.
    let copy_from = if writable {
        count
    } else {
        count.saturating_sub(2)
    };

    let mut segments: Vec<Segment> = Vec::with_capacity(count);
    let mut ends: Vec<usize> = Vec::with_capacity(count);
    let mut index = Index::default();
    let mut next_position = 0u64;
    let mut first: Option<SegmentHeader> = None;
    let mut torn: Option<(usize, usize, usize)> = None; // (segment, offset, bytes)
    let mut active = None;

    let mut paths = listing.segments.into_iter().enumerate();
    while let Some((k, (number, path))) = paths.next() {
        let mut seg = open_segment(path, number, &mut first, true)?;
        let number32 = segment_id(number, seg.path())?;
        let (salt, path) = (seg.salt(), seg.path().to_path_buf());
        let bytes = contents(&mut seg, k >= copy_from);
        let (end, bad) = match scan_frames(
            &bytes,
            salt,
            &path,
            number32,
            &mut index,
            &mut next_position,
        )? {
            Scan::Clean(end) => (end, None),
            Scan::Failed { at, offset, reason } => (at, Some((offset, reason))),
        };
        if bad.is_none() && end > SEGMENT_HEADER_LEN {
            drop(bytes);
            segments.push(seg);
            ends.push(end);
            continue;
        }
        // This segment ends the log: it holds no frame, or its tail fails a
        // check. What follows must be empty: data there means the failure
        // here is damage, not a torn write.
        let mut rest = Vec::new();
        for (j, (n, p)) in paths.by_ref() {
            let mut later = open_segment(p, n, &mut first, true)?;
            if let Some(i) = holds_data(&mut later, j >= copy_from) {
                return Err(match &bad {
                    Some((offset, reason)) => Error::corruption(
                        &path,
                        *offset as u64,
                        format!(
                            "{reason}, and a later segment ({}) holds data",
                            later.path().display()
                        ),
                    ),
                    None => Error::corruption(
                        later.path(),
                        (SEGMENT_HEADER_LEN + i) as u64,
                        format!(
                            "segment holds data but the segment before it ({}) is empty",
                            path.display()
                        ),
                    ),
                });
            }
            rest.push(later);
        }
        // The next segment is prepared only after a frame of this one was
        // durable, and a rotation leaves only segments holding frames behind:
        // a segment after one without a valid frame means that frame was
        // acknowledged and is now damaged.
        let no_frames = end == SEGMENT_HEADER_LEN;
        if let (true, Some(later)) = (no_frames, rest.first()) {
            return Err(match &bad {
                Some((offset, reason)) => Error::corruption(
                    &path,
                    *offset as u64,
                    format!(
                        "{reason}, in the first frame of a segment that another ({}) follows",
                        later.path().display()
                    ),
                ),
                None => Error::corruption(
                    later.path(),
                    0,
                    format!("segment follows an empty segment ({})", path.display()),
                ),
            });
        }
        if let Some(extra) = rest.get(1) {
            return Err(Error::corruption(
                extra.path(),
                0,
                "more than one empty segment after the active one",
            ));
        }
        if let Some((offset, reason)) = &bad {
            let dropped = torn_tail(&bytes, salt, &path, end, *offset, reason)?;
            torn = Some((k, end, dropped));
        }
        drop(bytes);
        // An empty segment after one holding data is the one prepared ahead;
        // the active segment is the one before it.
        active = Some(if no_frames && bad.is_none() && k > 0 {
            k - 1
        } else {
            k
        });
        segments.push(seg);
        ends.push(end);
        for later in rest {
            segments.push(later);
            ends.push(SEGMENT_HEADER_LEN);
        }
        break;
    }
    let header = first.ok_or_else(|| Error::corruption(dir, 0, "no segment header read"))?;
    let active = active.unwrap_or(segments.len() - 1);

    // Every check has passed: only now is anything modified.
    if writable {
        remove_temps(dir, io, &listing.temps)?;
        if let Some((k, at, dropped)) = torn {
            zero_tail(io, &segments[k], at, dropped)?;
        }
        // A crash right after a segment was renamed into place, before the
        // directory was synced, leaves a name that is not durable yet; the
        // writer may append into that segment, so make the names durable
        // before anything is acknowledged.
        io.sync_dir(dir)
            .map_err(|e| Error::io("sync data directory", dir, e))?;
    }

    for (seg, end) in segments.into_iter().zip(&ends) {
        seg.publish(*end);
        index.push_segment(Arc::new(seg));
    }
    Ok(Recovered {
        store_id: header.store_id,
        segment_size: header.segment_size,
        index,
        active: segment_id(active as u64, dir)?,
        write_offset: ends[active],
    })
}

/// The bytes of a segment to scan: borrowed from the map when nothing else
/// writes to the file, copied when a live writer may.
fn contents(seg: &mut Segment, copy: bool) -> Cow<'_, [u8]> {
    if copy {
        Cow::Owned(seg.copy_out(0, seg.len()).unwrap_or_default())
    } else {
        Cow::Borrowed(seg.whole())
    }
}

/// Where the first non-zero byte after the header of `seg` is, if any.
fn holds_data(seg: &mut Segment, copy: bool) -> Option<usize> {
    contents(seg, copy)
        .get(SEGMENT_HEADER_LEN..)
        .and_then(first_nonzero)
}

/// Checks that `dir` holds nothing but annals' files, without opening any.
pub(crate) fn check_listing(dir: &Path) -> Result<(), Error> {
    list(dir).map(|_| ())
}

/// The files of a data directory, sorted out.
struct Listing {
    /// Segment numbers and paths, in number order, checked dense from 0.
    segments: Vec<(u64, PathBuf)>,
    /// Segments left half-prepared by a crash.
    temps: Vec<PathBuf>,
}

fn list(dir: &Path) -> Result<Listing, Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list data directory", dir, e))?;
    let mut segments = Vec::new();
    let mut temps = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list data directory", dir, e))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io("inspect", &path, e))?;
        let name = entry.file_name();
        let name = name.to_str().unwrap_or("");
        if name == LOCK_FILE {
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
            return stray(
                "unexpected file in the data directory: only LOCK and segment files belong here",
            );
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

/// The number in a segment file name: twenty digits and `.seg`.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn segment_id(number: u64, path: &Path) -> Result<u32, Error> {
    u32::try_from(number).map_err(|_| Error::corruption(path, 0, "segment number beyond 2^32"))
}

/// Opens and maps a segment and checks its header against its name and
/// against the first segment's.
pub(crate) fn open_segment(
    path: PathBuf,
    number: u64,
    first: &mut Option<SegmentHeader>,
    populate: bool,
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
    let mut seg = Segment::open(path, number, populate)?;
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

/// How the frames of one segment end.
enum Scan {
    /// Valid frames up to this offset, zeros after it.
    Clean(usize),
    /// The frame at `at` fails a check, first at byte `offset`.
    Failed {
        at: usize,
        offset: usize,
        reason: String,
    },
}

/// Checks every frame of a segment's bytes and adds its records to `index`.
fn scan_frames(
    untrusted: &[u8],
    salt: Salt,
    path: &Path,
    number: u32,
    index: &mut Index,
    next_position: &mut u64,
) -> Result<Scan, Error> {
    let mut records: Vec<(usize, RawRecordView<'_>)> = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    loop {
        let rest = untrusted.get(at..).unwrap_or_default();
        if rest.len() < FRAME_HEADER_LEN {
            return Ok(zeros_after(rest, at));
        }
        match decode_frame_bytes(rest, salt, &mut records) {
            Ok(None) => return Ok(zeros_after(rest, at)),
            Ok(Some(header)) => {
                // The checksums passed, so these bytes are as written: a
                // mismatch here is not a torn write but a broken log.
                if header.first_position != *next_position {
                    return Err(Error::corruption(
                        path,
                        (at + 8) as u64,
                        format!(
                            "frame starts at position {} where {next_position} was expected",
                            header.first_position
                        ),
                    ));
                }
                for (offset, record) in &records {
                    let record_at = at + offset;
                    index
                        .push(
                            record.stream,
                            record.event_type,
                            record.version,
                            number,
                            record_at as u32,
                        )
                        .map_err(|reason| Error::corruption(path, record_at as u64, reason))?;
                }
                *next_position += u64::from(header.event_count);
                at += header.frame_len as usize;
            }
            Err(e) => {
                return Ok(Scan::Failed {
                    at,
                    offset: at + e.offset,
                    reason: e.reason,
                });
            }
        }
    }
}

/// The end of the frames at `at`: clean if only zeros follow.
fn zeros_after(rest: &[u8], at: usize) -> Scan {
    match first_nonzero(rest) {
        None => Scan::Clean(at),
        Some(i) => Scan::Failed {
            at,
            offset: at + i,
            reason: "non-zero bytes after the end of the log".to_owned(),
        },
    }
}

/// Decides whether the failure at `at` of the segment ending the log is a
/// torn tail and, if so, how many bytes it spans. A valid frame header
/// anywhere after it in the segment means the failure is damage to
/// acknowledged data (later segments were checked by the caller).
fn torn_tail(
    untrusted: &[u8],
    salt: Salt,
    path: &Path,
    at: usize,
    offset: usize,
    reason: &str,
) -> Result<usize, Error> {
    let mut probe = align_up(at + 1).unwrap_or(usize::MAX);
    while probe.saturating_add(FRAME_HEADER_LEN) <= untrusted.len() {
        let candidate = untrusted.get(probe..).unwrap_or_default();
        if candidate.get(..4).is_some_and(|w| w != [0; 4])
            && matches!(decode_frame_header(candidate, salt), Ok(Some(_)))
        {
            return Err(Error::corruption(
                path,
                offset as u64,
                format!("{reason}, and a valid frame follows at offset {probe}"),
            ));
        }
        probe += crate::format::ALIGN;
    }
    let last_nonzero = last_nonzero(untrusted).unwrap_or(at);
    Ok((last_nonzero + 1).saturating_sub(at))
}

/// Zeroes a torn tail and syncs it. The file keeps its size: it is mapped,
/// and a segment never shrinks.
fn zero_tail(io: &dyn FileIo, seg: &Segment, at: usize, bytes: usize) -> Result<(), Error> {
    if bytes == 0 {
        return Ok(());
    }
    tracing::warn!(
        file = %seg.path().display(),
        offset = at,
        bytes_dropped = bytes,
        "truncating the torn tail of the active segment: an unacknowledged write was cut short"
    );
    let file = fs::OpenOptions::new()
        .write(true)
        .open(seg.path())
        .map_err(|e| Error::io("open segment for repair", seg.path(), e))?;
    io.write_at(&file, seg.path(), &vec![0u8; bytes], at as u64)
        .map_err(|e| Error::io("zero torn tail", seg.path(), e))?;
    io.sync_data(&file, seg.path())
        .map_err(|e| Error::io("sync repaired segment", seg.path(), e))
}

fn remove_temps(dir: &Path, io: &dyn FileIo, temps: &[PathBuf]) -> Result<(), Error> {
    for temp in temps {
        tracing::warn!(file = %temp.display(), "removing a segment whose preparation was interrupted");
        io.remove_file(temp)
            .map_err(|e| Error::io("remove interrupted segment", temp, e))?;
    }
    if !temps.is_empty() {
        io.sync_dir(dir)
            .map_err(|e| Error::io("sync data directory", dir, e))?;
    }
    Ok(())
}

/// Starts a new store: a random store id and an empty segment 0.
fn create_store(dir: &Path, io: &dyn FileIo, segment_size: u64) -> Result<Recovered, Error> {
    let random = uuid::Uuid::now_v7().as_u64_pair();
    let store_id = random.0 ^ random.1.rotate_left(17);
    let header = SegmentHeader {
        store_id,
        segment_number: 0,
        segment_size,
    };
    let (segment, _file) = Segment::create(io, dir, &header)?;
    let mut index = Index::default();
    index.push_segment(segment);
    Ok(Recovered {
        store_id,
        segment_size,
        index,
        active: 0,
        write_offset: SEGMENT_HEADER_LEN,
    })
}
