//! The commit frame: the unit of one durable write, all or nothing.
//!
//! Format: { frame len | crc32 | first position | event count | reserved |
//! \[records\] }
//!
//! The header checksum covers the header (except itself), salted with the
//! segment; every record carries its own. A frame is valid only when its
//! header and every one of its `event count` records check out and the
//! records fill exactly `frame len` bytes. A frame length of zero marks the
//! end of the written part of a segment.

use super::{
    ALIGN, DecodeError, RECORD_HEADER_LEN, RawRecordView, RecordView, Salt, decode_record,
    decode_record_bytes, put, read_u32, read_u64,
};

/// Bytes of a frame header; the first record follows it.
pub const FRAME_HEADER_LEN: usize = 24;

const LEN_AT: usize = 0;
const CRC_AT: usize = LEN_AT + 4;
/// The offset of the first position in a frame header, for error messages
/// that point at it.
pub const FRAME_FIRST_POSITION_AT: usize = CRC_AT + 4;
const FIRST_POSITION_AT: usize = FRAME_FIRST_POSITION_AT;
const COUNT_AT: usize = FIRST_POSITION_AT + 8;
const RESERVED_AT: usize = COUNT_AT + 4;

const _: () = assert!(RESERVED_AT + 4 == FRAME_HEADER_LEN);
const _: () = assert!(FRAME_HEADER_LEN.is_multiple_of(ALIGN));

/// What a frame header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes of the whole frame, header and records; a multiple of 8.
    pub frame_len: u32,
    /// The global position of the frame's first record.
    pub first_position: u64,
    /// How many records follow the header.
    pub event_count: u32,
}

/// Writes the header of a frame into the first [`FRAME_HEADER_LEN`] bytes of
/// `buf`.
pub fn encode_frame_header(buf: &mut [u8], salt: Salt, header: &FrameHeader) {
    put(buf, LEN_AT, &header.frame_len.to_le_bytes());
    put(buf, FIRST_POSITION_AT, &header.first_position.to_le_bytes());
    put(buf, COUNT_AT, &header.event_count.to_le_bytes());
    put(buf, RESERVED_AT, &0u32.to_le_bytes());
    let crc = header_checksum(buf, salt);
    put(buf, CRC_AT, &crc.to_le_bytes());
}

fn header_checksum(header: &[u8], salt: Salt) -> u32 {
    salt.checksum(&[
        header.get(LEN_AT..CRC_AT).unwrap_or_default(),
        header
            .get(FIRST_POSITION_AT..FRAME_HEADER_LEN)
            .unwrap_or_default(),
    ])
}

/// Decodes and checks the frame header at the start of `untrusted`. Returns
/// `Ok(None)` for the end marker (a zero length word).
pub fn decode_frame_header(
    untrusted: &[u8],
    salt: Salt,
) -> Result<Option<FrameHeader>, DecodeError> {
    let frame_len = read_u32(untrusted, LEN_AT)?;
    if frame_len == 0 {
        return Ok(None);
    }
    let stored_crc = read_u32(untrusted, CRC_AT)?;
    if untrusted.len() < FRAME_HEADER_LEN || header_checksum(untrusted, salt) != stored_crc {
        return Err(DecodeError::new(CRC_AT, "frame header checksum mismatch"));
    }
    let min_len = FRAME_HEADER_LEN + RECORD_HEADER_LEN;
    if (frame_len as usize) < min_len || !(frame_len as usize).is_multiple_of(ALIGN) {
        return Err(DecodeError::new(
            LEN_AT,
            format!("frame length {frame_len} is not a multiple of {ALIGN} of at least {min_len}"),
        ));
    }
    if read_u32(untrusted, RESERVED_AT)? != 0 {
        return Err(DecodeError::new(
            RESERVED_AT,
            "reserved frame bytes are not zero",
        ));
    }
    let event_count = read_u32(untrusted, COUNT_AT)?;
    if event_count == 0 {
        return Err(DecodeError::new(COUNT_AT, "frame holds no events"));
    }
    Ok(Some(FrameHeader {
        frame_len,
        first_position: read_u64(untrusted, FIRST_POSITION_AT)?,
        event_count,
    }))
}

/// Decodes and checks the whole frame at the start of `untrusted`: header,
/// every record, and that the records' positions run densely from the
/// header's first position. Each record is pushed to `records` (cleared
/// first) with its offset from the start of the frame. Returns `Ok(None)` for
/// the end marker.
///
/// Memory use is bounded by the input: at most one entry per
/// [`RECORD_HEADER_LEN`] bytes, whatever the header claims.
pub fn decode_frame<'a>(
    untrusted: &'a [u8],
    salt: Salt,
    records: &mut Vec<(usize, RecordView<'a>)>,
) -> Result<Option<FrameHeader>, DecodeError> {
    decode_frame_with(untrusted, salt, records, decode_record)
}

