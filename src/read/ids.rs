//! Events found by their ids: [`Store::find_event`](crate::Store::find_event),
//! and the writer's duplicate check (see [`crate::log::ids`]), which needs
//! the stream, version and position of every stored event whose id a batch
//! reuses.
//!
//! The index gives a position for each id (each sealed segment's id filter
//! and sorted id table, then the active segment's ids in memory); the
//! record there is then read like any other, checksum first, and must carry
//! the id. A record that does not is the index's fault, not the log's: the
//! segment's tables are rebuilt from the segment and the lookup made again,
//! once. An id table is derived data and never decides an answer alone.

use crate::error::Error;
use crate::event::RecordedEvent;
use crate::index::IdHit;
use crate::index::shared::SharedIndex;

use super::{Failed, execute, internal, plan};

/// The stored event of each id of `ids`, `None` for an id the store does
/// not hold, in the order of `ids`.
pub(crate) fn events_by_id(
    index: &SharedIndex,
    ids: &[[u8; 16]],
) -> Result<Vec<Option<RecordedEvent>>, Error> {
    let mut retried = false;
    loop {
        let (hits, planned) = {
            let index = index.read();
            let hits = index.find_ids(ids)?;
            if hits.iter().all(Option::is_none) {
                return Ok(ids.iter().map(|_| None).collect());
            }
            let positions = hits.iter().flatten().map(|h| h.position);
            // Removed events and control records too: an id stays taken
            // until a scavenge removes its record.
            let planned = plan(&index, positions, None)?.keeping_control();
            (hits, planned)
        };
        let events = match execute(planned) {
            Ok(events) => events,
            Err(Failed {
                error,
                segment: Some(segment),
            }) if !retried => {
                if !index.distrust(segment) {
                    return Err(error);
                }
                retried = true;
                continue;
            }
            Err(f) => return Err(f.error),
        };
        match match_ids(ids, &hits, events) {
            Ok(found) => return Ok(found),
            Err(Misplaced {
                table,
                id,
                position,
            }) => {
                let rebuilt = !retried && table.is_some_and(|t| index.distrust(t));
                if !rebuilt {
                    return Err(internal(format!(
                        "the index puts event id {} at position {position}, whose record has another id",
                        uuid::Uuid::from_bytes(id)
                    )));
                }
                retried = true;
            }
        }
    }
}

/// An id whose position holds a record with another id.
struct Misplaced {
    table: Option<u32>,
    id: [u8; 16],
    position: u64,
}

/// Pairs the events read (one per hit, in order) with their ids, checking
/// that each record carries the id that sent the read to it.
fn match_ids(
    ids: &[[u8; 16]],
    hits: &[Option<IdHit>],
    events: Vec<RecordedEvent>,
) -> Result<Vec<Option<RecordedEvent>>, Misplaced> {
    let mut events = events.into_iter();
    let mut out = Vec::with_capacity(ids.len());
    for (id, hit) in ids.iter().zip(hits) {
        let Some(hit) = hit else {
            out.push(None);
            continue;
        };
        match events.next() {
            Some(event) if event.id.as_bytes() == id => out.push(Some(event)),
            _ => {
                return Err(Misplaced {
                    table: hit.table,
                    id: *id,
                    position: hit.position,
                });
            }
        }
    }
    Ok(out)
}

/// The stored event with id `id`, if there is one.
pub(crate) fn find_event(
    index: &SharedIndex,
    id: uuid::Uuid,
) -> Result<Option<RecordedEvent>, Error> {
    let mut found = events_by_id(index, &[id.into_bytes()])?;
    let mut event = found.pop().flatten().into_iter().collect();
    // A removed event, or a control record, is found by no read.
    crate::lifecycle::retain_visible(index, &mut event);
    Ok(event
        .pop()
        .filter(|e| !crate::lifecycle::is_reserved(&e.stream_id)))
}
