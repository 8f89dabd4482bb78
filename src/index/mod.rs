//! The index: global positions and stream versions to where their records
//! lie, and the segments those locations point into.
//!
//! This folder owns what maps positions and streams to places in the log:
//! the in-memory index here, and (in [`file`]) the bytes of the persisted
//! index of each sealed segment, and (in [`persist`]) their files. It may
//! import `crate::log::format`, `crate::log::segment` and `crate::log::io`,
//! nothing above them but the lifecycle state's pure parts
//! (`crate::lifecycle`'s keys and [`StreamState`]): the index keeps each
//! stream's state beside its versions, so that appends and reads consult
//! one place.
//!
//! Memory is bounded by streams, not by events. Each sealed segment is
//! indexed by a [`Table`]: the bytes of its index file, mapped (or, until
//! the file is written, held). Only the active segment is indexed event by
//! event in memory: 4 bytes per event for its record offset, 8 per event
//! in its stream's list of positions, and 16 for its id with 16 to 32 more
//! for the table that finds it (see `active_ids`), about 50 in all; a
//! 64 MiB segment of small events holds about 200,000, some 10 MB. What
//! stays per stream is its name, its
//! next version and the first segment holding it (about 100 bytes plus the
//! name, with the hash map's share); a stream read finds its events in
//! sealed segments by probing their tables' hash slots, from that first
//! segment on. A store holds its index twice (see [`shared`]: readers and
//! the writer each use the copy the other is not on), so each of these
//! figures counts twice, names excepted (the copies share them), and the
//! sealed segments' tables once (the copies share them too).
//!
//! A table may be deferred ([`Table::deferred`]): an open with a stream
//! catalog makes the tables of the sealed segments it covers without
//! opening a file, and each loads (and checks its segment) on first use,
//! so that an open costs the same whatever the history.

mod active_ids;
pub(crate) mod base;
pub mod catalog;
pub mod file;
pub(crate) mod id_filter;
pub(crate) mod id_hash;
pub(crate) mod persist;
pub(crate) mod shared;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::error::Error;
use crate::format::{FRAME_FIRST_POSITION_AT, Frame, Frames, SEGMENT_HEADER_LEN};
use crate::lifecycle::{StreamKey, StreamState, key, key_of_control_stream};
use crate::log::segment::{Mapped, Segment};
use active_ids::ActiveIds;
use catalog::{Catalog, CatalogStream};
use file::{IndexHeader, IndexView, PartChecks, StreamPart};
use id_filter::{FilterDone, FilterJob, IdFilter, Tags};
use id_hash::IdKey;

/// One record of a frame, as [`Index::push_frame`] takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    /// The stream id's bytes, checked to be non-empty UTF-8 on the way in.
    pub stream: &'a [u8],
    /// The event type's bytes, checked likewise.
    pub event_type: &'a [u8],
    pub version: u64,
    /// The record's byte offset in its segment file.
    pub offset: u32,
    /// The event's id.
    pub id: [u8; 16],
    /// For a control record, its data (the stream state it sets, applied
    /// when the frame is taken whole); `None` for an event, and wherever
    /// the states are loaded otherwise (recovery: see
    /// [`crate::lifecycle::load`]).
    pub control: Option<&'a [u8]>,
}

/// Why a frame or a table was refused, and where in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub offset: u64,
    pub reason: String,
}

/// The index of a run of one segment's frames (usually the whole of a
/// sealed segment): the bytes of an index file.
///
/// An index file's header is checked when it is loaded; each part of its
/// body (a block of offsets, slots, filter or ids, a stream's entry with
/// its name and positions) is checked the first time a lookup uses it, and
/// remembered, so that a read checks only the bytes it uses. A part that
/// fails its check makes the whole table rebuilt from its segment, in
/// memory, with a warning: the table is derived data.
///
/// The table of a sealed segment that the open deferred (see
/// [`Table::deferred`]) has no bytes until its first use, which opens its
/// segment and its index file and checks them as an open would.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    segment: u32,
    first_position: u64,
    end_position: u64,
    /// The bytes, once loaded (from the start, for a table not deferred).
    body: Arc<OnceLock<Body>>,
    /// Where a deferred table loads its bytes from.
    deferred: Option<Arc<Deferred>>,
}

/// The bytes of a table and what has been checked of them.
#[derive(Debug)]
struct Body {
    bytes: Bytes,
    /// The file's map, when the bytes are those of the file on disk rather
    /// than built in memory and not yet written.
    mapped: Option<Mapped>,
    /// The parts checked so far, for bytes not yet trusted whole; `None`
    /// for bytes this crate built or checked whole.
    checks: Option<PartChecks>,
    /// The table rebuilt from the segment once a part failed its check
    /// (`None` inside if that failed too).
    rebuilt: OnceLock<Option<Bytes>>,
}

impl Body {
    fn new(bytes: Bytes, mapped: Option<Mapped>, body_checked: bool) -> Option<Body> {
        let view = file::decode_index_unchecked(&bytes).ok()?;
        let checks = (!body_checked).then(|| PartChecks::new(&view));
        Some(Body {
            bytes,
            mapped,
            checks,
            rebuilt: OnceLock::new(),
        })
    }
}

/// Where a deferred table finds its segment and its index file.
#[derive(Debug)]
pub(crate) struct Deferred {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) segment: Arc<Segment>,
    pub(crate) store_id: u64,
}

impl Table {
    /// A table over `bytes`, whose header must check out; the parts are
    /// checked on first use unless `body_checked` says they were (bytes
    /// this crate just encoded). `None` if the header does not check out.
    pub(crate) fn new(bytes: Bytes, body_checked: bool) -> Option<Table> {
        Table::with_map(bytes, None, body_checked)
    }

    /// A table over an index file's map; see [`Table::new`].
    pub(crate) fn from_map(mapped: Mapped, body_checked: bool) -> Option<Table> {
        Table::with_map(mapped.bytes().clone(), Some(mapped), body_checked)
    }

    fn with_map(bytes: Bytes, mapped: Option<Mapped>, body_checked: bool) -> Option<Table> {
        let h = *file::decode_index_unchecked(&bytes).ok()?.header();
        let body = Body::new(bytes, mapped, body_checked)?;
        Some(Table {
            segment: u32::try_from(h.segment_number).ok()?,
            first_position: h.first_position,
            end_position: h.first_position + u64::from(h.event_count),
            body: Arc::new(OnceLock::from(body)),
            deferred: None,
        })
    }

    /// The table of the sealed segment `from.segment`, holding positions
    /// `positions` as the stream catalog says, loaded on first use: no
    /// I/O now. The first use opens the segment (its header checked, see
    /// [`Segment::ensure_open`]) and its index file, checked as an open
    /// checks one (see `persist::load_checked`) and required to cover
    /// exactly `positions`; an index file that fails is rebuilt from the
    /// segment's frames, every one checked, with a warning.
    pub(crate) fn deferred(from: Deferred, positions: Range<u64>) -> Option<Table> {
        Some(Table {
            segment: u32::try_from(from.segment.number()).ok()?,
            first_position: positions.start,
            end_position: positions.end,
            body: Arc::new(OnceLock::new()),
            deferred: Some(Arc::new(from)),
        })
    }

    /// The bytes, loaded first if the table was deferred. A segment that
    /// fails its checks, or whose frames are not the positions the table
    /// was deferred with, is `Error::Corruption` naming it; nothing is
    /// remembered, so the next use tries again.
    fn body(&self) -> Result<&Body, Error> {
        if let Some(body) = self.body.get() {
            return Ok(body);
        }
        let Some(d) = &self.deferred else {
            return Err(Error::corruption(
                "<in-memory index>",
                0,
                "a table without bytes",
            ));
        };
        let body = load_deferred(d, self.first_position..self.end_position)?;
        Ok(self.body.get_or_init(|| body))
    }

    /// Loads the table now if it was deferred; see [`Table::body`].
    pub(crate) fn load(&self) -> Result<(), Error> {
        self.body().map(|_| ())
    }

    /// The header's own checksum, which names this table's bytes in a
    /// catalog.
    pub(crate) fn header_crc(&self) -> Option<u32> {
        let crc = self
            .body()
            .ok()?
            .bytes
            .get(file::INDEX_HEADER_LEN - 4..file::INDEX_HEADER_LEN)?;
        Some(u32::from_le_bytes(crc.try_into().ok()?))
    }

    /// The header, which was checked when the table was made.
    pub(crate) fn header(&self) -> Option<IndexHeader> {
        file::view_checked_before(&self.body().ok()?.bytes).map(|v| *v.header())
    }

    /// Whether a part failed its check.
    fn damaged(body: &Body) -> bool {
        body.checks.as_ref().is_some_and(|c| c.damaged().is_some())
    }

    /// The view over the bytes as they are, each part checked on first use.
    fn lazy_view(body: &Body) -> Option<IndexView<'_>> {
        let view = file::view_checked_before(&body.bytes)?;
        Some(match &body.checks {
            Some(checks) => view.checked_by(checks),
            None => view,
        })
    }

    /// The view over the rebuilt bytes, once a part failed: rebuilt from
    /// `segment` on the first call, with a warning.
    fn rebuilt_view<'a>(&self, body: &'a Body, segment: Option<&Segment>) -> Option<IndexView<'a>> {
        let bytes = body.rebuilt.get_or_init(|| {
            let header = file::view_checked_before(&body.bytes).map(|v| *v.header())?;
            let rebuilt = segment.and_then(|s| rebuild(s, &header));
            let reason = body
                .checks
                .as_ref()
                .and_then(|c| c.damaged().map(str::to_owned))
                .unwrap_or_default();
            tracing::warn!(
                segment = self.segment,
                %reason,
                rebuilt = rebuilt.is_some(),
                "segment index damaged; rebuilt in memory from its segment"
            );
            rebuilt
        });
        file::view_checked_before(bytes.as_ref()?)
    }

    /// Runs the lookup `f` on the table's view, each part it reads checked
    /// on first use; if a part fails, on the table rebuilt from `segment`
    /// instead. `f` may run twice. Fails when a deferred table's segment
    /// fails its checks, or when a part fails and so does the segment.
    pub(crate) fn with_view<T>(
        &self,
        segment: Option<&Segment>,
        f: impl Fn(&IndexView<'_>) -> T,
    ) -> Result<T, Error> {
        let body = self.body()?;
        if !Table::damaged(body)
            && let Some(view) = Table::lazy_view(body)
        {
            let out = f(&view);
            if !Table::damaged(body) {
                return Ok(out);
            }
        }
        match self.rebuilt_view(body, segment) {
            Some(view) => Ok(f(&view)),
            None => Err(Error::corruption(
                segment.map_or_else(
                    || std::path::PathBuf::from("<in-memory index>"),
                    |s| s.path().to_path_buf(),
                ),
                0,
                format!(
                    "the index of segment {} is damaged, and the segment fails its checks",
                    self.segment
                ),
            )),
        }
    }

    /// The view over the table with every part checked (the whole file,
    /// its pages given back after); `None` if a part fails. Use
    /// [`view_or_rebuild`](Table::view_or_rebuild) where the segment is at
    /// hand.
    pub(crate) fn view(&self) -> Option<IndexView<'_>> {
        let body = self.body().ok()?;
        if Table::damaged(body) {
            let bytes = body.rebuilt.get()?.as_ref()?;
            return file::view_checked_before(bytes);
        }
        let view = Table::lazy_view(body)?;
        let checked = view.check_all();
        Table::release(body);
        checked.ok().map(|()| view.trusted())
    }

    /// The view over the table with every part checked, rebuilt from
    /// `segment` (with a warning) if a part fails its check.
    pub(crate) fn view_or_rebuild(&self, segment: Option<&Segment>) -> Option<IndexView<'_>> {
        let body = self.body().ok()?;
        if !Table::damaged(body) {
            let view = Table::lazy_view(body)?;
            let checked = view.check_all();
            Table::release(body);
            if checked.is_ok() {
                return Some(view.trusted());
            }
        }
        self.rebuilt_view(body, segment)
    }

    /// Gives back the resident pages of the table's file map, if it is
    /// loaded and has one: after a pass over a whole part.
    pub(crate) fn release_pages(&self) {
        if let Some(body) = self.body.get() {
            Table::release(body);
        }
    }

    /// Gives back the resident pages of the file's map, if it has one.
    fn release(body: &Body) {
        if let Some(m) = &body.mapped {
            m.release();
        }
    }

    /// The bytes (loaded first if the table was deferred).
    pub(crate) fn bytes(&self) -> Option<&Bytes> {
        self.body().ok().map(|b| &b.bytes)
    }

    /// Whether the table's bytes are its index file's: a deferred table
    /// not loaded yet counts, as the catalog vouched for its file.
    pub(crate) fn is_persisted(&self) -> bool {
        match self.body.get() {
            Some(body) => body.mapped.is_some(),
            None => self.deferred.is_some(),
        }
    }

    /// The bytes to write in place of this table's file, when they differ
    /// from it: a table never written (or rebuilt from its segment when it
    /// was loaded), or one whose part failed its check and was rebuilt.
    fn repair_bytes(&self) -> Option<Bytes> {
        let body = self.body.get()?;
        if body.mapped.is_none() {
            return Some(body.bytes.clone());
        }
        match body.rebuilt.get() {
            Some(Some(rebuilt)) => Some(rebuilt.clone()),
            _ => None,
        }
    }

    /// The position after its last event.
    #[cfg(test)]
    pub(crate) fn end_position(&self) -> u64 {
        self.end_position
    }

    /// The position of its first event.
    #[cfg(test)]
    pub(crate) fn first_position(&self) -> u64 {
        self.first_position
    }

    /// The number of the segment it indexes.
    pub(crate) fn segment(&self) -> u32 {
        self.segment
    }
}

