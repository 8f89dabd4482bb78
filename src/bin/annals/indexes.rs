//! Segment index files compared with their segments, for `verify`: what a
//! segment's frames imply its index holds, built while the segment is
//! walked, and the check of an index file's decoded view against it.
//!
//! An index is derived data, so "checks out" means exactly what the
//! segment implies: every field, offset, stream entry and position, and in
//! the end every byte, re-encoded with the library's own encoder.

use std::collections::HashMap;

use annals::index_format::{IndexView, StreamPart, encode_index};

use crate::segments::Visit;

/// What a segment's frames imply its index holds, gathered frame by frame.
#[derive(Debug, Default)]
pub struct Implied {
    /// The store id in the segment header.
    pub store_id: u64,
    /// The position of the segment's first event.
    first_position: Option<u64>,
    /// Each frame: where it starts, where it ends, and the segment's event
    /// count once it is included.
    frames: Vec<(u64, u64, u64)>,
    /// The record offset of each event, in position order.
    offsets: Vec<u32>,
    /// Each event's stream (an index into `names`) and version.
    records: Vec<(usize, u64)>,
    /// Each event's id, in position order.
    ids: Vec<[u8; 16]>,
    /// The streams, in the order of their first event.
    names: Vec<String>,
    by_name: HashMap<String, usize>,
}

/// One stream's part of a segment, as its frames imply it.
struct ImpliedStream {
    first_version: u64,
    positions: Vec<u32>,
}

impl Implied {
    /// Takes one step of the segment's walk into account.
    pub fn add(&mut self, visit: &Visit<'_>) {
        match visit {
            Visit::Header(h) => self.store_id = h.store_id,
            Visit::Frame {
                offset,
                header,
                records,
            } => {
                self.first_position.get_or_insert(header.first_position);
                for (at, r) in records.iter() {
                    let stream = match self.by_name.get(r.stream) {
                        Some(k) => *k,
                        None => {
                            self.names.push(r.stream.to_owned());
                            self.by_name
                                .insert(r.stream.to_owned(), self.names.len() - 1);
                            self.names.len() - 1
                        }
                    };
                    self.offsets.push(u32::try_from(*at).unwrap_or(u32::MAX));
                    self.records.push((stream, r.version));
                    self.ids.push(r.id);
                }
                let start = *offset as u64;
                let end = start + u64::from(header.frame_len);
                self.frames.push((start, end, self.records.len() as u64));
            }
        }
    }

    /// Events in the segment.
    pub fn events(&self) -> u64 {
        self.records.len() as u64
    }

    /// The streams of the segment's first `events` events, by name.
    fn streams(&self, events: usize) -> HashMap<&str, ImpliedStream> {
        let mut streams: HashMap<&str, ImpliedStream> = HashMap::new();
        for (i, (stream, version)) in self.records.iter().take(events).enumerate() {
            let name = self.names.get(*stream).map_or("", String::as_str);
            // A gap record (no stream) takes a position, in no stream.
            if name.is_empty() {
                continue;
            }
            streams
                .entry(name)
                .or_insert_with(|| ImpliedStream {
                    first_version: *version,
                    positions: Vec::new(),
                })
                .positions
                .push(i as u32);
        }
        streams
    }
}

/// How an index file compares with its segment.
pub enum Verdict {
    /// It is exactly what the whole segment implies.
    Whole,
    /// It is flagged open (written at a clean close while its segment was
    /// active) and is exactly what the segment's first `covered` of
    /// `events` events imply.
    Prefix {
        /// Events it covers.
        covered: u64,
        /// Events the segment holds.
        events: u64,
    },
}

