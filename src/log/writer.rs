//! The single writer: expected-version checks, frame building, one
//! positioned write and one `fdatasync` per commit, then publishing to
//! readers; with group commit across concurrent appenders.
//!
//! Concurrent appenders are committed in groups (see [`crate::log::group`]):
//! each batch gets its own expected-version check, against the index plus
//! the batches before it in the same group, and its own result; the
//! batches that pass share one write and one sync.
//!
//! A batch is the unit of all or nothing: one stream's append, or an
//! `append_multi` of several streams (its parts), each part checked
//! against its own expected version; one part refused refuses the whole
//! batch, and nothing of it is placed. A batch may carry a condition (a
//! filter and a position): it is checked under this writer's lock, after
//! the batches placed before it in the group are committed, so no append
//! can land between the check and the write.
//!
//! Readers and the writer never wait for each other: a synced frame's
//! entries go to whichever copy of the index no reader holds, which then
//! becomes the one readers take (see [`crate::index::shared`]), and readers
//! hold a copy only to copy the entries they read (see [`crate::read`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Limit};
use crate::event::{AppendCondition, AppendResult, ExpectedVersion};
use crate::format::{
    FORMAT_VERSION, FRAME_HEADER_LEN, FrameHeader, SEGMENT_HEADER_LEN, SegmentHeader,
    encode_frame_header, seal_record,
};
use crate::index::catalog::set_index_crc;
use crate::index::id_filter::FilterDone;
use crate::index::persist::{index_file_name, sealed_index_bytes, write_catalog, write_index};
use crate::index::shared::SharedIndex;
use crate::index::{Entry, Index, Table};
use crate::io::FileIo;
use crate::lifecycle::retention::{self, Retention};
use crate::lifecycle::{Op, StreamKey, StreamState, control_stream};
use crate::log::batch::Batch;
use crate::log::group::{GroupCommit, Outcome};
use crate::log::ids::{Now, Pending, Verdict, check_ids};
use crate::log::prepare::Preparation;
use crate::log::recovery::Recovered;
use crate::log::segment::{Segment, map_immutable, zero_ahead_len, zero_fill};
use crate::metrics::Recorder;
use crate::options::Options;

/// The writer of one store.
pub(crate) struct Writer {
    group: GroupCommit,
    engine: Mutex<Engine>,
    /// Set for good after a failed write or sync. Checked before queueing
    /// so that a poisoned store answers at once.
    poisoned: AtomicBool,
    /// Held through a scavenge: two at once would write the same
    /// temporary files. Retention at a seal takes it too, or waits for
    /// the next seal when a scavenge holds it.
    scavenging: Mutex<()>,
    /// `$all` retention, applied at each seal.
    retention: Retention,
    /// The newest `recorded_at` of each sealed segment that age retention
    /// has looked at, so that each is read once.
    newest: Mutex<HashMap<u32, u64>>,
}

