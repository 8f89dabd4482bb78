//! The index as readers and the writer share it: two copies, so that the
//! writer never waits for a reader and a reader never waits for the writer.
//!
//! A single lock over one index made each wait for the other. The writer
//! needs the index exclusively for the moment it adds a synced frame, and a
//! reader holds it shared while it plans a read; on two cores with more
//! runnable threads than cores, a reader is sometimes descheduled while it
//! holds the lock, and the writer (and, the lock being fair, every reader
//! behind it) then waits a whole scheduler tick, 4 ms at 250 Hz, before it
//! can acknowledge. No amount of shortening the readers' sections removes
//! that: only a writer that never needs what a reader holds does.
//!
//! So there are two copies of the index, each behind its own lock, and
//! `current` says which one readers take. The copy readers are not
//! directed to is mostly free: only a reader that took it before the last
//! switch (or one holding it for long) can be on it. The writer adds a
//! frame to that copy with a `try_write` (no waiting), switches readers to
//! it, and then adds the frame to the copy it left with another
//! `try_write`. When a `try_write` fails because a reader is still on that
//! copy, the frame is kept, owned, in that copy's list of changes it is
//! behind on, and the next write to it takes them first. If the copy
//! readers are not directed to is held, the frame goes to the one they
//! are, if no reader holds it that moment (readers arriving then wait for
//! that one push, never for a sync or another reader), and the other is
//! left behind. Only when readers hold both copies at the moment of a
//! commit does the writer wait, for whichever is let go of first, and never
//! in a way that makes new readers queue behind it.
//!
//! The copy readers are directed to always holds every frame published,
//! so a read that starts after an append returned sees it; a reader keeps
//! a copy only if it is still the current one once locked, so two reads on
//! one thread never go backwards; and each copy takes frames whole and in
//! order, so a read sees whole batches.
//!
//! Changes other than frames ([`SharedIndex::update`]: a seal, a
//! scavenge's swap, a rebuilt table, the id filter, a follower's reload)
//! go the same way, kept as closures for a copy that is not free.
//!
//! What this costs: each change is made twice (once per copy; a frame
//! kept for later is copied first), and the memory the index keeps per
//! stream and per active event is held twice (the names and the sealed
//! segments' tables are shared, not copied). A reader that holds a copy
//! for long (a backup opening every deferred segment, say) makes the
//! changes kept for that copy pile up, each frame's entries owned, until
//! it lets go, and the next change after that pays for taking them all;
//! the writer goes on meanwhile, where one lock made it wait. The second
//! copy is made (cloned from the first) at the first change, not at open.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{Entry, Index, Refused};

/// The index, held in two copies; see the module's docs.
#[derive(Debug)]
pub(crate) struct SharedIndex {
    copies: [RwLock<Index>; 2],
    /// The copy readers take (0 or 1). Changed only under `changes`' lock.
    current: AtomicUsize,
    /// What each copy has yet to take. The lock also makes every change
    /// one at a time.
    changes: Mutex<Changes>,
}

/// The changes the copies have yet to take.
#[derive(Debug, Default)]
struct Changes {
    /// For each copy, the changes it is behind on, oldest first. The copy
    /// that `current` names is never behind.
    behind: [Vec<Kept>; 2],
    /// Whether the second copy was made. An open makes only one: cloning
    /// the index costs about as much as the rest of an open after a clean
    /// close, so the first change pays for it instead.
    second_made: bool,
    /// Whether a copy refused a change the other took: a bug, after which
    /// the copies differ. Every frame is refused from then on, so that the
    /// writer stops (poisons) rather than answer from two indexes.
    diverged: bool,
}

/// A change kept for a copy that could not take it when it was made.
/// It returns whether the copy took it.
struct Kept(Box<dyn FnOnce(&mut Index) -> bool + Send>);

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept(..)")
    }
}

/// A frame kept for a copy, with its entries' bytes owned.
struct OwnedFrame {
    segment: u32,
    frame: Range<usize>,
    first_position: u64,
    entries: Vec<OwnedEntry>,
}