/// Loads the bytes of a deferred table covering `positions`: its segment
/// opened and its header checked, then its index file checked as an open
/// checks one, or, if that fails, the index rebuilt from the segment's
/// frames with a warning. The segment's watermark is set where its frames
/// end.
fn load_deferred(d: &Deferred, positions: Range<u64>) -> Result<Body, Error> {
    let segment = &d.segment;
    segment.ensure_open()?;
    let loaded = persist::load_checked(&d.dir, segment, d.store_id, positions.start).and_then(
        |(mapped, h)| {
            let end = h.first_position + u64::from(h.event_count);
            if h.open || end != positions.end {
                return Err(persist::Unusable::Bad(format!(
                    "it covers positions up to {end} where the catalog has {}",
                    positions.end
                )));
            }
            let body = Body::new(mapped.bytes().clone(), Some(mapped), false)
                .ok_or_else(|| persist::Unusable::Bad("index header unreadable".into()))?;
            Ok((body, h.data_end as usize))
        },
    );
    let (body, data_end) = match loaded {
        Ok(loaded) => loaded,
        Err(why) => {
            let reason = match why {
                persist::Unusable::Missing => "it is missing".to_owned(),
                persist::Unusable::Bad(reason) => reason,
            };
            let file = d.dir.join(persist::index_file_name(segment.number()));
            tracing::warn!(
                file = %file.display(),
                %reason,
                "segment index unusable: rebuilding it from its segment"
            );
            let (bytes, data_end) = rebuild_sealed(segment, d.store_id, positions)?;
            let body = Body::new(bytes, None, true)
                .ok_or_else(|| Error::corruption(segment.path(), 0, "rebuilt index unreadable"))?;
            (body, data_end)
        }
    };
    if segment.committed_len() < data_end {
        segment.publish(data_end);
    }
    Ok(body)
}

/// The index of sealed segment `segment`, which must hold exactly
/// `positions`, rebuilt from its frames: every frame checked, zeros after
/// the last, as the open checks a sealed segment it scans. Returns the
/// index's bytes and where the frames end; a segment that fails is
/// `Error::Corruption` naming it and the offset.
fn rebuild_sealed(
    segment: &Segment,
    store_id: u64,
    positions: Range<u64>,
) -> Result<(Bytes, usize), Error> {
    let corrupt =
        |offset: usize, reason: String| Error::corruption(segment.path(), offset as u64, reason);
    let untrusted = segment
        .copy_out(0, segment.data_len())
        .ok_or_else(|| corrupt(0, "segment cannot be read".into()))?;
    let body = untrusted.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
    let mut index = Index::new(store_id);
    index.active.segment = u32::try_from(segment.number())
        .map_err(|_| corrupt(0, "segment number beyond 2^32".into()))?;
    index.active.first_position = positions.start;
    let mut frames = Frames::new(body, segment.salt())
        .based_at(SEGMENT_HEADER_LEN)
        .expecting(positions.start);
    while let Some(frame) = frames.next_frame() {
        index
            .push_segment_frame(&frame)
            .map_err(|r| corrupt(r.offset as usize, r.reason))?;
    }
    let end = frames.finish();
    if let Some((offset, reason)) = end.problem() {
        return Err(corrupt(offset, format!("{reason}, in a sealed segment")));
    }
    if index.len() != positions.end {
        return Err(corrupt(
            end.at(),
            format!(
                "sealed segment holds positions {}..{} where the stream catalog has {}..{}                  (remove the catalog file and reopen to take the log from the segments)",
                positions.start,
                index.len(),
                positions.start,
                positions.end
            ),
        ));
    }
    let bytes = index
        .active_table(false)
        .and_then(|t| t.bytes().cloned())
        .ok_or_else(|| corrupt(0, "sealed segment holds no events".into()))?;
    Ok((bytes, end.at()))
}

/// The index of the frames `header` covers, rebuilt from `segment`: every
/// frame walked and checked, as recovery does.
fn rebuild(segment: &Segment, header: &IndexHeader) -> Option<Bytes> {
    segment.ensure_open().ok()?;
    let untrusted = segment.copy_out(0, header.data_end as usize)?;
    let body = untrusted.get(SEGMENT_HEADER_LEN..)?;
    let mut index = Index::new(header.store_id);
    index.active.segment = u32::try_from(header.segment_number).ok()?;
    index.active.first_position = header.first_position;
    let mut frames = Frames::new(body, segment.salt())
        .based_at(SEGMENT_HEADER_LEN)
        .expecting(header.first_position);
    while let Some(frame) = frames.next_frame() {
        index.push_segment_frame(&frame).ok()?;
    }
    let end = header.first_position + u64::from(header.event_count);
    if !frames.finish().is_clean() || index.len() != end {
        return None;
    }
    index.active_table(header.open)?.bytes().cloned()
}

/// The most ids whose hashes and filter tags [`Index::holds_any_id`]
/// keeps on the stack: a batch of 100 (the common large batch) and then
/// some.
pub(crate) const HASHED_ON_STACK: usize = 128;

/// What [`Stream::first_held`] holds until it is looked up.
const FIRST_HELD_UNKNOWN: u64 = u64::MAX;

/// The tags of the sealed segments the store-wide filter says may hold
/// each id, by its [`IdKey::hash`] in `hashes`, into `out` (as long);
/// every tag without a filter. The filter's words for all the ids are
/// read in one pass, so that their cache misses overlap (see
/// [`IdFilter::tags_of_all`]).
fn filter_tags(global: Option<(&IdFilter, u64)>, hashes: &[u64], out: &mut [Tags]) {
    match global {
        Some((filter, _)) => filter.tags_of_all(hashes, out),
        None => out.fill(Tags::ALL),
    }
}

/// A plan to drop the oldest sealed segments ([`Index::plan_cut`]).
#[derive(Clone, Debug)]
pub(crate) struct Cut {
    /// The log's first segment when planned.
    from: u32,
    /// The first segment kept.
    pub end: u32,
    /// The position the log starts at after the cut.
    pub first_position: u64,
    /// Each stream with dropped versions, and the first version it keeps.
    firsts: Vec<(u32, u64)>,
    /// The base to write before the segments' files are removed.
    pub base: base::Base,
}

/// Where [`Index::find_ids`] found an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdHit {
    /// The position of the event with the id.
    pub position: u64,
    /// The sealed segment whose table gave the position; `None` for the
    /// active segment's in-memory ids.
    pub table: Option<u32>,
}

/// The last version of a stream whose next version is `raw_next`, with
/// the lifecycle state `state`: `None` when it has no events, none since a
/// soft delete, or is tombstoned.
pub(crate) fn visible_last(raw_next: u64, state: Option<StreamState>) -> Option<u64> {
    let last = raw_next.checked_sub(1)?;
    match state {
        Some(s) if s.tombstoned || last < s.deleted_before => None,
        _ => Some(last),
    }
}

/// One stream's entry, looked up once by [`Index::stream_read`].
pub(crate) struct StreamRead<'a> {
    index: &'a Index,
    s: &'a Stream,
}

impl StreamRead<'_> {
    /// The stream's shared name.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.s.name
    }

    /// Its next version as the log holds it ([`Index::raw_next_version`]).
    pub(crate) fn raw_next_version(&self) -> u64 {
        self.s.next_version
    }

    /// The first version the log holds ([`Index::first_version`]).
    pub(crate) fn first_version(&self) -> u64 {
        self.s.first_version.max(self.index.first_held(self.s))
    }

    /// Its positions from version `from_version` on, at most `max_count`
    /// ([`Index::stream_positions`]).
    pub(crate) fn positions(&self, from_version: u64, max_count: usize) -> Result<Vec<u64>, Error> {
        let s = self.s;
        let from = from_version.max(self.first_version()).min(s.next_version);
        let to = from.saturating_add(max_count as u64).min(s.next_version);
        self.index.collect_positions(s, from..to)
    }
}

#[derive(Debug)]
struct Stream {
    name: Arc<str>,
    /// Its next version: how many events it has.
    next_version: u64,
    /// The position of its first event (of its first one still held, or
    /// the log's first position, once retention dropped versions of it).
    first_position: u64,
    /// The first version the log still holds: `$all` retention dropped
    /// the segments holding every version before it.
    first_version: u64,
    /// The version of the stream's first event in the log, once a read
    /// looked it up ([`FIRST_HELD_UNKNOWN`] until then): above 0 for a
    /// stream whose earlier versions never reached this log (a replica of
    /// an origin that had dropped or scavenged them). Only ever too low
    /// when stale, which reads cover: what a scavenge removes later, the
    /// stream's lifecycle state already hides.
    first_held: AtomicU64,
    /// The version of its first event in the active segment (meaningful
    /// when `active` is not empty).
    active_first_version: u64,
    /// The positions of its events in the active segment.
    active: Vec<u64>,
}

impl Clone for Stream {
    fn clone(&self) -> Stream {
        Stream {
            name: Arc::clone(&self.name),
            next_version: self.next_version,
            first_position: self.first_position,
            first_version: self.first_version,
            first_held: AtomicU64::new(self.first_held.load(Ordering::Relaxed)),
            active_first_version: self.active_first_version,
            active: self.active.clone(),
        }
    }
}

