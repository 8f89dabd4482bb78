//! Ready-made [`CqrsFramework`]s on an annals store.

use std::sync::Arc;

use annals::Store;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, CqrsFramework, Query};

use crate::AnnalsEventRepository;

/// A [`CqrsFramework`] whose events live in annals.
pub type AnnalsCqrs<A> = CqrsFramework<A, PersistedEventStore<AnnalsEventRepository, A>>;

/// A framework that rebuilds each aggregate from all of its events.
pub fn annals_cqrs<A: Aggregate>(
    store: Arc<Store>,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> AnnalsCqrs<A> {
    let repo = AnnalsEventRepository::new(store);
    CqrsFramework::new(
        PersistedEventStore::new_event_store(repo),
        queries,
        services,
    )
}

/// A framework that snapshots each aggregate every `snapshot_size` events
/// and rebuilds it from its latest snapshot and the events after it.
pub fn annals_snapshot_cqrs<A: Aggregate>(
    store: Arc<Store>,
    queries: Vec<Box<dyn Query<A>>>,
    snapshot_size: usize,
    services: A::Services,
) -> AnnalsCqrs<A> {
    let repo = AnnalsEventRepository::new(store);
    CqrsFramework::new(
        PersistedEventStore::new_snapshot_store(repo, snapshot_size),
        queries,
        services,
    )
}

/// A framework that keeps each aggregate's latest state as a snapshot
/// after every command and loads it from there (cqrs-es's "aggregate
/// store"); the events are stored all the same.
pub fn annals_aggregate_cqrs<A: Aggregate>(
    store: Arc<Store>,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> AnnalsCqrs<A> {
    let repo = AnnalsEventRepository::new(store);
    CqrsFramework::new(
        PersistedEventStore::new_aggregate_store(repo),
        queries,
        services,
    )
}
