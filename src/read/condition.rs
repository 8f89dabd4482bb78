//! The check of an append condition ([`AppendCondition`]): is there an
//! event passing its filter after its position? It runs under the writer's
//! lock (the writer calls it for each conditional batch, before placing
//! it), so nothing can be appended between the check and the write.
//!
//! The check must not read the log from the condition's position to the
//! end when the filter is selective. What it reads instead:
//!
//! - **Stream-prefix clause** (tried first when the prefix matches at most
//!   [`PREFIX_STREAMS_MAX`] streams): the streams whose names start with
//!   the prefix come from a sorted set of the index's stream names (built
//!   once, then kept up to date with the streams added since; it shares
//!   the index's names, about 50 bytes a stream). Each such stream's last
//!   position comes from the index; a stream whose last event is before
//!   the condition's position costs that one lookup. Of a stream with
//!   events after it, the first version after it is found by binary search
//!   over the stream's positions, and its events from there are read until
//!   one passes the whole filter (or one lies past the best match so far).
//!   Cost: O(log streams + matching streams + their events after the
//!   position), never the other streams' events.
//! - **Event-type clause** (otherwise): a summary of each segment, event
//!   type to the first and last position of that type in the segment.
//!   Segments wholly before the condition's position are never looked at;
//!   for each later one, a type absent (or last seen before the position)
//!   costs a hash lookup, and otherwise the positions between the first
//!   and last occurrence of the filter's types after the position are read
//!   and checked. A segment's summary is built by reading the segment once
//!   (the first check that reaches it) and the active segment's is extended
//!   at each check by the events appended since the last one: each event
//!   is read once for summaries, whatever the number of checks. Memory:
//!   one entry per distinct event type per summarised segment. This is a
//!   bounded fallback, not an index of every event: a condition whose types
//!   are common (appear all through the segments after its position) reads
//!   those stretches of the log.
//! - **Neither** (a filter of no clause cannot be built; kept for
//!   completeness): the first event after the position matches.
//!
//! Nothing here is persisted: summaries and the sorted names are rebuilt
//! on demand after an open.

use std::collections::{BTreeSet, HashMap};
use std::ops::{Bound, Range};
use std::sync::Arc;

use super::pages;
use crate::error::Error;
use crate::event::AppendCondition;
use crate::index::shared::SharedIndex;
use crate::read::filter::Filter;

/// The most streams a stream-prefix clause may match for the check to go
/// by streams rather than by event types (when the filter has an
/// event-type clause too).
pub(crate) const PREFIX_STREAMS_MAX: usize = 1_024;

/// How many events the check reads at a time.
const CHUNK_EVENTS: usize = 256;

/// What the check keeps between calls. Only the writer's thread (holding
/// the writer's lock) uses it.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    /// The stream names, sorted, for prefix ranges.
    names: BTreeSet<Arc<str>>,
    /// How many of the index's streams (in the index's order) `names`
    /// holds.
    names_upto: usize,
    /// Per segment number, its event-type summary.
    summaries: HashMap<u32, Summary>,
}

/// Event type to the first and last position of that type, over the
/// positions `start..end` of one segment.
#[derive(Debug, Default)]
struct Summary {
    start: u64,
    end: u64,
    types: HashMap<Arc<str>, (u64, u64)>,
}

impl Conditions {
    /// Fails with [`Error::AppendConditionFailed`] naming the first event
    /// after the condition's position that passes its filter; with
    /// [`Error::CheckpointAhead`] when the position is not in the log.
    pub(crate) fn check(
        &mut self,
        index: &SharedIndex,
        condition: &AppendCondition,
    ) -> Result<(), Error> {
        let end = index.read().len();
        if let Some(after) = condition.after()
            && after >= end
        {
            return Err(Error::CheckpointAhead {
                checkpoint: after,
                end,
                stream: None,
            });
        }
        let from = condition.first_position_checked();
        match self.first_match(index, condition.filter(), from, end)? {
            Some(position) => Err(Error::AppendConditionFailed { position }),
            None => Ok(()),
        }
    }

    /// The first position in `from..end` whose event passes `filter`.
    fn first_match(
        &mut self,
        index: &SharedIndex,
        filter: &Filter,
        from: u64,
        end: u64,
    ) -> Result<Option<u64>, Error> {
        if from >= end {
            return Ok(None);
        }
        let types = filter.event_type_terms();
        if let Some(prefixes) = filter.stream_prefix_terms() {
            let streams = self.streams_with_prefixes(index, prefixes, types.is_some());
            if let Some(streams) = streams {
                return by_streams(index, filter, &streams, from);
            }
        }
        match types {
            Some(types) => self.by_types(index, filter, types, from, end),
            None => Ok(Some(from)),
        }
    }

