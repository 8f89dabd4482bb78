//! The read path: turning index locations into events, and (in `follow`)
//! a read-only store catching up with a writer in another process. This
//! folder may import `crate::index`, `crate::log::format` and
//! `crate::log::segment`; it never writes.
//!
//! Turning index locations into [`RecordedEvent`]s happens in two steps so that
//! readers and the writer never wait on each other's real work.
//!
//! [`plan`] runs under the index's read lock and only copies: each event's
//! location and a share of its stream and type names, and the segments they
//! point into. [`execute`] runs with no lock held and does the costly part:
//! every record's checksum is checked before its bytes are trusted, and the
//! payloads become slices of the segment maps, not copies. The writer takes
//! the index's write lock only to add a synced frame's entries, so a reader
//! holds the writer up for at most the copy of the entries it reads, and the
//! writer holds a reader up for at most the push of one frame's entries;
//! neither ever waits for the other's checksums, decoding or `fdatasync`.
//!
//! Locations a plan copied stay valid after the lock is released: the index
//! only grows, a location enters it only after its frame is synced and its
//! segment's watermark moved past it, and bytes below a watermark never
//! change.

pub(crate) mod follow;

use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use crate::error::Error;
use crate::event::RecordedEvent;
use crate::format::decode_record_bytes;
use crate::index::{Index, Location};
use crate::log::segment::Segment;

/// What a read copied out of the index under its lock.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// For each event in read order: its position, its location, and its
    /// stream and type names.
    events: Vec<(u64, Location, Arc<str>, Arc<str>)>,
    /// The segments the locations point into, each once, in first-use
    /// order.
    segments: Vec<Arc<Segment>>,
}

/// Copies what reading the events at `positions` needs from `index`. Cheap:
/// no checksum, no decoding, no allocation per event beyond the plan's own
/// vector.
pub(crate) fn plan(index: &Index, positions: impl Iterator<Item = u64>) -> Result<Plan, Error> {
    let mut plan = Plan {
        events: Vec::with_capacity(positions.size_hint().0),
        segments: Vec::new(),
    };
    for position in positions {
        let location = index
            .location(position)
            .ok_or_else(|| internal(format!("position {position} is not in the index")))?;
        // Newest first: a read rarely leaves the segment it is in.
        let number = u64::from(location.segment);
        if !plan.segments.iter().rev().any(|s| s.number() == number) {
            let segment = index
                .segments()
                .get(location.segment as usize)
                .ok_or_else(|| internal(format!("segment {} is not open", location.segment)))?;
            plan.segments.push(Arc::clone(segment));
        }
        let stream = index
            .stream_name(location.stream)
            .ok_or_else(|| internal("stream id out of range".into()))?;
        let event_type = index
            .type_name(location.event_type)
            .ok_or_else(|| internal("event type id out of range".into()))?;
        plan.events.push((
            position,
            location,
            Arc::clone(stream),
            Arc::clone(event_type),
        ));
    }
    Ok(plan)
}

/// Reads and checks the events of `plan`, with no lock held.
pub(crate) fn execute(plan: Plan) -> Result<Vec<RecordedEvent>, Error> {
    let mut events = Vec::with_capacity(plan.events.len());
    // One `Bytes` owner per segment touched, so that each payload costs a
    // reference count, not an allocation.
    let mut current: Option<(&Arc<Segment>, Bytes)> = None;
    for (position, location, stream_id, event_type) in plan.events {
        let number = u64::from(location.segment);
        if current.as_ref().is_none_or(|(s, _)| s.number() != number) {
            let segment = plan
                .segments
                .iter()
                .find(|s| s.number() == number)
                .ok_or_else(|| internal(format!("segment {number} is not in the plan")))?;
            current = Some((segment, segment.committed_bytes()));
        }
        let Some((segment, bytes)) = &current else {
            return Err(internal("segment bytes missing".into()));
        };
        let offset = location.offset as usize;
        let corrupt = |reason: String| Error::corruption(segment.path(), offset as u64, reason);
        let untrusted = bytes
            .get(offset..)
            .ok_or_else(|| corrupt("record lies past the committed end of its segment".into()))?;
        let record = decode_record_bytes(untrusted, segment.salt())
            .map_err(|e| Error::corruption(segment.path(), (offset + e.offset) as u64, e.reason))?;
        // Equal bytes to the indexed names also prove them valid UTF-8.
        if record.position != position
            || record.stream != stream_id.as_bytes()
            || record.event_type != event_type.as_bytes()
        {
            return Err(corrupt(format!(
                "record at position {} of stream '{}' is not the indexed position {position}",
                record.position,
                crate::error::excerpt(&String::from_utf8_lossy(record.stream))
            )));
        }
        events.push(RecordedEvent {
            stream_id,
            version: record.version,
            position,
            event_type,
            data: bytes.slice(offset + record.data.start..offset + record.data.end),
            metadata: bytes.slice(offset + record.metadata.start..offset + record.metadata.end),
            id: Uuid::from_bytes(record.id),
            recorded_at: record.recorded_at_us,
        });
    }
    Ok(events)
}

/// An index that contradicts itself: a bug, reported rather than panicked on.
fn internal(reason: String) -> Error {
    Error::corruption("<in-memory index>", 0, reason)
}
