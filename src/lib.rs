//! # annals
//!
//! An embedded event store. Applications that do event sourcing link it
//! in-process to append events to named streams with optimistic
//! concurrency, read a stream back to rebuild an aggregate, and read the
//! global log to drive projections. One process writes; many threads read.
//!
//! ```
//! use annals::{EventData, ExpectedVersion, Store};
//!
//! # fn main() -> Result<(), annals::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path())?;
//!
//! // Append with an optimistic-concurrency check: the stream must be new.
//! store.append("order-42", ExpectedVersion::NoStream, &[
//!     EventData::new("OrderPlaced", br#"{"total":10}"#.to_vec()),
//!     EventData::new("OrderPaid", br#"{"amount":10}"#.to_vec()),
//! ])?;
//!
//! // A second writer that read version 0 loses the race, and nothing is written.
//! let conflict = store.append("order-42", ExpectedVersion::Exact(0), &[
//!     EventData::new("OrderCancelled", b"{}".to_vec()),
//! ]);
//! assert!(matches!(conflict, Err(annals::Error::WrongExpectedVersion { actual: Some(1), .. })));
//!
//! // Rebuild the aggregate from its stream.
//! let events = store.read_stream("order-42", 0, 100)?;
//! assert_eq!(events.len(), 2);
//! assert_eq!(&*events[1].event_type, "OrderPaid");
//!
//! // Drive a projection from the global log.
//! let all = store.read_all(0, 1000)?;
//! assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), vec![0, 1]);
//! # Ok(())
//! # }
//! ```
//!
//! ## Reading like a projection
//!
//! A projection (a read model, a process manager) wants "everything after
//! my checkpoint, then each new event as it is appended". A
//! [`Subscription`] does that: it catches up from a [`SubscribeFrom`]
//! point, sends [`SubscriptionItem::CaughtUp`] once everything that existed
//! when it was made is delivered, and then follows live, woken by the
//! commit (no polling). Resuming with `SubscribeFrom::After(checkpoint)`
//! repeats and skips nothing. A filtered subscription also sends
//! [`SubscriptionItem::Checkpoint`]s, so that a projection of rare events
//! can store its progress.
//!
//! ```
//! use std::time::Duration;
//! use annals::{EventData, ExpectedVersion, Filter, Store, SubscribeFrom, SubscriptionItem};
//!
//! # fn main() -> Result<(), annals::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path())?;
//! store.append("order-1", ExpectedVersion::Any, &[EventData::new("OrderPlaced", br#"{"total":10}"#.to_vec())])?;
//! store.append("user-7", ExpectedVersion::Any, &[EventData::new("UserJoined", b"{}".to_vec())])?;
//!
//! // The projection's state and its checkpoint; a real program stores them
//! // together, in one transaction of its read model's database.
//! let mut orders = 0u64;
//! let mut checkpoint: Option<u64> = None; // nothing handled yet
//!
//! let from = match checkpoint {
//!     Some(position) => SubscribeFrom::After(position),
//!     None => SubscribeFrom::Start,
//! };
//! let mut sub = store.subscribe_all(from, Some(Filter::stream_prefix("order-")))?;
//! while let Some(item) = sub.next_timeout(Duration::from_secs(1))? {
//!     match item {
//!         SubscriptionItem::Event(e) => {
//!             orders += 1; // handle the event...
//!             checkpoint = Some(e.position); // ...then store its position
//!         }
//!         // Nothing matched up to here: progress worth storing.
//!         SubscriptionItem::Checkpoint { position } => checkpoint = Some(position),
//!         // A long-running projection goes on here, live; this example stops.
//!         SubscriptionItem::CaughtUp { .. } => break,
//!     }
//! }
//! assert_eq!(orders, 1);
//! assert_eq!(checkpoint, Some(1)); // past user-7's event too
//! # Ok(())
//! # }
//! ```
//!
//! `Subscription` is also an [`Iterator`] (`for item in sub`) that blocks
//! for the next item and ends when the store is closed or dropped, after
//! delivering everything committed. With the `async` feature it is a
//! `futures_core::Stream`, for any runtime, with no thread per
//! subscription. On a read-only store ([`Store::open_read_only_with`]), one
//! thread per store refreshes every [`Options::follow_interval`] (default
//! 50 ms) while it has subscriptions, and they behave the same.
//!
//! Around it: [`Store::read_stream_backward`] and
//! [`Store::read_all_backward`] read newest first, and
//! [`Store::read_all_filtered`] pages through `$all` by stream prefix or
//! event type ([`Filter`]), with a [`FilteredPage::next_position`] that
//! moves past every event examined.
//!
//! ## Consistency beyond one stream
//!
//! [`Store::append_multi`] appends to several streams in one batch: every
//! part's expected version is checked, and the whole call lands in one
//! commit frame or not at all (after a crash too), its events at
//! consecutive positions in the order given. [`Store::append_if`] appends
//! only if no event passing a [`Filter`] was appended after a position:
//! the decision a caller made by reading that query up to that position
//! still holds (the "dynamic consistency boundary" pattern). The check and
//! the write happen under the writer's lock, so of two callers deciding on
//! the same history only one can win; the other gets
//! [`Error::AppendConditionFailed`] naming the first matching event.
//! [`Store::append_multi_if`] does both.
//!
//! A seat reservation, where the consistency boundary is "every
//! reservation or release of this seat", whatever stream it is in:
//!
//! ```
//! use std::sync::Arc;
//! use annals::{AppendCondition, Error, EventData, Filter, Store};
//!
//! /// Reserves `seat` unless it is taken; `Ok(false)` when it is. Seat ids
//! /// are chosen so that none is a prefix of another.
//! fn reserve(store: &Store, seat: &str, by: &str) -> Result<bool, Error> {
//!     let query = Filter::event_types(["SeatReserved", "SeatReleased"])
//!         .and(Filter::stream_prefix(seat));
//!     // A bounded number of decisions: each retry follows another
//!     // caller's success.
//!     for _ in 0..16 {
//!         // Decide on what the query returns up to the end of the log now.
//!         let end = store.global_position();
//!         let mut taken = false;
//!         let mut from = 0;
//!         while from < end {
//!             let page = store.read_all_filtered(from, 1_000, &query)?;
//!             for e in page.events.iter().filter(|e| e.position < end) {
//!                 taken = &*e.event_type == "SeatReserved";
//!             }
//!             from = page.next_position;
//!         }
//!         if taken {
//!             return Ok(false);
//!         }
//!         // Append only if nothing the query returns came after `end - 1`.
//!         let condition = AppendCondition::new(query.clone(), end.checked_sub(1));
//!         let event = EventData::new("SeatReserved", by.as_bytes().to_vec());
//!         match store.append_if(&condition, seat, &[event]) {
//!             Ok(_) => return Ok(true),
//!             // Someone else's event came in between: decide again.
//!             Err(Error::AppendConditionFailed { .. }) => continue,
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     Ok(false)
//! }
//!
//! # fn main() -> Result<(), Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(Store::open(dir.path())?);
//! // Four callers race for seat 12A: exactly one gets it.
//! let winners: Vec<bool> = std::thread::scope(|s| {
//!     let racers: Vec<_> = (0..4)
//!         .map(|i| {
//!             let store = Arc::clone(&store);
//!             s.spawn(move || reserve(&store, "seat-12A", &format!("guest-{i}")))
//!         })
//!         .collect();
//!     racers.into_iter().map(|r| r.join().unwrap()).collect::<Result<_, _>>()
//! })?;
//! assert_eq!(winners.iter().filter(|w| **w).count(), 1);
//! assert_eq!(store.read_stream("seat-12A", 0, 10)?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! What the check costs: it does not read the log from the condition's
//! position on when the filter is selective. A stream-prefix clause is
//! answered from the index's stream table (each matching stream's last
//! position, then its events after the position); otherwise an event-type
//! clause is answered from per-segment summaries (type to first and last
//! position), built by reading each segment once, after which only the
//! stretch between a type's occurrences after the position is read.
//! PERFORMANCE.md has the figures.
//!
//! ## Idempotent appends
//!
//! A client that times out or crashes after calling [`Store::append`] does
//! not know whether its events were written, and retries. Event ids are
//! unique across the store, checked against a persisted index at any store
//! size and across reopens, so a retry never writes twice. For a batch
//! appended to stream `s` with expected version `e`, under the writer's
//! lock and before the expected-version check:
//!
//! 1. If every id of the batch is already in `s`, as consecutive events
//!    in the batch's order, starting at version `n + 1` for
//!    [`Exact(n)`](ExpectedVersion::Exact), at version 0 for
//!    [`NoStream`](ExpectedVersion::NoStream), anywhere for
//!    [`Any`](ExpectedVersion::Any) and
//!    [`StreamExists`](ExpectedVersion::StreamExists), the append succeeds,
//!    writes nothing, and returns the **original** [`AppendResult`] (its
//!    versions and positions) with [`AppendResult::deduplicated`] set.
//! 2. Otherwise, if any id of the batch is already stored anywhere
//!    (another stream, another place in `s`, only part of the batch), or
//!    appears twice in the batch, the append fails with
//!    [`Error::DuplicateEventId`] and writes nothing. It names the first
//!    offending id in batch order, with the stream and position holding
//!    it; for an id repeated within the batch, the batch's own stream and
//!    `position: None`.
//! 3. Otherwise the expected-version check runs as always, so a true
//!    conflict is still [`Error::WrongExpectedVersion`].
//!
//! Ids that annals generates (UUID v7, when [`EventData::with_id`] is not
//! called) take part like any other; to make a retry recognisable, give
//! each event its id once, before the first attempt, and send the same
//! ids again. Of two threads appending the same ids at once, exactly one
//! writes; the other gets the deduplicated result or the error, never a
//! second copy. A multi-stream call ([`Store::append_multi`],
//! [`Store::append_if`], [`Store::append_multi_if`]) is checked part by
//! part, before its condition: it is a retry only when every part is (then
//! every part's original result comes back, even where the condition
//! would now fail on the call's own events), and any other reuse is
//! `DuplicateEventId` for the whole call.
//!
//! [`Store::find_event`] returns the event with an id, and `annals read
//! DIR --id UUID` prints it. A fresh id, the common case, costs one test
//! of a filter over every sealed segment's ids, one cache line whatever the
//! number of segments (until that filter is built after an open, and for a
//! segment sealed since it was last extended, one test of each segment's
//! own filter); FORMAT.md describes the id filter and table each segment
//! index holds, and PERFORMANCE.md what the check costs.
//!
//! ```
//! use annals::{Error, EventData, ExpectedVersion, Store, Uuid};
//!
//! # fn main() -> Result<(), Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path())?;
//! store.append("order-7", ExpectedVersion::NoStream, &[EventData::new("Opened", b"{}".to_vec())])?;
//! // The client gives its events ids before the first attempt...
//! let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
//! let batch = [
//!     EventData::new("ItemAdded", b"{}".to_vec()).with_id(a),
//!     EventData::new("ItemAdded", b"{}".to_vec()).with_id(b),
//! ];
//! let first = store.append("order-7", ExpectedVersion::Exact(0), &batch)?;
//! // ...and sends the same batch again after a timeout: rule 1.
//! let retry = store.append("order-7", ExpectedVersion::Exact(0), &batch)?;
//! assert!(retry.deduplicated && !first.deduplicated);
//! assert_eq!((retry.versions, retry.positions), (first.versions, first.positions));
//! assert_eq!(store.global_position(), 3);
//!
//! // Rule 2: an id reused elsewhere, or twice in one batch.
//! let reused = store.append("order-8", ExpectedVersion::Any, &[EventData::new("ItemAdded", b"{}".to_vec()).with_id(b)]);
//! assert!(matches!(reused, Err(Error::DuplicateEventId { id, position: Some(2), .. }) if id == b));
//! let c = Uuid::now_v7();
//! let twice = [EventData::new("X", b"{}".to_vec()).with_id(c), EventData::new("X", b"{}".to_vec()).with_id(c)];
//! let repeated = store.append("order-8", ExpectedVersion::Any, &twice);
//! assert!(matches!(repeated, Err(Error::DuplicateEventId { position: None, .. })));
//!
//! // Rule 3: fresh ids, a stale expected version.
//! let stale = store.append("order-7", ExpectedVersion::Exact(0), &[EventData::new("ItemAdded", b"{}".to_vec())]);
//! assert!(matches!(stale, Err(Error::WrongExpectedVersion { actual: Some(2), .. })));
//!
//! let found = store.find_event(a)?.expect("stored");
//! assert_eq!((&*found.stream_id, found.version, found.position), ("order-7", 1, 1));
//! assert_eq!(store.global_position(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! - `cli` (default): the `annals` command-line tool.
//! - `async`: [`Subscription`] implements `futures_core::Stream`.
//! - `serde`: `EventData::json`, `RecordedEvent::json` and `Serialize` for
//!   [`RecordedEvent`] in the `annals read --json` shape.
//! - `metrics`: `Metrics::publish` hands [`Store::metrics`] to the
//!   [`metrics`](https://docs.rs/metrics) crate's facade.
//!
//! ## What it is not
//!
//! Not a server, not replicated, not a general database: there are no
//! queries beyond streams, `$all` filtered by stream prefix or event type
//! (and conditions on such filters), and no deletes.
//! One process owns a data directory at a time.
//!
//! Not portable beyond Unix: annals uses `std::os::unix` (file modes,
//! positioned writes) and `flock` semantics, and is built and tested on
//! Linux. It does not compile for Windows.
//!
//! ## Durability
//!
//! [`Store::append`] returns only after the batch is on stable storage
//! (`fdatasync` of the segment file; `fsync` of the directory after a
//! segment file is created, renamed or removed). A batch is all or nothing,
//! on disk and to readers. Every byte read from disk is checked by CRC
//! before it is trusted. After a crash, `open` truncates a torn,
//! unacknowledged tail (with a `tracing` warning) and refuses any other
//! damage with [`Error::Corruption`], naming the file and offset and
//! modifying nothing.
//!
//! [`Store::backup`] copies a live store into a directory that is itself a
//! store: every acknowledged event up to a moment during the call, whole
//! batches only, while appends go on; a second backup into the same place
//! copies only what changed, and a backup cut short never opens as a store
//! (see the [`backup`] module).
//!
//! ## Open and memory cost
//!
//! Each sealed segment has an index file beside it, written when the
//! segment is sealed, off the append path. `open` takes sealed segments from
//! their index files (checked: checksums, store, segment, positions, and
//! the segment's last frame) instead of scanning them, and scans only the
//! last segment; a missing or bad index file is only a reason to scan its
//! segment and write the index again (listed in
//! [`RecoveryReport::unusable_indexes`]), never a failed open. Sealed
//! segments' indexes are mapped, not loaded: the memory that grows with
//! events is the active segment's index (about 50 bytes per event: its
//! offset, its place in its stream, its id and the id's slot) and, for
//! the sealed events, 1 to 2 bytes per event for the filter of their ids
//! that the duplicate check and [`Store::find_event`] test first (built in
//! memory from the index files on a background thread that a writable
//! open starts, extended at each seal, and rebuilt twice
//! as large when the sealed events outgrow it; nothing of it is on disk:
//! 10 to 20 MB for 10 million sealed events); each stream costs about 100
//! bytes plus its name. Damage inside a sealed segment
//! taken from its index is found by the read that reaches it
//! ([`Error::Corruption`]) or by `annals verify`, not by `open`.
//!
//! What is *not* guaranteed: durability on hardware or file systems that
//! acknowledge `fdatasync` without persisting (some consumer disks with
//! volatile write caches, some network file systems); protection against a
//! process that ignores the lock and writes into the files; and telling
//! damage to the very last batch apart from a torn write — both look the
//! same on disk, and that batch is dropped with a warning.
//!
//! What `open` found and repaired is in [`Store::recovery_report`]. A torn
//! tail's positions (unacknowledged if it was a torn write) are reused by
//! the next append, so a reader holding a checkpoint (a projection, a follower's
//! consumer) must compare it with [`Store::global_position`] after every
//! open: a checkpoint at or past it means the log is now shorter than what
//! that reader saw, and [`RecoveryReport::torn_tail`] says by how much.
//! Users who would rather look before anything is dropped open with
//! [`Options::on_torn_tail`]`(`[`TornTail::Refuse`]`)`.
//!
//! After a failed write or sync the store is *poisoned*: appends fail with
//! [`Error::Poisoned`], fsync is never retried (the kernel may already have
//! dropped the dirty pages), and reads keep working. Reopening recovers from
//! what is on disk as the kernel shows it, and that is less than a promise
//! when the reopen happens in the same boot: after a failed `fdatasync` the
//! page cache may still hold pages that never reached the disk (Linux marks
//! them clean after reporting the error once), so the reopened store can
//! read, and build on, a batch whose append failed and that a power loss
//! would still take away. Only a batch whose append returned `Ok` is
//! promised. A reopen after a reboot reads what the disk really holds.
//!
//! Segment 0 of a new store is created sparse (its full length, but only
//! its first MiB written), so that a small store takes little disk; the
//! writer zero-fills ahead of itself as it goes, and every later segment
//! is written out in full before it is used. A full disk is therefore met
//! partway through segment 0, by a zero-fill or a frame write: the append
//! fails with [`Error::Io`] (`ENOSPC`) and the store is poisoned like any
//! failed write, nothing acknowledged lost. Past segment 0 it is met when
//! the next segment is prepared, before anything depends on it.
//!
//! Readers map segment files. Another process that shortens a segment file
//! while it is mapped (`truncate`, a careless copy over it) makes the next
//! read of the lost pages kill the reading process with `SIGBUS`, which no
//! check in annals can turn into an error. annals itself never shrinks a
//! segment file: a torn tail is zeroed in place, and the lock keeps a
//! second annals writer out.
//!
//! ## Concurrency
//!
//! [`Store`] is `Send + Sync`; share it as `Arc<Store>`. Appends from many
//! threads are committed together (group commit): each keeps its own
//! expected-version check and its own all-or-nothing result, and they share
//! one write and one `fdatasync`. A lone appender never waits for company.
//! Reads run in parallel with each other and with appends and never wait
//! for an `fdatasync`; they see only whole, synced batches, and a read that
//! starts after an append returned sees it. Readers and the writer do not
//! wait for each other: the index is held in two copies, a read holds one
//! only to copy the locations it reads (it checks and decodes records with
//! no lock held), and the writer adds each synced frame to the copy no
//! reader holds, then points new reads at it. The writer waits only when
//! readers hold both copies at the moment of a commit, and a reader at
//! most for the push of one frame's entries, never for a sync. The cost is the index's
//! memory per stream and per active-segment event, held twice, and each
//! frame added twice (PERFORMANCE.md, "Readers and the writer", has the
//! figures and what is still missed). The next
//! segment is prepared on a background thread before it is needed, so the
//! append that fills a segment does not pay for creating the next one
//! ([`Options::prepare_segments_ahead`]).
//!
//! One process writes a data directory at a time: `open` takes an
//! exclusive `flock` on its `LOCK` file and a second opener gets
//! [`Error::Locked`] at once. The lock belongs to the open file, so a child
//! process forked at the moment a store is closed holds it until the child
//! calls `exec` (annals opens its files close-on-exec); reopening in that
//! instant can see `Locked` for no lasting reason.
//!
//! Another process can read a live store with [`Store::open_read_only`],
//! which takes no lock and modifies nothing, and pick up new events with
//! [`Store::refresh`].
//!
//! ## Limits
//!
//! Everything that comes from outside is bounded, by [`Options`] with
//! documented defaults: segment size (64 MiB), bytes of data plus metadata
//! per event (1 MiB), events per append (10,000), stream id and event type
//! length (256 bytes each). A batch must fit in one segment. Stream ids and
//! event types are non-empty UTF-8 without control characters. Exceeding a
//! limit returns [`Error::LimitExceeded`] (or `InvalidStreamId` /
//! `InvalidEventType`) and writes nothing.
//!
//! ## Layout
//!
//! A data directory holds a `LOCK` file and numbered segment files of one
//! fixed size (created with mode 0600 in a directory of mode 0700). The
//! byte layouts are in FORMAT.md.
//!
//! annals ignores two kinds of entry it never makes, so that a data
//! directory can be the root of a fresh ext4 file system or live in a
//! repository: `lost+found`, and names starting with `.` (`.gitkeep`,
//! `.DS_Store`). Anything else it did not make stops `open`, writable or
//! read-only, with [`Error::NotAStore`] naming the entry, before anything
//! is created or changed; so does a data path that is a file. This is a
//! different error from [`Error::Corruption`] on purpose: the directory is
//! not a damaged store but likely not a store at all (a mistyped path, a
//! home directory), and nothing should be restored over it. A segment name
//! that is a symlink or a directory is damage to a store, and is
//! `Corruption`.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]
#![deny(unsafe_op_in_unsafe_fn)]
// Only `segment`, which owns the memory maps, may use `unsafe`; it says so
// with a local `allow` and a `// SAFETY:` comment on every block.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod backup;
mod error;
mod event;
mod index;
#[cfg(feature = "serde")]
mod json;
mod lifecycle;
mod log;
mod metrics;
mod options;
mod read;
pub mod replication;
mod store;

