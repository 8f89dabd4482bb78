//! For replication only: copying one store's log into another with its
//! positions, versions, ids, recorded-at times and bytes, control records
//! included.
//!
//! An application appends with [`Store::append`]; this module is for a
//! tool that keeps a replica of another store (such as `annals-nats`,
//! which ships a store's log to NATS JetStream and mirrors it back). The
//! replica's records are the source's, byte for byte, so readers,
//! subscriptions and `annals verify` cannot tell the two apart.
//!
//! - [`read_log`] reads the source's log as it is on disk: every event
//!   (also one that a read hides now, because of a delete, a truncation
//!   or a limit: the replica hides it by the same control records, and a
//!   limit can still be lifted) and every control record
//!   ([`LogRecord::Control`]). A position that holds neither holds a gap
//!   record, which a scavenge left; the page's positions jump over it.
//! - [`import_log`] writes such records into the replica at their
//!   positions, and a gap record at every position between them, so the
//!   replica's positions are the source's. It refuses, writing nothing,
//!   records that do not follow on (see its checks).
//! - [`import`] is the older, narrower path: events only, at dense
//!   positions.
//!
//! What a replica cannot follow: when the source scavenges versions of a
//! stream after the replica took that stream's earlier versions but before
//! it took the later ones, the replica holds a version the source no
//! longer has, then meets the next one it still has; a stream's versions
//! must be dense in the log, so the import refuses that record, naming
//! the stream, and the replica must be built again.

use crate::error::Error;
use crate::event::{EventData, RecordedEvent};
use crate::format::padded_record_len;
use crate::log::batch::{Batch, batch_capacity};
use crate::read::{execute_into, plan, read_planned_with};
use crate::store::Store;

/// How many positions one [`read_log`] examines at most, however few
/// records it finds among them: bounds the work of a call that meets a
/// long run of gap records (a large scavenged stretch).
pub const READ_LOG_SCAN_POSITIONS: u64 = 1 << 16;

/// How many positions one [`import_log`] may cover at most (records and
/// gaps together): bounds what one call writes, so that a broken or
/// hostile `end` cannot make it write without end. A longer stretch of
/// gaps is imported in several calls.
pub const MAX_IMPORT_POSITIONS: u64 = 1 << 20;

/// How many bytes of encoded records one commit group of an import holds
/// at most; a larger import commits several groups, one after another.
const IMPORT_GROUP_BYTES: u64 = 16 << 20;

/// One record of a store's log, as [`read_log`] reads it and
/// [`import_log`] writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogRecord {
    /// An event, with every field as the log holds it.
    Event(RecordedEvent),
    /// A control record (FORMAT.md, "Control records"): `stream_id` is the
    /// control stream's name (`$$` and 32 hex digits, a hash of the
    /// stream it concerns), `version` its version in that control stream,
    /// `event_type` one of `$deleted`, `$tombstoned`, `$truncated`,
    /// `$limits`, and `data` the stream's whole lifecycle state after the
    /// call (40 bytes). No read returns it; a replica must hold it to read
    /// as its source does.
    Control(RecordedEvent),
}

impl LogRecord {
    /// The record's fields, whichever kind it is.
    pub fn record(&self) -> &RecordedEvent {
        match self {
            LogRecord::Event(e) | LogRecord::Control(e) => e,
        }
    }

    /// Its position in the log.
    pub fn position(&self) -> u64 {
        self.record().position
    }

    /// Whether it is a control record.
    pub fn is_control(&self) -> bool {
        matches!(self, LogRecord::Control(_))
    }
}

/// A page of the log from [`read_log`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogPage {
    /// The records found, in position order.
    pub records: Vec<LogRecord>,
    /// The position after the last one examined: where the next page
    /// starts. Every position below it and not in `records` (from where
    /// the read started) holds a gap record.
    pub next_position: u64,
}

/// The id of the gap record at `position` (FORMAT.md, "Scavenge"): unique
/// to the position, and no UUID generator makes it (its version nibble
/// is 0). A replication tool may use it as the id of a message that
/// stands for gaps.
pub fn gap_id(position: u64) -> uuid::Uuid {
    uuid::Uuid::from_bytes(crate::lifecycle::scavenge::gap_id(position))
}

