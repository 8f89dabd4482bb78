//! `$all` retention: dropping whole oldest sealed segments once the log
//! holds more than [`Options::retain_bytes`](crate::Options::retain_bytes)
//! or their events are older than
//! [`Options::retain_age`](crate::Options::retain_age).
//!
//! A drop is crash-safe in three steps. First the new *base* is written
//! (`index::base`: where the log now starts, and what the dropped segments
//! knew that the rest of the log does not — each stream's next version and
//! first version kept, every lifecycle state), synced and renamed into
//! place: from then on an open starts the log at the new first segment, and
//! removes any segment below it that is still there. Then the in-memory
//! index drops the segments, so that no new read plans a position in them
//! (a reader holding their mappings keeps valid data: the files stay alive
//! until unmapped). Last the files are removed and the directory synced.
//!
//! A failed write or sync of the base, or of the directory after the
//! removals, does not poison the store (as a failed sync of the log does):
//! the base is whole before it is renamed into place, and the segments go
//! only after it is durable, so a failure leaves either the old base with
//! every segment, or the new one with segments below it that the next
//! writable open removes. The drop is tried again at the next seal.
//!
//! What retention keeps: the active segment always, and (when it runs at a
//! seal) the segment just sealed, whose index file is still being written.
//! What it forgets with the dropped events: their ids, so an exact retry
//! of an append whose events were dropped writes them again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::error::Error;
use crate::format::{Frames, SEGMENT_HEADER_LEN};
use crate::index::base::encode_base;
use crate::index::persist::{CATALOG_FILE, index_file_name, write_base, write_catalog};
use crate::index::shared::SharedIndex;
use crate::io::FileIo;
use crate::log::segment::Segment;

/// The retention options of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    /// The most bytes of segment files (sealed and active) to keep.
    pub bytes: Option<u64>,
    /// How old a sealed segment's newest event may be.
    pub age: Option<Duration>,
}

impl Retention {
    /// Whether any limit is set.
    pub(crate) fn is_set(&self) -> bool {
        self.bytes.is_some() || self.age.is_some()
    }
}

/// What a drop did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// The segments dropped: `from..end`.
    pub from: u32,
    pub end: u32,
    /// The position the log starts at now.
    pub first_position: u64,
}

/// Applies `retention` to the sealed segments before segment `below` of
/// the store in `dir`: drops the oldest ones that the limits no longer
/// admit, as the module's documentation says. `Ok(None)` when nothing
/// was dropped. A failure to write the base drops nothing (a warning: the
/// next seal tries again); a failure to remove a dropped file is a
/// warning too (the next writable open removes it, as the base says).
pub(crate) fn apply(
    dir: &Path,
    io: &dyn FileIo,
    index: &SharedIndex,
    retention: Retention,
    segment_size: u64,
    below: u32,
    newest: &Mutex<HashMap<u32, u64>>,
) -> Result<Option<Dropped>, Error> {
    if !retention.is_set() {
        return Ok(None);
    }
    // Segments an open deferred are opened and checked first: a drop
    // reads the tables of the segments it drops, and age reads records.
    index.read().load_all()?;
    let Some(end) = choose(index, retention, segment_size, below, newest)? else {
        return Ok(None);
    };
    // The catalog on disk names the newest persisted sealed index; if the
    // cut drops it, the catalog must go too (or be written again), or
    // every open until the next seal would find it stale.
    let catalog_named = index.read().last_persisted_sealed();
    let (cut, from, paths) = {
        let index = index.read();
        let from = index.first_segment();
        let cut = index.plan_cut(end).map_err(crate::read::internal)?;
        let paths: Vec<_> = (from..end)
            .filter_map(|n| index.segment_arc(n).map(|s| (n, s.path().to_path_buf())))
            .collect();
        (cut, from, paths)
    };
    let _span = tracing::info_span!(
        "annals.retain",
        from,
        end,
        first_position = cut.first_position
    )
    .entered();
    let Some(bytes) = encode_base(&cut.base) else {
        tracing::warn!("the log base does not encode; nothing dropped");
        return Ok(None);
    };
    if let Err(e) = write_base(io, dir, &bytes) {
        tracing::warn!(error = %e, "could not write the log base; nothing dropped, the next seal tries again");
        return Ok(None);
    }
    index
        .update({
            let cut = Arc::new(cut.clone());
            move |index| index.apply_cut(&cut)
        })
        .map_err(crate::read::internal)?;
    newest.lock().retain(|n, _| *n >= end);
    if catalog_named.is_some_and(|n| n < end) {
        let catalog = index.read().sealed_catalog_bytes();
        let path = dir.join(CATALOG_FILE);
        let done = match catalog {
            Some(bytes) => write_catalog(io, dir, &bytes).map(|_| ()),
            None if std::fs::symlink_metadata(&path).is_ok() => io.remove_file(&path),
            None => Ok(()),
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not replace the stream catalog after dropping segments; the next open merges index files");
        }
    }
    let mut removed = true;
    for (number, path) in paths {
        let index_path = dir.join(index_file_name(u64::from(number)));
        for p in [&path, &index_path] {
            if let Err(e) = io.remove_file(p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %p.display(), error = %e, "could not remove a dropped segment's file; the next open does");
                removed = false;
            }
        }
    }
    if let Err(e) = io.sync_dir(dir) {
        tracing::warn!(error = %e, "could not sync the directory after dropping segments");
        removed = false;
    }
    tracing::info!(
        from,
        end,
        first_position = cut.first_position,
        removed,
        "retention dropped the oldest segments"
    );
    Ok(Some(Dropped {
        from,
        end,
        first_position: cut.first_position,
    }))
}

