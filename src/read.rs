//! Turning index locations into [`RecordedEvent`]s: every record's checksum
//! is checked before its bytes are trusted, and the payloads are slices of
//! the segment maps, not copies.

use bytes::Bytes;
use uuid::Uuid;

use crate::error::Error;
use crate::event::RecordedEvent;
use crate::format::decode_record_bytes;
use crate::index::Index;

/// Reads the events at `positions`, which the index holds.
pub(crate) fn read_positions(
    index: &Index,
    positions: impl Iterator<Item = u64>,
) -> Result<Vec<RecordedEvent>, Error> {
    let mut events = Vec::with_capacity(positions.size_hint().0);
    // One `Bytes` owner per segment touched, so that each payload costs a
    // reference count, not an allocation.
    let mut current: Option<(u32, Bytes)> = None;
    for position in positions {
        let location = index
            .location(position)
            .ok_or_else(|| internal(format!("position {position} is not in the index")))?;
        let segment = index
            .segments()
            .get(location.segment as usize)
            .ok_or_else(|| internal(format!("segment {} is not open", location.segment)))?;
        if current
            .as_ref()
            .is_none_or(|(number, _)| *number != location.segment)
        {
            current = Some((location.segment, segment.committed_bytes()));
        }
        let Some((_, bytes)) = &current else {
            return Err(internal("segment bytes missing".into()));
        };
        let offset = location.offset as usize;
        let corrupt = |reason: String| Error::corruption(segment.path(), offset as u64, reason);
        let untrusted = bytes
            .get(offset..)
            .ok_or_else(|| corrupt("record lies past the committed end of its segment".into()))?;
        let record = decode_record_bytes(untrusted, segment.salt())
            .map_err(|e| Error::corruption(segment.path(), (offset + e.offset) as u64, e.reason))?;
        let stream_id = index
            .stream_name(location.stream)
            .ok_or_else(|| internal("stream id out of range".into()))?;
        let event_type = index
            .type_name(location.event_type)
            .ok_or_else(|| internal("event type id out of range".into()))?;
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
            stream_id: stream_id.clone(),
            version: record.version,
            position,
            event_type: event_type.clone(),
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
