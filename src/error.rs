//! The one error type. Its variants keep apart the four things a caller must
//! handle differently: its own mistakes, concurrency conflicts, damage on
//! disk, and failures of the machine.

use std::io;
use std::path::PathBuf;

use crate::event::ExpectedVersion;

/// Everything that can go wrong in annals.
///
/// - Caller mistakes ([`InvalidStreamId`](Error::InvalidStreamId),
///   [`InvalidEventType`](Error::InvalidEventType),
///   [`LimitExceeded`](Error::LimitExceeded),
///   [`InvalidOptions`](Error::InvalidOptions),
///   [`Json`](Error::Json),
///   [`StreamNotFound`](Error::StreamNotFound),
///   [`StreamDeleted`](Error::StreamDeleted),
///   [`InvalidLimits`](Error::InvalidLimits),
///   [`DuplicateStream`](Error::DuplicateStream)): nothing was written; fix the
///   call.
/// - Conflicts ([`WrongExpectedVersion`](Error::WrongExpectedVersion),
///   [`AppendConditionFailed`](Error::AppendConditionFailed),
///   [`DuplicateEventId`](Error::DuplicateEventId),
///   [`Locked`](Error::Locked)): nothing was written; reload and retry, or
///   wait (a duplicate id: use fresh ids for new events).
/// - Damage ([`Corruption`](Error::Corruption)): the files fail a check;
///   nothing was modified. Restore from a backup or investigate the named file
///   and offset.
/// - Failures ([`Io`](Error::Io), [`Poisoned`](Error::Poisoned)): the
///   machine failed; the store refuses further appends until it is reopened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream's version did not pass the append's expected-version check.
    #[error("stream '{stream}': expected {expected}, but its last version is {}", display_version(*.actual))]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's last version; `None` if it has no events.
        actual: Option<u64>,
    },

    /// An append reused an event id that the store already holds other
    /// than as the retry of that same batch, or that appears twice in the
    /// batch. Event ids are unique across the store; nothing was written.
    ///
    /// A batch whose ids are all already stored as its stream's
    /// consecutive events, at the place its expected version names, is a
    /// retry: it succeeds with
    /// [`AppendResult::deduplicated`](crate::AppendResult::deduplicated)
    /// set instead of failing.
    #[error("{}", match position {
        Some(p) => format!("event id {id} is already in the store, at position {p} of stream '{stream}'; nothing was written"),
        None => format!("event id {id} appears more than once in the batch appended to stream '{stream}'; nothing was written"),
    })]
    DuplicateEventId {
        /// The first id of the batch (in batch order) that is reused.
        id: uuid::Uuid,
        /// The stream holding the event with that id; for an id repeated
        /// within the batch, the stream the batch was appended to.
        stream: String,
        /// The global position of the stored event with that id; `None`
        /// when the id is not stored but repeats within the batch itself.
        position: Option<u64>,
    },

    /// `read_stream` of a stream that has no events.
    #[error("stream '{stream}' does not exist")]
    StreamNotFound {
        /// The stream asked for.
        stream: String,
    },

    /// A read of, or an append or lifecycle call to, a stream that was
    /// tombstoned ([`Store::tombstone_stream`](crate::Store::tombstone_stream)):
    /// it is gone for good, and its name cannot be used again. Nothing was
    /// written.
    #[error("stream '{stream}' was deleted for good (tombstoned)")]
    StreamDeleted {
        /// The stream (its first 64 characters).
        stream: String,
    },

    /// A lifecycle call with an argument out of range (a zero
    /// `max_count`, a `max_age` of zero or past what microseconds since
    /// the epoch can hold). Nothing was written.
    #[error("invalid stream limits: {reason}")]
    InvalidLimits {
        /// What is wrong, for people.
        reason: String,
    },

    /// A stream id that is empty, too long or contains a control character.
    #[error("invalid stream id {stream:?}: {reason}")]
    InvalidStreamId {
        /// The offending id, cut to its first 64 characters.
        stream: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An event type that is empty, too long or contains a control character.
    #[error("invalid event type {event_type:?} (event {index} of the batch): {reason}")]
    InvalidEventType {
        /// The offending type, cut to its first 64 characters.
        event_type: String,
        /// Its index in the batch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A call went past one of the store's limits (see [`Limit`]).
    #[error("{limit} exceeded: {actual} > {max}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The size or count of the call.
        actual: u64,
        /// The limit in force.
        max: u64,
    },

    /// [`Options`](crate::Options) out of their documented bounds.
    #[error("invalid options: {reason}")]
    InvalidOptions {
        /// Which option and why.
        reason: String,
    },

    /// A payload that the serde helpers (feature `serde`) could not turn
    /// into JSON, or that does not read as the type asked for. Nothing was
    /// written.
    #[error("{}: {reason}", match .position { Some(p) => format!("event at position {p} does not read as the type asked for"), None => "value does not serialise as JSON".to_owned() })]
    Json {
        /// The event read, when reading; `None` when making an event.
        position: Option<u64>,
        /// What serde_json said.
        reason: String,
    },

    /// A file in the data directory fails a check. `open` modified nothing.
    #[error("corruption in {}: at byte offset {offset}: {reason}", file.display())]
    Corruption {
        /// The damaged (or missing, or unexpected) file.
        file: PathBuf,
        /// The byte offset of the first problem in that file.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// The active segment ends in a torn tail (what a crash during an
    /// unacknowledged write leaves) and the store was opened with
    /// [`TornTail::Refuse`](crate::TornTail::Refuse). `open` modified
    /// nothing; opening with the default [`TornTail::Truncate`](crate::TornTail::Truncate)
    /// zeroes the tail and reports it in [`Store::recovery_report`](crate::Store::recovery_report).
    #[error("the log in {} ends in a torn tail at byte offset {offset} ({bytes} bytes); refusing to truncate it as the options ask", file.display())]
    TornTail {
        /// The active segment file.
        file: PathBuf,
        /// Where the torn range starts.
        offset: u64,
        /// How many bytes it spans, up to its last non-zero byte.
        bytes: u64,
    },

    /// An operating-system I/O call failed.
    #[error("I/O error while trying to {op} {}: {source}", path.display())]
    Io {
        /// What annals was doing.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The error the OS returned.
        #[source]
        source: io::Error,
    },

    /// Another `Store` (in this or another process) holds the directory.
    #[error("the store at {} is locked by another open Store", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// An earlier write or sync failed, so appends are refused until the
    /// store is reopened. Reads keep working.
    #[error("the store is poisoned by an earlier write or sync failure; reopen it to recover")]
    Poisoned,

    /// The store was opened read-only.
    #[error("the store was opened read-only")]
    ReadOnly,

    /// The store was closed or dropped, and a subscription has delivered
    /// everything that was committed before.
    #[error("the store is closed; the subscription has delivered everything committed before")]
    StoreClosed,

    /// A subscription's checkpoint (`SubscribeFrom::After`), or an append
    /// condition's position, is at or past the end of the log (or of the
    /// stream): nothing was ever there to be delivered, or seen. It happens when a reopen dropped a torn tail that the
    /// checkpoint had seen, or the checkpoint belongs to another store.
    /// Waiting instead would deliver different events at the same
    /// positions later, so the subscription is refused.
    #[error("checkpoint {checkpoint} is at or past the end of {} ({end} events): the log is shorter than when the checkpoint was taken (a torn tail dropped at open?), or the checkpoint belongs to another store", match stream { Some(s) => format!("stream '{s}'"), None => "the log".to_owned() })]
    CheckpointAhead {
        /// The checkpoint given.
        checkpoint: u64,
        /// The global position (for a stream, its next version) now.
        end: u64,
        /// The stream, for a stream subscription (its first 64
        /// characters).
        stream: Option<String>,
    },

    /// A conditional append's condition failed: an event passing its
    /// filter was appended after the position it names (or, with no
    /// position, exists at all). Nothing was written. A conflict, like
    /// [`WrongExpectedVersion`](Error::WrongExpectedVersion): read again
    /// from `position`, decide again, retry.
    #[error(
        "append condition failed: the event at position {position} matches the condition's filter and was appended after the position it names"
    )]
    AppendConditionFailed {
        /// The first event after the condition's position that passes its
        /// filter.
        position: u64,
    },

    /// One multi-stream append names the same stream twice. A caller
    /// mistake: nothing was written; put the stream's events in one part.
    #[error("stream '{stream}' appears twice in one append_multi (again at part {index})")]
    DuplicateStream {
        /// The stream (its first 64 characters).
        stream: String,
        /// The index of its second part.
        index: usize,
    },

    /// The path given as a data directory is not one: it is a file, or a
    /// directory holding an entry annals did not make (annals ignores only
    /// `lost+found` and names starting with `.`). A caller mistake, not
    /// damage: nothing was created or modified; point annals at its own
    /// directory, or move the stranger out.
    #[error("not an annals data directory: {} {reason}", path.display())]
    NotAStore {
        /// The path given as the data directory.
        path: PathBuf,
        /// What is there instead, for people; names the stray entry.
        reason: String,
    },
    /// [`Store::backup`](crate::Store::backup) was given a destination that
    /// is no place for a backup: a file, the store itself or a directory
    /// inside it or holding it, or a directory holding anything but an
    /// earlier backup (annals ignores only `lost+found`, `LOCK` and names
    /// starting with `.`). A caller mistake: nothing was created or
    /// changed; back up into a new or empty directory, or an earlier
    /// backup of the same store.
    #[error("cannot back up into {}: it {reason}", path.display())]
    BackupDestination {
        /// The destination given.
        path: PathBuf,
        /// What is wrong with it, for people.
        reason: String,
    },

    /// A replication import ([`crate::replication::import`]) whose events
    /// do not follow on from the store: the first position is not the
    /// store's next one, positions skip or repeat, or a stream's version
    /// does not follow its last one. Nothing was written. The replica and
    /// its source disagree; resume from the replica's
    /// [`global_position`](crate::Store::global_position).
    #[error("cannot import the event at position {position}: {reason}")]
    ImportRefused {
        /// The position of the event that does not follow on.
        position: u64,
        /// What does not follow, for people.
        reason: String,
    },
}