/// What only the commit leader touches.
struct Engine {
    io: Arc<dyn FileIo>,
    dir: PathBuf,
    store_id: u64,
    segment_size: u64,
    active: Arc<Segment>,
    file: File,
    /// Where the next frame goes in the active segment.
    write_offset: usize,
    /// How far the active segment is known to be zero-filled (written,
    /// not a hole); a frame that would pass it zero-fills further first.
    zeroed_to: usize,
    /// The position the next event gets.
    next_position: u64,
    /// The frame being built; reused so that steady appends do not allocate.
    buf: Vec<u8>,
    /// The position of the first event in the frame being built.
    frame_first_position: u64,
    /// How many events the frame being built holds.
    frame_events: u32,
    /// Whether to prepare the next segment in the background.
    prepare_ahead: bool,
    /// The next segment, if it is being prepared.
    preparing: Option<Preparation>,
    /// The index file of the last sealed segment, if it is being written.
    indexing: Option<IndexWrite>,
    /// The store-wide id filter being built or extended (see
    /// `index::id_filter`), and its cancel flag.
    id_filter: Option<(std::thread::JoinHandle<FilterDone>, Arc<AtomicBool>)>,
    /// An index file of the active segment (a clean close's), which must go
    /// before anything is written to the segment: while it exists, an open
    /// takes the log to end where it says.
    stale_index: Option<PathBuf>,
    /// Whether the writer has closed: nothing more is written.
    closed: bool,
    /// Commits, `fdatasync`s and rotations, for [`crate::Metrics`].
    metrics: Arc<Recorder>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The directory lock is released after this: a preparation must not
        // create files in a directory that another opener may be scanning.
        if let Some(p) = self.preparing.take() {
            let _ = p.finish();
        }
        if let Some(w) = self.indexing.take() {
            let _ = w.finish();
        }
        if let Some((handle, cancel)) = self.id_filter.take() {
            cancel.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// A batch placed in the frame being built.
struct Member {
    ticket: u64,
    batch: Batch,
    /// The version of each part's first event.
    first_versions: Vec<u64>,
    first_position: u64,
    /// Where its first record starts in the frame.
    frame_offset: usize,
}

impl Writer {
    /// The writer of the store in `dir` that `recovered` describes, ready
    /// to append where recovery found the log to end.
    pub(crate) fn resume(
        dir: PathBuf,
        recovered: &Recovered,
        options: &Options,
        metrics: Arc<Recorder>,
    ) -> Result<Writer, Error> {
        let active = recovered
            .index
            .segment_arc(recovered.active)
            .cloned()
            .ok_or_else(|| Error::corruption(&dir, 0, "active segment missing after recovery"))?;
        let next_position = recovered.index.len();
        if recovered.index.active_segment() != recovered.active {
            return Err(Error::corruption(
                &dir,
                0,
                format!(
                    "recovery ended in segment {} but indexed up to segment {}",
                    recovered.active,
                    recovered.index.active_segment()
                ),
            ));
        }
        let engine = Engine {
            io: options.io.clone(),
            dir,
            store_id: recovered.store_id,
            segment_size: recovered.segment_size,
            file: Writer::open_active(&active)?,
            zeroed_to: active.data_len(),
            active,
            write_offset: recovered.write_offset,
            next_position,
            buf: Vec::new(),
            frame_first_position: next_position,
            frame_events: 0,
            prepare_ahead: options.prepare_ahead,
            preparing: None,
            indexing: None,
            id_filter: None,
            stale_index: None,
            closed: false,
            metrics,
        };
        let mut engine = engine;
        let stale = engine
            .dir
            .join(index_file_name(u64::from(recovered.active)));
        if std::fs::symlink_metadata(&stale).is_ok() {
            engine.stale_index = Some(stale);
        }
        Ok(Writer {
            group: GroupCommit::default(),
            engine: Mutex::new(engine),
            poisoned: AtomicBool::new(false),
            scavenging: Mutex::new(()),
            retention: options.retention(),
            newest: Mutex::default(),
        })
    }

    /// Opens a segment for writing.
    fn open_active(segment: &Segment) -> Result<File, Error> {
        OpenOptions::new()
            .write(true)
            .open(segment.path())
            .map_err(|e| Error::io("open active segment", segment.path(), e))
    }

    /// Commits `batch`, alone or with others, and returns once it is durable
    /// and visible to readers, or refused.
    /// A batch with a condition has it checked by `check`, under the
    /// writer's lock, before anything of it is placed.
    pub(crate) fn append(
        &self,
        batch: Batch,
        index: &SharedIndex,
        check: &dyn Fn(&AppendCondition) -> Result<(), Error>,
    ) -> Outcome {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        self.group.submit(
            batch,
            &|batches| {
                let mut engine = self.engine.lock();
                self.commit_group(&mut engine, index, batches, check)
            },
            &|| self.poisoned.store(true, Ordering::Release),
        )
    }

    /// Commits a replication import: `batches` (runs of one stream's
    /// events, control records, runs of gap records), each part carrying
    /// its source's first version, the first record of the first batch to
    /// get `first_position`. Everything is checked under the engine lock
    /// (so no append slips in between) before anything is written, and
    /// then committed as frames of one commit group, the same path appends
    /// take; a refusal writes nothing.
    ///
    /// The checks, per record: an event id not already in the store; a
    /// version that is its stream's next one when the store holds any of
    /// the stream's versions, and otherwise one at or past the stream's
    /// soft-delete bound (the source may have scavenged the versions
    /// before it); no event in a tombstoned stream; and a control record's
    /// state that loosens no bound (a tombstone stays, the delete and
    /// truncation bounds never go down), as every state the source's
    /// writer makes does.
    pub(crate) fn import(
        &self,
        batches: Vec<Batch>,
        first_position: u64,
        index: &SharedIndex,
    ) -> Result<Vec<AppendResult>, Error> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let mut engine = self.engine.lock();
        if engine.next_position != first_position {
            return Err(Error::ImportRefused {
                position: first_position,
                reason: format!(
                    "the store's next position is {}, not {first_position}",
                    engine.next_position
                ),
            });
        }
        let mut next_versions: HashMap<&str, u64> = HashMap::new();
        let mut states: HashMap<StreamKey, StreamState> = HashMap::new();
        let mut pending = Pending::default();
        let mut position = first_position;
        for batch in &batches {
            if batch.gaps {
                position += batch.len() as u64;
                continue;
            }
            // A mirror's event ids are unique in its source: one already
            // here means the replica is not a copy of that source.
            let now = Now {
                stream_version: &|_| None,
                next_position: position,
            };
            let reused = pending.holds_any(batch)
                || match check_ids(batch, index, &now) {
                    Ok(Verdict::Fresh) => false,
                    Ok(Verdict::Retry(_)) | Err(Error::DuplicateEventId { .. }) => true,
                    Err(e) => return Err(e),
                };
            if reused {
                return Err(Error::ImportRefused {
                    position,
                    reason: "an imported event's id is already in the store".to_owned(),
                });
            }
            for part in &batch.parts {
                let refuse = |reason: String| Error::ImportRefused { position, reason };
                let Some(version) = part.first_version else {
                    return Err(refuse("an imported record carries no version".into()));
                };
                let stream = part.stream.as_str();
                let index = index.read();
                let next = match next_versions.get(stream) {
                    Some(next) => *next,
                    None => index.raw_next_version(stream),
                };
                let state_of = |key: &StreamKey| {
                    states
                        .get(key)
                        .copied()
                        .or_else(|| index.lifecycle_of_key(key))
                };
                if let Some(data) = &batch.control {
                    let (Some(key), Some(new)) = (
                        crate::lifecycle::key_of_control_stream(stream),
                        StreamState::decode(data),
                    ) else {
                        return Err(refuse(format!(
                            "'{}' is not a control stream holding a lifecycle state",
                            crate::error::excerpt(stream)
                        )));
                    };
                    if let Some(old) = state_of(&key)
                        && !new.keeps_bounds_of(&old)
                    {
                        return Err(refuse(format!(
                            "the control record of '{stream}' loosens the stream's lifecycle state ({old:?} to {new:?}), which no writer does"
                        )));
                    }
                    states.insert(key, new);
                } else {
                    let state = state_of(&crate::lifecycle::key(stream)).unwrap_or_default();
                    if state.tombstoned {
                        return Err(refuse(format!(
                            "stream '{}' is tombstoned, and the event is in it",
                            crate::error::excerpt(stream)
                        )));
                    }
                    if next == 0 && version < state.deleted_before {
                        return Err(refuse(format!(
                            "stream '{}': version {version} is below the soft-delete bound {}, where versions go on",
                            crate::error::excerpt(stream),
                            state.deleted_before
                        )));
                    }
                }
                if next > 0 && version != next {
                    return Err(refuse(format!(
                        "stream '{}' is at version {} in this store, and the imported record has version {version}{}",
                        crate::error::excerpt(stream),
                        next - 1,
                        if version > next {
                            " (the source no longer holds the versions in between: they were scavenged after this store took the ones before; rebuild the replica)"
                        } else {
                            ""
                        }
                    )));
                }
                let count = part.records.len() as u64;
                next_versions.insert(stream, version.saturating_add(count));
                position += count;
            }
            pending.add(batch);
        }
        if batches.iter().any(|b| b.control.is_some()) {
            self.ensure_control_segment(&mut engine, index)?;
        }
        let outcomes = self.commit_group(&mut engine, index, batches, &|_| Ok(()));
        // Everything was checked above, so a refusal here (an I/O error
        // reading an index, the segment count limit) is not the caller's:
        // the batches before it are committed and those after it are not,
        // at positions the source may not have given them. Nothing more is
        // written until a reopen, which finds the log as it is.
        if outcomes.iter().any(Result::is_err) && outcomes.iter().any(Result::is_ok) {
            tracing::error!("a replication import was committed in part; poisoning");
            self.poisoned.store(true, Ordering::Release);
        }
        outcomes
            .into_iter()
            .map(|o| o.and_then(|mut r| r.pop().ok_or(Error::Poisoned)))
            .collect()
    }

    /// Makes sure the active segment can hold a control record: one of an
    /// older format (version 1) is sealed first when it holds events, so
    /// the record starts a segment of this build's format; an empty one
    /// prepared by an older build cannot be sealed, and is an error.
    fn ensure_control_segment(
        &self,
        engine: &mut Engine,
        index: &SharedIndex,
    ) -> Result<(), Error> {
        if engine.active.format_version() < FORMAT_VERSION {
            if index.read().active_segment_has_events() {
                self.rotate(engine, index)?;
            }
            if engine.active.format_version() < FORMAT_VERSION {
                return Err(Error::io(
                    "write a control record",
                    engine.active.path(),
                    io::Error::new(
                        io::ErrorKind::Unsupported,
                        "the next segment was prepared by an older build (format version 1), which cannot hold control records; append an event first",
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Commits one lifecycle call on `stream` as a control record (see
    /// [`crate::lifecycle`]), checked against `expected` when the call
    /// takes one. It holds the engine lock throughout, so every commit
    /// before it is in the index and none can land between its check and
    /// its write. A call that changes nothing (deleting a stream with no
    /// events, truncating below the current bound, setting the same
    /// limits) writes nothing.
    ///
    /// A control record goes only into a segment of format version 2 or
    /// later, which a build that does not know control records refuses:
    /// the first one in a store written by such a build seals its version-1
    /// segment first.
    pub(crate) fn control(
        &self,
        index: &SharedIndex,
        stream: &str,
        expected: Option<ExpectedVersion>,
        op: Op,
    ) -> Result<(), Error> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let mut engine = self.engine.lock();
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let (state, actual, next) = {
            let index = index.read();
            let (actual, next) = index.append_point(stream)?;
            (index.lifecycle(stream).unwrap_or_default(), actual, next)
        };
        if let Some(expected) = expected
            && !expected.admits(actual)
        {
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected,
                actual,
            });
        }
        if matches!(op, Op::Delete) && actual.is_none() {
            return Ok(());
        }
        let new = state.apply(op, next);
        if new == state {
            return Ok(());
        }
        self.ensure_control_segment(&mut engine, index)?;
        let batch = Batch::control(&control_stream(stream), op.event_type(), &new.encode());
        let mut outcomes = self.commit_group(&mut engine, index, vec![batch], &|_| Ok(()));
        outcomes.pop().unwrap_or(Err(Error::Poisoned)).map(|_| ())
    }

    /// The lock a scavenge holds throughout, so that only one runs at a
    /// time.
    pub(crate) fn scavenge_lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.scavenging.lock()
    }

    /// Seals the active segment when it holds events, so that a scavenge
    /// can rewrite it, and waits for the sealed segment's index file to be
    /// written (a scavenge rewrites that file too, and must not race the
    /// writer's own). Returns the number of the segment now active, the
    /// first one a scavenge leaves alone.
    pub(crate) fn seal_for_scavenge(&self, index: &SharedIndex) -> Result<u32, Error> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let mut engine = self.engine.lock();
        if index.read().active_segment_has_events() {
            self.rotate(&mut engine, index)?;
        }
        if let Some(w) = engine.indexing.take() {
            w.finish_into(index);
        }
        Ok(engine.active.number() as u32)
    }

    /// Applies `$all` retention to the sealed segments before `below`; see
    /// [`retention`](crate::lifecycle::retention). Its failures cost only
    /// disk space until the next try: warnings, never a failed append.
    fn retain(&self, engine: &Engine, index: &SharedIndex, below: u32) {
        let applied = retention::apply(
            &engine.dir,
            &*engine.io,
            index,
            self.retention,
            engine.segment_size,
            below,
            &self.newest,
        );
        if let Err(e) = applied {
            tracing::warn!(error = %e, "retention could not run; nothing dropped");
        }
    }

    /// Applies `$all` retention to every sealed segment, holding the
    /// writer's lock (so that no seal runs meanwhile): what a writable
    /// open and a scavenge (which holds the scavenge lock already) do.
    pub(crate) fn retain_all(&self, index: &SharedIndex) {
        if !self.retention.is_set() || self.is_poisoned() {
            return;
        }
        let mut engine = self.engine.lock();
        // The segment sealed last may still be being indexed: its file
        // written first, so that every sealed segment may go.
        if let Some(w) = engine.indexing.take() {
            w.finish_into(index);
        }
        let below = engine.active.number() as u32;
        self.retain(&engine, index, below);
    }

    /// Syncs the active segment, to be sure nothing is outstanding.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let engine = self.engine.lock();
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let path = engine.active.path();
        engine
            .io
            .sync_data(&engine.file, path)
            .map_err(|e| self.poison("sync segment", path.into(), e))
    }

    /// Closes the writer cleanly: waits for background work, and records
    /// the active segment's index (marked open) so that the next open
    /// reads no event data. Nothing is written after. A store poisoned by
    /// a failure records nothing: the next open scans. Failing to write
    /// the index only costs the next open time, so it is a warning.
    /// Starts building the store-wide id filter over the sealed segments
    /// on a background thread, at open, so that neither the open nor the
    /// first appends wait for it. Without background work it is built
    /// after the first append instead, on the appending thread.
    pub(crate) fn start_id_filter(&self, index: &SharedIndex) {
        let mut engine = self.engine.lock();
        if engine.prepare_ahead {
            engine.tend_id_filter(index);
        }
    }

    /// Takes a finished id filter job into the index, if the writer is
    /// free (never waiting for it): for lookups on a store that nothing
    /// is appended to, where no frame would take it.
    pub(crate) fn poll_id_filter(&self, index: &SharedIndex) {
        if let Some(mut engine) = self.engine.try_lock()
            && engine.prepare_ahead
        {
            engine.tend_id_filter(index);
        }
    }

    pub(crate) fn close(&self, index: &SharedIndex) {
        let mut engine = self.engine.lock();
        if engine.closed {
            return;
        }
        engine.closed = true;
        if let Some(w) = engine.indexing.take() {
            w.finish_into(index);
        }
        if self.is_poisoned() {
            return;
        }
        let number = engine.active.number();
        let (bytes, catalog, repaired) = {
            let index = index.read();
            let Some(bytes) = index.open_segment_index() else {
                return;
            };
            (
                bytes,
                index.sealed_catalog_bytes(),
                index.repaired_segments(),
            )
        };
        // Sealed segments' indexes that reads found damaged and rebuilt,
        // written again (each on its own: derived data, so a failure only
        // costs the next open or read the same rebuild).
        for (segment, bytes) in repaired {
            if let Err(e) = write_index(&*engine.io, &engine.dir, u64::from(segment), &bytes) {
                tracing::warn!(segment, error = %e, "could not write a repaired segment index");
            }
        }
        // The catalog of the last seal, written again in case the seal's
        // own write failed or came before this build (it names a sealed
        // index already on disk, so the order does not matter); without a
        // sealed segment there is none, and the open index is all there is.
        if let Some(Err(e)) = catalog.map(|c| write_catalog(&*engine.io, &engine.dir, &c)) {
            tracing::warn!(error = %e, "could not write the stream catalog at close; an open after a crash merges more index files");
        }
        let written = write_index(&*engine.io, &engine.dir, number, &bytes);
        if let Err(e) = written {
            tracing::warn!(
                segment = number,
                error = %e,
                "could not record the active segment's index at close; the next open scans it"
            );
        }
    }

    /// Whether a write or sync has failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Latches the poison flag and turns `source` into the error to return.
    fn poison(&self, op: &'static str, path: PathBuf, source: io::Error) -> Error {
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(%op, path = %path.display(), error = %source, "write path failed; the store is poisoned until reopened");
        Error::io(op, path, source)
    }

    /// Commits a group of batches and returns their outcomes in order.
    fn commit_group(
        &self,
        engine: &mut Engine,
        index: &SharedIndex,
        group: Vec<Batch>,
        check: &dyn Fn(&AppendCondition) -> Result<(), Error>,
    ) -> Vec<Outcome> {
        let count = group.len();
        let last_ticket = (count as u64).saturating_sub(1);
        let mut results = Vec::with_capacity(count);
        let mut members: Vec<Member> = Vec::new();
        // Stream versions as the batches already placed in this group leave
        // them; the index knows the rest.
        let mut versions: HashMap<String, Option<u64>> = HashMap::new();
        // The ids of the batches placed in this group, which the index does
        // not hold until the frame is written; kept only when there is a
        // later batch to check against them.
        let mut pending = Pending::default();
        let next_position = |engine: &Engine| engine.next_position;
        engine.start_frame();
        for (ticket, batch) in (0u64..).zip(group) {
            if self.is_poisoned() {
                results.push((ticket, Err(Error::Poisoned)));
                continue;
            }
            // Event ids first (see `crate::log::ids`): a retried batch is
            // answered with its original results, whatever the streams'
            // versions are now and whatever its condition would say. One
            // that reuses an id placed earlier in this group is answered
            // only once that frame is durable: a retry must never be
            // acknowledged while its original may still fail.
            if pending.holds_any(&batch) {
                self.flush(engine, index, &mut members, &mut results);
                pending.clear();
                if self.is_poisoned() {
                    results.push((ticket, Err(Error::Poisoned)));
                    continue;
                }
            }
            let stream_version = |stream: &str| match versions.get(stream) {
                Some(v) => *v,
                None => index.read().stream_version(stream),
            };
            let now = Now {
                stream_version: &stream_version,
                next_position: next_position(engine),
            };
            // A run of gap records (a replication import's) holds no event
            // ids, only ids made from their positions.
            let verdict = if batch.gaps {
                Ok(Verdict::Fresh)
            } else {
                check_ids(&batch, index, &now)
            };
            match verdict {
                Ok(Verdict::Fresh) => {}
                Ok(Verdict::Retry(original)) => {
                    results.push((ticket, Ok(original)));
                    continue;
                }
                Err(e) => {
                    results.push((ticket, Err(e)));
                    continue;
                }
            }
            if let Some(condition) = &batch.condition {
                // The condition is checked against the index, which does
                // not hold the batches placed earlier in this group until
                // their frame is synced: they are committed first, at the
                // cost of one more write and sync for this group.
                self.flush(engine, index, &mut members, &mut results);
                if self.is_poisoned() {
                    results.push((ticket, Err(Error::Poisoned)));
                    continue;
                }
                if let Err(e) = check(condition) {
                    results.push((ticket, Err(e)));
                    continue;
                }
            }
            // Every part passes its check, or the whole batch is refused
            // with the first part that does not.
            let mut first_versions = Vec::with_capacity(batch.parts.len());
            let mut refused = None;
            for part in &batch.parts {
                // A stream's next version goes on after deleted versions;
                // a tombstoned stream refuses the batch.
                // A replication import's part carries its version, which
                // the import checked under this same lock.
                if let Some(first) = part.first_version {
                    first_versions.push(first);
                    continue;
                }
                let (actual, next) = match versions.get(&part.stream) {
                    Some(v) => (*v, v.map_or(0, |v| v + 1)),
                    None => match index.read().append_point(&part.stream) {
                        Ok(point) => point,
                        Err(e) => {
                            refused = Some(e);
                            break;
                        }
                    },
                };
                if !part.expected.admits(actual) {
                    refused = Some(Error::WrongExpectedVersion {
                        stream: part.stream.clone(),
                        expected: part.expected,
                        actual,
                    });
                    break;
                }
                first_versions.push(next);
            }
            if let Some(e) = refused {
                results.push((ticket, Err(e)));
                continue;
            }
            // An empty batch checks and writes nothing: it never rotates.
            let needed = batch.encoded.len();
            if needed > 0 && engine.write_offset + engine.buf.len() + needed > engine.active.len() {
                self.flush(engine, index, &mut members, &mut results);
                if let Err(e) = self.rotate(engine, index) {
                    results.push((ticket, Err(e)));
                    continue;
                }
            }
            for (part, first) in batch.parts.iter().zip(&first_versions) {
                let count = part.records.len() as u64;
                if count > 0 && !batch.gaps {
                    versions.insert(part.stream.clone(), Some(first + count - 1));
                }
            }
            let member = engine.place(ticket, batch, first_versions);
            if ticket < last_ticket {
                pending.add(&member.batch);
            }
            members.push(member);
        }
        self.flush(engine, index, &mut members, &mut results);
        // Refusals were answered as they came, members at their flush.
        results.sort_unstable_by_key(|(ticket, _)| *ticket);
        debug_assert_eq!(results.len(), count);
        results.into_iter().map(|(_, outcome)| outcome).collect()
    }

    /// Writes, syncs and publishes the frame being built, and answers its
    /// members.
    fn flush(
        &self,
        engine: &mut Engine,
        index: &SharedIndex,
        members: &mut Vec<Member>,
        results: &mut Vec<(u64, Outcome)>,
    ) {
        if members.is_empty() {
            return;
        }
        if let Err(e) = engine.write_frame() {
            let e = self.poison(e.0, e.1, e.2);
            let mut first = Some(e);
            for m in members.drain(..) {
                results.push((m.ticket, Err(first.take().unwrap_or(Error::Poisoned))));
            }
            return;
        }
        let segment = engine.active.number() as u32;
        let frame_start = engine.write_offset;
        // A group of empty batches wrote nothing, and nothing moves.
        let frame_end = if engine.frame_events == 0 {
            frame_start
        } else {
            frame_start + engine.buf.len()
        };
        if frame_end > frame_start {
            // The watermark moves first: a reader may copy a location out
            // of the index and read it after the lock is gone.
            engine.active.publish(frame_end);
            // One level of iteration per member, the part found by a
            // cursor (parts cover the records in order): a part within a
            // member, iterated as a second `flat_map`, cost each event some
            // 90 instructions of iterator bookkeeping.
            let entries: Vec<Entry<'_>> = members
                .iter()
                .flat_map(|m| {
                    let mut at = frame_start + m.frame_offset;
                    let (parts, firsts) = (&m.batch.parts, &m.first_versions);
                    let mut part = 0;
                    m.batch
                        .records
                        .iter()
                        .enumerate()
                        .map(move |(i, (len, event_type))| {
                            while parts.get(part).is_some_and(|p| p.records.end <= i) {
                                part += 1;
                            }
                            let (stream, version) = parts.get(part).zip(firsts.get(part)).map_or(
                                (&b""[..], 0),
                                |(p, first)| {
                                    (
                                        p.stream.as_bytes(),
                                        first + i.saturating_sub(p.records.start) as u64,
                                    )
                                },
                            );
                            let entry = Entry {
                                stream,
                                event_type: event_type.as_bytes(),
                                version,
                                offset: at as u32,
                                id: m.batch.ids.get(i).copied().unwrap_or_default(),
                                control: m.batch.control.as_deref(),
                            };
                            at += len;
                            entry
                        })
                })
                .collect();
            // The frame's ids go into the active segment's id table one
            // by one, each into a random slot; touching all their slots
            // first lets those cache misses overlap.
            let touch = |index: &Index| {
                for m in members.iter() {
                    index.touch_active_ids(&m.batch.ids);
                }
            };
            let pushed = index.publish_frame(
                segment,
                frame_start..frame_end,
                engine.frame_first_position,
                &entries,
                touch,
            );
            if let Err(refused) = pushed {
                // The frame is durable but the index disagrees with it: a
                // bug. Readers see none of the frame (the index took none
                // of it), writing stops, and a reopen rebuilds the index
                // from what is on disk, where the batches are (so their
                // appends still answer Ok).
                tracing::error!(reason = %refused.reason, "index out of step with the log; poisoning");
                self.poisoned.store(true, Ordering::Release);
                debug_assert!(false, "index refused a checked frame: {}", refused.reason);
            }
        }
        if frame_end > frame_start {
            engine.write_offset = frame_end;
            engine.prepare_next(index);
            engine.tend_id_filter(index);
        }
        for m in members.drain(..) {
            let mut position = m.first_position;
            let parts = m.batch.parts.iter().zip(&m.first_versions);
            let answers = parts
                .map(|(part, first)| {
                    let n = part.records.len() as u64;
                    let result = AppendResult {
                        versions: *first..first + n,
                        positions: position..position + n,
                        deduplicated: false,
                    };
                    position += n;
                    result
                })
                .collect();
            results.push((m.ticket, Ok(answers)));
        }
        engine.start_frame();
    }

    /// Seals the active segment and makes the next one active, creating it
    /// unless it was prepared ahead.
    fn rotate(&self, engine: &mut Engine, index: &SharedIndex) -> Result<(), Error> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let number = engine.active.number() + 1;
        let _span = tracing::info_span!(
            "annals.rotate",
            sealed = engine.active.number(),
            next = number,
            sealed_bytes = engine.write_offset,
        )
        .entered();
        if u32::try_from(number).is_err() {
            return Err(Error::LimitExceeded {
                limit: Limit::SegmentCount,
                actual: number,
                max: u64::from(u32::MAX),
            });
        }
        // The sealed segment's index goes to disk off the append path; the
        // one before it, long written, replaces its copy in memory.
        // With it, the catalog of the streams as they stand at the seal
        // (O(streams) to encode, once a segment): an open after a crash
        // takes the streams from it and merges only the later segments'.
        let table = index.read().sealing_table();
        let sealed = index.update(move |index| index.seal_with(table.clone()));
        let catalog = index.read().catalog_bytes();
        let sealed_number = engine.active.number();
        let existing = u32::try_from(number)
            .ok()
            .and_then(|n| index.read().segment_arc(n).cloned());
        let (segment, file) = match existing {
            Some(segment) => {
                let file = Writer::open_active(&segment)
                    .inspect_err(|_| self.poisoned.store(true, Ordering::Release))?;
                (segment, file)
            }
            None => {
                let prepared = match engine.preparing.take() {
                    Some(p) if p.number() == number => p.finish().inspect_err(|e| {
                        tracing::warn!(error = %e, "preparing the next segment failed; creating it now");
                    }),
                    _ => Err(Error::Poisoned),
                };
                let (segment, file) = match prepared {
                    Ok(ready) => ready,
                    Err(_) => engine
                        .create_segment(number)
                        .inspect_err(|_| self.poisoned.store(true, Ordering::Release))?,
                };
                let pushed = Arc::clone(&segment);
                index.update(move |index| index.push_segment(Arc::clone(&pushed)));
                (segment, file)
            }
        };
        engine.zeroed_to = segment.data_len();
        engine.active = segment;
        engine.file = file;
        engine.write_offset = SEGMENT_HEADER_LEN;
        engine.start_frame();
        if let Some(w) = engine.indexing.take() {
            w.finish_into(index);
        }
        // Retention may drop the segments sealed before this one (whose
        // index files are written); a scavenge running now applies it
        // itself.
        if self.retention.is_set()
            && let Some(_one_at_a_time) = self.scavenging.try_lock()
        {
            self.retain(engine, index, sealed_number as u32);
        }
        engine.indexing = IndexWrite::start(
            Arc::clone(&engine.io),
            engine.dir.clone(),
            sealed_number,
            sealed,
            catalog,
            engine.prepare_ahead,
        );
        engine.metrics.rotated();
        Ok(())
    }
}

impl Engine {
    fn next_header(&self, number: u64) -> SegmentHeader {
        SegmentHeader {
            store_id: self.store_id,
            segment_number: number,
            segment_size: self.segment_size,
        }
    }

