//! [`Store`]: the public API, a thin layer over recovery, the writer and the
//! index.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Error;
use crate::event::{
    AppendCondition, AppendResult, EventData, EventRef, ExpectedVersion, RecordedEvent,
    StreamAppend,
};
use crate::index::shared::SharedIndex;
use crate::io::{DIR_MODE, FILE_MODE};
use crate::lifecycle::scavenge::ScavengeReport;
use crate::lifecycle::{Op, StreamLimits};
use crate::log::batch::{Batch, check_stream_id};
use crate::log::recovery::{LOCK_FILE, Mode, RecoveryReport, check_listing, recover};
use crate::log::writer::Writer;
use crate::metrics::{Metrics, Recorder};
use crate::options::Options;
use crate::read::borrowed;
use crate::read::commits::Commits;
use crate::read::condition::Conditions;
use crate::read::filter::{Filter, FilteredPage};
use crate::read::follow::{Follower, Tail};
use crate::read::pages::{self, FILTER_SCAN_EVENTS};
use crate::read::subscription::{Source, SubscribeFrom, Subscription};

/// An open event store.
///
/// `Store` is `Send + Sync` and every method takes `&self`: share it between
/// threads as `Arc<Store>`. Appends are serialised (and batched together
/// under load); reads run in parallel with each other and with appends.
///
/// ```
/// use annals::{EventData, ExpectedVersion, Store};
///
/// # fn main() -> Result<(), annals::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path())?;
/// let r = store.append(
///     "order-42",
///     ExpectedVersion::NoStream,
///     &[EventData::new("OrderPlaced", br#"{"total":10}"#.to_vec())],
/// )?;
/// assert_eq!(r.first_version(), 0);
/// let events = store.read_stream("order-42", 0, 100)?;
/// assert_eq!(&*events[0].event_type, "OrderPlaced");
/// store.close()?;
/// # Ok(())
/// # }
/// ```
pub struct Store {
    dir: PathBuf,
    /// The options, with the store's own segment size (which an existing
    /// store keeps whatever the caller asked for).
    options: Options,
    /// Shared with the subscriptions, which may outlive the store.
    index: Arc<SharedIndex>,
    /// Commit notifications for live subscriptions; closed when the store
    /// is.
    commits: Arc<Commits>,
    /// `None` when opened read-only.
    writer: Option<Writer>,
    /// What append conditions are checked with; used under the writer's
    /// lock only.
    conditions: Mutex<Conditions>,
    /// Held for the store's lifetime; closing it releases the lock.
    _lock: Option<File>,
    /// For a read-only store: the first segment's header and how far the
    /// log has been read, for [`Store::refresh`] and the refresher thread.
    follower: Option<Arc<Follower>>,
    /// What the open found and repaired.
    report: RecoveryReport,
    /// Counters since open, for [`Store::metrics`].
    metrics: Arc<Recorder>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(writer) = &self.writer {
            writer.close(&self.index);
        }
        // After the writer: nothing more is committed, and every
        // subscription delivers what was and ends.
        self.commits.close();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("segment_size", &self.options.segment_size)
            .field("read_only", &self.writer.is_none())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir` with default [`Options`], creating the
    /// directory and an empty store if there is none.
    ///
    /// Recovery runs first: every segment is checked, a torn tail left by a
    /// crash is truncated (with a warning), and any other damage is refused
    /// with [`Error::Corruption`], modifying nothing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, Error> {
        Store::open_with(dir, Options::default())
    }

    /// Opens the store in `dir` with `options`; see [`Store::open`].
    ///
    /// Fails with [`Error::Locked`] at once when another `Store` (in this
    /// process or another) has the directory open.
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Store, Error> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        create_dir(&dir, &options)?;
        // A directory holding files that are not annals' is refused before
        // the lock file is created in it, so the refusal changes nothing.
        // (Removing a lock file after a failed open instead would let two
        // writers in: one may already hold the old file open.)
        if !dir.join(LOCK_FILE).exists() {
            check_listing(&dir)?;
        }
        let lock = lock(&dir)?;
        let _span =
            tracing::info_span!("annals.open", dir = %dir.display(), read_only = false).entered();
        let mode = Mode::Writable(options.on_torn_tail, options.segment_size);
        let recovered = recover_timed(&dir, &options, mode)?;
        if recovered.segment_size != options.segment_size {
            tracing::info!(
                dir = %dir.display(),
                segment_size = recovered.segment_size,
                "keeping the existing store's segment size"
            );
        }
        // From here on the store's own segment size is the only one.
        let options = options.segment_size(recovered.segment_size);
        let metrics = Arc::<Recorder>::default();
        let writer = Writer::resume(dir.clone(), &recovered, &options, Arc::clone(&metrics))?;
        let index = Arc::new(SharedIndex::new(recovered.index));
        crate::lifecycle::load(&index)?;
        // Retention set tighter than the store was written with, or a
        // store reopened after its segments aged out: applied before the
        // first append.
        writer.retain_all(&index);
        writer.start_id_filter(&index);
        Ok(Store {
            dir,
            options,
            index,
            commits: Arc::default(),
            writer: Some(writer),
            conditions: Mutex::default(),
            _lock: Some(lock),
            follower: None,
            report: recovered.report,
            metrics,
        })
    }

    /// Opens the store in `dir` for reading only, without taking the lock,
    /// so that another process may have it open for writing.
    ///
    /// Nothing on disk is modified: a torn or unfinished tail (for example
    /// a write the live writer has not finished) ends the log where it
    /// starts. Appends fail with [`Error::ReadOnly`]. The view is the store
    /// as it was at open; [`Store::refresh`] picks up what was appended
    /// since.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Store, Error> {
        Store::open_read_only_with(dir, Options::default())
    }

    /// Opens the store in `dir` for reading only, as
    /// [`Store::open_read_only`], with `options`. Of the options, a
    /// read-only store uses [`Options::follow_interval`] (how often its
    /// subscriptions look for the writer's new events); the limits are the
    /// writer's business, and the segment size is the store's own.
    pub fn open_read_only_with(dir: impl AsRef<Path>, options: Options) -> Result<Store, Error> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        // A live writer may finish one frame and start the next while the
        // scan passes over them, which looks like damage followed by valid
        // data; real damage stays put, so a refusal is confirmed by scanning
        // again.
        let _span =
            tracing::info_span!("annals.open", dir = %dir.display(), read_only = true).entered();
        let mut attempt = 0;
        let recovered = loop {
            match recover_timed(&dir, &options, Mode::ReadOnly) {
                Err(Error::Corruption { .. }) if attempt < 2 => attempt += 1,
                other => break other?,
            }
        };
        let tail = Tail {
            segment: recovered.active,
            offset: recovered.write_offset,
        };
        let follower = Follower::new(dir.clone(), recovered.first_header(), tail);
        let index = Arc::new(SharedIndex::new(recovered.index));
        crate::lifecycle::load(&index)?;
        Ok(Store {
            dir,
            options: options.segment_size(recovered.segment_size),
            follower: Some(Arc::new(follower)),
            index,
            commits: Arc::default(),
            writer: None,
            conditions: Mutex::default(),
            _lock: None,
            report: recovered.report,
            metrics: Arc::default(),
        })
    }

    /// What the open found on disk and what it repaired: a torn tail at
    /// the end of the log (and the positions its frame claimed), segments
    /// whose preparation a crash interrupted. See [`RecoveryReport`] for
    /// why a reader holding a checkpoint should look.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// For a store opened with [`Store::open_read_only`]: picks up the
    /// events appended since the last open or refresh, and returns how many.
    /// A store opened for writing is always current, and returns 0.
    ///
    /// A batch appears whole or not at all. A batch its writer has written
    /// but not yet synced may appear a moment before the writer's `append`
    /// returns; if the machine then loses power, that batch may be gone
    /// after the writer recovers.
    pub fn refresh(&self) -> Result<u64, Error> {
        match &self.follower {
            Some(follower) => follower.refresh(&self.index, &self.commits),
            None => Ok(0),
        }
    }

    /// Appends `events` to `stream` as one atomic batch, if the stream's
    /// version passes `expected`; returns once the batch is on stable
    /// storage.
    ///
    /// The batch is all or nothing, on disk and to readers. A failed check
    /// returns [`Error::WrongExpectedVersion`] and writes nothing; an empty
    /// batch checks and writes nothing. Invalid arguments are refused before
    /// anything is written (see [`Error`]). After a failed write or sync,
    /// this and every later append returns an error ([`Error::Io`], then
    /// [`Error::Poisoned`]) until the store is reopened.
    ///
    /// Event ids are unique across the store, so a retried append never
    /// writes twice. Before the expected-version check, the batch's ids
    /// (given with [`EventData::with_id`], or generated) are looked up:
    ///
    /// 1. If every id is already stored as consecutive events of `stream`,
    ///    in the batch's order, starting at version `n + 1` for
    ///    `Exact(n)`, at version 0 for `NoStream`, anywhere for `Any` and
    ///    `StreamExists`, the append writes nothing and returns the
    ///    original versions and positions with
    ///    [`AppendResult::deduplicated`] set.
    /// 2. Otherwise, if any id is stored anywhere (another stream, another
    ///    place in `stream`, only part of the batch), or appears twice in
    ///    the batch, it fails with [`Error::DuplicateEventId`] and writes
    ///    nothing.
    /// 3. Otherwise the expected-version check runs.
    ///
    /// Concurrent appends of the same ids are checked one after the other
    /// under the writer's lock: exactly one writes.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path())?;
    /// let batch = [EventData::new("Placed", b"{}".to_vec()).with_id(uuid::Uuid::now_v7())];
    /// let first = store.append("order-42", ExpectedVersion::NoStream, &batch)?;
    /// // The acknowledgement was lost; the client retries.
    /// let again = store.append("order-42", ExpectedVersion::NoStream, &batch)?;
    /// assert!(again.deduplicated && !first.deduplicated);
    /// assert_eq!((again.versions, again.positions), (first.versions, first.positions));
    /// assert_eq!(store.global_position(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult, Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let batch = Batch::new(&self.options, stream, expected, events)?;
        let mut results = self.commit(writer, batch)?;
        results.pop().ok_or(Error::Poisoned)
    }

    /// Appends to several streams at once, all or nothing: one batch, one
    /// commit frame, one result per part in the order given.
    ///
    /// Every part's expected version is checked; if one fails, the call
    /// fails with that part's [`Error::WrongExpectedVersion`] (naming its
    /// stream) and nothing is written. The parts' events get consecutive
    /// positions in the order given. After a crash, all of them are there
    /// or none. Readers and subscriptions see all of them or none.
    ///
    /// The same stream twice is refused with [`Error::DuplicateStream`].
    /// Every part's events count against
    /// [`Options::max_batch_events`] together, and all of them must fit in
    /// one segment ([`Error::LimitExceeded`] with
    /// [`Limit::BatchSize`](crate::Limit::BatchSize) otherwise). A part with
    /// no events checks its stream's version and writes nothing; its
    /// result is empty.
    ///
    /// Event ids are checked for the whole call, part by part, as
    /// [`Store::append`] checks them: the call is a retry (every part's
    /// original result, each `deduplicated`, nothing written) only when
    /// every part with events is one; any other reuse of a stored id, or an
    /// id given twice in the call, fails with [`Error::DuplicateEventId`].
    /// The result of a retried part with no events is empty, at the
    /// stream's next version now.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, StreamAppend, Store};
    ///
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// let results = store.append_multi(&[
    ///     StreamAppend::new("order-42", ExpectedVersion::NoStream, vec![EventData::new("OrderShipped", b"{}".to_vec())]),
    ///     StreamAppend::new("stock-7", ExpectedVersion::Any, vec![EventData::new("StockReserved", b"{}".to_vec())]),
    /// ])?;
    /// assert_eq!(results.len(), 2);
    /// assert_eq!(results[1].first_position(), results[0].first_position() + 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn append_multi(&self, parts: &[StreamAppend]) -> Result<Vec<AppendResult>, Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let batch = Batch::multi(&self.options, parts)?;
        self.commit(writer, batch)
    }

    /// Appends `events` to `stream` (with any expected version) if no event
    /// passing the condition's filter was appended after its position;
    /// with no position, if no such event exists at all.
    ///
    /// The check and the write happen under the writer's lock: two
    /// conditional appends that would each pass alone cannot both succeed
    /// when the first one's events match the second one's filter. A failed
    /// condition returns [`Error::AppendConditionFailed`] naming the first
    /// matching event after the position, and writes nothing. A position at
    /// or past [`Store::global_position`] is refused with
    /// [`Error::CheckpointAhead`]. What the check reads (it does not scan
    /// the log from the position when the filter is selective) is set out
    /// in PERFORMANCE.md and in [`AppendCondition`]'s module.
    ///
    /// ```
    /// use annals::{AppendCondition, Error, EventData, Filter, Store};
    ///
    /// # fn main() -> Result<(), Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// let seat_12a = || Filter::event_types(["SeatReserved", "SeatReleased"]).and(Filter::stream_prefix("seat-12A"));
    /// // Nothing about the seat was ever appended: reserve it.
    /// let first = AppendCondition::new(seat_12a(), None);
    /// store.append_if(&first, "seat-12A", &[EventData::new("SeatReserved", b"{}".to_vec())])?;
    /// // A second caller that decided on the same (empty) history is refused.
    /// let again = store.append_if(&first, "seat-12A", &[EventData::new("SeatReserved", b"{}".to_vec())]);
    /// assert!(matches!(again, Err(Error::AppendConditionFailed { position: 0 })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn append_if(
        &self,
        condition: &AppendCondition,
        stream: &str,
        events: &[EventData],
    ) -> Result<AppendResult, Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let batch = Batch::new(&self.options, stream, ExpectedVersion::Any, events)?
            .on_condition(condition)?;
        let mut results = self.commit(writer, batch)?;
        results.pop().ok_or(Error::Poisoned)
    }

    /// [`Store::append_multi`] on a condition, as [`Store::append_if`]
    /// checks it: a decision spanning several streams, made on a query.
    /// The condition is checked first, then every part's expected version.
    pub fn append_multi_if(
        &self,
        condition: &AppendCondition,
        parts: &[StreamAppend],
    ) -> Result<Vec<AppendResult>, Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let batch = Batch::multi(&self.options, parts)?.on_condition(condition)?;
        self.commit(writer, batch)
    }

    /// Commits `batch` and wakes the live subscriptions if it wrote.
    fn commit(&self, writer: &Writer, batch: Batch) -> Result<Vec<AppendResult>, Error> {
        let wrote = batch.len() > 0;
        let check =
            |condition: &AppendCondition| self.conditions.lock().check(&self.index, condition);
        let bytes = batch.encoded.len() as u64;
        let results = writer.append(batch, &self.index, &check)?;
        // The batch is in the index: wake the live subscriptions. Never
        // waits for a subscriber.
        let deduplicated = results.iter().any(|r| r.deduplicated);
        if deduplicated {
            self.metrics.deduplicated();
        } else if wrote {
            self.commits.notify();
            let events = results.iter().map(|r| r.positions.end - r.positions.start);
            self.metrics.appended(events.sum(), bytes);
        }
        Ok(results)
    }

    /// Reads up to `max_count` events of `stream`, from version
    /// `from_version` on, in version order.
    ///
    /// Fails with [`Error::StreamNotFound`] when the stream has no events
    /// (or none since it was soft-deleted), [`Error::StreamDeleted`] when
    /// it was tombstoned; returns an empty `Vec` when `from_version` is
    /// past its end. Versions removed by truncation or the stream's limits
    /// are skipped.
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.counted(pages::stream(&self.index, stream, from_version, max_count))
    }

    /// Reads up to `max_count` events of the global log, from position
    /// `from_position` on, in position order. Returns an empty `Vec` past the
    /// end, and only there.
    ///
    /// Positions are strictly increasing, and dense until events are
    /// removed: gaps appear only where events were removed (a deleted,
    /// tombstoned or truncated stream, a stream's limits) and where the
    /// log holds a control record (one per lifecycle call, which is no
    /// event). A page goes on past removed events until it holds
    /// `max_count` or reaches the end, so page with the last position
    /// read + 1.
    pub fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.counted(pages::all(&self.index, from_position, max_count))
    }

    /// Hands up to `max_count` events of `stream`, from version
    /// `from_version` on, to `f` in version order, borrowed from the
    /// segment maps; returns how many. The same events and errors as
    /// [`read_stream`](Store::read_stream), for a caller that folds events
    /// into state and keeps none of them: no event is allocated or
    /// reference-counted. `f` runs with no lock held; the [`EventRef`] it
    /// gets lives for the call (copy out what you keep, or use
    /// [`EventRef::to_recorded`]). Should a record fail its checks part way
    /// through, `f` has seen the events before it, each once, and the call
    /// returns the error.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path())?;
    /// # store.append("cart-1", ExpectedVersion::Any, &[EventData::new("Added", b"3".to_vec()), EventData::new("Added", b"4".to_vec())])?;
    /// let mut items = 0u64;
    /// let read = store.read_stream_with("cart-1", 0, 1000, |e| {
    ///     if e.event_type == "Added" {
    ///         items += std::str::from_utf8(e.data).unwrap().parse::<u64>().unwrap();
    ///     }
    /// })?;
    /// assert_eq!((read, items), (2, 7));
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_stream_with(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
        mut f: impl FnMut(EventRef<'_>),
    ) -> Result<usize, Error> {
        let read = borrowed::stream(&self.index, stream, from_version, max_count, &mut f)?;
        self.metrics.read(read);
        Ok(read)
    }

    /// Hands up to `max_count` events of the global log, from position
    /// `from_position` on, to `f` in position order, borrowed from the
    /// segment maps; returns how many. The same events as
    /// [`read_all`](Store::read_all) (page on from the last position `f`
    /// saw + 1), with [`read_stream_with`](Store::read_stream_with)'s
    /// terms: nothing allocated per event, `f` called with no lock held.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path())?;
    /// # for s in ["a", "b", "a"] { store.append(s, ExpectedVersion::Any, &[EventData::new("T", b"xy".to_vec())])?; }
    /// let (mut bytes, mut next) = (0, 0);
    /// while store.read_all_with(next, 1000, |e| {
    ///     bytes += e.data.len();
    ///     next = e.position + 1;
    /// })? > 0 {}
    /// assert_eq!(bytes, 6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_all_with(
        &self,
        from_position: u64,
        max_count: usize,
        mut f: impl FnMut(EventRef<'_>),
    ) -> Result<usize, Error> {
        let read = borrowed::all(&self.index, from_position, max_count, &mut f)?;
        self.metrics.read(read);
        Ok(read)
    }

    /// Reads up to `max_count` events of `stream`, newest first: versions
    /// descending from `from_version`. A `from_version` of `u64::MAX`, or
    /// any past the stream's end, starts at its last event.
    ///
    /// Fails with [`Error::StreamNotFound`] when the stream has no events.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path())?;
    /// # for i in 0..20 { store.append("order-42", ExpectedVersion::Any, &[EventData::new("Tick", vec![i])])?; }
    /// let last10 = store.read_stream_backward("order-42", u64::MAX, 10)?;
    /// assert_eq!(last10.first().map(|e| e.version), Some(19));
    /// assert_eq!(last10.last().map(|e| e.version), Some(10));
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_stream_backward(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.counted(pages::stream_backward(
            &self.index,
            stream,
            from_version,
            max_count,
        ))
    }

    /// Reads up to `max_count` events of the global log, newest first:
    /// positions descending from `from_position`. A `from_position` of
    /// `u64::MAX`, or any past the end, starts at the last event; an empty
    /// store gives an empty `Vec`.
    pub fn read_all_backward(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.counted(pages::all_backward(&self.index, from_position, max_count))
    }

    /// Reads up to `max_count` events of the global log that pass
    /// `filter`, in position order, from `from_position` on.
    ///
    /// One call examines at most `max_count` or
    /// [`FILTER_SCAN_EVENTS`](crate::FILTER_SCAN_EVENTS) events, whichever
    /// is more, so a filter that matches rarely returns few or no events;
    /// [`FilteredPage::next_position`] says where the next page starts,
    /// past every event examined. The end of the log is reached when
    /// `next_position` equals [`Store::global_position`]. A filter with too
    /// many terms is refused with [`Error::LimitExceeded`].
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Filter, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path())?;
    /// store.append("order-1", ExpectedVersion::Any, &[EventData::new("OrderPlaced", vec![])])?;
    /// store.append("user-1", ExpectedVersion::Any, &[EventData::new("UserJoined", vec![])])?;
    /// let f = Filter::stream_prefix("order-");
    /// let mut from = 0;
    /// loop {
    ///     let page = store.read_all_filtered(from, 1000, &f)?;
    ///     for e in &page.events {
    ///         assert!(e.stream_id.starts_with("order-"));
    ///     }
    ///     if page.next_position == store.global_position() {
    ///         break;
    ///     }
    ///     from = page.next_position;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_all_filtered(
        &self,
        from_position: u64,
        max_count: usize,
        filter: &Filter,
    ) -> Result<FilteredPage, Error> {
        let max_examined = max_count.max(FILTER_SCAN_EVENTS);
        let page = pages::filtered(&self.index, from_position, max_count, max_examined, filter)?;
        self.metrics.read(page.events.len());
        Ok(page)
    }

    /// Subscribes to the global log: every event from `from` on (those that
    /// pass `filter`, if one is given), then
    /// [`SubscriptionItem::CaughtUp`](crate::SubscriptionItem::CaughtUp),
    /// then each event as it is committed. See [`Subscription`].
    ///
    /// `SubscribeFrom::After(p)` delivers from position `p + 1`; a `p` at
    /// or past [`Store::global_position`] is refused with
    /// [`Error::CheckpointAhead`], naming both numbers. A filtered
    /// subscription sends a
    /// [`Checkpoint`](crate::SubscriptionItem::Checkpoint) at least every
    /// [`CHECKPOINT_EVENTS`](crate::CHECKPOINT_EVENTS) events examined
    /// without a match, and before `CaughtUp`.
    ///
    /// On a read-only store, a thread (one per store) refreshes it every
    /// [`Options::follow_interval`] while it has subscriptions.
    pub fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: Option<Filter>,
    ) -> Result<Subscription, Error> {
        self.refresh()?;
        let end = self.global_position();
        let subscription = Subscription::all(self.source(), end, from, filter)?;
        self.start_refresher()?;
        Ok(subscription)
    }

    /// Subscribes to one stream, which need not exist yet: every event from
    /// `from` on, in version order, then
    /// [`SubscriptionItem::CaughtUp`](crate::SubscriptionItem::CaughtUp),
    /// then each event as it is committed.
    ///
    /// `SubscribeFrom::After(v)` counts versions: it delivers from version
    /// `v + 1`, and a `v` at or past the stream's next version is refused
    /// with [`Error::CheckpointAhead`]. An invalid stream id is refused as
    /// an append would refuse it.
    pub fn subscribe_stream(
        &self,
        stream: &str,
        from: SubscribeFrom,
    ) -> Result<Subscription, Error> {
        check_stream_id(&self.options, stream)?;
        self.refresh()?;
        let end = self.stream_version(stream).map_or(0, |v| v + 1);
        let subscription = Subscription::stream(self.source(), stream, end, from)?;
        self.start_refresher()?;
        Ok(subscription)
    }

    /// The shared handles a subscription reads through.
    fn source(&self) -> Source {
        Source {
            index: Arc::clone(&self.index),
            commits: Arc::clone(&self.commits),
            follower: self.follower.clone(),
        }
    }

    /// On a read-only store, makes sure its refresher thread runs.
    fn start_refresher(&self) -> Result<(), Error> {
        match &self.follower {
            Some(f) => f.start_refresher(&self.index, &self.commits, self.options.follow_interval),
            None => Ok(()),
        }
    }

    /// The event with id `id`, `None` when the store holds none.
    ///
    /// Event ids are unique across the store (see [`append`](Store::append)),
    /// so this is one event. A fresh id costs one in-memory filter test per
    /// sealed segment; a stored one, a binary search of one segment's id
    /// table and the read of its record, whose id is checked.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path())?;
    /// let id = uuid::Uuid::now_v7();
    /// store.append("order-42", ExpectedVersion::Any, &[EventData::new("Placed", b"{}".to_vec()).with_id(id)])?;
    /// let found = store.find_event(id)?.expect("stored");
    /// assert_eq!((&*found.stream_id, found.version), ("order-42", 0));
    /// assert!(store.find_event(uuid::Uuid::now_v7())?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn find_event(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, Error> {
        if let Some(writer) = &self.writer {
            // The store-wide id filter built since the open, if no append
            // has taken it yet.
            writer.poll_id_filter(&self.index);
        }
        let found = crate::read::ids::find_event(&self.index, id)?;
        self.metrics.read(usize::from(found.is_some()));
        Ok(found)
    }

    /// Counts a read that returned `events`.
    fn counted(
        &self,
        events: Result<Vec<RecordedEvent>, Error>,
    ) -> Result<Vec<RecordedEvent>, Error> {
        if let Ok(events) = &events {
            self.metrics.read(events.len());
        }
        events
    }

    /// What the store has done since it was opened (appends, commits,
    /// `fdatasync` latency, reads, rotations) and what it takes on disk
    /// now. Always on: the counters are atomics. See [`Metrics`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = annals::Store::open(dir.path())?;
    /// store.append("s", annals::ExpectedVersion::Any, &[annals::EventData::new("T", b"x".to_vec())])?;
    /// let m = store.metrics();
    /// assert_eq!((m.appends, m.events_appended, m.fsyncs), (1, 1, 1));
    /// # Ok::<(), annals::Error>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        let segments = self.stats().segments;
        self.metrics.snapshot(segments, bytes_on_disk(&self.dir))
    }

    /// Soft-deletes `stream`: it reads as missing at once
    /// ([`Error::StreamNotFound`] from [`read_stream`](Store::read_stream),
    /// `None` from [`stream_version`](Store::stream_version)), and its
    /// events leave every read, `$all` included. An append with
    /// [`ExpectedVersion::NoStream`] or `Any` starts it again, at the
    /// version after its last one: versions are never reused. The deleted
    /// events stay on disk until a [`scavenge`](Store::scavenge).
    ///
    /// `expected` is checked as an append checks it
    /// ([`Error::WrongExpectedVersion`], nothing written). Deleting a
    /// stream with no events writes nothing; a tombstoned one is
    /// [`Error::StreamDeleted`]. Durable and atomic like an append: one
    /// control record in the log (see FORMAT.md).
    ///
    /// ```
    /// use annals::{EventData, Error, ExpectedVersion, Store};
    ///
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// store.append("cart-1", ExpectedVersion::NoStream, &[EventData::new("Added", b"{}".to_vec())])?;
    /// store.delete_stream("cart-1", ExpectedVersion::Exact(0))?;
    /// assert!(matches!(store.read_stream("cart-1", 0, 10), Err(Error::StreamNotFound { .. })));
    /// assert_eq!(store.stream_version("cart-1"), None);
    /// let again = store.append("cart-1", ExpectedVersion::NoStream, &[EventData::new("Added", b"{}".to_vec())])?;
    /// assert_eq!(again.versions, 1..2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete_stream(&self, stream: &str, expected: ExpectedVersion) -> Result<(), Error> {
        self.lifecycle(stream, Some(expected), Op::Delete)
    }

    /// Deletes `stream` for good: every later read of it, append to it and
    /// lifecycle call on it fails with [`Error::StreamDeleted`], across
    /// reopens and scavenges; [`stream_version`](Store::stream_version) is
    /// `None`. Its events leave every read at once. `expected` is checked
    /// as an append checks it. A stream with no events may be tombstoned,
    /// which keeps its name from use.
    ///
    /// ```
    /// use annals::{EventData, Error, ExpectedVersion, Store};
    ///
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// store.append("user-7", ExpectedVersion::Any, &[EventData::new("Registered", b"{}".to_vec())])?;
    /// store.tombstone_stream("user-7", ExpectedVersion::Any)?;
    /// let append = store.append("user-7", ExpectedVersion::Any, &[EventData::new("Registered", b"{}".to_vec())]);
    /// assert!(matches!(append, Err(Error::StreamDeleted { .. })));
    /// assert!(store.read_all(0, 10)?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn tombstone_stream(&self, stream: &str, expected: ExpectedVersion) -> Result<(), Error> {
        self.lifecycle(stream, Some(expected), Op::Tombstone)
    }

    /// Removes the versions of `stream` below `before` from every read, at
    /// once; the stream and its version are unchanged, and later events
    /// are read as usual. A bound at or below the current one changes
    /// nothing and writes nothing. A tombstoned stream is
    /// [`Error::StreamDeleted`].
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// let events: Vec<_> = (0..4u8).map(|i| EventData::new("Tick", vec![i])).collect();
    /// store.append("clock", ExpectedVersion::Any, &events)?;
    /// store.truncate_stream_before("clock", 3)?;
    /// assert_eq!(store.read_stream("clock", 0, 10)?.len(), 1);
    /// assert_eq!(store.stream_version("clock"), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn truncate_stream_before(&self, stream: &str, before: u64) -> Result<(), Error> {
        self.lifecycle(stream, None, Op::TruncateBefore(before))
    }

    /// Sets the limits of `stream` (see [`StreamLimits`], which has an
    /// example), replacing any set before; `StreamLimits::default()`
    /// removes them. They apply to every read at once. A zero count or age
    /// is [`Error::InvalidLimits`]; a tombstoned stream is
    /// [`Error::StreamDeleted`].
    pub fn set_stream_limits(&self, stream: &str, limits: StreamLimits) -> Result<(), Error> {
        let (max_count, max_age_us) = limits.checked()?;
        self.lifecycle(
            stream,
            None,
            Op::Limits {
                max_count,
                max_age_us,
            },
        )
    }

    /// Removes for good what no read can return any more: the events of
    /// deleted, tombstoned and truncated streams, those past a stream's
    /// limits (which become a truncation, so that lifting the limits later
    /// does not bring back what is gone), and superseded control records.
    /// A truncated stream keeps its last event on disk (still hidden), so
    /// that its versions are never given out again.
    /// Their data, metadata, event type and stream id are then in no file
    /// of the store.
    ///
    /// The active segment is sealed first, so nothing is left behind in
    /// it. Each sealed segment holding a removed record is written anew
    /// (synced, renamed over the old file, the directory synced), with a
    /// small gap record in place of each removed one, so positions keep
    /// their numbers; its index file is written again. Appends and reads go
    /// on meanwhile: a reader in the middle of a page keeps reading the old
    /// file, whose space is freed when it lets go. Crash-safe at every step
    /// (FORMAT.md, "Scavenge"). Costs a read of every sealed segment.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// store.append("user-7", ExpectedVersion::Any, &[EventData::new("Registered", b"{\"email\":\"a@b\"}".to_vec())])?;
    /// store.append("user-8", ExpectedVersion::Any, &[EventData::new("Registered", b"{}".to_vec())])?;
    /// store.tombstone_stream("user-7", ExpectedVersion::Any)?;
    /// let report = store.scavenge()?;
    /// assert_eq!(report.events_removed, 1);
    /// assert_eq!(store.read_all(0, 10)?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn scavenge(&self) -> Result<ScavengeReport, Error> {
        self.scavenge_with_progress(&mut |_, _| {})
    }

    /// [`scavenge`](Store::scavenge), calling `progress(done, total)` with
    /// the sealed segments done and to do as it goes.
    pub fn scavenge_with_progress(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ScavengeReport, Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let span = tracing::info_span!(
            "annals.scavenge",
            segments_rewritten = tracing::field::Empty,
            events_removed = tracing::field::Empty,
            bytes_reclaimed = tracing::field::Empty,
            duration_us = tracing::field::Empty,
        );
        let _entered = span.enter();
        let started = std::time::Instant::now();
        let report = crate::lifecycle::scavenge::run(
            &self.dir,
            &self.options.io,
            writer,
            &self.index,
            progress,
        )?;
        span.record("segments_rewritten", report.segments_rewritten);
        span.record("events_removed", report.events_removed);
        span.record("bytes_reclaimed", report.bytes_reclaimed);
        span.record("duration_us", started.elapsed().as_micros() as u64);
        self.commits.notify();
        Ok(report)
    }

    /// What a [`scavenge`](Store::scavenge) would remove now, counted with
    /// no write: every record no read returns, in every segment (the
    /// active one included, which a scavenge seals first). Reads every
    /// segment; works on a read-only store.
    pub fn reclaimable(&self) -> Result<ScavengeReport, Error> {
        crate::lifecycle::scavenge::reclaimable(&self.index)
    }

    /// Checks `stream` and commits the lifecycle call `op` on it.
    fn lifecycle(
        &self,
        stream: &str,
        expected: Option<ExpectedVersion>,
        op: Op,
    ) -> Result<(), Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        check_stream_id(&self.options, stream)?;
        writer.control(&self.index, stream, expected, op)?;
        self.commits.notify();
        Ok(())
    }

    /// The last version of `stream`, `None` when it has no events.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        self.index.read().stream_version(stream)
    }

    /// Up to `max` streams (at most [`MAX_STREAMS_PAGE`](crate::MAX_STREAMS_PAGE))
    /// whose ids sort after `from` (from the first, for `None`), in byte
    /// order of their ids, with their last versions and event counts. Pass
    /// the last id of a page as the next page's `from`; an empty page is
    /// the end. Costs one pass over the streams, never a copy of them.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path())?;
    /// for s in ["b", "a", "c"] {
    ///     store.append(s, ExpectedVersion::Any, &[EventData::new("T", vec![])])?;
    /// }
    /// let page = store.streams(None, 2);
    /// assert_eq!(page.iter().map(|s| &*s.stream_id).collect::<Vec<_>>(), ["a", "b"]);
    /// let next = store.streams(Some(&page[1].stream_id), 2);
    /// assert_eq!(&*next[0].stream_id, "c");
    /// # Ok(())
    /// # }
    /// ```
    pub fn streams(&self, from: Option<&str>, max: usize) -> Vec<crate::StreamInfo> {
        crate::read::streams::page(&self.index.read(), from, max)
    }

    /// The position the next event will get: how many events (and control
    /// records) the log has ever held. It never moves backwards, not even
    /// when events are removed.
    pub fn global_position(&self) -> u64 {
        self.index.read().len()
    }

    /// Syncs the active segment again. Appends are already durable when
    /// they return; this is for callers that want to be sure nothing is
    /// outstanding, and reports a poisoned store.
    pub fn sync(&self) -> Result<(), Error> {
        match &self.writer {
            Some(writer) => writer.sync(),
            None => Ok(()),
        }
    }

    /// Closes the store, releasing the directory lock. Reports a store
    /// poisoned by an earlier failure; dropping the store instead is fine
    /// and loses nothing acknowledged.
    pub fn close(self) -> Result<(), Error> {
        self.sync()?;
        if let Some(writer) = &self.writer {
            writer.close(&self.index);
        }
        Ok(())
    }

    /// Backs the store up into the directory `dest`, while appends go on:
    /// a copy holding every event acknowledged up to a moment during the
    /// call (whole batches only), that opens and verifies as a store.
    ///
    /// `dest` must be missing (it is created), empty, or an earlier backup;
    /// an earlier backup of this store is brought up to date copying only
    /// what changed (see [`BackupReport`](crate::BackupReport)). A
    /// destination that is a file, this store or inside it, or a directory
    /// holding anything else is refused with [`Error::BackupDestination`],
    /// changing nothing; one that another process has open for writing, or
    /// backs up into, with [`Error::Locked`]. A crash or failure part way
    /// leaves the earlier backup, or a directory that does not open as a
    /// store (it holds the marker `BACKUP-INCOMPLETE`) until a later backup
    /// into it completes. Sealed segments are copied, never hard-linked.
    /// The design and its reasons are in the [`backup`](crate::backup)
    /// module.
    ///
    /// On a store opened with [`Store::open_read_only`], the store is
    /// [refreshed](Store::refresh) first and the backup holds what it sees.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let backups = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// store.append("order-42", ExpectedVersion::Any, &[EventData::new("Placed", b"{}".to_vec())])?;
    /// let dest = backups.path().join("nightly");
    /// let first = store.backup(&dest)?;
    /// assert_eq!(first.events, 1);
    /// // Nothing changed since: nothing is copied again.
    /// let again = store.backup(&dest)?;
    /// assert_eq!((again.bytes_copied, again.segments_unchanged), (0, 1));
    /// let copy = Store::open_read_only(&dest)?;
    /// assert_eq!(copy.read_all(0, 10)?, store.read_all(0, 10)?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<crate::BackupReport, Error> {
        self.refresh()?;
        crate::backup::backup(&self.dir, &self.index, &self.options, dest.as_ref())
    }

    /// Commits a replication import's batches (see
    /// [`crate::replication::import`]) through the writer, and wakes the
    /// live subscriptions.
    pub(crate) fn import_batches(
        &self,
        batches: Vec<Batch>,
        first_position: u64,
    ) -> Result<(), Error> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let bytes = batches.iter().map(|b| b.encoded.len() as u64).sum();
        let results = writer.import(batches, first_position, &self.index)?;
        let events: u64 = results
            .iter()
            .map(|r| r.positions.end - r.positions.start)
            .sum();
        if events > 0 {
            self.commits.notify();
            self.metrics.appended(events, bytes);
        }
        Ok(())
    }

    /// The writer and the index, for tests that drive a commit group
    /// directly.
    #[cfg(test)]
    pub(crate) fn parts_for_tests(&self) -> (&Writer, &SharedIndex) {
        (self.writer.as_ref().expect("a writable store"), &self.index)
    }

    /// The index, for the replication read ([`crate::replication::read_log`]).
    pub(crate) fn index(&self) -> &SharedIndex {
        &self.index
    }

    /// The options in force, with the store's own segment size.
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Recovers the store in `dir` inside an `annals.recover` span that
/// records how long it took and what it found.
fn recover_timed(
    dir: &Path,
    options: &Options,
    mode: Mode,
) -> Result<crate::log::recovery::Recovered, Error> {
    let span = tracing::info_span!(
        "annals.recover",
        events = tracing::field::Empty,
        segments = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    );
    let _entered = span.enter();
    let started = std::time::Instant::now();
    let recovered = recover(dir, &*options.io, mode)?;
    span.record("events", recovered.index.len());
    span.record("segments", recovered.index.segments().len() as u64);
    span.record("duration_us", started.elapsed().as_micros() as u64);
    tracing::debug!("recovered");
    Ok(recovered)
}

