//! Pages of events, forward and backward, of one stream or of `$all`,
//! filtered or not: each planned under the index's read lock and executed
//! with no lock held, through [`read_planned`]. The store's
//! reads and the subscriptions both read through here.

use std::cell::Cell;
use std::ops::Range;
use std::sync::Arc;

use super::filter::{Filter, FilteredPage};
use super::{Failed, Plan, execute, plan, read_planned, read_planned_with};
use crate::error::Error;
use crate::event::RecordedEvent;
use crate::index::shared::SharedIndex;
use crate::index::visible_last;
use crate::lifecycle::{is_reserved, retain_visible};

/// How many events a filtered read examines at most per call, unless it
/// asks for more matches than that; bounds the work of a call whose filter
/// matches rarely.
pub const FILTER_SCAN_EVENTS: usize = 10_000;

/// How many events a filtered read decodes at a time.
const FILTER_CHUNK_EVENTS: u64 = 512;

/// Up to `max_count` events of `stream` from version `from_version` on;
/// [`Error::StreamNotFound`] when it has no events (none ever, or none
/// since a soft delete), [`Error::StreamDeleted`] when it was tombstoned.
/// Events removed by the stream's lifecycle state are skipped: the read
/// starts at the first version a read may return, and goes on past expired
/// events until it has `max_count` or reaches the end.
pub(crate) fn stream(
    index: &SharedIndex,
    stream: &str,
    from_version: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    stream_range(index, stream, from_version, u64::MAX, max_count)
}

/// As [`stream`], only versions below `to_version`.
fn stream_range(
    index: &SharedIndex,
    stream: &str,
    from_version: u64,
    to_version: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    stream_chunks(
        index,
        stream,
        from_version,
        to_version,
        max_count,
        &mut |plan| owned(index, plan, &mut out),
    )?;
    Ok(out)
}

/// What running one chunk's plan did: how many events it examined (read
/// and checked) and how many of them it kept (a read may return them now).
pub(crate) type Ran = (usize, usize);

/// Runs a plan the owned way: the events read into `out`, keeping those a
/// read may return now.
fn owned(index: &SharedIndex, plan: Plan, out: &mut Vec<RecordedEvent>) -> Result<Ran, Failed> {
    let mut events = execute(plan)?;
    let examined = events.len();
    retain_visible(index, &mut events);
    let kept = events.len();
    out.append(&mut events);
    Ok((examined, kept))
}

/// Plans the reads of up to `max_count` events of `stream` from version
/// `from_version` up to `to_version` a chunk at a time, and has `run`
/// read each: the owned read and the borrowed one
/// ([`super::borrowed`]) share this. Events removed by the stream's
/// lifecycle state are skipped: the read starts at the first version a
/// read may return, and goes on past expired events until `run` kept
/// `max_count` or the stream ends.
pub(crate) fn stream_chunks(
    index: &SharedIndex,
    stream: &str,
    from_version: u64,
    to_version: u64,
    max_count: usize,
    run: &mut impl FnMut(Plan) -> Result<Ran, Failed>,
) -> Result<(), Error> {
    let mut kept = 0;
    let mut from = from_version;
    // At least once, so that a read of no events still learns whether the
    // stream exists.
    loop {
        let want = max_count - kept;
        // Where the chunk planned under the lock ends, and where the
        // stream ends: the loop goes on only while events were hidden.
        let reached = Cell::new((from, from));
        let (examined, chunk_kept) = read_planned_with(
            index,
            |index| {
                let not_found = || Error::StreamNotFound {
                    stream: stream.to_owned(),
                };
                if is_reserved(stream) {
                    return Err(not_found());
                }
                let state = index.lifecycle(stream);
                if state.is_some_and(|s| s.tombstoned) {
                    return Err(Error::StreamDeleted {
                        stream: crate::error::excerpt(stream),
                    });
                }
                // One lookup of the stream's entry for all that follows.
                let entry = index.stream_read(stream).ok_or_else(not_found)?;
                let next = entry.raw_next_version();
                if visible_last(next, state).is_none() {
                    return Err(not_found());
                }
                let first_readable = state
                    .map_or(0, |s| s.first_readable(next))
                    // Versions in segments that retention dropped are gone
                    // too.
                    .max(entry.first_version());
                let from = from.max(first_readable).min(next);
                let to = to_version.min(next);
                let count = (to.saturating_sub(from)).min(want as u64) as usize;
                let positions = entry.positions(from, count)?;
                reached.set((from + positions.len() as u64, to));
                let name = Arc::clone(entry.name());
                plan(index, positions.into_iter(), Some((name, from)))
            },
            &mut *run,
        )?;
        kept += chunk_kept;
        let (at, end) = reached.get();
        if examined == 0 || at >= end || kept >= max_count {
            break;
        }
        from = at;
    }
    Ok(())
}

/// Up to `max_count` events of `stream`, newest first, from version
/// `from_version` (or its last version, when that is past the end) down,
/// to the first version a read may return. Events hidden by an age limit
/// are the oldest, so a page stops at the first run of them.
pub(crate) fn stream_backward(
    index: &SharedIndex,
    name: &str,
    from_version: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let (last, first_readable) = {
        let index = index.read();
        let state = index.lifecycle(name);
        if state.is_some_and(|s| s.tombstoned) {
            return Err(Error::StreamDeleted {
                stream: crate::error::excerpt(name),
            });
        }
        let last = index
            .stream_version(name)
            .filter(|_| !is_reserved(name))
            .ok_or_else(|| Error::StreamNotFound {
                stream: name.to_owned(),
            })?;
        let first = state
            .map_or(0, |s| s.first_readable(last + 1))
            .max(index.first_version(name));
        (last, first)
    };
    let Some(versions) = backward_range(from_version, last, max_count) else {
        return Ok(Vec::new());
    };
    let start = versions.start.max(first_readable);
    if start >= versions.end {
        return Ok(Vec::new());
    }
    let count = (versions.end - start) as usize;
    let mut events = stream_range(index, name, start, versions.end, count)?;
    events.reverse();
    Ok(events)
}