/// Up to `max_count` records of the log (events and control records,
/// see [`LogRecord`]) from `from_position` on, and where the next page
/// starts. Examines at most [`READ_LOG_SCAN_POSITIONS`] positions (or
/// `max_count`, when more), so a page may hold fewer records than asked
/// for, even none, before the end of the log; an empty page whose
/// `next_position` is `from_position` is the end. Events that reads hide
/// are returned too: this is the log, not a read.
///
/// ```
/// use annals::{EventData, ExpectedVersion, Store, replication};
///
/// # fn main() -> Result<(), annals::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path())?;
/// store.append("cart-1", ExpectedVersion::Any, &[EventData::new("Added", b"{}".to_vec())])?;
/// store.delete_stream("cart-1", ExpectedVersion::Any)?;
/// let page = replication::read_log(&store, 0, 100)?;
/// assert_eq!(page.records.len(), 2);   // the hidden event, and the delete
/// assert!(page.records[1].is_control());
/// assert_eq!(page.next_position, 2);
/// # Ok(())
/// # }
/// ```
pub fn read_log(store: &Store, from_position: u64, max_count: usize) -> Result<LogPage, Error> {
    let index = store.index();
    // Positions before the log's start were dropped by retention.
    let from_position = from_position.max(index.read().start_position());
    let mut page = LogPage {
        records: Vec::new(),
        next_position: from_position,
    };
    let scan = READ_LOG_SCAN_POSITIONS.max(max_count as u64);
    let stop = {
        let end = index.read().len();
        from_position.saturating_add(scan).min(end)
    };
    while page.records.len() < max_count && page.next_position < stop {
        // A few more than wanted, since some positions may be gaps.
        let want = (max_count - page.records.len()) as u64;
        let to = page.next_position.saturating_add(want.max(256)).min(stop);
        let from = page.next_position;
        let make_plan = |index: &crate::index::Index| {
            // Again under the lock: retention may have run since.
            let from = from.max(index.start_position());
            Ok::<_, Error>(plan(index, from..to.max(from), None)?.keeping_control())
        };
        // As every read does: planned again, once, after a failing
        // segment's tables are rebuilt.
        let chunk = read_planned_with(index, make_plan, |plan| {
            let mut chunk = Vec::new();
            execute_into(plan, &mut |event, control| {
                chunk.push(if control {
                    LogRecord::Control(event)
                } else {
                    LogRecord::Event(event)
                });
            })
            .map(|()| chunk)
        })?;
        for record in chunk {
            if page.records.len() == max_count {
                break;
            }
            page.next_position = record.position() + 1;
            page.records.push(record);
        }
        if page.records.len() < max_count {
            page.next_position = to.max(from);
        }
    }
    Ok(page)
}

