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

use std::collections::HashMap;
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
    /// For each event in read order: its position and its location.
    events: Vec<(u64, Location)>,
    /// The segments the locations point into, each once, in first-use
    /// order.
    segments: Vec<Arc<Segment>>,
    /// The stream and type names the locations name, each shared once.
    streams: Names,
    types: Names,
}

/// Names by id, each taken from the index once per read: a read of a
/// thousand events of a few streams shares a few names under the lock, not
/// two thousand.
#[derive(Debug, Default)]
struct Names {
    by_id: HashMap<u32, Arc<str>>,
    /// The last id looked up: events of one batch share their names.
    last: Option<(u32, Arc<str>)>,
}

impl Names {
    /// Shares name `id` from `lookup` unless this read already has it.
    fn take(&mut self, id: u32, lookup: impl FnOnce(u32) -> Option<Arc<str>>) -> Result<(), Error> {
        if self.last.as_ref().is_some_and(|(last, _)| *last == id) || self.by_id.contains_key(&id) {
            return Ok(());
        }
        let name = lookup(id).ok_or_else(|| internal(format!("name id {id} out of range")))?;
        self.last = Some((id, Arc::clone(&name)));
        self.by_id.insert(id, name);
        Ok(())
    }

    /// Name `id`, which [`take`](Names::take) has taken.
    fn get(&mut self, id: u32) -> Result<Arc<str>, Error> {
        if let Some((last, name)) = &self.last
            && *last == id
        {
            return Ok(Arc::clone(name));
        }
        let name = self
            .by_id
            .get(&id)
            .cloned()
            .ok_or_else(|| internal(format!("name id {id} not in the plan")))?;
        self.last = Some((id, Arc::clone(&name)));
        Ok(name)
    }
}

/// Copies what reading the events at `positions` needs from `index`. Cheap:
/// no checksum, no decoding, one vector of locations, and each distinct
/// name and segment shared once.
pub(crate) fn plan(index: &Index, positions: impl Iterator<Item = u64>) -> Result<Plan, Error> {
    let mut plan = Plan {
        events: Vec::with_capacity(positions.size_hint().0),
        ..Plan::default()
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
        plan.streams
            .take(location.stream, |id| index.stream_name(id).cloned())?;
        plan.types
            .take(location.event_type, |id| index.type_name(id).cloned())?;
        plan.events.push((position, location));
    }
    Ok(plan)
}

/// Reads and checks the events of `plan`, with no lock held.
pub(crate) fn execute(mut plan: Plan) -> Result<Vec<RecordedEvent>, Error> {
    let mut events = Vec::with_capacity(plan.events.len());
    // One `Bytes` owner per segment touched, so that each payload costs a
    // reference count, not an allocation.
    let mut current: Option<(usize, Bytes)> = None;
    for (position, location) in std::mem::take(&mut plan.events) {
        let number = u64::from(location.segment);
        let k = match &current {
            Some((k, _)) if plan.segments.get(*k).is_some_and(|s| s.number() == number) => *k,
            _ => {
                let k = plan
                    .segments
                    .iter()
                    .position(|s| s.number() == number)
                    .ok_or_else(|| internal(format!("segment {number} is not in the plan")))?;
                current = Some((k, plan.segments[k].committed_bytes()));
                k
            }
        };
        let (Some(segment), Some((_, bytes))) = (plan.segments.get(k), &current) else {
            return Err(internal("segment bytes missing".into()));
        };
        let stream_id = plan.streams.get(location.stream)?;
        let event_type = plan.types.get(location.event_type)?;
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
