//! The event and snapshot repository, checked the way postgres-es checks
//! its own (`persistence/postgres-es/src/event_repository.rs` in the cqrs
//! repository), plus what annals adds: sequence checks through annals'
//! expected version, stream naming, snapshots that lag their events, and
//! records that do not decode.

mod common;

use annals::{EventData, ExpectedVersion};
use annals_cqrs::AnnalsEventRepository;
use annals_cqrs::error::DecodeError;
use annals_cqrs::naming::{aggregate_stream, snapshot_stream};
use common::*;
use cqrs_es::Aggregate;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream};

async fn count<A: Aggregate>(mut stream: ReplayStream) -> usize {
    let mut n = 0;
    while let Some(item) = stream.next::<A>(&[]).await {
        item.expect("a replayed event decodes");
        n += 1;
    }
    n
}

// Ports postgres-es `event_repositories` (with its `verify_replay_stream`):
// an empty stream, sequences 1 and 2 inserted, [3, 2] refused with an
// optimistic-lock error leaving 2, and the replay streams' counts. Upstream
// can only say that $all holds at least 2 events (its database is shared);
// here the store is fresh, so the counts are exact, and events of another
// aggregate and of a type that starts the same way are there to be left out.
#[tokio::test]
async fn event_repositories() {
    let (_dir, store) = temp_store();
    let id = "aggregate-1".to_string();
    let event_repo = AnnalsEventRepository::new(store.clone()).with_streaming_channel_size(1);
    let events = event_repo.get_events::<TestAggregate>(&id).await.unwrap();
    assert!(events.is_empty());

    event_repo
        .persist::<TestAggregate>(
            &[
                test_event_envelope(&id, 1, TestEvent::Created(Created { id: id.clone() })),
                test_event_envelope(&id, 2, tested("a test was run")),
            ],
            None,
        )
        .await
        .unwrap();
    let events = event_repo.get_events::<TestAggregate>(&id).await.unwrap();
    assert_eq!(2, events.len());
    events.iter().for_each(|e| assert_eq!(&id, &e.aggregate_id));
    assert_eq!(events[0].sequence, 1);
    assert_eq!(events[1].sequence, 2);
    assert_eq!(events[1].event_type, "Tested");
    assert_eq!(events[1].event_version, "1.0");
    assert_eq!(events[1].aggregate_type, "TestAggregate");
    assert_eq!(
        events[1].payload,
        serde_json::to_value(tested("a test was run")).unwrap()
    );

    // Optimistic lock error
    let before = store.global_position();
    let result = event_repo
        .persist::<TestAggregate>(
            &[
                test_event_envelope(&id, 3, something_else("this should not persist")),
                test_event_envelope(&id, 2, something_else("bad sequence number")),
            ],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(result, PersistenceError::OptimisticLockError),
        "invalid error result found during insert: {result}"
    );
    let events = event_repo.get_events::<TestAggregate>(&id).await.unwrap();
    assert_eq!(2, events.len());
    assert_eq!(
        store.global_position(),
        before,
        "the refused batch wrote nothing"
    );

    // Neighbours that $all holds but the replay of TestAggregate must skip.
    let other = "aggregate-2".to_string();
    event_repo
        .persist::<TestAggregate>(&[test_event_envelope(&other, 1, tested("other"))], None)
        .await
        .unwrap();
    event_repo
        .persist::<TrickyAggregate>(
            &[test_event_of::<TrickyAggregate>(&id, 1, tested("tricky"))],
            None,
        )
        .await
        .unwrap();

    let stream = event_repo
        .stream_events::<TestAggregate>(&id)
        .await
        .unwrap();
    assert_eq!(count::<TestAggregate>(stream).await, 2);
    let stream = event_repo
        .stream_all_events::<TestAggregate>()
        .await
        .unwrap();
    assert_eq!(count::<TestAggregate>(stream).await, 3);
    let stream = event_repo
        .stream_all_events::<TrickyAggregate>()
        .await
        .unwrap();
    assert_eq!(count::<TrickyAggregate>(stream).await, 1);
    let stream = event_repo
        .stream_events::<TestAggregate>("nobody")
        .await
        .unwrap();
    assert_eq!(count::<TestAggregate>(stream).await, 0);
}

