//! [`AnnalsEventRepository`]: cqrs-es's `PersistedEventRepository` on an
//! annals store.

use std::sync::Arc;

use annals::{ExpectedVersion, Store};
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayFeed, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use serde_json::Value;

use crate::error::{DecodeError, from_annals, from_join, invalid};
use crate::naming::{aggregate_stream, aggregate_type_prefix, snapshot_stream};
use crate::record::{SnapshotMeta, decode_event, decode_snapshot, encode_event, encode_snapshot};

/// How many events a [`ReplayStream`] buffers by default.
pub const DEFAULT_STREAMING_CHANNEL_SIZE: usize = 200;

/// How many events one read of the store returns by default.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// A cqrs-es event repository that keeps events, snapshots and nothing
/// else in an annals [`Store`].
///
/// Each aggregate instance is one annals stream (see [`crate::naming`]);
/// cqrs-es sequence `n` is stream version `n - 1`. A commit appends its
/// events with the expected version that its first sequence implies
/// (`NoStream` for sequence 1, `Exact(n - 2)` for sequence `n`), so a
/// conflicting commit fails with
/// [`PersistenceError::OptimisticLockError`] and writes nothing, checked
/// by annals under its writer lock rather than read first and written
/// after.
///
/// # Blocking
///
/// An annals append returns only after an `fdatasync`, so every append
/// runs on tokio's blocking pool ([`tokio::task::spawn_blocking`]) and the
/// async task that commits only waits for it. Reads of one stream run on
/// the calling task: they never wait for a sync and copy events out of
/// memory-mapped segments in pages of [`DEFAULT_PAGE_SIZE`]. The replay
/// streams read the store from a blocking task, page by page. All of this
/// needs a tokio runtime (any flavour).
///
/// # Snapshots
///
/// annals cannot yet append to two streams atomically, so a snapshot lives
/// in a stream of its own, `$snapshot-{type}-{id}`, written *after* the
/// events it covers: a crash between the two loses no event and leaves an
/// older snapshot, never one newer than the events. When
/// [`get_snapshot`](PersistedEventRepository::get_snapshot) finds that the
/// latest snapshot lags its stream (such a crash, or a failed snapshot
/// append), it brings the aggregate up to date by applying the missing
/// events (without upcasters) before returning it, so that an aggregate
/// store (which never replays events) cannot get stuck on a stale
/// snapshot.
///
/// Snapshot updates are compared and set like postgres-es's: snapshot `n`
/// (counting from 1) is accepted only when the latest stored one is
/// `n - 1` (or, for `n = 1`, always: cqrs-es starts again from 1 when a
/// stored snapshot no longer deserializes), checked before anything is
/// written and made exact by annals' expected version on the snapshot
/// stream. A stale update fails with `OptimisticLockError` and writes
/// nothing. The one exception is a race that cqrs-es does not produce: a
/// snapshot-only update slipping in between another commit's events and
/// its snapshot makes that commit report `OptimisticLockError` although
/// its events are stored.
///
/// Every snapshot is a new event in its stream, and old ones are never
/// removed: annals has no stream limits yet. Snapshot streams therefore
/// grow by one aggregate state per snapshot. Once annals' stream limits
/// (`set_stream_limits` with `max_count(1)`) and scavenging land, the
/// repository will cap each snapshot stream at its latest few events.
///
/// A snapshot's `current_sequence` is the last sequence of the batch it
/// was written with (or the stream's last sequence for a batch without
/// events), as in postgres-es.
#[derive(Clone, Debug)]
pub struct AnnalsEventRepository {
    store: Arc<Store>,
    stream_channel_size: usize,
    page_size: usize,
}

