//! The public contract of DESIGN.md, end to end: expected-version rules,
//! dense versions and positions, what reads return, what an append result
//! says, and that all of it survives a reopen.

mod common;

use annals::{Error, EventData, ExpectedVersion, Store, Uuid};
use common::Workload;

/// The events these tests append.
const W: Workload = Workload::FIXED;

#[test]
fn appends_and_reads_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.global_position(), 0);

    let r = store
        .append(
            "a",
            ExpectedVersion::NoStream,
            &[W.event("a", 0), W.event("a", 1)],
        )
        .unwrap();
    assert_eq!((r.versions.clone(), r.positions.clone()), (0..2, 0..2));
    assert_eq!((r.first_version(), r.last_version()), (0, Some(1)));
    assert_eq!((r.first_position(), r.last_position()), (0, Some(1)));
    assert_eq!(r.len(), 2);

    let r = store
        .append("b", ExpectedVersion::Any, &[W.event("b", 0)])
        .unwrap();
    assert_eq!((r.versions, r.positions), (0..1, 2..3));
    let r = store
        .append("a", ExpectedVersion::StreamExists, &[W.event("a", 2)])
        .unwrap();
    assert_eq!((r.versions, r.positions), (2..3, 3..4));
    let r = store
        .append("a", ExpectedVersion::Exact(2), &[W.event("a", 3)])
        .unwrap();
    assert_eq!((r.versions, r.positions), (3..4, 4..5));

    // An empty batch checks and writes nothing, and says where things are.
    let r = store.append("a", ExpectedVersion::Exact(3), &[]).unwrap();
    assert!(r.is_empty());
    assert_eq!((r.last_version(), r.first_position()), (Some(3), 5));
    let r = store.append("c", ExpectedVersion::NoStream, &[]).unwrap();
    assert_eq!((r.last_version(), r.last_position()), (None, None));
    assert_eq!(store.stream_version("c"), None);
    assert!(matches!(
        store.read_stream("c", 0, 1),
        Err(Error::StreamNotFound { .. })
    ));

    assert_eq!(store.stream_version("a"), Some(3));
    assert_eq!(store.global_position(), 5);

    // Empty batches leave no trace on disk: appends after them follow on
    // directly, and the log reopens clean.
    let r = store
        .append("b", ExpectedVersion::Exact(0), &[W.event("b", 1)])
        .unwrap();
    assert_eq!((r.versions, r.positions), (1..2, 5..6));
    store.append("b", ExpectedVersion::Any, &[]).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.global_position(), 6);
    W.assert_event(&store.read_all(5, 1).unwrap()[0], "b", 1);
    let check = |store: &Store| {
        let a = store.read_stream("a", 0, 100).unwrap();
        assert_eq!(a.len(), 4);
        for (v, e) in a.iter().enumerate() {
            W.assert_event(e, "a", v as u64);
            assert_eq!(e.version, v as u64);
        }
        assert_eq!(
            a.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![0, 1, 3, 4]
        );
        let page = store.read_stream("a", 1, 2).unwrap();
        assert_eq!(
            page.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let all = store.read_all(0, 100).unwrap();
        assert_eq!(
            all.iter()
                .map(|e| (&*e.stream_id, e.version))
                .collect::<Vec<_>>(),
            vec![("a", 0), ("a", 1), ("b", 0), ("a", 2), ("a", 3), ("b", 1)]
        );
        let page = store.read_all(3, 1).unwrap();
        assert_eq!(page[0].position, 3);
    };
    check(&store);
    store.close().unwrap();
    check(&Store::open(dir.path()).unwrap());
}

#[test]
fn ids_metadata_and_timestamps_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let before_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    store
        .append(
            "s",
            ExpectedVersion::Any,
            &[
                EventData::new("Given", b"1".to_vec())
                    .with_id(id)
                    .with_metadata(b"m".to_vec()),
                EventData::new("Generated", Vec::new()),
                EventData::new("Generated", Vec::new()),
            ],
        )
        .unwrap();
    let events = store.read_stream("s", 0, 10).unwrap();
    assert_eq!(events[0].id, id);
    assert_eq!(&events[0].metadata[..], b"m");
    assert!(events[1].data.is_empty() && events[1].metadata.is_empty());
    // Generated ids are UUID v7, distinct and time-ordered.
    assert_eq!(events[1].id.get_version_num(), 7);
    assert_ne!(events[1].id, events[2].id);
    assert!(events[1].id < events[2].id);
    assert!(events[0].recorded_at >= before_us);
    assert!(events[0].recorded_at < before_us + 60_000_000);
    // Stream ids and event types are shared, not allocated per event.
    assert!(std::sync::Arc::ptr_eq(
        &events[1].event_type,
        &events[2].event_type
    ));
    assert!(std::sync::Arc::ptr_eq(
        &events[0].stream_id,
        &events[2].stream_id
    ));
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
    assert_send_sync::<annals::RecordedEvent>();
    assert_send_sync::<Error>();
}