/// The active segment, indexed event by event.
#[derive(Clone, Debug, Default)]
struct Active {
    segment: u32,
    first_position: u64,
    /// The record offset of each event, in position order.
    offsets: Vec<u32>,
    /// The streams with events in this segment, in order of first event.
    streams: Vec<u32>,
    /// Where its last frame starts and where its frames end.
    last_frame_at: u32,
    data_end: u32,
    /// The id of each event, in position order, and where each id is
    /// (the first, should an id repeat in a store written before ids were
    /// unique): what the sealed segments' id tables do for them, for the
    /// segment being written.
    ids: ActiveIds,
}

/// Positions, streams and segments of one store. Cloned for the second
/// copy that readers and the writer share (see [`shared`]), at the first
/// change after an open, and at a follower's reload.
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    store_id: u64,
    /// The number of the log's first segment: 0, or later once `$all`
    /// retention dropped the oldest ones (see [`base`]).
    first_segment: u32,
    /// The segments from `first_segment` on: `segments[k]` is segment
    /// `first_segment + k`.
    segments: Vec<Arc<Segment>>,
    /// The tables of the sealed segments, in segment order (a segment
    /// may have several, until its index file replaces them).
    sealed: Vec<Table>,
    /// The first position of each sealed segment, for finding a position.
    sealed_firsts: Vec<u64>,
    active: Active,
    streams: Vec<Stream>,
    stream_ids: HashMap<Arc<str>, u32>,
    /// The stream id of the last push: a batch's records share it, so most
    /// pushes skip the hash lookup.
    last: Option<u32>,
    /// Every stream's lifecycle state (deleted, tombstoned, truncated,
    /// limited), by the key of its id; see [`crate::lifecycle`].
    lifecycle: HashMap<StreamKey, StreamState>,
    /// The filter over the sealed tables' ids (see [`id_filter`]), once
    /// built: it holds the id of every event of the sealed tables that end
    /// at or before `ids_end`.
    ids: Option<Arc<IdFilter>>,
    ids_end: u64,
    /// Bumped whenever the filter is thrown away, so that a job made from
    /// the tables before is not installed.
    ids_epoch: u64,
    /// Whether a job failed (a table and its segment both damaged) since
    /// the last epoch: no more are made until the epoch changes.
    ids_failed: bool,
}

impl Index {
    /// An empty index of the store `store_id`.
    pub(crate) fn new(store_id: u64) -> Index {
        Index {
            store_id,
            ..Index::default()
        }
    }

    /// How many events the store holds: the next global position.
    pub(crate) fn len(&self) -> u64 {
        self.active.first_position + self.active.offsets.len() as u64
    }

    /// An empty index of the store `store_id` whose log starts at segment
    /// `first_segment` and position `first_position` (both 0 unless
    /// retention dropped segments).
    pub(crate) fn with_base(store_id: u64, first_segment: u32, first_position: u64) -> Index {
        Index {
            store_id,
            first_segment,
            active: Active {
                segment: first_segment,
                first_position,
                ..Active::default()
            },
            ..Index::default()
        }
    }

    /// The position of the log's first event: 0, or later once `$all`
    /// retention dropped segments.
    pub(crate) fn start_position(&self) -> u64 {
        self.sealed
            .first()
            .map_or(self.active.first_position, |t| t.first_position)
    }

    /// The segments, in number order, from [`first_segment`](Index::first_segment) on.
    pub(crate) fn segments(&self) -> &[Arc<Segment>] {
        &self.segments
    }

    /// The number of the log's first segment.
    pub(crate) fn first_segment(&self) -> u32 {
        self.first_segment
    }

    /// One past the number of the last segment open.
    pub(crate) fn end_segment(&self) -> u64 {
        u64::from(self.first_segment) + self.segments.len() as u64
    }

    /// Adds the next segment.
    pub(crate) fn push_segment(&mut self, segment: Arc<Segment>) {
        debug_assert_eq!(segment.number(), self.end_segment());
        self.segments.push(segment);
    }

    /// Segment `number`, if it is open.
    fn segment(&self, number: u32) -> Option<&Segment> {
        self.segment_arc(number).map(|s| &**s)
    }

    /// Segment `number`, shared, if it is open.
    pub(crate) fn segment_arc(&self, number: u32) -> Option<&Arc<Segment>> {
        let k = number.checked_sub(self.first_segment)?;
        self.segments.get(k as usize)
    }

    /// Loads every deferred table, opening and checking its segment (see
    /// [`Table::deferred`]): for work over the whole store (statistics,
    /// backup, scavenge). Fails at the first segment that fails its checks.
    pub(crate) fn load_all(&self) -> Result<(), Error> {
        self.sealed.iter().try_for_each(Table::load)
    }

    /// Adds the deferred table of the next sealed segment, which the
    /// stream catalog says holds `table`'s positions, and moves the active
    /// segment past it; see [`Table::deferred`]. The table must start at
    /// [`len`](Index::len) and name the active segment.
    pub(crate) fn push_deferred(&mut self, table: Table) -> Result<(), String> {
        if self.active_segment_has_events()
            || table.segment != self.active.segment
            || table.first_position != self.len()
            || table.end_position <= table.first_position
        {
            return Err(format!(
                "segment {} deferred at positions {}..{} where segment {} at position {} is next",
                table.segment,
                table.first_position,
                table.end_position,
                self.active.segment,
                self.len()
            ));
        }
        let end = table.end_position;
        self.push_table(table);
        self.active = Active {
            segment: self.active.segment + 1,
            first_position: end,
            ..Active::default()
        };
        Ok(())
    }

    /// The tables of the sealed segments, in segment order.
    pub(crate) fn sealed(&self) -> &[Table] {
        &self.sealed
    }

    /// The number of the segment that new frames go to.
    pub(crate) fn active_segment(&self) -> u32 {
        self.active.segment
    }

    /// The last version of `stream`, `None` when it has no events: none
    /// ever, none since a soft delete, or tombstoned.
    pub(crate) fn stream_version(&self, stream: &str) -> Option<u64> {
        visible_last(self.raw_next_version(stream), self.lifecycle(stream))
    }

