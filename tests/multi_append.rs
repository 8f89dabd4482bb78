//! Guards `append_multi`: several streams appended as one batch, all or
//! nothing. Every part's expected version is checked and one failure
//! refuses the whole call (naming its stream) with nothing written; the
//! same stream twice is bad input; the parts land in the order given with
//! consecutive positions, across a segment rotation and a reopen; and no
//! reader or subscription ever sees part of one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use annals::{
    Error, EventData, ExpectedVersion, Limit, Options, Store, StreamAppend, SubscribeFrom,
    SubscriptionItem,
};

fn ev(t: &str, data: &[u8]) -> EventData {
    EventData::new(t, data.to_vec())
}

fn part(stream: &str, expected: ExpectedVersion, n: usize) -> StreamAppend {
    let events = (0..n)
        .map(|i| ev("T", format!("{stream}/{i}").as_bytes()))
        .collect();
    StreamAppend::new(stream, expected, events)
}

#[test]
fn parts_land_in_the_order_given_with_consecutive_positions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("b", ExpectedVersion::Any, &[ev("T", b"b0")])
        .unwrap();
    let results = store
        .append_multi(&[
            part("c", ExpectedVersion::NoStream, 2),
            part("b", ExpectedVersion::Exact(0), 3),
            part("a", ExpectedVersion::Any, 1),
        ])
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(
        (results[0].versions.clone(), results[0].positions.clone()),
        (0..2, 1..3)
    );
    assert_eq!(
        (results[1].versions.clone(), results[1].positions.clone()),
        (1..4, 3..6)
    );
    assert_eq!(
        (results[2].versions.clone(), results[2].positions.clone()),
        (0..1, 6..7)
    );
    let all = store.read_all(0, 100).unwrap();
    let got: Vec<(&str, u64, &[u8])> = all
        .iter()
        .map(|e| (&*e.stream_id, e.version, &*e.data))
        .collect();
    assert_eq!(
        got,
        vec![
            ("b", 0, &b"b0"[..]),
            ("c", 0, b"c/0"),
            ("c", 1, b"c/1"),
            ("b", 1, b"b/0"),
            ("b", 2, b"b/1"),
            ("b", 3, b"b/2"),
            ("a", 0, b"a/0"),
        ]
    );
    assert_eq!(store.stream_version("b"), Some(3));
    assert_eq!(store.read_stream("c", 0, 10).unwrap().len(), 2);
}

#[test]
fn one_failing_part_refuses_the_whole_call_naming_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("x", ExpectedVersion::Any, &[ev("T", b"x0")])
        .unwrap();
    for (bad, expected) in [
        (1, ExpectedVersion::Exact(7)),
        (2, ExpectedVersion::NoStream),
        (0, ExpectedVersion::StreamExists),
    ] {
        let mut parts = vec![
            part("new-1", ExpectedVersion::Any, 2),
            part("x", ExpectedVersion::Exact(0), 1),
            part("x2", ExpectedVersion::Any, 1),
        ];
        // Make part `bad` fail: "x" exists at version 0, the others do not.
        let stream = parts[bad].stream().to_owned();
        let expected = match (bad, expected) {
            (2, _) => {
                store
                    .append("x2", ExpectedVersion::Any, &[ev("T", b"pre")])
                    .unwrap();
                ExpectedVersion::NoStream
            }
            (_, e) => e,
        };
        parts[bad] = StreamAppend::new(stream.clone(), expected, parts[bad].events().to_vec());
        let before = store.global_position();
        let err = store.append_multi(&parts).unwrap_err();
        match err {
            Error::WrongExpectedVersion {
                stream: named,
                expected: e,
                ..
            } => {
                assert_eq!(named, stream);
                assert_eq!(e, expected);
            }
            other => panic!("expected WrongExpectedVersion, got {other:?}"),
        }
        assert_eq!(
            store.global_position(),
            before,
            "part of a refused call was written"
        );
        assert_eq!(store.stream_version("new-1"), None);
    }
    assert_eq!(store.stream_version("x"), Some(0));
}

