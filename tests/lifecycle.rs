//! Stream lifecycle (issue 12): soft delete, tombstone, truncation and
//! limits, each one control record in the log, hide events from every read
//! at once, check expected versions, never reuse a version, never move
//! `global_position` back, and survive a reopen (clean or not) and
//! rotation into sealed segments with index files and a catalog.

use std::sync::Arc;
use std::time::Duration;

use annals::{
    Bytes, Error, EventData, ExpectedVersion, Filter, Options, RecordedEvent, Store, StreamAppend,
    StreamLimits, SubscribeFrom, SubscriptionItem, Uuid,
};

fn ev(i: u64) -> EventData {
    EventData::new("T", i.to_le_bytes().to_vec())
}

fn fill(store: &Store, stream: &str, n: u64) {
    let events: Vec<EventData> = (0..n).map(ev).collect();
    store.append(stream, ExpectedVersion::Any, &events).unwrap();
}

fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

fn streams_of(events: &[RecordedEvent]) -> Vec<String> {
    events.iter().map(|e| e.stream_id.to_string()).collect()
}

/// Every way to read `$all`, each checked to hold no event of `gone`
/// and to keep positions strictly increasing.
fn assert_all_reads_hide(store: &Store, gone: &str) {
    let all = store.read_all(0, 10_000).unwrap();
    assert!(
        all.iter().all(|e| &*e.stream_id != gone),
        "read_all shows {gone}"
    );
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let back = store.read_all_backward(u64::MAX, 10_000).unwrap();
    assert_eq!(back.len(), all.len());
    assert!(back.iter().all(|e| &*e.stream_id != gone));
    let page = store
        .read_all_filtered(0, 10_000, &Filter::stream_prefix(gone))
        .unwrap();
    assert!(page.events.iter().all(|e| &*e.stream_id != gone));
    assert_eq!(page.next_position, store.global_position());
    // Paging one event at a time reaches every visible event: a page is
    // empty only at the end, however many removed events lie between.
    let mut paged = Vec::new();
    let mut at = 0;
    loop {
        let p = store.read_all(at, 1).unwrap();
        let Some(e) = p.first() else { break };
        at = e.position + 1;
        paged.push(e.position);
    }
    assert_eq!(paged, all.iter().map(|e| e.position).collect::<Vec<_>>());
}

#[test]
fn soft_delete_hides_the_stream_and_versions_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, "a", 3);
    fill(&store, "b", 2);
    let id = Uuid::now_v7();
    store
        .append("a", ExpectedVersion::Exact(2), &[ev(3).with_id(id)])
        .unwrap();
    let before = store.global_position();
    store.delete_stream("a", ExpectedVersion::Exact(3)).unwrap();
    assert!(
        store.global_position() > before,
        "the control record takes a position"
    );
    assert!(matches!(
        store.read_stream("a", 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
    assert!(matches!(
        store.read_stream_backward("a", u64::MAX, 10),
        Err(Error::StreamNotFound { .. })
    ));
    assert_eq!(store.stream_version("a"), None);
    assert!(store.find_event(id).unwrap().is_none());
    assert_all_reads_hide(&store, "a");
    assert_eq!(streams_of(&store.read_all(0, 100).unwrap()), ["b", "b"]);
    // Deleting again changes nothing and writes nothing.
    let p = store.global_position();
    store.delete_stream("a", ExpectedVersion::Any).unwrap();
    assert_eq!(store.global_position(), p);
    // Versions go on from the old last version + 1.
    let r = store
        .append("a", ExpectedVersion::NoStream, &[ev(9)])
        .unwrap();
    assert_eq!(r.versions, 4..5);
    assert_eq!(versions(&store.read_stream("a", 0, 10).unwrap()), [4]);
    assert_eq!(store.stream_version("a"), Some(4));
    let r = store
        .append("a", ExpectedVersion::Exact(4), &[ev(10)])
        .unwrap();
    assert_eq!(r.versions, 5..6);
    assert_eq!(
        versions(&store.read_stream_backward("a", u64::MAX, 10).unwrap()),
        [5, 4]
    );
}

#[test]
fn delete_checks_every_expected_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, "s", 2);
    let wrong = |r: Result<(), Error>| {
        assert!(
            matches!(
                r,
                Err(Error::WrongExpectedVersion {
                    actual: Some(1),
                    ..
                })
            ),
            "{r:?}"
        )
    };
    wrong(store.delete_stream("s", ExpectedVersion::NoStream));
    wrong(store.delete_stream("s", ExpectedVersion::Exact(0)));
    wrong(store.tombstone_stream("s", ExpectedVersion::Exact(5)));
    assert_eq!(store.stream_version("s"), Some(1));
    store
        .delete_stream("s", ExpectedVersion::StreamExists)
        .unwrap();
    // Deleted: only NoStream and Any pass now.
    let missing = |r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::WrongExpectedVersion { actual: None, .. })),
            "{r:?}"
        )
    };
    missing(store.delete_stream("s", ExpectedVersion::StreamExists));
    missing(store.delete_stream("s", ExpectedVersion::Exact(1)));
    let e = store.append("s", ExpectedVersion::StreamExists, &[ev(0)]);
    assert!(matches!(
        e,
        Err(Error::WrongExpectedVersion { actual: None, .. })
    ));
    let e = store.append("s", ExpectedVersion::Exact(1), &[ev(0)]);
    assert!(matches!(
        e,
        Err(Error::WrongExpectedVersion { actual: None, .. })
    ));
    store.delete_stream("s", ExpectedVersion::NoStream).unwrap();
    assert_eq!(
        store
            .append("s", ExpectedVersion::Any, &[ev(0)])
            .unwrap()
            .versions,
        2..3
    );
    store
        .tombstone_stream("s", ExpectedVersion::Exact(2))
        .unwrap();
    // A stream that never was may be deleted (nothing happens) or
    // tombstoned (its name is taken for good).
    store
        .delete_stream("never", ExpectedVersion::NoStream)
        .unwrap();
    wrong_none(store.delete_stream("never", ExpectedVersion::Exact(0)));
    store
        .tombstone_stream("never", ExpectedVersion::NoStream)
        .unwrap();
    assert!(matches!(
        store.append("never", ExpectedVersion::NoStream, &[ev(0)]),
        Err(Error::StreamDeleted { .. })
    ));
}

