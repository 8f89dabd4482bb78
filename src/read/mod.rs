//! The read path: turning index locations into events; pages of them
//! forward, backward and filtered (`pages`, `filter`); subscriptions that
//! catch up and then follow live (`subscription`), woken by commit
//! notifications (`commits`); and (in `follow`) a read-only store catching
//! up with a writer in another process. This folder may import
//! `crate::index`, `crate::log::format` and `crate::log::segment`; it never
//! writes.
//!
//! Turning index locations into [`RecordedEvent`]s happens in two steps so that
//! readers and the writer never wait on each other's real work.
//!
//! [`plan`] runs under a read lock of the index's current copy (see
//! [`crate::index::shared`]) and only copies: each event's location and
//! the segments they point into. [`execute`] runs with no lock held and
//! does the costly part: every record's checksum is checked before its
//! bytes are trusted, and the payloads become slices of the segment maps,
//! not copies. The writer adds a synced frame to whichever copy no reader
//! holds and then points readers at it, so it never waits for a reader,
//! and a reader never waits for the writer's push, checksums, decoding or
//! `fdatasync`.
//!
//! Locations a plan copied stay valid after the lock is released: a
//! location enters the index only after its frame is synced and its
//! segment's watermark moved past it, bytes below a watermark never change,
//! and the plan holds the segments' maps, which keep a file a scavenge
//! replaced or `$all` retention removed readable as it was.

pub(crate) mod borrowed;
pub(crate) mod commits;
pub(crate) mod condition;
pub(crate) mod filter;
pub(crate) mod follow;
pub(crate) mod ids;
pub(crate) mod pages;
pub(crate) mod streams;
pub(crate) mod subscription;

use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use crate::error::Error;
use crate::event::RecordedEvent;
use crate::format::{RawRecordView, decode_record_checked};
use crate::index::Index;
use crate::index::shared::SharedIndex;
use crate::log::segment::{Segment, prefetch};

/// What a read copied out of the index under its lock.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// For each event in read order: its position, segment and record
    /// offset.
    events: Vec<(u64, u32, u32)>,
    /// The segments the locations point into, each once, in first-use
    /// order.
    segments: Vec<Planned>,
    /// For a stream read: the stream's name and the version of its first
    /// event read, which every record read is checked against.
    stream: Option<(Arc<str>, u64)>,
    /// Whether control records are returned too (as events of their
    /// control streams); reads skip them, since they are not events.
    keep_control: bool,
    /// Whether any stream had a lifecycle state when the read was planned,
    /// so that the events must pass [`crate::lifecycle::Visibility`].
    lifecycle: bool,
}

/// A segment a plan reads, and its first position by the index: where the
/// segment's verified bits count from.
#[derive(Debug)]
struct Planned {
    segment: Arc<Segment>,
    first_position: u64,
}

impl Plan {
    /// The same plan, returning control records too: for the id lookups of
    /// the duplicate check and for loading lifecycle states.
    pub(crate) fn keeping_control(mut self) -> Plan {
        self.keep_control = true;
        self
    }
}

/// Copies what reading the events at `positions` needs from `index`. Cheap:
/// no checksum, no decoding, one vector of locations, and each segment
/// shared once. For a stream read, `stream` names the stream and the
/// version of the first position.
pub(crate) fn plan(
    index: &Index,
    positions: impl Iterator<Item = u64>,
    stream: Option<(Arc<str>, u64)>,
) -> Result<Plan, Error> {
    let mut plan = Plan {
        events: Vec::with_capacity(positions.size_hint().0),
        stream,
        lifecycle: index.has_lifecycle(),
        ..Plan::default()
    };
    index.locations(positions, &mut plan.events)?;
    for &(_, segment, _) in &plan.events {
        // Newest first: a read rarely leaves the segment it is in.
        let number = u64::from(segment);
        if plan
            .segments
            .iter()
            .rev()
            .any(|p| p.segment.number() == number)
        {
            continue;
        }
        let found = index
            .segment_arc(segment)
            .ok_or_else(|| internal(format!("segment {segment} is not open")))?;
        let first_position = index
            .first_position_of(segment)
            .ok_or_else(|| internal(format!("segment {segment} has no table")))?;
        plan.segments.push(Planned {
            segment: Arc::clone(found),
            first_position,
        });
    }
    Ok(plan)
}

/// Shared names for the events of one read: consecutive events mostly
/// share their stream and type, so each distinct name is made once per run
/// rather than once per event.
#[derive(Default)]
struct Names {
    recent: Vec<Arc<str>>,
}

impl Names {
    /// How many distinct names are kept.
    const KEEP: usize = 8;

    /// The shared name whose bytes are `bytes`, which must be UTF-8.
    fn get(&mut self, bytes: &[u8], what: &str) -> Result<Arc<str>, String> {
        if let Some(name) = self.recent.iter().find(|n| n.as_bytes() == bytes) {
            return Ok(Arc::clone(name));
        }
        let name: Arc<str> = match std::str::from_utf8(bytes) {
            Ok(s) if !s.is_empty() => Arc::from(s),
            _ => return Err(format!("{what} is empty or not UTF-8")),
        };
        if self.recent.len() == Names::KEEP {
            self.recent.remove(0);
        }
        self.recent.push(Arc::clone(&name));
        Ok(name)
    }
}

