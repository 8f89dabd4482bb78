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
//! | stray file | a file or directory that is neither the lock, a segment, a segment being prepared, `lost+found` nor a name starting with `.` (those two are ignored); a segment that is a symlink or not a regular file | the stranger: `NotAStore` naming it, as this is no annals directory; a segment of the wrong kind: `Corruption` naming it; nothing modified either way | `recovery_table::stray_file` |
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

mod listing;
mod scan;

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::format::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, Salt, SegmentHeader, align_up, decode_frame_header,
    first_nonzero, last_nonzero,
};
use crate::index::Index;
use crate::io::FileIo;
use crate::segment::Segment;

pub(crate) use listing::{check_listing, open_segment};
use listing::{list, segment_id};
use scan::{Piece, Scan, scan};

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

    let mut first: Option<SegmentHeader> = None;
    let mut segments: Vec<Segment> = Vec::with_capacity(count);
    for (number, path) in listing.segments {
        segments.push(open_segment(path, number, &mut first)?);
    }
    let header = first.ok_or_else(|| Error::corruption(dir, 0, "no segment header read"))?;
    let paths: Vec<PathBuf> = segments.iter().map(|s| s.path().to_path_buf()).collect();
    let salts: Vec<Salt> = segments.iter().map(Segment::salt).collect();

    let mut index = Index::default();
    let mut ends: Vec<usize> = Vec::with_capacity(count);
    let mut end_of_log: Option<EndOfLog> = None;
    {
        let contents: Vec<Cow<'_, [u8]>> = segments
            .iter_mut()
            .enumerate()
            .map(|(k, seg)| contents(seg, k >= copy_from))
            .collect();
        let bytes: Vec<&[u8]> = contents.iter().map(|c| &**c).collect();
        let mut next_position = 0u64;
        scan(&bytes, &salts, &mut |piece: Piece<'_>| {
            let k = piece.segment;
            let number = segment_id(k as u64, &paths[k])?;
            for frame in &piece.frames {
                // The checksums passed, so these bytes are as written: a
                // mismatch here is not a torn write but a broken log.
                if frame.first_position != next_position {
                    return Err(Error::corruption(
                        &paths[k],
                        (frame.at + 8) as u64,
                        format!(
                            "frame starts at position {} where {next_position} was expected",
                            frame.first_position
                        ),
                    ));
                }
                for r in piece.records.get(frame.records.clone()).unwrap_or_default() {
                    index
                        .push(r.stream, r.event_type, r.version, number, r.offset)
                        .map_err(|reason| {
                            Error::corruption(&paths[k], u64::from(r.offset), reason)
                        })?;
                }
                next_position += frame.records.len() as u64;
            }
            match piece.end {
                None => Ok(true),
                Some(Scan::Clean(end)) if end > SEGMENT_HEADER_LEN => {
                    ends.push(end);
                    Ok(true)
                }
                Some(scan) => {
                    end_of_log = Some(decide(k, scan, &bytes, &salts, &paths)?);
                    Ok(false)
                }
            }
        })?;
    }
    // Every segment scanned clean and full: the last is the active one.
    let (active, torn) = match end_of_log {
        Some(e) => {
            ends.push(e.end);
            (e.active, e.torn)
        }
        None => (count - 1, None),
    };
    ends.resize(count, SEGMENT_HEADER_LEN);

    // Every check has passed: only now is anything modified.
    if writable {
        remove_temps(dir, io, &listing.temps)?;
        if let Some((at, dropped)) = torn {
            zero_tail(io, &paths[active], at, dropped)?;
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

/// Where the log ends, as [`decide`] found it.
struct EndOfLog {
    /// The index of the active segment: the one that ends the log, or the
    /// one before it when that one is an empty segment prepared ahead.
    active: usize,
    /// Where the frames of the segment that ends the log end (after repair,
    /// if its tail is torn).
    end: usize,
    /// A torn tail to zero in the active segment: its offset and length.
    torn: Option<(usize, usize)>,
}

/// Decides what segment `k`, the one that ends the log with `scan`, means:
/// a torn tail, an empty segment, or damage. What follows it must be empty:
/// data there means a failure here is damage, not a torn write.
fn decide(
    k: usize,
    scan: Scan,
    bytes: &[&[u8]],
    salts: &[Salt],
    paths: &[PathBuf],
) -> Result<EndOfLog, Error> {
    let path = &paths[k];
    let (end, bad) = match scan {
        Scan::Clean(end) => (end, None),
        Scan::Failed { at, offset, reason } => (at, Some((offset, reason))),
    };
    for (later, body) in paths.iter().zip(bytes).skip(k + 1) {
        if let Some(i) = body.get(SEGMENT_HEADER_LEN..).and_then(first_nonzero) {
            return Err(match &bad {
                Some((offset, reason)) => Error::corruption(
                    path,
                    *offset as u64,
                    format!(
                        "{reason}, and a later segment ({}) holds data",
                        later.display()
                    ),
                ),
                None => Error::corruption(
                    later,
                    (SEGMENT_HEADER_LEN + i) as u64,
                    format!(
                        "segment holds data but the segment before it ({}) is empty",
                        path.display()
                    ),
                ),
            });
        }
    }
    // The next segment is prepared only after a frame of this one was
    // durable, and a rotation leaves only segments holding frames behind: a
    // segment after one without a valid frame means that frame was
    // acknowledged and is now damaged.
    let no_frames = end == SEGMENT_HEADER_LEN;
    if let (true, Some(later)) = (no_frames, paths.get(k + 1)) {
        return Err(match &bad {
            Some((offset, reason)) => Error::corruption(
                path,
                *offset as u64,
                format!(
                    "{reason}, in the first frame of a segment that another ({}) follows",
                    later.display()
                ),
            ),
            None => Error::corruption(
                later,
                0,
                format!("segment follows an empty segment ({})", path.display()),
            ),
        });
    }
    if let Some(extra) = paths.get(k + 2) {
        return Err(Error::corruption(
            extra,
            0,
            "more than one empty segment after the active one",
        ));
    }
    let torn = match &bad {
        Some((offset, reason)) => {
            let untrusted = bytes.get(k).copied().unwrap_or_default();
            let dropped = torn_tail(untrusted, salts[k], path, end, *offset, reason)?;
            Some((end, dropped))
        }
        None => None,
    };
    // An empty segment after one holding data is the one prepared ahead; the
    // active segment is the one before it, and its end is where it was.
    if no_frames && bad.is_none() && k > 0 {
        return Ok(EndOfLog {
            active: k - 1,
            end,
            torn: None,
        });
    }
    Ok(EndOfLog {
        active: k,
        end,
        torn,
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
fn zero_tail(io: &dyn FileIo, path: &Path, at: usize, bytes: usize) -> Result<(), Error> {
    if bytes == 0 {
        return Ok(());
    }
    tracing::warn!(
        file = %path.display(),
        offset = at,
        bytes_dropped = bytes,
        "truncating the torn tail of the active segment: an unacknowledged write was cut short"
    );
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open segment for repair", path, e))?;
    io.write_at(&file, path, &vec![0u8; bytes], at as u64)
        .map_err(|e| Error::io("zero torn tail", path, e))?;
    io.sync_data(&file, path)
        .map_err(|e| Error::io("sync repaired segment", path, e))
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
