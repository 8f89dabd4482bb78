//! The writer's duplicate check: event ids are unique across the store.
//!
//! It runs under the writer's lock, before the expected-version check, so
//! that of two appends of the same ids exactly one writes. For a batch
//! appended to stream `s` with expected version `e`:
//!
//! | case | decision |
//! | --- | --- |
//! | an id appears twice in the batch | `DuplicateEventId`, no position |
//! | no id of the batch is stored | fresh: the expected-version check runs as always |
//! | every id is stored, as consecutive events of `s` in the batch's order, starting at version `n + 1` for `Exact(n)`, at 0 for `NoStream`, anywhere for `Any` and `StreamExists` | a retry: the original result, `deduplicated`, nothing written |
//! | any other reuse (another stream, another place, part of the batch) | `DuplicateEventId` for the first stored id in batch order |
//!
//! "Stored" means in the index: durable. A batch whose ids were placed
//! earlier in the same commit group (not yet written) waits for that group's
//! frame to be written and synced first (see [`Pending`]), so that a retry
//! is never acknowledged on the strength of an original that may still
//! fail.

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::error::Error;
use crate::event::{AppendResult, ExpectedVersion};
use crate::index::id_hash::{IdHashBuilder, IdKey};
use crate::index::shared::SharedIndex;
use crate::log::batch::{Batch, Part};
use crate::read::ids::events_by_id;

/// What the check decided for a batch that may go on.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// No id of the batch is stored: append it as usual.
    Fresh,
    /// The batch is stored already: answer with these (one per part),
    /// write nothing.
    Retry(Vec<AppendResult>),
}

/// Where a stored id's event is.
#[derive(Clone, Debug)]
struct Placed {
    stream: Arc<str>,
    version: u64,
    position: u64,
}

/// The ids of the batches placed in the commit group being built, which
/// the index does not hold until the group's frame is written. A batch
/// that reuses one of them is checked only after that frame is durable.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    ids: HashSet<[u8; 16], IdHashBuilder>,
}

impl Pending {
    /// Records the ids of a placed batch.
    pub(crate) fn add(&mut self, batch: &Batch) {
        self.ids.extend(batch.ids.iter().copied());
    }

    /// Whether `batch` reuses an id placed earlier in the group.
    pub(crate) fn holds_any(&self, batch: &Batch) -> bool {
        !self.ids.is_empty() && batch.ids.iter().any(|id| self.ids.contains(id))
    }

    /// Forgets every id: their frame is written, the index holds them.
    pub(crate) fn clear(&mut self) {
        self.ids.clear();
    }
}

/// What a retried part with no events answers: the stream's version and
/// the log's next position now.
pub(crate) struct Now<'a> {
    /// The last version of a stream, counting the batches placed earlier in
    /// the group.
    pub stream_version: &'a dyn Fn(&str) -> Option<u64>,
    /// The position the next event would get.
    pub next_position: u64,
}

