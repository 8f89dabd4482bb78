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
//! "Stored" includes the batches placed earlier in the same commit group,
//! which are not in the index yet.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;

use crate::error::Error;
use crate::event::{AppendResult, ExpectedVersion};
use crate::index::Index;
use crate::index::id_hash::IdHashBuilder;
use crate::log::batch::Batch;
use crate::read::ids::events_by_id;
use crate::read::internal;

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
/// the index does not hold until the group's frame is written.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    ids: HashMap<[u8; 16], Placed, IdHashBuilder>,
}

impl Pending {
    /// Records the ids of `batch`, whose parts were placed at
    /// `first_versions` of their streams, its events from `first_position`
    /// on.
    pub(crate) fn add(&mut self, batch: &Batch, first_versions: &[u64], first_position: u64) {
        for (part, first_version) in batch.parts.iter().zip(first_versions) {
            let stream: Arc<str> = Arc::from(part.stream.as_str());
            let ids = batch.ids.get(part.records.clone()).unwrap_or_default();
            for (i, id) in (0u64..).zip(ids) {
                let at = part.records.start as u64 + i;
                self.ids.entry(*id).or_insert_with(|| Placed {
                    stream: Arc::clone(&stream),
                    version: first_version + i,
                    position: first_position + at,
                });
            }
        }
    }
}