impl AnnalsEventRepository {
    /// A repository on `store`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annals_cqrs::AnnalsEventRepository;
    ///
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Arc::new(annals::Store::open(dir.path()).unwrap());
    /// let repo = AnnalsEventRepository::new(store).with_streaming_channel_size(1000);
    /// ```
    pub fn new(store: Arc<Store>) -> Self {
        AnnalsEventRepository {
            store,
            stream_channel_size: DEFAULT_STREAMING_CHANNEL_SIZE,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Buffers up to `size` events (at least 1) in each [`ReplayStream`].
    #[must_use]
    pub fn with_streaming_channel_size(self, size: usize) -> Self {
        AnnalsEventRepository {
            stream_channel_size: size.max(1),
            ..self
        }
    }

    /// Reads the store `size` events (at least 1) at a time.
    #[must_use]
    pub fn with_page_size(self, size: usize) -> Self {
        AnnalsEventRepository {
            page_size: size.max(1),
            ..self
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The events of `stream` from version `from` on, decoded.
    fn read_events(
        &self,
        stream: &str,
        from: u64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut out = Vec::new();
        let mut next = from;
        loop {
            let page = match self.store.read_stream(stream, next, self.page_size) {
                Ok(page) => page,
                Err(annals::Error::StreamNotFound { .. }) => return Ok(out),
                Err(e) => return Err(from_annals(e)),
            };
            for e in &page {
                out.push(decode_event(e)?);
            }
            match page.last() {
                Some(last) if page.len() == self.page_size => next = last.version + 1,
                _ => return Ok(out),
            }
        }
    }

    /// The latest snapshot of an aggregate as stored, with the snapshot
    /// stream's last version.
    fn latest_snapshot(
        store: &Store,
        stream: &str,
    ) -> Result<Option<(u64, SnapshotMeta, SerializedSnapshot)>, PersistenceError> {
        let Some(version) = store.stream_version(stream) else {
            return Ok(None);
        };
        let events = store.read_stream(stream, version, 1).map_err(from_annals)?;
        let Some(e) = events.first() else {
            return Ok(None);
        };
        let (meta, snapshot) = decode_snapshot(e)?;
        Ok(Some((version, meta, snapshot)))
    }

    /// Applies the events after a lagging snapshot to it (see the type's
    /// documentation, "Snapshots"). A snapshot that does not deserialize
    /// is returned as it is: cqrs-es then replays every event itself.
    fn roll_forward<A: Aggregate>(
        &self,
        stream: &str,
        mut snapshot: SerializedSnapshot,
    ) -> Result<SerializedSnapshot, PersistenceError> {
        let Ok(mut aggregate) = serde_json::from_value::<A>(snapshot.aggregate.clone()) else {
            return Ok(snapshot);
        };
        for event in self.read_events(stream, snapshot.current_sequence as u64)? {
            let sequence = event.sequence;
            let payload: A::Event = serde_json::from_value(event.payload)?;
            aggregate.apply(payload);
            snapshot.current_sequence = sequence;
        }
        snapshot.aggregate = serde_json::to_value(&aggregate)?;
        Ok(snapshot)
    }
}

/// The last sequence of `stream` (0 when it has no events).
fn last_sequence(store: &Store, stream: &str) -> usize {
    store.stream_version(stream).map_or(0, |v| {
        usize::try_from(v.saturating_add(1)).unwrap_or(usize::MAX)
    })
}

/// Runs a blocking store call on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, PersistenceError>
where
    F: FnOnce() -> Result<T, PersistenceError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(from_join)?
}

impl PersistedEventRepository for AnnalsEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.read_events(&aggregate_stream(A::TYPE, aggregate_id), 0)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        // Sequence n is version n - 1, so the events after sequence n start
        // at version n.
        self.read_events(
            &aggregate_stream(A::TYPE, aggregate_id),
            last_sequence as u64,
        )
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let snapshots = snapshot_stream(A::TYPE, aggregate_id);
        let Some((version, meta, snapshot)) = Self::latest_snapshot(&self.store, &snapshots)?
        else {
            return Ok(None);
        };
        if meta.aggregate_type != A::TYPE || meta.aggregate_id != aggregate_id {
            let events = self
                .store
                .read_stream(&snapshots, version, 1)
                .map_err(from_annals)?;
            if let Some(e) = events.first() {
                return Err(DecodeError::new(
                    e,
                    format!(
                        "it is a snapshot of {} {:?}, not of {} {aggregate_id:?}",
                        meta.aggregate_type,
                        meta.aggregate_id,
                        A::TYPE
                    ),
                )
                .into());
            }
        }
        // Read after the snapshot: the events were stored first, so this
        // is at least the snapshot's sequence unless the store is damaged.
        let stream = aggregate_stream(A::TYPE, aggregate_id);
        let last = last_sequence(&self.store, &stream);
        if snapshot.current_sequence > last {
            return Err(invalid(format!(
                "snapshot {} of {} {aggregate_id:?} is at sequence {}, but the aggregate's \
                 stream {stream:?} ends at sequence {last}: refusing a snapshot newer than \
                 its events",
                snapshot.current_snapshot,
                A::TYPE,
                snapshot.current_sequence
            )));
        }
        if snapshot.current_sequence < last {
            return self.roll_forward::<A>(&stream, snapshot).map(Some);
        }
        Ok(Some(snapshot))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(plan) = Plan::new(A::TYPE, events, snapshot_update)? else {
            return Ok(());
        };
        let store = Arc::clone(&self.store);
        blocking(move || plan.run(&store)).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let stream = aggregate_stream(A::TYPE, aggregate_id);
        let page_size = self.page_size;
        self.feed(move |store, push| {
            let mut next = 0;
            loop {
                let page = match store.read_stream(&stream, next, page_size) {
                    Ok(page) => page,
                    Err(annals::Error::StreamNotFound { .. }) => return,
                    Err(e) => {
                        push(Err(from_annals(e)));
                        return;
                    }
                };
                let full = page.len() == page_size;
                for e in &page {
                    next = e.version + 1;
                    if !push(decode_event(e)) {
                        return;
                    }
                }
                if !full {
                    return;
                }
            }
        })
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        // A filtered read of $all by this aggregate type's stream prefix,
        // paged; the replay ends where the log ended when it started, so a
        // busy writer cannot keep it going for ever.
        let filter = annals::Filter::stream_prefix(aggregate_type_prefix(A::TYPE));
        let page_size = self.page_size;
        self.feed(move |store, push| {
            let end = store.global_position();
            let mut next = 0;
            while next < end {
                let page = match store.read_all_filtered(next, page_size, &filter) {
                    Ok(page) => page,
                    Err(e) => {
                        push(Err(from_annals(e)));
                        return;
                    }
                };
                for e in page.events.iter().take_while(|e| e.position < end) {
                    if !push(decode_event(e)) {
                        return;
                    }
                }
                if page.next_position <= next {
                    return;
                }
                next = page.next_position;
            }
        })
    }
}

impl AnnalsEventRepository {
    /// A [`ReplayStream`] fed by `read` on a blocking task. `read` gets the
    /// store and a `push` that returns false once the stream's reader has
    /// gone (then `read` stops).
    fn feed<F>(&self, read: F) -> Result<ReplayStream, PersistenceError>
    where
        F: FnOnce(&Store, &mut dyn FnMut(Result<SerializedEvent, PersistenceError>) -> bool)
            + Send
            + 'static,
    {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
        let (feed, stream) = ReplayStream::new(self.stream_channel_size);
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let mut feed: ReplayFeed = feed;
            let mut push = |item| handle.block_on(feed.push(item)).is_ok();
            read(&store, &mut push);
        });
        Ok(stream)
    }
}

