//! A read-only store catching up with a writer in another process.
//!
//! The writer appends frames at the end of its active segment and, when a
//! batch does not fit, moves on to the next segment. A follower keeps its
//! own tail (segment and offset) and, on each refresh, takes every frame
//! past it that checks out. A frame that does not check out yet is a write
//! in progress: the follower stops there and tries again next time. The
//! bytes are copied out of the map before they are checked, since the
//! writer may be writing them at that moment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::Error;
use crate::format::{
    FRAME_HEADER_LEN, Frames, SEGMENT_HEADER_LEN, SegmentHeader, decode_frame_header,
};
use crate::index::Entry;
use crate::index::persist::{BASE_FILE, read_base};
use crate::index::shared::SharedIndex;
use crate::io::RealIo;
use crate::log::recovery::{Mode, recover};
use crate::log::segment::{self, Segment};
use crate::read::commits::Commits;

/// What a read-only store needs to follow its writer: where the log is and
/// how far it has been read, and the last refresh's failure for the
/// subscriptions that a refresher thread serves.
pub(crate) struct Follower {
    dir: PathBuf,
    first: SegmentHeader,
    tail: Mutex<Tail>,
    /// The identity of the log base file when last looked at (inode,
    /// length, modification time), so that a refresh reads it only when
    /// the writer's retention wrote it again.
    base_seen: Mutex<Option<(u64, u64, i64, i64)>>,
    /// The refresher's last failure, cleared by its next success.
    failure: Mutex<Option<Error>>,
}

impl Follower {
    pub(crate) fn new(dir: PathBuf, first: SegmentHeader, tail: Tail) -> Follower {
        Follower {
            dir,
            first,
            tail: Mutex::new(tail),
            base_seen: Mutex::new(None),
            failure: Mutex::new(None),
        }
    }

    /// When the writer's `$all` retention dropped segments since this
    /// store's index was made (the log base names a later first segment),
    /// takes the log as an open would now, and returns where it ends.
    /// Otherwise the follower would wait for ever before a segment that is
    /// gone, and its maps would keep the dropped files' blocks allocated.
    fn reload_if_cut(&self, index: &SharedIndex) -> Result<Option<Tail>, Error> {
        use std::os::unix::fs::MetadataExt;
        let path = self.dir.join(BASE_FILE);
        let identity = match std::fs::metadata(&path) {
            Ok(m) => Some((m.ino(), m.len(), m.mtime(), m.mtime_nsec())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("inspect the log base", &path, e)),
        };
        {
            let mut seen = self.base_seen.lock();
            if *seen == identity {
                return Ok(None);
            }
            *seen = identity;
        }
        let Some(base) = read_base(&self.dir)? else {
            return Ok(None);
        };
        if base.first_segment <= index.read().first_segment() {
            return Ok(None);
        }
        // As a read-only open does: a live writer may be mid-frame, which
        // looks like damage until scanned again.
        let mut attempt = 0;
        let recovered = loop {
            match recover(&self.dir, &RealIo, Mode::ReadOnly) {
                Err(Error::Corruption { .. }) if attempt < 2 => attempt += 1,
                other => break other?,
            }
        };
        let tail = Tail {
            segment: recovered.active,
            offset: recovered.write_offset,
        };
        // The lifecycle states go in before any reader sees the new index:
        // without them a deleted stream would read as present.
        let fresh = SharedIndex::new(recovered.index);
        crate::lifecycle::load(&fresh)?;
        let fresh = fresh.into_current();
        tracing::info!(
            dir = %self.dir.display(),
            first_segment = fresh.first_segment(),
            "the writer's retention dropped segments: the read-only store took the log again"
        );
        index.update(move |index| *index = fresh.clone());
        Ok(Some(tail))
    }

    /// Takes every complete frame the writer has written since the last
    /// refresh into `index`, announces them, and returns how many events
    /// were added.
    pub(crate) fn refresh(&self, index: &SharedIndex, commits: &Commits) -> Result<u64, Error> {
        let mut tail = self.tail.lock();
        let before = index.read().len();
        let reloaded = match self.reload_if_cut(index)? {
            Some(t) => {
                *tail = t;
                true
            }
            None => false,
        };
        follow(&self.dir, self.first, index, &mut tail)?;
        drop(tail);
        let added = index.read().len().saturating_sub(before);
        if added > 0 || reloaded {
            commits.notify();
        }
        Ok(added)
    }