/// Up to `max_count` events of `$all` from `from_position` on, skipping
/// removed events and control records (so positions may jump) until it
/// has `max_count` or reaches the end.
pub(crate) fn all(
    index: &SharedIndex,
    from_position: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    all_until(index, from_position, u64::MAX, max_count).map(|(events, _)| events)
}

/// Up to `max_count` events of `$all` at positions from `from_position` up
/// to `until` (or the end of the log), and the position after the last
/// one examined: where the next page starts, past any removed events.
pub(crate) fn all_until(
    index: &SharedIndex,
    from_position: u64,
    until: u64,
    max_count: usize,
) -> Result<(Vec<RecordedEvent>, u64), Error> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    let at = all_chunks(index, from_position, until, max_count, &mut |plan| {
        owned(index, plan, &mut out)
    })?;
    Ok((out, at))
}

/// Plans the reads of up to `max_count` events of `$all` at positions
/// from `from_position` up to `until` a chunk at a time, and has `run`
/// read each (see [`stream_chunks`]); returns the position after the last
/// one examined.
pub(crate) fn all_chunks(
    index: &SharedIndex,
    from_position: u64,
    until: u64,
    max_count: usize,
    run: &mut impl FnMut(Plan) -> Result<Ran, Failed>,
) -> Result<u64, Error> {
    let mut kept = 0;
    let mut at = from_position;
    while kept < max_count {
        let want = (max_count - kept) as u64;
        let reached = Cell::new((at, at));
        let (_, chunk_kept) = read_planned_with(
            index,
            |index| {
                let end = index.len().min(until);
                // Positions before the log's start were dropped by retention.
                let from = at.max(index.start_position()).min(end);
                let to = from.saturating_add(want).min(end);
                reached.set((to, end));
                plan(index, from..to, None)
            },
            &mut *run,
        )?;
        kept += chunk_kept;
        let (to, end) = reached.get();
        at = at.max(to);
        if to >= end {
            break;
        }
    }
    Ok(at)
}

/// Up to `max_count` events of `$all`, newest first, from `from_position`
/// (or the last event, when that is past the end) down, skipping removed
/// events and control records.
pub(crate) fn all_backward(
    index: &SharedIndex,
    from_position: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let Some(last) = index.read().len().checked_sub(1) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut top = from_position.min(last);
    loop {
        let want = max_count - out.len();
        let Some(positions) = backward_range(top, last, want) else {
            break;
        };
        let bottom = Cell::new(positions.start);
        let mut events = read_planned(index, |index| {
            // Positions before the log's start were dropped by retention.
            let from = positions.start.max(index.start_position());
            bottom.set(from);
            plan(index, from..positions.end.max(from), None)
        })?;
        let bottom = bottom.get();
        retain_visible(index, &mut events);
        out.extend(events.into_iter().rev());
        if out.len() >= max_count || bottom == 0 || bottom >= positions.end {
            break;
        }
        top = bottom - 1;
    }
    Ok(out)
}

/// The ascending range of at most `max_count` numbers that ends at
/// `from.min(last)`, inclusive; `None` when `max_count` is 0.
fn backward_range(from: u64, last: u64, max_count: usize) -> Option<Range<u64>> {
    let top = from.min(last);
    let count = (max_count as u64).min(top + 1);
    (count > 0).then(|| top + 1 - count..top + 1)
}

/// Up to `max_count` events of `$all` that pass `filter`, examining at most
/// `max_examined` events from `from_position` on (and at least one, when
/// there is one and `max_count` is not 0).
pub(crate) fn filtered(
    index: &SharedIndex,
    from_position: u64,
    max_count: usize,
    max_examined: usize,
    filter: &Filter,
) -> Result<FilteredPage, Error> {
    filter.validate()?;
    let mut page = FilteredPage {
        events: Vec::new(),
        next_position: from_position,
    };
    if max_count == 0 {
        return Ok(page);
    }
    let stop = {
        let end = index.read().len();
        from_position
            .saturating_add(max_examined.max(1) as u64)
            .min(end)
    };
    while page.next_position < stop {
        let take = (stop - page.next_position).min(FILTER_CHUNK_EVENTS) as usize;
        let (chunk, scanned) = all_until(index, page.next_position, stop, take)?;
        // Removed events are examined but match nothing.
        let examined_to = scanned;
        for event in chunk {
            page.next_position = event.position + 1;
            if filter.matches_event(&event) {
                page.events.push(event);
                if page.events.len() == max_count {
                    return Ok(page);
                }
            }
        }
        page.next_position = page.next_position.max(examined_to);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::backward_range;

    #[test]
    fn backward_ranges_end_at_the_start_or_the_last() {
        assert_eq!(backward_range(u64::MAX, 9, 3), Some(7..10));
        assert_eq!(backward_range(5, 9, 3), Some(3..6));
        assert_eq!(backward_range(1, 9, 3), Some(0..2));
        assert_eq!(backward_range(0, 0, 3), Some(0..1));
        assert_eq!(backward_range(0, 9, 0), None);
        assert_eq!(
            backward_range(u64::MAX, u64::MAX - 1, usize::MAX),
            Some(0..u64::MAX)
        );
    }
}