/// An [`Entry`] that owns its bytes.
struct OwnedEntry {
    stream: Box<[u8]>,
    event_type: Box<[u8]>,
    version: u64,
    offset: u32,
    id: [u8; 16],
    control: Option<Box<[u8]>>,
}

impl OwnedFrame {
    fn kept(segment: u32, frame: Range<usize>, first_position: u64, entries: &[Entry<'_>]) -> Kept {
        let entries = entries
            .iter()
            .map(|e| OwnedEntry {
                stream: e.stream.into(),
                event_type: e.event_type.into(),
                version: e.version,
                offset: e.offset,
                id: e.id,
                control: e.control.map(Into::into),
            })
            .collect();
        let frame = OwnedFrame {
            segment,
            frame,
            first_position,
            entries,
        };
        Kept(Box::new(move |index| frame.apply(index)))
    }

    fn apply(self, index: &mut Index) -> bool {
        let entries = self.entries.iter().map(|e| Entry {
            stream: &e.stream,
            event_type: &e.event_type,
            version: e.version,
            offset: e.offset,
            id: e.id,
            control: e.control.as_deref(),
        });
        index
            .push_frame(self.segment, self.frame, self.first_position, entries)
            .is_ok()
    }
}

impl SharedIndex {
    /// Shares `index` between readers and the writer.
    pub(crate) fn new(index: Index) -> SharedIndex {
        SharedIndex {
            copies: [RwLock::new(index), RwLock::new(Index::default())],
            current: AtomicUsize::new(0),
            changes: Mutex::new(Changes::default()),
        }
    }

    /// The index as of now, for reading: it holds every change made
    /// before this call. Hold it only to copy out what a read needs (see
    /// `crate::read`): a copy held by a reader is one the writer must go
    /// around.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Index> {
        // Between reading `current` and taking that copy, the writer may
        // have pointed readers at the other copy and begun its next change
        // on this one: a change not yet published, which a later read (of
        // the other copy) would not see. So the copy is kept only if it is
        // the current one once held: then every change in it is published,
        // and while it is held no change can be made to it, so every later
        // read (of it, or of the other copy once that is current) sees at
        // least as much.
        loop {
            let current = self.current.load(Ordering::Acquire);
            let index = self.copies[current].read();
            if self.current.load(Ordering::Acquire) == current {
                return index;
            }
        }
    }