// The replay streams go page by page: with pages of 2 events and a channel
// of 1, 7 events of one aggregate among 14 come back whole and in order.
#[tokio::test]
async fn replay_streams_cross_page_boundaries_in_order() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store)
        .with_streaming_channel_size(1)
        .with_page_size(2);
    for seq in 1..=7 {
        for id in ["a", "b"] {
            repo.persist::<TestAggregate>(
                &[test_event_envelope(id, seq, tested(&format!("{id}{seq}")))],
                None,
            )
            .await
            .unwrap();
        }
    }
    let mut stream = repo.stream_events::<TestAggregate>("a").await.unwrap();
    let mut seen = Vec::new();
    while let Some(e) = stream.next::<TestAggregate>(&[]).await {
        seen.push(e.unwrap().sequence);
    }
    assert_eq!(seen, (1..=7).collect::<Vec<_>>());
    let mut stream = repo.stream_all_events::<TestAggregate>().await.unwrap();
    let mut seen = Vec::new();
    while let Some(e) = stream.next::<TestAggregate>(&[]).await {
        let e = e.unwrap();
        seen.push(format!("{}{}", e.aggregate_id, e.sequence));
    }
    let want: Vec<String> = (1..=7)
        .flat_map(|s| [format!("a{s}"), format!("b{s}")])
        .collect();
    assert_eq!(seen, want);
    assert_eq!(
        repo.get_events::<TestAggregate>("a").await.unwrap().len(),
        7
    );
}

// A batch that does not start at the stream's next sequence, or is not
// contiguous, is an optimistic-lock error that writes nothing; the check
// is annals' expected version, so it holds under races too.
#[tokio::test]
async fn sequences_must_continue_the_stream_contiguously() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store.clone());
    let id = "x";
    for bad in [vec![0], vec![2], vec![1, 3], vec![1, 1]] {
        let batch: Vec<_> = bad
            .iter()
            .map(|&s| test_event_envelope(id, s, tested("t")))
            .collect();
        let err = repo
            .persist::<TestAggregate>(&batch, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PersistenceError::OptimisticLockError),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(store.global_position(), 0);
    repo.persist::<TestAggregate>(
        &[
            test_event_envelope(id, 1, tested("1")),
            test_event_envelope(id, 2, tested("2")),
        ],
        None,
    )
    .await
    .unwrap();
    for bad in [vec![1], vec![2], vec![4], vec![3, 5]] {
        let batch: Vec<_> = bad
            .iter()
            .map(|&s| test_event_envelope(id, s, tested("t")))
            .collect();
        let err = repo
            .persist::<TestAggregate>(&batch, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PersistenceError::OptimisticLockError),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(store.global_position(), 2);
    repo.persist::<TestAggregate>(&[test_event_envelope(id, 3, tested("3"))], None)
        .await
        .unwrap();
    assert_eq!(
        store.stream_version(&aggregate_stream("TestAggregate", id)),
        Some(2)
    );
}

// get_last_events(id, n) returns the events after sequence n.
#[tokio::test]
async fn get_last_events_returns_the_events_after_a_sequence() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store);
    let batch: Vec<_> = (1..=5)
        .map(|s| test_event_envelope("id", s, tested(&s.to_string())))
        .collect();
    repo.persist::<TestAggregate>(&batch, None).await.unwrap();
    for n in 0..=6 {
        let got: Vec<usize> = repo
            .get_last_events::<TestAggregate>("id", n)
            .await
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(got, (n + 1..=5).collect::<Vec<_>>(), "after {n}");
    }
    assert!(
        repo.get_last_events::<TestAggregate>("none", 0)
            .await
            .unwrap()
            .is_empty()
    );
}