// Public for the fuzz crate (`fuzz/`), which decodes untrusted bytes with
// it, and for the tests and the `annals` tool, which build and inspect
// segment files byte by byte; not part of the stable API, so hidden.
#[doc(hidden)]
pub use log::format;
// Public so that the fault and crash tests can pass their own `FileIo`
// (a simulated disk, failpoints) to `Options::file_io`; not a stable API,
// so hidden.
#[doc(hidden)]
pub use log::io;
// The bytes of segment index files, public for the same readers as
// `format` (the fuzzer, the tests, `annals verify` and `dump`); hidden.
#[doc(hidden)]
pub use index::file as index_format;

pub use backup::BackupReport;
pub use bytes::Bytes;
pub use error::{Error, Limit};
pub use event::{
    AppendCondition, AppendResult, EventData, EventRef, ExpectedVersion, RecordedEvent,
    StreamAppend,
};
pub use lifecycle::StreamLimits;
pub use lifecycle::scavenge::ScavengeReport;
pub use log::recovery::{RecoveryReport, TornTailReport};
pub use metrics::{Metrics, Percentiles};
pub use options::{DEFAULT_FOLLOW_INTERVAL_MS, Options, TornTail};
pub use read::filter::{Filter, FilteredPage, MAX_FILTER_TERMS};
pub use read::pages::FILTER_SCAN_EVENTS;
pub use read::streams::{MAX_STREAMS_PAGE, StreamInfo};
pub use read::subscription::{
    CHECKPOINT_EVENTS, SUBSCRIPTION_PAGE_EVENTS, SubscribeFrom, Subscription, SubscriptionItem,
};
pub use store::{Stats, Store};
pub use uuid::Uuid;
