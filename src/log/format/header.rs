//! The segment header: the first [`SEGMENT_HEADER_LEN`] bytes of every
//! segment file.
//!
//! Format: { magic | format version | header len | store id | segment number
//! | segment size | reserved | crc32 }

use super::{DecodeError, array, put, read_u32, read_u64};

/// The first eight bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"ANNALSEG";
/// The format version this code writes. Version 2 gave the record's
/// reserved field a meaning (its flags: a control record; see FORMAT.md),
/// so a build that reads only version 1 refuses a segment that may hold
/// one rather than misreading it.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this code reads: version 1 segments hold no
/// control records, and read as they always did.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header; the first frame starts right after it.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// The smallest segment size a header may give: one page.
pub const MIN_SEGMENT_SIZE: u64 = 4 << 10;
/// The largest segment size a header may give. Offsets inside a segment are
/// held in 32 bits in memory, and a segment is mapped whole.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 30;
/// Segment sizes are multiples of this (the page size on common machines).
pub const SEGMENT_SIZE_MULTIPLE: u64 = 4 << 10;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + 8;
const HEADER_LEN_AT: usize = VERSION_AT + 4;
const STORE_ID_AT: usize = HEADER_LEN_AT + 4;
const SEGMENT_NUMBER_AT: usize = STORE_ID_AT + 8;
const SEGMENT_SIZE_AT: usize = SEGMENT_NUMBER_AT + 8;
const RESERVED_AT: usize = SEGMENT_SIZE_AT + 8;
const CRC_AT: usize = SEGMENT_HEADER_LEN - 4;

const _: () = assert!(RESERVED_AT <= CRC_AT);
const _: () = assert!(SEGMENT_HEADER_LEN.is_multiple_of(super::ALIGN));

/// What a segment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Random at store creation, the same in every segment of one store.
    pub store_id: u64,
    /// The segment's number, which its file name repeats.
    pub segment_number: u64,
    /// The file's size in bytes, fixed at creation.
    pub segment_size: u64,
}

/// Encodes `header` into its [`SEGMENT_HEADER_LEN`] bytes.
pub fn encode_segment_header(header: &SegmentHeader) -> [u8; SEGMENT_HEADER_LEN] {
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    put(&mut buf, MAGIC_AT, &MAGIC);
    put(&mut buf, VERSION_AT, &FORMAT_VERSION.to_le_bytes());
    put(
        &mut buf,
        HEADER_LEN_AT,
        &(SEGMENT_HEADER_LEN as u32).to_le_bytes(),
    );
    put(&mut buf, STORE_ID_AT, &header.store_id.to_le_bytes());
    put(
        &mut buf,
        SEGMENT_NUMBER_AT,
        &header.segment_number.to_le_bytes(),
    );
    put(
        &mut buf,
        SEGMENT_SIZE_AT,
        &header.segment_size.to_le_bytes(),
    );
    let crc = crc32fast::hash(buf.get(..CRC_AT).unwrap_or_default());
    put(&mut buf, CRC_AT, &crc.to_le_bytes());
    buf
}

/// Decodes and checks a segment header from the start of `untrusted`.
pub fn decode_segment_header(untrusted: &[u8]) -> Result<SegmentHeader, DecodeError> {
    let magic = array::<8>(untrusted, MAGIC_AT)?;
    if magic != MAGIC {
        return Err(DecodeError::new(
            MAGIC_AT,
            "not an annals segment (bad magic)",
        ));
    }
    let stored_crc = read_u32(untrusted, CRC_AT)?;
    let covered = untrusted.get(..CRC_AT).unwrap_or_default();
    if crc32fast::hash(covered) != stored_crc {
        return Err(DecodeError::new(CRC_AT, "segment header checksum mismatch"));
    }
    let version = read_u32(untrusted, VERSION_AT)?;
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(DecodeError::new(
            VERSION_AT,
            format!(
                "unsupported format version {version} (this build reads {MIN_FORMAT_VERSION} to {FORMAT_VERSION})"
            ),
        ));
    }
    let header_len = read_u32(untrusted, HEADER_LEN_AT)?;
    if header_len as usize != SEGMENT_HEADER_LEN {
        return Err(DecodeError::new(
            HEADER_LEN_AT,
            format!("segment header length {header_len}, expected {SEGMENT_HEADER_LEN}"),
        ));
    }
    if untrusted
        .get(RESERVED_AT..CRC_AT)
        .is_none_or(|r| r.iter().any(|b| *b != 0))
    {
        return Err(DecodeError::new(
            RESERVED_AT,
            "reserved header bytes are not zero",
        ));
    }
    Ok(SegmentHeader {
        store_id: read_u64(untrusted, STORE_ID_AT)?,
        segment_number: read_u64(untrusted, SEGMENT_NUMBER_AT)?,
        segment_size: read_u64(untrusted, SEGMENT_SIZE_AT)?,
    })
}

