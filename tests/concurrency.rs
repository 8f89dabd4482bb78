//! Concurrent appenders and readers: readers never see part of a batch, a
//! gap in positions or versions, or an event that was not acknowledged in
//! the end; each appender's expected-version check holds under group commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use annals::{Error, EventData, ExpectedVersion, Options, RecordedEvent, Store};

const WRITERS: u64 = 4;
const BATCHES: u64 = 150;

/// (writer, batch, index in batch, batch length), parsed from a payload.
fn parse(e: &RecordedEvent) -> (u64, u64, u64, u64) {
    let text = std::str::from_utf8(&e.data).unwrap();
    let v: Vec<u64> = text.split(':').map(|x| x.parse().unwrap()).collect();
    (v[0], v[1], v[2], v[3])
}

/// Checks one snapshot of the log: dense positions, whole batches.
fn check_snapshot(all: &[RecordedEvent]) {
    let mut i = 0;
    while i < all.len() {
        assert_eq!(all[i].position, i as u64, "gap in positions");
        let (w, b, k, n) = parse(&all[i]);
        assert_eq!(k, 0, "a batch seen from its middle at position {i}");
        assert!(
            i + n as usize <= all.len(),
            "a batch seen in part at position {i}"
        );
        for j in 0..n as usize {
            let e = &all[i + j];
            assert_eq!(e.position, (i + j) as u64);
            assert_eq!(
                parse(e),
                (w, b, j as u64, n),
                "batch interleaved at {}",
                i + j
            );
        }
        i += n as usize;
    }
}

#[test]
fn readers_never_see_part_of_a_batch_or_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(dir.path(), Options::default().segment_size(64 << 10)).unwrap());
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let mut acknowledged = 0u64;
                for b in 0..BATCHES {
                    let n = 1 + (w + b) % 5;
                    let events: Vec<EventData> = (0..n)
                        .map(|k| EventData::new("E", format!("{w}:{b}:{k}:{n}")))
                        .collect();
                    // Half the batches go to a stream shared by all writers,
                    // half to the writer's own, checked by exact version.
                    if b % 2 == 0 {
                        store
                            .append("shared", ExpectedVersion::Any, &events)
                            .unwrap();
                    } else {
                        let own = format!("own-{w}");
                        let expected = match store.stream_version(&own) {
                            None => ExpectedVersion::NoStream,
                            Some(v) => ExpectedVersion::Exact(v),
                        };
                        store.append(&own, expected, &events).unwrap();
                    }
                    acknowledged += n;
                }
                acknowledged
            })
        })
        .collect();

    let readers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut snapshots = 0;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let all = store.read_all(0, usize::MAX).unwrap();
                    check_snapshot(&all);
                    let shared = store.read_stream("shared", 0, usize::MAX);
                    if let Ok(shared) = shared {
                        for (v, e) in shared.iter().enumerate() {
                            assert_eq!(e.version, v as u64, "gap in stream versions");
                        }
                    }
                    snapshots += 1;
                    if finished {
                        return snapshots;
                    }
                }
            })
        })
        .collect();

    let total: u64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(store.global_position(), total);
    let all = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, total);
    check_snapshot(&all);
}

#[test]
fn racing_exact_appends_let_exactly_one_win_each_round() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store
        .append(
            "race",
            ExpectedVersion::NoStream,
            &[EventData::new("E", "0")],
        )
        .unwrap();
    for round in 0..30u64 {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = Arc::clone(&store);
                thread::spawn(move || {
                    store.append(
                        "race",
                        ExpectedVersion::Exact(round),
                        &[EventData::new("E", format!("{round}-{t}"))],
                    )
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(r, Error::WrongExpectedVersion { actual: Some(v), .. } if *v == round + 1),
                "{r:?}"
            );
        }
    }
    assert_eq!(store.stream_version("race"), Some(30));
}

/// Checks one page of `read_all(from, max)`: dense positions from `from`,
/// batches consistent, and, unless the page was cut by `max`, a last event
/// that ends its batch (no batch is ever visible in part at the end).
fn check_page(page: &[RecordedEvent], from: u64, max: usize) {
    for (i, e) in page.iter().enumerate() {
        assert_eq!(e.position, from + i as u64, "gap in positions");
        if i > 0 {
            let (w, b, k, n) = parse(e);
            let (pw, pb, pk, pn) = parse(&page[i - 1]);
            if k > 0 {
                assert_eq!((w, b, k - 1, n), (pw, pb, pk, pn), "batch interleaved");
            } else {
                assert_eq!(
                    pk + 1,
                    pn,
                    "a batch cut short before position {}",
                    e.position
                );
            }
        }
    }
    if let Some(last) = page.last()
        && page.len() < max
    {
        let (_, _, k, n) = parse(last);
        assert_eq!(k + 1, n, "a batch seen in part at the end of the log");
    }
}

/// Readers decode outside the index lock: paged `read_all`s and
/// `read_stream`s flat out beside appenders must still see only whole
/// batches, dense positions and dense versions. A fixed number of
/// operations on each side, so the test ends by itself.
#[test]
fn four_readers_of_pages_and_streams_beside_two_appenders_see_whole_batches() {
    const APPENDERS: u64 = 2;
    const APPENDS: u64 = 400;
    const READS: u64 = 1_500;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open_with(dir.path(), Options::default().segment_size(256 << 10)).unwrap());
    thread::scope(|scope| {
        for w in 0..APPENDERS {
            let store = &store;
            scope.spawn(move || {
                for b in 0..APPENDS {
                    let n = 1 + (w * 7 + b) % 9;
                    let events: Vec<EventData> = (0..n)
                        .map(|k| EventData::new("E", format!("{w}:{b}:{k}:{n}")))
                        .collect();
                    let stream = format!("s-{}", b % 5);
                    store
                        .append(&stream, ExpectedVersion::Any, &events)
                        .unwrap();
                }
            });
        }
        for r in 0..4u64 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..READS {
                    let end = store.global_position();
                    if (i + r) % 2 == 0 {
                        let max = 1 + ((i * 37 + r) % 2_000) as usize;
                        let from = (i * 131 + r * 17) % (end + 1);
                        let page = store.read_all(from, max).unwrap();
                        check_page(&page, from, max);
                    } else {
                        let stream = format!("s-{}", (i + r) % 5);
                        if let Ok(events) = store.read_stream(&stream, 0, usize::MAX) {
                            for (v, e) in events.iter().enumerate() {
                                assert_eq!(e.version, v as u64, "gap in versions of {stream}");
                                assert_eq!(&*e.stream_id, stream);
                            }
                            if let Some(last) = events.last() {
                                let (_, _, k, n) = parse(last);
                                assert_eq!(k + 1, n, "{stream} ends in part of a batch");
                            }
                        }
                    }
                }
            });
        }
    });
    let all = store.read_all(0, usize::MAX).unwrap();
    check_snapshot(&all);
    let expected: u64 = (0..APPENDERS)
        .flat_map(|w| (0..APPENDS).map(move |b| 1 + (w * 7 + b) % 9))
        .sum();
    assert_eq!(all.len() as u64, expected);
}
