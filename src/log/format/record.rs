//! One event record inside a commit frame.
//!
//! Format: { record len | crc32 | position | version | recorded at | id |
//! stream len | type len | metadata len | data len | flags | stream |
//! type | metadata | data | zero padding to 8 }
//!
//! The checksum covers every byte of the record except itself and the
//! padding, salted with the segment (see [`Salt`]).

use std::ops::Range;

use super::{ALIGN, DecodeError, Salt, align_up, put, read_u32};

/// Bytes of a record's fixed part; the variable fields follow it.
pub const RECORD_HEADER_LEN: usize = 64;

const LEN_AT: usize = 0;
const CRC_AT: usize = LEN_AT + 4;
const POSITION_AT: usize = CRC_AT + 4;
const VERSION_AT: usize = POSITION_AT + 8;
const RECORDED_AT_AT: usize = VERSION_AT + 8;
const ID_AT: usize = RECORDED_AT_AT + 8;
const STREAM_LEN_AT: usize = ID_AT + 16;
const TYPE_LEN_AT: usize = STREAM_LEN_AT + 2;
const METADATA_LEN_AT: usize = TYPE_LEN_AT + 2;
const DATA_LEN_AT: usize = METADATA_LEN_AT + 4;
const FLAGS_AT: usize = DATA_LEN_AT + 4;

const _: () = assert!(FLAGS_AT + 4 == RECORD_HEADER_LEN);

/// Record flag bit 0 (format version 2): a control record. It changes the
/// state of another stream (delete, tombstone, truncate, limits) and is no
/// event: no read returns it. The other flag bits must be zero.
pub const RECORD_FLAG_CONTROL: u32 = 1;
/// Record flag bit 1 (format version 2): a gap record, which a scavenge
/// writes in place of a removed event so that positions stay dense in the
/// frame: the 64-byte header alone (every length zero, so no stream and no
/// type), holding nothing of the event but its position (see FORMAT.md,
/// "Scavenge"). No read returns it, and no stream has it.
pub const RECORD_FLAG_GAP: u32 = 2;
/// Every flag bit this build knows.
const KNOWN_FLAGS: u32 = RECORD_FLAG_CONTROL | RECORD_FLAG_GAP;
const _: () = assert!(RECORD_HEADER_LEN.is_multiple_of(ALIGN));

/// The caller-given fields of a record. Position and version are assigned
/// at commit by [`seal_record`].
#[derive(Clone, Copy, Debug)]
pub struct RecordFields<'a> {
    /// The stream id, 1 to 65,535 bytes of UTF-8.
    pub stream: &'a str,
    /// The event type, 1 to 65,535 bytes of UTF-8.
    pub event_type: &'a str,
    /// Opaque metadata.
    pub metadata: &'a [u8],
    /// Opaque payload.
    pub data: &'a [u8],
    /// The event id's 16 bytes.
    pub id: [u8; 16],
    /// Microseconds since the Unix epoch.
    pub recorded_at_us: u64,
}

/// The unpadded and padded length of a record with these variable parts,
/// or `None` when a field is over what the format can hold.
pub fn padded_record_len(
    stream_len: usize,
    type_len: usize,
    metadata_len: usize,
    data_len: usize,
) -> Option<(usize, usize)> {
    if stream_len > usize::from(u16::MAX)
        || type_len > usize::from(u16::MAX)
        || u32::try_from(metadata_len).is_err()
        || u32::try_from(data_len).is_err()
    {
        return None;
    }
    let len = RECORD_HEADER_LEN
        .checked_add(stream_len)?
        .checked_add(type_len)?
        .checked_add(metadata_len)?
        .checked_add(data_len)?;
    u32::try_from(len).ok()?;
    Some((len, align_up(len)?))
}

/// Appends the record, padded, to `out` with zero position, version and
/// checksum, and returns its padded length. The caller has validated the
/// field lengths with [`padded_record_len`].
pub fn encode_record(out: &mut Vec<u8>, fields: &RecordFields<'_>) -> usize {
    let Some((len, padded)) = padded_record_len(
        fields.stream.len(),
        fields.event_type.len(),
        fields.metadata.len(),
        fields.data.len(),
    ) else {
        debug_assert!(false, "encode_record called with unchecked lengths");
        return 0;
    };
    let start = out.len();
    out.resize(start + RECORD_HEADER_LEN, 0);
    let head = out.get_mut(start..).unwrap_or_default();
    put(head, LEN_AT, &(len as u32).to_le_bytes());
    put(head, RECORDED_AT_AT, &fields.recorded_at_us.to_le_bytes());
    put(head, ID_AT, &fields.id);
    put(
        head,
        STREAM_LEN_AT,
        &(fields.stream.len() as u16).to_le_bytes(),
    );
    put(
        head,
        TYPE_LEN_AT,
        &(fields.event_type.len() as u16).to_le_bytes(),
    );
    put(
        head,
        METADATA_LEN_AT,
        &(fields.metadata.len() as u32).to_le_bytes(),
    );
    put(head, DATA_LEN_AT, &(fields.data.len() as u32).to_le_bytes());
    out.extend_from_slice(fields.stream.as_bytes());
    out.extend_from_slice(fields.event_type.as_bytes());
    out.extend_from_slice(fields.metadata);
    out.extend_from_slice(fields.data);
    out.resize(start + padded, 0);
    padded
}