#[test]
fn the_same_stream_twice_is_refused_before_anything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = store
        .append_multi(&[
            part("a", ExpectedVersion::Any, 1),
            part("b", ExpectedVersion::Any, 1),
            part("a", ExpectedVersion::Any, 1),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateStream { stream, index: 2 } if stream == "a"),
        "{err:?}"
    );
    assert!(err.to_string().contains("'a'"), "{err}");
    assert_eq!(store.global_position(), 0);
}

#[test]
fn empty_parts_check_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.append_multi(&[]).unwrap(), vec![]);
    store
        .append("a", ExpectedVersion::Any, &[ev("T", b"a0")])
        .unwrap();
    let results = store
        .append_multi(&[
            part("a", ExpectedVersion::Exact(0), 0),
            part("b", ExpectedVersion::NoStream, 1),
            part("c", ExpectedVersion::NoStream, 0),
        ])
        .unwrap();
    assert!(results[0].is_empty());
    assert_eq!(results[0].last_version(), Some(0));
    assert_eq!(results[0].first_position(), 1);
    assert_eq!(results[1].positions, 1..2);
    assert!(results[2].is_empty());
    assert_eq!(results[2].first_position(), 2);
    assert_eq!(store.stream_version("c"), None);
    // An empty part still checks: a wrong version refuses the whole call.
    let err = store
        .append_multi(&[
            part("d", ExpectedVersion::Any, 1),
            part("a", ExpectedVersion::Exact(5), 0),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::WrongExpectedVersion { ref stream, .. } if stream == "a"));
    assert_eq!(store.global_position(), 2);
    // All parts empty: nothing written, nothing refused.
    let results = store
        .append_multi(&[part("z", ExpectedVersion::NoStream, 0)])
        .unwrap();
    assert!(results[0].is_empty());
    assert_eq!(store.global_position(), 2);
}

#[test]
fn limits_apply_to_the_whole_call() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(64 << 10)
        .max_batch_events(10);
    let store = Store::open_with(dir.path(), options).unwrap();
    let limit_of = |r: Result<Vec<annals::AppendResult>, Error>| match r {
        Err(Error::LimitExceeded { limit, .. }) => limit,
        other => panic!("expected LimitExceeded, got {other:?}"),
    };
    // Events of all parts count together.
    let r = store.append_multi(&[
        part("a", ExpectedVersion::Any, 6),
        part("b", ExpectedVersion::Any, 5),
    ]);
    assert_eq!(limit_of(r), Limit::BatchEvents);
    // So do the streams, even empty ones.
    let many: Vec<StreamAppend> = (0..11)
        .map(|i| part(&format!("s{i}"), ExpectedVersion::Any, 0))
        .collect();
    assert_eq!(limit_of(store.append_multi(&many)), Limit::BatchStreams);
    // The whole call must fit in one segment, though each part would.
    let big = |s: &str| StreamAppend::new(s, ExpectedVersion::Any, vec![ev("T", &[7u8; 40 << 10])]);
    let r = store.append_multi(&[big("a"), big("b")]);
    assert_eq!(limit_of(r), Limit::BatchSize);
    store
        .append("a", ExpectedVersion::Any, &[ev("T", &[7u8; 40 << 10])])
        .unwrap();
    // A bad name in any part is refused.
    let r = store.append_multi(&[
        part("ok", ExpectedVersion::Any, 1),
        part("", ExpectedVersion::Any, 1),
    ]);
    assert!(matches!(r, Err(Error::InvalidStreamId { .. })), "{r:?}");
    let r = store.append_multi(&[
        part("ok", ExpectedVersion::Any, 1),
        StreamAppend::new("b", ExpectedVersion::Any, vec![ev("", b"")]),
    ]);
    assert!(matches!(r, Err(Error::InvalidEventType { .. })), "{r:?}");
    assert_eq!(store.global_position(), 1);
    assert_eq!(store.stream_version("ok"), None);
}

