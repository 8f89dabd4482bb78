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

use parking_lot::RwLock;

use crate::error::Error;
use crate::format::{
    FRAME_HEADER_LEN, Frames, SEGMENT_HEADER_LEN, SegmentHeader, decode_frame_header,
};
use crate::index::{Entry, Index};
use crate::log::segment::{self, Segment};

/// Where a follower has read up to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tail {
    pub segment: u32,
    pub offset: usize,
}

/// Adds to `index` every complete frame written past `tail`, and returns how
/// many events were added.
///
/// The caller holds the tail's lock, so this is the only thread that adds
/// to the index of a read-only store. Frames are copied and checked with no
/// index lock held; the write lock is taken only to add a checked frame's
/// entries (or a segment), so readers never wait for a follower's copies
/// and checksums.
pub(crate) fn follow(
    dir: &Path,
    first: SegmentHeader,
    index: &RwLock<Index>,
    tail: &mut Tail,
) -> Result<u64, Error> {
    let start = index.read().len();
    loop {
        let current = index.read().segments().get(tail.segment as usize).cloned();
        let Some(seg) = current else {
            break;
        };
        if let Some(end) = take_frame(&seg, tail.offset, index)? {
            tail.offset = end;
            continue;
        }
        // No complete frame here yet. Has the writer moved on to the next
        // segment? Only a valid first frame there says so.
        let number = tail.segment + 1;
        let known = index.read().segments().get(number as usize).cloned();
        let next = match known {
            Some(next) => next,
            None => {
                let path = dir.join(segment::file_name(u64::from(number)));
                if !path.exists() {
                    break;
                }
                let seg = Segment::open(path, u64::from(number), &mut Some(first))?;
                seg.publish(SEGMENT_HEADER_LEN);
                let seg = Arc::new(seg);
                index.write().push_segment(Arc::clone(&seg));
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
    Ok(index.read().len() - start)
}

/// Takes the frame at `offset` of `seg` into `index` if it is complete and
/// checks out, and returns where it ends.
///
/// The frame is copied out of the map twice: its header, to learn its
/// length, then that many bytes. The writer may change the tail between
/// the two copies (a killed writer's torn frame zeroed by the next writer's
/// recovery, and a shorter frame written in its place), so nothing from the
/// first copy is trusted: only the frame the walker checks in the second
/// copy is taken, and the tail moves to where that frame ends.
fn take_frame(seg: &Segment, offset: usize, index: &RwLock<Index>) -> Result<Option<usize>, Error> {
    let salt = seg.salt();
    let Some(head) = seg.copy_out(offset, FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    let Ok(Some(header)) = decode_frame_header(&head, salt) else {
        return Ok(None);
    };
    let Some(copy) = seg.copy_out(offset, header.frame_len as usize) else {
        return Ok(None);
    };
    let mut frames = Frames::new(&copy, salt).based_at(offset);
    let Some(frame) = frames.next_frame() else {
        return Ok(None);
    };
    let entries = frame.records.iter().map(|(at, r)| Entry {
        stream: r.stream,
        event_type: r.event_type,
        version: r.version,
        offset: *at as u32,
    });
    // Readers copy a location out of the index and read it after the
    // lock is gone, so the watermark must be past the frame before any of
    // its entries can be seen; publishing under the write lock, after the
    // index took the frame, keeps a refused frame below no watermark.
    let mut index = index.write();
    index
        .push_frame(
            seg.number() as u32,
            frame.at..frame.end(),
            frame.header.first_position,
            entries,
        )
        .map_err(|r| Error::corruption(seg.path(), r.offset, r.reason))?;
    seg.publish(frame.end());
    Ok(Some(frame.end()))
}