/// Writes `records`, read from a source's log with [`read_log`], keeping
/// their positions, versions, ids, recorded-at times and bytes, and a gap
/// record at every other position from the store's
/// [`global_position`](Store::global_position) up to `end`; returns the
/// store's next position after them (`end`).
///
/// `after` is the source's position that `records` follow (`None`: the
/// start of the log): the caller's proof that nothing came in between.
/// The store must hold every position up to `after`, and nothing but
/// gaps after it; so a replica that stopped part way through a stretch of
/// gaps picks up where it stopped. Refused with [`Error::ImportRefused`]
/// before a byte is written:
///
/// - the store's next position is not in `after + 1 ..= ` the first
///   record's position (or `end`), or the store holds a record after
///   `after`;
/// - positions that do not rise, or that are not below `end`;
/// - more than [`MAX_IMPORT_POSITIONS`] positions to write;
/// - an event whose id is already in the store, whose stream is
///   tombstoned, or whose version is not its stream's next one (when the
///   store holds any of that stream's versions) or is below the stream's
///   soft-delete bound (when it holds none); event fields that an append
///   would refuse (names, limits);
/// - a control record not in a control stream, or whose data is not a
///   lifecycle state, or whose state loosens the stream's (a tombstone
///   lifted, a bound lowered), which no writer makes.
///
/// Everything goes through the writer under its lock, in commit groups
/// of at most 16 MiB each; durable when this returns. A crash part way
/// leaves a prefix (possibly ending inside a stretch of gaps), and the
/// replica goes on from its `global_position`.
///
/// ```
/// use annals::{EventData, ExpectedVersion, Store, replication};
///
/// # fn main() -> Result<(), annals::Error> {
/// # let a = tempfile::tempdir().unwrap();
/// # let b = tempfile::tempdir().unwrap();
/// let origin = Store::open(a.path())?;
/// origin.append("cart-1", ExpectedVersion::Any, &[EventData::new("Added", b"{}".to_vec())])?;
/// origin.tombstone_stream("cart-1", ExpectedVersion::Any)?;
/// origin.append("cart-2", ExpectedVersion::Any, &[EventData::new("Added", b"{}".to_vec())])?;
/// let page = replication::read_log(&origin, 0, 100)?;
/// let replica = Store::open(b.path())?;
/// assert_eq!(replication::import_log(&replica, None, &page.records, page.next_position)?, 3);
/// assert_eq!(replica.read_all(0, 100)?, origin.read_all(0, 100)?);
/// assert!(matches!(replica.read_stream("cart-1", 0, 10), Err(annals::Error::StreamDeleted { .. })));
/// # Ok(())
/// # }
/// ```
pub fn import_log(
    store: &Store,
    after: Option<u64>,
    records: &[LogRecord],
    end: u64,
) -> Result<u64, Error> {
    let start = store.global_position();
    let first_possible = after.map_or(0, |a| a.saturating_add(1));
    let refuse = |position: u64, reason: String| Error::ImportRefused { position, reason };
    let first_position = records.first().map_or(end, LogRecord::position);
    if start < first_possible {
        return Err(refuse(
            first_position,
            format!(
                "the records follow position {}, and the store ends before it (its next position is {start})",
                after.map_or("-".to_owned(), |a| a.to_string())
            ),
        ));
    }
    if start > first_position {
        return Err(refuse(
            first_position,
            format!("the store already holds positions up to {}", start - 1),
        ));
    }
    if start > first_possible {
        // The store went past `after` (a crash part way through a
        // stretch of gaps): what it holds there must be gaps alone.
        let held = read_log(store, first_possible, 1)?;
        if let Some(r) = held.records.first().filter(|r| r.position() < start) {
            return Err(refuse(
                first_position,
                format!(
                    "the records follow position {}, and the store holds a record at position {} after it",
                    first_possible - 1,
                    r.position()
                ),
            ));
        }
    }
    if end.saturating_sub(start) > MAX_IMPORT_POSITIONS {
        return Err(refuse(
            start,
            format!(
                "{} positions to write, more than the {MAX_IMPORT_POSITIONS} one import takes",
                end - start
            ),
        ));
    }
    let mut prev: Option<u64> = None;
    for r in records {
        let p = r.position();
        if prev.is_some_and(|q| p <= q) || p >= end {
            return Err(refuse(
                p,
                match prev {
                    Some(q) if p <= q => format!("it comes after position {q}"),
                    _ => format!("it is not below the end given, {end}"),
                },
            ));
        }
        prev = Some(p);
    }
    if start == end {
        return Ok(end);
    }
    let batches = batches_for(store, start, records, end)?;
    // Commit groups of bounded size, so that memory and the writer's lock
    // stay bounded on large imports.
    let mut group = Vec::new();
    let mut group_bytes = 0u64;
    let mut group_first = start;
    let mut next = start;
    for (batch, count) in batches {
        group_bytes += batch.encoded.len() as u64;
        group.push(batch);
        next += count;
        if group_bytes >= IMPORT_GROUP_BYTES {
            store.import_batches(std::mem::take(&mut group), group_first)?;
            group_bytes = 0;
            group_first = next;
        }
    }
    if !group.is_empty() {
        store.import_batches(group, group_first)?;
    }
    Ok(end)
}

/// The batches that write `records` and the gaps around them from
/// `start` up to `end`, each with how many positions it takes: runs of
/// one stream's consecutive events (split at the batch limits), control
/// records one to a batch, runs of gaps.
fn batches_for(
    store: &Store,
    start: u64,
    records: &[LogRecord],
    end: u64,
) -> Result<Vec<(Batch, u64)>, Error> {
    let options = store.options();
    let capacity = batch_capacity(options.segment_size);
    let gap_run = (capacity / crate::format::RECORD_HEADER_LEN as u64)
        .min(options.max_batch_events as u64)
        .max(1);
    let mut out = Vec::new();
    let mut at = start;
    let mut run: Vec<&RecordedEvent> = Vec::new();
    let mut run_bytes = 0u64;
    let gaps_to = |out: &mut Vec<(Batch, u64)>, at: &mut u64, to: u64| {
        while *at < to {
            let n = (to - *at).min(gap_run);
            out.push((Batch::gaps(*at, n as usize), n));
            *at += n;
        }
    };
    for record in records {
        let event = record.record();
        let follows = match record {
            LogRecord::Event(_) => run.last().is_some_and(|last| {
                last.stream_id == event.stream_id
                    && last.position + 1 == event.position
                    && last.version.saturating_add(1) == event.version
                    && run.len() < options.max_batch_events
                    && run_bytes.saturating_add(padded(event)) <= capacity
            }),
            LogRecord::Control(_) => false,
        };
        if !follows && !run.is_empty() {
            let n = run.len() as u64;
            out.push((run_batch(store, &run)?, n));
            at += n;
            run.clear();
            run_bytes = 0;
        }
        // Positions before this record that no record takes are gaps (a
        // record that joins the run follows it with no position between).
        if run.is_empty() {
            gaps_to(&mut out, &mut at, event.position);
        }
        match record {
            LogRecord::Event(e) => {
                run.push(e);
                run_bytes = run_bytes.saturating_add(padded(e));
            }
            LogRecord::Control(c) => {
                out.push((
                    Batch::imported_control(
                        &c.stream_id,
                        &c.event_type,
                        &c.data,
                        c.version,
                        c.id,
                        c.recorded_at,
                    ),
                    1,
                ));
                at += 1;
            }
        }
    }
    if !run.is_empty() {
        let n = run.len() as u64;
        out.push((run_batch(store, &run)?, n));
        at += n;
    }
    gaps_to(&mut out, &mut at, end);
    Ok(out)
}

