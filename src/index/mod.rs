//! The in-memory index: global positions and stream versions to where their
//! records lie, and the segments those locations point into.
//!
//! This folder owns what maps positions, streams and (later) event ids to
//! places in the log. It may import `crate::log::format` and
//! `crate::log::segment`, nothing above them.
//!
//! Positions and versions are dense, so both maps are plain vectors: the
//! location of position `p` is `events[p]`, and the position of version `v`
//! of a stream is `positions[v]` of that stream. Memory use is about 24
//! bytes per event plus one entry per stream and per distinct event type.

use std::collections::HashMap;
use std::sync::Arc;

use crate::format::FRAME_FIRST_POSITION_AT;
use crate::log::segment::Segment;

/// Where one event's record lies, and the ids of its stream and type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// The segment number, which is also its index in [`Index::segments`].
    pub segment: u32,
    /// The record's byte offset in the segment file.
    pub offset: u32,
    /// The stream's id in [`Index::stream_name`].
    pub stream: u32,
    /// The event type's id in [`Index::type_name`].
    pub event_type: u32,
}

/// One record of a frame, as [`Index::push_frame`] takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    /// The stream id's bytes, checked to be non-empty UTF-8 on the way in.
    pub stream: &'a [u8],
    /// The event type's bytes, checked likewise.
    pub event_type: &'a [u8],
    pub version: u64,
    /// The record's byte offset in its segment file.
    pub offset: u32,
}

/// Why a frame was refused, and where in its segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub offset: u64,
    pub reason: String,
}

/// The sizes of an [`Index`] at one moment; see [`Index::rollback`].
#[derive(Clone, Copy, Debug)]
struct Checkpoint {
    events: usize,
    streams: usize,
    types: usize,
}

#[derive(Debug)]
struct Stream {
    name: Arc<str>,
    /// The global position of each version, in version order.
    positions: Vec<u64>,
}

/// Positions, streams, event types and segments of one store.
#[derive(Debug, Default)]
pub(crate) struct Index {
    segments: Vec<Arc<Segment>>,
    events: Vec<Location>,
    streams: Vec<Stream>,
    stream_ids: HashMap<Arc<str>, u32>,
    types: Vec<Arc<str>>,
    type_ids: HashMap<Arc<str>, u32>,
    /// The stream and type ids of the last push: a batch's records share
    /// them, so most pushes skip both hash lookups.
    last: Option<(u32, u32)>,
}

impl Index {
    /// How many events the store holds: the next global position.
    pub(crate) fn len(&self) -> u64 {
        self.events.len() as u64
    }

    /// The segments, in number order.
    pub(crate) fn segments(&self) -> &[Arc<Segment>] {
        &self.segments
    }

    /// Adds the next segment.
    pub(crate) fn push_segment(&mut self, segment: Arc<Segment>) {
        debug_assert_eq!(segment.number(), self.segments.len() as u64);
        self.segments.push(segment);
    }

    /// The last version of `stream`, `None` when it has no events.
    pub(crate) fn stream_version(&self, stream: &str) -> Option<u64> {
        let id = *self.stream_ids.get(stream)?;
        let positions = &self.streams.get(id as usize)?.positions;
        (positions.len() as u64).checked_sub(1)
    }