/// The bytes the files directly in `dir` take on disk (allocated blocks,
/// 512 bytes each as `stat` counts them); files that vanish while they are
/// counted, or cannot be read, count nothing.
fn bytes_on_disk(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.blocks().saturating_mul(512))
        .fold(0u64, u64::saturating_add)
}

/// Creates the data directory (mode 0700) if it is missing, with any
/// missing directories above it, and makes every directory it created
/// durable: each new directory is synced, and so is the parent of the
/// topmost new one, whose entry for it would otherwise be lost in a crash.
pub(crate) fn create_dir(dir: &Path, options: &Options) -> Result<(), Error> {
    // The data directory itself may be a symlink (to another disk, say);
    // the files inside it may not.
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => return Err(not_a_directory(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
                reason: "cannot be created: a part of the path is a file".to_owned(),
            });
        }
        Err(e) => return Err(Error::io("inspect data directory", dir, e)),
    }
    let missing = missing_ancestors(dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| Error::io("create data directory", dir, e))?;
    // Deepest first, so that each directory's own entries are durable
    // before the entry that names it is.
    let topmost_parent = missing.last().map(|top| non_empty_parent(top));
    for created in missing.iter().map(PathBuf::as_path).chain(topmost_parent) {
        options
            .io
            .sync_dir(created)
            .map_err(|e| Error::io("sync new directory", created, e))?;
    }
    Ok(())
}

