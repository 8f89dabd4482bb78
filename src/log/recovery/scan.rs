//! Decoding the frames of every segment, checksums and all: the costly part
//! of `open`. It runs on a second thread, a few thousand records ahead of
//! the caller, which builds the index from what was decoded and makes every
//! decision; on a machine with two cores the two halves of the work overlap.
//! Without a second thread (none could be started) it runs inline.

use std::ops::Range;
use std::sync::mpsc;

use crate::error::Error;
use crate::format::{End, Frames, SEGMENT_HEADER_LEN, Salt};

/// How many records a [`Piece`] carries at most: enough to amortise the
/// hand-over, few enough that the pieces in flight stay small (a few
/// hundred KiB).
const PIECE_RECORDS: usize = 4096;
/// How many pieces may wait for the caller.
const PIECES_IN_FLIGHT: usize = 4;

/// Whether a segment that ended with `end` ends the log: the frames
/// after it, if any, are not to be read as a continuation. Only a segment
/// with frames that ends clean is followed by more log.
pub(super) fn ends_log(end: &End) -> bool {
    !matches!(end, End::Clean { at } if *at > SEGMENT_HEADER_LEN)
}

/// A record whose checksum passed.
#[derive(Debug)]
pub(super) struct Found<'a> {
    /// Its offset in the segment file.
    pub offset: u32,
    pub version: u64,
    pub stream: &'a [u8],
    pub event_type: &'a [u8],
    /// The event's id.
    pub id: [u8; 16],
}

/// A frame whose every checksum passed.
#[derive(Debug)]
pub(super) struct FrameFound {
    /// Where it starts and ends in the segment file.
    pub span: Range<usize>,
    pub first_position: u64,
    /// Its records, in [`Piece::records`].
    pub records: Range<usize>,
}

/// Consecutive frames of one segment; the last piece of a segment says how
/// the segment ends.
#[derive(Debug)]
pub(super) struct Piece<'a> {
    /// The index of the segment in the slice given to [`scan`].
    pub segment: usize,
    pub frames: Vec<FrameFound>,
    pub records: Vec<Found<'a>>,
    /// `Some` on the segment's last piece.
    pub end: Option<End>,
}

/// Decodes `segments` (with their `salts`), whose first event has position
/// `first_position`, in order and hands the pieces to `take`, which returns
/// whether to go on. Stops after a segment that ends
/// the log, when `take` says so, or at `take`'s first error.
pub(super) fn scan<'a>(
    segments: &[&'a [u8]],
    salts: &[Salt],
    first_position: u64,
    take: &mut dyn FnMut(Piece<'a>) -> Result<bool, Error>,
) -> Result<(), Error> {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(PIECES_IN_FLIGHT);
        let worker = std::thread::Builder::new()
            .name("annals-recovery".into())
            .spawn_scoped(scope, move || {
                decode(segments, salts, first_position, &mut |p| tx.send(p).is_ok())
            });
        if worker.is_ok() {
            for piece in rx {
                if !take(piece)? {
                    break;
                }
            }
            // Dropping the receiver stops the worker at its next piece.
            return Ok(());
        }
        let mut result = Ok(());
        decode(
            segments,
            salts,
            first_position,
            &mut |piece| match take(piece) {
                Ok(go_on) => go_on,
                Err(e) => {
                    result = Err(e);
                    false
                }
            },
        );
        result
    })
}

/// Decodes segment after segment into pieces for `sink`, which returns
/// whether to go on. Positions must run on densely from segment to segment.
fn decode<'a>(
    segments: &[&'a [u8]],
    salts: &[Salt],
    first_position: u64,
    sink: &mut dyn FnMut(Piece<'a>) -> bool,
) {
    let mut next_position = first_position;
    for (segment, (untrusted, salt)) in segments.iter().zip(salts).enumerate() {
        let fresh = || Piece {
            segment,
            frames: Vec::new(),
            records: Vec::with_capacity(PIECE_RECORDS),
            end: None,
        };
        let mut piece = fresh();
        let body = untrusted.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
        let mut frames = Frames::new(body, *salt)
            .based_at(SEGMENT_HEADER_LEN)
            .expecting(next_position);
        while let Some(frame) = frames.next_frame() {
            let first = piece.records.len();
            piece
                .records
                .extend(frame.records.iter().map(|(offset, r)| Found {
                    offset: *offset as u32,
                    version: r.version,
                    stream: r.stream,
                    event_type: r.event_type,
                    id: r.id,
                }));
            piece.frames.push(FrameFound {
                span: frame.at..frame.end(),
                first_position: frame.header.first_position,
                records: first..piece.records.len(),
            });
            if piece.records.len() >= PIECE_RECORDS && !sink(std::mem::replace(&mut piece, fresh()))
            {
                return;
            }
        }
        next_position = frames.next_position().unwrap_or(next_position);
        let end = frames.finish();
        let last = ends_log(&end);
        piece.end = Some(end);
        if !sink(piece) || last {
            return;
        }
    }
}
