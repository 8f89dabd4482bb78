//! What annals stores for an event, a snapshot and a view, and the checked
//! decoding of it. Nothing read from disk is trusted: a record that is not
//! what this module writes becomes a [`DecodeError`], never a panic.
//!
//! | record | event type | data | metadata (JSON object) |
//! | --- | --- | --- | --- |
//! | event | the cqrs-es event type | the payload (JSON) | `aggregate_type`, `aggregate_id`, `event_version`, `metadata` (cqrs-es's) |
//! | snapshot | `Snapshot` | the aggregate (JSON) | `aggregate_type`, `aggregate_id`, `current_sequence`, `current_snapshot` |
//! | view | `View` | the view (JSON) | `view_name`, `view_id` |
//!
//! An event's cqrs-es sequence is its annals stream version plus one:
//! sequences count from 1, stream versions from 0.

use annals::{EventData, RecordedEvent};
use cqrs_es::persist::{PersistenceError, SerializedEvent, SerializedSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DecodeError;

/// The annals event type of a snapshot record.
pub const SNAPSHOT_EVENT_TYPE: &str = "Snapshot";

/// The annals event type of a view record.
pub const VIEW_EVENT_TYPE: &str = "View";

#[derive(Serialize, Deserialize)]
struct EventMeta {
    aggregate_type: String,
    aggregate_id: String,
    event_version: String,
    metadata: Value,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotMeta {
    pub(crate) aggregate_type: String,
    pub(crate) aggregate_id: String,
    pub(crate) current_sequence: usize,
    pub(crate) current_snapshot: usize,
}

#[derive(Serialize, Deserialize)]
struct ViewMeta {
    view_name: String,
    view_id: String,
}

/// The annals event for one cqrs-es event.
pub(crate) fn encode_event(event: &SerializedEvent) -> Result<EventData, PersistenceError> {
    let meta = EventMeta {
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        event_version: event.event_version.clone(),
        metadata: event.metadata.clone(),
    };
    Ok(EventData::new(
        event.event_type.clone(),
        serde_json::to_vec(&event.payload)?,
    )
    .with_metadata(serde_json::to_vec(&meta)?))
}

/// The cqrs-es event stored as `e`.
pub(crate) fn decode_event(e: &RecordedEvent) -> Result<SerializedEvent, PersistenceError> {
    let meta: EventMeta = parse(e, "metadata", &e.metadata)?;
    let payload: Value = parse(e, "data", &e.data)?;
    let sequence = sequence_of(e)?;
    Ok(SerializedEvent {
        aggregate_id: meta.aggregate_id,
        sequence,
        aggregate_type: meta.aggregate_type,
        event_type: e.event_type.to_string(),
        event_version: meta.event_version,
        payload,
        metadata: meta.metadata,
    })
}

/// The annals event for one snapshot.
pub(crate) fn encode_snapshot(
    meta: &SnapshotMeta,
    aggregate: &Value,
) -> Result<EventData, PersistenceError> {
    Ok(
        EventData::new(SNAPSHOT_EVENT_TYPE, serde_json::to_vec(aggregate)?)
            .with_metadata(serde_json::to_vec(meta)?),
    )
}

/// The snapshot stored as `e`, with its metadata.
pub(crate) fn decode_snapshot(
    e: &RecordedEvent,
) -> Result<(SnapshotMeta, SerializedSnapshot), PersistenceError> {
    expect_type(e, SNAPSHOT_EVENT_TYPE)?;
    let meta: SnapshotMeta = parse(e, "metadata", &e.metadata)?;
    let aggregate: Value = parse(e, "data", &e.data)?;
    let snapshot = SerializedSnapshot {
        aggregate_id: meta.aggregate_id.clone(),
        aggregate,
        current_sequence: meta.current_sequence,
        current_snapshot: meta.current_snapshot,
    };
    Ok((meta, snapshot))
}

/// The annals event for one version of a view.
pub(crate) fn encode_view(
    view_name: &str,
    view_id: &str,
    view: &Value,
) -> Result<EventData, PersistenceError> {
    let meta = ViewMeta {
        view_name: view_name.to_owned(),
        view_id: view_id.to_owned(),
    };
    Ok(EventData::new(VIEW_EVENT_TYPE, serde_json::to_vec(view)?)
        .with_metadata(serde_json::to_vec(&meta)?))
}

/// The view stored as `e`, still as JSON.
pub(crate) fn decode_view(e: &RecordedEvent) -> Result<Value, PersistenceError> {
    expect_type(e, VIEW_EVENT_TYPE)?;
    parse(e, "data", &e.data)
}

/// The cqrs-es sequence of the event stored as `e`.
pub(crate) fn sequence_of(e: &RecordedEvent) -> Result<usize, PersistenceError> {
    e.version
        .checked_add(1)
        .and_then(|s| usize::try_from(s).ok())
        .ok_or_else(|| DecodeError::new(e, "the stream version does not fit a sequence").into())
}

fn expect_type(e: &RecordedEvent, want: &str) -> Result<(), PersistenceError> {
    if &*e.event_type == want {
        Ok(())
    } else {
        Err(DecodeError::new(e, format!("event type {:?}, not {want:?}", &*e.event_type)).into())
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    e: &RecordedEvent,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, PersistenceError> {
    serde_json::from_slice(bytes).map_err(|source| DecodeError::json(e, what, source).into())
}