/// `dir` and those of its ancestors that do not exist, deepest first.
fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    let mut at = dir;
    loop {
        // `symlink_metadata`, so that a dangling symlink counts as existing:
        // creating through it fails, and nothing was created to sync.
        match std::fs::symlink_metadata(at) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => break,
        }
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    missing
}

/// The parent of `path`, with `.` standing for the parent of a relative
/// path of one component.
fn non_empty_parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The refusal of a data path that exists but is not a directory.
fn not_a_directory(dir: &Path) -> Error {
    Error::NotAStore {
        path: dir.to_path_buf(),
        reason: "is a file, not a directory".to_owned(),
    }
}

/// Takes the exclusive lock on the directory, at once or not at all.
pub(crate) fn lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join(LOCK_FILE);
    // Opening a symlink would create or lock a file outside the data
    // directory: refuse it, as any other stranger in the directory.
    if let Ok(meta) = std::fs::symlink_metadata(&path)
        && !meta.is_file()
    {
        return Err(Error::corruption(
            &path,
            0,
            "the lock file is not a regular file (a symlink or a directory?)",
        ));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Locked { path }),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

/// A summary of a store, from [`Store::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events in the store.
    pub events: u64,
    /// Streams with at least one event.
    pub streams: u64,
    /// Segment files holding events (at least 1); a segment prepared ahead
    /// of need is not counted.
    pub segments: u64,
    /// The size of each segment file in bytes.
    pub segment_size: u64,
    /// Bytes of segment files holding committed data (headers included).
    pub bytes_used: u64,
    /// The on-disk format version of the newest segment (2 for segments
    /// this build creates; a store written by an older build keeps its
    /// version-1 segments, which this build reads as they are).
    pub format_version: u32,
    /// Bytes of the sealed segments' indexes (their files, mapped).
    pub index_file_bytes: u64,
    /// Bytes of memory the active segment's event-by-event index takes,
    /// in each of the copies that let readers and the writer work without
    /// waiting for each other (the second is made at the first change, an
    /// append say, after an open); the only index memory that grows with
    /// events.
    pub active_index_bytes: u64,
    /// The number of the log's first segment: 0, or later once `$all`
    /// retention ([`Options::retain_bytes`]) dropped the oldest.
    pub first_segment: u64,
    /// The position the log starts at: 0, or the first position of the
    /// first segment left after retention.
    pub first_position: u64,
}