    /// A copy of the refresher's last failure, if its last refresh failed.
    pub(crate) fn failure(&self) -> Option<Error> {
        self.failure.lock().as_ref().map(duplicate)
    }

    /// Starts the thread that refreshes every `interval` while the store
    /// has subscriptions, unless one is running. One thread per store, not
    /// per subscription; it stops when the store closes or its last
    /// subscription goes, and the next subscription starts another.
    pub(crate) fn start_refresher(
        self: &Arc<Self>,
        index: &Arc<SharedIndex>,
        commits: &Arc<Commits>,
        interval: Duration,
    ) -> Result<(), Error> {
        if !commits.claim_refresher() {
            return Ok(());
        }
        let (follower, index, commits2) =
            (Arc::clone(self), Arc::clone(index), Arc::clone(commits));
        let spawned = std::thread::Builder::new()
            .name("annals-refresher".into())
            .spawn(move || {
                while commits2.refresher_wait(Instant::now() + interval) {
                    let result = follower.refresh(&index, &commits2);
                    let failed = result.is_err();
                    *follower.failure.lock() = result.err();
                    if failed {
                        // Waiting subscriptions must hear of it.
                        commits2.notify();
                    }
                }
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                commits.release_refresher();
                Err(Error::io("start the refresher thread for", &self.dir, e))
            }
        }
    }
}

/// A copy of an error a refresh returned, for every subscription that must
/// report it: the errors a refresh can return keep their kind and text.
fn duplicate(e: &Error) -> Error {
    match e {
        Error::Corruption {
            file,
            offset,
            reason,
        } => Error::Corruption {
            file: file.clone(),
            offset: *offset,
            reason: reason.clone(),
        },
        Error::Io { op, path, source } => Error::Io {
            op,
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => Error::Corruption {
            file: PathBuf::new(),
            offset: 0,
            reason: other.to_string(),
        },
    }
}

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
/// index lock held, and a checked frame's entries are published as the
/// writer publishes its own (see [`crate::index::shared`]), so readers never
/// wait for a follower's copies and checksums, nor the follower for them.
pub(crate) fn follow(
    dir: &Path,
    first: SegmentHeader,
    index: &SharedIndex,
    tail: &mut Tail,
) -> Result<u64, Error> {
    let start = index.read().len();
    loop {
        let current = index.read().segment_arc(tail.segment).cloned();
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
        let known = index.read().segment_arc(number).cloned();
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
                let pushed = Arc::clone(&seg);
                index.update(move |index| index.push_segment(Arc::clone(&pushed)));
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
fn take_frame(seg: &Segment, offset: usize, index: &SharedIndex) -> Result<Option<usize>, Error> {
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
    let entries: Vec<Entry<'_>> = frame
        .records
        .iter()
        .map(|(at, r)| Entry {
            stream: r.stream,
            event_type: r.event_type,
            version: r.version,
            offset: *at as u32,
            id: r.id,
            // A control record's state, so that a follower sees deletions as
            // the writer commits them.
            control: r
                .control
                .then(|| {
                    let start = at.checked_sub(offset)?;
                    copy.get(start + r.data.start..start + r.data.end)
                })
                .flatten(),
        })
        .collect();
    // Readers copy a location out of the index and read it after the
    // lock is gone, so the watermark must be past the frame before any of
    // its entries can be seen. A frame the index refuses is then below the
    // watermark but in no index entry, so no read reaches it, and the
    // refusal is an error that stops the follower there.
    seg.publish(frame.end());
    index
        .publish_frame(
            seg.number() as u32,
            frame.at..frame.end(),
            frame.header.first_position,
            &entries,
            |_| {},
        )
        .map_err(|r| Error::corruption(seg.path(), r.offset, r.reason))?;
    Ok(Some(frame.end()))
}
