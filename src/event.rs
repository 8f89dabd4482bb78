//! The public value types: what a caller appends and what a read returns.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use uuid::Uuid;

use crate::read::filter::Filter;

/// An event to append: a type name, a payload and optional metadata.
///
/// The payload and metadata are opaque bytes to annals; JSON, protobuf or
/// anything else is the caller's choice.
///
/// ```
/// use annals::EventData;
///
/// let event = EventData::new("OrderPlaced", br#"{"total":10}"#.to_vec())
///     .with_metadata(br#"{"user":"ada"}"#.to_vec());
/// assert_eq!(event.event_type(), "OrderPlaced");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EventData {
    pub(crate) event_type: String,
    pub(crate) data: Vec<u8>,
    pub(crate) metadata: Vec<u8>,
    pub(crate) id: Option<Uuid>,
}

impl EventData {
    /// An event of type `event_type` carrying `data`, with no metadata and an
    /// id generated at append time (a time-ordered UUID v7).
    pub fn new(event_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        EventData {
            event_type: event_type.into(),
            data: data.into(),
            metadata: Vec::new(),
            id: None,
        }
    }

    /// Attaches metadata (correlation ids, the acting user, ...) to the event.
    #[must_use]
    pub fn with_metadata(mut self, metadata: impl Into<Vec<u8>>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Gives the event a caller-chosen id instead of a generated one, for
    /// example to make a retried command recognisable downstream.
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The metadata; empty when none was given.
    pub fn metadata(&self) -> &[u8] {
        &self.metadata
    }

    /// The caller-chosen id, if any.
    pub fn id(&self) -> Option<Uuid> {
        self.id
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventData")
            .field("event_type", &self.event_type)
            .field("data_len", &self.data.len())
            .field("metadata_len", &self.metadata.len())
            .field("id", &self.id)
            .finish()
    }
}

/// An event as stored: what [`Store::read_stream`](crate::Store::read_stream)
/// and [`Store::read_all`](crate::Store::read_all) return.
///
/// `data` and `metadata` are [`Bytes`] that share the segment's memory map
/// rather than copies: cloning one is a reference-count increment, and
/// keeping one alive keeps its segment mapped. `stream_id` and `event_type`
/// are shared strings, not allocated anew for every event read.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream the event belongs to.
    pub stream_id: Arc<str>,
    /// Its version within the stream, counting from 0.
    pub version: u64,
    /// Its position in the global log, counting from 0.
    pub position: u64,
    /// The event type.
    pub event_type: Arc<str>,
    /// The payload.
    pub data: Bytes,
    /// The metadata; empty when none was given.
    pub metadata: Bytes,
    /// The event id: the caller's, or a UUID v7 generated at append.
    pub id: Uuid,
    /// When the append was called, in microseconds since the Unix epoch.
    pub recorded_at: u64,
}

impl RecordedEvent {
    /// When the append was called, as a [`SystemTime`](std::time::SystemTime)
    /// (from [`RecordedEvent::recorded_at`], microseconds since the Unix
    /// epoch).
    pub fn recorded_at_time(&self) -> std::time::SystemTime {
        crate::log::format::recorded_at_time(self.recorded_at)
    }
}

impl fmt::Debug for RecordedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedEvent")
            .field("stream_id", &self.stream_id)
            .field("version", &self.version)
            .field("position", &self.position)
            .field("event_type", &self.event_type)
            .field("data_len", &self.data.len())
            .field("metadata_len", &self.metadata.len())
            .field("id", &self.id)
            .field("recorded_at", &self.recorded_at)
            .finish()
    }
}

/// An event as stored, borrowed from the segment's memory map: what
/// [`Store::read_stream_with`](crate::Store::read_stream_with) and
/// [`Store::read_all_with`](crate::Store::read_all_with) hand to their
/// closure, one event at a time.
///
/// It holds the same fields as a [`RecordedEvent`], and costs nothing to
/// make: no reference count, no allocation. It lives only for the call of
/// the closure; keep what you need of it, or make a [`RecordedEvent`] of it
/// with [`to_recorded`](EventRef::to_recorded) (which copies).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The stream the event belongs to.
    pub stream_id: &'a str,
    /// Its version within the stream, counting from 0.
    pub version: u64,
    /// Its position in the global log, counting from 0.
    pub position: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The payload.
    pub data: &'a [u8],
    /// The metadata; empty when none was given.
    pub metadata: &'a [u8],
    /// The event id: the caller's, or a UUID v7 generated at append.
    pub id: Uuid,
    /// When the append was called, in microseconds since the Unix epoch.
    pub recorded_at: u64,
}

impl EventRef<'_> {
    /// An owned copy of the event: its strings and bytes copied out of the
    /// map.
    pub fn to_recorded(&self) -> RecordedEvent {
        RecordedEvent {
            stream_id: Arc::from(self.stream_id),
            version: self.version,
            position: self.position,
            event_type: Arc::from(self.event_type),
            data: Bytes::copy_from_slice(self.data),
            metadata: Bytes::copy_from_slice(self.metadata),
            id: self.id,
            recorded_at: self.recorded_at,
        }
    }
}

impl fmt::Debug for EventRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRef")
            .field("stream_id", &self.stream_id)
            .field("version", &self.version)
            .field("position", &self.position)
            .field("event_type", &self.event_type)
            .field("data_len", &self.data.len())
            .field("metadata_len", &self.metadata.len())
            .field("id", &self.id)
            .field("recorded_at", &self.recorded_at)
            .finish()
    }
}