/// The first segment to keep, if the limits drop any of the sealed
/// segments before `below`: the oldest go while the segments in use
/// (sealed and active, at `segment_size` bytes each) pass the byte limit,
/// and while the newest event of the oldest is older than the age limit.
fn choose(
    index: &SharedIndex,
    retention: Retention,
    segment_size: u64,
    below: u32,
    newest: &Mutex<HashMap<u32, u64>>,
) -> Result<Option<u32>, Error> {
    let (candidates, in_use) = {
        let index = index.read();
        let in_use = u64::from(index.active_segment() - index.first_segment()) + 1;
        (index.sealed_before(below), in_use)
    };
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut end = None;
    let mut kept = in_use;
    for segment in candidates {
        let over_bytes = retention
            .bytes
            .is_some_and(|max| kept.saturating_mul(segment_size) > max);
        let too_old = match retention.age {
            Some(age) if !over_bytes => {
                let number = segment.number() as u32;
                let cached = newest.lock().get(&number).copied();
                let t = match cached {
                    Some(t) => t,
                    None => {
                        let t = newest_recorded_at_us(&segment, index)?;
                        newest.lock().insert(number, t);
                        t
                    }
                };
                now_us.saturating_sub(t) > age.as_micros() as u64
            }
            _ => false,
        };
        if !(over_bytes || too_old) {
            break;
        }
        kept -= 1;
        end = Some(segment.number() as u32 + 1);
    }
    Ok(end)
}

/// The newest `recorded_at` of any record of sealed `segment` (whose
/// first position the index gives), every record checked as it is read;
/// 0 when it holds only gap records, which hold nothing. The newest, not
/// the last: imported events keep their origin's times, and a clock may
/// step back. Read once a segment (the caller keeps it): sealed segments
/// never change, and a scavenge only removes records, so a kept value
/// errs towards keeping the segment.
fn newest_recorded_at_us(segment: &Arc<Segment>, index: &SharedIndex) -> Result<u64, Error> {
    let number = segment.number() as u32;
    let first_position = index
        .read()
        .first_position_of(number)
        .ok_or_else(|| crate::read::internal(format!("segment {number} has no table")))?;
    segment.ensure_open()?;
    let bytes = segment.committed_bytes();
    let body = bytes.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
    let mut frames = Frames::new(body, segment.salt())
        .based_at(SEGMENT_HEADER_LEN)
        .expecting(first_position);
    let mut newest = 0u64;
    while let Some(frame) = frames.next_frame() {
        for (_, r) in frame.records.iter() {
            if !r.gap {
                newest = newest.max(r.recorded_at_us);
            }
        }
    }
    if !frames.finish().is_clean() {
        return Err(Error::corruption(
            segment.path(),
            SEGMENT_HEADER_LEN as u64,
            "a sealed segment fails its checks; retention keeps it",
        ));
    }
    Ok(newest)
}
