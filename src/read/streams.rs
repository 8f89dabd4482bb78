//! Listing streams in a stable order, a page at a time, without copying
//! the index: one pass over the streams keeps only the page's worth of
//! smallest names past the cursor (a bounded heap), so a page costs
//! O(streams · log max) time and O(max) memory whatever the store holds.

use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::index::Index;

/// The most streams one page returns, whatever the caller asks for: a
/// bound on the memory a call takes.
pub const MAX_STREAMS_PAGE: usize = 100_000;

/// One stream of a [`Store::streams`](crate::Store::streams) page.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamInfo {
    /// The stream's id.
    pub stream_id: Arc<str>,
    /// The version of its last event.
    pub last_version: u64,
    /// How many events it holds.
    pub event_count: u64,
}

/// Up to `max` (at most [`MAX_STREAMS_PAGE`]) streams whose ids sort after
/// `from` (all, for `None`), in byte order of their ids.
pub(crate) fn page(index: &Index, from: Option<&str>, max: usize) -> Vec<StreamInfo> {
    let max = max.min(MAX_STREAMS_PAGE);
    if max == 0 {
        return Vec::new();
    }
    // A max-heap of the smallest `max` names seen: its top is the largest
    // of them, the one a smaller name displaces.
    let mut heap: BinaryHeap<(&Arc<str>, u64)> = BinaryHeap::with_capacity(max.min(1024) + 1);
    for (name, count) in index.stream_lengths() {
        if count == 0 || from.is_some_and(|f| &**name <= f) {
            continue;
        }
        // Control streams are annals' own, and a deleted stream reads as
        // missing.
        if crate::lifecycle::is_reserved(name)
            || (index.has_lifecycle() && index.stream_version(name).is_none())
        {
            continue;
        }
        if heap.len() < max {
            heap.push((name, count));
        } else if heap.peek().is_some_and(|(top, _)| name < *top) {
            heap.pop();
            heap.push((name, count));
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|(name, count)| StreamInfo {
            stream_id: Arc::clone(name),
            last_version: count - 1,
            event_count: count,
        })
        .collect()
}
