//! `annals::replication::{read_log, import_log}`: a replica built from a
//! log with gaps (control records, scavenged events) reads exactly as its
//! origin does, deletions and tombstones included; and every record that
//! does not follow on is refused with a typed error, nothing written.

use std::sync::Arc;

use annals::replication::{self, LogRecord};
use annals::{Error, EventData, ExpectedVersion, Options, Store, StreamLimits};

const STREAMS: [&str; 9] = [
    "a-0", "a-1", "a-2", "del", "tomb", "trunc", "lim", "gone", "never",
];

fn opts() -> Options {
    Options::default().segment_size(16 << 10)
}

fn add(store: &Store, stream: &str, n: usize) {
    for i in 0..n {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                &[EventData::new("E", format!("{stream}-{i}").into_bytes())
                    .with_metadata(b"m".to_vec())],
            )
            .unwrap();
    }
}

/// An origin whose log has gaps of every kind: hidden events, control
/// records, scavenged events and superseded control records, limits both
/// scavenged (as a truncation) and lifted again.
fn origin(dir: &std::path::Path) -> Store {
    let s = Store::open_with(dir, opts()).unwrap();
    for round in 0..3 {
        for a in ["a-0", "a-1", "a-2"] {
            add(&s, a, 20 + round);
        }
    }
    add(&s, "del", 5);
    s.delete_stream("del", ExpectedVersion::Any).unwrap();
    add(&s, "del", 2);
    add(&s, "tomb", 4);
    s.tombstone_stream("tomb", ExpectedVersion::Any).unwrap();
    add(&s, "trunc", 6);
    s.truncate_stream_before("trunc", 3).unwrap();
    add(&s, "lim", 8);
    s.set_stream_limits("lim", StreamLimits::default().max_count(3))
        .unwrap();
    add(&s, "gone", 3);
    s.delete_stream("gone", ExpectedVersion::Any).unwrap();
    add(&s, "a-0", 40);
    let report = s.scavenge().unwrap();
    assert!(report.events_removed > 10, "{report:?}");
    add(&s, "del", 1);
    s.delete_stream("a-1", ExpectedVersion::Any).unwrap();
    s.set_stream_limits("a-2", StreamLimits::default().max_count(1))
        .unwrap();
    s.set_stream_limits("a-2", StreamLimits::default()).unwrap();
    add(&s, "a-2", 2);
    s
}

/// Everything a reader can ask both stores, compared.
fn assert_same(origin: &Store, replica: &Store) {
    assert_eq!(replica.global_position(), origin.global_position());
    assert_eq!(
        replica.read_all(0, usize::MAX).unwrap(),
        origin.read_all(0, usize::MAX).unwrap()
    );
    assert_eq!(
        replica.read_all_backward(u64::MAX, usize::MAX).unwrap(),
        origin.read_all_backward(u64::MAX, usize::MAX).unwrap()
    );
    for stream in STREAMS {
        assert_eq!(
            replica.stream_version(stream),
            origin.stream_version(stream),
            "{stream}"
        );
        let (o, r) = (
            origin.read_stream(stream, 0, usize::MAX),
            replica.read_stream(stream, 0, usize::MAX),
        );
        match (&o, &r) {
            (Ok(o), Ok(r)) => assert_eq!(o, r, "{stream}"),
            (Err(o), Err(r)) => assert_eq!(o.to_string(), r.to_string(), "{stream}"),
            _ => panic!("{stream}: origin {o:?}, replica {r:?}"),
        }
    }
}

/// Copies the origin's log from the replica's end on, in pages of
/// `page` records.
fn copy(origin: &Store, replica: &Store, page: usize) {
    let mut from = replica.global_position();
    loop {
        let p = replication::read_log(origin, from, page).unwrap();
        if p.records.is_empty() && p.next_position == from {
            return;
        }
        let end =
            replication::import_log(replica, from.checked_sub(1), &p.records, p.next_position)
                .unwrap();
        assert_eq!(end, p.next_position);
        from = end;
    }
}