/// The limits a call can exceed, each set in [`Options`](crate::Options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Bytes of data plus metadata of one event (`max_event_size`).
    EventSize,
    /// Events in one append (`max_batch_events`).
    BatchEvents,
    /// Encoded bytes of one append: it must fit in one segment.
    BatchSize,
    /// Bytes of a stream id (`max_stream_id_len`).
    StreamIdLength,
    /// Bytes of an event type (`max_event_type_len`).
    EventTypeLength,
    /// Segments in one store (the format numbers them with 32 bits).
    SegmentCount,
    /// Streams in one multi-stream append (`max_batch_events`).
    BatchStreams,
    /// Prefixes and event types in one [`Filter`](crate::Filter)
    /// ([`MAX_FILTER_TERMS`](crate::MAX_FILTER_TERMS)).
    FilterTerms,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::EventSize => "event size limit (max_event_size, bytes of data + metadata)",
            Limit::BatchEvents => "batch event count limit (max_batch_events)",
            Limit::BatchSize => "batch size limit (encoded bytes that fit in one segment)",
            Limit::StreamIdLength => "stream id length limit (max_stream_id_len, bytes)",
            Limit::EventTypeLength => "event type length limit (max_event_type_len, bytes)",
            Limit::SegmentCount => "segment count limit",
            Limit::BatchStreams => "streams in one append_multi (max_batch_events)",
            Limit::FilterTerms => "filter term limit (prefixes and event types in one filter)",
        })
    }
}

fn display_version(v: Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "none (the stream has no events)".to_owned(),
    }
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// The first 64 characters of a caller's string, for an error message that
/// must not grow with the input.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(64).collect()
}