    /// Creates segment `number` on this thread.
    fn create_segment(&self, number: u64) -> Result<(Arc<Segment>, File), Error> {
        Segment::create(&*self.io, &self.dir, &self.next_header(number))
    }

    /// Keeps the store-wide id filter covering the sealed segments: takes
    /// what a finished job built, then starts the next job if the index
    /// wants one (after an open, after a seal), on a
    /// background thread (or here, without background work). Called after
    /// a durable frame; costs a check of a flag and two positions when
    /// nothing is to be done.
    fn tend_id_filter(&mut self, index: &SharedIndex) {
        if let Some((handle, _)) = &self.id_filter
            && !handle.is_finished()
        {
            return;
        }
        if let Some((handle, _)) = self.id_filter.take() {
            match handle.join() {
                Ok(done) => {
                    index.update(move |index| index.install_id_filter(done.clone()));
                }
                Err(_) => tracing::warn!("the id filter thread panicked"),
            }
        }
        let Some(job) = index.read().id_filter_job() else {
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        if self.prepare_ahead {
            let flag = Arc::clone(&cancel);
            let spawned = std::thread::Builder::new()
                .name("annals-id-filter".to_owned())
                .spawn(move || job.run(&flag));
            match spawned {
                Ok(handle) => self.id_filter = Some((handle, cancel)),
                Err(e) => tracing::warn!(error = %e, "could not start the id filter thread"),
            }
        } else {
            let done = job.run(&cancel);
            index.update(move |index| index.install_id_filter(done.clone()));
        }
    }

    /// Starts preparing the segment after the active one, unless it exists
    /// or is under way, or the active segment is segment 0 and not half
    /// full yet (a store past segment 0 is not small). Called
    /// after a durable frame, so the active segment is never empty then.
    /// The cost is disk space: a store holds one segment more than its data
    /// needs, ready before any append waits. Waiting for half a segment
    /// keeps a small store from paying a whole segment of disk for nothing,
    /// and still leaves the preparation half a segment of appends to finish.
    fn prepare_next(&mut self, index: &SharedIndex) {
        let number = self.active.number() + 1;
        if !self.prepare_ahead
            || (number == 1 && self.write_offset < self.active.len() / 2)
            || self.preparing.is_some()
            || u32::try_from(number).is_err()
            || index.read().end_segment() > number
        {
            return;
        }
        self.preparing = Preparation::start(
            Arc::clone(&self.io),
            self.dir.clone(),
            self.next_header(number),
        );
    }

    /// Empties the frame buffer, leaving room for its header.
    fn start_frame(&mut self) {
        self.buf.clear();
        self.buf.resize(FRAME_HEADER_LEN, 0);
        self.frame_first_position = self.next_position;
        self.frame_events = 0;
    }

    /// Copies `batch`'s records into the frame and seals them with their
    /// positions and versions: each part's from its first version on.
    fn place(&mut self, ticket: u64, batch: Batch, first_versions: Vec<u64>) -> Member {
        let frame_offset = self.buf.len();
        let first_position = self.next_position;
        self.buf.extend_from_slice(&batch.encoded);
        let salt = self.active.salt();
        let mut at = frame_offset;
        for (part, first) in batch.parts.iter().zip(&first_versions) {
            let records = batch.records.get(part.records.clone()).unwrap_or_default();
            for (i, (len, _)) in records.iter().enumerate() {
                // A gap record's version is 0, as a scavenge writes it.
                let version = if batch.gaps { 0 } else { first + i as u64 };
                if let Some(record) = self.buf.get_mut(at..at + len) {
                    seal_record(record, salt, self.next_position, version);
                }
                self.next_position += 1;
                self.frame_events += 1;
                at += len;
            }
        }
        Member {
            ticket,
            batch,
            first_versions,
            first_position,
            frame_offset,
        }
    }

    /// Writes the frame at the end of the log and syncs it. Nothing to do
    /// when it holds no events (a group of empty batches).
    fn write_frame(&mut self) -> Result<(), (&'static str, PathBuf, io::Error)> {
        let first_position = self.frame_first_position;
        let event_count = self.frame_events;
        if event_count == 0 {
            return Ok(());
        }
        if self.closed {
            let e = io::Error::other("the store is closed");
            return Err(("write frame", self.active.path().to_path_buf(), e));
        }
        if let Some(path) = self.stale_index.take() {
            // The catalog stays: it names the last sealed segment's index,
            // which no write changes.
            let removed = self
                .io
                .remove_file(&path)
                .and_then(|()| self.io.sync_dir(&self.dir));
            if let Err(e) = removed {
                return Err(("remove the active segment's index", path, e));
            }
        }
        let header = FrameHeader {
            frame_len: self.buf.len() as u32,
            first_position,
            event_count,
        };
        encode_frame_header(&mut self.buf, self.active.salt(), &header);
        // Free when no subscriber listens: the fields are only recorded.
        let span = tracing::debug_span!(
            "annals.commit",
            segment = self.active.number(),
            offset = self.write_offset,
            bytes = self.buf.len(),
            events = event_count,
            sync_us = tracing::field::Empty,
        );
        let _entered = span.enter();
        self.zero_ahead()?;
        let path = self.active.path();
        self.io
            .write_at(&self.file, path, &self.buf, self.write_offset as u64)
            .map_err(|e| ("write frame", path.to_path_buf(), e))?;
        let started = Instant::now();
        self.io
            .sync_data(&self.file, path)
            .map_err(|e| ("sync segment", path.to_path_buf(), e))?;
        let took = started.elapsed();
        span.record("sync_us", took.as_micros() as u64);
        self.metrics.synced(took);
        self.metrics.committed(u64::from(event_count));
        Ok(())
    }
}

impl Engine {
    /// Zero-fills the active segment ahead of the frame about to be
    /// written, if it would pass the zero-filled part (only in a sparse
    /// segment: see [`Segment::create`]). The zeros need no sync of their
    /// own: the frame's `fdatasync` makes them durable with it, and until
    /// then a hole reads as zeros just the same, so a crash in between
    /// leaves what recovery expects after the end of the log.
    fn zero_ahead(&mut self) -> Result<(), (&'static str, PathBuf, io::Error)> {
        let frame_end = self.write_offset + self.buf.len();
        if frame_end <= self.zeroed_to {
            return Ok(());
        }
        let to = frame_end
            .saturating_add(zero_ahead_len(frame_end))
            .min(self.active.len());
        let from = self.zeroed_to.max(frame_end);
        let path = self.active.path();
        zero_fill(&*self.io, &self.file, path, from..to)
            .map_err(|e| ("zero-fill segment", path.to_path_buf(), e))?;
        self.zeroed_to = to;
        Ok(())
    }
}

/// A sealed segment's index file being written, on a background thread
/// (or, without background work, already written on this one).
struct IndexWrite {
    number: u64,
    /// The thread writing it, or what writing it on this thread gave.
    written: Result<std::thread::JoinHandle<Written>, Written>,
}

/// The index file written, and its bytes.
type Written = io::Result<(PathBuf, Bytes)>;

impl IndexWrite {
    /// Starts writing the tables of segment `number` as its index file in
    /// `dir`, merged into one when there are several, and then `catalog`
    /// (the streams as they stood at the seal) tied to that index. The
    /// catalog goes second: until it is whole, the one before it (tied to
    /// an earlier index, still on disk) is the one an open finds.
    fn start(
        io: Arc<dyn FileIo>,
        dir: PathBuf,
        number: u64,
        tables: Vec<Table>,
        catalog: Option<Vec<u8>>,
        background: bool,
    ) -> Option<IndexWrite> {
        let write = move || {
            let bytes = sealed_index_bytes(&tables)
                .ok_or_else(|| io::Error::other("the segment's tables do not follow on"))?;
            let path = write_index(&*io, &dir, number, &bytes)?;
            let crc = Table::new(bytes.clone(), true).and_then(|t| t.header_crc());
            let written = match (catalog.clone(), crc) {
                (Some(mut c), Some(crc)) => set_index_crc(&mut c, crc)
                    .ok_or_else(|| io::Error::other("the catalog does not encode"))
                    .and_then(|()| write_catalog(&*io, &dir, &c)),
                _ => Err(io::Error::other("the catalog does not encode")),
            };
            if let Err(e) = written {
                tracing::warn!(
                    segment = number,
                    error = %e,
                    "could not write the stream catalog of a sealed segment; an open after a crash merges more index files"
                );
            }
            Ok((path, bytes))
        };
        let written = if background {
            let spawned = std::thread::Builder::new()
                .name(format!("annals-index-{number}"))
                .spawn(write.clone());
            match spawned {
                Ok(handle) => Ok(handle),
                Err(_) => Err(write()),
            }
        } else {
            Err(write())
        };
        Some(IndexWrite { number, written })
    }

