//! Guards the backward and filtered reads against the plain forward read
//! they must agree with: `read_all_backward` and `read_stream_backward`
//! from every position and version (so across every segment edge, at
//! version 0 and position 0, and past the end) equal a forward read
//! reversed; `read_all_filtered` paged with any page size equals a model
//! filter over `read_all`, and its `next_position` never rescans and never
//! skips.

mod common;

use annals::{
    Error, EventData, ExpectedVersion, FILTER_SCAN_EVENTS, Filter, Limit, Options, RecordedEvent,
    Store,
};
use common::Workload;

/// Small segments, so that the log crosses many segment edges.
fn small_store(dir: &std::path::Path, batches: usize) -> Store {
    let store = Store::open_with(dir, Options::default().segment_size(4 << 10)).unwrap();
    for i in 0..batches {
        Workload::FIXED.append_next(&store, i).unwrap();
    }
    store
}

fn ids(events: &[RecordedEvent]) -> Vec<(u64, String, u64)> {
    events
        .iter()
        .map(|e| (e.position, e.stream_id.to_string(), e.version))
        .collect()
}

#[test]
fn read_all_backward_is_read_all_reversed_from_every_position() {
    let tmp = tempfile::tempdir().unwrap();
    let store = small_store(tmp.path(), 120);
    let n = store.global_position();
    assert!(store.stats().segments >= 5, "the log must span segments");
    let forward = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(forward.len() as u64, n);
    let froms = (0..n + 2).chain([u64::MAX - 1, u64::MAX]);
    for from in froms {
        for max in [0usize, 1, 2, 7, n as usize + 5, usize::MAX] {
            let got = store.read_all_backward(from, max).unwrap();
            let top = from.min(n - 1) as usize;
            let lo = (top + 1).saturating_sub(max);
            let mut want = forward[lo..=top].to_vec();
            if max == 0 {
                want.clear();
            }
            want.reverse();
            assert_eq!(ids(&got), ids(&want), "from {from}, max {max}");
            // Whole events, not only their ids.
            assert_eq!(got, want, "from {from}, max {max}");
        }
    }
}

#[test]
fn read_stream_backward_is_read_stream_reversed_from_every_version() {
    let tmp = tempfile::tempdir().unwrap();
    let store = small_store(tmp.path(), 120);
    for s in 0..Workload::FIXED.streams {
        let stream = Workload::FIXED.stream_name(s);
        let last = store.stream_version(&stream).unwrap();
        let forward = store.read_stream(&stream, 0, usize::MAX).unwrap();
        assert_eq!(forward.len() as u64, last + 1);
        for from in (0..last + 3).chain([u64::MAX]) {
            for max in [0usize, 1, 3, last as usize + 2] {
                let got = store.read_stream_backward(&stream, from, max).unwrap();
                let top = from.min(last) as usize;
                let lo = (top + 1).saturating_sub(max);
                let mut want = forward[lo..=top].to_vec();
                if max == 0 {
                    want.clear();
                }
                want.reverse();
                assert_eq!(got, want, "{stream} from {from}, max {max}");
                for e in &got {
                    Workload::FIXED.assert_event(e, &stream, e.version);
                }
            }
        }
    }
}

#[test]
fn backward_reads_of_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    assert!(store.read_all_backward(u64::MAX, 100).unwrap().is_empty());
    assert!(store.read_all_backward(0, 100).unwrap().is_empty());
    let missing = store.read_stream_backward("nope", u64::MAX, 10);
    assert!(matches!(missing, Err(Error::StreamNotFound { stream }) if stream == "nope"));
    store
        .append(
            "one",
            ExpectedVersion::NoStream,
            &[EventData::new("T", b"x".to_vec())],
        )
        .unwrap();
    let only = store.read_all_backward(u64::MAX, 100).unwrap();
    assert_eq!(ids(&only), vec![(0, "one".to_owned(), 0)]);
    let only = store.read_stream_backward("one", 0, 100).unwrap();
    assert_eq!(ids(&only), vec![(0, "one".to_owned(), 0)]);
}

