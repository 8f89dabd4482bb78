//! Borrowed reads: the events of a stream or of `$all` handed to a
//! closure as [`EventRef`]s, borrowed from the segment maps, instead of
//! collected as owned [`crate::RecordedEvent`]s. The same pages as the
//! owned reads ([`super::pages`]), the same checks ([`super::walk`]); what
//! they save is what an owned event costs and a caller that does not keep
//! it does not need: the reference counts of its shared names and bytes,
//! and the vector.

use uuid::Uuid;

use super::pages::{Ran, all_chunks, stream_chunks};
use super::{Failed, Found, Plan, walk};
use crate::error::Error;
use crate::event::EventRef;
use crate::index::shared::SharedIndex;
use crate::lifecycle::Visibility;

/// Hands up to `max_count` events of `stream`, from version `from_version`
/// on, to `f`, in version order; returns how many. The events, errors and
/// skipped versions of [`super::pages::stream`].
pub(crate) fn stream(
    index: &SharedIndex,
    stream: &str,
    from_version: u64,
    max_count: usize,
    f: &mut dyn FnMut(EventRef<'_>),
) -> Result<usize, Error> {
    let mut handed = Handed::default();
    stream_chunks(
        index,
        stream,
        from_version,
        u64::MAX,
        max_count,
        &mut |plan| handed.run(index, &plan, f),
    )?;
    Ok(handed.count)
}

/// Hands up to `max_count` events of `$all`, from position
/// `from_position` on, to `f`, in position order; returns how many. The
/// events of [`super::pages::all`].
pub(crate) fn all(
    index: &SharedIndex,
    from_position: u64,
    max_count: usize,
    f: &mut dyn FnMut(EventRef<'_>),
) -> Result<usize, Error> {
    let mut handed = Handed::default();
    all_chunks(index, from_position, u64::MAX, max_count, &mut |plan| {
        handed.run(index, &plan, f)
    })?;
    Ok(handed.count)
}

/// What a borrowed read handed on so far.
#[derive(Default)]
struct Handed {
    count: usize,
    /// The position of the last event handed on: a plan run again after
    /// its segment's tables were rebuilt (see [`super::read_planned_with`])
    /// starts after it, so that no event is handed on twice.
    last: Option<u64>,
}

impl Handed {
    /// Reads `plan` and hands its events to `f`. With no stream's lifecycle
    /// state in the index (the common case) each goes to `f` as soon as it
    /// is checked; otherwise the chunk is read whole first, then its events
    /// pass [`Visibility`] under the index's lock, and only then does `f`
    /// see them, with no lock held.
    fn run(
        &mut self,
        index: &SharedIndex,
        plan: &Plan,
        f: &mut dyn FnMut(EventRef<'_>),
    ) -> Result<Ran, Failed> {
        let mut types = LastType::default();
        let mut examined = 0;
        if !plan.lifecycle {
            walk(plan, self.last, &mut |found| {
                let event = event_ref(plan, &found, &mut types)?;
                examined += 1;
                self.last = Some(event.position);
                self.count += 1;
                f(event);
                Ok(())
            })?;
            return Ok((examined, examined));
        }
        let mut events = Vec::with_capacity(plan.events.len());
        walk(plan, self.last, &mut |found| {
            events.push(event_ref(plan, &found, &mut types)?);
            Ok(())
        })?;
        let shown: Vec<bool> = {
            let index = index.read();
            match Visibility::of(&index) {
                Some(mut v) => events
                    .iter()
                    .map(|e| v.shows_raw(e.stream_id, e.version, e.recorded_at))
                    .collect(),
                None => vec![true; events.len()],
            }
        };
        let mut kept = 0;
        for (event, shown) in events.iter().zip(shown) {
            self.last = Some(event.position);
            if shown {
                kept += 1;
                self.count += 1;
                f(*event);
            }
        }
        Ok((events.len(), kept))
    }
}

/// The last event type read, checked to be UTF-8: consecutive events mostly
/// share it.
#[derive(Default)]
struct LastType<'p> {
    last: Option<&'p str>,
}

/// The event of a record [`walk`] found, borrowed from its map: its stream
/// id and event type checked to be non-empty UTF-8 (the stream id of a
/// stream read was checked against the stream's name already).
#[inline(always)]
fn event_ref<'p>(
    plan: &'p Plan,
    found: &Found<'p>,
    types: &mut LastType<'p>,
) -> Result<EventRef<'p>, Failed> {
    let record = &found.record;
    let corrupt = |reason: &str| Failed {
        error: Error::corruption(found.segment.path(), found.offset as u64, reason),
        segment: u32::try_from(found.segment.number()).ok(),
    };
    let stream_id = match &plan.stream {
        Some((name, _)) => &**name,
        None => text(record.stream).ok_or_else(|| corrupt("stream id is empty or not UTF-8"))?,
    };
    let event_type = match types.last {
        Some(last) if last.as_bytes() == record.event_type => last,
        _ => {
            let t = text(record.event_type)
                .ok_or_else(|| corrupt("event type is empty or not UTF-8"))?;
            *types.last.insert(t)
        }
    };
    let field = |range: &std::ops::Range<usize>| {
        found
            .bytes
            .get(range.clone())
            .ok_or_else(|| corrupt("record field lies past the committed end of its segment"))
    };
    Ok(EventRef {
        stream_id,
        version: record.version,
        position: found.position,
        event_type,
        data: field(&record.data)?,
        metadata: field(&record.metadata)?,
        id: Uuid::from_bytes(record.id),
        recorded_at: record.recorded_at_us,
    })
}

/// `bytes` as non-empty UTF-8.
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}