    /// Waits for the write and returns the file's path and bytes.
    fn finish(self) -> Written {
        match self.written {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the index writing thread panicked"))),
            Err(done) => done,
        }
    }

    /// Waits for the write, then swaps the segment's tables built in
    /// memory for the file's mapped bytes, which frees the memory. A
    /// failed write is a warning: the next open rebuilds the file.
    fn finish_into(self, index: &SharedIndex) {
        let number = self.number;
        let mapped = self.finish().and_then(|(path, written)| {
            let file = std::fs::File::open(&path)?;
            let mapped = map_immutable(&file)?;
            // The comparison reads the whole file through the map: give
            // its pages back, or every seal would leave a segment index
            // resident in the writer.
            let same = *mapped.bytes() == written;
            mapped.release();
            if same {
                Ok(mapped)
            } else {
                Err(io::Error::other(
                    "the index file differs from what was written",
                ))
            }
        });
        match mapped.map(|m| Table::from_map(m, true)) {
            Ok(Some(table)) => {
                index.update(move |index| index.replace_tables(number as u32, table.clone()));
            }
            Ok(None) => tracing::warn!(
                segment = number,
                "segment index file unreadable after writing"
            ),
            Err(e) => tracing::warn!(
                segment = number,
                error = %e,
                "could not write a segment index; the next open rebuilds it"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::event::{EventData, ExpectedVersion};
    use crate::io::{FileIo, RealIo};
    use crate::store::Store;

    /// Real files whose segment syncs fail once `fail` is set.
    #[derive(Debug, Default)]
    struct FailingSync {
        fail: AtomicBool,
    }

    impl FileIo for FailingSync {
        fn create_new(&self, path: &std::path::Path) -> io::Result<File> {
            RealIo.create_new(path)
        }
        fn write_at(&self, f: &File, p: &std::path::Path, b: &[u8], o: u64) -> io::Result<()> {
            RealIo.write_at(f, p, b, o)
        }
        fn sync_data(&self, f: &File, p: &std::path::Path) -> io::Result<()> {
            if self.fail.load(Ordering::Relaxed) {
                return Err(io::Error::other("injected sync failure"));
            }
            RealIo.sync_data(f, p)
        }
        fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
            RealIo.rename(from, to)
        }
        fn remove_file(&self, p: &std::path::Path) -> io::Result<()> {
            RealIo.remove_file(p)
        }
        fn sync_dir(&self, d: &std::path::Path) -> io::Result<()> {
            RealIo.sync_dir(d)
        }
    }

    fn batch(store: &Store, stream: &str, id: u128) -> Batch {
        let e = EventData::new("T", b"x".to_vec()).with_id(uuid::Uuid::from_u128(id));
        Batch::new(store.options(), stream, ExpectedVersion::Any, &[e]).unwrap()
    }

    /// A retry in the same group as its original is answered only after
    /// the original's frame is durable: when that frame's sync fails, the
    /// retry fails too, instead of being acknowledged as stored.
    #[test]
    fn a_retry_waits_for_its_original_in_the_same_group() {
        let dir = tempfile::tempdir().unwrap();
        let io = Arc::new(FailingSync::default());
        let store = Store::open_with(dir.path(), Options::default().file_io(io.clone())).unwrap();
        let (writer, index) = store.parts_for_tests();

        // Durable originals: the retry is answered from the index.
        let group = vec![
            batch(&store, "s", 1),
            batch(&store, "s", 1),
            batch(&store, "t", 2),
        ];
        let outcomes = writer.commit_group(&mut writer.engine.lock(), index, group, &|_| Ok(()));
        let results: Vec<AppendResult> =
            outcomes.into_iter().map(|o| o.unwrap().remove(0)).collect();
        assert!(!results[0].deduplicated && results[1].deduplicated);
        assert_eq!(results[1].positions, results[0].positions);
        assert_eq!(results[2].positions, 1..2);
        assert_eq!(index.read().len(), 2);

        // The original's sync fails: its retry must not be acknowledged.
        io.fail.store(true, Ordering::Relaxed);
        let group = vec![batch(&store, "s", 3), batch(&store, "s", 3)];
        let outcomes = writer.commit_group(&mut writer.engine.lock(), index, group, &|_| Ok(()));
        assert!(
            matches!(outcomes[0], Err(Error::Io { .. })),
            "{:?}",
            outcomes[0]
        );
        assert!(
            matches!(outcomes[1], Err(Error::Poisoned)),
            "{:?}",
            outcomes[1]
        );
    }

    /// A reader that holds the index (descheduled while it plans a read,
    /// say) never holds up an append: appends on the very thread that
    /// holds it, across seals and the id filter's installs, each of which
    /// would wait for that reader forever if the writer needed its copy.
    /// The reader's copy stays as it was, and takes everything once free.
    #[test]
    fn appends_and_seals_never_wait_for_a_reader_holding_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default().segment_size(crate::format::MIN_SEGMENT_SIZE);
        let store = Store::open_with(dir.path(), options).unwrap();
        let (_, index) = store.parts_for_tests();
        let segments_before = index.read().end_segment();
        let held = index.read();
        let payload = vec![7u8; 1024];
        let mut appended = 0u64;
        // Enough to fill several of the smallest segments.
        let target = 4 * crate::format::MIN_SEGMENT_SIZE / 1024;
        while appended < target {
            let e = EventData::new("T", payload.clone());
            store.append("s", ExpectedVersion::Any, &[e]).unwrap();
            appended += 1;
        }
        assert_eq!(held.len(), 0, "the held copy changed under its reader");
        assert_eq!(held.end_segment(), segments_before);
        // A reader now sees every append, and so does the held copy once
        // its reader lets go and the next change reaches it.
        assert_eq!(store.global_position(), appended);
        assert!(index.read().end_segment() > segments_before + 2);
        drop(held);
        store
            .append(
                "s",
                ExpectedVersion::Any,
                &[EventData::new("T", b"x".to_vec())],
            )
            .unwrap();
        let events = store.read_stream("s", 0, usize::MAX).unwrap();
        assert_eq!(events.len() as u64, appended + 1);
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.version == i as u64)
        );
    }