/// Decides what `batch` is, by its ids: fresh, a retry, or a duplicate
/// (the error). `pending` holds the ids of the batches placed before it in
/// its commit group.
pub(crate) fn check_ids(
    batch: &Batch,
    index: &RwLock<Index>,
    pending: &Pending,
) -> Result<Verdict, Error> {
    if batch.ids.is_empty() {
        return Ok(Verdict::Fresh);
    }
    if let Some(at) = repeated(&batch.ids) {
        return Err(Error::DuplicateEventId {
            id: Uuid::from_bytes(batch.ids.get(at).copied().unwrap_or_default()),
            stream: stream_of(batch, at),
            position: None,
        });
    }
    // Fresh ids, the common case, are told apart without allocating: no
    // earlier batch of the group holds them (usually there is none), and
    // the index holds none of them.
    let in_pending =
        !pending.ids.is_empty() && batch.ids.iter().any(|id| pending.ids.contains_key(id));
    if !in_pending && !index.read().holds_any_id(&batch.ids).map_err(internal)? {
        return Ok(Verdict::Fresh);
    }
    let mut found: Vec<Option<Placed>> = batch
        .ids
        .iter()
        .map(|id| pending.ids.get(id).cloned())
        .collect();
    let unplaced: Vec<[u8; 16]> = batch
        .ids
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(id, _)| *id)
        .collect();
    if !unplaced.is_empty() {
        let mut stored = events_by_id(index, &unplaced)?.into_iter();
        for slot in found.iter_mut().filter(|f| f.is_none()) {
            *slot = stored.next().flatten().map(|e| Placed {
                stream: e.stream_id,
                version: e.version,
                position: e.position,
            });
        }
    }
    let Some(first_found) = found.iter().position(Option::is_some) else {
        return Ok(Verdict::Fresh);
    };
    let retried: Option<Vec<AppendResult>> = batch
        .parts
        .iter()
        .map(|part| {
            let found = found.get(part.records.clone()).unwrap_or_default();
            if found.is_empty() {
                // A part with no events answers as it would now.
                let next = index
                    .read()
                    .stream_version(&part.stream)
                    .map_or(0, |v| v + 1);
                return Some(AppendResult {
                    versions: next..next,
                    positions: 0..0,
                    deduplicated: true,
                });
            }
            retry_of(&part.stream, part.expected, found)
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

/// The original result of one part appended to `stream` with `expected`,
/// when every one of its ids was found (in `found`, one per id) as
/// consecutive events of that stream, in order, starting where `expected`
/// says.
fn retry_of(
    stream: &str,
    expected: ExpectedVersion,
    found: &[Option<Placed>],
) -> Option<AppendResult> {
    let first = found.first()?.as_ref()?;
    let last = found.last()?.as_ref()?;
    let starts_right = match expected {
        ExpectedVersion::Exact(n) => n.checked_add(1) == Some(first.version),
        ExpectedVersion::NoStream => first.version == 0,
        ExpectedVersion::Any | ExpectedVersion::StreamExists => true,
    };
    let consecutive = (0u64..).zip(found).all(|(i, f)| {
        f.as_ref().is_some_and(|p| {
            &*p.stream == stream
                && Some(p.version) == first.version.checked_add(i)
                && Some(p.position) == first.position.checked_add(i)
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
        _ if ids.len() <= SMALL_BATCH => repeated_small(ids),
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
/// 256 one-byte slots (an id's index plus one), probed linearly from a
/// byte of a cheap fold of the id. A set on the heap cost a batch of 100
/// about 8,000 instructions and an allocation, a tenth of an append's work
/// under the writer's lock. Colliding ids cost comparisons, never a wrong
/// answer, and at most 128 probes each.
fn repeated_small(ids: &[[u8; 16]]) -> Option<usize> {
    let mut slots = [0u8; 2 * SMALL_BATCH];
    let mask = slots.len() - 1;
    for (i, id) in ids.iter().enumerate() {
        let (lo, hi) = id.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
        let fold = (lo ^ hi.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut at = (fold >> 56) as usize & mask;
        loop {
            match slots.get(at).copied() {
                Some(0) => {
                    if let Some(slot) = slots.get_mut(at) {
                        *slot = u8::try_from(i + 1).unwrap_or(u8::MAX);
                    }
                    break;
                }
                Some(s) if ids.get(usize::from(s) - 1) == Some(id) => return Some(i),
                Some(_) => at = (at + 1) & mask,
                None => break,
            }
        }
    }
    None
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventData;
    use crate::options::Options;

    fn batch_of(stream: &str, expected: ExpectedVersion, ids: &[u128]) -> Batch {
        let events: Vec<EventData> = ids
            .iter()
            .map(|id| EventData::new("T", b"x".to_vec()).with_id(Uuid::from_u128(*id)))
            .collect();
        Batch::new(&Options::default(), stream, expected, &events).unwrap()
    }

    /// Two appends of the same ids in one commit group: the second is
    /// checked against the first, which the index does not hold yet.
    #[test]
    fn batches_placed_earlier_in_the_group_count_as_stored() {
        let index = RwLock::new(Index::new(1));
        let first = batch_of("s", ExpectedVersion::NoStream, &[1, 2]);
        let mut pending = Pending::default();
        assert!(matches!(
            check_ids(&first, &index, &pending),
            Ok(Verdict::Fresh)
        ));
        pending.add(&first, &[0], 40);
        match check_ids(&first, &index, &pending) {
            Ok(Verdict::Retry(r)) => {
                assert_eq!(r.len(), 1);
                assert_eq!(
                    (r[0].versions.clone(), r[0].positions.clone()),
                    (0..2, 40..42)
                );
                assert!(r[0].deduplicated);
            }
            other => panic!("{other:?}"),
        }
        let elsewhere = batch_of("t", ExpectedVersion::Any, &[3, 2]);
        match check_ids(&elsewhere, &index, &pending) {
            Err(Error::DuplicateEventId {
                id,
                stream,
                position,
            }) => {
                assert_eq!(
                    (id.as_u128(), stream.as_str(), position),
                    (2, "s", Some(41))
                );
            }
            other => panic!("{other:?}"),
        }
        let misplaced = batch_of("s", ExpectedVersion::Exact(3), &[1, 2]);
        assert!(matches!(
            check_ids(&misplaced, &index, &pending),
            Err(Error::DuplicateEventId { .. })
        ));
        let fresh = batch_of("s", ExpectedVersion::Any, &[4]);
        assert!(matches!(
            check_ids(&fresh, &index, &pending),
            Ok(Verdict::Fresh)
        ));
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