/// A checked commit: what to append where, with which expected versions,
/// decided before anything is written.
struct Plan {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<annals::EventData>,
    last_sequence: Option<usize>,
    snapshot: Option<SnapshotPlan>,
}

struct SnapshotPlan {
    stream: String,
    aggregate_type: &'static str,
    aggregate_id: String,
    aggregate: Value,
    current_snapshot: usize,
}

impl Plan {
    /// Checks a batch the way postgres-es's keys do: one aggregate, of
    /// type `aggregate_type`, sequences contiguous from the first. `None`
    /// when there is nothing to write.
    fn new(
        aggregate_type: &'static str,
        events: &[SerializedEvent],
        snapshot: Option<(String, Value, usize)>,
    ) -> Result<Option<Plan>, PersistenceError> {
        let aggregate_id = match (events.first(), &snapshot) {
            (Some(e), _) => e.aggregate_id.clone(),
            (None, Some((id, _, _))) => id.clone(),
            (None, None) => return Ok(None),
        };
        let first = events.first().map_or(0, |e| e.sequence);
        for (i, e) in events.iter().enumerate() {
            if e.aggregate_id != aggregate_id || e.aggregate_type != aggregate_type {
                return Err(invalid(format!(
                    "one commit holds events of {} {:?} and of {aggregate_type} {aggregate_id:?}",
                    e.aggregate_type, e.aggregate_id
                )));
            }
            // Not the stream's next sequence, or not contiguous: what
            // postgres-es's primary key turns into an optimistic-lock error.
            if first == 0 || Some(e.sequence) != first.checked_add(i) {
                return Err(PersistenceError::OptimisticLockError);
            }
        }
        if let Some((id, _, _)) = &snapshot
            && *id != aggregate_id
        {
            return Err(invalid(format!(
                "a snapshot of {aggregate_type} {id:?} committed with events of {aggregate_id:?}"
            )));
        }
        let expected = match first {
            0 | 1 => ExpectedVersion::NoStream,
            n => ExpectedVersion::Exact((n - 2) as u64),
        };
        let encoded = events
            .iter()
            .map(encode_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Plan {
            stream: aggregate_stream(aggregate_type, &aggregate_id),
            expected,
            events: encoded,
            last_sequence: events.last().map(|e| e.sequence),
            snapshot: snapshot.map(|(aggregate_id, aggregate, current_snapshot)| SnapshotPlan {
                stream: snapshot_stream(aggregate_type, &aggregate_id),
                aggregate_type,
                aggregate_id,
                aggregate,
                current_snapshot,
            }),
        }))
    }

    /// Writes the events, then the snapshot. Blocks on the syncs.
    fn run(self, store: &Store) -> Result<(), PersistenceError> {
        // Compare the snapshot first, so that a stale update writes nothing.
        let snapshot_expected = match &self.snapshot {
            None => None,
            Some(s) => {
                let latest = AnnalsEventRepository::latest_snapshot(store, &s.stream)?;
                let stored = latest.as_ref().map(|(_, meta, _)| meta.current_snapshot);
                if s.current_snapshot != 1 && stored.map(|n| n + 1) != Some(s.current_snapshot) {
                    return Err(PersistenceError::OptimisticLockError);
                }
                Some(latest.map_or(ExpectedVersion::NoStream, |(v, _, _)| {
                    ExpectedVersion::Exact(v)
                }))
            }
        };
        if !self.events.is_empty() {
            store
                .append(&self.stream, self.expected, &self.events)
                .map_err(from_annals)?;
        }
        if let (Some(s), Some(expected)) = (self.snapshot, snapshot_expected) {
            let current_sequence = match self.last_sequence {
                Some(n) => n,
                None => last_sequence(store, &self.stream),
            };
            let meta = SnapshotMeta {
                aggregate_type: s.aggregate_type.to_owned(),
                aggregate_id: s.aggregate_id,
                current_sequence,
                current_snapshot: s.current_snapshot,
            };
            let data = encode_snapshot(&meta, &s.aggregate)?;
            store
                .append(&s.stream, expected, &[data])
                .map_err(from_annals)?;
        }
        Ok(())
    }
}