    /// The streams whose names start with one of `prefixes`; `None` when
    /// they are more than [`PREFIX_STREAMS_MAX`] and `capped`.
    fn streams_with_prefixes(
        &mut self,
        index: &SharedIndex,
        prefixes: &[String],
        capped: bool,
    ) -> Option<Vec<Arc<str>>> {
        {
            let index = index.read();
            if index.stream_count() < self.names_upto {
                // Streams were taken back (a refused frame): start again.
                self.names.clear();
                self.names_upto = 0;
            }
            for name in index.stream_names_from(self.names_upto) {
                self.names.insert(Arc::clone(name));
            }
            self.names_upto = index.stream_count();
        }
        let mut found: Vec<Arc<str>> = Vec::new();
        for prefix in prefixes {
            let range = self
                .names
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded));
            for name in range.take_while(|n| n.starts_with(prefix.as_str())) {
                if capped && found.len() >= PREFIX_STREAMS_MAX {
                    return None;
                }
                found.push(Arc::clone(name));
            }
        }
        // Overlapping prefixes ("a", "ab") find a stream twice.
        found.sort_unstable();
        found.dedup();
        Some(found)
    }

    /// The first match in `from..end`, found segment by segment through
    /// the event-type summaries.
    fn by_types(
        &mut self,
        index: &SharedIndex,
        filter: &Filter,
        types: &[String],
        from: u64,
        end: u64,
    ) -> Result<Option<u64>, Error> {
        let spans = index.read().segment_spans_from(from);
        for (segment, span) in spans {
            let span = span.start..span.end.min(end);
            let summary = self.summary(index, segment, &span)?;
            let mut candidates: Option<Range<u64>> = None;
            for t in types {
                let Some(&(first, last)) = summary.types.get(t.as_str()) else {
                    continue;
                };
                if last < from {
                    continue;
                }
                let lo = first.max(from);
                candidates = Some(match candidates {
                    Some(r) => r.start.min(lo)..r.end.max(last + 1),
                    None => lo..last + 1,
                });
            }
            if let Some(range) = candidates
                && let Some(position) = scan(index, filter, range)?
            {
                return Ok(Some(position));
            }
        }
        Ok(None)
    }

    /// The summary of `segment`, extended to cover `span` (its positions
    /// up to the end of the log).
    fn summary(
        &mut self,
        index: &SharedIndex,
        segment: u32,
        span: &Range<u64>,
    ) -> Result<&Summary, Error> {
        let summary = self.summaries.entry(segment).or_insert_with(|| Summary {
            start: span.start,
            end: span.start,
            types: HashMap::new(),
        });
        if summary.start != span.start || summary.end > span.end {
            // The segment is not what it was (cannot happen while the
            // writer lives; be safe): summarise it again.
            *summary = Summary {
                start: span.start,
                end: span.start,
                types: HashMap::new(),
            };
        }
        while summary.end < span.end {
            let take = (span.end - summary.end).min(CHUNK_EVENTS as u64) as usize;
            let (events, scanned) = pages::all_until(index, summary.end, span.end, take)?;
            if scanned <= summary.end {
                break;
            }
            for e in events {
                match summary.types.get_mut(&*e.event_type) {
                    Some((_, last)) => *last = e.position,
                    None => {
                        summary
                            .types
                            .insert(Arc::clone(&e.event_type), (e.position, e.position));
                    }
                }
                summary.end = e.position + 1;
            }
            summary.end = summary.end.max(scanned);
        }
        Ok(summary)
    }
}

/// The first match at or after `from` among the events of `streams`.
fn by_streams(
    index: &SharedIndex,
    filter: &Filter,
    streams: &[Arc<str>],
    from: u64,
) -> Result<Option<u64>, Error> {
    let mut best: Option<u64> = None;
    for name in streams {
        let Some(version) = first_version_from(index, name, from)? else {
            continue;
        };
        let mut version = version;
        'stream: loop {
            let events = pages::stream(index, name, version, CHUNK_EVENTS)?;
            if events.is_empty() {
                break;
            }
            for e in &events {
                if best.is_some_and(|b| e.position >= b) {
                    break 'stream;
                }
                if filter.matches_event(e) {
                    best = Some(e.position);
                    break 'stream;
                }
                version = e.version + 1;
            }
        }
    }
    Ok(best)
}

/// The first version of `stream` whose position is at or after `from`;
/// `None` when every event of it is before (or it has none). A binary
/// search over the stream's positions.
fn first_version_from(index: &SharedIndex, stream: &str, from: u64) -> Result<Option<u64>, Error> {
    let index = index.read();
    let Some(last) = index.stream_version(stream) else {
        return Ok(None);
    };
    let position = |version: u64| -> Result<u64, Error> {
        match index.stream_positions(stream, version, 1) {
            Some(Ok(p)) => p
                .first()
                .copied()
                .ok_or_else(|| super::internal(format!("stream '{stream}' lost a version"))),
            Some(Err(e)) => Err(e),
            None => Err(super::internal(format!("stream '{stream}' vanished"))),
        }
    };
    if position(last)? < from {
        return Ok(None);
    }
    // Versions a read no longer returns may be gone from the log (a
    // scavenge): the search starts at the first one a read returns.
    let first = index
        .lifecycle(stream)
        .map_or(0, |s| s.first_readable(last + 1))
        .max(index.first_version(stream))
        .min(last);
    let (mut lo, mut hi) = (first, last);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if position(mid)? < from {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(Some(lo))
}

/// The first position in `range` whose event passes `filter`.
fn scan(index: &SharedIndex, filter: &Filter, range: Range<u64>) -> Result<Option<u64>, Error> {
    let mut at = range.start;
    while at < range.end {
        let take = (range.end - at).min(CHUNK_EVENTS as u64) as usize;
        let (events, scanned) = pages::all_until(index, at, range.end, take)?;
        if scanned <= at {
            break;
        }
        for e in events {
            if filter.matches_event(&e) {
                return Ok(Some(e.position));
            }
        }
        at = scanned;
    }
    Ok(None)
}