impl Store {
    /// Counts of events, streams, segments and bytes.
    pub fn stats(&self) -> Stats {
        let copies = self.index.copies();
        let index = self.index.read();
        // Deferred segments loaded first, so that their sizes are known (a
        // segment that fails its checks counts as holding nothing here;
        // reads name it).
        let _ = index.load_all();
        // Segments holding events, and segment 0 of an empty store; a
        // segment prepared ahead of need is not counted, whether this store
        // has found it on disk yet or not.
        let in_use: Vec<_> = index
            .segments()
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == 0 || s.committed_len() > crate::format::SEGMENT_HEADER_LEN)
            .map(|(_, s)| s.committed_len() as u64)
            .collect();
        Stats {
            events: index.len(),
            streams: index.stream_count() as u64,
            segments: in_use.len() as u64,
            segment_size: self.options.segment_size,
            bytes_used: in_use.iter().sum(),
            format_version: index
                .segments()
                .last()
                .map_or(crate::format::FORMAT_VERSION, |s| s.format_version()),
            index_file_bytes: index
                .sealed()
                .iter()
                .map(|t| t.bytes().map_or(0, |b| b.len() as u64))
                .sum(),
            // The copies hold the same entries (one may lag by a few
            // frames): the one read here times how many there are.
            active_index_bytes: (copies * index.active_bytes()) as u64,
            first_segment: u64::from(index.first_segment()),
            first_position: index.start_position(),
        }
    }

    /// The `n` streams with the most events, largest first, with their
    /// event counts.
    pub fn largest_streams(&self, n: usize) -> Vec<(std::sync::Arc<str>, u64)> {
        let index = self.index.read();
        let mut all: Vec<_> = index
            .stream_lengths()
            .filter(|(name, _)| !crate::lifecycle::is_reserved(name))
            .map(|(name, len)| (std::sync::Arc::clone(name), len))
            .collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}
