//! Helpers for annals' fuzz targets: building valid frames and whole
//! segment files with the crate's own encoders, so that a fuzzer can start from well-formed bytes and
//! damage them, rather than hoping to guess a CRC.

use annals::format::{
    FRAME_HEADER_LEN, FrameHeader, MIN_SEGMENT_SIZE, RecordFields, SEGMENT_HEADER_LEN,
    SEGMENT_SIZE_MULTIPLE, Salt, SegmentHeader, encode_frame_header, encode_record,
    encode_segment_header, seal_record,
};

/// One record to encode.
#[derive(Clone, Debug, arbitrary::Arbitrary)]
pub struct Rec {
    pub stream: String,
    pub event_type: String,
    pub metadata: Vec<u8>,
    pub data: Vec<u8>,
    pub id: [u8; 16],
    pub recorded_at_us: u64,
    pub version: u64,
}

/// Encodes `records` as one frame whose first record is at
/// `first_position`, checksums and all. `None` if the frame would be too
/// large for the format, or if a record has an empty stream id or event
/// type: no writer makes one, and the decoder refuses it (an event record
/// needs both; only a scavenge's gap record, which has no lengths at all,
/// goes without).
pub fn build_frame(salt: Salt, first_position: u64, records: &[Rec]) -> Option<Vec<u8>> {
    if records
        .iter()
        .any(|r| r.stream.is_empty() || r.event_type.is_empty())
    {
        return None;
    }
    let mut buf = vec![0u8; FRAME_HEADER_LEN];
    for (i, r) in records.iter().enumerate() {
        annals::format::padded_record_len(
            r.stream.len(),
            r.event_type.len(),
            r.metadata.len(),
            r.data.len(),
        )?;
        let start = buf.len();
        encode_record(
            &mut buf,
            &RecordFields {
                stream: &r.stream,
                event_type: &r.event_type,
                metadata: &r.metadata,
                data: &r.data,
                id: r.id,
                recorded_at_us: r.recorded_at_us,
            },
        );
        seal_record(
            &mut buf[start..],
            salt,
            first_position.checked_add(i as u64)?,
            r.version,
        );
    }
    let header = FrameHeader {
        frame_len: u32::try_from(buf.len()).ok()?,
        first_position,
        event_count: u32::try_from(records.len()).ok()?,
    };
    encode_frame_header(&mut buf, salt, &header);
    Some(buf)
}

/// The smallest valid segment size that holds a header and `body_len`
/// bytes after it.
pub fn segment_size_for(body_len: usize) -> u64 {
    ((SEGMENT_HEADER_LEN + body_len) as u64)
        .next_multiple_of(SEGMENT_SIZE_MULTIPLE)
        .max(MIN_SEGMENT_SIZE)
}

/// A whole segment file as annals lays one out: `header`, then `body` (the
/// frames, or any bytes), then zeros up to the header's segment size.
/// `None` if the body does not fit.
pub fn build_segment(header: &SegmentHeader, body: &[u8]) -> Option<Vec<u8>> {
    let size = usize::try_from(header.segment_size).ok()?;
    let end = SEGMENT_HEADER_LEN.checked_add(body.len())?;
    if end > size {
        return None;
    }
    let mut file = vec![0u8; size];
    file[..SEGMENT_HEADER_LEN].copy_from_slice(&encode_segment_header(header));
    file[SEGMENT_HEADER_LEN..end].copy_from_slice(body);
    Some(file)
}

/// The real file system without `fsync`: what the fuzzer opens stores
/// with, since durability is not what it tests and a sync per run would cap
/// it at a few dozen runs a second.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSyncIo;

impl annals::io::FileIo for NoSyncIo {
    fn create_new(&self, path: &std::path::Path) -> std::io::Result<std::fs::File> {
        annals::io::RealIo.create_new(path)
    }

    fn write_at(
        &self,
        file: &std::fs::File,
        path: &std::path::Path,
        buf: &[u8],
        offset: u64,
    ) -> std::io::Result<()> {
        annals::io::RealIo.write_at(file, path, buf, offset)
    }

    fn sync_data(&self, _file: &std::fs::File, _path: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }

    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        annals::io::RealIo.rename(from, to)
    }

    fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        annals::io::RealIo.remove_file(path)
    }

    fn sync_dir(&self, _dir: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }
}

/// A scratch directory in memory where there is one (`/dev/shm`), so that
/// runs do not wait on a disk.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory")
}