// Ports postgres-es `snapshot_repositories`: no snapshot; snapshot 1
// inserted; updated to 2; a second update to 2 fails with an
// optimistic-lock error and changes nothing.
#[tokio::test]
async fn snapshot_repositories() {
    let (_dir, store) = temp_store();
    let id = "snapshot-aggregate".to_string();
    let event_repo = AnnalsEventRepository::new(store.clone());
    let snapshot = event_repo.get_snapshot::<TestAggregate>(&id).await.unwrap();
    assert_eq!(None, snapshot);

    let test_description = "some test snapshot here".to_string();
    let test_tests = vec!["testA".to_string(), "testB".to_string()];
    let aggregate = |description: &str| {
        serde_json::to_value(TestAggregate {
            id: id.clone(),
            description: description.to_string(),
            tests: test_tests.clone(),
        })
        .unwrap()
    };
    event_repo
        .persist::<TestAggregate>(&[], Some((id.clone(), aggregate(&test_description), 1)))
        .await
        .unwrap();

    let snapshot = event_repo.get_snapshot::<TestAggregate>(&id).await.unwrap();
    assert_eq!(
        Some(snapshot_context(
            id.clone(),
            0,
            1,
            aggregate(&test_description)
        )),
        snapshot
    );

    // sequence iterated, does update
    let saved = "a test description that should be saved";
    event_repo
        .persist::<TestAggregate>(&[], Some((id.clone(), aggregate(saved), 2)))
        .await
        .unwrap();

    let snapshot = event_repo.get_snapshot::<TestAggregate>(&id).await.unwrap();
    assert_eq!(
        Some(snapshot_context(id.clone(), 0, 2, aggregate(saved))),
        snapshot
    );

    // sequence out of order or not iterated, does not update
    let before = store.global_position();
    let result = event_repo
        .persist::<TestAggregate>(
            &[],
            Some((
                id.clone(),
                aggregate("a test description that should not be saved"),
                2,
            )),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(result, PersistenceError::OptimisticLockError),
        "invalid error result found during insert: {result}"
    );
    // Skipping a number is stale too.
    let result = event_repo
        .persist::<TestAggregate>(&[], Some((id.clone(), aggregate("skipped"), 4)))
        .await
        .unwrap_err();
    assert!(
        matches!(result, PersistenceError::OptimisticLockError),
        "{result}"
    );
    assert_eq!(
        store.global_position(),
        before,
        "the stale updates wrote nothing"
    );

    let snapshot = event_repo.get_snapshot::<TestAggregate>(&id).await.unwrap();
    assert_eq!(
        Some(snapshot_context(id.clone(), 0, 2, aggregate(saved))),
        snapshot
    );
}

// A stale snapshot update committed with events writes neither: the
// snapshot is compared before the events are appended.
#[tokio::test]
async fn a_stale_snapshot_with_events_writes_nothing() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store.clone());
    let state = serde_json::to_value(TestAggregate::default()).unwrap();
    repo.persist::<TestAggregate>(
        &[test_event_envelope("s", 1, tested("1"))],
        Some(("s".to_string(), state.clone(), 1)),
    )
    .await
    .unwrap();
    let snapshot = repo
        .get_snapshot::<TestAggregate>("s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (snapshot.current_sequence, snapshot.current_snapshot),
        (1, 1)
    );
    let before = store.global_position();
    let err = repo
        .persist::<TestAggregate>(
            &[test_event_envelope("s", 2, tested("2"))],
            Some(("s".to_string(), state, 3)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PersistenceError::OptimisticLockError),
        "{err}"
    );
    assert_eq!(store.global_position(), before);
    assert_eq!(
        repo.get_events::<TestAggregate>("s").await.unwrap().len(),
        1
    );
}

