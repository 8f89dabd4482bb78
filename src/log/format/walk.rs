//! The one frame walker: every reader of segment bytes that is not a point
//! read (recovery, the follower, `verify` and `dump`, the fuzzer, the tests)
//! walks frames through [`Frames`], so the rules for where a segment's log
//! ends live in one place.
//!
//! A walk starts at a frame boundary and takes frame after frame while each
//! checks out whole (header, every record, dense positions). It ends in a
//! typed [`End`]: zeros to the end of the bytes (clean), a frame that fails
//! a check (which only the caller can call torn or damaged), or a frame
//! that checks out but starts at the wrong position (never a torn write).

use std::ops::Range;

use super::{
    FRAME_HEADER_LEN, FrameHeader, RawRecordView, Salt, decode_frame_bytes, first_nonzero,
};

/// How a walk over a segment's frames ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Every frame checked out, and from `at` to the end of the bytes there
    /// are only zeros (the end marker and the unwritten rest).
    Clean {
        /// Where the frames end.
        at: usize,
    },
    /// The frame starting at `at` fails a check, first at byte `offset`.
    Failed {
        /// Where the failing frame starts.
        at: usize,
        /// Where the first failed check points.
        offset: usize,
        /// What failed, for people.
        reason: String,
    },
    /// The frame at `at` checks out, but starts at `first_position` where
    /// the walk expected `expected`. Its checksums passed, so these bytes
    /// are as some writer wrote them: a broken log, not a torn write.
    OutOfOrder {
        /// Where the frame starts.
        at: usize,
        /// The position its header gives.
        first_position: u64,
        /// The position the walk expected.
        expected: u64,
    },
}

impl End {
    /// Where the valid frames end: the offset of the first byte not taken.
    pub fn at(&self) -> usize {
        match *self {
            End::Clean { at } | End::Failed { at, .. } | End::OutOfOrder { at, .. } => at,
        }
    }

    /// Whether the walk ended without a problem.
    pub fn is_clean(&self) -> bool {
        matches!(self, End::Clean { .. })
    }

    /// The offset of the problem and a sentence on it, for an error
    /// message; `None` for a clean end.
    pub fn problem(&self) -> Option<(usize, String)> {
        match self {
            End::Clean { .. } => None,
            End::Failed { offset, reason, .. } => Some((*offset, reason.clone())),
            End::OutOfOrder {
                at,
                first_position,
                expected,
            } => Some((
                at + super::FRAME_FIRST_POSITION_AT,
                format!("frame starts at position {first_position} where {expected} was expected"),
            )),
        }
    }
}

/// A frame that checked out whole.
#[derive(Debug)]
pub struct Frame<'w, 'a> {
    /// Where the frame starts, as an offset in the segment file.
    pub at: usize,
    /// Its header.
    pub header: FrameHeader,
    /// Its records, each with its offset in the segment file.
    pub records: &'w [(usize, RawRecordView<'a>)],
}

impl Frame<'_, '_> {
    /// Where the frame ends in the segment file: the next frame's offset.
    pub fn end(&self) -> usize {
        self.at + self.header.frame_len as usize
    }

    /// The global positions of its events.
    pub fn positions(&self) -> Range<u64> {
        let first = self.header.first_position;
        first..first.saturating_add(u64::from(self.header.event_count))
    }
}

/// Walks the frames of `untrusted`, a segment's bytes from one frame
/// boundary on. Take frames with [`next_frame`](Frames::next_frame) until it
/// returns `None`; [`end`](Frames::end) then says how the walk ended.
///
/// The walker is a lending iterator (each frame borrows the walker's record
/// buffer, which is reused), so a walk over a million frames allocates once.
///
/// ```
/// use annals::format::{End, Frames, SEGMENT_HEADER_LEN, Salt};
///
/// let segment = vec![0u8; 4096];
/// let mut frames = Frames::new(&segment[SEGMENT_HEADER_LEN..], Salt::new(1, 0))
///     .based_at(SEGMENT_HEADER_LEN);
/// assert!(frames.next_frame().is_none());
/// assert_eq!(frames.end(), Some(&End::Clean { at: SEGMENT_HEADER_LEN }));
/// ```
#[derive(Debug)]
pub struct Frames<'a> {
    untrusted: &'a [u8],
    salt: Salt,
    /// The file offset of `untrusted[0]`: every offset reported is shifted
    /// by it.
    base: usize,
    /// The next frame's offset in `untrusted`.
    at: usize,
    /// The position the next frame must start at, when known.
    expected: Option<u64>,
    records: Vec<(usize, RawRecordView<'a>)>,
    end: Option<End>,
}

impl<'a> Frames<'a> {
    /// A walk over `untrusted`, which starts at a frame boundary, checking
    /// checksums with `salt`.
    pub fn new(untrusted: &'a [u8], salt: Salt) -> Frames<'a> {
        Frames {
            untrusted,
            salt,
            base: 0,
            at: 0,
            expected: None,
            records: Vec::new(),
            end: None,
        }
    }

    /// Reports offsets as if `untrusted` started at `base` in the file: for
    /// a walk over a slice or a copy of part of a segment.
    pub fn based_at(mut self, base: usize) -> Frames<'a> {
        self.base = base;
        self
    }

