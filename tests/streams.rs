//! Guards `Store::streams`: every stream once, in byte order of its id,
//! with its last version and count, however the pages are cut; a page
//! never exceeds its bound, and the cursor may name a stream that does not
//! exist.

mod common;

use std::collections::BTreeMap;

use annals::{EventData, ExpectedVersion, Store};

#[test]
fn pages_list_every_stream_once_in_order() {
    let seed = common::seed("pages_list_every_stream_once_in_order");
    let mut rng = common::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..600 {
        // Names that share prefixes and include non-ASCII, so that byte
        // order matters.
        let name = format!(
            "{}-{}{}",
            ["order", "ord", "é", "Z"][rng.below(4) as usize],
            rng.below(150),
            if rng.percent(10) { "ü" } else { "" }
        );
        let n = rng.between(1, 3);
        let events: Vec<_> = (0..n).map(|_| EventData::new("T", vec![])).collect();
        store.append(&name, ExpectedVersion::Any, &events).unwrap();
        *model.entry(name).or_default() += n;
    }
    for page_len in [1, 7, 64, 10_000] {
        let mut listed = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store.streams(cursor.as_deref(), page_len);
            assert!(page.len() <= page_len);
            let Some(last) = page.last() else { break };
            cursor = Some(last.stream_id.to_string());
            listed.extend(page);
        }
        let want: Vec<_> = model.iter().collect();
        assert_eq!(listed.len(), want.len(), "page length {page_len}");
        for (got, (name, count)) in listed.iter().zip(want) {
            assert_eq!(&*got.stream_id, name.as_str());
            assert_eq!(got.event_count, *count);
            assert_eq!(got.last_version, count - 1);
            assert_eq!(store.stream_version(name), Some(got.last_version));
        }
    }
}

#[test]
fn cursor_need_not_exist_and_zero_max_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(
        store.streams(None, 10).is_empty(),
        "an empty store lists nothing"
    );
    for s in ["a", "c", "e"] {
        store
            .append(s, ExpectedVersion::Any, &[EventData::new("T", vec![])])
            .unwrap();
    }
    let ids = |page: Vec<annals::StreamInfo>| {
        page.iter()
            .map(|s| s.stream_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(store.streams(Some("b"), 10)), ["c", "e"]);
    assert_eq!(
        ids(store.streams(Some("c"), 10)),
        ["e"],
        "the cursor itself is excluded"
    );
    assert_eq!(ids(store.streams(Some("e"), 10)), Vec::<String>::new());
    assert!(store.streams(None, 0).is_empty());
    // A huge max is bounded, not allocated.
    assert_eq!(store.streams(None, usize::MAX).len(), 3);
}

#[test]
fn a_reopened_and_a_read_only_store_list_the_same() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        for i in 0..50u64 {
            let events: Vec<_> = (0..=i % 3).map(|_| EventData::new("T", vec![])).collect();
            store
                .append(&format!("s{i}"), ExpectedVersion::Any, &events)
                .unwrap();
        }
        let before = store.streams(None, 100);
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.streams(None, 100), before);
        drop(reopened);
        let ro = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(ro.streams(None, 100), before);
    }
}