// Events are stored before their snapshot, so a crash (or failure) between
// the two leaves a snapshot that lags its stream. get_snapshot must then
// apply the missing events rather than return the stale state: an
// aggregate store never replays events after its snapshot, and would
// otherwise fail every later command on the sequence check.
#[tokio::test]
async fn a_snapshot_that_lags_its_events_is_rolled_forward() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store.clone());
    let mut state = TestAggregate::default();
    state.apply(TestEvent::Created(Created { id: "r".into() }));
    repo.persist::<TestAggregate>(
        &[test_event_envelope(
            "r",
            1,
            TestEvent::Created(Created { id: "r".into() }),
        )],
        Some(("r".to_string(), serde_json::to_value(&state).unwrap(), 1)),
    )
    .await
    .unwrap();
    // What a crash after the events' append and before the snapshot's leaves.
    repo.persist::<TestAggregate>(
        &[
            test_event_envelope("r", 2, tested("two")),
            test_event_envelope("r", 3, something_else("three")),
        ],
        None,
    )
    .await
    .unwrap();
    let snapshot = repo
        .get_snapshot::<TestAggregate>("r")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.current_sequence, 3);
    assert_eq!(
        snapshot.current_snapshot, 1,
        "the stored snapshot number stays"
    );
    let rebuilt: TestAggregate = serde_json::from_value(snapshot.aggregate).unwrap();
    assert_eq!(
        rebuilt,
        TestAggregate {
            id: "r".into(),
            description: "three".into(),
            tests: vec!["two".into()],
        }
    );
    // The next snapshot (2) is accepted on top of the stored one.
    repo.persist::<TestAggregate>(
        &[test_event_envelope("r", 4, tested("four"))],
        Some(("r".to_string(), serde_json::Value::Null, 2)),
    )
    .await
    .unwrap();
    assert_eq!(
        store.stream_version(&snapshot_stream("TestAggregate", "r")),
        Some(1)
    );
}

// A snapshot that claims more events than its stream holds is refused,
// never returned.
#[tokio::test]
async fn a_snapshot_newer_than_its_events_is_refused() {
    let (_dir, store) = temp_store();
    let meta = serde_json::json!({
        "aggregate_type": "TestAggregate", "aggregate_id": "n",
        "current_sequence": 5, "current_snapshot": 1,
    });
    store
        .append(
            &snapshot_stream("TestAggregate", "n"),
            ExpectedVersion::NoStream,
            &[EventData::new("Snapshot", b"{}".to_vec())
                .with_metadata(serde_json::to_vec(&meta).unwrap())],
        )
        .unwrap();
    let repo = AnnalsEventRepository::new(store);
    let err = repo.get_snapshot::<TestAggregate>("n").await.unwrap_err();
    assert!(matches!(err, PersistenceError::UnknownError(_)), "{err}");
    assert!(err.to_string().contains("newer than its events"), "{err}");
}

/// Appends one raw annals event to `stream` and returns the store's repo.
fn raw(store: &annals::Store, stream: &str, event_type: &str, data: &[u8], metadata: &[u8]) {
    store
        .append(
            stream,
            ExpectedVersion::Any,
            &[EventData::new(event_type, data.to_vec()).with_metadata(metadata.to_vec())],
        )
        .unwrap();
}

fn assert_decode_error(err: PersistenceError, stream: &str) {
    match err {
        PersistenceError::DeserializationError(e) => {
            let d = e.downcast_ref::<DecodeError>().expect("a DecodeError");
            assert_eq!(d.stream, stream);
            assert_eq!(d.version, 0);
        }
        other => panic!("expected a DeserializationError, got {other:?}"),
    }
}