/// Decides what `batch` is, by its ids against the index: fresh, a retry,
/// or a duplicate (the error). The caller makes sure no id of the batch is
/// [`Pending`].
pub(crate) fn check_ids(
    batch: &Batch,
    index: &SharedIndex,
    now: &Now<'_>,
) -> Result<Verdict, Error> {
    if batch.ids.is_empty() {
        return Ok(Verdict::Fresh);
    }
    // A batch of up to SMALL_BATCH ids hashes each once, on the stack, for
    // its repeat check and the index's lookups (the store-wide filter and
    // the active segment's table).
    let mut on_stack = [0u64; SMALL_BATCH];
    let (repeat, hashes) = match on_stack.get_mut(..batch.ids.len()) {
        Some(hashes) => (repeated_small(&batch.ids, hashes), Some(&*hashes)),
        None => (repeated(&batch.ids), None),
    };
    if let Some(at) = repeat {
        return Err(Error::DuplicateEventId {
            id: Uuid::from_bytes(batch.ids.get(at).copied().unwrap_or_default()),
            stream: stream_of(batch, at),
            position: None,
        });
    }
    // Fresh ids, the common case, are told apart without allocating: the
    // index holds none of them.
    let stored = match hashes {
        Some(hashes) => index.read().holds_any_id_hashed(&batch.ids, hashes)?,
        None => index.read().holds_any_id(&batch.ids)?,
    };
    if !stored {
        return Ok(Verdict::Fresh);
    }
    let found: Vec<Option<Placed>> = events_by_id(index, &batch.ids)?
        .into_iter()
        .map(|e| {
            e.map(|e| Placed {
                stream: e.stream_id,
                version: e.version,
                position: e.position,
            })
        })
        .collect();
    let Some(first_found) = found.iter().position(Option::is_some) else {
        return Ok(Verdict::Fresh);
    };
    let retried: Option<Vec<AppendResult>> = batch
        .parts
        .iter()
        .map(|part| {
            retry_of(
                part,
                found.get(part.records.clone()).unwrap_or_default(),
                now,
            )
        })
        .collect();
    if let Some(results) = retried {
        return Ok(Verdict::Retry(results));
    }
    let (id, placed) = (
        batch.ids.get(first_found).copied().unwrap_or_default(),
        found.get(first_found).cloned().flatten(),
    );
    Err(Error::DuplicateEventId {
        id: Uuid::from_bytes(id),
        stream: placed
            .as_ref()
            .map_or_else(|| stream_of(batch, first_found), |p| p.stream.to_string()),
        position: placed.map(|p| p.position),
    })
}

/// The stream the batch's `at`th event is appended to.
fn stream_of(batch: &Batch, at: usize) -> String {
    batch
        .parts
        .iter()
        .find(|p| p.records.contains(&at))
        .map(|p| p.stream.clone())
        .unwrap_or_default()
}

/// The original result of `part`, when every one of its ids was found (in
/// `found`, one per id) as consecutive versions of its stream, in order,
/// starting where its expected version says. The events need not have been
/// written by one append: their positions run from the first's to the
/// last's. A part with no events answers as it would now.
fn retry_of(part: &Part, found: &[Option<Placed>], now: &Now<'_>) -> Option<AppendResult> {
    if found.is_empty() {
        let next = (now.stream_version)(&part.stream).map_or(0, |v| v + 1);
        return Some(AppendResult {
            versions: next..next,
            positions: now.next_position..now.next_position,
            deduplicated: true,
        });
    }
    let first = found.first()?.as_ref()?;
    let last = found.last()?.as_ref()?;
    let starts_right = match part.expected {
        ExpectedVersion::Exact(n) => n.checked_add(1) == Some(first.version),
        ExpectedVersion::NoStream => first.version == 0,
        ExpectedVersion::Any | ExpectedVersion::StreamExists => true,
    };
    let consecutive = (0u64..).zip(found).all(|(i, f)| {
        f.as_ref().is_some_and(|p| {
            *p.stream == *part.stream && Some(p.version) == first.version.checked_add(i)
        })
    });
    (starts_right && consecutive).then(|| AppendResult {
        versions: first.version..last.version + 1,
        positions: first.position..last.position + 1,
        deduplicated: true,
    })
}

/// Where an id of `ids` first repeats an earlier one: the index of its
/// second occurrence.
fn repeated(ids: &[[u8; 16]]) -> Option<usize> {
    match ids {
        [] | [_] => None,
        [a, b] => (a == b).then_some(1),
        _ if ids.len() <= SMALL_BATCH => {
            let mut hashes = [0u64; SMALL_BATCH];
            repeated_small(ids, hashes.get_mut(..ids.len()).unwrap_or_default())
        }
        _ => {
            let mut seen = std::collections::HashSet::with_capacity_and_hasher(
                ids.len(),
                IdHashBuilder::default(),
            );
            ids.iter().position(|id| !seen.insert(*id))
        }
    }
}

/// The most ids [`repeated_small`] takes: a batch of 100, the common large
/// batch, and then some.
const SMALL_BATCH: usize = 128;