/// The format version a segment header gives, read without any check:
/// for a header that [`decode_segment_header`] already accepted.
pub fn segment_format_version(header: &[u8]) -> Option<u32> {
    read_u32(header, VERSION_AT).ok()
}

/// Decodes the header of segment file `number`, `file_len` bytes long, and
/// checks it against the file: its number, a valid segment size that is the
/// file's length, and, given segment 0's header as `first`, the same store
/// and size. Offsets in the error are offsets in the file.
pub fn check_segment_header(
    untrusted: &[u8],
    number: u64,
    file_len: u64,
    first: Option<&SegmentHeader>,
) -> Result<SegmentHeader, DecodeError> {
    let header = decode_segment_header(untrusted)?;
    if header.segment_number != number {
        return Err(DecodeError::new(
            SEGMENT_NUMBER_AT,
            format!(
                "header says segment {}, file name says {number}",
                header.segment_number
            ),
        ));
    }
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&header.segment_size)
        || !header.segment_size.is_multiple_of(SEGMENT_SIZE_MULTIPLE)
    {
        return Err(DecodeError::new(
            SEGMENT_SIZE_AT,
            format!(
                "header gives an invalid segment size {}",
                header.segment_size
            ),
        ));
    }
    if header.segment_size != file_len {
        return Err(DecodeError::new(
            usize::try_from(file_len).unwrap_or(usize::MAX),
            format!(
                "file is {file_len} bytes but its header says {}",
                header.segment_size
            ),
        ));
    }
    if let Some(first) = first {
        if header.store_id != first.store_id {
            return Err(DecodeError::new(
                STORE_ID_AT,
                "segment belongs to another store (store id differs)",
            ));
        }
        if header.segment_size != first.segment_size {
            return Err(DecodeError::new(
                SEGMENT_SIZE_AT,
                "segment size differs from segment 0's",
            ));
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_every_flipped_byte_is_caught() {
        let h = SegmentHeader {
            store_id: 0x0123_4567_89ab_cdef,
            segment_number: 7,
            segment_size: 1 << 20,
        };
        let bytes = encode_segment_header(&h);
        assert_eq!(decode_segment_header(&bytes), Ok(h));
        for i in 0..bytes.len() {
            let mut damaged = bytes;
            damaged[i] ^= 0x40;
            assert!(
                decode_segment_header(&damaged).is_err(),
                "flip at {i} passed"
            );
        }
        assert!(decode_segment_header(&bytes[..10]).is_err());
        assert!(decode_segment_header(&[0u8; SEGMENT_HEADER_LEN]).is_err());
    }

    #[test]
    fn a_header_is_checked_against_its_file() {
        let h = SegmentHeader {
            store_id: 9,
            segment_number: 2,
            segment_size: 8 << 10,
        };
        let bytes = encode_segment_header(&h);
        assert_eq!(check_segment_header(&bytes, 2, 8 << 10, Some(&h)), Ok(h));
        let offset = |r: Result<SegmentHeader, DecodeError>| r.unwrap_err().offset;
        assert_eq!(
            offset(check_segment_header(&bytes, 3, 8 << 10, None)),
            SEGMENT_NUMBER_AT
        );
        assert_eq!(
            offset(check_segment_header(&bytes, 2, 12 << 10, None)),
            12 << 10
        );
        let other = SegmentHeader { store_id: 8, ..h };
        assert_eq!(
            offset(check_segment_header(&bytes, 2, 8 << 10, Some(&other))),
            STORE_ID_AT
        );
        let odd = encode_segment_header(&SegmentHeader {
            segment_size: 5000,
            ..h
        });
        assert_eq!(
            offset(check_segment_header(&odd, 2, 5000, None)),
            SEGMENT_SIZE_AT
        );
    }
}
