//! Pages of events, forward and backward, of one stream or of `$all`,
//! filtered or not: each planned under the index's read lock and executed
//! with no lock held, through [`read_planned`]. The store's
//! reads and the subscriptions both read through here.

use std::ops::Range;

use parking_lot::RwLock;

use super::filter::{Filter, FilteredPage};
use super::{internal, plan, read_planned};
use crate::error::Error;
use crate::event::RecordedEvent;
use crate::index::Index;

/// How many events a filtered read examines at most per call, unless it
/// asks for more matches than that; bounds the work of a call whose filter
/// matches rarely.
pub const FILTER_SCAN_EVENTS: usize = 10_000;

/// How many events a filtered read decodes at a time.
const FILTER_CHUNK_EVENTS: u64 = 512;

/// Up to `max_count` events of `stream` from version `from_version` on;
/// [`Error::StreamNotFound`] when it has no events.
pub(crate) fn stream(
    index: &RwLock<Index>,
    stream: &str,
    from_version: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    read_planned(index, |index| {
        let not_found = || Error::StreamNotFound {
            stream: stream.to_owned(),
        };
        let positions = index
            .stream_positions(stream, from_version, max_count)
            .ok_or_else(not_found)?
            .map_err(internal)?;
        let name = index.shared_name(stream).ok_or_else(not_found)?;
        let first_version = index
            .stream_version(stream)
            .map_or(0, |last| from_version.min(last + 1));
        plan(index, positions.into_iter(), Some((name, first_version)))
    })
}

/// Up to `max_count` events of `stream`, newest first, from version
/// `from_version` (or its last version, when that is past the end) down.
pub(crate) fn stream_backward(
    index: &RwLock<Index>,
    name: &str,
    from_version: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let last = index
        .read()
        .stream_version(name)
        .ok_or_else(|| Error::StreamNotFound {
            stream: name.to_owned(),
        })?;
    let Some(versions) = backward_range(from_version, last, max_count) else {
        return Ok(Vec::new());
    };
    let count = (versions.end - versions.start) as usize;
    let mut events = stream(index, name, versions.start, count)?;
    events.reverse();
    Ok(events)
}

/// Up to `max_count` events of `$all` from `from_position` on.
pub(crate) fn all(
    index: &RwLock<Index>,
    from_position: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    read_planned(index, |index| {
        let end = index.len();
        let from = from_position.min(end);
        let to = from.saturating_add(max_count as u64).min(end);
        plan(index, from..to, None)
    })
}

/// Up to `max_count` events of `$all`, newest first, from `from_position`
/// (or the last event, when that is past the end) down.
pub(crate) fn all_backward(
    index: &RwLock<Index>,
    from_position: u64,
    max_count: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let Some(last) = index.read().len().checked_sub(1) else {
        return Ok(Vec::new());
    };
    let Some(positions) = backward_range(from_position, last, max_count) else {
        return Ok(Vec::new());
    };
    let mut events = read_planned(index, |index| plan(index, positions.clone(), None))?;
    events.reverse();
    Ok(events)
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
    index: &RwLock<Index>,
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
        let chunk = all(index, page.next_position, take)?;
        for event in chunk {
            page.next_position = event.position + 1;
            if filter.matches_event(&event) {
                page.events.push(event);
                if page.events.len() == max_count {
                    return Ok(page);
                }
            }
        }
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
