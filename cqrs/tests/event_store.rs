//! cqrs-es's `PersistedEventStore` on annals, checked the way its backends
//! check theirs: postgres-es's `tests/lib.rs` and dynamo-es's
//! `tests/lib.rs` in the cqrs repository; plus concurrent commits and a
//! reopen of the store between commands.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use annals::{EventData, ExpectedVersion, Store};
use annals_cqrs::AnnalsEventRepository;
use annals_cqrs::naming::{aggregate_stream, snapshot_stream};
use common::temp_store;
use cqrs_es::doc::{Customer, CustomerEvent};
use cqrs_es::persist::{PersistedEventStore, SemanticVersionEventUpcaster};
use cqrs_es::{AggregateError, EventStore};
use serde_json::Value;

type CustomerStore = PersistedEventStore<AnnalsEventRepository, Customer>;
type MakeStore = fn(Arc<Store>) -> CustomerStore;

fn event_store(store: Arc<Store>) -> CustomerStore {
    PersistedEventStore::new_event_store(AnnalsEventRepository::new(store))
}

fn aggregate_store(store: Arc<Store>) -> CustomerStore {
    PersistedEventStore::new_aggregate_store(AnnalsEventRepository::new(store))
}

fn snapshot_store(store: Arc<Store>, size: usize) -> CustomerStore {
    PersistedEventStore::new_snapshot_store(AnnalsEventRepository::new(store), size)
}

// Ports postgres-es `commit_and_load_events` (tests/lib.rs).
#[tokio::test]
async fn commit_and_load_events() {
    let (_dir, store) = temp_store();
    simple_es_commit_and_load_test(event_store(store.clone())).await;
    assert_eq!(store.global_position(), 3, "no snapshots in an event store");
}

// Ports postgres-es `commit_and_load_events_snapshot_store` (tests/lib.rs),
// which despite its name uses the aggregate store.
#[tokio::test]
async fn commit_and_load_events_snapshot_store() {
    let (_dir, store) = temp_store();
    let id = simple_es_commit_and_load_test(aggregate_store(store.clone())).await;
    let snapshots = snapshot_stream("Customer", &id);
    assert_eq!(
        store.stream_version(&snapshots),
        Some(1),
        "one snapshot per commit"
    );
    let context = aggregate_store(store).load_aggregate(&id).await.unwrap();
    assert_eq!(context.current_sequence, 3);
    assert_eq!(context.current_snapshot, Some(2));
    assert_eq!(context.aggregate.name, "test_event_A");
    assert_eq!(context.aggregate.email, "email B");
}

// The same checks through a snapshot store that snapshots every 2 events.
#[tokio::test]
async fn commit_and_load_events_every_second_event_snapshot_store() {
    let (_dir, store) = temp_store();
    let id = simple_es_commit_and_load_test(snapshot_store(store.clone(), 2)).await;
    let context = snapshot_store(store, 2).load_aggregate(&id).await.unwrap();
    assert_eq!(context.current_sequence, 3);
    assert_eq!(context.current_snapshot, Some(1));
    assert_eq!(context.aggregate.email, "email B");
}

/// Upstream's `simple_es_commit_and_load_test`; returns the aggregate id.
async fn simple_es_commit_and_load_test(event_store: CustomerStore) -> String {
    let id = annals::Uuid::now_v7().to_string();
    assert_eq!(0, event_store.load_events(id.as_str()).await.unwrap().len());
    let context = event_store.load_aggregate(id.as_str()).await.unwrap();

    event_store
        .commit(
            vec![
                CustomerEvent::NameAdded {
                    name: "test_event_A".to_string(),
                },
                CustomerEvent::EmailUpdated {
                    new_email: "email A".to_string(),
                },
            ],
            context,
            HashMap::default(),
        )
        .await
        .unwrap();

    assert_eq!(2, event_store.load_events(id.as_str()).await.unwrap().len());
    let context = event_store.load_aggregate(id.as_str()).await.unwrap();

    event_store
        .commit(
            vec![CustomerEvent::EmailUpdated {
                new_email: "email B".to_string(),
            }],
            context,
            HashMap::default(),
        )
        .await
        .unwrap();
    assert_eq!(3, event_store.load_events(id.as_str()).await.unwrap().len());
    id
}

// Ports dynamo-es `commit_no_events` (tests/lib.rs): committing no events
// succeeds and writes nothing.
#[tokio::test]
async fn commit_no_events() {
    let (_dir, store) = temp_store();
    for es in [event_store(store.clone()), aggregate_store(store.clone())] {
        let context = es.load_aggregate("no-events").await.unwrap();
        es.commit(vec![], context, HashMap::default())
            .await
            .unwrap();
    }
    assert_eq!(store.global_position(), 0);
}