#[test]
fn a_multi_append_that_does_not_fit_rotates_whole_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::default().segment_size(16 << 10);
    let mut expected: Vec<(String, u64, Vec<u8>)> = Vec::new();
    {
        let store = Store::open_with(dir.path(), options()).unwrap();
        // Fill most of the first segment, then append 4 streams × 2 events
        // of 1 KiB: more than is left, so the batch goes whole to segment 1.
        let filler = vec![1u8; 12 << 10];
        store
            .append("filler", ExpectedVersion::Any, &[ev("F", &filler)])
            .unwrap();
        expected.push(("filler".into(), 0, filler));
        for round in 0..3u8 {
            let parts: Vec<StreamAppend> = (0..4)
                .map(|s| {
                    let events = (0..2)
                        .map(|i| ev("M", &vec![round * 10 + s * 2 + i; 1024]))
                        .collect();
                    StreamAppend::new(format!("m-{s}"), ExpectedVersion::Any, events)
                })
                .collect();
            let results = store.append_multi(&parts).unwrap();
            let mut next = results[0].first_position();
            for (p, r) in parts.iter().zip(&results) {
                assert_eq!(r.first_position(), next);
                next = r.positions.end;
                for (i, e) in p.events().iter().enumerate() {
                    expected.push((
                        p.stream().to_owned(),
                        r.first_version() + i as u64,
                        e.data().to_vec(),
                    ));
                }
            }
        }
        let segments = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count();
        assert!(segments >= 2, "no rotation happened ({segments} segments)");
        store.close().unwrap();
    }
    let store = Store::open_with(dir.path(), options()).unwrap();
    let all = store.read_all(0, 1000).unwrap();
    let got: Vec<(String, u64, Vec<u8>)> = all
        .iter()
        .map(|e| (e.stream_id.to_string(), e.version, e.data.to_vec()))
        .collect();
    assert_eq!(got, expected);
    // Versions go on after the reopen.
    let r = store
        .append_multi(&[
            part("m-0", ExpectedVersion::Exact(5), 1),
            part("m-3", ExpectedVersion::Exact(5), 1),
        ])
        .unwrap();
    assert_eq!(r[0].versions, 6..7);
    assert_eq!(r[1].positions.start, r[0].positions.end);
}

#[test]
fn a_read_only_store_refuses_multi_appends() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let store = Store::open_read_only(dir.path()).unwrap();
    let r = store.append_multi(&[part("a", ExpectedVersion::Any, 1)]);
    assert!(matches!(r, Err(Error::ReadOnly)), "{r:?}");
}

/// Concurrent multi appends (which group commit puts in shared frames)
/// keep each call's parts together and each stream's versions dense.
#[test]
fn concurrent_multi_appends_stay_whole() {
    const THREADS: usize = 4;
    const CALLS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let store = Arc::clone(&store);
            scope.spawn(move || {
                for c in 0..CALLS {
                    // A shared stream (Any) and the thread's own (Exact).
                    let own = format!("own-{t}");
                    let expected = match c {
                        0 => ExpectedVersion::NoStream,
                        _ => ExpectedVersion::Exact(c as u64 * 2 - 1),
                    };
                    let rs = store
                        .append_multi(&[
                            StreamAppend::new(
                                "shared",
                                ExpectedVersion::Any,
                                vec![ev("S", format!("{t}/{c}").as_bytes())],
                            ),
                            StreamAppend::new(own, expected, vec![ev("O", b"1"), ev("O", b"2")]),
                        ])
                        .unwrap();
                    assert_eq!(rs[1].first_position(), rs[0].first_position() + 1);
                }
            });
        }
    });
    let all = store.read_all(0, 10_000).unwrap();
    assert_eq!(all.len(), THREADS * CALLS * 3);
    for call in all.chunks(3) {
        assert_eq!(&*call[0].stream_id, "shared");
        let (t, _) = std::str::from_utf8(&call[0].data)
            .unwrap()
            .split_once('/')
            .unwrap();
        let own = format!("own-{t}");
        assert_eq!(&*call[1].stream_id, own);
        assert_eq!(&*call[2].stream_id, own);
        assert_eq!(call[2].version, call[1].version + 1);
    }
}

