//! Scavenge: rewriting sealed segments without the events no read can
//! return any more, so that their bytes — data, metadata, event type and
//! stream id — are in no file of the store.
//!
//! The steps, each safe to crash after (see FORMAT.md, "Scavenge"):
//!
//! 1. The active segment is sealed (if it holds events), so that what it
//!    holds is rewritten too, and the writer's index file of it is waited
//!    for.
//! 2. Limits become bounds: a stream whose count or age limit hides a
//!    prefix of it gets a truncation control record at that bound, so that
//!    what the scavenge removes stays removed if the limits are lifted.
//! 3. Each sealed segment holding a removable record is written anew under
//!    `N.seg.tmp` — each frame with the same positions, each removed record
//!    replaced by a *gap record* that carries nothing of it — synced,
//!    renamed over `N.seg`, and the directory synced. A crash before the
//!    rename leaves the old segment (the temporary file goes at the next
//!    open); after it, the new one, whose old index file no longer checks
//!    out and is rebuilt.
//! 4. Its index file is written again from the new segment, and the new
//!    segment and its table take the old ones' place in memory. A reader
//!    that copied the old segment out of the index keeps reading it: its
//!    mapping keeps the old file's inode alive until it lets go.
//! 5. A catalog without the removed streams is written.
//!
//! Appends go on throughout: the writer's lock is taken only to seal the
//! active segment and for each truncation record.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Error;
use crate::format::{
    FORMAT_VERSION, FRAME_HEADER_LEN, FrameHeader, Frames, RECORD_FLAG_GAP, RECORD_HEADER_LEN,
    RecordFields, SEGMENT_HEADER_LEN, Salt, SegmentHeader, encode_frame_header, encode_record,
    encode_segment_header, seal_record, set_gap_lengths, set_record_flags,
};
use crate::index::Table;
use crate::index::base::encode_base;
use crate::index::file::{IndexHeader, encode_index, stream_parts};
use crate::index::persist::write_base;
use crate::index::persist::{write_catalog, write_index};
use crate::index::shared::SharedIndex;
use crate::io::FileIo;
use crate::log::segment::{Segment, file_name, map_immutable};
use crate::log::writer::Writer;

use super::Op;

/// What a [`scavenge`](crate::Store::scavenge) did (or, from
/// [`Store::reclaimable`](crate::Store::reclaimable), would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScavengeReport {
    /// Sealed segments read.
    pub segments_scanned: u64,
    /// Segments written anew without their removed events.
    pub segments_rewritten: u64,
    /// Events removed for good (superseded control records go too, and
    /// are not counted here).
    pub events_removed: u64,
    /// Bytes of log data the rewritten segments no longer hold: the
    /// removed records less the gap records in their place. The files keep
    /// their size, but past their data they are holes, which take no disk.
    pub bytes_reclaimed: u64,
}

/// The gap record of `position` in the segment salted `salt`: a record
/// header with every length zero, flagged as a gap, with a unique id of
/// its own ([`gap_id`]) and version and time zero. No smaller than any
/// event, so a rewritten segment never grows.
fn gap_record(salt: Salt, position: u64) -> [u8; RECORD_HEADER_LEN] {
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN);
    // A stream and type of one byte each, to pass the encoder's checks,
    // then cut back to the header with the lengths zeroed below.
    encode_record(
        &mut out,
        &RecordFields {
            stream: "-",
            event_type: "-",
            metadata: &[],
            data: &[],
            id: gap_id(position),
            recorded_at_us: 0,
        },
    );
    out.truncate(RECORD_HEADER_LEN);
    let mut record = [0u8; RECORD_HEADER_LEN];
    record.copy_from_slice(&out);
    set_gap_lengths(&mut record);
    set_record_flags(&mut record, RECORD_FLAG_GAP);
    seal_record(&mut record, salt, position, 0);
    record
}

/// The id of the gap record at `position`: unique, and not a UUID any
/// generator makes (its version nibble is 0).
pub(crate) fn gap_id(position: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(b"annalgap");
    id[8..].copy_from_slice(&position.to_le_bytes());
    id[6] = 0;
    id
}