// Ports postgres-es `upcasted_event` (tests/lib.rs). Upstream's init.sql
// inserts a version 1.0 `NameAdded` event without a name; here it is
// appended to the store directly, in the layout annals-cqrs writes.
#[tokio::test]
async fn upcasted_event() {
    let (_dir, store) = temp_store();
    let id = "previous_event_in_need_of_upcast";
    store
        .append(
            &aggregate_stream("Customer", id),
            ExpectedVersion::NoStream,
            &[EventData::new("NameAdded", br#"{"NameAdded": {}}"#.to_vec()).with_metadata(
                br#"{"aggregate_type":"Customer","aggregate_id":"previous_event_in_need_of_upcast","event_version":"1.0","metadata":{}}"#.to_vec(),
            )],
        )
        .unwrap();
    let upcaster = SemanticVersionEventUpcaster::new(
        "NameAdded",
        "1.0.1",
        Box::new(|mut event| match event.get_mut("NameAdded").unwrap() {
            Value::Object(object) => {
                object.insert("name".to_string(), Value::String("UNKNOWN".to_string()));
                event
            }
            _ => panic!("not the expected object"),
        }),
    );
    // Without the upcaster the old event does not deserialize.
    let err = event_store(store.clone()).load_aggregate(id).await.err();
    assert!(matches!(err, Some(AggregateError::DeserializationError(_))));

    let event_store = event_store(store).with_upcasters(vec![Box::new(upcaster)]);
    let result = event_store.load_aggregate(id).await.unwrap();
    assert_eq!(1, result.current_sequence);
    assert_eq!(None, result.current_snapshot);
    assert_eq!(result.aggregate.name, "UNKNOWN");
}

// Two commands on one aggregate at once, from the same loaded state: one
// commits, the other gets AggregateConflict and writes nothing. Both wait
// at a barrier so that their appends really race on the blocking pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_on_one_aggregate_one_wins() {
    for make in [event_store as MakeStore, aggregate_store] {
        let (_dir, store) = temp_store();
        let es = Arc::new(make(store.clone()));
        let id = "contended";
        let context = es.load_aggregate(id).await.unwrap();
        es.commit(
            vec![CustomerEvent::NameAdded { name: "n".into() }],
            context,
            HashMap::default(),
        )
        .await
        .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for email in ["first", "second"] {
            let (es, barrier) = (es.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let context = es.load_aggregate(id).await.unwrap();
                barrier.wait().await;
                let event = CustomerEvent::EmailUpdated {
                    new_email: email.to_string(),
                };
                es.commit(vec![event], context, HashMap::default()).await
            }));
        }
        let mut ok = 0;
        let mut conflicts = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(AggregateError::AggregateConflict) => conflicts += 1,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!((ok, conflicts), (1, 1));
        let events = es.load_events(id).await.unwrap();
        assert_eq!(events.len(), 2, "only the winner's event is stored");
        let winner = match &events[1].payload {
            CustomerEvent::EmailUpdated { new_email } => new_email.clone(),
            other => panic!("unexpected event {other:?}"),
        };
        let context = es.load_aggregate(id).await.unwrap();
        assert_eq!(context.aggregate.email, winner);
        assert_eq!(context.current_sequence, 2);
    }
}

// The store is closed and reopened between commands, in each of cqrs-es's
// three storage modes: what the next command sees comes from disk.
#[tokio::test]
async fn commands_continue_after_the_store_is_reopened() {
    let modes: [(&str, MakeStore); 3] = [
        ("event store", event_store),
        ("aggregate store", aggregate_store),
        ("snapshot store", |s| snapshot_store(s, 2)),
    ];
    for (mode, make) in modes {
        let dir = tempfile::tempdir().unwrap();
        let id = "reopened";
        for round in 0..3 {
            let store = Arc::new(Store::open(dir.path()).unwrap());
            let es = make(store.clone());
            let context = es.load_aggregate(id).await.unwrap();
            assert_eq!(context.current_sequence, round * 2, "{mode}");
            if round > 0 {
                assert_eq!(
                    context.aggregate.email,
                    format!("email {}", round - 1),
                    "{mode}"
                );
            }
            let events = vec![
                CustomerEvent::NameAdded {
                    name: format!("name {round}"),
                },
                CustomerEvent::EmailUpdated {
                    new_email: format!("email {round}"),
                },
            ];
            es.commit(events, context, HashMap::default())
                .await
                .unwrap();
            drop(es);
            Arc::into_inner(store)
                .expect("the only reference")
                .close()
                .unwrap();
        }
        let store = Arc::new(Store::open(dir.path()).unwrap());
        assert_eq!(
            make(store).load_events(id).await.unwrap().len(),
            6,
            "{mode}"
        );
    }
}

// A crash between the events' append and the snapshot's leaves a snapshot
// that lags; the aggregate store must still load the latest state and take
// the next command (it never replays events itself).
#[tokio::test]
async fn an_aggregate_store_survives_a_lost_snapshot() {
    let (_dir, store) = temp_store();
    let es = aggregate_store(store.clone());
    let context = es.load_aggregate("lost").await.unwrap();
    es.commit(
        vec![CustomerEvent::NameAdded { name: "n".into() }],
        context,
        HashMap::default(),
    )
    .await
    .unwrap();
    // The events of a second commit whose snapshot never made it.
    event_store(store.clone())
        .commit(
            vec![CustomerEvent::EmailUpdated {
                new_email: "after".into(),
            }],
            event_store(store.clone())
                .load_aggregate("lost")
                .await
                .unwrap(),
            HashMap::default(),
        )
        .await
        .unwrap();
    let context = es.load_aggregate("lost").await.unwrap();
    assert_eq!(context.current_sequence, 2);
    assert_eq!(context.aggregate.email, "after");
    es.commit(
        vec![CustomerEvent::EmailUpdated {
            new_email: "next".into(),
        }],
        context,
        HashMap::default(),
    )
    .await
    .unwrap();
    let context = es.load_aggregate("lost").await.unwrap();
    assert_eq!(
        (context.current_sequence, context.aggregate.email.as_str()),
        (3, "next")
    );
}
