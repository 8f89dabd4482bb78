//! The one error type of annals-nats.

use thiserror::Error;
use uuid::Uuid;

use crate::wire::WireError;

/// Why shipping or mirroring stopped. Network trouble is not here: both
/// directions reconnect and resume by themselves. What is here needs a
/// person: bad arguments, a store that does not match what JetStream
/// holds, a message that is not annals', a store error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A command-line or option value that cannot work.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// Why, for people.
        reason: String,
    },
    /// The annals store refused or failed.
    #[error("annals store: {0}")]
    Store(#[from] annals::Error),
    /// The store and JetStream disagree about the event at a position that
    /// both have: the store lost a tail that was already shipped, or it
    /// is another store. Nothing is shipped or imported over it.
    #[error(
        "the store and JetStream stream {stream} diverge at position {position}: \
         JetStream holds event {jetstream_id} (sequence {sequence}) there, the store {store}"
    )]
    Divergent {
        /// The JetStream stream.
        stream: String,
        /// The position both claim.
        position: u64,
        /// The id JetStream holds there.
        jetstream_id: Uuid,
        /// Its sequence in the JetStream stream.
        sequence: u64,
        /// What the store holds there, for people ("holds event <id>",
        /// "has no event there (its log ends before it)").
        store: String,
    },
    /// The replica holds events that the JetStream stream does not: it
    /// was mirrored from another stream, or the stream was recreated.
    #[error(
        "the replica's last event (position {position}, id {id}) is not in JetStream stream {stream}: {reason}"
    )]
    ReplicaAhead {
        /// The JetStream stream.
        stream: String,
        /// The replica's last position.
        position: u64,
        /// The replica's event id there.
        id: Uuid,
        /// What JetStream has instead, for people.
        reason: String,
    },
    /// A message does not follow the one before it (or the replica's
    /// last position): something shipped in between is not in JetStream
    /// (lost, or removed from the stream). Nothing is imported over it.
    #[error(
        "message {sequence} of JetStream stream {stream} (position {position}) follows position {}, \
         but the replica reached position {}: a message in between is missing",
        follows.map_or("none (the start)".to_owned(), |p| p.to_string()),
        reached.map_or("none (it is empty)".to_owned(), |p| p.to_string())
    )]
    Lost {
        /// The JetStream stream.
        stream: String,
        /// The message's sequence.
        sequence: u64,
        /// The message's position.
        position: u64,
        /// The position it says it follows.
        follows: Option<u64>,
        /// The last position the replica (or the batch) reached.
        reached: Option<u64>,
    },
    /// An event id JetStream already holds at another place came up to be
    /// shipped: the stream holds another store's events.
    #[error(
        "event {id} (position {position}) is already in JetStream stream {stream} at sequence {sequence}, \
         as position {shipped_position}: the stream holds another store's events"
    )]
    AlreadyShipped {
        /// The JetStream stream.
        stream: String,
        /// The event id.
        id: Uuid,
        /// Its position in the store.
        position: u64,
        /// The sequence JetStream holds it at.
        sequence: u64,
        /// The position that message claims.
        shipped_position: u64,
    },
    /// An event is bigger than the server takes in one message.
    #[error("the event at position {position} does not fit in one NATS message: {reason}")]
    TooBig {
        /// The event's position.
        position: u64,
        /// The server's words.
        reason: String,
    },
    /// A JetStream message is not one that `ship` writes.
    #[error("message {sequence} of JetStream stream {stream} is not an annals event: {source}")]
    BadMessage {
        /// The JetStream stream.
        stream: String,
        /// The message's sequence.
        sequence: u64,
        /// What is wrong with it.
        source: WireError,
    },
    /// An event cannot be written as a message (its stream id or event
    /// type is empty, which annals never stores).
    #[error("the event at position {position} cannot be sent: {source}")]
    Unsendable {
        /// The event's position.
        position: u64,
        /// Why.
        source: WireError,
    },
    /// The JetStream stream exists but is set up in a way that cannot work.
    #[error("JetStream stream {stream}: {reason}")]
    StreamConfig {
        /// The JetStream stream.
        stream: String,
        /// What is wrong, for people.
        reason: String,
    },
}