#[test]
fn a_replica_of_a_log_with_gaps_reads_as_its_origin() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let origin = origin(a.path());
    // The log really has gaps of both kinds.
    let all = replication::read_log(&origin, 0, usize::MAX).unwrap();
    assert_eq!(all.next_position, origin.global_position());
    assert!(all.records.iter().any(LogRecord::is_control));
    assert!((all.records.len() as u64) < origin.global_position());
    assert!(origin.read_all(0, usize::MAX).unwrap().len() < all.records.len());

    let replica = Store::open_with(b.path(), opts()).unwrap();
    copy(&origin, &replica, 7);
    assert_same(&origin, &replica);
    assert!(matches!(
        replica.read_stream("tomb", 0, 10),
        Err(Error::StreamDeleted { .. })
    ));
    assert!(matches!(
        replica.read_stream("gone", 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
    // The replica's own log is the origin's, record for record.
    assert_eq!(replication::read_log(&replica, 0, usize::MAX).unwrap(), all,);
    // After a reopen, and after more on the origin.
    drop(replica);
    let replica = Store::open_with(b.path(), opts()).unwrap();
    assert_same(&origin, &replica);
    add(&origin, "gone", 1);
    origin
        .tombstone_stream("a-0", ExpectedVersion::Any)
        .unwrap();
    copy(&origin, &replica, 1000);
    assert_same(&origin, &replica);
    assert_eq!(replica.stream_version("gone"), Some(3));
}

#[test]
fn a_replica_stopped_inside_a_stretch_of_gaps_goes_on() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let origin = Store::open(a.path()).unwrap();
    add(&origin, "x", 10);
    origin.tombstone_stream("x", ExpectedVersion::Any).unwrap();
    origin.scavenge().unwrap();
    add(&origin, "y", 1);
    let page = replication::read_log(&origin, 0, 100).unwrap();
    // The control record at 10 and y's event at 11; 0..10 are gaps.
    assert_eq!(
        page.records
            .iter()
            .map(LogRecord::position)
            .collect::<Vec<_>>(),
        [10, 11]
    );
    let replica = Store::open(b.path()).unwrap();
    // Part of the gaps (as a crash part way would leave them), then the
    // rest with the same `after`.
    assert_eq!(replication::import_log(&replica, None, &[], 4).unwrap(), 4);
    assert_eq!(
        replication::import_log(&replica, None, &page.records, page.next_position).unwrap(),
        12
    );
    assert_same(&origin, &replica);
}

/// Each refusal is typed, and the store is as it was.
#[test]
fn bad_imports_are_refused_and_write_nothing() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let origin = Store::open(a.path()).unwrap();
    add(&origin, "s", 3);
    add(&origin, "t", 2);
    origin.tombstone_stream("t", ExpectedVersion::Any).unwrap();
    origin.delete_stream("s", ExpectedVersion::Any).unwrap();
    add(&origin, "s", 1);
    let log = replication::read_log(&origin, 0, 100).unwrap().records;
    // 0..3 s, 3..5 t, 5 tombstone t, 6 delete s, 7 s@3.
    assert_eq!(log.len(), 8);
    let replica = Store::open(b.path()).unwrap();
    replication::import_log(&replica, None, &log[..2], 2).unwrap();
    let before = replication::read_log(&replica, 0, 100).unwrap();

    let refused = |after: Option<u64>, records: Vec<LogRecord>, end: u64| {
        let e = replication::import_log(&replica, after, &records, end).unwrap_err();
        assert!(matches!(e, Error::ImportRefused { .. }), "{e:?}");
        assert_eq!(replication::read_log(&replica, 0, 100).unwrap(), before);
        assert_eq!(replica.global_position(), 2);
        e.to_string()
    };
    let event = |r: &LogRecord| r.record().clone();
    // `after` past the store's end: something in between was lost.
    refused(Some(2), vec![log[3].clone()], 4);
    // Positions the store already holds.
    refused(Some(0), vec![log[1].clone()], 2);
    // A record after `after` already in the store.
    refused(Some(0), vec![log[2].clone()], 3);
    // Positions that do not rise, or reach the end.
    refused(Some(1), vec![log[3].clone(), log[2].clone()], 5);
    refused(Some(1), vec![log[2].clone()], 2);
    // Too many positions at once.
    refused(Some(1), vec![], 2 + replication::MAX_IMPORT_POSITIONS + 1);
    // A version that skips in a stream the store holds.
    let mut skip = event(&log[2]);
    skip.version += 1;
    let why = refused(Some(1), vec![LogRecord::Event(skip)], 3);
    assert!(why.contains("rebuild the replica"), "{why}");
    // An id the store holds already.
    let mut dup = event(&log[2]);
    dup.id = event(&log[0]).id;
    refused(Some(1), vec![LogRecord::Event(dup)], 3);
    // A control record outside a control stream, or with a bad state.
    let mut control = event(&log[5]);
    control.stream_id = Arc::from("plain");
    refused(Some(1), vec![LogRecord::Control(control)], 6);
    let mut control = event(&log[5]);
    control.data = bytes_of(&[9u8; 40]);
    refused(Some(1), vec![LogRecord::Control(control)], 6);
    // An event in a control record's stream: refused as an append is.
    let mut reserved = event(&log[5]);
    reserved.position = 2;
    let e =
        replication::import_log(&replica, Some(1), &[LogRecord::Event(reserved)], 3).unwrap_err();
    assert!(matches!(e, Error::InvalidStreamId { .. }), "{e:?}");
    assert_eq!(replication::read_log(&replica, 0, 100).unwrap(), before);

    // The rest goes in as it should; then the tombstone's bounds hold.
    replication::import_log(&replica, Some(1), &log[2..], 8).unwrap();
    let mut late = event(&log[3]);
    late.position = 8;
    late.version = 2;
    late.id = uuid::Uuid::now_v7();
    let e = replication::import_log(&replica, Some(7), &[LogRecord::Event(late)], 9).unwrap_err();
    assert!(e.to_string().contains("tombstoned"), "{e}");
    // A state that lifts the tombstone: no writer makes one.
    let mut lifted = event(&log[5]);
    lifted.position = 8;
    lifted.version = 1;
    lifted.id = uuid::Uuid::now_v7();
    let mut state = lifted.data.to_vec();
    state[1] = 0;
    lifted.data = bytes_of(&state);
    let e =
        replication::import_log(&replica, Some(7), &[LogRecord::Control(lifted)], 9).unwrap_err();
    assert!(e.to_string().contains("loosens"), "{e}");
    // A version the stream already used.
    let mut below = event(&log[7]);
    below.position = 8;
    below.stream_id = Arc::from("s");
    below.version = 3;
    below.id = uuid::Uuid::now_v7();
    assert!(replication::import_log(&replica, Some(7), &[LogRecord::Event(below)], 9).is_err());
    assert_eq!(replica.global_position(), 8);
    assert_eq!(
        replica.read_all(0, 100).unwrap(),
        origin.read_all(0, 100).unwrap()
    );
}

fn bytes_of(b: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(b)
}
