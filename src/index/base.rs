//! The bytes of the log's base: where a log whose oldest segments were
//! dropped by `$all` retention now starts, and what the dropped segments
//! knew that the rest of the log does not. Pure encode and decode, no I/O;
//! FORMAT.md ("Log base") gives the layout.
//!
//! Unlike the index files and the catalog, the base is not derived data:
//! the segments it replaces are gone, so nothing could rebuild it. A base
//! that fails a check stops the open with `Error::Corruption`, like a
//! damaged segment. What it holds is bounded by streams, not events:
//!
//! - the first segment number and first position of the log;
//! - every stream some of whose versions were dropped (and that is not
//!   gone: a tombstoned or deleted stream's name is left out, so that a
//!   scavenge can erase it), with its next version and the first version
//!   still held;
//! - every stream's lifecycle state, by key, since the control record that
//!   set it may have been dropped.

#![deny(clippy::indexing_slicing)]

use super::catalog::{put, read_u32, read_u64};
use crate::lifecycle::{STATE_LEN, StreamKey, StreamState};

/// The first eight bytes of a base file.
pub const BASE_MAGIC: [u8; 8] = *b"ANNALBAS";
/// The version of the base format this code writes and reads.
pub const BASE_VERSION: u32 = 1;
/// Bytes of the header.
pub const BASE_HEADER_LEN: usize = 64;
/// Bytes of one stream's fixed part (then its name).
pub const BASE_STREAM_LEN: usize = 20;
/// Bytes of one lifecycle state: the stream's key, then the state.
pub const BASE_STATE_LEN: usize = 16 + STATE_LEN;

const VERSION_AT: usize = 8;
const STREAM_COUNT_AT: usize = 12;
const STORE_ID_AT: usize = 16;
const FIRST_SEGMENT_AT: usize = 24;
const FIRST_POSITION_AT: usize = 32;
const STATE_COUNT_AT: usize = 40;
const BODY_LEN_AT: usize = 44;
const BODY_CRC_AT: usize = 48;
const HEADER_CRC_AT: usize = 60;

/// A stream some of whose versions lay in dropped segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseStream {
    /// The stream id.
    pub name: String,
    /// How many versions it had used when the base was written.
    pub next_version: u64,
    /// The first version the log still holds (every earlier one was
    /// dropped).
    pub first_version: u64,
}

/// A decoded base.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Base {
    /// The store it belongs to.
    pub store_id: u64,
    /// The number of the log's first segment.
    pub first_segment: u32,
    /// The position of the first event of that segment.
    pub first_position: u64,
    /// The streams that lost versions, in no particular order.
    pub streams: Vec<BaseStream>,
    /// Every lifecycle state, by stream key.
    pub(crate) states: Vec<(StreamKey, StreamState)>,
}

/// Encodes a base. `None` if a count does not fit its field.
pub fn encode_base(base: &Base) -> Option<Vec<u8>> {
    let mut out = vec![0u8; BASE_HEADER_LEN];
    for s in &base.streams {
        out.extend_from_slice(&s.next_version.to_le_bytes());
        out.extend_from_slice(&s.first_version.to_le_bytes());
        out.extend_from_slice(&u32::try_from(s.name.len()).ok()?.to_le_bytes());
        out.extend_from_slice(s.name.as_bytes());
    }
    for (key, state) in &base.states {
        out.extend_from_slice(key);
        out.extend_from_slice(&state.encode());
    }
    let body_len = u32::try_from(out.len() - BASE_HEADER_LEN).ok()?;
    let body_crc = crc32fast::hash(out.get(BASE_HEADER_LEN..).unwrap_or_default());
    put(&mut out, 0, &BASE_MAGIC);
    put(&mut out, VERSION_AT, &BASE_VERSION.to_le_bytes());
    let streams = u32::try_from(base.streams.len()).ok()?;
    put(&mut out, STREAM_COUNT_AT, &streams.to_le_bytes());
    put(&mut out, STORE_ID_AT, &base.store_id.to_le_bytes());
    put(
        &mut out,
        FIRST_SEGMENT_AT,
        &u64::from(base.first_segment).to_le_bytes(),
    );
    put(
        &mut out,
        FIRST_POSITION_AT,
        &base.first_position.to_le_bytes(),
    );
    let states = u32::try_from(base.states.len()).ok()?;
    put(&mut out, STATE_COUNT_AT, &states.to_le_bytes());
    put(&mut out, BODY_LEN_AT, &body_len.to_le_bytes());
    put(&mut out, BODY_CRC_AT, &body_crc.to_le_bytes());
    let header_crc = crc32fast::hash(out.get(..HEADER_CRC_AT).unwrap_or_default());
    put(&mut out, HEADER_CRC_AT, &header_crc.to_le_bytes());
    Some(out)
}