/// The padded length of `event`'s record (`u64::MAX` when it cannot be
/// one, which the batch's own checks then refuse).
fn padded(event: &RecordedEvent) -> u64 {
    padded_record_len(
        event.stream_id.len(),
        event.event_type.len(),
        event.metadata.len(),
        event.data.len(),
    )
    .map_or(u64::MAX, |(_, padded)| padded as u64)
}

/// Appends `events`, recorded elsewhere, keeping their positions,
/// versions, ids, recorded-at times and bytes; returns the store's next
/// position after them.
///
/// The events must follow on: the first at the store's
/// [`global_position`](Store::global_position), the rest one position
/// after another, each at its stream's next version. Anything else is
/// refused with [`Error::ImportRefused`] before a byte is written. For a
/// source with gaps in its log (control records, scavenged events) use
/// [`import_log`]. Each run of consecutive events of one stream (split
/// where it would pass the batch limits) is appended as one batch, and
/// all of them go through the writer under its lock as one commit group:
/// durable when this returns. A crash part way leaves a prefix, and the
/// replica resumes from its `global_position`.
///
/// ```
/// use annals::{EventData, ExpectedVersion, Store, replication};
///
/// # fn main() -> Result<(), annals::Error> {
/// # let a = tempfile::tempdir().unwrap();
/// # let b = tempfile::tempdir().unwrap();
/// let origin = Store::open(a.path())?;
/// origin.append("order-1", ExpectedVersion::NoStream, &[EventData::new("Placed", b"{}".to_vec())])?;
/// let replica = Store::open(b.path())?;
/// let events = origin.read_all(0, 100)?;
/// assert_eq!(replication::import(&replica, &events)?, 1);
/// assert_eq!(replica.read_all(0, 100)?, events);
/// # Ok(())
/// # }
/// ```
pub fn import(store: &Store, events: &[RecordedEvent]) -> Result<u64, Error> {
    let Some(first) = events.first() else {
        return Ok(store.global_position());
    };
    let start = store.global_position();
    if first.position != start {
        return Err(Error::ImportRefused {
            position: first.position,
            reason: format!("the store's next position is {start}"),
        });
    }
    for (i, event) in events.iter().enumerate() {
        let expected_position = first.position.saturating_add(i as u64);
        if event.position != expected_position {
            return Err(Error::ImportRefused {
                position: event.position,
                reason: format!("the event before it had position {}", expected_position - 1),
            });
        }
    }
    let records: Vec<LogRecord> = events.iter().cloned().map(LogRecord::Event).collect();
    let end = first.position.saturating_add(events.len() as u64);
    // Dense events never make gaps, so the cap on one import's positions
    // is on the events alone, which the batch limits bound anyway: import
    // them in pieces under it.
    let mut next = start;
    for piece in records.chunks(MAX_IMPORT_POSITIONS as usize) {
        let piece_end = piece.last().map_or(next, |r| r.position() + 1);
        next = import_log(store, next.checked_sub(1), piece, piece_end)?;
    }
    debug_assert_eq!(next, end);
    Ok(next)
}

/// One stream's run of events as a batch that carries its source's first
/// version.
fn run_batch(store: &Store, run: &[&RecordedEvent]) -> Result<Batch, Error> {
    let Some(first) = run.first() else {
        return Batch::new(
            store.options(),
            "-",
            crate::event::ExpectedVersion::Any,
            &[],
        );
    };
    let data: Vec<EventData> = run
        .iter()
        .map(|e| {
            EventData::new(&*e.event_type, e.data.to_vec())
                .with_metadata(e.metadata.to_vec())
                .with_id(e.id)
        })
        .collect();
    let times: Vec<u64> = run.iter().map(|e| e.recorded_at).collect();
    Batch::imported(
        store.options(),
        &first.stream_id,
        first.version,
        &data,
        &times,
    )
}
