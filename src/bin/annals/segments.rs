//! Segment files read straight from disk and decoded with `annals::format`,
//! for `dump` and for the tail check of `verify`.
//!
//! The crate does not expose how segment and index files are named or
//! listed, so the naming rule of FORMAT.md (twenty decimal digits and
//! `.seg`, or `.idx` for a segment's index) is repeated here. Nothing in
//! this module writes.

use std::path::{Path, PathBuf};

use annals::format::{
    FrameHeader, Frames, RecordView, SEGMENT_HEADER_LEN, Salt, SegmentHeader, check_segment_header,
};

use crate::exit::{Code, Failure};

/// The file of segment `number` in `dir`.
pub fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.seg"))
}

/// The index file of segment `number` in `dir`.
pub fn index_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.idx"))
}

/// The segment files in `dir`, in number order. Other files are ignored
/// here; opening the store is what judges them.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, Failure> {
    list_numbered(dir, ".seg")
}

/// The segment index files in `dir`, in number order (not the `.idx.tmp`
/// files of index writes under way).
pub fn list_indexes(dir: &Path) -> Result<Vec<(u64, PathBuf)>, Failure> {
    list_numbered(dir, ".idx")
}

/// The files in `dir` named by twenty decimal digits and `suffix`, in
/// number order.
fn list_numbered(dir: &Path, suffix: &str) -> Result<Vec<(u64, PathBuf)>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::new(Code::Failure, format!("cannot list {}: {e}", dir.display())))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Failure::new(Code::Failure, format!("cannot list {}: {e}", dir.display()))
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name.strip_suffix(suffix) else {
            continue;
        };
        if digits.len() == 20
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(number) = digits.parse::<u64>()
        {
            segments.push((number, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// The first thing in a segment file that fails a check.
#[derive(Debug)]
pub struct Problem {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// What failed, for people.
    pub reason: String,
    /// Events in the frames of this segment that checked out before it.
    pub events_before: u64,
}

/// What the walk hands its visitor.
pub enum Visit<'a> {
    /// The segment header, checked.
    Header(&'a SegmentHeader),
    /// A frame that checked out whole, at `offset` in the file, with its
    /// records at their offsets in the file.
    Frame {
        /// Where the frame starts in the file.
        offset: usize,
        /// Its header.
        header: &'a FrameHeader,
        /// Its records, each with its offset in the file.
        records: &'a [(usize, RecordView<'a>)],
    },
}

/// How a segment's walk ended without a problem.
#[derive(Debug, Clone, Copy)]
pub struct Walked {
    /// Frames that checked out.
    pub frames: u64,
    /// Events in them.
    pub events: u64,
    /// Where the written part ends (the end marker, or the end of the file).
    pub end: usize,
    /// The position the next segment's first frame must start at.
    pub next_position: u64,
}

/// Why a walk stopped early.
pub enum Stop {
    /// The segment fails a check.
    Bad(Problem),
    /// The visitor failed (writing output).
    Visitor(Failure),
}

/// Walks the segment `number` whose file holds `untrusted`: checks its
/// header, then every frame up to the end marker, then that only zeros
/// follow, with the crate's one frame walker ([`Frames`]). `next_position`,
/// when given, is where the first frame's position must start (positions
/// run densely across frames and segments).
pub fn walk(
    untrusted: &[u8],
    number: u64,
    next_position: Option<u64>,
    mut visit: impl FnMut(Visit<'_>) -> Result<(), Failure>,
) -> Result<Walked, Stop> {
    let bad = |offset: usize, reason: String, events_before: u64| {
        Stop::Bad(Problem {
            offset: offset as u64,
            reason,
            events_before,
        })
    };
    let header = check_segment_header(untrusted, number, untrusted.len() as u64, None)
        .map_err(|e| bad(e.offset, e.reason, 0))?;
    visit(Visit::Header(&header)).map_err(Stop::Visitor)?;
    let salt = Salt::new(header.store_id, number);
    let mut walked = Walked {
        frames: 0,
        events: 0,
        end: untrusted.len(),
        next_position: next_position.unwrap_or(0),
    };
    let body = untrusted.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
    let mut frames = Frames::new(body, salt).based_at(SEGMENT_HEADER_LEN);
    if let Some(position) = next_position {
        frames = frames.expecting(position);
    }
    let mut records = Vec::new();
    while let Some(frame) = frames.next_frame() {
        records.clear();
        for (at, raw) in frame.records {
            let (Ok(stream), Ok(event_type)) = (
                std::str::from_utf8(raw.stream),
                std::str::from_utf8(raw.event_type),
            ) else {
                return Err(bad(
                    *at,
                    "the record's stream id or event type is not UTF-8".into(),
                    walked.events,
                ));
            };
            records.push((
                *at,
                RecordView {
                    position: raw.position,
                    version: raw.version,
                    recorded_at_us: raw.recorded_at_us,
                    id: raw.id,
                    stream,
                    event_type,
                    metadata: raw.metadata.clone(),
                    data: raw.data.clone(),
                    control: raw.control,
                    gap: raw.gap,
                    padded_len: raw.padded_len,
                },
            ));
        }
        visit(Visit::Frame {
            offset: frame.at,
            header: &frame.header,
            records: &records,
        })
        .map_err(Stop::Visitor)?;
        walked.next_position = frame.positions().end;
        walked.frames += 1;
        walked.events += u64::from(frame.header.event_count);
    }
    let end = frames.finish();
    walked.end = end.at();
    match end.problem() {
        None => Ok(walked),
        Some((offset, reason)) => Err(bad(offset, reason, walked.events)),
    }
}