/// Decodes and checks a base: magic, version, both checksums, the length,
/// every entry inside the body, names UTF-8 and distinct, each stream's
/// first version at most its next, and every state one this build reads.
pub fn decode_base(untrusted: &[u8]) -> Result<Base, String> {
    let head = untrusted
        .get(..BASE_HEADER_LEN)
        .ok_or_else(|| format!("base of {} bytes has no header", untrusted.len()))?;
    if head.get(..8) != Some(&BASE_MAGIC[..]) {
        return Err("not an annals log base (bad magic)".into());
    }
    let u32_at = |at| read_u32(head, at).ok_or("base too short");
    let u64_at = |at| read_u64(head, at).ok_or("base too short");
    if crc32fast::hash(head.get(..HEADER_CRC_AT).unwrap_or_default()) != u32_at(HEADER_CRC_AT)? {
        return Err("base header fails its checksum".into());
    }
    let version = u32_at(VERSION_AT)?;
    if version != BASE_VERSION {
        return Err(format!(
            "log base format version {version}, where this build reads {BASE_VERSION}"
        ));
    }
    if head
        .get(52..HEADER_CRC_AT)
        .is_none_or(|r| r.iter().any(|b| *b != 0))
    {
        return Err("base header's reserved bytes are not zero".into());
    }
    let body = untrusted.get(BASE_HEADER_LEN..).unwrap_or_default();
    if body.len() != u32_at(BODY_LEN_AT)? as usize {
        return Err("base length is not what its header says".into());
    }
    if crc32fast::hash(body) != u32_at(BODY_CRC_AT)? {
        return Err("base body fails its checksum".into());
    }
    let first_segment = u32::try_from(u64_at(FIRST_SEGMENT_AT)?)
        .map_err(|_| "base's first segment is beyond 2^32".to_owned())?;
    let stream_count = u32_at(STREAM_COUNT_AT)? as usize;
    let state_count = u32_at(STATE_COUNT_AT)? as usize;
    // Every entry takes at least its fixed part: counts the body cannot
    // hold are refused before anything is allocated for them.
    if stream_count > body.len() / BASE_STREAM_LEN || state_count > body.len() / BASE_STATE_LEN {
        return Err("base counts more entries than it holds".into());
    }
    let mut streams = Vec::with_capacity(stream_count);
    let mut names = std::collections::HashSet::with_capacity(stream_count);
    let mut at = 0usize;
    for _ in 0..stream_count {
        let next_version = read_u64(body, at).ok_or("base stream cut short")?;
        let first_version = read_u64(body, at + 8).ok_or("base stream cut short")?;
        let len = read_u32(body, at + 16).ok_or("base stream cut short")? as usize;
        let start = at + BASE_STREAM_LEN;
        let bytes = start
            .checked_add(len)
            .and_then(|end| body.get(start..end))
            .ok_or("base stream name cut short")?;
        let name = std::str::from_utf8(bytes)
            .ok()
            .filter(|n| !n.is_empty())
            .ok_or("base stream name is not a stream id")?;
        if first_version > next_version || first_version == 0 {
            return Err(format!(
                "base stream '{}' holds versions from {first_version} of {next_version}",
                crate::error::excerpt(name)
            ));
        }
        if !names.insert(name) {
            return Err(format!(
                "base stream '{}' listed twice",
                crate::error::excerpt(name)
            ));
        }
        streams.push(BaseStream {
            name: name.to_owned(),
            next_version,
            first_version,
        });
        at = start + len;
    }
    let mut states = Vec::with_capacity(state_count);
    for _ in 0..state_count {
        let entry = at
            .checked_add(BASE_STATE_LEN)
            .and_then(|end| body.get(at..end))
            .ok_or("base state cut short")?;
        let (key, state) = entry.split_at(16);
        let key: StreamKey = key.try_into().map_err(|_| "base state cut short")?;
        let state =
            StreamState::decode(state).ok_or("base holds a state this build does not read")?;
        states.push((key, state));
        at += BASE_STATE_LEN;
    }
    if at != body.len() {
        return Err("base holds bytes after its last entry".into());
    }
    Ok(Base {
        store_id: u64_at(STORE_ID_AT)?,
        first_segment,
        first_position: u64_at(FIRST_POSITION_AT)?,
        streams,
        states,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Base {
        Base {
            store_id: 3,
            first_segment: 7,
            first_position: 4_200,
            streams: vec![
                BaseStream {
                    name: "order-1".into(),
                    next_version: 10,
                    first_version: 4,
                },
                BaseStream {
                    name: "x".into(),
                    next_version: 1,
                    first_version: 1,
                },
            ],
            states: vec![(
                [9; 16],
                StreamState {
                    deleted_before: 3,
                    truncate_before: 2,
                    tombstoned: false,
                    max_count: Some(5),
                    max_age_us: None,
                },
            )],
        }
    }

    #[test]
    fn a_base_round_trips_and_any_damage_or_cut_is_refused() {
        let base = sample();
        let bytes = encode_base(&base).unwrap();
        assert_eq!(decode_base(&bytes).unwrap(), base);
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x08;
            assert!(decode_base(&damaged).is_err(), "flip at {at} passed");
        }
        for len in 0..bytes.len() {
            assert!(decode_base(&bytes[..len]).is_err(), "cut at {len} passed");
        }
        let empty = Base::default();
        assert_eq!(decode_base(&encode_base(&empty).unwrap()).unwrap(), empty);
    }

    #[test]
    fn streams_that_do_not_make_sense_are_refused_even_when_checksummed() {
        let mut twice = sample();
        twice.streams.push(twice.streams[0].clone());
        let mut backwards = sample();
        backwards.streams[0].first_version = 11;
        let mut nothing_dropped = sample();
        nothing_dropped.streams[1].first_version = 0;
        let mut unnamed = sample();
        unnamed.streams[1].name.clear();
        for (what, base) in [
            ("listed twice", twice),
            ("first version past next", backwards),
            ("nothing dropped", nothing_dropped),
            ("empty name", unnamed),
        ] {
            let bytes = encode_base(&base).unwrap();
            assert!(decode_base(&bytes).is_err(), "{what} passed");
        }
    }
}