    /// How many streams there are.
    pub(crate) fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Records the events of the frame at `frame_at` of segment `segment`,
    /// whose first event has position `first_position`, all or nothing: a
    /// frame that does not start at [`len`](Index::len), or one of whose
    /// records [`push`](Index::push) refuses, leaves the index as it was.
    pub(crate) fn push_frame<'a>(
        &mut self,
        segment: u32,
        frame_at: usize,
        first_position: u64,
        entries: impl IntoIterator<Item = Entry<'a>>,
    ) -> Result<(), Refused> {
        if first_position != self.len() {
            return Err(Refused {
                offset: (frame_at + FRAME_FIRST_POSITION_AT) as u64,
                reason: format!(
                    "frame starts at position {first_position} where {} was expected",
                    self.len()
                ),
            });
        }
        let mark = self.checkpoint();
        for e in entries {
            if let Err(reason) = self.push(e.stream, e.event_type, e.version, segment, e.offset) {
                self.rollback(mark);
                return Err(Refused {
                    offset: u64::from(e.offset),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Records the next event, at position [`len`](Index::len). The stream
    /// id and event type come as bytes from disk: they are checked to be
    /// non-empty UTF-8 unless they equal the last push's names, which were.
    /// Fails, naming the problem, on bad names or when `version` is not the
    /// stream's next version.
    fn push(
        &mut self,
        stream: &[u8],
        event_type: &[u8],
        version: u64,
        segment: u32,
        offset: u32,
    ) -> Result<(), String> {
        let position = self.len();
        let (last_stream, last_type) = match self.last {
            Some((s, t)) => (
                self.stream_name(s)
                    .filter(|n| n.as_bytes() == stream)
                    .map(|_| s),
                self.type_name(t)
                    .filter(|n| n.as_bytes() == event_type)
                    .map(|_| t),
            ),
            None => (None, None),
        };
        // Resolve and check both names and the version before changing
        // anything, so that a refused push leaves the index as it was.
        let stream_id = match last_stream {
            Some(id) => Ok(id),
            None => {
                let name = name(stream, "stream id")?;
                self.stream_ids.get(name).copied().ok_or(name)
            }
        };
        let type_id = match last_type {
            Some(id) => Ok(id),
            None => {
                let name = name(event_type, "event type")?;
                self.type_ids.get(name).copied().ok_or(name)
            }
        };
        let next_version = stream_id
            .ok()
            .and_then(|id| self.streams.get(id as usize))
            .map_or(0, |s| s.positions.len() as u64);
        if version != next_version {
            return Err(format!(
                "stream '{}' has version {version} where {next_version} was expected",
                crate::error::excerpt(&String::from_utf8_lossy(stream))
            ));
        }
        let stream_id = match stream_id {
            Ok(id) => id,
            Err(name) => {
                let id = u32::try_from(self.streams.len())
                    .map_err(|_| "more than 2^32 streams".to_owned())?;
                let name: Arc<str> = Arc::from(name);
                self.stream_ids.insert(Arc::clone(&name), id);
                self.streams.push(Stream {
                    name,
                    positions: Vec::new(),
                });
                id
            }
        };
        let type_id = match type_id {
            Ok(id) => id,
            Err(name) => {
                let id = u32::try_from(self.types.len())
                    .map_err(|_| "more than 2^32 event types".to_owned())?;
                let name: Arc<str> = Arc::from(name);
                self.type_ids.insert(Arc::clone(&name), id);
                self.types.push(name);
                id
            }
        };
        let Some(entry) = self.streams.get_mut(stream_id as usize) else {
            return Err("stream table out of step".to_owned());
        };
        entry.positions.push(position);
        self.last = Some((stream_id, type_id));
        self.events.push(Location {
            segment,
            offset,
            stream: stream_id,
            event_type: type_id,
        });
        Ok(())
    }

    /// A mark to [`rollback`](Index::rollback) to.
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            events: self.events.len(),
            streams: self.streams.len(),
            types: self.types.len(),
        }
    }

    /// Undoes every push since `mark`, so that a frame refused halfway
    /// leaves no part of itself visible.
    fn rollback(&mut self, mark: Checkpoint) {
        for location in self.events.drain(mark.events..) {
            if let Some(stream) = self.streams.get_mut(location.stream as usize) {
                stream.positions.pop();
            }
        }
        for stream in self.streams.drain(mark.streams..) {
            self.stream_ids.remove(&stream.name);
        }
        for name in self.types.drain(mark.types..) {
            self.type_ids.remove(&name);
        }
        self.last = None;
    }

    /// The location of the event at `position`.
    pub(crate) fn location(&self, position: u64) -> Option<Location> {
        usize::try_from(position)
            .ok()
            .and_then(|p| self.events.get(p))
            .copied()
    }

    /// Up to `max_count` positions of `stream`, from version `from_version`
    /// on; `None` when the stream has no events.
    pub(crate) fn stream_positions(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Option<&[u64]> {
        let id = *self.stream_ids.get(stream)?;
        let positions = &self.streams.get(id as usize)?.positions;
        let from = usize::try_from(from_version)
            .unwrap_or(usize::MAX)
            .min(positions.len());
        let to = from.saturating_add(max_count).min(positions.len());
        positions.get(from..to)
    }

    /// The shared name of stream id `id`.
    pub(crate) fn stream_name(&self, id: u32) -> Option<&Arc<str>> {
        self.streams.get(id as usize).map(|s| &s.name)
    }

    /// The shared name of event type id `id`.
    pub(crate) fn type_name(&self, id: u32) -> Option<&Arc<str>> {
        self.types.get(id as usize)
    }

    /// Streams with their event counts, for statistics.
    pub(crate) fn stream_lengths(&self) -> impl Iterator<Item = (&Arc<str>, u64)> {
        self.streams
            .iter()
            .map(|s| (&s.name, s.positions.len() as u64))
    }
}

/// `bytes` as a name: non-empty UTF-8.
fn name<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, String> {
    if bytes.is_empty() {
        return Err(format!("{what} is empty"));
    }
    std::str::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_must_be_dense_per_stream() {
        let mut index = Index::default();
        index.push(b"a", b"T", 0, 0, 64).unwrap();
        index.push(b"b", b"T", 0, 0, 128).unwrap();
        index.push(b"a", b"U", 1, 0, 192).unwrap();
        assert!(index.push(b"a", b"T", 5, 0, 256).is_err());
        assert!(index.push(b"\xff", b"T", 0, 0, 256).is_err());
        // A bad type refuses the push whole: no orphan stream "c".
        assert!(index.push(b"c", b"", 0, 0, 256).is_err());
        assert!(index.push(b"c", b"\xff", 0, 0, 256).is_err());
        assert_eq!(index.stream_count(), 2);
        assert_eq!(index.len(), 3);
        assert_eq!(index.stream_version("a"), Some(1));
        assert_eq!(index.stream_version("c"), None);
        assert_eq!(index.stream_positions("a", 0, 10), Some(&[0u64, 2][..]));
        assert_eq!(index.stream_positions("a", 1, 10), Some(&[2u64][..]));
        assert_eq!(index.stream_positions("a", u64::MAX, 10), Some(&[][..]));
        let loc = index.location(2).unwrap();
        assert_eq!(index.type_name(loc.event_type).map(|t| &**t), Some("U"));
        assert_eq!(index.location(3), None);

        // A frame refused at its last record leaves none of itself behind.
        let entry = |stream: &'static [u8], event_type: &'static [u8], version, offset| Entry {
            stream,
            event_type,
            version,
            offset,
        };
        let refused = index.push_frame(
            0,
            248,
            3,
            [
                entry(b"a", b"T", 2, 256),
                entry(b"new", b"NewType", 0, 320),
                entry(b"a", b"T", 9, 384),
            ],
        );
        assert_eq!(refused.unwrap_err().offset, 384);
        let misplaced = index.push_frame(0, 248, 4, [entry(b"a", b"T", 2, 256)]);
        assert_eq!(
            misplaced.unwrap_err().offset,
            (248 + FRAME_FIRST_POSITION_AT) as u64
        );
        assert_eq!(index.len(), 3);
        assert_eq!(index.stream_version("a"), Some(1));
        assert_eq!(index.stream_version("new"), None);
        assert_eq!(index.stream_count(), 2);
        index.push(b"new", b"T", 0, 0, 256).unwrap();
        assert_eq!(index.stream_version("new"), Some(0));
    }
}