/// A read that failed, with the segment whose record failed its checks
/// when it was a record that did.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: Error,
    pub(crate) segment: Option<u32>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            segment: None,
        }
    }
}

/// Plans a read with `make_plan` under the index's read lock and executes
/// it with no lock held. When a record is not what the index says, the
/// index of its segment may be wrong rather than the record: the segment's
/// tables are rebuilt from the segment (see [`SharedIndex::distrust`]) and the
/// read planned again, once.
pub(crate) fn read_planned(
    index: &SharedIndex,
    make_plan: impl Fn(&Index) -> Result<Plan, Error>,
) -> Result<Vec<RecordedEvent>, Error> {
    read_planned_with(index, make_plan, execute)
}

/// [`read_planned`], with `run` doing the executing (a read that keeps
/// more than the events, say); planned again and run again, once, after
/// the failing segment's tables are rebuilt.
pub(crate) fn read_planned_with<T>(
    index: &SharedIndex,
    make_plan: impl Fn(&Index) -> Result<Plan, Error>,
    mut run: impl FnMut(Plan) -> Result<T, Failed>,
) -> Result<T, Error> {
    let plan = make_plan(&index.read())?;
    match run(plan) {
        Ok(out) => Ok(out),
        Err(Failed {
            error,
            segment: Some(segment),
        }) => {
            if !index.distrust(segment) {
                return Err(error);
            }
            let plan = make_plan(&index.read())?;
            run(plan).map_err(|f| f.error)
        }
        Err(f) => Err(f.error),
    }
}

/// Reads and checks the events of `plan`, with no lock held.
pub(crate) fn execute(plan: Plan) -> Result<Vec<RecordedEvent>, Failed> {
    let mut events = Vec::with_capacity(plan.events.len());
    execute_into(plan, &mut |event, _| events.push(event))?;
    Ok(events)
}

/// As [`execute`], handing each record to `sink` with whether it is a
/// control record: the replication read, which keeps control records and
/// must tell them from events, goes through here (with a plan
/// [`keeping_control`](Plan::keeping_control)); gap records are never
/// handed on.
pub(crate) fn execute_into(
    plan: Plan,
    sink: &mut impl FnMut(RecordedEvent, bool),
) -> Result<(), Failed> {
    // One `Bytes` owner per segment touched, so that each payload costs a
    // reference count, not an allocation.
    let mut owner: Option<(u64, Bytes)> = None;
    let mut streams = Names::default();
    let mut types = Names::default();
    walk(&plan, None, &mut |found| {
        let Found {
            segment,
            offset,
            record,
            position,
            ..
        } = found;
        let bytes = match &owner {
            Some((number, bytes)) if *number == segment.number() => bytes,
            _ => {
                &owner
                    .insert((segment.number(), segment.committed_bytes()))
                    .1
            }
        };
        // The owner was made after the walker read these bytes, so it
        // reaches at least as far; checked rather than trusted, since
        // `Bytes::slice` panics past its end.
        if bytes.len() < offset + record.data.end {
            return Err(internal("segment bytes shorter than a record read".into()).into());
        }
        let corrupt = |reason: String| Failed {
            error: Error::corruption(segment.path(), offset as u64, reason),
            segment: u32::try_from(segment.number()).ok(),
        };
        let stream_id = match &plan.stream {
            Some((name, _)) => Arc::clone(name),
            None => streams.get(record.stream, "stream id").map_err(corrupt)?,
        };
        let event_type = types
            .get(record.event_type, "event type")
            .map_err(corrupt)?;
        sink(
            RecordedEvent {
                stream_id,
                version: record.version,
                position,
                event_type,
                data: bytes.slice(offset + record.data.start..offset + record.data.end),
                metadata: bytes.slice(offset + record.metadata.start..offset + record.metadata.end),
                id: Uuid::from_bytes(record.id),
                recorded_at: record.recorded_at_us,
            },
            record.control,
        );
        Ok(())
    })
}

/// How many records ahead of the one it decodes [`walk`] asks for.
const PREFETCH_AHEAD: usize = 8;

/// Asks for the cache lines of the header and names of the record at
/// `offset` of `bytes`.
fn prefetch_record(bytes: &[u8], offset: usize) {
    for line in [0, 64, 120] {
        prefetch(bytes, offset + line);
    }
}

/// A record a [`walk`] found where its plan said, checked: its segment,
/// its offset there, and its fields, borrowed from the segment's map.
pub(crate) struct Found<'p> {
    pub(crate) segment: &'p Arc<Segment>,
    pub(crate) offset: usize,
    pub(crate) record: RawRecordView<'p>,
    pub(crate) position: u64,
    /// The segment's committed bytes from the record on: the record's
    /// field ranges are relative to them.
    pub(crate) bytes: &'p [u8],
}

