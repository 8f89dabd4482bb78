//! Rotation across many small segments: every event comes back byte for
//! byte after reopen, no batch spans two segments, and a batch too large for
//! any segment is refused before anything is written.

mod common;
mod fixture;

use annals::{Error, EventData, ExpectedVersion, Limit, Store};
use common::Workload;
use fixture::*;

/// The events these tests append.
const W: Workload = Workload::FIXED;

#[test]
fn reopen_after_fifty_rotations_returns_every_event_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    let mut expected = Vec::new();
    let mut b = 0u64;
    while segments(dir.path()).len() < 55 {
        let stream = format!("stream-{}", b % 7);
        let first = store.stream_version(&stream).map_or(0, |v| v + 1);
        let n = 1 + b % 4;
        let events: Vec<EventData> = (first..first + n).map(|i| W.event(&stream, i)).collect();
        let r = store
            .append(&stream, ExpectedVersion::Any, &events)
            .unwrap();
        assert_eq!(r.first_position(), expected.len() as u64);
        expected.extend((first..first + n).map(|i| (stream.clone(), i)));
        b += 1;
    }
    store.close().unwrap();

    // No frame crosses a segment boundary, and positions run on densely
    // from one segment to the next.
    let mut next = 0u64;
    for seg in segments(dir.path()) {
        let bytes = std::fs::read(&seg).unwrap();
        assert_eq!(bytes.len(), 4096, "segments have one fixed size");
        for f in frames(&bytes) {
            assert!(f.end <= bytes.len());
            assert_eq!(f.first_position, next);
            next += f.records.len() as u64;
        }
    }
    assert_eq!(next, expected.len() as u64);

    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    let all = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(all.len(), expected.len());
    for (e, (stream, i)) in all.iter().zip(&expected) {
        W.assert_event(e, stream, *i);
        assert_eq!(e.version, *i);
    }
    for s in 0..7 {
        let stream = format!("stream-{s}");
        let events = store.read_stream(&stream, 0, usize::MAX).unwrap();
        for (v, e) in events.iter().enumerate() {
            W.assert_event(e, &stream, v as u64);
        }
    }
}

#[test]
fn a_batch_that_fits_no_segment_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // No preparation ahead: a background preparation writes the next
    // segment on its own schedule, and a snapshot taken while it runs
    // differs from a later one whatever the refused call did (that raced,
    // more often on btrfs, where the zero-fill is slower). With it off, any
    // change is the refused call's.
    let store = Store::open_with(dir.path(), small(4096).prepare_segments_ahead(false)).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, &[W.event("s", 0)])
        .unwrap();
    let before = snapshot(dir.path());
    let events: Vec<EventData> = (0..4)
        .map(|_| EventData::new("Big", vec![7u8; 1250]))
        .collect();
    let err = store
        .append("s", ExpectedVersion::Any, &events)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: Limit::BatchSize,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(store.global_position(), 1);
    // One that fits an empty segment but not the rest of this one goes
    // whole into a fresh segment.
    // Three records of 1,320 bytes and a frame header: 3,984 of the 4,008
    // bytes an empty segment offers.
    let fits: Vec<EventData> = (0..3)
        .map(|_| EventData::new("Big", vec![7u8; 1250]))
        .collect();
    let r = store.append("s", ExpectedVersion::Exact(0), &fits).unwrap();
    assert_eq!(r.positions, 1..4);
    assert_eq!(segments(dir.path()).len(), 2);
}