/// Fills in the position, version and checksum of an encoded record at the
/// start of `record`.
pub fn seal_record(record: &mut [u8], salt: Salt, position: u64, version: u64) {
    put(record, POSITION_AT, &position.to_le_bytes());
    put(record, VERSION_AT, &version.to_le_bytes());
    let len = read_u32(record, LEN_AT).map_or(0, |l| l as usize);
    let crc = salt.checksum(&[
        record.get(LEN_AT..CRC_AT).unwrap_or_default(),
        record.get(POSITION_AT..len).unwrap_or_default(),
    ]);
    put(record, CRC_AT, &crc.to_le_bytes());
}

/// Sets the recorded-at time of an encoded, not yet sealed record at the
/// start of `record`: a replication import keeps its source's times, where
/// [`encode_record`] callers give one time to a whole batch.
pub fn set_recorded_at(record: &mut [u8], recorded_at_us: u64) {
    put(record, RECORDED_AT_AT, &recorded_at_us.to_le_bytes());
}

/// Zeroes the four lengths of a record header and sets its length to the
/// header's: the shape of a gap record, before [`seal_record`].
pub fn set_gap_lengths(record: &mut [u8]) {
    put(record, LEN_AT, &(RECORD_HEADER_LEN as u32).to_le_bytes());
    put(record, STREAM_LEN_AT, &0u16.to_le_bytes());
    put(record, TYPE_LEN_AT, &0u16.to_le_bytes());
    put(record, METADATA_LEN_AT, &0u32.to_le_bytes());
    put(record, DATA_LEN_AT, &0u32.to_le_bytes());
}

/// Sets the flags of an encoded record at the start of `record`, before
/// [`seal_record`] checksums it.
pub fn set_record_flags(record: &mut [u8], flags: u32) {
    put(record, FLAGS_AT, &flags.to_le_bytes());
}

/// A checked record, borrowing the bytes it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The global position.
    pub position: u64,
    /// The version within its stream.
    pub version: u64,
    /// Microseconds since the Unix epoch.
    pub recorded_at_us: u64,
    /// The event id's 16 bytes.
    pub id: [u8; 16],
    /// The stream id.
    pub stream: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// Where the metadata lies, relative to the start of the record.
    pub metadata: Range<usize>,
    /// Where the data lies, relative to the start of the record.
    pub data: Range<usize>,
    /// The record's length including padding: where the next one starts.
    pub padded_len: usize,
    /// Whether it is a control record ([`RECORD_FLAG_CONTROL`]), which no
    /// read returns as an event.
    pub control: bool,
    /// Whether it is a gap record ([`RECORD_FLAG_GAP`]), which no read
    /// returns.
    pub gap: bool,
}

/// A checked record whose stream id and event type are still bytes: what
/// [`decode_record_bytes`] returns, for a reader that compares them with
/// names it already holds instead of validating them as UTF-8 again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecordView<'a> {
    /// The global position.
    pub position: u64,
    /// The version within its stream.
    pub version: u64,
    /// Microseconds since the Unix epoch.
    pub recorded_at_us: u64,
    /// The event id's 16 bytes.
    pub id: [u8; 16],
    /// The stream id's bytes, not yet checked to be UTF-8.
    pub stream: &'a [u8],
    /// The event type's bytes, not yet checked to be UTF-8.
    pub event_type: &'a [u8],
    /// Where the metadata lies, relative to the start of the record.
    pub metadata: Range<usize>,
    /// Where the data lies, relative to the start of the record.
    pub data: Range<usize>,
    /// The record's length including padding: where the next one starts.
    pub padded_len: usize,
    /// Whether it is a control record ([`RECORD_FLAG_CONTROL`]), which no
    /// read returns as an event.
    pub control: bool,
    /// Whether it is a gap record ([`RECORD_FLAG_GAP`]), which no read
    /// returns.
    pub gap: bool,
}