/// Checks the index file of segment `number`, `bytes` decoded as `view`,
/// against what the segment's frames imply; the first difference, for
/// people, otherwise.
pub fn check(
    bytes: &[u8],
    view: &IndexView<'_>,
    number: u64,
    segment: &Implied,
) -> Result<Verdict, String> {
    let h = *view.header();
    if h.store_id != segment.store_id {
        return Err(format!(
            "it belongs to store {:#018x}, its segment to store {:#018x}",
            h.store_id, segment.store_id
        ));
    }
    if h.segment_number != number {
        return Err(format!(
            "it says it indexes segment {}, not {number}",
            h.segment_number
        ));
    }
    let (Some(first_position), Some(last)) = (segment.first_position, segment.frames.last()) else {
        return Err("its segment holds no events".into());
    };
    let (last_at, data_end) = (u64::from(h.last_frame_at), u64::from(h.data_end));
    // The frames it covers: all of them, or, for an index written at a
    // clean close while the segment was active, those up to its last frame.
    let covered = if h.open {
        segment
            .frames
            .iter()
            .find(|(at, end, _)| *at == last_at && *end == data_end)
            .map(|(_, _, events)| *events)
            .ok_or_else(|| {
                format!(
                    "the segment holds no frame at offset {last_at} ending at {data_end}, \
                     where the index says its last frame is"
                )
            })?
    } else {
        let (at, end, events) = *last;
        if last_at != at {
            return Err(format!(
                "its last frame is at offset {last_at}, the segment's at {at}"
            ));
        }
        if data_end != end {
            return Err(format!(
                "its data ends at offset {data_end}, the segment's at {end}"
            ));
        }
        events
    };
    if h.first_position != first_position {
        return Err(format!(
            "it starts at position {}, the segment at {first_position}",
            h.first_position
        ));
    }
    if u64::from(h.event_count) != covered {
        return Err(format!(
            "it covers {} events, the segment's frames up to offset {data_end} hold {covered}",
            h.event_count
        ));
    }
    let offsets = segment.offsets.get(..covered as usize).unwrap_or_default();
    for (i, want) in offsets.iter().enumerate() {
        let position = first_position + i as u64;
        match view.offset(position) {
            Some(got) if got == *want => {}
            Some(got) => {
                return Err(format!(
                    "it puts position {position} at offset {got}, the segment at {want}"
                ));
            }
            None => return Err(format!("it has no offset for position {position}")),
        }
    }

    let mut implied = segment.streams(covered as usize);
    if h.stream_count as usize != implied.len() {
        return Err(format!(
            "it lists {} streams, the segment holds events of {}",
            h.stream_count,
            implied.len()
        ));
    }
    let mut names: Vec<&[u8]> = Vec::with_capacity(implied.len());
    for (i, entry) in view.entries().enumerate() {
        let Some(raw) = view.name(&entry) else {
            return Err(format!("stream entry {i} has its name out of bounds"));
        };
        let name = String::from_utf8_lossy(raw);
        let Some(want) = std::str::from_utf8(raw)
            .ok()
            .and_then(|n| implied.remove(n))
        else {
            return Err(format!(
                "it lists stream {name}, which has no events in the segment \
                 (or is listed twice)"
            ));
        };
        if entry.first_version != want.first_version {
            return Err(format!(
                "stream {name}: first version {}, the segment's is {}",
                entry.first_version, want.first_version
            ));
        }
        if entry.count as usize != want.positions.len() {
            return Err(format!(
                "stream {name}: {} events, the segment holds {}",
                entry.count,
                want.positions.len()
            ));
        }
        for (k, relative) in want.positions.iter().enumerate() {
            let version = want.first_version + k as u64;
            let position = first_position + u64::from(*relative);
            let got = view.position(&entry, version);
            if got != Some(position) {
                let got = got.map_or("none".to_owned(), |p| p.to_string());
                return Err(format!(
                    "stream {name}: version {version} at position {got}, the segment's at {position}"
                ));
            }
        }
        if view.stream(raw) != Some(entry) {
            return Err(format!(
                "stream {name} is not found through the index's hash table"
            ));
        }
        names.push(raw);
    }
    if let Some(missing) = implied.keys().next() {
        return Err(format!("it lacks stream {missing}"));
    }

    // Every field agrees; the bytes must too (the hash table, the names,
    // anything the lookups above would not notice).
    let streams = segment.streams(covered as usize);
    let parts: Vec<StreamPart<'_>> = names
        .iter()
        .filter_map(|raw| {
            let s = streams.get(std::str::from_utf8(raw).ok()?)?;
            Some(StreamPart {
                name: raw,
                first_version: s.first_version,
                positions: &s.positions,
            })
        })
        .collect();
    let ids: Vec<([u8; 16], u32)> = segment
        .ids
        .iter()
        .take(covered as usize)
        .copied()
        .zip(0u32..)
        .collect();
    if encode_index(&h, offsets, &parts, &ids).as_deref() != Some(bytes) {
        return Err("its bytes differ from the index its segment implies \
                    (in the hash table, the names, or the event-id filter and table)"
            .into());
    }
    let events = segment.events();
    Ok(if h.open {
        Verdict::Prefix { covered, events }
    } else {
        Verdict::Whole
    })
}