// Bad data from disk is a typed error, never a panic: metadata or data
// that is not JSON, metadata of the wrong shape, a snapshot record of the
// wrong type; and the replay stream delivers the error as an item.
#[tokio::test]
async fn records_that_do_not_decode_are_typed_errors() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store.clone());
    let good_meta = br#"{"aggregate_type":"TestAggregate","aggregate_id":"x","event_version":"1.0","metadata":{}}"#;
    let cases: [(&str, &[u8], &[u8]); 4] = [
        (
            "meta-not-json",
            br#"{"Tested":{"test_name":"t"}}"#,
            b"\xff not json",
        ),
        (
            "meta-wrong-shape",
            br#"{"Tested":{"test_name":"t"}}"#,
            br#"{"x":1}"#,
        ),
        ("meta-empty", br#"{"Tested":{"test_name":"t"}}"#, b""),
        ("data-not-json", b"{", good_meta),
    ];
    for (id, data, meta) in cases {
        let stream = aggregate_stream("TestAggregate", id);
        raw(&store, &stream, "Tested", data, meta);
        let err = repo.get_events::<TestAggregate>(id).await.unwrap_err();
        assert_decode_error(err, &stream);
        let mut replay = repo.stream_events::<TestAggregate>(id).await.unwrap();
        let item = replay.next::<TestAggregate>(&[]).await.expect("an item");
        assert!(matches!(
            item,
            Err(PersistenceError::DeserializationError(_))
        ));
        assert!(
            replay.next::<TestAggregate>(&[]).await.is_none(),
            "the stream ends"
        );
    }
    let mut all = repo.stream_all_events::<TestAggregate>().await.unwrap();
    assert!(matches!(
        all.next::<TestAggregate>(&[]).await,
        Some(Err(PersistenceError::DeserializationError(_)))
    ));

    let snapshots = snapshot_stream("TestAggregate", "s");
    raw(&store, &snapshots, "Snapshot", b"{}", b"[1, 2]");
    let err = repo.get_snapshot::<TestAggregate>("s").await.unwrap_err();
    assert_decode_error(err, &snapshots);
    let snapshots = snapshot_stream("TestAggregate", "t");
    raw(&store, &snapshots, "NotASnapshot", b"{}", b"{}");
    let err = repo.get_snapshot::<TestAggregate>("t").await.unwrap_err();
    assert_decode_error(err, &snapshots);
}

// Aggregate ids holding the separator, the escape character and control
// characters name streams of their own, and their events come back to the
// right aggregate.
#[tokio::test]
async fn awkward_aggregate_ids_get_streams_of_their_own() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store.clone());
    let ids = ["a-b", "a", "b", "%2D", "-", "a\nb", "é"];
    for (i, id) in ids.iter().enumerate() {
        repo.persist::<TestAggregate>(&[test_event_envelope(id, 1, tested(&i.to_string()))], None)
            .await
            .unwrap();
    }
    repo.persist::<TrickyAggregate>(
        &[test_event_of::<TrickyAggregate>("b", 1, tested("t"))],
        None,
    )
    .await
    .unwrap();
    for (i, id) in ids.iter().enumerate() {
        let events = repo.get_events::<TestAggregate>(id).await.unwrap();
        assert_eq!(events.len(), 1, "{id:?}");
        assert_eq!(events[0].aggregate_id, *id);
        assert_eq!(
            events[0].payload,
            serde_json::to_value(tested(&i.to_string())).unwrap()
        );
    }
    assert_eq!(store.global_position(), ids.len() as u64 + 1);
}

// A commit mixing aggregates, or events of another aggregate type, is a
// caller mistake: refused before anything is written.
#[tokio::test]
async fn a_commit_of_mixed_aggregates_is_refused() {
    let (_dir, store) = temp_store();
    let repo = AnnalsEventRepository::new(store.clone());
    let mixed = [
        test_event_envelope("a", 1, tested("a")),
        test_event_envelope("b", 2, tested("b")),
    ];
    let err = repo
        .persist::<TestAggregate>(&mixed, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PersistenceError::UnknownError(_)), "{err}");
    let foreign = [test_event_of::<TrickyAggregate>("a", 1, tested("a"))];
    let err = repo
        .persist::<TestAggregate>(&foreign, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PersistenceError::UnknownError(_)), "{err}");
    let snapshot = Some(("b".to_string(), serde_json::Value::Null, 1));
    let err = repo
        .persist::<TestAggregate>(&[test_event_envelope("a", 1, tested("a"))], snapshot)
        .await
        .unwrap_err();
    assert!(matches!(err, PersistenceError::UnknownError(_)), "{err}");
    assert_eq!(store.global_position(), 0);
}
