//! # annals-cqrs
//!
//! A storage backend for [cqrs-es](https://docs.rs/cqrs-es) 0.5 on
//! [annals](../annals/index.html), the embedded event store: events,
//! snapshots and views in one data directory, in-process, with no database
//! server. It behaves like cqrs-es's own postgres-es backend and is tested
//! with that backend's checks.
//!
//! ```
//! use std::sync::Arc;
//! use cqrs_es::doc::{Customer, CustomerCommand};
//! use annals_cqrs::annals_cqrs;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(annals::Store::open(dir.path()).unwrap());
//! let cqrs = annals_cqrs::<Customer>(store.clone(), vec![], Default::default());
//! cqrs.execute("customer-1", CustomerCommand::AddCustomerName { name: "Ann".into() })
//!     .await
//!     .unwrap();
//! // One annals stream per aggregate instance.
//! assert_eq!(store.stream_version("Customer-customer-1"), Some(0));
//! # }
//! ```
//!
//! ## What goes where
//!
//! - [`AnnalsEventRepository`] implements cqrs-es's
//!   `PersistedEventRepository`: each aggregate instance is one annals
//!   stream, `{aggregate_type}-{aggregate_id}` with the escaping of
//!   [`naming`]; cqrs-es sequence `n` is stream version `n - 1`. The event
//!   type is the annals event type, the payload is the event's data (JSON),
//!   and `event_version`, `aggregate_type`, `aggregate_id` and cqrs-es's
//!   metadata are the event's metadata (JSON); [`record`] has the table.
//! - Snapshots go to a stream of their own per aggregate,
//!   `$snapshot-{aggregate_type}-{aggregate_id}`, written after the events
//!   they cover. [`AnnalsEventRepository`] says what that guarantees and
//!   what it does not, and that old snapshots pile up until annals has
//!   stream limits.
//! - [`AnnalsViewRepository`] implements `ViewRepository`: one stream per
//!   view instance, `$view-{view_name}-{view_id}`, whose latest event is the
//!   view.
//! - [`annals_cqrs`], [`annals_snapshot_cqrs`] and [`annals_aggregate_cqrs`]
//!   build a [`CqrsFramework`](cqrs_es::CqrsFramework) in one call.
//!
//! ## Concurrency and blocking
//!
//! A commit is checked by annals' expected-version check under its writer
//! lock: of two commands racing on one aggregate, one commits and the
//! other gets `AggregateError::AggregateConflict`, having written nothing.
//! Appends wait for an `fdatasync`, so they run on tokio's blocking pool
//! (`spawn_blocking`); a tokio runtime (either flavour) is needed.
//!
//! ## Errors
//!
//! [`error`] maps annals' errors onto cqrs-es's `PersistenceError`, and a
//! stored record that annals-cqrs cannot decode becomes a
//! `DeserializationError` holding an [`error::DecodeError`] that names the
//! stream and version; nothing read from disk makes it panic.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod cqrs;
pub mod error;
mod event_repository;
pub mod naming;
pub mod record;
mod view_repository;

pub use cqrs::{AnnalsCqrs, annals_aggregate_cqrs, annals_cqrs, annals_snapshot_cqrs};
pub use event_repository::{
    AnnalsEventRepository, DEFAULT_PAGE_SIZE, DEFAULT_STREAMING_CHANNEL_SIZE,
};
pub use view_repository::AnnalsViewRepository;
