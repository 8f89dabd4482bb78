//! For replication only: copying recorded events from one store into
//! another with their positions, versions, ids and recorded-at times.
//!
//! An application appends with [`Store::append`]; this module is for a
//! tool that keeps a replica of another store (such as `annals-nats
//! mirror`, which rebuilds a store from a NATS JetStream stream). The
//! replica's events are the source's, byte for byte, so readers,
//! subscriptions and `annals verify` cannot tell the two apart.
//!
//! [`import`] refuses, writing nothing, events that do not follow on: the
//! first must have the store's next position, positions must then count
//! up by one, and each event's version must follow its stream's last one.

use crate::error::Error;
use crate::event::{EventData, ExpectedVersion, RecordedEvent};
use crate::format::padded_record_len;
use crate::log::batch::{Batch, batch_capacity};
use crate::store::Store;

/// Appends `events`, recorded elsewhere, keeping their positions,
/// versions, ids, recorded-at times and bytes; returns the store's next
/// position after them.
///
/// The events must follow on: the first at the store's
/// [`global_position`](Store::global_position), the rest one position
/// after another, each at its stream's next version. Anything else is
/// refused with [`Error::ImportRefused`] before a byte is written. Each
/// run of consecutive events of one stream (split where it would pass the
/// batch limits) is appended as one batch, and all of them go through
/// the writer under its lock as one commit group: durable when this
/// returns. A crash part way leaves a prefix, and the replica resumes
/// from its `global_position`.
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
    let options = store.options();
    let capacity = batch_capacity(options.segment_size);
    let mut batches = Vec::new();
    let mut run: Vec<&RecordedEvent> = Vec::new();
    let mut run_bytes = 0u64;
    for (i, event) in events.iter().enumerate() {
        let expected_position = first.position.saturating_add(i as u64);
        if event.position != expected_position {
            return Err(Error::ImportRefused {
                position: event.position,
                reason: format!("the event before it had position {}", expected_position - 1),
            });
        }
        let padded = padded_record_len(
            event.stream_id.len(),
            event.event_type.len(),
            event.metadata.len(),
            event.data.len(),
        )
        .map_or(u64::MAX, |(_, padded)| padded as u64);
        let follows = run.last().is_some_and(|last| {
            last.stream_id == event.stream_id
                && run.len() < options.max_batch_events
                && run_bytes.saturating_add(padded) <= capacity
        });
        if !follows && !run.is_empty() {
            batches.push(run_batch(store, &run)?);
            run.clear();
            run_bytes = 0;
        }
        if let Some(last) = run.last()
            && event.version != last.version.saturating_add(1)
        {
            return Err(Error::ImportRefused {
                position: event.position,
                reason: format!(
                    "stream '{}': version {} follows version {}",
                    event.stream_id, event.version, last.version
                ),
            });
        }
        run.push(event);
        run_bytes = run_bytes.saturating_add(padded);
    }
    if !run.is_empty() {
        batches.push(run_batch(store, &run)?);
    }
    store.import_batches(batches, first.position)?;
    Ok(first.position + events.len() as u64)
}

/// One stream's run of events as a batch that expects the version before
/// the run's first.
fn run_batch(store: &Store, run: &[&RecordedEvent]) -> Result<Batch, Error> {
    let Some(first) = run.first() else {
        return Batch::new(store.options(), "-", ExpectedVersion::Any, &[]);
    };
    let expected = match first.version {
        0 => ExpectedVersion::NoStream,
        v => ExpectedVersion::Exact(v - 1),
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
    Batch::imported(store.options(), &first.stream_id, expected, &data, &times)
}