    /// The entry of `stream`, found once, for a read of it that asks
    /// several things of it; `None` for a stream the index does not know.
    pub(crate) fn stream_read(&self, stream: &str) -> Option<StreamRead<'_>> {
        let id = *self.stream_ids.get(stream)?;
        let s = self.streams.get(id as usize)?;
        Some(StreamRead { index: self, s })
    }

    /// The next version of `stream` as the log holds it: how many versions
    /// it has used, deleted or not (0 for a stream the index does not
    /// know).
    pub(crate) fn raw_next_version(&self, stream: &str) -> u64 {
        self.stream_ids
            .get(stream)
            .and_then(|id| self.streams.get(*id as usize))
            .map_or(0, |s| s.next_version)
    }

    /// Where an append to `stream` stands: the last version an expected
    /// version is checked against (as [`stream_version`](Index::stream_version)),
    /// and the version its next event gets, which goes on after deleted
    /// ones (versions are never reused). A tombstoned stream refuses.
    pub(crate) fn append_point(&self, stream: &str) -> Result<(Option<u64>, u64), Error> {
        let raw = self.raw_next_version(stream);
        match self.lifecycle(stream) {
            Some(s) if s.tombstoned => Err(Error::StreamDeleted {
                stream: crate::error::excerpt(stream),
            }),
            Some(s) => Ok((self.stream_version(stream), raw.max(s.deleted_before))),
            None => Ok((raw.checked_sub(1), raw)),
        }
    }

    /// Below which version a scavenge removes the events of `stream` for
    /// good: the bounds that durable control records set (a soft delete,
    /// a truncation), everything of a tombstoned stream, all but the last
    /// record of a control stream. Never more than a read already hides,
    /// and never less than before: those bounds only grow.
    ///
    /// A truncation never removes the stream's last event, hidden or not:
    /// the log must go on saying how far the stream's versions went, or a
    /// reopen would forget it and hand out a removed version again. (A
    /// soft delete's bound is itself that version; a tombstoned stream
    /// takes no versions any more.)
    pub(crate) fn scavenge_cut(&self, stream: &str) -> u64 {
        let next = self.raw_next_version(stream);
        if key_of_control_stream(stream).is_some() {
            return next.saturating_sub(1);
        }
        match self.lifecycle(stream) {
            Some(s) if s.tombstoned => u64::MAX,
            Some(s) => s
                .deleted_before
                .max(s.truncate_before.min(next.saturating_sub(1))),
            None => 0,
        }
    }

    /// Whether `stream` is gone as a name: tombstoned, or soft-deleted
    /// with no event since. A catalog leaves such a stream out, so that
    /// once a scavenge removed its events its id is in no file.
    fn is_gone(&self, stream: &str) -> bool {
        self.has_lifecycle()
            && self.lifecycle(stream).is_some()
            && self.stream_version(stream).is_none()
    }

    /// The first position of segment `number`: of its first table when it
    /// is sealed, of the active segment's events when it is active.
    pub(crate) fn first_position_of(&self, number: u32) -> Option<u64> {
        if number == self.active.segment && !self.active.offsets.is_empty() {
            return self
                .sealed
                .iter()
                .find(|t| t.segment == number)
                .map_or(Some(self.active.first_position), |t| Some(t.first_position));
        }
        self.sealed
            .iter()
            .find(|t| t.segment == number)
            .map(|t| t.first_position)
    }

    /// Puts `segment` in place of the segment of its number: a scavenge's
    /// rewrite. Readers that copied the old one out keep reading it (its
    /// mapping keeps the old file alive).
    pub(crate) fn replace_segment(&mut self, segment: Arc<Segment>) -> bool {
        let k = u32::try_from(segment.number())
            .ok()
            .and_then(|n| n.checked_sub(self.first_segment));
        match k.and_then(|k| self.segments.get_mut(k as usize)) {
            Some(slot) => {
                *slot = segment;
                true
            }
            None => false,
        }
    }

    /// Whether any stream has a lifecycle state.
    pub(crate) fn has_lifecycle(&self) -> bool {
        !self.lifecycle.is_empty()
    }

    /// The lifecycle state of `stream`, if it has one.
    pub(crate) fn lifecycle(&self, stream: &str) -> Option<StreamState> {
        if self.lifecycle.is_empty() {
            return None;
        }
        self.lifecycle.get(&key(stream)).copied()
    }

    /// The lifecycle state of the stream whose key is `key`, if it has
    /// one: what a replication import checks an imported control record
    /// against, knowing only the control stream's name.
    pub(crate) fn lifecycle_of_key(&self, key: &StreamKey) -> Option<StreamState> {
        self.lifecycle.get(key).copied()
    }

    /// Sets the lifecycle state of the stream whose key is `key`.
    pub(crate) fn set_lifecycle(&mut self, key: StreamKey, state: StreamState) {
        self.lifecycle.insert(key, state);
    }

    /// How many streams there are.
    pub(crate) fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Records the events of the frame spanning `frame` of segment
    /// `segment`, whose first event has position `first_position`, all or
    /// nothing: a frame that does not start at [`len`](Index::len), or one
    /// of whose records [`push`](Index::push) refuses, leaves the index as
    /// it was. A frame of the segment after the active one seals the active
    /// one first (see [`seal`](Index::seal)).
    pub(crate) fn push_frame<'a>(
        &mut self,
        segment: u32,
        frame: Range<usize>,
        first_position: u64,
        entries: impl IntoIterator<Item = Entry<'a>>,
    ) -> Result<(), Refused> {
        let misplaced = |reason: String| Refused {
            offset: (frame.start + FRAME_FIRST_POSITION_AT) as u64,
            reason,
        };
        if first_position != self.len() {
            return Err(misplaced(format!(
                "frame starts at position {first_position} where {} was expected",
                self.len()
            )));
        }
        if segment != self.active.segment {
            if segment != self.active.segment.wrapping_add(1) || self.active.offsets.is_empty() {
                return Err(misplaced(format!(
                    "frame of segment {segment} where segment {} is being written",
                    self.active.segment
                )));
            }
            self.seal();
        }
        let (Ok(at), Ok(end)) = (u32::try_from(frame.start), u32::try_from(frame.end)) else {
            return Err(misplaced("frame lies past 4 GiB".into()));
        };
        let events = self.active.offsets.len();
        let streams = self.streams.len();
        let active_streams = self.active.streams.len();
        // The vectors an event goes into are sized for the rest of the
        // frame when they fill: a batch's events mostly share a stream, and
        // growing a new stream's list by doubling cost more than the push.
        let entries = entries.into_iter();
        let mut room = entries.size_hint().0;
        let mut touched: Vec<u32> = Vec::with_capacity(room);
        self.active.offsets.reserve(room);
        // Control records' states apply once the whole frame is taken, so
        // that a refused frame leaves them as they were.
        let mut states: Vec<(StreamKey, StreamState)> = Vec::new();
        for e in entries {
            let room_here = room;
            room = room.saturating_sub(1);
            if let Some(data) = e.control {
                let state = std::str::from_utf8(e.stream)
                    .ok()
                    .and_then(key_of_control_stream)
                    .zip(StreamState::decode(data));
                match state {
                    Some(s) => states.push(s),
                    None => {
                        self.rollback(&touched, events, streams, active_streams);
                        return Err(Refused {
                            offset: u64::from(e.offset),
                            reason: "a control record that names no control stream or holds no lifecycle state".into(),
                        });
                    }
                }
            }
            // A gap record (the only record with no stream) takes its
            // position and nothing else.
            if e.stream.is_empty() && e.event_type.is_empty() {
                self.push_gap(e.offset, e.id);
                continue;
            }
            match self.push(e.stream, e.event_type, e.version, e.offset, e.id, room_here) {
                Ok(id) => touched.push(id),
                Err(reason) => {
                    self.rollback(&touched, events, streams, active_streams);
                    return Err(Refused {
                        offset: u64::from(e.offset),
                        reason,
                    });
                }
            }
        }
        self.active.last_frame_at = at;
        self.active.data_end = end;
        self.lifecycle.extend(states);
        Ok(())
    }

    /// Records the next event, at position [`len`](Index::len), and returns
    /// its stream's id. The names come as bytes from disk: they are checked
    /// to be non-empty UTF-8. Fails, naming the problem, on bad names or
    /// when `version` is not the stream's next version.
    /// `room` is how many events of the frame are left, this one included:
    /// what the stream's list makes room for when it is full.
    fn push(
        &mut self,
        stream: &[u8],
        event_type: &[u8],
        version: u64,
        offset: u32,
        event_id: [u8; 16],
        room: usize,
    ) -> Result<u32, String> {
        check_name(event_type, "event type")?;
        let known = match self.last {
            Some(id)
                if self
                    .streams
                    .get(id as usize)
                    .is_some_and(|s| s.name.as_bytes() == stream) =>
            {
                Some(id)
            }
            _ => self.stream_ids.get(name(stream, "stream id")?).copied(),
        };
        // A stream's first event in the log may come after version 0: a
        // scavenge removed the versions before it (see FORMAT.md,
        // "Scavenge"). From there on its versions are dense.
        let next_version = known
            .and_then(|id| self.streams.get(id as usize))
            .map_or(version, |s| s.next_version);
        if version != next_version {
            return Err(format!(
                "stream '{}' has version {version} where {next_version} was expected",
                crate::error::excerpt(&String::from_utf8_lossy(stream))
            ));
        }
        let id = match known {
            Some(id) => id,
            None => self.add_stream(name(stream, "stream id")?)?,
        };
        let position = self.len();
        let Some(s) = self.streams.get_mut(id as usize) else {
            return Err("stream table out of step".to_owned());
        };
        if s.active.is_empty() {
            s.active_first_version = version;
            self.active.streams.push(id);
        }
        if known.is_none() {
            s.next_version = version;
            s.first_position = position;
        }
        if s.active.len() == s.active.capacity() {
            s.active.reserve(room);
        }
        s.active.push(position);
        s.next_version += 1;
        self.active.offsets.push(offset);
        self.active.ids.push(event_id);
        self.last = Some(id);
        Ok(id)
    }

    /// Records a gap record at the next position: where a scavenge removed
    /// an event. It belongs to no stream.
    fn push_gap(&mut self, offset: u32, id: [u8; 16]) {
        self.active.offsets.push(offset);
        self.active.ids.push(id);
        self.last = None;
    }

    fn add_stream(&mut self, name: &str) -> Result<u32, String> {
        let id =
            u32::try_from(self.streams.len()).map_err(|_| "more than 2^32 streams".to_owned())?;
        let name: Arc<str> = Arc::from(name);
        self.stream_ids.insert(Arc::clone(&name), id);
        self.streams.push(Stream {
            name,
            next_version: 0,
            first_position: self.len(),
            first_version: 0,
            first_held: AtomicU64::new(FIRST_HELD_UNKNOWN),
            active_first_version: 0,
            active: Vec::new(),
        });
        Ok(id)
    }

    /// Undoes the pushes to the streams `touched` (one id per event), back
    /// to the sizes given, so that a frame refused halfway leaves no part of
    /// itself visible.
    fn rollback(&mut self, touched: &[u32], events: usize, streams: usize, active: usize) {
        for id in touched.iter().rev() {
            if let Some(s) = self.streams.get_mut(*id as usize) {
                s.active.pop();
                s.next_version -= 1;
            }
        }
        self.active.ids.truncate(events);
        self.active.offsets.truncate(events);
        self.active.streams.truncate(active);
        for stream in self.streams.drain(streams..) {
            self.stream_ids.remove(&stream.name);
        }
        self.last = None;
    }

    /// Whether the active segment holds events: in memory, or in a table
    /// loaded from the index a clean close wrote for it.
    pub(crate) fn active_segment_has_events(&self) -> bool {
        !self.active.offsets.is_empty()
            || self
                .sealed
                .last()
                .is_some_and(|t| t.segment == self.active.segment)
    }

    /// The active segment's events held in memory as a table, or `None`
    /// when it holds none there. `open` marks it as covering frames of a
    /// segment that goes on.
    fn active_table(&self, open: bool) -> Option<Table> {
        let a = &self.active;
        if a.offsets.is_empty() {
            return None;
        }
        let relative: Vec<Vec<u32>> = a
            .streams
            .iter()
            .map(|id| {
                self.streams.get(*id as usize).map_or_else(Vec::new, |s| {
                    s.active
                        .iter()
                        .map(|p| (p - a.first_position) as u32)
                        .collect()
                })
            })
            .collect();
        let parts: Vec<StreamPart<'_>> = a
            .streams
            .iter()
            .zip(&relative)
            .filter_map(|(id, positions)| {
                let s = self.streams.get(*id as usize)?;
                Some(StreamPart {
                    name: s.name.as_bytes(),
                    first_version: s.active_first_version,
                    positions,
                })
            })
            .collect();
        let ids: Vec<([u8; 16], u32)> = a.ids.ids().iter().copied().zip(0u32..).collect();
        let header = IndexHeader {
            open,
            store_id: self.store_id,
            segment_number: u64::from(a.segment),
            first_position: a.first_position,
            event_count: 0,
            data_end: a.data_end,
            last_frame_at: a.last_frame_at,
            stream_count: 0,
            names_len: 0,
        };
        // Counts fit: a segment is at most 1 GiB, and every event and
        // stream name in it takes bytes of it.
        let bytes = file::encode_index(&header, &a.offsets, &parts, &ids)?;
        Table::new(Bytes::from(bytes), true)
    }

    /// Seals the active segment: its events held in memory move into a
    /// table built in memory, and the next segment becomes active. Returns
    /// the sealed segment's tables, for the writer to persist as one index
    /// file (more than one when the segment was reopened after a clean
    /// close).
    pub(crate) fn seal(&mut self) -> Vec<Table> {
        let table = self.sealing_table();
        self.seal_with(table)
    }

    /// The table [`seal`](Index::seal) makes of the active segment's
    /// events: built apart from the sealing, so that the two copies of a
    /// shared index take one table built once.
    pub(crate) fn sealing_table(&self) -> Option<Table> {
        self.active_table(false)
    }

    /// [`seal`](Index::seal) with the table [`sealing_table`](Index::sealing_table)
    /// made of this index (or of a copy of it).
    pub(crate) fn seal_with(&mut self, table: Option<Table>) -> Vec<Table> {
        let segment = self.active.segment;
        let next = self.len();
        if let Some(table) = table {
            self.push_table(table);
        }
        for id in std::mem::take(&mut self.active.streams) {
            if let Some(s) = self.streams.get_mut(id as usize) {
                s.active = Vec::new();
            }
        }
        // The next segment will likely hold about as many events as this
        // one: its id table starts with room for them (capped, so that an
        // odd segment cannot make it large for nothing).
        let events = usize::try_from(next - self.active.first_position).unwrap_or(0);
        self.active = Active {
            segment: segment + 1,
            first_position: next,
            ids: ActiveIds::with_capacity(events.min(1 << 22)),
            ..Active::default()
        };
        self.tables_of(segment)
    }

    /// The tables of segment `segment`, in position order.
    /// The sealed segments whose index file should be written again, with
    /// the bytes to write: those whose tables were never written or were
    /// found damaged (or misplacing records) and rebuilt from the segment.
    /// A clean close writes them, so that damage found by reads is
    /// repaired on disk, not rebuilt again at every use.
    pub(crate) fn repaired_segments(&self) -> Vec<(u32, Bytes)> {
        let mut out: Vec<(u32, Bytes)> = Vec::new();
        for t in &self.sealed {
            if t.segment == self.active.segment || out.last().is_some_and(|(s, _)| *s == t.segment)
            {
                continue;
            }
            if t.repair_bytes().is_none() {
                continue;
            }
            let tables = self.tables_of(t.segment);
            let bytes = match tables.as_slice() {
                [one] => one.repair_bytes(),
                _ => persist::sealed_index_bytes(&tables),
            };
            if let Some(bytes) = bytes {
                out.push((t.segment, bytes));
            }
        }
        out
    }

    pub(crate) fn tables_of(&self, segment: u32) -> Vec<Table> {
        self.sealed
            .iter()
            .filter(|t| t.segment == segment)
            .cloned()
            .collect()
    }

    /// The index of the active segment as a clean close writes it: every
    /// event of the segment so far, marked open. `None` when it holds none.
    pub(crate) fn open_segment_index(&self) -> Option<Bytes> {
        let mut parts = self.tables_of(self.active.segment);
        parts.extend(self.active_table(true));
        let segment = self.segment(self.active.segment);
        let views: Vec<IndexView<'_>> = parts
            .iter()
            .filter_map(|t| t.view_or_rebuild(segment))
            .collect();
        if views.is_empty() || views.len() != parts.len() {
            return None;
        }
        file::merge_index(&views, true).map(Bytes::from)
    }

    fn push_table(&mut self, table: Table) {
        self.sealed_firsts.push(table.first_position);
        self.sealed.push(table);
    }

    /// Takes a persisted index of the active segment, which must hold no
    /// events yet, as its table. A sealed segment's index makes the next
    /// segment active; an open one (a clean close's) leaves this segment
    /// active, to go on after the frames it covers. The table must start at
    /// [`len`](Index::len), and each of its streams must go on from its
    /// version so far; otherwise it is refused and the index is left as it
    /// was.
    ///
    /// With `merge_streams` false the table's streams are left out (and its
    /// body unread): the caller takes the streams from a catalog instead,
    /// with [`install_catalog`](Index::install_catalog).
    pub(crate) fn push_loaded(&mut self, table: Table, merge_streams: bool) -> Result<(), String> {
        let h = table.header().ok_or("index header unreadable")?;
        if self.active_segment_has_events() || h.segment_number != u64::from(self.active.segment) {
            return Err(format!(
                "index of segment {} where segment {} is next",
                h.segment_number, self.active.segment
            ));
        }
        if h.first_position != self.len() || h.event_count == 0 {
            return Err(format!(
                "index covers {} events from position {} where position {} is next",
                h.event_count,
                h.first_position,
                self.len()
            ));
        }
        if !merge_streams {
            self.advance_past(table, &h);
            return Ok(());
        }
        // Only the stream entries are read (each checked with its name and
        // positions), not the whole file: after a clean close this is the
        // active segment's index, up to a segment's worth of events.
        let body = table.body().map_err(|e| e.to_string())?;
        if Table::damaged(body) {
            return Err("index part fails its checksum".into());
        }
        let view = Table::lazy_view(body).ok_or("index header unreadable")?;
        // Check every entry before changing anything.
        let mut total = 0u64;
        let mut found: Vec<(&str, u64, u64)> = Vec::with_capacity(h.stream_count as usize);
        for e in view.entries() {
            let bytes = view.name(&e).ok_or("stream name out of range")?;
            let stream = name(bytes, "stream id")?;
            // As in `push`, a stream may first appear after version 0.
            let next = self
                .stream_ids
                .get(stream)
                .and_then(|id| self.streams.get(*id as usize))
                .map_or(e.first_version, |s| s.next_version);
            if e.first_version != next || e.count == 0 {
                return Err(format!(
                    "stream '{}' goes on at version {} where {next} is next",
                    crate::error::excerpt(stream),
                    e.first_version
                ));
            }
            let first = view
                .position(&e, e.first_version)
                .ok_or("stream entry out of range")?;
            total += u64::from(e.count);
            found.push((stream, e.versions().end, first));
        }
        if let Some(reason) = body.checks.as_ref().and_then(PartChecks::damaged) {
            return Err(reason.to_owned());
        }
        // Fewer when the segment holds gap records, which belong to no
        // stream.
        if total > u64::from(h.event_count) {
            return Err(format!(
                "streams hold {total} events where the index covers {}",
                h.event_count
            ));
        }
        for (stream, next_version, first) in found {
            let id = match self.stream_ids.get(stream) {
                Some(id) => *id,
                None => self.add_stream(stream)?,
            };
            if let Some(s) = self.streams.get_mut(id as usize) {
                if s.next_version == 0 {
                    s.first_position = first;
                }
                s.next_version = next_version;
            }
        }
        self.last = None;
        self.advance_past(table.clone(), &h);
        Ok(())
    }

    /// Adds `table`, whose header is `h`, and moves the active segment on
    /// past it.
    fn advance_past(&mut self, table: Table, h: &IndexHeader) {
        let end = h.first_position + u64::from(h.event_count);
        self.push_table(table);
        self.active = if h.open {
            Active {
                segment: self.active.segment,
                first_position: end,
                last_frame_at: h.last_frame_at,
                data_end: h.data_end,
                ..Active::default()
            }
        } else {
            Active {
                segment: self.active.segment + 1,
                first_position: end,
                ..Active::default()
            }
        };
    }

    /// Takes every stream's state from `catalog`, into an index that has
    /// its tables but no streams yet. Refused, leaving no stream, if a name
    /// is not UTF-8 or repeats, or a stream lies outside the log.
    pub(crate) fn install_catalog(&mut self, catalog: &Catalog<'_>) -> Result<(), String> {
        if !self.streams.is_empty() {
            return Err("streams already known".into());
        }
        let end = self.len();
        // Every event belongs to one stream: the streams' lengths add up to
        // the log's, a cheap check that the catalog describes this log.
        // (Up to the log's, once streams can be gone: a catalog leaves out
        // a deleted stream, and a scavenge's gap streams.)
        let events = catalog
            .streams
            .iter()
            .try_fold(0u64, |sum, c| sum.checked_add(c.next_version));
        if events.is_none_or(|n| n > end) {
            return Err(format!(
                "its streams hold {} events where the log holds {end}",
                events.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string())
            ));
        }
        self.streams.reserve(catalog.streams.len());
        self.stream_ids.reserve(catalog.streams.len());
        for c in &catalog.streams {
            let checked = name(c.name, "stream id").and_then(|n| {
                if c.next_version == 0 || c.first_position >= end {
                    return Err(format!(
                        "stream '{}' lies outside the log",
                        crate::error::excerpt(n)
                    ));
                }
                if self.stream_ids.contains_key(n) {
                    return Err(format!(
                        "stream '{}' listed twice",
                        crate::error::excerpt(n)
                    ));
                }
                Ok(n)
            });
            let added = checked.and_then(|n| self.add_stream(n));
            match added {
                Ok(id) => {
                    if let Some(s) = self.streams.get_mut(id as usize) {
                        s.next_version = c.next_version;
                        s.first_position = c.first_position;
                    }
                }
                Err(reason) => {
                    self.streams.clear();
                    self.stream_ids.clear();
                    return Err(reason);
                }
            }
        }
        Ok(())
    }

    /// The catalog of every stream as the log stands, not yet tied to an
    /// index. The writer takes it right after a seal, when the active
    /// segment holds nothing yet, so it is the streams at the end of the
    /// sealed segment; the checksum of that segment's index is set later,
    /// with [`catalog::set_index_crc`], once the index is built.
    pub(crate) fn catalog_bytes(&self) -> Option<Vec<u8>> {
        let catalog = Catalog {
            store_id: self.store_id,
            next_position: self.len(),
            index_crc: 0,
            sealed_firsts: self.sealed_firsts_through(self.active.segment.checked_sub(1)?),
            streams: self
                .streams
                .iter()
                .filter(|s| !self.is_gone(&s.name))
                .map(|s| CatalogStream {
                    name: s.name.as_bytes(),
                    next_version: s.next_version,
                    first_position: s.first_position,
                })
                .collect(),
        };
        catalog::encode_catalog(&catalog)
    }

    /// The catalog of the streams as they stood at the end of the last
    /// sealed segment, tied to that segment's index file, for a clean close
    /// to write: every stream's state now, less what the active segment
    /// added (a stream's next version there is its first version in the
    /// active segment; a stream that began there is left out). Unlike a
    /// catalog of the whole log, it stays right while the active segment
    /// grows, so the writer never has to remove it. `None` when no segment
    /// is sealed, or the last one's index is not (yet) the file on disk.
    pub(crate) fn sealed_catalog_bytes(&self) -> Option<Vec<u8>> {
        let active = self.active.segment;
        let last = self.sealed.iter().rev().find(|t| t.segment != active)?;
        if !last.is_persisted() || self.tables_of(last.segment).len() != 1 {
            return None;
        }
        let h = last.header()?;
        let index_crc = last.header_crc()?;
        // Each stream's first version in the active segment: from the
        // clean close's index it was reopened with, if any, else from the
        // events indexed in memory since.
        let mut firsts: HashMap<String, u64> = HashMap::new();
        let segment = self.segment(active);
        for t in &self.tables_of(active) {
            let view = t.view_or_rebuild(segment)?;
            for e in view.entries() {
                let stream = std::str::from_utf8(view.name(&e)?).ok()?;
                let first = firsts.entry(stream.to_owned()).or_insert(e.first_version);
                *first = (*first).min(e.first_version);
            }
        }
        let streams = self
            .streams
            .iter()
            .filter_map(|s| {
                let in_memory = (!s.active.is_empty()).then_some(s.active_first_version);
                let next_version = match (firsts.get(&*s.name), in_memory) {
                    (Some(a), Some(b)) => (*a).min(b),
                    (Some(a), None) => *a,
                    (None, Some(b)) => b,
                    (None, None) => s.next_version,
                };
                (next_version > 0 && !self.is_gone(&s.name)).then(|| CatalogStream {
                    name: s.name.as_bytes(),
                    next_version,
                    first_position: s.first_position,
                })
            })
            .collect();
        catalog::encode_catalog(&Catalog {
            store_id: self.store_id,
            next_position: h.first_position + u64::from(h.event_count),
            index_crc,
            sealed_firsts: self.sealed_firsts_through(last.segment),
            streams,
        })
    }

    /// The first position of each sealed segment from 0 through `last`,
    /// for a catalog: what lets an open defer those segments.
    fn sealed_firsts_through(&self, last: u32) -> Vec<u64> {
        let mut firsts = Vec::new();
        for t in self.sealed.iter().take_while(|t| t.segment <= last) {
            if firsts.len() == t.segment as usize {
                firsts.push(t.first_position);
            }
        }
        firsts
    }

    /// Replaces the tables of sealed segment `segment` with `table`, which
    /// must cover the same positions (the same events, read back from the
    /// index file just written, or merged into one).
    pub(crate) fn replace_tables(&mut self, segment: u32, table: Table) -> bool {
        let Some(start) = self.sealed.iter().position(|t| t.segment == segment) else {
            return false;
        };
        let end = start
            + self.sealed[start..]
                .iter()
                .take_while(|t| t.segment == segment)
                .count();
        let (first, last) = (&self.sealed[start], &self.sealed[end - 1]);
        if table.first_position != first.first_position || table.end_position != last.end_position {
            return false;
        }
        self.sealed_firsts
            .splice(start..end, [table.first_position]);
        self.sealed.splice(start..end, [table]);
        true
    }

    /// The tables of segment `segment` rebuilt from the segment itself,
    /// after a read found a record that is not what they say; to be put in
    /// place with [`replace_distrusted`](Index::replace_distrusted). The
    /// tables of an index file are checked at open and on first use, but a
    /// file can pass every check and still send a read to the wrong record
    /// (written by a faulty build, or forged with good checksums): derived
    /// data, so the segment decides. `None` when the tables were built from
    /// the segment in the first place or the segment itself fails its
    /// checks (then the record really is damaged).
    pub(crate) fn distrusted(&self, segment: u32) -> Option<Table> {
        let start = self.sealed.iter().position(|t| t.segment == segment)?;
        let run: Vec<&Table> = self.sealed[start..]
            .iter()
            .take_while(|t| t.segment == segment)
            .collect();
        if !run.iter().any(|t| t.is_persisted()) {
            return None;
        }
        let first = run.first().and_then(|t| t.header())?;
        let last = run.last().and_then(|t| t.header())?;
        let event_count =
            u32::try_from(last.first_position + u64::from(last.event_count) - first.first_position)
                .ok()?;
        let header = IndexHeader {
            event_count,
            data_end: last.data_end,
            last_frame_at: last.last_frame_at,
            open: last.open,
            ..first
        };
        let table = self
            .segment(segment)
            .and_then(|s| rebuild(s, &header))
            .and_then(|bytes| Table::new(bytes, true))?;
        tracing::warn!(
            segment,
            "a read found a record its segment index does not describe; index rebuilt in memory from the segment"
        );
        Some(table)
    }

    /// Puts `table`, from [`distrusted`](Index::distrusted), in place of
    /// the tables of `segment`; true if it replaced them.
    pub(crate) fn replace_distrusted(&mut self, segment: u32, table: Table) -> bool {
        let replaced = self.replace_tables(segment, table);
        if replaced {
            // The store-wide filter took its ids from the distrusted
            // table: build it again from the rebuilt one.
            self.drop_id_filter();
        }
        replaced
    }

    /// Throws the store-wide id filter away; the segments' own filters
    /// answer until a job builds it again.
    pub(crate) fn drop_id_filter(&mut self) {
        self.ids = None;
        self.ids_end = 0;
        self.ids_epoch += 1;
        self.ids_failed = false;
    }

    /// The store-wide id filter, if there is one that covers every sealed
    /// table: for tests.
    #[cfg(test)]
    pub(crate) fn id_filter_covers_all(&self) -> Option<&IdFilter> {
        let end = self.sealed.last().map_or(0, |t| t.end_position);
        self.ids.as_deref().filter(|_| self.ids_end >= end)
    }

    /// What a background thread should do to make the store-wide id
    /// filter cover every sealed table: `None` when it does, or when no
    /// table is sealed. The tables it names are clones (their bytes
    /// shared), so the job runs without the index's lock.
    pub(crate) fn id_filter_job(&self) -> Option<FilterJob> {
        let end = self.sealed.last()?.end_position;
        if self.ids_failed || (self.ids.is_some() && self.ids_end >= end) {
            return None;
        }
        let events: u64 = self
            .sealed
            .iter()
            .map(|t| t.end_position - t.first_position)
            .sum();
        let (filter, from) = match &self.ids {
            Some(f) if events <= f.capacity() => (Some(Arc::clone(f)), self.ids_end),
            _ => (None, 0),
        };
        let tables = self
            .sealed
            .iter()
            .filter(|t| t.end_position > from)
            .map(|t| (t.clone(), self.segment_arc(t.segment).cloned()))
            .collect();
        Some(FilterJob {
            filter,
            capacity: id_filter::capacity_for(events),
            tables,
            end,
            epoch: self.ids_epoch,
        })
    }

    /// Takes the filter a job built or extended, unless the filter was
    /// thrown away since the job was made. Returns the filter it replaces,
    /// for the caller to free after the lock.
    pub(crate) fn install_id_filter(&mut self, done: FilterDone) -> Option<Arc<IdFilter>> {
        if done.epoch != self.ids_epoch {
            return None;
        }
        match done.filter {
            Some(filter) if self.ids.is_none() || done.end >= self.ids_end => {
                tracing::debug!(
                    covers_positions = done.end,
                    bytes = filter.bytes(),
                    "store-wide id filter ready"
                );
                self.ids_end = done.end;
                self.ids.replace(filter)
            }
            Some(_) => None,
            None => {
                self.ids_failed = true;
                None
            }
        }
    }

    /// The store-wide id filter and the position it covers up to, if any.
    fn id_filter(&self) -> Option<(&IdFilter, u64)> {
        self.ids.as_deref().map(|f| (f, self.ids_end))
    }

    /// Where the events with ids `ids` are, one answer per id: its
    /// position and, when a sealed segment's table gave it, that segment
    /// (whose table a caller distrusts if the record there is not the
    /// event). The earliest position when an id repeats (only a store
    /// written before ids were unique holds one twice). A fresh id costs
    /// one lookup in the store-wide filter (see [`id_filter`]), then one
    /// filter test per sealed segment that filter does not cover (all of
    /// them until it is built), in memory or a mapped page, and one hash
    /// lookup for the active segment; an id the store-wide filter lets
    /// through is looked for only in the covered segments whose tag it
    /// names (one in 16). Fails, naming the segment, when a sealed table
    /// fails its check and its segment cannot rebuild it: then no answer
    /// could be trusted.
    pub(crate) fn find_ids(&self, ids: &[[u8; 16]]) -> Result<Vec<Option<IdHit>>, Error> {
        let mut found: Vec<Option<IdHit>> = vec![None; ids.len()];
        let global = self.id_filter();
        let key = IdKey::get();
        let hashes: Vec<u64> = ids.iter().map(|id| key.hash(id)).collect();
        let mut tags: Vec<Tags> = Vec::new();
        let mut disk: Vec<(u64, u64)> = Vec::new();
        if !self.sealed.is_empty() {
            tags.resize(ids.len(), Tags::ALL);
            filter_tags(global, &hashes, &mut tags);
            disk = ids.iter().map(file::id_hashes).collect();
        }
        let named = tags.iter().fold(Tags::default(), |all, t| all.union(*t));
        for table in &self.sealed {
            let covered = global.is_some_and(|(_, end)| table.end_position <= end);
            if covered && !named.has(table.segment) {
                continue;
            }
            let hits: Vec<Option<u64>> = self.sealed_lookup(table, |view| {
                ids.iter()
                    .zip(&disk)
                    .zip(&tags)
                    .zip(&found)
                    .map(|(((id, h), tags), slot)| {
                        if slot.is_none() && (!covered || tags.has(table.segment)) {
                            view.id_position_hashed(id, *h)
                        } else {
                            None
                        }
                    })
                    .collect()
            })?;
            for (hit, slot) in hits.into_iter().zip(found.iter_mut()) {
                if let Some(position) = hit {
                    *slot = Some(IdHit {
                        position,
                        table: Some(table.segment),
                    });
                }
            }
        }
        if !self.active.ids.is_empty() {
            for ((id, h), slot) in ids.iter().zip(&hashes).zip(found.iter_mut()) {
                if slot.is_none() {
                    *slot = self.active.ids.index_of_hashed(id, *h).map(|i| IdHit {
                        position: self.active.first_position + i as u64,
                        table: None,
                    });
                }
            }
        }
        Ok(found)
    }

    /// Whether any id of `ids` is stored: the writer's test of a batch
    /// before it looks further, which for fresh ids (the common case) ends
    /// here. See [`holds_any_id_hashed`](Index::holds_any_id_hashed).
    pub(crate) fn holds_any_id(&self, ids: &[[u8; 16]]) -> Result<bool, Error> {
        let key = IdKey::get();
        let mut on_stack = [0u64; HASHED_ON_STACK];
        let mut on_heap: Vec<u64>;
        let hashes: &mut [u64] = match on_stack.get_mut(..ids.len()) {
            Some(h) => h,
            None => {
                on_heap = vec![0; ids.len()];
                &mut on_heap
            }
        };
        for (h, id) in hashes.iter_mut().zip(ids) {
            *h = key.hash(id);
        }
        self.holds_any_id_hashed(ids, hashes)
    }

    /// [`holds_any_id`](Index::holds_any_id) with each id's
    /// [`IdKey::hash`] at hand in `hashes` (the writer's check computes
    /// them once for its repeat check and this). Each id is looked up in
    /// the store-wide filter (see [`id_filter`]), which names the tags of
    /// the segments that may hold it; a sealed segment it covers is
    /// looked at only for the ids that name its tag, the others (sealed
    /// since it was last extended, or all of them before it is built) for
    /// every id: their own filter, a hit confirmed in their id table. Then
    /// the active segment's ids. Nothing is allocated for a batch of up
    /// to [`HASHED_ON_STACK`] ids while the filter covers every sealed
    /// segment; a segment it does not cover takes each id's on-disk
    /// hashes, made once for all such segments. Fails as
    /// [`find_ids`](Index::find_ids) does.
    pub(crate) fn holds_any_id_hashed(
        &self,
        ids: &[[u8; 16]],
        hashes: &[u64],
    ) -> Result<bool, Error> {
        debug_assert_eq!(ids.len(), hashes.len());
        if !self.sealed.is_empty() {
            let global = self.id_filter();
            let mut on_stack = [Tags::ALL; HASHED_ON_STACK];
            let mut on_heap: Vec<Tags>;
            let tags: &mut [Tags] = match on_stack.get_mut(..ids.len()) {
                Some(t) => t,
                None => {
                    on_heap = vec![Tags::ALL; ids.len()];
                    &mut on_heap
                }
            };
            filter_tags(global, hashes, tags);
            let tags = &*tags;
            let named = tags.iter().fold(Tags::default(), |all, t| all.union(*t));
            let mut disk: Vec<(u64, u64)> = Vec::new();
            for table in &self.sealed {
                let covered = global.is_some_and(|(_, end)| table.end_position <= end);
                if covered && !named.has(table.segment) {
                    continue;
                }
                let stored = if covered {
                    self.sealed_lookup(table, |view| {
                        ids.iter().zip(tags).any(|(id, tags)| {
                            tags.has(table.segment)
                                && view.id_position_hashed(id, file::id_hashes(id)).is_some()
                        })
                    })?
                } else {
                    if disk.is_empty() {
                        disk = ids.iter().map(file::id_hashes).collect();
                    }
                    self.sealed_lookup(table, |view| {
                        ids.iter()
                            .zip(&disk)
                            .any(|(id, h)| view.id_position_hashed(id, *h).is_some())
                    })?
                };
                if stored {
                    return Ok(true);
                }
            }
        }
        Ok(ids
            .iter()
            .zip(hashes)
            .any(|(id, h)| self.active.ids.index_of_hashed(id, *h).is_some()))
    }

    /// Brings the active segment's id slots for `ids` into cache, all
    /// at once, ahead of their insertion by [`push_frame`](Index::push_frame).
    pub(crate) fn touch_active_ids(&self, ids: &[[u8; 16]]) {
        self.active.ids.touch(ids);
    }

    /// The lookup `f` on a sealed segment's table, each part it uses
    /// checked, on the table rebuilt from the segment if a part fails;
    /// fails, naming the segment, when neither can be trusted.
    fn sealed_lookup<T>(&self, table: &Table, f: impl Fn(&IndexView<'_>) -> T) -> Result<T, Error> {
        table.with_view(self.segment(table.segment), f)
    }

    /// The segment and record offset of the event at `position`.
    /// `Ok(None)` when no table covers it; an error when the table of a
    /// deferred segment cannot be loaded (its segment fails its checks).
    #[cfg(test)]
    pub(crate) fn location(&self, position: u64) -> Result<Option<(u32, u32)>, Error> {
        if let Some(i) = position.checked_sub(self.active.first_position) {
            let offset = usize::try_from(i)
                .ok()
                .and_then(|i| self.active.offsets.get(i));
            return Ok(offset.map(|o| (self.active.segment, *o)));
        }
        let Some(k) = self
            .sealed_firsts
            .partition_point(|first| *first <= position)
            .checked_sub(1)
        else {
            return Ok(None);
        };
        let Some(table) = self.sealed.get(k) else {
            return Ok(None);
        };
        let offset = self.sealed_lookup(table, |view| view.offset(position))?;
        Ok(offset.map(|o| (table.segment, o)))
    }

    /// The locations of `positions`, appended to `out` in their order as
    /// `(position, segment, offset)`: [`location`](Index::location) of
    /// each, with one view of a sealed table for each run of positions in
    /// it rather than one per position. A position no table covers is an
    /// error: the caller took it from this index.
    pub(crate) fn locations(
        &self,
        positions: impl Iterator<Item = u64>,
        out: &mut Vec<(u64, u32, u32)>,
    ) -> Result<(), Error> {
        let missing = |position: u64| internal(format!("position {position} is not in the index"));
        let mut positions = positions.peekable();
        while let Some(position) = positions.next() {
            if let Some(i) = position.checked_sub(self.active.first_position) {
                let offset = usize::try_from(i)
                    .ok()
                    .and_then(|i| self.active.offsets.get(i))
                    .ok_or_else(|| missing(position))?;
                out.push((position, self.active.segment, *offset));
                continue;
            }
            let k = self
                .sealed_firsts
                .partition_point(|first| *first <= position)
                .checked_sub(1)
                .ok_or_else(|| missing(position))?;
            let (Some(table), Some(&first)) = (self.sealed.get(k), self.sealed_firsts.get(k))
            else {
                return Err(missing(position));
            };
            let end = self
                .sealed_firsts
                .get(k + 1)
                .copied()
                .unwrap_or(self.active.first_position);
            let start = out.len();
            out.push((position, table.segment, 0));
            while let Some(p) = positions.next_if(|p| (first..end).contains(p)) {
                out.push((p, table.segment, 0));
            }
            let run = out.get(start..).unwrap_or_default();
            let offsets = self.sealed_lookup(table, |view| {
                run.iter()
                    .map(|&(p, _, _)| view.offset(p))
                    .collect::<Vec<_>>()
            })?;
            for (slot, offset) in out.iter_mut().skip(start).zip(offsets) {
                slot.2 = offset.ok_or_else(|| missing(slot.0))?;
            }
        }
        Ok(())
    }

    /// The positions of `stream` from version `from_version` on, at most
    /// `max_count` of them; `None` when the stream has no events. A table
    /// that disagrees with the stream's versions is an error, named.
    pub(crate) fn stream_positions(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Option<Result<Vec<u64>, Error>> {
        Some(self.stream_read(stream)?.positions(from_version, max_count))
    }

    fn collect_positions(&self, s: &Stream, versions: Range<u64>) -> Result<Vec<u64>, Error> {
        let mut out = Vec::with_capacity((versions.end - versions.start) as usize);
        let mut v = versions.start;
        let sealed_end = if s.active.is_empty() {
            s.next_version
        } else {
            s.active_first_version
        };
        if v < sealed_end.min(versions.end) {
            // Tables before the one holding the stream's first event cannot
            // hold it; each later one is probed by its hash slots.
            let start = self
                .sealed_firsts
                .partition_point(|first| *first <= s.first_position)
                .saturating_sub(1);
            for table in self.sealed.iter().skip(start) {
                // The stream's positions in this table from version `v`,
                // its entry, name and positions checked on first use.
                let found = self
                    .sealed_lookup(table, |view| {
                        let mut run = Vec::new();
                        let Some(entry) = view.stream(s.name.as_bytes()) else {
                            return Ok(run);
                        };
                        let mut at = v;
                        while at < versions.end && entry.versions().contains(&at) {
                            run.push(
                                view.position(&entry, at)
                                    .ok_or("stream entry out of range")?,
                            );
                            at += 1;
                        }
                        Ok::<_, &str>(run)
                    })?
                    .map_err(|e| internal(e.to_owned()))?;
                v += found.len() as u64;
                out.extend(found);
                if v >= versions.end || v >= sealed_end {
                    break;
                }
            }
        }
        if v < versions.end {
            let skip = usize::try_from(v.saturating_sub(s.active_first_version)).unwrap_or(0);
            let need = (versions.end - v) as usize;
            out.extend(s.active.iter().skip(skip).take(need));
        }
        if out.len() as u64 != versions.end - versions.start {
            return Err(internal(format!(
                "stream '{}' has {} events where the index finds {} of versions {versions:?}",
                crate::error::excerpt(&s.name),
                s.next_version,
                out.len()
            )));
        }
        Ok(out)
    }

    /// The first version of `stream` the log still holds (0 unless `$all`
    /// retention dropped some).
    pub(crate) fn first_version(&self, stream: &str) -> u64 {
        self.stream_ids
            .get(stream)
            .and_then(|id| self.streams.get(*id as usize))
            .map_or(0, |s| s.first_version.max(self.first_held(s)))
    }

    /// The version of `s`'s first event in the log: looked up once (one
    /// probe of the table holding its first position) and kept.
    fn first_held(&self, s: &Stream) -> u64 {
        let known = s.first_held.load(Ordering::Relaxed);
        if known != FIRST_HELD_UNKNOWN {
            return known;
        }
        match self.probe_first_held(s) {
            Some(v) => {
                s.first_held.store(v, Ordering::Relaxed);
                v
            }
            // A table unreadable, its segment too: the read that follows
            // names the damage.
            None => 0,
        }
    }

    fn probe_first_held(&self, s: &Stream) -> Option<u64> {
        if s.next_version == 0 {
            return Some(0);
        }
        if !s.active.is_empty() && s.first_position >= self.active.first_position {
            return Some(s.active_first_version);
        }
        let start = self
            .sealed_firsts
            .partition_point(|first| *first <= s.first_position)
            .saturating_sub(1);
        for table in self.sealed.iter().skip(start) {
            // The stream's entry alone, checked on first use, as a read
            // checks it.
            let first = self
                .sealed_lookup(table, |view| {
                    view.stream(s.name.as_bytes()).map(|e| e.versions().start)
                })
                .ok()?;
            if first.is_some() {
                return first;
            }
        }
        (!s.active.is_empty()).then_some(s.active_first_version)
    }

    /// The newest sealed segment whose index is its file on disk: the one
    /// the stream catalog on disk names, if there is a catalog.
    pub(crate) fn last_persisted_sealed(&self) -> Option<u32> {
        self.sealed
            .iter()
            .rev()
            .find(|t| t.is_persisted() && t.segment != self.active.segment)
            .map(|t| t.segment)
    }

    /// The sealed segments before segment `end` (never the active one),
    /// oldest first: what retention may drop.
    pub(crate) fn sealed_before(&self, end: u32) -> Vec<Arc<Segment>> {
        let end = end.min(self.active.segment);
        self.segments
            .iter()
            .filter(|s| s.number() < u64::from(end))
            .cloned()
            .collect()
    }

    /// Plans dropping the segments before segment `end`, which must all be
    /// sealed, reading but changing nothing: what each stream with
    /// versions in them keeps, and the base that says so, to be written
    /// before [`apply_cut`](Index::apply_cut) and the files' removal. An
    /// error names why they cannot be dropped (a table unreadable, its
    /// segment too).
    pub(crate) fn plan_cut(&self, end: u32) -> Result<Cut, String> {
        if end <= self.first_segment || end > self.active.segment {
            return Err(format!(
                "segments {}..{end} are not sealed segments of the log",
                self.first_segment
            ));
        }
        let cut = self.sealed.partition_point(|t| t.segment < end);
        let first_position = self
            .sealed
            .get(cut)
            .map_or(self.active.first_position, |t| t.first_position);
        let mut firsts: HashMap<u32, u64> = HashMap::new();
        for table in self.sealed.iter().take(cut) {
            let view = table
                .view_or_rebuild(self.segment(table.segment))
                .ok_or("segment index damaged, and its segment too")?;
            for e in view.entries() {
                let bytes = view.name(&e).ok_or("stream name out of range")?;
                let stream = std::str::from_utf8(bytes).map_err(|_| "stream name is not UTF-8")?;
                if let Some(id) = self.stream_ids.get(stream) {
                    let v = firsts.entry(*id).or_default();
                    *v = (*v).max(e.versions().end);
                }
            }
        }
        let mut base = self.base(first_position);
        base.first_segment = end;
        let mut firsts: Vec<(u32, u64)> = firsts.into_iter().collect();
        firsts.sort_unstable();
        for (id, first_version) in &firsts {
            let Some(s) = self.streams.get(*id as usize) else {
                continue;
            };
            if s.first_version >= *first_version || self.is_gone(&s.name) {
                continue;
            }
            match base.streams.iter_mut().find(|b| *b.name == *s.name) {
                Some(b) => b.first_version = *first_version,
                None => base.streams.push(base::BaseStream {
                    name: s.name.to_string(),
                    next_version: s.next_version,
                    first_version: *first_version,
                }),
            }
        }
        Ok(Cut {
            from: self.first_segment,
            end,
            first_position,
            firsts,
            base,
        })
    }

    /// Drops the segments `cut` planned: the log now starts at its end.
    /// Refused, changing nothing, if the log's start moved since the plan.
    pub(crate) fn apply_cut(&mut self, cut: &Cut) -> Result<(), String> {
        if cut.from != self.first_segment || cut.end > self.active.segment {
            return Err("the log changed since the cut was planned".into());
        }
        for (id, first_version) in &cut.firsts {
            if let Some(s) = self.streams.get_mut(*id as usize) {
                s.first_version = s.first_version.max(*first_version).min(s.next_version);
                s.first_position = s.first_position.max(cut.first_position);
            }
        }
        let k = self.sealed.partition_point(|t| t.segment < cut.end);
        self.sealed.drain(..k);
        self.sealed_firsts.drain(..k);
        let gone = (cut.end - self.first_segment) as usize;
        self.segments.drain(..gone.min(self.segments.len()));
        self.first_segment = cut.end;
        self.last = None;
        // The filter holds ids of dropped events: thrown away, it is built
        // again from the tables left.
        self.drop_id_filter();
        Ok(())
    }

    /// The log's base as it stands, the log starting at `first_position`:
    /// every stream that lost versions to retention (but streams gone as
    /// names), and every lifecycle state.
    pub(crate) fn base(&self, first_position: u64) -> base::Base {
        base::Base {
            store_id: self.store_id,
            first_segment: self.first_segment,
            first_position,
            streams: self
                .streams
                .iter()
                .filter(|s| s.first_version > 0 && !self.is_gone(&s.name))
                .map(|s| base::BaseStream {
                    name: s.name.to_string(),
                    next_version: s.next_version,
                    first_version: s.first_version,
                })
                .collect(),
            states: self.lifecycle.iter().map(|(k, v)| (*k, *v)).collect(),
        }
    }

    /// Takes in the base of a log that retention cut, once the log left
    /// is indexed: each stream it names goes on from at least its next
    /// version and holds versions from its first version on, and every
    /// lifecycle state is set (the control records that set them may have
    /// been dropped; [`crate::lifecycle::load`] then takes the ones still
    /// in the log).
    pub(crate) fn apply_base(&mut self, base: &base::Base) -> Result<(), String> {
        // Each version took a position, so no stream has more versions
        // than the log has positions: a base that says otherwise (forged,
        // though its checksums pass) is refused before anything changes,
        // and so is a deletion bound past them (a delete sets it to the
        // stream's next version; a truncation may name any version).
        let end = self.len();
        if let Some(b) = base.streams.iter().find(|b| b.next_version > end) {
            return Err(format!(
                "stream '{}' has {} versions where the log holds {end} positions",
                crate::error::excerpt(&b.name),
                b.next_version
            ));
        }
        if base.states.iter().any(|(_, s)| s.deleted_before > end) {
            return Err(format!(
                "a stream's deletion bound lies past the log's {end} positions"
            ));
        }
        for b in &base.streams {
            let id = match self.stream_ids.get(b.name.as_str()) {
                Some(id) => *id,
                None => {
                    let id = self.add_stream(&b.name)?;
                    if let Some(s) = self.streams.get_mut(id as usize) {
                        s.first_position = base.first_position;
                    }
                    id
                }
            };
            if let Some(s) = self.streams.get_mut(id as usize) {
                s.next_version = s.next_version.max(b.next_version);
                s.first_version = b.first_version.min(s.next_version);
                s.first_position = s.first_position.max(base.first_position);
            }
        }
        for (key, state) in &base.states {
            self.lifecycle.insert(*key, *state);
        }
        self.last = None;
        Ok(())
    }

    /// Takes `frame`, a checked frame of the segment this index (of that
    /// one segment alone, being rebuilt) is for. A stream that began in an
    /// earlier segment goes on here from the version it had reached: the
    /// segment alone says which.
    fn push_segment_frame(&mut self, frame: &Frame<'_, '_>) -> Result<(), Refused> {
        for (at, r) in frame.records.iter().filter(|(_, r)| !r.gap) {
            let refused = |reason: String| Refused {
                offset: *at as u64,
                reason,
            };
            let stream = name(r.stream, "stream id").map_err(refused)?;
            if !self.stream_ids.contains_key(stream) {
                let id = self.add_stream(stream).map_err(refused)?;
                if let Some(s) = self.streams.get_mut(id as usize) {
                    s.next_version = r.version;
                }
            }
        }
        let entries = frame.records.iter().map(|(at, r)| Entry {
            stream: r.stream,
            event_type: r.event_type,
            version: r.version,
            offset: *at as u32,
            id: r.id,
            control: None,
        });
        self.push_frame(
            self.active.segment,
            frame.at..frame.end(),
            frame.header.first_position,
            entries,
        )
    }

    /// The names of the streams from the `start`th on, in the order they
    /// were first appended to (which never changes: streams are only
    /// added).
    pub(crate) fn stream_names_from(&self, start: usize) -> impl Iterator<Item = &Arc<str>> {
        self.streams
            .get(start..)
            .unwrap_or_default()
            .iter()
            .map(|s| &s.name)
    }

    /// The segments holding positions from `from` to the end, each with
    /// the range of positions it holds, in order.
    pub(crate) fn segment_spans_from(&self, from: u64) -> Vec<(u32, Range<u64>)> {
        let mut spans: Vec<(u32, Range<u64>)> = Vec::new();
        let mut add = |segment: u32, range: Range<u64>| {
            if range.end <= from || range.is_empty() {
                return;
            }
            match spans.last_mut() {
                Some((s, r)) if *s == segment && r.end == range.start => r.end = range.end,
                _ => spans.push((segment, range)),
            }
        };
        let k = self
            .sealed_firsts
            .partition_point(|first| *first <= from)
            .saturating_sub(1);
        for t in self.sealed.iter().skip(k) {
            add(t.segment, t.first_position..t.end_position);
        }
        add(self.active.segment, self.active.first_position..self.len());
        spans
    }

    /// Streams with their event counts, for statistics.
    pub(crate) fn stream_lengths(&self) -> impl Iterator<Item = (&Arc<str>, u64)> {
        self.streams.iter().map(|s| (&s.name, s.next_version))
    }

    /// Bytes of memory the active segment's per-event index takes.
    pub(crate) fn active_bytes(&self) -> usize {
        self.active.offsets.capacity() * 4
            + self.active.ids.heap_bytes()
            + self
                .active
                .streams
                .iter()
                .filter_map(|id| self.streams.get(*id as usize))
                .map(|s| s.active.capacity() * 8)
                .sum::<usize>()
    }
}

/// An index that contradicts itself: a bug, or derived data that does
/// not describe the log, reported rather than panicked on.
fn internal(reason: String) -> Error {
    Error::corruption("<in-memory index>", 0, reason)
}

/// `bytes` as a name: non-empty UTF-8.
fn name<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, String> {
    if bytes.is_empty() {
        return Err(format!("{what} is empty"));
    }
    std::str::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
}

/// Whether `bytes` is a name, as [`name`] decides, where no `&str` is
/// needed (an event's type). An ASCII name, the common case, is UTF-8 as
/// it stands and is found so a word at a time: `from_utf8` cost each
/// event pushed about 95 instructions, a third of its push.
fn check_name(bytes: &[u8], what: &str) -> Result<(), String> {
    if !bytes.is_empty() && bytes.is_ascii() {
        return Ok(());
    }
    name(bytes, what).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        stream: &'static [u8],
        event_type: &'static [u8],
        version: u64,
        offset: u32,
    ) -> Entry<'static> {
        Entry {
            stream,
            event_type,
            version,
            offset,
            id: uid(offset),
            control: None,
        }
    }

    /// An id made from a record offset, distinct per record in these tests.
    fn uid(offset: u32) -> [u8; 16] {
        let mut id = [7u8; 16];
        id[..4].copy_from_slice(&offset.to_le_bytes());
        id
    }

    #[test]
    fn versions_must_be_dense_per_stream() {
        let mut index = Index::new(1);
        index.push(b"a", b"T", 0, 64, uid(64), 1).unwrap();
        index.push(b"b", b"T", 0, 128, uid(128), 1).unwrap();
        index.push(b"a", b"U", 1, 192, uid(192), 1).unwrap();
        assert!(index.push(b"a", b"T", 5, 256, uid(256), 1).is_err());
        assert!(index.push(b"\xff", b"T", 0, 256, uid(256), 1).is_err());
        // A bad type refuses the push whole: no orphan stream "c".
        assert!(index.push(b"c", b"", 0, 256, uid(256), 1).is_err());
        assert!(index.push(b"c", b"\xff", 0, 256, uid(256), 1).is_err());
        assert_eq!(index.stream_count(), 2);
        assert_eq!(index.len(), 3);
        assert_eq!(index.stream_version("a"), Some(1));
        assert_eq!(index.stream_version("c"), None);
        assert_eq!(
            index.stream_positions("a", 0, 10).map(Result::ok),
            Some(Some(vec![0, 2]))
        );
        assert_eq!(
            index.stream_positions("a", 1, 10).map(Result::ok),
            Some(Some(vec![2]))
        );
        assert_eq!(
            index.stream_positions("a", u64::MAX, 10).map(Result::ok),
            Some(Some(vec![]))
        );
        assert_eq!(index.location(2).ok(), Some(Some((0, 192))));
        assert_eq!(index.location(3).ok(), Some(None));

        // A frame refused at its last record leaves none of itself behind.
        let refused = index.push_frame(
            0,
            248..448,
            3,
            [
                entry(b"a", b"T", 2, 256),
                entry(b"new", b"NewType", 0, 320),
                entry(b"a", b"T", 9, 384),
            ],
        );
        assert_eq!(refused.unwrap_err().offset, 384);
        let misplaced = index.push_frame(0, 248..448, 4, [entry(b"a", b"T", 2, 256)]);
        assert_eq!(
            misplaced.unwrap_err().offset,
            (248 + FRAME_FIRST_POSITION_AT) as u64
        );
        assert_eq!(index.len(), 3);
        assert_eq!(index.stream_version("a"), Some(1));
        assert_eq!(index.stream_version("new"), None);
        assert_eq!(index.stream_count(), 2);
        index.push(b"new", b"T", 0, 256, uid(256), 1).unwrap();
        assert_eq!(index.stream_version("new"), Some(0));
    }

    #[test]
    fn a_sealed_segment_reads_as_it_did_and_its_table_rebuilds_an_index() {
        let mut index = Index::new(9);
        index
            .push_frame(
                0,
                64..400,
                0,
                [entry(b"a", b"T", 0, 96), entry(b"b", b"T", 0, 160)],
            )
            .unwrap();
        index
            .push_frame(0, 400..600, 2, [entry(b"a", b"T", 1, 432)])
            .unwrap();
        // A frame of the next segment seals this one.
        index
            .push_frame(1, 64..200, 3, [entry(b"a", b"T", 2, 96)])
            .unwrap();
        assert_eq!(index.sealed().len(), 1);
        assert_eq!(
            index.stream_positions("a", 0, 10).map(Result::ok),
            Some(Some(vec![0, 2, 3]))
        );
        assert_eq!(
            index.stream_positions("a", 1, 1).map(Result::ok),
            Some(Some(vec![2]))
        );
        assert_eq!(
            index.stream_positions("b", 0, 10).map(Result::ok),
            Some(Some(vec![1]))
        );
        assert_eq!(index.location(1).ok(), Some(Some((0, 160))));
        assert_eq!(index.location(2).ok(), Some(Some((0, 432))));
        assert_eq!(index.location(3).ok(), Some(Some((1, 96))));
        // Many at once, across the sealed table and the active segment, in
        // any order: the same locations.
        let mut found = Vec::new();
        index
            .locations([3, 0, 1, 2, 3].into_iter(), &mut found)
            .unwrap();
        assert_eq!(
            found,
            vec![(3, 1, 96), (0, 0, 96), (1, 0, 160), (2, 0, 432), (3, 1, 96)]
        );
        assert!(index.locations([4].into_iter(), &mut found).is_err());
        let view = index.sealed()[0].view().unwrap();
        assert_eq!(view.header().data_end, 600);
        assert_eq!(view.header().last_frame_at, 400);

        // The table alone gives a second index the same streams.
        let mut again = Index::new(9);
        again.push_loaded(index.sealed()[0].clone(), true).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again.stream_version("a"), Some(1));
        assert_eq!(
            again.stream_positions("a", 0, 10).map(Result::ok),
            Some(Some(vec![0, 2]))
        );
        // Not twice, and not out of order.
        assert!(again.push_loaded(index.sealed()[0].clone(), true).is_err());
        assert_eq!(again.len(), 3);
    }
    /// The writer's no-allocation test of a batch agrees with the lookup
    /// it stands in for: true exactly when some id would be found, in a
    /// sealed segment or the active one, for batches hashed on the stack
    /// and for larger ones.
    #[test]
    fn holds_any_id_agrees_with_find_ids() {
        let mut index = Index::new(3);
        let sealed: Vec<Entry<'static>> = (0..300u32)
            .map(|i| entry(b"a", b"T", u64::from(i), 64 + 64 * i))
            .collect();
        index.push_frame(0, 64..64 + 64 * 300, 0, sealed).unwrap();
        index
            .push_frame(1, 64..200, 300, [entry(b"a", b"T", 300, 96)])
            .unwrap();
        assert_eq!(index.sealed().len(), 1);
        let fresh = |n: u32| -> Vec<[u8; 16]> {
            (0..n)
                .map(|i| {
                    [
                        i as u8,
                        1,
                        2,
                        3,
                        4,
                        5,
                        6,
                        7,
                        8,
                        9,
                        10,
                        11,
                        12,
                        13,
                        14,
                        (i >> 8) as u8,
                    ]
                })
                .collect()
        };
        let cases: Vec<Vec<[u8; 16]>> = vec![
            vec![],
            fresh(1),
            fresh(HASHED_ON_STACK as u32 + 50),
            vec![uid(64 + 64 * 299)],
            vec![uid(96)],
            [fresh(10), vec![uid(64 + 64 * 7)], fresh(3)].concat(),
            [fresh(HASHED_ON_STACK as u32 + 1), vec![uid(96)]].concat(),
            [fresh(HASHED_ON_STACK as u32 + 1), vec![uid(64)]].concat(),
        ];
        for ids in &cases {
            let found = index.find_ids(ids).unwrap().iter().any(Option::is_some);
            assert_eq!(
                index.holds_any_id(ids).ok(),
                Some(found),
                "{} ids",
                ids.len()
            );
        }
        assert_eq!(index.holds_any_id(&[uid(96)]).ok(), Some(true));
        assert_eq!(index.holds_any_id(&fresh(2)).ok(), Some(false));

        // The same answers once the store-wide filter covers the sealed
        // segment.
        let job = index.id_filter_job().unwrap();
        let cancel = std::sync::atomic::AtomicBool::new(false);
        assert!(index.install_id_filter(job.run(&cancel)).is_none());
        assert!(index.id_filter_covers_all().is_some());
        assert!(index.id_filter_job().is_none());
        for ids in &cases {
            let found = index.find_ids(ids).unwrap().iter().any(Option::is_some);
            assert_eq!(
                index.holds_any_id(ids).ok(),
                Some(found),
                "{} ids",
                ids.len()
            );
        }
        assert_eq!(index.holds_any_id(&[uid(64 + 64 * 5)]).ok(), Some(true));
        assert_eq!(index.holds_any_id(&fresh(2)).ok(), Some(false));
        // A job made before the filter was thrown away is not installed.
        let stale = FilterJob {
            filter: None,
            capacity: 10,
            tables: Vec::new(),
            end: 300,
            epoch: index.ids_epoch,
        };
        index.drop_id_filter();
        assert!(index.install_id_filter(stale.run(&cancel)).is_none());
        assert!(index.id_filter_covers_all().is_none());
    }
}