/// [`decode_frame`], with each record's stream id and event type left as
/// bytes ([`decode_record_bytes`]): for a caller that compares them with
/// names it already holds before paying for a UTF-8 check.
pub fn decode_frame_bytes<'a>(
    untrusted: &'a [u8],
    salt: Salt,
    records: &mut Vec<(usize, RawRecordView<'a>)>,
) -> Result<Option<FrameHeader>, DecodeError> {
    decode_frame_with(untrusted, salt, records, decode_record_bytes)
}

/// What the frame decoder needs to know of a decoded record.
trait Placed {
    fn position(&self) -> u64;
    fn padded_len(&self) -> usize;
}

impl Placed for RecordView<'_> {
    fn position(&self) -> u64 {
        self.position
    }
    fn padded_len(&self) -> usize {
        self.padded_len
    }
}

impl Placed for RawRecordView<'_> {
    fn position(&self) -> u64 {
        self.position
    }
    fn padded_len(&self) -> usize {
        self.padded_len
    }
}

fn decode_frame_with<'a, R: Placed>(
    untrusted: &'a [u8],
    salt: Salt,
    records: &mut Vec<(usize, R)>,
    decode: fn(&'a [u8], Salt) -> Result<R, DecodeError>,
) -> Result<Option<FrameHeader>, DecodeError> {
    records.clear();
    let Some(header) = decode_frame_header(untrusted, salt)? else {
        return Ok(None);
    };
    let frame_len = header.frame_len as usize;
    let Some(frame) = untrusted.get(..frame_len) else {
        return Err(DecodeError::new(
            LEN_AT,
            format!(
                "frame length {frame_len} runs past the end of the segment ({} bytes left)",
                untrusted.len()
            ),
        ));
    };
    let mut at = FRAME_HEADER_LEN;
    let mut expected_position = header.first_position;
    for _ in 0..header.event_count {
        let rest = frame.get(at..).unwrap_or_default();
        let record = decode(rest, salt).map_err(|e| e.shifted(at))?;
        if record.position() != expected_position {
            return Err(DecodeError::new(
                at,
                format!(
                    "record position {} where {expected_position} was expected",
                    record.position()
                ),
            ));
        }
        expected_position = expected_position.saturating_add(1);
        let next = at + record.padded_len();
        records.push((at, record));
        at = next;
    }
    if at != frame_len {
        return Err(DecodeError::new(
            at,
            format!("records end at byte {at} of a frame of {frame_len} bytes"),
        ));
    }
    Ok(Some(header))
}

/// A valid frame of `n` small records of stream "s" from position
/// `first` (versions from 0), for the format's unit tests.
#[cfg(test)]
pub(super) fn test_frame(salt: Salt, first: u64, n: usize) -> Vec<u8> {
    use super::{RecordFields, encode_record, seal_record};
    let mut buf = vec![0u8; FRAME_HEADER_LEN];
    for i in 0..n {
        let start = buf.len();
        encode_record(
            &mut buf,
            &RecordFields {
                stream: "s",
                event_type: "T",
                metadata: b"",
                data: &[i as u8; 13],
                id: [0; 16],
                recorded_at_us: 0,
            },
        );
        if let Some(record) = buf.get_mut(start..) {
            seal_record(record, salt, first + i as u64, i as u64);
        }
    }
    let header = FrameHeader {
        frame_len: buf.len() as u32,
        first_position: first,
        event_count: n as u32,
    };
    encode_frame_header(&mut buf, salt, &header);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(salt: Salt, first: u64, n: usize) -> Vec<u8> {
        test_frame(salt, first, n)
    }

    #[test]
    fn frame_round_trips() {
        let salt = Salt::new(1, 0);
        let buf = frame(salt, 10, 3);
        let mut records = Vec::new();
        let h = decode_frame(&buf, salt, &mut records).unwrap().unwrap();
        assert_eq!((h.first_position, h.event_count), (10, 3));
        let positions: Vec<u64> = records.iter().map(|(_, r)| r.position).collect();
        assert_eq!(positions, vec![10, 11, 12]);
        assert_eq!(records[0].0, FRAME_HEADER_LEN);
    }

    #[test]
    fn every_flip_and_every_cut_is_caught() {
        let salt = Salt::new(1, 0);
        let buf = frame(salt, 0, 2);
        for i in 0..buf.len() {
            let mut damaged = buf.clone();
            damaged[i] ^= 0x80;
            let mut records = Vec::new();
            assert!(
                decode_frame(&damaged, salt, &mut records).is_err(),
                "flip at {i}"
            );
        }
        let mut records = Vec::new();
        for cut in 1..buf.len() {
            assert!(
                decode_frame(&buf[..cut], salt, &mut records).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn zero_length_is_the_end_marker() {
        let mut records = Vec::new();
        assert_eq!(
            decode_frame(&[0u8; 64], Salt::new(0, 0), &mut records),
            Ok(None)
        );
    }
}