/// Decodes and checks the record at the start of `untrusted`, which may
/// extend past it, including that its stream id and event type are
/// non-empty UTF-8.
pub fn decode_record(untrusted: &[u8], salt: Salt) -> Result<RecordView<'_>, DecodeError> {
    let raw = decode_record_bytes(untrusted, salt)?;
    Ok(RecordView {
        position: raw.position,
        version: raw.version,
        recorded_at_us: raw.recorded_at_us,
        id: raw.id,
        // A gap record has no stream and no type: it is nothing but a
        // position.
        stream: if raw.gap {
            ""
        } else {
            text(raw.stream, RECORD_HEADER_LEN, "stream id")?
        },
        event_type: if raw.gap {
            ""
        } else {
            text(
                raw.event_type,
                RECORD_HEADER_LEN + raw.stream.len(),
                "event type",
            )?
        },
        metadata: raw.metadata,
        data: raw.data,
        padded_len: raw.padded_len,
        control: raw.control,
        gap: raw.gap,
    })
}

/// Decodes and checks the record at the start of `untrusted` like
/// [`decode_record`], except that the stream id and event type are left as
/// bytes.
pub fn decode_record_bytes(untrusted: &[u8], salt: Salt) -> Result<RawRecordView<'_>, DecodeError> {
    decode_record_checked(untrusted, Some(salt))
}

/// Decodes the record at the start of `untrusted` like
/// [`decode_record_bytes`], its checksum (and its padding) checked only
/// when `salt` is given. `None` is for a record whose checksum passed
/// earlier in the same map, whose bytes never change (a reader's verified
/// records, see FORMAT.md, "Reading"); a record never checked must be
/// given its salt. Inlined, so that a reader's loop does not copy the
/// large view through a returned `Result`.
#[inline(always)]
pub fn decode_record_checked(
    untrusted: &[u8],
    salt: Option<Salt>,
) -> Result<RawRecordView<'_>, DecodeError> {
    let len = read_u32(untrusted, LEN_AT)? as usize;
    if len < RECORD_HEADER_LEN {
        return Err(DecodeError::new(
            LEN_AT,
            format!("record length {len} is below the minimum {RECORD_HEADER_LEN}"),
        ));
    }
    let padded_len = align_up(len).unwrap_or(usize::MAX);
    let Some(record) = untrusted.get(..padded_len) else {
        return Err(DecodeError::new(
            LEN_AT,
            format!(
                "record length {len} runs past the end of its frame ({} bytes left)",
                untrusted.len()
            ),
        ));
    };
    // The fixed part, read with no further bounds checks: `len` is at least
    // its length.
    let Some(head) = record.first_chunk::<RECORD_HEADER_LEN>().map(Head) else {
        return Err(DecodeError::new(LEN_AT, "record shorter than its header"));
    };
    if let Some(salt) = salt {
        let crc = salt.checksum(&[
            record.get(LEN_AT..CRC_AT).unwrap_or_default(),
            record.get(POSITION_AT..len).unwrap_or_default(),
        ]);
        if crc != head.u32::<CRC_AT>() {
            return Err(DecodeError::new(CRC_AT, "record checksum mismatch"));
        }
        // From here on the bytes are the ones that were written; the checks
        // below catch an encoder bug rather than damage.
        if record
            .get(len..)
            .is_some_and(|pad| pad.iter().any(|b| *b != 0))
        {
            return Err(DecodeError::new(len, "record padding is not zero"));
        }
    }
    let flags = head.u32::<FLAGS_AT>();
    if flags & !KNOWN_FLAGS != 0 || flags == KNOWN_FLAGS {
        return Err(DecodeError::new(
            FLAGS_AT,
            format!("unknown record flags {flags:#x}"),
        ));
    }
    if flags & RECORD_FLAG_GAP != 0 && len != RECORD_HEADER_LEN {
        return Err(DecodeError::new(
            LEN_AT,
            "a gap record holds nothing but its header",
        ));
    }
    let stream_len = usize::from(head.u16::<STREAM_LEN_AT>());
    let type_len = usize::from(head.u16::<TYPE_LEN_AT>());
    // Only a gap record has no stream: so an empty stream id means a gap
    // to everything that reads records.
    if flags & RECORD_FLAG_GAP == 0 && (stream_len == 0 || type_len == 0) {
        return Err(DecodeError::new(
            STREAM_LEN_AT,
            "an event record with an empty stream id or event type",
        ));
    }
    let metadata_len = head.u32::<METADATA_LEN_AT>() as usize;
    let data_len = head.u32::<DATA_LEN_AT>() as usize;
    if padded_record_len(stream_len, type_len, metadata_len, data_len).map(|(l, _)| l) != Some(len)
    {
        return Err(DecodeError::new(
            STREAM_LEN_AT,
            "field lengths do not add up to the record length",
        ));
    }
    let stream_at = RECORD_HEADER_LEN;
    let type_at = stream_at + stream_len;
    let metadata_at = type_at + type_len;
    let data_at = metadata_at + metadata_len;
    let (Some(stream), Some(event_type)) = (
        record.get(stream_at..type_at),
        record.get(type_at..metadata_at),
    ) else {
        return Err(DecodeError::new(stream_at, "field runs past the record"));
    };
    Ok(RawRecordView {
        position: head.u64::<POSITION_AT>(),
        version: head.u64::<VERSION_AT>(),
        recorded_at_us: head.u64::<RECORDED_AT_AT>(),
        id: head.id(),
        stream,
        event_type,
        metadata: metadata_at..data_at,
        data: data_at..len,
        padded_len,
        control: flags & RECORD_FLAG_CONTROL != 0,
        gap: flags & RECORD_FLAG_GAP != 0,
    })
}