fn wrong_none(r: Result<(), Error>) {
    assert!(
        matches!(r, Err(Error::WrongExpectedVersion { actual: None, .. })),
        "{r:?}"
    );
}

#[test]
fn a_tombstone_refuses_everything_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options::default().segment_size(64 << 10);
    {
        let store = Store::open_with(dir.path(), opts()).unwrap();
        fill(&store, "t", 3);
        fill(&store, "u", 1);
        store.tombstone_stream("t", ExpectedVersion::Any).unwrap();
        check_tombstoned(&store);
        store.close().unwrap();
    }
    let store = Store::open_with(dir.path(), opts()).unwrap();
    check_tombstoned(&store);
    // Rotation into index files and a catalog keeps it too.
    for i in 0..200 {
        store
            .append(
                "u",
                ExpectedVersion::Any,
                &[EventData::new("Big", vec![i as u8; 1000])],
            )
            .unwrap();
    }
    drop(store);
    let store = Store::open_with(dir.path(), opts()).unwrap();
    assert!(store.stats().segments > 2);
    check_tombstoned(&store);
}

fn check_tombstoned(store: &Store) {
    let deleted = |r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::StreamDeleted { ref stream }) if stream == "t"),
            "{r:?}"
        )
    };
    deleted(store.read_stream("t", 0, 10).map(|_| ()));
    deleted(store.read_stream_backward("t", u64::MAX, 10).map(|_| ()));
    deleted(
        store
            .append("t", ExpectedVersion::Any, &[ev(0)])
            .map(|_| ()),
    );
    deleted(
        store
            .append("t", ExpectedVersion::NoStream, &[ev(0)])
            .map(|_| ()),
    );
    deleted(store.delete_stream("t", ExpectedVersion::Any));
    deleted(store.tombstone_stream("t", ExpectedVersion::Any));
    deleted(store.truncate_stream_before("t", 1));
    deleted(store.set_stream_limits("t", StreamLimits::default().max_count(1)));
    // A multi-stream append with a part for it is refused whole.
    let p = store.global_position();
    let r = store.append_multi(&[
        StreamAppend::new("fresh", ExpectedVersion::Any, vec![ev(0)]),
        StreamAppend::new("t", ExpectedVersion::Any, vec![ev(0)]),
    ]);
    assert!(matches!(r, Err(Error::StreamDeleted { .. })), "{r:?}");
    assert_eq!(store.global_position(), p);
    assert_eq!(store.stream_version("fresh"), None);
    assert_eq!(store.stream_version("t"), None);
    assert_all_reads_hide(store, "t");
}