    /// Adds a synced frame (see [`Index::push_frame`]) to the index.
    /// `prepare` runs on each copy just before it takes the frame (to warm
    /// what the push touches). On return, readers see the frame; a frame
    /// refused leaves the index as it was.
    pub(crate) fn publish_frame(
        &self,
        segment: u32,
        frame: Range<usize>,
        first_position: u64,
        entries: &[Entry<'_>],
        prepare: impl Fn(&Index),
    ) -> Result<(), Refused> {
        let push = |index: &mut Index| {
            prepare(index);
            index.push_frame(
                segment,
                frame.clone(),
                first_position,
                entries.iter().copied(),
            )
        };
        if self.changes.lock().diverged {
            return Err(Refused {
                offset: frame.start as u64,
                reason: "the index's two copies differ since one refused a change".into(),
            });
        }
        self.change(push, Result::is_ok, |_| {
            OwnedFrame::kept(segment, frame.clone(), first_position, entries)
        })
    }

    /// Makes a change other than a frame to the index: `change` runs on
    /// each copy (now, or when the copy is next free), and what it returns
    /// for the first is returned, once readers see it. It must do the same
    /// to both copies: it sees the same index twice. Keep the costly part
    /// of a change outside it: compute under [`read`](Self::read), then
    /// change.
    pub(crate) fn update<R>(&self, change: impl FnMut(&mut Index) -> R + Send + 'static) -> R {
        self.change(
            change,
            |_| true,
            |mut change| {
                Kept(Box::new(move |index| {
                    drop(change(index));
                    true
                }))
            },
        )
    }

    /// Runs `apply` on one copy and points readers at it, then runs it on
    /// the other or keeps it there (made by `keep`) until that copy is
    /// free; see the module's docs. When `applied` says the first run
    /// changed nothing (a refused frame), the other copy is left alone.
    fn change<R, C: FnMut(&mut Index) -> R>(
        &self,
        mut apply: C,
        applied: impl Fn(&R) -> bool,
        keep: impl FnOnce(C) -> Kept,
    ) -> R {
        let mut changes = self.changes.lock();
        let current = self.current.load(Ordering::Relaxed);
        let other = 1 - current;
        if !changes.second_made {
            // No reader was ever directed to the other copy, so its lock
            // is free.
            let copy = self.copies[current].read().clone();
            *self.copies[other].write() = copy;
            changes.second_made = true;
        }
        let (first, mut index) = self.free_copy(current);
        if !catch_up(&mut index, &mut changes.behind[first]) {
            changes.diverged = true;
        }
        let behind = &mut changes.behind;
        let out = apply(&mut index);
        drop(index);
        if !applied(&out) {
            return out;
        }
        if first == current {
            behind[other].push(keep(apply));
            return out;
        }
        self.current.store(other, Ordering::Release);
        match self.copies[current].try_write() {
            Some(mut index) => {
                let second = apply(&mut index);
                // What the change gave back (an index part it replaced,
                // say) is freed with no copy locked.
                drop(index);
                if !applied(&second) {
                    tracing::error!("an index copy refused a change the other took");
                    changes.diverged = true;
                }
                drop(second);
            }
            None => behind[current].push(keep(apply)),
        }
        out
    }

    /// A copy to change, and which: the one readers are not on first;
    /// failing that, the one they are on, if no reader holds it this
    /// moment. When readers hold both, whichever is let go of first: a
    /// reader's hold of the current copy is short (a plan), while the other
    /// may be held long (a backup opening every segment), so waiting on
    /// either alone could wait for the long one. The wait is a series of
    /// short timed waits on the copy no new reader takes (so no reader
    /// queues behind the writer), woken as soon as that copy is let go,
    /// with a try of the current one between them.
    fn free_copy(&self, current: usize) -> (usize, RwLockWriteGuard<'_, Index>) {
        let other = 1 - current;
        loop {
            if let Some(index) = self.copies[other].try_write() {
                return (other, index);
            }
            if let Some(index) = self.copies[current].try_write() {
                return (current, index);
            }
            if let Some(index) = self.copies[other].try_write_for(Duration::from_micros(50)) {
                return (other, index);
            }
        }
    }

    /// How many copies of the index are held: 1 until the first change
    /// made the second, then 2.
    pub(crate) fn copies(&self) -> usize {
        if self.changes.lock().second_made {
            2
        } else {
            1
        }
    }

    /// Rebuilds the tables of sealed segment `segment` from the segment
    /// (see [`Index::distrusted`]), building them once for both copies;
    /// true if it replaced them.
    ///
    /// The table is built from the segment as the index held it then; if a
    /// scavenge swapped the segment in before the table is put in place,
    /// the table describes the old file and is dropped, and the answer is
    /// still true: the segment changed, so the read should be planned
    /// again.
    pub(crate) fn distrust(&self, segment: u32) -> bool {
        let (table, built_from) = {
            let index = self.read();
            let Some(table) = index.distrusted(segment) else {
                return false;
            };
            let Some(built_from) = index.segment_arc(segment).cloned() else {
                return false;
            };
            (table, built_from)
        };
        self.update(move |index| match index.segment_arc(segment) {
            Some(now) if Arc::ptr_eq(now, &built_from) => {
                index.replace_distrusted(segment, table.clone())
            }
            _ => true,
        })
    }

    /// The index readers would take, taken out: for an index shared only
    /// while it is made (a follower's reload).
    pub(crate) fn into_current(self) -> Index {
        let current = self.current.load(Ordering::Relaxed);
        let [a, b] = self.copies;
        if current == 0 { a } else { b }.into_inner()
    }
}

/// Makes `index` take the changes it is behind on, in order.
/// False if one was refused (see [`Changes::diverged`]).
fn catch_up(index: &mut Index, behind: &mut Vec<Kept>) -> bool {
    let mut took_all = true;
    for Kept(change) in behind.drain(..) {
        took_all &= change(index);
    }
    if !took_all {
        tracing::error!("an index copy refused a change the other took");
    }
    took_all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: &'static str, version: u64, offset: u32) -> Entry<'static> {
        Entry {
            stream: stream.as_bytes(),
            event_type: b"t",
            version,
            offset,
            id: [offset as u8; 16],
            control: None,
        }
    }

    #[test]
    fn a_frame_published_while_a_reader_holds_each_copy_reaches_both() {
        let shared = SharedIndex::new(Index::new(1));
        // A reader on the current copy: the writer goes to the other one.
        let first_reader = shared.read();
        shared
            .publish_frame(0, 64..128, 0, &[entry("a", 0, 64)], |_| {})
            .unwrap();
        assert_eq!(first_reader.len(), 0, "a held copy changes under no reader");
        assert_eq!(shared.read().len(), 1);
        // The copy the first reader holds is behind; a second frame goes
        // to the copy readers are on, and the held copy stays behind.
        shared
            .publish_frame(0, 128..192, 1, &[entry("a", 1, 128)], |_| {})
            .unwrap();
        assert_eq!(shared.read().len(), 2);
        assert_eq!(shared.read().stream_version("a"), Some(1));
        drop(first_reader);
        // Both copies are free: a third frame catches the lagging one up.
        shared
            .publish_frame(0, 192..256, 2, &[entry("b", 0, 192)], |_| {})
            .unwrap();
        for copy in &shared.copies {
            let index = copy.read();
            assert_eq!(index.len(), 3);
            assert_eq!(index.stream_version("a"), Some(1));
            assert_eq!(index.stream_version("b"), Some(0));
        }
        assert!(shared.changes.lock().behind.iter().all(Vec::is_empty));
    }

    #[test]
    fn a_refused_frame_leaves_both_copies_as_they_were() {
        let shared = SharedIndex::new(Index::new(1));
        shared
            .publish_frame(0, 64..128, 0, &[entry("a", 0, 64)], |_| {})
            .unwrap();
        // Version 5 where 1 is next.
        assert!(
            shared
                .publish_frame(0, 128..192, 1, &[entry("a", 5, 128)], |_| {})
                .is_err()
        );
        for copy in &shared.copies {
            assert_eq!(copy.read().len(), 1);
        }
    }

    #[test]
    fn an_update_reaches_both_copies_after_their_frames() {
        let shared = SharedIndex::new(Index::new(1));
        let reader = shared.read();
        shared
            .publish_frame(0, 64..128, 0, &[entry("a", 0, 64)], |_| {})
            .unwrap();
        drop(reader);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let len = shared.update(move |index| {
            counted.fetch_add(1, Ordering::Relaxed);
            index.len()
        });
        assert_eq!((len, runs.load(Ordering::Relaxed)), (1, 2));
        for copy in &shared.copies {
            assert_eq!(copy.read().len(), 1);
        }
    }

    #[test]
    fn an_update_kept_for_a_held_copy_runs_after_the_frames_before_it() {
        let shared = SharedIndex::new(Index::new(1));
        let held = shared.read();
        shared
            .publish_frame(0, 64..128, 0, &[entry("a", 0, 64)], |_| {})
            .unwrap();
        // The copy `held` is on is behind by the frame; the update is kept
        // for it too, and must see the frame when it runs there.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        shared.update(move |index| log.lock().push(index.len()));
        assert_eq!(*seen.lock(), vec![1], "the held copy took nothing yet");
        drop(held);
        shared
            .publish_frame(0, 128..192, 1, &[entry("a", 1, 128)], |_| {})
            .unwrap();
        assert_eq!(*seen.lock(), vec![1, 1]);
        for copy in &shared.copies {
            assert_eq!(copy.read().len(), 2);
        }
    }

    /// Two reads on one thread never go backwards, however the writer's
    /// switches fall between a reader's look at `current` and its lock.
    #[test]
    fn successive_reads_on_a_thread_never_go_backwards() {
        use std::sync::atomic::AtomicBool;
        const FRAMES: u64 = 300_000;
        let shared = Arc::new(SharedIndex::new(Index::new(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let earlier = shared.read().len();
                        let later = shared.read().len();
                        assert!(later >= earlier, "read {earlier} events, then {later}");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for n in 0..FRAMES {
            let at = 64 + 64 * n as usize;
            let entries = [entry("a", n, at as u32)];
            shared
                .publish_frame(0, at..at + 64, n, &entries, |_| {})
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.join().expect("a reader saw the index go backwards");
        }
        assert_eq!(shared.read().len(), FRAMES);
    }

    /// A reader holding one copy for long and another holding the current
    /// one at a commit: the writer goes on once the short hold ends, not
    /// after the long one.
    #[test]
    fn the_writer_waits_for_the_short_hold_not_the_long_one() {
        let shared = Arc::new(SharedIndex::new(Index::new(1)));
        shared
            .publish_frame(0, 64..128, 0, &[entry("a", 0, 64)], |_| {})
            .unwrap();
        let long = shared.read();
        shared
            .publish_frame(0, 128..192, 1, &[entry("a", 1, 128)], |_| {})
            .unwrap();
        let short = shared.read();
        let writer = Arc::clone(&shared);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            writer
                .publish_frame(0, 192..256, 2, &[entry("a", 2, 192)], |_| {})
                .unwrap();
            done_tx.send(()).unwrap();
        });
        drop(short);
        // The bound only turns a writer stuck behind `long` into a failure
        // instead of a hung test; it never decides a passing run.
        let done = done_rx.recv_timeout(std::time::Duration::from_secs(60));
        assert!(done.is_ok(), "the writer waited for the long hold");
        assert_eq!(long.len(), 1);
        drop(long);
        handle.join().unwrap();
        assert_eq!(shared.read().len(), 3);
    }

    /// Copies that came to differ (a bug: here forced by a frame pushed
    /// into one alone) stop taking frames: the refusal reaches the writer,
    /// which poisons, rather than readers getting answers from two
    /// different indexes.
    #[test]
    fn a_frame_one_copy_refuses_stops_all_later_frames() {
        let shared = SharedIndex::new(Index::new(1));
        shared
            .publish_frame(0, 64..128, 0, &[entry("a", 0, 64)], |_| {})
            .unwrap();
        // Copy 0 is not current now: a frame slipped into it alone.
        assert_eq!(shared.current.load(Ordering::Relaxed), 1);
        shared.copies[0]
            .write()
            .push_frame(0, 128..192, 1, [entry("a", 1, 128)])
            .unwrap();
        // The next frame goes to copy 0 first, which refuses it (position 1
        // is taken there): refused, both copies as they were.
        assert!(
            shared
                .publish_frame(0, 128..192, 1, &[entry("b", 0, 128)], |_| {})
                .is_err()
        );
        // Copy 1 takes a frame copy 0 refuses at its catch-up or second
        // push: the copies differ, and every later frame is refused.
        let _ = shared.publish_frame(0, 128..192, 1, &[entry("a", 1, 128)], |_| {});
        let _ = shared.publish_frame(0, 192..256, 2, &[entry("a", 2, 192)], |_| {});
        assert!(shared.changes.lock().diverged);
        assert!(
            shared
                .publish_frame(0, 256..320, 3, &[entry("a", 3, 256)], |_| {})
                .is_err()
        );
    }
}
