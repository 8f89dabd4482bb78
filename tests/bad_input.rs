//! Every invalid call gets a typed error and leaves the store exactly as it
//! was: same events, same versions, the same bytes in every file.

mod common;
mod fixture;

use annals::{Error, EventData, ExpectedVersion, Limit, Options, Store};
use common::Workload;
use fixture::*;

/// The events these tests append.
const W: Workload = Workload::FIXED;

/// A store holding two events in stream "s", and a check that it still
/// holds exactly that, byte for byte, after a refused call.
struct Guard {
    dir: tempfile::TempDir,
    store: Store,
    files: Snapshot,
}

impl Guard {
    fn new(options: Options) -> Guard {
        // Preparing the next segment in the background changes the directory
        // on its own schedule; with it off, any change is the refused call's.
        let options = options.prepare_segments_ahead(false);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), options).unwrap();
        store
            .append(
                "s",
                ExpectedVersion::NoStream,
                &[W.event("s", 0), W.event("s", 1)],
            )
            .unwrap();
        let files = snapshot(dir.path());
        Guard { dir, store, files }
    }

    fn refused(&self, stream: &str, expected: ExpectedVersion, events: &[EventData]) -> Error {
        let err = self.store.append(stream, expected, events).unwrap_err();
        assert_eq!(self.store.global_position(), 2, "{err}");
        assert_eq!(self.store.stream_version("s"), Some(1));
        assert_eq!(self.store.stream_version(stream).is_some(), stream == "s");
        assert_eq!(
            snapshot(self.dir.path()),
            self.files,
            "files changed by: {err}"
        );
        err
    }
}

#[test]
fn stream_ids_are_checked() {
    let g = Guard::new(Options::default());
    let e = [W.event("x", 0)];
    for bad in ["", "a\nb", "tab\there", "\u{7f}", "esc\u{1b}[0m"] {
        let err = g.refused(bad, ExpectedVersion::Any, &e);
        assert!(
            matches!(err, Error::InvalidStreamId { .. }),
            "{bad:?}: {err:?}"
        );
    }
    let long = "x".repeat(257);
    let err = g.refused(&long, ExpectedVersion::Any, &e);
    assert!(
        matches!(&err, Error::InvalidStreamId { stream, .. } if stream.len() == 64),
        "{err:?}"
    );
    // At the limit is fine.
    let ok = "y".repeat(256);
    g.store.append(&ok, ExpectedVersion::NoStream, &e).unwrap();
}

#[test]
fn event_types_are_checked_and_a_bad_event_spoils_the_whole_batch() {
    let g = Guard::new(Options::default().max_event_type_len(16));
    for bad in ["", "with\nnewline", "seventeen-bytes!!"] {
        let events = [
            W.event("s", 2),
            W.event("s", 3),
            EventData::new(bad, b"{}".to_vec()),
        ];
        let err = g.refused("s", ExpectedVersion::Any, &events);
        assert!(
            matches!(err, Error::InvalidEventType { index: 2, .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn sizes_and_counts_are_limited() {
    let g = Guard::new(
        Options::default()
            .segment_size(64 << 10)
            .max_event_size(1000)
            .max_batch_events(10),
    );
    let err = g.refused(
        "s",
        ExpectedVersion::Any,
        &[EventData::new("T", vec![0; 1001])],
    );
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: Limit::EventSize,
                actual: 1001,
                max: 1000
            }
        ),
        "{err:?}"
    );
    // Metadata counts toward the event size.
    let e = EventData::new("T", vec![0; 600]).with_metadata(vec![0; 401]);
    let err = g.refused("s", ExpectedVersion::Any, &[e]);
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: Limit::EventSize,
                ..
            }
        ),
        "{err:?}"
    );

    // Versions the store does not hold yet, so that only the count is wrong.
    let many: Vec<_> = (2..13).map(|i| W.event("s", i)).collect();
    let err = g.refused("s", ExpectedVersion::Any, &many);
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: Limit::BatchEvents,
                actual: 11,
                max: 10
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_batch_events"), "{err}");
}

#[test]
fn a_batch_larger_than_a_segment_is_refused() {
    let g = Guard::new(Options::default().segment_size(8192).max_event_size(8192));
    let events: Vec<_> = (0..3).map(|_| EventData::new("T", vec![1; 3000])).collect();
    let err = g.refused("s", ExpectedVersion::Any, &events);
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
}

#[test]
fn expected_version_conflicts_write_nothing() {
    let g = Guard::new(Options::default());
    let e = [W.event("s", 2)];
    let cases = [
        ("s", ExpectedVersion::NoStream, Some(1)),
        ("s", ExpectedVersion::Exact(0), Some(1)),
        ("s", ExpectedVersion::Exact(2), Some(1)),
        ("new", ExpectedVersion::StreamExists, None),
        ("new", ExpectedVersion::Exact(0), None),
    ];
    for (stream, expected, actual) in cases {
        let err = g.refused(stream, expected, &e);
        match err {
            Error::WrongExpectedVersion {
                stream: s,
                expected: x,
                actual: a,
            } => {
                assert_eq!((s.as_str(), x, a), (stream, expected, actual));
            }
            other => panic!("{stream} {expected:?}: {other:?}"),
        }
    }
    // An empty batch checks too.
    let err = g.refused("s", ExpectedVersion::Exact(7), &[]);
    assert!(
        matches!(
            err,
            Error::WrongExpectedVersion {
                actual: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_options_are_refused_before_anything_is_created() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let bad = [
        Options::default().segment_size(0),
        Options::default().segment_size(1000),
        Options::default().segment_size(4096 + 8),
        Options::default().segment_size(2 << 30),
        Options::default().max_event_size(0),
        Options::default().max_batch_events(0),
        Options::default().max_stream_id_len(0),
        Options::default().max_event_type_len(70_000),
    ];
    for options in bad {
        let err = Store::open_with(&dir, options.clone()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidOptions { .. }),
            "{options:?}: {err:?}"
        );
        assert!(!dir.exists(), "{options:?} created the directory");
    }
}

#[test]
fn reads_out_of_range_are_empty_or_not_found() {
    let g = Guard::new(Options::default());
    let err = g.store.read_stream("nope", 0, 10).unwrap_err();
    assert!(
        matches!(&err, Error::StreamNotFound { stream } if stream == "nope"),
        "{err:?}"
    );
    assert!(g.store.read_stream("s", 2, 10).unwrap().is_empty());
    assert!(
        g.store
            .read_stream("s", u64::MAX, usize::MAX)
            .unwrap()
            .is_empty()
    );
    assert!(g.store.read_stream("s", 0, 0).unwrap().is_empty());
    assert_eq!(g.store.read_stream("s", 1, usize::MAX).unwrap().len(), 1);
    assert!(g.store.read_all(2, 10).unwrap().is_empty());
    assert!(g.store.read_all(u64::MAX, usize::MAX).unwrap().is_empty());
    assert_eq!(g.store.read_all(1, usize::MAX).unwrap().len(), 1);
    assert_eq!(g.store.stream_version("nope"), None);
}