    /// Requires the first frame to start at `position` (and each later one
    /// where the one before it ended, as always).
    pub fn expecting(mut self, position: u64) -> Frames<'a> {
        self.expected = Some(position);
        self
    }

    /// The position the next frame must start at, once one frame was taken
    /// or [`expecting`](Frames::expecting) said so.
    pub fn next_position(&self) -> Option<u64> {
        self.expected
    }

    /// The file offset where the next frame would start.
    pub fn offset(&self) -> usize {
        self.base + self.at
    }

    /// How the walk ended, once [`next_frame`](Frames::next_frame) has
    /// returned `None`.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Consumes the walker: how the walk ended, taking the rest first if
    /// the caller stopped early.
    pub fn finish(mut self) -> End {
        while self.next_frame().is_some() {}
        self.end.unwrap_or(End::Clean { at: self.base })
    }

    /// The next frame, or `None` once the walk has ended.
    pub fn next_frame(&mut self) -> Option<Frame<'_, 'a>> {
        if self.end.is_some() {
            return None;
        }
        let rest = self.untrusted.get(self.at..).unwrap_or_default();
        let at = self.base + self.at;
        // Fewer bytes than a frame header, or a zero length word: the end
        // marker, and the rest must be zeros.
        let decoded = if rest.len() < FRAME_HEADER_LEN {
            Ok(None)
        } else {
            decode_frame_bytes(rest, self.salt, &mut self.records)
        };
        let header = match decoded {
            Ok(Some(header)) => header,
            Ok(None) => {
                self.end = Some(match first_nonzero(rest) {
                    None => End::Clean { at },
                    Some(i) => End::Failed {
                        at,
                        offset: at + i,
                        reason: "non-zero bytes after the end of the log".to_owned(),
                    },
                });
                return None;
            }
            Err(e) => {
                self.end = Some(End::Failed {
                    at,
                    offset: at + e.offset,
                    reason: e.reason,
                });
                return None;
            }
        };
        if let Some(expected) = self.expected
            && header.first_position != expected
        {
            self.end = Some(End::OutOfOrder {
                at,
                first_position: header.first_position,
                expected,
            });
            return None;
        }
        for (offset, _) in &mut self.records {
            *offset += at;
        }
        self.at += header.frame_len as usize;
        self.expected = Some(
            header
                .first_position
                .saturating_add(u64::from(header.event_count)),
        );
        Some(Frame {
            at,
            header,
            records: &self.records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::frame::test_frame as frame;

    fn walk(bytes: &[u8], salt: Salt, base: usize) -> (Vec<(usize, Range<u64>)>, End) {
        let mut frames = Frames::new(bytes, salt).based_at(base).expecting(0);
        let mut seen = Vec::new();
        while let Some(f) = frames.next_frame() {
            assert!(f.records.iter().all(|(o, _)| *o > f.at && *o < f.end()));
            seen.push((f.at, f.positions()));
        }
        (seen, frames.finish())
    }

    #[test]
    fn frames_then_zeros_end_clean() {
        let salt = Salt::new(3, 1);
        let mut bytes = frame(salt, 0, 2);
        let second = bytes.len();
        bytes.extend(frame(salt, 2, 1));
        let end = bytes.len();
        bytes.resize(end + 100, 0);
        let (seen, how) = walk(&bytes, salt, 64);
        assert_eq!(seen, vec![(64, 0..2), (64 + second, 2..3)]);
        assert_eq!(how, End::Clean { at: 64 + end });
    }

    #[test]
    fn frames_filling_the_bytes_end_clean() {
        let salt = Salt::new(3, 1);
        let bytes = frame(salt, 0, 3);
        let (seen, how) = walk(&bytes, salt, 0);
        assert_eq!(seen.len(), 1);
        assert_eq!(how, End::Clean { at: bytes.len() });
    }

    #[test]
    fn a_flip_ends_the_walk_at_its_frame() {
        let salt = Salt::new(3, 1);
        let mut bytes = frame(salt, 0, 2);
        let second = bytes.len();
        bytes.extend(frame(salt, 2, 2));
        bytes.resize(bytes.len() + 64, 0);
        for i in second..bytes.len() - 64 {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            let (seen, how) = walk(&damaged, salt, 0);
            assert_eq!(seen.len(), 1, "flip at {i}");
            assert!(
                matches!(how, End::Failed { at, offset, .. } if at == second && offset >= second),
                "flip at {i}: {how:?}"
            );
        }
    }

    #[test]
    fn garbage_after_the_end_marker_fails() {
        let salt = Salt::new(3, 1);
        let mut bytes = frame(salt, 0, 1);
        let end = bytes.len();
        bytes.resize(end + 64, 0);
        bytes[end + 40] = 7;
        let (_, how) = walk(&bytes, salt, 0);
        assert!(matches!(how, End::Failed { at, offset, .. } if at == end && offset == end + 40));
    }

    #[test]
    fn a_valid_frame_at_the_wrong_position_is_out_of_order() {
        let salt = Salt::new(3, 1);
        let mut bytes = frame(salt, 0, 2);
        let second = bytes.len();
        bytes.extend(frame(salt, 5, 1));
        let (seen, how) = walk(&bytes, salt, 0);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            how,
            End::OutOfOrder {
                at: second,
                first_position: 5,
                expected: 2
            }
        );
        assert!(how.problem().unwrap().1.contains("where 2 was expected"));
    }
}
