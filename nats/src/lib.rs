//! `annals-nats` takes an [annals](annals) store beyond one machine: it
//! relays the global log to a NATS JetStream stream exactly once
//! ([`ship`]), and builds read replicas back from that stream
//! ([`mirror`]).
//!
//! - **Ship**: every event of the log, in position order, becomes one
//!   message on subject `<prefix>.<escaped stream id>` ([`escape`]), with
//!   the event id as `Nats-Msg-Id`, the position, version, event type,
//!   recorded-at time and metadata in headers, and the data as the
//!   payload ([`wire`]). There is no checkpoint file: JetStream's last
//!   message says where to resume, and every publish expects the sequence
//!   before it, so nothing lands twice or out of order, whatever crashes
//!   or races. It follows the live store from a read-only open, beside
//!   the writer.
//!   Control records (deletes, tombstones, truncations, limits) are
//!   shipped as messages too, and every message names the position of
//!   the one before it, so that gaps in the log cost nothing and a lost
//!   message is still found.
//! - **Mirror**: a replica with the origin's positions, versions, ids,
//!   times, bytes and control records, through
//!   [`annals::replication::import_log`]; readers, subscriptions and
//!   `annals verify` cannot tell it from the origin. Events shipped before
//!   a delete stay in JetStream until the operator purges them (the
//!   README's "Limits").
//!
//! Both run until stopped, reconnect by themselves, and return an
//! [`Error`] only for what needs a person: a store that has diverged from
//! what JetStream holds, a message that is not annals', bad arguments.
//!
//! The binary `annals-nats` wraps both (`annals-nats ship --help`).

#![warn(missing_docs)]

mod error;
pub mod escape;
mod mirror;
mod nats;
mod report;
mod ship;
pub mod wire;

pub use error::Error;
pub use mirror::{MirrorOptions, MirrorSummary, mirror};
pub use report::Report;
pub use ship::{ShipOptions, ShipSummary, ship};
