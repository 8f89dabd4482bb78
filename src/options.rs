//! [`Options`]: the store's limits and settings, each with its default and
//! bounds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::io::{FileIo, RealIo};

pub use crate::format::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, SEGMENT_SIZE_MULTIPLE};
/// The longest stream id or event type the format can hold.
pub const MAX_NAME_LEN: usize = u16::MAX as usize;
/// The most events one append may carry, whatever the options say.
pub const MAX_BATCH_EVENTS: usize = 1 << 20;

/// Settings for [`Store::open_with`](crate::Store::open_with).
///
/// Every limit has a documented default and bounds; `open_with` refuses
/// options outside them with [`Error::InvalidOptions`].
///
/// ```
/// use annals::Options;
///
/// let options = Options::default()
///     .segment_size(8 << 20)
///     .max_event_size(64 << 10)
///     .max_batch_events(1_000);
/// assert_eq!(options.get_segment_size(), 8 << 20);
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) segment_size: u64,
    pub(crate) max_event_size: usize,
    pub(crate) max_batch_events: usize,
    pub(crate) max_stream_id_len: usize,
    pub(crate) max_event_type_len: usize,
    pub(crate) prepare_ahead: bool,
    pub(crate) on_torn_tail: TornTail,
    pub(crate) follow_interval: Duration,
    pub(crate) retain_bytes: Option<u64>,
    pub(crate) retain_age: Option<Duration>,
    pub(crate) io: Arc<dyn FileIo>,
}

