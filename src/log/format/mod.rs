//! The on-disk format: pure encoding and decoding of segment headers, commit
//! frames and event records on byte slices. No I/O happens here, so the
//! decoder can be fuzzed on its own.
//!
//! FORMAT.md is the source of truth for every layout; the constants in the
//! submodules mirror its byte maps field by field. All integers are
//! little-endian. Bytes handed to a decoder are `untrusted` until their
//! checksum passes, so nothing here indexes a slice in a way that can panic.

#![deny(clippy::indexing_slicing)]

mod frame;
mod header;
mod record;
mod time;
mod walk;

use std::fmt;

pub use frame::{
    FRAME_FIRST_POSITION_AT, FRAME_HEADER_LEN, FrameHeader, decode_frame, decode_frame_bytes,
    decode_frame_header, encode_frame_header,
};
pub use header::{
    FORMAT_VERSION, MAGIC, MAX_SEGMENT_SIZE, MIN_FORMAT_VERSION, MIN_SEGMENT_SIZE,
    SEGMENT_HEADER_LEN, SEGMENT_SIZE_MULTIPLE, SegmentHeader, check_segment_header,
    decode_segment_header, encode_segment_header, segment_format_version,
};
pub use record::{
    RECORD_FLAG_CONTROL, RECORD_FLAG_GAP, RECORD_HEADER_LEN, RawRecordView, RecordFields,
    RecordView, decode_record, decode_record_bytes, decode_record_checked, encode_record,
    padded_record_len, seal_record, set_gap_lengths, set_record_flags, set_recorded_at,
};
pub use time::{recorded_at_time, recorded_at_utc};
pub use walk::{End, Frame, Frames};

/// Every frame and record starts on a multiple of this many bytes.
pub const ALIGN: usize = 8;

/// The index of the first non-zero byte of `bytes`. Segments are mostly
/// zeros past their end of log, and recovery checks that they are, so this
/// looks at 64 bytes at a time in a form the compiler vectorises.
pub fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    const CHUNK: usize = 64;
    let (chunks, remainder) = bytes.as_chunks::<CHUNK>();
    let tail_at = bytes.len() - remainder.len();
    for (i, chunk) in chunks.iter().enumerate() {
        if any_nonzero(chunk) {
            return chunk.iter().position(|b| *b != 0).map(|j| i * CHUNK + j);
        }
    }
    bytes
        .get(tail_at..)
        .and_then(|tail| tail.iter().position(|b| *b != 0))
        .map(|j| tail_at + j)
}

/// Whether a 64-byte chunk holds a non-zero byte; a fixed-size fold the
/// compiler turns into a few vector instructions.
fn any_nonzero(chunk: &[u8; 64]) -> bool {
    chunk.iter().fold(0u8, |acc, b| acc | b) != 0
}

/// The index of the last non-zero byte of `bytes`.
pub fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    const CHUNK: usize = 64;
    let (remainder, chunks) = bytes.as_rchunks::<CHUNK>();
    let head_len = remainder.len();
    for (i, chunk) in chunks.iter().rev().enumerate() {
        if any_nonzero(chunk) {
            let start = bytes.len() - (i + 1) * CHUNK;
            return chunk.iter().rposition(|b| *b != 0).map(|j| start + j);
        }
    }
    bytes
        .get(..head_len)
        .and_then(|head| head.iter().rposition(|b| *b != 0))
}

/// Rounds `len` up to the next multiple of [`ALIGN`], or `None` on overflow.
pub fn align_up(len: usize) -> Option<usize> {
    len.checked_add(ALIGN - 1).map(|n| n & !(ALIGN - 1))
}

/// The per-segment checksum salt: the CRC32 of the store id and the segment
/// number, used as the starting state of every frame and record checksum in
/// that segment. Bytes copied from another segment, or another store, fail
/// their checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Salt(u32);

impl Salt {
    /// The salt of segment `segment_number` of the store `store_id`.
    pub fn new(store_id: u64, segment_number: u64) -> Salt {
        let mut h = crc32fast::Hasher::new();
        h.update(&store_id.to_le_bytes());
        h.update(&segment_number.to_le_bytes());
        Salt(h.finalize())
    }

    /// A hasher that continues from the salt.
    fn hasher(self) -> crc32fast::Hasher {
        crc32fast::Hasher::new_with_initial(self.0)
    }

    /// The salted checksum of `parts` fed one after another.
    pub(crate) fn checksum(self, parts: &[&[u8]]) -> u32 {
        let mut h = self.hasher();
        for p in parts {
            h.update(p);
        }
        h.finalize()
    }
}

/// Why a byte slice is not what the format says it must be, and where in the
/// slice the problem starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The byte offset of the problem, from the start of the decoded slice.
    pub offset: usize,
    /// What check failed, for people.
    pub reason: String,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            offset,
            reason: reason.into(),
        }
    }

    /// The same error, its offset moved by `base` bytes.
    pub(crate) fn shifted(self, base: usize) -> DecodeError {
        DecodeError {
            offset: self.offset.saturating_add(base),
            reason: self.reason,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Reads `N` bytes at `at`, or says the slice is too short.
#[inline]
fn array<const N: usize>(untrusted: &[u8], at: usize) -> Result<[u8; N], DecodeError> {
    at.checked_add(N)
        .and_then(|end| untrusted.get(at..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| DecodeError::new(at, format!("truncated: {N} bytes needed here")))
}

#[inline]
fn read_u32(untrusted: &[u8], at: usize) -> Result<u32, DecodeError> {
    array::<4>(untrusted, at).map(u32::from_le_bytes)
}

#[inline]
fn read_u64(untrusted: &[u8], at: usize) -> Result<u64, DecodeError> {
    array::<8>(untrusted, at).map(u64::from_le_bytes)
}

/// Writes `bytes` at `at` in `buf`; the caller sized `buf` for its layout.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    } else {
        debug_assert!(false, "encode buffer too small for its layout");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_search_matches_the_naive_one() {
        for len in [0usize, 1, 63, 64, 65, 200, 1000] {
            for at in 0..len {
                let mut v = vec![0u8; len];
                v[at] = 1;
                assert_eq!(first_nonzero(&v), Some(at));
                assert_eq!(last_nonzero(&v), Some(at));
                if at + 7 < len {
                    v[at + 7] = 9;
                    assert_eq!(first_nonzero(&v), Some(at));
                    assert_eq!(last_nonzero(&v), Some(at + 7));
                }
            }
            assert_eq!(first_nonzero(&vec![0u8; len]), None);
            assert_eq!(last_nonzero(&vec![0u8; len]), None);
        }
    }
}