#[test]
fn truncation_hides_older_versions_and_keeps_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, "s", 10);
    fill(&store, "o", 2);
    store.truncate_stream_before("s", 7).unwrap();
    assert_eq!(
        versions(&store.read_stream("s", 0, 100).unwrap()),
        [7, 8, 9]
    );
    assert_eq!(versions(&store.read_stream("s", 8, 100).unwrap()), [8, 9]);
    assert_eq!(versions(&store.read_stream("s", 0, 2).unwrap()), [7, 8]);
    assert_eq!(
        versions(&store.read_stream_backward("s", u64::MAX, 100).unwrap()),
        [9, 8, 7]
    );
    assert!(store.read_stream_backward("s", 5, 100).unwrap().is_empty());
    assert_eq!(store.stream_version("s"), Some(9));
    let all = store.read_all(0, 100).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].position, 7, "positions keep their numbers");
    // A lower bound changes nothing and writes nothing.
    let p = store.global_position();
    store.truncate_stream_before("s", 3).unwrap();
    assert_eq!(store.global_position(), p);
    // Past the end: everything goes, later events come back.
    store.truncate_stream_before("s", 11).unwrap();
    assert!(store.read_stream("s", 0, 100).unwrap().is_empty());
    fill(&store, "s", 2);
    assert_eq!(versions(&store.read_stream("s", 0, 100).unwrap()), [11]);
    assert_eq!(store.stream_version("s"), Some(11));
}

#[test]
fn max_count_keeps_the_last_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, "s", 5);
    store
        .set_stream_limits("s", StreamLimits::default().max_count(2))
        .unwrap();
    assert_eq!(versions(&store.read_stream("s", 0, 100).unwrap()), [3, 4]);
    fill(&store, "s", 1);
    assert_eq!(versions(&store.read_stream("s", 0, 100).unwrap()), [4, 5]);
    assert_eq!(versions(&store.read_all(0, 100).unwrap()), [4, 5]);
    store
        .set_stream_limits("s", StreamLimits::default())
        .unwrap();
    assert_eq!(store.read_stream("s", 0, 100).unwrap().len(), 6);
    let bad = store.set_stream_limits("s", StreamLimits::default().max_count(0));
    assert!(matches!(bad, Err(Error::InvalidLimits { .. })));
    let bad = store.set_stream_limits("s", StreamLimits::default().max_age(Duration::ZERO));
    assert!(matches!(bad, Err(Error::InvalidLimits { .. })));
    let bad = store.set_stream_limits("s", StreamLimits::default().max_age(Duration::MAX));
    assert!(matches!(bad, Err(Error::InvalidLimits { .. })));
}

/// Events recorded two days ago (written through the replication import,
/// which keeps `recorded_at`) expire under a one-day age limit; today's
/// stay.
#[test]
fn max_age_hides_events_by_recorded_at() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let day_us = 86_400_000_000;
    let old: Vec<RecordedEvent> = (0..3u64)
        .map(|v| RecordedEvent {
            stream_id: Arc::from("s"),
            version: v,
            position: v,
            event_type: Arc::from("T"),
            data: Bytes::from(vec![v as u8]),
            metadata: Bytes::new(),
            id: Uuid::now_v7(),
            recorded_at: now_us - 2 * day_us,
        })
        .collect();
    annals::replication::import(&store, &old).unwrap();
    fill(&store, "s", 2);
    store
        .set_stream_limits(
            "s",
            StreamLimits::default().max_age(Duration::from_secs(86_400)),
        )
        .unwrap();
    assert_eq!(versions(&store.read_stream("s", 0, 100).unwrap()), [3, 4]);
    assert_eq!(versions(&store.read_stream("s", 0, 1).unwrap()), [3]);
    assert_eq!(
        versions(&store.read_stream_backward("s", u64::MAX, 100).unwrap()),
        [4, 3]
    );
    assert_eq!(versions(&store.read_all(0, 100).unwrap()), [3, 4]);
    assert_eq!(store.stream_version("s"), Some(4));
}

#[test]
fn subscriptions_skip_removed_events_and_still_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, "keep", 2);
    fill(&store, "gone", 5);
    store.delete_stream("gone", ExpectedVersion::Any).unwrap();
    for filter in [None, Some(Filter::event_types(["T"]))] {
        let mut sub = store.subscribe_all(SubscribeFrom::Start, filter).unwrap();
        let mut seen = Vec::new();
        loop {
            match sub.next_timeout(Duration::from_secs(10)).unwrap() {
                Some(SubscriptionItem::Event(e)) => seen.push(e.stream_id.to_string()),
                Some(SubscriptionItem::CaughtUp { position }) => {
                    assert_eq!(position, store.global_position());
                    break;
                }
                Some(SubscriptionItem::Checkpoint { .. }) => {}
                None => panic!("no CaughtUp"),
            }
        }
        assert_eq!(seen, ["keep", "keep"]);
    }
    let mut sub = store
        .subscribe_stream("keep", SubscribeFrom::Start)
        .unwrap();
    store.truncate_stream_before("keep", 1).unwrap();
    match sub.next_timeout(Duration::from_secs(10)).unwrap() {
        Some(SubscriptionItem::Event(e)) => assert_eq!(e.version, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reserved_stream_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store, "s", 1);
    store.delete_stream("s", ExpectedVersion::Any).unwrap();
    let r = store.append("$$x", ExpectedVersion::Any, &[ev(0)]);
    assert!(matches!(r, Err(Error::InvalidStreamId { .. })), "{r:?}");
    let r = store.delete_stream("$$x", ExpectedVersion::Any);
    assert!(matches!(r, Err(Error::InvalidStreamId { .. })), "{r:?}");
    // The control stream exists in the log, but no read shows it.
    assert!(store.read_all(0, 100).unwrap().is_empty());
    assert!(
        store
            .streams(None, 100)
            .iter()
            .all(|s| !s.stream_id.starts_with("$$"))
    );
}

