//! The borrowed reads (`read_stream_with`, `read_all_with`) hand on the
//! same events as the owned reads, across segments and lifecycle states,
//! and fail the same way; a record damaged on disk is refused on its first
//! read, and a reopen checks it again rather than trusting an earlier map.

use annals::{Error, EventData, ExpectedVersion, Options, RecordedEvent, Store};

fn options() -> Options {
    Options::default().segment_size(64 << 10)
}

fn fill(store: &Store) {
    for i in 0..400u32 {
        let stream = format!("s-{}", i % 7);
        let events: Vec<EventData> = (0..1 + i % 3)
            .map(|k| EventData::new(format!("T{}", k % 2), vec![i as u8; (i % 200) as usize]))
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .unwrap();
    }
}

fn stream_with(store: &Store, s: &str, from: u64, max: usize) -> Result<Vec<RecordedEvent>, Error> {
    let mut out = Vec::new();
    let n = store.read_stream_with(s, from, max, |e| out.push(e.to_recorded()))?;
    assert_eq!(n, out.len());
    Ok(out)
}

fn all_with(store: &Store, from: u64, max: usize) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let n = store
        .read_all_with(from, max, |e| out.push(e.to_recorded()))
        .unwrap();
    assert_eq!(n, out.len());
    out
}

#[test]
fn borrowed_reads_return_what_owned_reads_return() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options()).unwrap();
    fill(&store);
    assert!(store.stats().segments > 2, "the reads must cross segments");
    store.delete_stream("s-3", ExpectedVersion::Any).unwrap();
    store.truncate_stream_before("s-4", 20).unwrap();
    for round in 0..2 {
        // The second round reads records verified by the first.
        for s in 0..8 {
            let name = format!("s-{s}");
            for (from, max) in [(0, 1000), (5, 7), (19, 3), (500, 10)] {
                let owned = store.read_stream(&name, from, max);
                let borrowed = stream_with(&store, &name, from, max);
                match (owned, borrowed) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{name} {from} {max} round {round}"),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => panic!("{name}: owned {a:?}, borrowed {b:?}"),
                }
            }
        }
        for (from, max) in [(0, 10_000), (17, 50), (300, 1), (5_000, 10)] {
            assert_eq!(
                store.read_all(from, max).unwrap(),
                all_with(&store, from, max)
            );
        }
    }
    store.tombstone_stream("s-5", ExpectedVersion::Any).unwrap();
    assert!(matches!(
        stream_with(&store, "s-5", 0, 10),
        Err(Error::StreamDeleted { .. })
    ));
    assert!(matches!(
        stream_with(&store, "nope", 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
}

#[test]
fn a_damaged_record_is_refused_after_a_reopen_even_if_it_was_read_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options()).unwrap();
    store
        .append(
            "a",
            ExpectedVersion::Any,
            &[EventData::new("T", vec![0x5a; 300])],
        )
        .unwrap();
    assert_eq!(all_with(&store, 0, 10).len(), 1);
    store.close().unwrap();
    // Flip a payload byte of the only record.
    let seg = dir.path().join(format!("{:020}.seg", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.windows(8).position(|w| w == [0x5a; 8]).unwrap();
    bytes[at + 100] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    let store = Store::open_read_only(dir.path()).unwrap();
    let err = store.read_all_with(0, 10, |_| {}).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
    let err = store.read_stream_with("a", 0, 10, |_| {}).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
}