/// What a writable open does with a torn tail: the bytes of a write that a
/// crash cut short at the end of the active segment.
///
/// A torn tail was never acknowledged (an append returns only after its
/// frame is synced), so dropping it loses nothing that was promised. But
/// damage to the very last acknowledged frame looks exactly like a torn
/// write, so a user who would rather look before anything is dropped can
/// say so. Either way [`Store::recovery_report`](crate::Store::recovery_report)
/// says what was found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TornTail {
    /// Zero the torn bytes (the file never shrinks), sync, warn with the
    /// file, offset and bytes dropped, and open. The default.
    #[default]
    Truncate,
    /// Refuse to open with [`Error::TornTail`], naming the file and offset,
    /// and modify nothing.
    Refuse,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 << 20,
            max_event_size: 1 << 20,
            max_batch_events: 10_000,
            max_stream_id_len: 256,
            max_event_type_len: 256,
            prepare_ahead: true,
            on_torn_tail: TornTail::Truncate,
            follow_interval: Duration::from_millis(DEFAULT_FOLLOW_INTERVAL_MS),
            retain_bytes: None,
            retain_age: None,
            io: Arc::new(RealIo),
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("segment_size", &self.segment_size)
            .field("max_event_size", &self.max_event_size)
            .field("max_batch_events", &self.max_batch_events)
            .field("max_stream_id_len", &self.max_stream_id_len)
            .field("max_event_type_len", &self.max_event_type_len)
            .field("prepare_ahead", &self.prepare_ahead)
            .field("on_torn_tail", &self.on_torn_tail)
            .field("follow_interval", &self.follow_interval)
            .field("retain_bytes", &self.retain_bytes)
            .field("retain_age", &self.retain_age)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// The size in bytes of every segment file of a new store.
    ///
    /// Default 64 MiB. Bounds: 4 KiB to 1 GiB, a multiple of 4 KiB. A batch
    /// never spans two segments, so this also bounds the largest append.
    /// The size is fixed when a store is created and recorded in every
    /// segment header; opening an existing store keeps its size and ignores
    /// this setting.
    #[must_use]
    pub fn segment_size(mut self, segment_size_bytes: u64) -> Self {
        self.segment_size = segment_size_bytes;
        self
    }

    /// The most bytes of data plus metadata one event may carry.
    ///
    /// Default 1 MiB. Bounds: 1 byte to 1 GiB; an event must also fit in
    /// one segment with its headers, or its append fails with
    /// [`Limit::BatchSize`](crate::Limit::BatchSize).
    #[must_use]
    pub fn max_event_size(mut self, max_event_size_bytes: usize) -> Self {
        self.max_event_size = max_event_size_bytes;
        self
    }

    /// The most events one append may carry.
    ///
    /// Default 10,000. Bounds: 1 to 1,048,576.
    #[must_use]
    pub fn max_batch_events(mut self, max_batch_events: usize) -> Self {
        self.max_batch_events = max_batch_events;
        self
    }

    /// The longest stream id, in bytes of UTF-8.
    ///
    /// Default 256. Bounds: 1 to 65,535.
    #[must_use]
    pub fn max_stream_id_len(mut self, max_stream_id_len_bytes: usize) -> Self {
        self.max_stream_id_len = max_stream_id_len_bytes;
        self
    }

    /// The longest event type, in bytes of UTF-8.
    ///
    /// Default 256. Bounds: 1 to 65,535.
    #[must_use]
    pub fn max_event_type_len(mut self, max_event_type_len_bytes: usize) -> Self {
        self.max_event_type_len = max_event_type_len_bytes;
        self
    }

    /// Whether to create the next segment on a background thread before it
    /// is needed, so that no append waits for a segment to be created and
    /// zero-filled.
    ///
    /// Default `true`. With `false`, the append that fills a segment creates
    /// the next one itself, and every file operation happens on the
    /// appending thread in a fixed order (what deterministic fault tests
    /// want). Either way a store holds at most one segment beyond the one
    /// being written.
    #[must_use]
    pub fn prepare_segments_ahead(mut self, prepare_ahead: bool) -> Self {
        self.prepare_ahead = prepare_ahead;
        self
    }

    /// What a writable open does with a torn tail at the end of the log.
    ///
    /// Default [`TornTail::Truncate`]. Read-only opens never modify
    /// anything: they end the log where the tail is torn either way.
    #[must_use]
    pub fn on_torn_tail(mut self, policy: TornTail) -> Self {
        self.on_torn_tail = policy;
        self
    }

    /// How often a read-only store
    /// ([`Store::open_read_only_with`](crate::Store::open_read_only_with))
    /// that has subscriptions looks for the writer's new events: the
    /// writer is another process, and no notification crosses it, so its
    /// new events reach a subscription after at most this long.
    ///
    /// Default 50 ms. Bounds: 1 ms to 1 minute. A store opened for writing
    /// wakes its subscriptions at each commit and ignores this.
    #[must_use]
    pub fn follow_interval(mut self, interval: Duration) -> Self {
        self.follow_interval = interval;
        self
    }

    /// `$all` retention by size: keeps at most about this many bytes of
    /// segment files, dropping whole oldest sealed segments.
    ///
    /// Default: no limit (nothing is ever dropped). Bounds: at least 1
    /// byte. The segments in use (sealed and active, each
    /// [`segment_size`](Options::segment_size) bytes on disk) are counted;
    /// the oldest sealed ones go until the rest fit. The active segment is
    /// never dropped, nor (until the next seal) the one sealed last, so a
    /// store may hold up to two segments more than the limit admits.
    ///
    /// Retention runs when a segment is sealed, at every writable open, and
    /// at the start of a [`scavenge`](crate::Store::scavenge): a quiet
    /// store does not drop segments until one of those happens. What a
    /// drop does, and what it keeps:
    ///
    /// - The dropped events are gone from every read at once: `read_all`
    ///   and subscriptions start at the log's new first position (a
    ///   subscription that had not yet reached it skips to it), a stream
    ///   read starts at the stream's first version still held. Positions
    ///   and versions keep their numbers; `global_position` never moves
    ///   back; a stream whose events were all dropped still exists, with
    ///   its version, and reads as empty.
    /// - Each stream's next version and every lifecycle state (deletes,
    ///   tombstones, truncations, limits) are kept in the log's base file,
    ///   so versions are never reused and a tombstone still refuses.
    /// - The dropped events' ids are forgotten: an exact retry of an append
    ///   whose events were dropped writes them again.
    /// - A read-only store in another process takes the cut log at its
    ///   next [`refresh`](crate::Store::refresh) (its subscriptions'
    ///   refresher does that every [`follow_interval`](Options::follow_interval)),
    ///   which releases its maps of the dropped files; until then it reads
    ///   them as they were, and their disk blocks stay allocated.
    /// - Dropping runs on the thread whose append seals a segment, with the
    ///   writer's lock held: it writes the base (O(streams that lost
    ///   versions), two syncs), removes the files and syncs the directory,
    ///   so that append waits that much longer, once a segment.
    ///
    /// ```
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    ///
    /// # fn main() -> Result<(), annals::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let options = Options::default().segment_size(64 << 10).retain_bytes(256 << 10);
    /// let store = Store::open_with(dir.path(), options)?;
    /// for _ in 0..2_000 {
    ///     store.append("sensor-1", ExpectedVersion::Any, &[EventData::new("Read", vec![0; 200])])?;
    /// }
    /// let oldest = store.read_all(0, 1)?;
    /// assert!(oldest[0].position > 0); // the first segments were dropped
    /// assert_eq!(store.global_position(), 2_000);
    /// assert_eq!(store.stream_version("sensor-1"), Some(1_999));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn retain_bytes(mut self, max_bytes: u64) -> Self {
        self.retain_bytes = Some(max_bytes);
        self
    }

    /// `$all` retention by age: drops whole oldest sealed segments whose
    /// newest event was recorded longer ago than `age`.
    ///
    /// Default: no limit. Bounds: at least one second. Applied as
    /// [`retain_bytes`](Options::retain_bytes) says (when a segment is
    /// sealed, at a writable open, and by a scavenge), with the same
    /// effects; a segment goes only once *all* its events are older than
    /// `age`, so events up to one segment older than the limit may stay.
    #[must_use]
    pub fn retain_age(mut self, age: Duration) -> Self {
        self.retain_age = Some(age);
        self
    }

    /// Routes every file-changing operation through `io`, for fault and
    /// crash tests. Not a stable API.
    #[doc(hidden)]
    #[must_use]
    pub fn file_io(mut self, io: Arc<dyn FileIo>) -> Self {
        self.io = io;
        self
    }

    /// The `$all` retention these options set.
    pub(crate) fn retention(&self) -> crate::lifecycle::retention::Retention {
        crate::lifecycle::retention::Retention {
            bytes: self.retain_bytes,
            age: self.retain_age,
        }
    }

    /// The configured segment size in bytes.
    pub fn get_segment_size(&self) -> u64 {
        self.segment_size
    }

    /// Checks every option against its bounds.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::InvalidOptions { reason });
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size)
            || !self.segment_size.is_multiple_of(SEGMENT_SIZE_MULTIPLE)
        {
            return invalid(format!(
                "segment_size {} must be a multiple of {SEGMENT_SIZE_MULTIPLE} from \
                 {MIN_SEGMENT_SIZE} to {MAX_SEGMENT_SIZE} bytes",
                self.segment_size
            ));
        }
        if !(1..=(1 << 30)).contains(&self.max_event_size) {
            return invalid(format!(
                "max_event_size {} must be from 1 to {} bytes",
                self.max_event_size,
                1 << 30
            ));
        }
        if !(1..=MAX_BATCH_EVENTS).contains(&self.max_batch_events) {
            return invalid(format!(
                "max_batch_events {} must be from 1 to {MAX_BATCH_EVENTS}",
                self.max_batch_events
            ));
        }
        for (name, value) in [
            ("max_stream_id_len", self.max_stream_id_len),
            ("max_event_type_len", self.max_event_type_len),
        ] {
            if !(1..=MAX_NAME_LEN).contains(&value) {
                return invalid(format!(
                    "{name} {value} must be from 1 to {MAX_NAME_LEN} bytes"
                ));
            }
        }
        if self.retain_bytes == Some(0) {
            return invalid("retain_bytes must be at least 1 byte".to_owned());
        }
        if self
            .retain_age
            .is_some_and(|age| age < Duration::from_secs(1))
        {
            return invalid(format!(
                "retain_age {:?} must be at least 1 s",
                self.retain_age.unwrap_or_default()
            ));
        }
        if !(MIN_FOLLOW_INTERVAL..=MAX_FOLLOW_INTERVAL).contains(&self.follow_interval) {
            return invalid(format!(
                "follow_interval {:?} must be from {MIN_FOLLOW_INTERVAL:?} to {MAX_FOLLOW_INTERVAL:?}",
                self.follow_interval
            ));
        }
        Ok(())
    }
}

/// The default of [`Options::follow_interval`], in milliseconds.
pub const DEFAULT_FOLLOW_INTERVAL_MS: u64 = 50;
const MIN_FOLLOW_INTERVAL: Duration = Duration::from_millis(1);
const MAX_FOLLOW_INTERVAL: Duration = Duration::from_secs(60);