    /// Appends until the store-wide id filter covers every sealed segment
    /// (it is built and extended after durable frames), then checks that
    /// every stored id passes it and is found, and that the writer's test
    /// agrees. Ids `next..` are fresh; returns the next fresh one.
    fn filter_holds_every_id(store: &Store, mut next: u128) -> u128 {
        let (_, index) = store.parts_for_tests();
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while index.read().id_filter_covers_all().is_none() {
            assert!(Instant::now() < deadline, "the id filter was never built");
            next += 1;
            let e = EventData::new("T", b"x".to_vec()).with_id(uuid::Uuid::from_u128(next));
            store.append("tick", ExpectedVersion::Any, &[e]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let index = index.read();
        assert!(!index.sealed().is_empty());
        let filter = index.id_filter_covers_all().unwrap();
        let sealed_end = index.sealed().last().unwrap().end_position();
        let events = store.read_all(0, usize::MAX).unwrap();
        let mut checked = 0;
        for e in &events {
            let id = *e.id.as_bytes();
            if e.position < sealed_end {
                // Named with its own segment's tag, so that a lookup goes
                // to that segment.
                let segment = index
                    .sealed()
                    .iter()
                    .find(|t| (t.first_position()..t.end_position()).contains(&e.position))
                    .unwrap()
                    .segment();
                assert!(
                    filter
                        .tags(crate::index::id_hash::IdKey::get().hash(&id))
                        .has(segment),
                    "id of position {} (segment {segment}) not in the filter",
                    e.position
                );
                checked += 1;
            }
            assert_eq!(index.holds_any_id(&[id]).ok(), Some(true));
            let hit = index.find_ids(&[id]).unwrap()[0].unwrap();
            assert_eq!(hit.position, e.position);
        }
        assert!(checked > 0);
        let fresh: Vec<[u8; 16]> = (0..100)
            .map(|i| *uuid::Uuid::from_u128(next + 1_000_000 + i).as_bytes())
            .collect();
        assert_eq!(index.holds_any_id(&fresh).ok(), Some(false));
        assert!(index.find_ids(&fresh).unwrap().iter().all(Option::is_none));
        next
    }

    fn append_batches(store: &Store, next: &mut u128, batches: usize) {
        for b in 0..batches {
            let events: Vec<EventData> = (0..20)
                .map(|_| {
                    *next += 1;
                    EventData::new("T", vec![b'x'; 100]).with_id(uuid::Uuid::from_u128(*next))
                })
                .collect();
            store
                .append(&format!("s-{}", b % 7), ExpectedVersion::Any, &events)
                .unwrap();
        }
    }

    /// The store-wide id filter is derived data and never answers "no" for
    /// a stored id, and names the segment that holds it: after the first
    /// seals, after more, after a read distrusts a table, after a scavenge
    /// rewrites segments, after a reopen, with a damaged index file rebuilt
    /// from its segment, and with every file operation on the appending
    /// thread.
    #[test]
    fn the_store_wide_id_filter_holds_every_stored_id() {
        for background in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let options = Options::default()
                .segment_size(64 << 10)
                .prepare_segments_ahead(background);
            let mut next = 1u128 << 64;
            {
                let store = Store::open_with(dir.path(), options.clone()).unwrap();
                append_batches(&store, &mut next, 60);
                next = filter_holds_every_id(&store, next);
                let (_, index) = store.parts_for_tests();
                let first = index.read().sealed().len();
                assert!(first >= 2, "{first} sealed tables");
                // Past the filter's capacity (at least 1,024 events in
                // tests), so that it is built again, larger.
                let capacity = index.read().id_filter_covers_all().unwrap().capacity();
                while index.read().sealed().last().unwrap().end_position() <= capacity {
                    append_batches(&store, &mut next, 20);
                }
                next = filter_holds_every_id(&store, next);
                assert!(index.read().id_filter_covers_all().unwrap().capacity() > capacity);
                // A read that distrusts a table throws the filter away;
                // it is built again from the rebuilt table.
                assert!(index.distrust(1));
                assert!(index.read().id_filter_covers_all().is_none());
                next = filter_holds_every_id(&store, next);
                // A scavenge rewrites segments in place of the old ones,
                // under the same numbers: the filter still names each kept
                // id's segment, and the removed ids are found nowhere.
                let gone: Vec<[u8; 16]> = store
                    .read_stream("s-3", 0, usize::MAX)
                    .unwrap()
                    .iter()
                    .map(|e| *e.id.as_bytes())
                    .collect();
                store.delete_stream("s-3", ExpectedVersion::Any).unwrap();
                let report = store.scavenge().unwrap();
                assert!(report.events_removed > 0, "{report:?}");
                next = filter_holds_every_id(&store, next);
                {
                    let index = index.read();
                    assert!(index.find_ids(&gone).unwrap().iter().all(Option::is_none));
                    assert!(!index.holds_any_id(&gone).unwrap());
                }
                store.close().unwrap();
            }
            {
                let store = Store::open_with(dir.path(), options.clone()).unwrap();
                if background {
                    // Built from the open on, before any append.
                    let (_, index) = store.parts_for_tests();
                    let deadline = Instant::now() + std::time::Duration::from_secs(30);
                    while index.read().id_filter_covers_all().is_none() {
                        assert!(Instant::now() < deadline, "no id filter after the open");
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        // The writer takes a finished job at its next
                        // frame, or a lookup does.
                        store.find_event(uuid::Uuid::from_u128(1)).unwrap();
                    }
                }
                next = filter_holds_every_id(&store, next);
                store.close().unwrap();
            }
            // A damaged index file (its body fails its checksum) is rebuilt
            // from the segment, and the filter takes the ids from that.
            let idx = dir.path().join(crate::index::persist::index_file_name(1));
            let mut bytes = std::fs::read(&idx).unwrap();
            let at = bytes.len() - 100;
            bytes[at] ^= 0xff;
            std::fs::write(&idx, &bytes).unwrap();
            let store = Store::open_with(dir.path(), options).unwrap();
            filter_holds_every_id(&store, next);
        }
    }
}