/// A record's fixed part, whose fields are read at constant offsets.
struct Head<'a>(&'a [u8; RECORD_HEADER_LEN]);

impl Head<'_> {
    /// The `N` bytes at `AT`; zeros past the end, which the constant
    /// offsets below never reach (`RECORD_HEADER_LEN` covers every field).
    fn bytes<const AT: usize, const N: usize>(&self) -> [u8; N] {
        self.0
            .get(AT..)
            .and_then(|rest| rest.first_chunk::<N>())
            .copied()
            .unwrap_or([0; N])
    }

    fn u16<const AT: usize>(&self) -> u16 {
        u16::from_le_bytes(self.bytes::<AT, 2>())
    }

    fn u32<const AT: usize>(&self) -> u32 {
        u32::from_le_bytes(self.bytes::<AT, 4>())
    }

    fn u64<const AT: usize>(&self) -> u64 {
        u64::from_le_bytes(self.bytes::<AT, 8>())
    }

    fn id(&self) -> [u8; 16] {
        self.bytes::<ID_AT, 16>()
    }
}

/// `bytes`, found at offset `at` of a record, as non-empty UTF-8 text.
fn text<'a>(bytes: &'a [u8], at: usize, what: &str) -> Result<&'a str, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::new(at, format!("{what} is empty")));
    }
    std::str::from_utf8(bytes).map_err(|_| DecodeError::new(at, format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Salt) {
        let salt = Salt::new(42, 3);
        let mut buf = Vec::new();
        let n = encode_record(
            &mut buf,
            &RecordFields {
                stream: "order-42",
                event_type: "OrderPlaced",
                metadata: b"meta",
                data: br#"{"total":10}"#,
                id: [7; 16],
                recorded_at_us: 1_700_000_000_000_000,
            },
        );
        assert_eq!(n, buf.len());
        assert_eq!(n % ALIGN, 0);
        seal_record(&mut buf, salt, 100, 5);
        (buf, salt)
    }

    #[test]
    fn record_round_trips() {
        let (buf, salt) = sample();
        let r = decode_record(&buf, salt).unwrap();
        assert_eq!((r.position, r.version), (100, 5));
        assert_eq!((r.stream, r.event_type), ("order-42", "OrderPlaced"));
        assert_eq!(&buf[r.metadata.clone()], b"meta");
        assert_eq!(&buf[r.data.clone()], br#"{"total":10}"#);
        assert_eq!(r.id, [7; 16]);
        assert_eq!(r.padded_len, buf.len());
    }

    #[test]
    fn every_flipped_byte_or_other_salt_is_caught() {
        let (buf, salt) = sample();
        assert!(decode_record(&buf, Salt::new(42, 4)).is_err());
        assert!(decode_record(&buf, Salt::new(43, 3)).is_err());
        for i in 0..buf.len() {
            let mut damaged = buf.clone();
            damaged[i] ^= 0x01;
            assert!(decode_record(&damaged, salt).is_err(), "flip at {i} passed");
        }
    }

    #[test]
    fn zeroes_and_truncations_never_parse() {
        let (buf, salt) = sample();
        assert!(decode_record(&[0u8; 256], salt).is_err());
        for cut in 0..buf.len() {
            assert!(
                decode_record(&buf[..cut], salt).is_err(),
                "cut at {cut} passed"
            );
        }
    }
}