/// Runs a scavenge of the store whose index is `index`.
pub(crate) fn run(
    dir: &Path,
    io: &Arc<dyn FileIo>,
    writer: &Writer,
    index: &SharedIndex,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ScavengeReport, Error> {
    let _one_at_a_time = writer.scavenge_lock();
    // Every deferred segment opened and checked before any is rewritten.
    index.read().load_all()?;
    let active = writer.seal_for_scavenge(index)?;
    // Segments that retention drops are not worth rewriting.
    writer.retain_all(index);
    lock_in_limits(writer, index)?;
    let mut report = ScavengeReport::default();
    // The next segment is read and decided on another thread while this
    // one's new bytes are written and synced, so that the disk and the
    // checksums overlap. Segments are independent, and the bounds a plan
    // reads only grow.
    let first = index.read().first_segment();
    let mut planned = if active > first {
        plan_segment(index, first)?
    } else {
        None
    };
    for number in first..active {
        progress(u64::from(number), u64::from(active));
        report.segments_scanned += 1;
        let plan = planned.take();
        let next = number + 1;
        let (swapped, next_plan) = std::thread::scope(|scope| {
            let ahead = (next < active).then(|| scope.spawn(move || plan_segment(index, next)));
            let swapped = match plan {
                Some(plan) => {
                    let removed = plan.removed;
                    let reclaimed = plan.old_end.saturating_sub(plan.bytes.len());
                    swap_in(dir, &**io, index, number, plan).map(|()| Some((removed, reclaimed)))
                }
                None => Ok(None),
            };
            let next_plan = match ahead.map(|h| h.join()) {
                None => Ok(None),
                Some(Ok(planned)) => planned,
                Some(Err(_)) => Err(crate::read::internal(
                    "a scavenge's planning thread panicked".into(),
                )),
            };
            (swapped, next_plan)
        });
        if let Some((removed, reclaimed)) = swapped? {
            report.segments_rewritten += 1;
            report.events_removed += removed;
            report.bytes_reclaimed += reclaimed as u64;
        }
        planned = next_plan?;
    }
    progress(u64::from(active), u64::from(active));
    // The log's base names the streams that lost versions to retention;
    // written again without the streams gone since, so that a deleted
    // stream's id is in no file once its events are scavenged.
    let base = {
        let index = index.read();
        (index.first_segment() > 0).then(|| index.base(index.start_position()))
    };
    if let Some(base) = base {
        let bytes = encode_base(&base)
            .ok_or_else(|| crate::read::internal("the log base does not encode".into()))?;
        write_base(&**io, dir, &bytes).map_err(|e| Error::io("write the log base", dir, e))?;
    }
    let catalog = index.read().sealed_catalog_bytes();
    if let Some(Err(e)) = catalog.map(|c| write_catalog(&**io, dir, &c)) {
        tracing::warn!(error = %e, "could not write the stream catalog after a scavenge; the next open merges index files");
    }
    tracing::info!(
        segments = report.segments_rewritten,
        events = report.events_removed,
        bytes = report.bytes_reclaimed,
        "scavenged"
    );
    Ok(report)
}

/// What a scavenge would remove now, counted without writing anything:
/// every sealed and active record that no read returns.
pub(crate) fn reclaimable(index: &SharedIndex) -> Result<ScavengeReport, Error> {
    index.read().load_all()?;
    let (first, end) = {
        let index = index.read();
        (index.first_segment(), index.end_segment() as u32)
    };
    let mut report = ScavengeReport::default();
    for number in first..end {
        report.segments_scanned += 1;
        let (segment, first_position) = {
            let index = index.read();
            let Some(seg) = index.segment_arc(number).cloned() else {
                break;
            };
            let Some(first) = index.first_position_of(number) else {
                continue;
            };
            (seg, first)
        };
        let bytes = segment.committed_bytes();
        let body = bytes.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
        let mut frames = Frames::new(body, segment.salt())
            .based_at(SEGMENT_HEADER_LEN)
            .expecting(first_position);
        let index = index.read();
        let mut vis = super::Visibility::of(&index);
        let mut cuts: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
        while let Some(frame) = frames.next_frame() {
            for (_, r) in frame.records {
                if r.gap {
                    continue;
                }
                let name = String::from_utf8_lossy(r.stream);
                let (cut, last) = *cuts.entry(r.stream.to_vec()).or_insert_with(|| {
                    let last = index.raw_next_version(&name).saturating_sub(1);
                    (index.scavenge_cut(&name), last)
                });
                // What limits hide goes too (they become a truncation),
                // but for the stream's last event, which a scavenge keeps.
                let hidden = r.version < cut
                    || (!r.control
                        && r.version < last
                        && vis
                            .as_mut()
                            .is_some_and(|v| !v.shows_raw(&name, r.version, r.recorded_at_us)));
                // A scavenge leaves a gap record in its place.
                if hidden {
                    report.events_removed += u64::from(!r.control);
                    report.bytes_reclaimed += (r.padded_len - RECORD_HEADER_LEN) as u64;
                }
            }
        }
    }
    Ok(report)
}

/// A segment written anew, not yet in place.
struct Rewrite {
    bytes: Vec<u8>,
    /// The new segment's index file.
    table: Bytes,
    removed: u64,
    old_end: usize,
}

/// Turns every stream's count and age limits into a truncation bound,
/// with one control record per stream whose bound moves, so that what the
/// scavenge removes by them stays removed whatever the limits become.
fn lock_in_limits(writer: &Writer, index: &SharedIndex) -> Result<(), Error> {
    let limited: Vec<Arc<str>> = {
        let index = index.read();
        if !index.has_lifecycle() {
            return Ok(());
        }
        index
            .stream_names_from(0)
            .filter(|name| {
                !super::is_reserved(name)
                    && index.lifecycle(name).is_some_and(|s| {
                        !s.tombstoned && (s.max_count.is_some() || s.max_age_us.is_some())
                    })
            })
            .cloned()
            .collect()
    };
    for name in limited {
        // The first version a read returns now: past the count limit, and
        // past the expired prefix (read as a read reads it).
        let (next, state) = {
            let index = index.read();
            let Some(state) = index.lifecycle(&name) else {
                continue;
            };
            (index.raw_next_version(&name), state)
        };
        let mut bound = state.first_readable(next);
        if state.max_age_us.is_some() && bound < next {
            match crate::read::pages::stream(index, &name, bound, 1) {
                Ok(first) => bound = first.first().map_or(next, |e| e.version),
                Err(Error::StreamNotFound { .. } | Error::StreamDeleted { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        if bound > state.deleted_before.max(state.truncate_before) {
            match writer.control(index, &name, None, Op::TruncateBefore(bound)) {
                Ok(()) | Err(Error::StreamDeleted { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Reads sealed segment `number` and writes it anew in memory without
/// its removable records; `None` when it has none.
fn plan_segment(index: &SharedIndex, number: u32) -> Result<Option<Rewrite>, Error> {
    let (segment, first_position) = {
        let index = index.read();
        let segment = index
            .segment_arc(number)
            .cloned()
            .ok_or_else(|| crate::read::internal(format!("segment {number} is not open")))?;
        let first = index
            .first_position_of(number)
            .ok_or_else(|| crate::read::internal(format!("segment {number} has no table")))?;
        (segment, first)
    };
    let untrusted = segment.committed_bytes();
    let salt = segment.salt();
    let body = untrusted.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
    let mut frames = Frames::new(body, salt)
        .based_at(SEGMENT_HEADER_LEN)
        .expecting(first_position);
    let corrupt =
        |offset: usize, reason: String| Error::corruption(segment.path(), offset as u64, reason);
    // Decide first, under the index's read lock, record by record: for
    // each record its offset, padded length, whether it goes, and its
    // position; for each frame its first position, first record and
    // record count.
    let mut decisions: Vec<Decision<'_>> = Vec::new();
    let mut frame_bounds: Vec<(u64, usize, usize)> = Vec::new();
    let mut removable = 0u64;
    let mut events_removed = 0u64;
    {
        let index = index.read();
        let mut cuts: HashMap<&[u8], u64> = HashMap::new();
        while let Some(frame) = frames.next_frame() {
            frame_bounds.push((
                frame.header.first_position,
                decisions.len(),
                frame.records.len(),
            ));
            for (i, (at, r)) in frame.records.iter().enumerate() {
                let position = frame.header.first_position + i as u64;
                let remove = if r.gap {
                    true
                } else {
                    let cut = *cuts.entry(r.stream).or_insert_with(|| {
                        std::str::from_utf8(r.stream).map_or(0, |n| index.scavenge_cut(n))
                    });
                    r.version < cut
                };
                if remove && !r.gap {
                    removable += 1;
                    events_removed += u64::from(!r.control);
                }
                decisions.push(Decision {
                    at: *at,
                    padded_len: r.padded_len,
                    remove,
                    position,
                    stream: r.stream,
                    version: r.version,
                    id: r.id,
                });
            }
        }
    }
    let end = frames.finish();
    if !end.is_clean() {
        return Err(corrupt(
            SEGMENT_HEADER_LEN,
            "a sealed segment fails its checks; scavenge refuses to rewrite it".into(),
        ));
    }
    if removable == 0 {
        return Ok(None);
    }
    // Write it anew: the same header (of this format version), each frame
    // with its positions, each removed record a gap record.
    let old_end = decisions
        .last()
        .map_or(SEGMENT_HEADER_LEN, |d| d.at + d.padded_len);
    let store_id = segment_store_id(&untrusted)?;
    let header = SegmentHeader {
        store_id,
        segment_number: segment.number(),
        segment_size: segment.len() as u64,
    };
    let mut out: Vec<u8> = Vec::with_capacity(old_end);
    out.extend_from_slice(&[0u8; SEGMENT_HEADER_LEN]);
    let mut last_frame_at = SEGMENT_HEADER_LEN;
    let mut events = 0u64;
    // The new segment's index, built as its records are laid out, from
    // records whose checksums the walk above checked (and gap records
    // made here): each record's offset and id, each stream's first
    // version and positions, gap records in no stream. Walking the new
    // bytes again to build it cost a quarter of a scavenge's time.
    let mut offsets: Vec<u32> = Vec::with_capacity(decisions.len());
    let mut ids: Vec<([u8; 16], u32)> = Vec::with_capacity(decisions.len());
    let mut order: Vec<&[u8]> = Vec::new();
    let mut streams: HashMap<&[u8], (u64, Vec<u32>)> = HashMap::new();
    for (first_pos, start, count) in &frame_bounds {
        let frame_at = out.len();
        last_frame_at = frame_at;
        out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
        for d in decisions.get(*start..start + count).unwrap_or_default() {
            events += 1;
            let relative = u32::try_from(offsets.len())
                .map_err(|_| corrupt(d.at, "too many records".into()))?;
            offsets.push(
                u32::try_from(out.len()).map_err(|_| corrupt(d.at, "segment past 4 GiB".into()))?,
            );
            if d.remove {
                let record_at = out.len();
                out.extend_from_slice(&gap_record(salt, d.position));
                debug_assert_eq!(out.len() - record_at, RECORD_HEADER_LEN);
                ids.push((gap_id(d.position), relative));
                continue;
            }
            let bytes = untrusted
                .get(d.at..d.at + d.padded_len)
                .ok_or_else(|| corrupt(d.at, "record lies past the segment's data".into()))?;
            out.extend_from_slice(bytes);
            ids.push((d.id, relative));
            let (first, positions) = streams.entry(d.stream).or_insert_with(|| {
                order.push(d.stream);
                (d.version, Vec::new())
            });
            // Kept versions stay dense within the segment: a scavenge
            // removes a prefix of each stream's versions.
            if *first + positions.len() as u64 != d.version {
                return Err(corrupt(
                    d.at,
                    "a stream's kept versions are not dense in the segment".into(),
                ));
            }
            positions.push(relative);
        }
        let frame_len = u32::try_from(out.len() - frame_at)
            .map_err(|_| corrupt(frame_at, "frame past 4 GiB".into()))?;
        let head = out
            .get_mut(frame_at..frame_at + FRAME_HEADER_LEN)
            .unwrap_or_default();
        encode_frame_header(
            head,
            salt,
            &FrameHeader {
                frame_len,
                first_position: *first_pos,
                event_count: *count as u32,
            },
        );
    }
    // The header as the old one, at this build's format version (gap
    // records need version 2).
    const _: () = assert!(FORMAT_VERSION >= 2);
    if let Some(head) = out.get_mut(..SEGMENT_HEADER_LEN) {
        head.copy_from_slice(&encode_segment_header(&header));
    }
    let data_end = u32::try_from(out.len()).map_err(|_| corrupt(0, "segment past 4 GiB".into()))?;
    let index_header = IndexHeader {
        open: false,
        store_id,
        segment_number: segment.number(),
        first_position,
        event_count: u32::try_from(events).map_err(|_| corrupt(0, "too many events".into()))?,
        data_end,
        last_frame_at: last_frame_at as u32,
        stream_count: 0,
        names_len: 0,
    };
    let parts = stream_parts(&order, &streams);
    let table = encode_index(&index_header, &offsets, &parts, &ids)
        .map(Bytes::from)
        .ok_or_else(|| corrupt(0, "the rewritten segment's index does not encode".into()))?;
    Ok(Some(Rewrite {
        bytes: out,
        table,
        removed: events_removed,
        old_end,
    }))
}

/// What the plan decided for one record of a segment being rewritten.
struct Decision<'a> {
    /// Its offset and padded length in the old segment.
    at: usize,
    padded_len: usize,
    /// Whether it goes (a gap record takes its place).
    remove: bool,
    position: u64,
    stream: &'a [u8],
    version: u64,
    id: [u8; 16],
}

/// The store id in a segment's (checked) header.
fn segment_store_id(untrusted: &Bytes) -> Result<u64, Error> {
    crate::format::decode_segment_header(untrusted.get(..SEGMENT_HEADER_LEN).unwrap_or_default())
        .map(|h| h.store_id)
        .map_err(|e| crate::read::internal(format!("segment header: {}", e.reason)))
}

/// Puts a rewritten segment in place: written and synced under its
/// temporary name, renamed over the old file, the directory synced; then
/// its index file, and the new segment and table in memory.
fn swap_in(
    dir: &Path,
    io: &dyn FileIo,
    index: &SharedIndex,
    number: u32,
    plan: Rewrite,
) -> Result<(), Error> {
    let name = file_name(u64::from(number));
    let path = dir.join(&name);
    let temp = dir.join(format!("{name}.tmp"));
    let size = index
        .read()
        .segment_arc(number)
        .map_or(0, |s| s.len() as u64);
    if std::fs::symlink_metadata(&temp).is_ok() {
        io.remove_file(&temp)
            .map_err(|e| Error::io("remove a stale scavenge file", &temp, e))?;
    }
    let file = io
        .create_new(&temp)
        .map_err(|e| Error::io("create scavenged segment", &temp, e))?;
    // Past the data the file is a hole: it reads as zeros, as the end of
    // a segment must, and takes no disk.
    io.set_len(&file, &temp, size)
        .map_err(|e| Error::io("size scavenged segment", &temp, e))?;
    io.write_at(&file, &temp, &plan.bytes, 0)
        .map_err(|e| Error::io("write scavenged segment", &temp, e))?;
    io.sync_data(&file, &temp)
        .map_err(|e| Error::io("sync scavenged segment", &temp, e))?;
    drop(file);
    io.rename_over(&temp, &path)
        .map_err(|e| Error::io("rename scavenged segment into place", &path, e))?;
    // Without this a crash could bring the old file back; that would only
    // undo the scavenge (reads still hide what it removed), but the caller
    // was told the bytes are gone.
    io.sync_dir(dir)
        .map_err(|e| Error::io("sync data directory", dir, e))?;
    let mut first = None;
    let segment = Segment::open(path.clone(), u64::from(number), &mut first)?;
    segment.publish(plan.bytes.len());
    let segment = Arc::new(segment);
    let table_bytes = plan.table;
    // The old index file names the removed streams: it goes, replaced by
    // the new one (a failure leaves the old one, which no longer checks
    // out against the segment and is rebuilt at the next open; so the
    // caller hears of it).
    let index_path = write_index(io, dir, u64::from(number), &table_bytes)
        .map_err(|e| Error::io("write scavenged segment's index", &path, e))?;
    // The table is the file's map, as for every index the writer writes,
    // so that a close or a seal takes it as on disk; its pages are given
    // back once compared.
    let mapped = std::fs::File::open(&index_path)
        .and_then(|f| map_immutable(&f))
        .map_err(|e| Error::io("map scavenged segment's index", &index_path, e))?;
    let same = *mapped.bytes() == table_bytes;
    mapped.release();
    if !same {
        return Err(Error::corruption(
            &index_path,
            0,
            "the index file differs from what was written",
        ));
    }
    let table = Table::from_map(mapped, true)
        .ok_or_else(|| crate::read::internal("scavenged index unreadable".into()))?;
    let replaced = index.update(move |index| {
        index.replace_segment(Arc::clone(&segment)) && index.replace_tables(number, table.clone())
    });
    if !replaced {
        return Err(crate::read::internal(format!(
            "segment {number} changed under a scavenge"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::decode_record_bytes;

    #[test]
    fn gap_ids_are_unique_and_no_generator_makes_them() {
        assert_ne!(gap_id(1), gap_id(2));
        assert_eq!(gap_id(7)[6] >> 4, 0);
    }

    #[test]
    fn a_gap_record_is_a_bare_header_that_decodes_as_a_gap() {
        let salt = Salt::new(1, 2);
        let r = gap_record(salt, 42);
        let view = decode_record_bytes(&r, salt).unwrap();
        assert!(view.gap && !view.control);
        assert_eq!((view.position, view.padded_len), (42, RECORD_HEADER_LEN));
        assert!(view.stream.is_empty() && view.event_type.is_empty());
        assert!(decode_record_bytes(&r, Salt::new(1, 3)).is_err());
    }
}
