//! A read-only store catching up with a writer in another process.
//!
//! The writer appends frames at the end of its active segment and, when a
//! batch does not fit, moves on to the next segment. A follower keeps its
//! own tail (segment and offset) and, on each refresh, takes every frame
//! past it that checks out. A frame that does not check out yet is a write
//! in progress: the follower stops there and tries again next time. The
//! bytes are copied out of the map before they are checked, since the
//! writer may be writing them at that moment.

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::format::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, decode_frame_bytes, decode_frame_header,
};
use crate::index::Index;
use crate::recovery::open_segment;
use crate::segment::{self, Segment};

/// Where a follower has read up to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tail {
    pub segment: u32,
    pub offset: usize,
}

/// Adds to `index` every complete frame written past `tail`, and returns how
/// many events were added.
pub(crate) fn follow(
    dir: &Path,
    first: SegmentHeader,
    index: &mut Index,
    tail: &mut Tail,
) -> Result<u64, Error> {
    let start = index.len();
    loop {
        let Some(seg) = index.segments().get(tail.segment as usize).cloned() else {
            break;
        };
        if let Some(end) = take_frame(&seg, tail.offset, index)? {
            tail.offset = end;
            continue;
        }
        // No complete frame here yet. Has the writer moved on to the next
        // segment? Only a valid first frame there says so.
        let number = tail.segment + 1;
        let next = match index.segments().get(number as usize) {
            Some(next) => Arc::clone(next),
            None => {
                let path = dir.join(segment::file_name(u64::from(number)));
                if !path.exists() {
                    break;
                }
                let seg = open_segment(path, u64::from(number), &mut Some(first))?;
                seg.publish(SEGMENT_HEADER_LEN);
                let seg = Arc::new(seg);
                index.push_segment(Arc::clone(&seg));
                seg
            }
        };
        match take_frame(&next, SEGMENT_HEADER_LEN, index) {
            Ok(Some(end)) => {
                *tail = Tail {
                    segment: number,
                    offset: end,
                }
            }
            Ok(None) => break,
            // The writer may have finished the frame this follower was
            // waiting for, rotated, and written on: the next segment then
            // starts past positions not taken yet. Only if the current
            // segment has nothing more is the mismatch real.
            Err(e) => match take_frame(&seg, tail.offset, index)? {
                Some(end) => tail.offset = end,
                None => return Err(e),
            },
        }
    }
    Ok(index.len() - start)
}

/// Takes the frame at `offset` of `seg` into `index` if it is complete and
/// checks out, and returns where it ends.
fn take_frame(seg: &Segment, offset: usize, index: &mut Index) -> Result<Option<usize>, Error> {
    let salt = seg.salt();
    let Some(head) = seg.copy_out(offset, FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    let Ok(Some(header)) = decode_frame_header(&head, salt) else {
        return Ok(None);
    };
    let len = header.frame_len as usize;
    let Some(frame) = seg.copy_out(offset, len) else {
        return Ok(None);
    };
    let mut records = Vec::new();
    if !matches!(decode_frame_bytes(&frame, salt, &mut records), Ok(Some(_))) {
        return Ok(None);
    }
    if header.first_position != index.len() {
        return Err(Error::corruption(
            seg.path(),
            (offset + 8) as u64,
            format!(
                "frame starts at position {} where {} was expected",
                header.first_position,
                index.len()
            ),
        ));
    }
    let number = seg.number() as u32;
    let mark = index.checkpoint();
    for (at, record) in &records {
        let record_at = offset + at;
        let pushed = index.push(
            record.stream,
            record.event_type,
            record.version,
            number,
            record_at as u32,
        );
        if let Err(reason) = pushed {
            // The frame is refused whole: none of it stays visible.
            index.rollback(mark);
            return Err(Error::corruption(seg.path(), record_at as u64, reason));
        }
    }
    seg.publish(offset + len);
    Ok(Some(offset + len))
}
