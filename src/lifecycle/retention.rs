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
//! What retention keeps: the active segment always, and (when it runs at a
//! seal) the segment just sealed, whose index file is still being written.
//! What it forgets with the dropped events: their ids, so an exact retry
//! of an append whose events were dropped writes them again.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use crate::error::Error;
use crate::index::Index;
use crate::index::base::encode_base;
use crate::index::persist::{index_file_name, write_base};
use crate::io::FileIo;

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
    index: &RwLock<Index>,
    retention: Retention,
    segment_size: u64,
    below: u32,
) -> Result<Option<Dropped>, Error> {
    if !retention.is_set() {
        return Ok(None);
    }
    let Some(end) = choose(index, retention, segment_size, below)? else {
        return Ok(None);
    };
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
        .write()
        .apply_cut(&cut)
        .map_err(crate::read::internal)?;
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
    index: &RwLock<Index>,
    retention: Retention,
    segment_size: u64,
    below: u32,
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
    for (segment, end_position) in candidates {
        let over_bytes = retention
            .bytes
            .is_some_and(|max| kept.saturating_mul(segment_size) > max);
        let too_old = match retention.age {
            Some(age) if !over_bytes => {
                let newest = newest_recorded_at_us(index, end_position)?;
                newest.is_some_and(|t| now_us.saturating_sub(t) > age.as_micros() as u64)
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

/// When the record just before `end_position` (a sealed segment's last)
/// was recorded, read and checked like any record; `None` if it holds no
/// record a read returns (a gap left by a scavenge), which keeps the
/// segment.
fn newest_recorded_at_us(index: &RwLock<Index>, end_position: u64) -> Result<Option<u64>, Error> {
    let Some(last) = end_position.checked_sub(1) else {
        return Ok(None);
    };
    Ok(crate::read::raw_record(index, last)?.map(|e| e.recorded_at))
}