/// A live subscription and concurrent readers never see part of a multi
/// append: every batch is 3 streams × 2 events, so every boundary a reader
/// or a subscription reports is a multiple of 6.
#[test]
fn readers_and_subscriptions_see_a_multi_append_whole() {
    const CALLS: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let sub = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
    std::thread::scope(|scope| {
        let writer = {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            scope.spawn(move || {
                for _ in 0..CALLS {
                    let parts: Vec<StreamAppend> = ["p", "q", "r"]
                        .iter()
                        .map(|s| {
                            StreamAppend::new(
                                *s,
                                ExpectedVersion::Any,
                                vec![ev("A", b"1"), ev("B", b"2")],
                            )
                        })
                        .collect();
                    store.append_multi(&parts).unwrap();
                }
                done.store(true, Ordering::Release);
            })
        };
        // Readers: the log's length, and a read of all of it, always end on
        // a batch boundary.
        let reader = {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            scope.spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) || reads == 0 {
                    let n = store.read_all(0, usize::MAX).unwrap().len() as u64;
                    assert_eq!(n % 6, 0, "a reader saw {n} events: part of a multi append");
                    assert_eq!(store.global_position() % 6, 0);
                    reads += 1;
                }
            })
        };
        // Late subscribers catch up to a boundary.
        let late = {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            scope.spawn(move || {
                let mut subs = 0;
                while !done.load(Ordering::Acquire) || subs == 0 {
                    let mut s = store.subscribe_all(SubscribeFrom::Start, None).unwrap();
                    loop {
                        match s.next_timeout(Duration::from_secs(30)).unwrap() {
                            Some(SubscriptionItem::CaughtUp { position }) => {
                                assert_eq!(position % 6, 0, "caught up at {position}");
                                break;
                            }
                            Some(_) => {}
                            None => panic!("no progress in 30 s"),
                        }
                    }
                    subs += 1;
                }
            })
        };
        writer.join().unwrap();
        reader.join().unwrap();
        late.join().unwrap();
    });
    // The live subscription delivered every event, in order.
    let mut seen = 0u64;
    let mut sub = sub;
    while seen < CALLS * 6 {
        match sub.next_timeout(Duration::from_secs(30)).unwrap() {
            Some(SubscriptionItem::Event(e)) => {
                assert_eq!(e.position, seen);
                seen += 1;
            }
            Some(_) => {}
            None => panic!("the subscription stalled at {seen}"),
        }
    }
}

/// A read-only store following the writer (another process's view) takes
/// multi-stream frames whole, with each stream's versions as the writer
/// gave them.
#[test]
fn a_follower_takes_multi_stream_frames_whole() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open_with(dir.path(), Options::default().segment_size(16 << 10)).unwrap();
    writer
        .append("p", ExpectedVersion::Any, &[ev("A", b"first")])
        .unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    let mut taken = 0u64;
    for round in 0..40u64 {
        let parts: Vec<StreamAppend> = ["p", "q", "r"]
            .iter()
            .map(|s| {
                StreamAppend::new(
                    *s,
                    ExpectedVersion::Any,
                    vec![ev("A", &[round as u8; 700]), ev("B", b"2")],
                )
            })
            .collect();
        writer.append_multi(&parts).unwrap();
        taken += reader.refresh().unwrap();
        assert_eq!(taken % 6, 0, "the follower took part of a frame");
    }
    assert_eq!(reader.global_position(), writer.global_position());
    assert_eq!(
        reader.read_all(0, 1000).unwrap(),
        writer.read_all(0, 1000).unwrap()
    );
    assert_eq!(reader.stream_version("q"), Some(79));
    assert_eq!(reader.read_stream("p", 1, 2).unwrap()[0].version, 1);
}