/// Walks the records of `plan` in its order, with no lock held, past those
/// at or before position `after` (a read handing events on as it goes
/// that runs again after a rebuild, see [`borrowed`]), and hands each to
/// `f` once it passed its checks: its position is the one the index gave,
/// and for a stream read its stream and version are the expected ones.
/// Control records are handed on only by a plan
/// [`keeping_control`](Plan::keeping_control) or a stream read (whose
/// stream then is a control stream); gap records only by a stream read
/// (which the stream check then refuses).
///
/// A record's checksum is checked the first time this process reads it
/// through its segment's map and remembered there
/// ([`Segment::set_verified`]); later reads decode it with every other
/// check but that one. The bytes cannot have changed in between: bytes
/// below the watermark never change while mapped.
pub(crate) fn walk<'p>(
    plan: &'p Plan,
    after: Option<u64>,
    f: &mut impl FnMut(Found<'p>) -> Result<(), Failed>,
) -> Result<(), Failed> {
    // The segment being read and its committed bytes.
    let mut current: Option<(&'p Planned, &'p [u8])> = None;
    for (i, &(position, number, offset)) in plan.events.iter().enumerate() {
        if after.is_some_and(|a| position <= a) {
            continue;
        }
        let number = u64::from(number);
        let (planned, bytes) = match current {
            Some((planned, bytes)) if planned.segment.number() == number => (planned, bytes),
            _ => {
                let planned = plan
                    .segments
                    .iter()
                    .find(|p| p.segment.number() == number)
                    .ok_or_else(|| internal(format!("segment {number} is not in the plan")))?;
                let bytes = planned.segment.committed();
                // The records up to the one the loop asks for ahead: the
                // first of a read, or of a segment, are asked for here.
                for &(_, s, ahead) in plan.events.iter().skip(i).take(PREFETCH_AHEAD) {
                    if u64::from(s) == number {
                        prefetch_record(bytes, ahead as usize);
                    }
                }
                *current.insert((planned, bytes))
            }
        };
        // The records a few ahead are mostly in the same segment: their
        // header and names are asked for now, so that a read of records
        // not in the CPU's caches waits for memory once per few records
        // rather than once or twice per record.
        if let Some(&(_, ahead_segment, ahead)) = plan.events.get(i + PREFETCH_AHEAD)
            && u64::from(ahead_segment) == number
        {
            prefetch_record(bytes, ahead as usize);
        }
        let segment = &planned.segment;
        let offset = offset as usize;
        let at = |offset: u64, reason: String| Failed {
            error: Error::corruption(segment.path(), offset, reason),
            segment: u32::try_from(number).ok(),
        };
        let corrupt = |reason: String| at(offset as u64, reason);
        let untrusted = bytes
            .get(offset..)
            .ok_or_else(|| corrupt("record lies past the committed end of its segment".into()))?;
        let verified = segment.is_verified(position);
        let record = decode_record_checked(untrusted, (!verified).then(|| segment.salt()))
            .map_err(|e| at((offset + e.offset) as u64, e.reason))?;
        if record.position != position {
            return Err(corrupt(format!(
                "record at position {} where the index has position {position}",
                record.position
            )));
        }
        if !verified {
            segment.set_verified(position, planned.first_position);
        }
        if (record.control || record.gap) && !plan.keep_control && plan.stream.is_none() {
            continue;
        }
        // A gap record holds nothing and belongs to no stream: even a read
        // that keeps control records passes over it.
        if record.gap && plan.stream.is_none() {
            continue;
        }
        if let Some((name, first_version)) = &plan.stream {
            let version = first_version + i as u64;
            if record.stream != name.as_bytes() || record.version != version {
                return Err(corrupt(format!(
                    "record is version {} of stream '{}' where the index has version {version} of '{}'",
                    record.version,
                    crate::error::excerpt(&String::from_utf8_lossy(record.stream)),
                    crate::error::excerpt(name)
                )));
            }
        }
        f(Found {
            segment,
            offset,
            record,
            position,
            bytes: untrusted,
        })?;
    }
    Ok(())
}

/// The record of version `version` of the control stream `name`, read
/// like an event (checksum first): what [`crate::lifecycle::load`] takes a
/// stream's state from. One that is not flagged as a control record is
/// damage.
pub(crate) fn control_record(
    index: &SharedIndex,
    name: &Arc<str>,
    version: u64,
) -> Result<RecordedEvent, Error> {
    let events = read_planned(index, |index| {
        let positions = index
            .stream_positions(name, version, 1)
            .ok_or_else(|| internal(format!("control stream '{name}' vanished")))??;
        Ok(plan(
            index,
            positions.into_iter(),
            Some((Arc::clone(name), version)),
        )?
        .keeping_control())
    })?;
    events
        .into_iter()
        .next()
        .ok_or_else(|| internal(format!("control stream '{name}' has no version {version}")))
}

/// An index that contradicts itself: a bug, reported rather than panicked on.
pub(crate) fn internal(reason: String) -> Error {
    Error::corruption("<in-memory index>", 0, reason)
}