/// Pages through `$all` with `filter`, `max` matches at a time, checking
/// each page's bounds, and returns every match.
fn page_through(store: &Store, filter: &Filter, max: usize) -> Vec<RecordedEvent> {
    let end = store.global_position();
    let mut from = 0;
    let mut all = Vec::new();
    let mut pages = 0;
    while from < end {
        let page = store.read_all_filtered(from, max, filter).unwrap();
        assert!(page.next_position > from, "a page moves on (from {from})");
        assert!(page.next_position <= end);
        assert!(page.events.len() <= max);
        for e in &page.events {
            assert!((from..page.next_position).contains(&e.position));
        }
        from = page.next_position;
        all.extend(page.events);
        pages += 1;
        assert!(pages <= end + 1, "paging must end");
    }
    // Past the end: nothing, and the position stays.
    let past = store.read_all_filtered(end, max, filter).unwrap();
    assert!(past.events.is_empty());
    assert_eq!(past.next_position, end);
    all
}

#[test]
fn filtered_pages_equal_a_model_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let store = small_store(tmp.path(), 150);
    let everything = store.read_all(0, usize::MAX).unwrap();
    type Model = fn(&RecordedEvent) -> bool;
    let cases: Vec<(Filter, Model)> = vec![
        (Filter::stream_prefix("stream-1"), |e| {
            e.stream_id.starts_with("stream-1")
        }),
        (Filter::stream_prefixes(["stream-0", "stream-3"]), |e| {
            &*e.stream_id == "stream-0" || &*e.stream_id == "stream-3"
        }),
        (Filter::event_types(["Type0", "Type3"]), |e| {
            &*e.event_type == "Type0" || &*e.event_type == "Type3"
        }),
        (
            Filter::stream_prefix("stream-2").and(Filter::event_types(["Type1"])),
            |e| &*e.stream_id == "stream-2" && &*e.event_type == "Type1",
        ),
        (Filter::stream_prefix(""), |_| true),
        (Filter::event_types(Vec::<String>::new()), |_| false),
    ];
    for (filter, model) in &cases {
        let want: Vec<_> = everything.iter().filter(|e| model(e)).cloned().collect();
        for max in [1, 3, 1000] {
            let got = page_through(&store, filter, max);
            assert_eq!(got, want, "{filter:?}, {max} per page");
        }
        // And the events themselves are the workload's.
        for e in &want {
            Workload::FIXED.check_event(e);
        }
    }
    let none = store
        .read_all_filtered(5, 0, &Filter::stream_prefix(""))
        .unwrap();
    assert!(none.events.is_empty());
    assert_eq!(none.next_position, 5, "nothing examined, nothing passed");
}

#[test]
fn a_rare_filter_examines_a_bounded_number_of_events_per_call() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let batch: Vec<_> = (0..6_000)
        .map(|_| EventData::new("Common", Vec::new()))
        .collect();
    store.append("noise", ExpectedVersion::Any, &batch).unwrap();
    store.append("noise", ExpectedVersion::Any, &batch).unwrap();
    store
        .append(
            "rare-1",
            ExpectedVersion::Any,
            &[EventData::new("Rare", b"!".to_vec())],
        )
        .unwrap();
    let f = Filter::event_types(["Rare"]);
    let first = store.read_all_filtered(0, 10, &f).unwrap();
    assert!(first.events.is_empty());
    assert_eq!(first.next_position, FILTER_SCAN_EVENTS as u64);
    let second = store
        .read_all_filtered(first.next_position, 10, &f)
        .unwrap();
    assert_eq!(ids(&second.events), vec![(12_000, "rare-1".to_owned(), 0)]);
    assert_eq!(second.next_position, 12_001);
}

#[test]
fn a_filter_with_too_many_terms_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = small_store(tmp.path(), 10);
    let before = store.read_all(0, usize::MAX).unwrap();
    let huge = Filter::event_types((0..2_000).map(|i| format!("T{i}")));
    let refused = store.read_all_filtered(0, 10, &huge);
    assert!(matches!(
        refused,
        Err(Error::LimitExceeded {
            limit: Limit::FilterTerms,
            actual: 2_000,
            max: 1_024
        })
    ));
    let refused = store.subscribe_all(annals::SubscribeFrom::Start, Some(huge));
    assert!(matches!(
        refused,
        Err(Error::LimitExceeded {
            limit: Limit::FilterTerms,
            ..
        })
    ));
    assert_eq!(store.read_all(0, usize::MAX).unwrap(), before);
}