/// The state lives in the log: it comes back after a clean close, after a
/// drop without close (the open scans the active segment), and from
/// sealed segments taken from index files and the catalog; a read-only
/// follower sees it as it is committed.
#[test]
fn lifecycle_state_survives_reopen_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options::default().segment_size(64 << 10);
    let check = |store: &Store| {
        assert!(matches!(
            store.read_stream("del", 0, 10),
            Err(Error::StreamNotFound { .. })
        ));
        assert!(matches!(
            store.read_stream("tomb", 0, 10),
            Err(Error::StreamDeleted { .. })
        ));
        assert_eq!(
            versions(&store.read_stream("trunc", 0, 10).unwrap()),
            [2, 3]
        );
        assert_eq!(versions(&store.read_stream("lim", 0, 10).unwrap()), [3]);
        assert_all_reads_hide(store, "del");
        assert_all_reads_hide(store, "tomb");
    };
    {
        let store = Store::open_with(dir.path(), opts()).unwrap();
        for s in ["del", "tomb", "trunc", "lim"] {
            fill(&store, s, 4);
        }
        store.delete_stream("del", ExpectedVersion::Any).unwrap();
        store
            .tombstone_stream("tomb", ExpectedVersion::Any)
            .unwrap();
        store.truncate_stream_before("trunc", 2).unwrap();
        store
            .set_stream_limits("lim", StreamLimits::default().max_count(1))
            .unwrap();
        check(&store);
        drop(store);
    }
    let store = Store::open_with(dir.path(), opts()).unwrap();
    check(&store);
    let follower = Store::open_read_only(dir.path()).unwrap();
    check(&follower);
    // Rotate a few times so that the control records lie in sealed
    // segments, taken from index files and the catalog at the next open.
    for i in 0..200 {
        store
            .append(
                "filler",
                ExpectedVersion::Any,
                &[EventData::new("Big", vec![i as u8; 1000])],
            )
            .unwrap();
    }
    store.delete_stream("filler", ExpectedVersion::Any).unwrap();
    follower.refresh().unwrap();
    assert!(matches!(
        follower.read_stream("filler", 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
    store.close().unwrap();
    drop(follower);
    let store = Store::open_with(dir.path(), opts()).unwrap();
    assert!(store.recovery_report().unusable_indexes.is_empty());
    check(&store);
    assert!(matches!(
        store.read_stream("filler", 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
    assert_eq!(store.stream_version("filler"), None);
    assert_eq!(
        store
            .append("filler", ExpectedVersion::NoStream, &[ev(0)])
            .unwrap()
            .versions,
        200..201
    );
}

/// A store written by a build that knows only format version 1: its
/// segments say version 1, and the first control record goes into a new
/// segment of version 2 (after sealing the old one), so that such a build
/// refuses the store from then on instead of misreading it.
#[test]
fn a_control_record_never_lands_in_a_version_1_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        fill(&store, "s", 3);
        store.close().unwrap();
    }
    let seg0 = dir.path().join(format!("{:020}.seg", 0));
    set_header_version(&seg0, 1);
    // The clean close's index names the header as it was; it goes.
    let _ = std::fs::remove_file(dir.path().join(format!("{:020}.idx", 0)));
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.read_stream("s", 0, 10).unwrap().len(), 3);
    store.delete_stream("s", ExpectedVersion::Any).unwrap();
    assert_eq!(header_version(&seg0), 1);
    let seg1 = dir.path().join(format!("{:020}.seg", 1));
    assert_eq!(header_version(&seg1), 2);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.read_stream("s", 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
}

fn header_version(path: &std::path::Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

fn set_header_version(path: &std::path::Path, version: u32) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut head = [0u8; 64];
    f.read_exact_at(&mut head, 0).unwrap();
    head[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32fast::hash(&head[..60]);
    head[60..64].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&head, 0).unwrap();
}
