//! [`RecoveryReport`]: what `open` found on disk and what it did about it,
//! for callers who must know that the end of the log moved.

use std::ops::Range;
use std::path::PathBuf;

/// What [`Store::open`](crate::Store::open) (or a read-only open) found
/// and did; see [`Store::recovery_report`](crate::Store::recovery_report).
///
/// A torn tail matters beyond the warning it logs: the positions its frame
/// claimed were not acknowledged if it was a torn write (damage to the last
/// frame looks the same, and then they were), and the next append reuses them. A
/// projection that had read position `P` from a follower before the crash
/// may, after a reopen, find a different event at `P`, or a log that ends
/// before `P`. Compare your checkpoint with
/// [`Store::global_position`](crate::Store::global_position) after every
/// open: a checkpoint at or past it means the log is shorter than what you
/// saw, and `torn_tail` says why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The torn tail that ended the log, if one did.
    pub torn_tail: Option<TornTailReport>,
    /// Segment files whose preparation a crash interrupted, removed by a
    /// writable open (a read-only open leaves them and lists none).
    pub removed_preparations: Vec<PathBuf>,
    /// Segment index files (and the stream catalog of a clean close) that
    /// could not be used, each with the reason (missing, damaged, stale, of
    /// another store or segment). Index files
    /// are derived data: the open scanned those segments instead, and a
    /// writable open wrote the indexes again. Not a sign of lost data, so
    /// [`is_clean`](RecoveryReport::is_clean) ignores them.
    pub unusable_indexes: Vec<(PathBuf, String)>,
}

impl RecoveryReport {
    /// Whether the open found the store exactly as a clean close leaves it.
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none() && self.removed_preparations.is_empty()
    }
}

/// A torn tail at the end of the active segment: bytes of a write that was
/// cut short, or, for a read-only open of a live store, a write still in
/// progress.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTailReport {
    /// The active segment file.
    pub file: PathBuf,
    /// Where the torn range starts: the end of the last valid frame.
    pub offset: u64,
    /// How many bytes it spans, up to its last non-zero byte.
    pub bytes: u64,
    /// Whether the bytes were zeroed (a writable open) or left as they are
    /// (a read-only open, which modifies nothing).
    pub zeroed: bool,
    /// The positions the torn frame claimed, when its header still checks
    /// out and starts where the log ends (a write cut short after its
    /// header landed); `None` when not even the header survived, or when
    /// it names positions the log never reached. Not acknowledged if this
    /// was a torn write (acknowledged and now lost if it was damage to the
    /// last frame, which looks the same); the next append reuses them.
    pub claimed_positions: Option<Range<u64>>,
}