/// [`repeated`] for at most [`SMALL_BATCH`] ids, with a table on the stack:
/// 256 one-byte slots (an id's index plus one), probed linearly from the
/// top byte of the id's hash. Each id's hash ([`IdKey::hash`]) goes into
/// `hashes` (as long as `ids`) on the way, for the index's lookups next
/// (up to the repeat, if there is one). A set on the heap cost a batch of
/// 100 about 8,000 instructions and an allocation, a tenth of an append's
/// work under the writer's lock; this takes about 25 an id with the hash.
/// Colliding ids cost comparisons, never a wrong answer, and at most 128
/// probes each.
fn repeated_small(ids: &[[u8; 16]], hashes: &mut [u64]) -> Option<usize> {
    const _: () = assert!(2 * SMALL_BATCH == 256);
    debug_assert!(ids.len() <= SMALL_BATCH && hashes.len() == ids.len());
    let key = IdKey::get();
    let mut slots = [0u8; 2 * SMALL_BATCH];
    // Slot indexes are bytes, so that they wrap round the 256 slots by
    // themselves; a slot holds its id's index plus one (at most 128, so
    // the cast is exact).
    for (i, (id, h)) in ids.iter().zip(hashes.iter_mut()).enumerate() {
        *h = key.hash(id);
        let mut at = (*h >> 56) as u8;
        // At most 128 slots are taken, so an empty one ends the probe.
        loop {
            let slot = slots.get_mut(usize::from(at))?;
            if *slot == 0 {
                *slot = i as u8 + 1;
                break;
            }
            if ids.get(usize::from(*slot) - 1) == Some(id) {
                return Some(i);
            }
            at = at.wrapping_add(1);
        }
    }
    None
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventData;
    use crate::options::Options;

    fn batch_of(stream: &str, ids: &[u128]) -> Batch {
        let events: Vec<EventData> = ids
            .iter()
            .map(|id| EventData::new("T", b"x".to_vec()).with_id(Uuid::from_u128(*id)))
            .collect();
        Batch::new(&Options::default(), stream, ExpectedVersion::Any, &events).unwrap()
    }

    /// A batch reusing an id placed earlier in the group is held back until
    /// that frame is durable; one with fresh ids is not.
    #[test]
    fn pending_ids_are_found_and_forgotten_once_written() {
        let mut pending = Pending::default();
        let first = batch_of("s", &[1, 2]);
        assert!(!pending.holds_any(&first));
        pending.add(&first);
        assert!(pending.holds_any(&first));
        assert!(pending.holds_any(&batch_of("t", &[3, 2])));
        assert!(!pending.holds_any(&batch_of("s", &[4])));
        pending.clear();
        assert!(!pending.holds_any(&first));
    }

    #[test]
    fn a_repeat_is_found_at_its_second_occurrence() {
        let (a, b, c) = ([1u8; 16], [2u8; 16], [3u8; 16]);
        assert_eq!(repeated(&[]), None);
        assert_eq!(repeated(&[a]), None);
        assert_eq!(repeated(&[a, a]), Some(1));
        assert_eq!(repeated(&[a, b]), None);
        assert_eq!(repeated(&[a, b, c, b, a]), Some(3));
        assert_eq!(repeated(&[a, b, c]), None);
    }

    /// The table on the stack and the set on the heap find the same
    /// repeats, in batches of every size around the switch between them,
    /// with ids that share their halves (so that the cheap fold collides).
    #[test]
    fn small_and_large_batches_find_the_same_repeat() {
        let id = |n: u64| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(n % 7).to_le_bytes());
            b[8..].copy_from_slice(&(n / 7 * 7).to_le_bytes());
            b
        };
        let naive = |ids: &[[u8; 16]]| (0..ids.len()).find(|&i| ids[..i].contains(&ids[i]));
        for len in [3usize, 50, 100, 127, 128, 129, 200] {
            for repeat_at in [None, Some(1), Some(len / 2), Some(len - 1)] {
                let mut ids: Vec<[u8; 16]> = (0..len as u64).map(id).collect();
                if let Some(at) = repeat_at {
                    ids[at] = ids[at / 3];
                }
                assert_eq!(
                    repeated(&ids),
                    naive(&ids),
                    "len {len} repeat {repeat_at:?}"
                );
            }
        }
    }
}