/// The optimistic-concurrency check an append makes before it writes.
///
/// The rules are EventStoreDB's. A failed check returns
/// [`Error::WrongExpectedVersion`](crate::Error::WrongExpectedVersion) and
/// writes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check: the append always passes.
    Any,
    /// Passes only if the stream has no events.
    NoStream,
    /// Passes only if the stream has at least one event.
    StreamExists,
    /// Passes only if the stream's last version is exactly this one.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` (`None`: no events)
    /// passes this check.
    pub fn admits(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(n) => actual == Some(n),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(n) => write!(f, "version {n}"),
        }
    }
}

/// What an append wrote: the versions and global positions its events got.
///
/// Both ranges are half-open and dense. For an empty batch they are empty and
/// start where the next event would go.
///
/// A retried append whose events are all already stored (found by their
/// ids, see [`Store::append`](crate::Store::append)) writes nothing and
/// returns the original append's versions and positions, with
/// [`deduplicated`](AppendResult::deduplicated) set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream versions written.
    pub versions: Range<u64>,
    /// The global positions written. When the original events were written
    /// by one append (the retry of a batch), they are dense; should the
    /// batch's events have been written by several appends of the stream,
    /// with other streams' events between them, the range runs from the
    /// first event's position to the last's and holds those others too.
    pub positions: Range<u64>,
    /// Whether the append wrote nothing because every event of the batch
    /// was already stored, by an earlier append of the same batch: the
    /// ranges are then those of the events already stored.
    pub deduplicated: bool,
}

impl AppendResult {
    /// The version of the first event written, or of the next event when
    /// nothing was written.
    pub fn first_version(&self) -> u64 {
        self.versions.start
    }

    /// The version of the last event written; for an empty batch, the
    /// stream's last version (`None` if it still has no events).
    pub fn last_version(&self) -> Option<u64> {
        self.versions.end.checked_sub(1)
    }

    /// The global position of the first event written, or of the next event
    /// when nothing was written.
    pub fn first_position(&self) -> u64 {
        self.positions.start
    }

    /// The global position of the last event written, `None` when nothing
    /// was written.
    pub fn last_position(&self) -> Option<u64> {
        if self.positions.is_empty() {
            None
        } else {
            self.positions.end.checked_sub(1)
        }
    }

    /// How many events were written (for a deduplicated append, how many
    /// were already stored): the length of the batch.
    pub fn len(&self) -> usize {
        usize::try_from(self.versions.end - self.versions.start).unwrap_or(usize::MAX)
    }

    /// Whether nothing was written (an empty batch).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

/// One stream's share of an atomic multi-stream append
/// ([`Store::append_multi`](crate::Store::append_multi)): the stream, the
/// expected-version check it must pass, and its events.
#[derive(Clone, Debug)]
pub struct StreamAppend {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<EventData>,
}

impl StreamAppend {
    /// Appends `events` to `stream` if its version passes `expected`.
    pub fn new(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> StreamAppend {
        StreamAppend {
            stream: stream.into(),
            expected,
            events,
        }
    }

    /// The stream appended to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The check the stream's version must pass.
    pub fn expected(&self) -> ExpectedVersion {
        self.expected
    }

    /// The events, in order.
    pub fn events(&self) -> &[EventData] {
        &self.events
    }
}

/// The condition of a conditional append
/// ([`Store::append_if`](crate::Store::append_if),
/// [`Store::append_multi_if`](crate::Store::append_multi_if)): no event
/// passing `filter` may have been appended after position `after` (with
/// `None`: none may exist at all).
///
/// This is the "dynamic consistency boundary": a decision made on a query
/// (say, every `SeatReserved` and `SeatReleased` event of streams starting
/// with `seat-`) read up to some position holds only if nothing the query
/// would have returned was appended since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendCondition {
    filter: Filter,
    after: Option<u64>,
}

impl AppendCondition {
    /// No event passing `filter` at a position past `after` (none at all
    /// when `after` is `None`).
    pub fn new(filter: Filter, after: Option<u64>) -> AppendCondition {
        AppendCondition { filter, after }
    }

    /// The query whose events must not have been appended.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The last position the decision saw; `None` when it saw nothing.
    pub fn after(&self) -> Option<u64> {
        self.after
    }

    /// The first position the condition looks at.
    pub(crate) fn first_position_checked(&self) -> u64 {
        self.after.map_or(0, |a| a.saturating_add(1))
    }
}

/// Microseconds since the Unix epoch, saturating at zero for a clock set
/// before 1970.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_version_rules_follow_eventstoredb() {
        assert!(ExpectedVersion::Any.admits(None));
        assert!(ExpectedVersion::Any.admits(Some(3)));
        assert!(ExpectedVersion::NoStream.admits(None));
        assert!(!ExpectedVersion::NoStream.admits(Some(0)));
        assert!(!ExpectedVersion::StreamExists.admits(None));
        assert!(ExpectedVersion::StreamExists.admits(Some(0)));
        assert!(ExpectedVersion::Exact(2).admits(Some(2)));
        assert!(!ExpectedVersion::Exact(2).admits(Some(1)));
        assert!(!ExpectedVersion::Exact(0).admits(None));
    }

    #[test]
    fn empty_append_result_names_the_stream_version() {
        let r = AppendResult {
            versions: 5..5,
            positions: 9..9,
            deduplicated: false,
        };
        assert!(r.is_empty());
        assert_eq!(r.last_version(), Some(4));
        assert_eq!(r.last_position(), None);
        assert_eq!(r.first_position(), 9);
    }
}
