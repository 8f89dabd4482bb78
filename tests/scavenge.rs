//! Scavenge (issue 12): removed events leave the disk for good — provably,
//! by searching every byte of every file for a marker written into a
//! deleted event's data, metadata, event type and stream id — while
//! positions, versions, the other streams, concurrent readers and appends,
//! and a reopen all stay as they were.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use annals::{Error, EventData, ExpectedVersion, Options, RecordedEvent, Store, StreamLimits};

fn opts() -> Options {
    Options::default().segment_size(64 << 10)
}

/// Every file under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

fn filler(store: &Store, stream: &str, n: usize) {
    for i in 0..n {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                &[EventData::new("Fill", vec![(i % 251) as u8; 900])],
            )
            .unwrap();
    }
}

/// The erasure test: markers in every field of a soft-deleted stream's
/// events and of a tombstoned stream's, spread over sealed segments and the
/// active one, are on disk before the scavenge and in no file after it
/// (segments, index files, catalog, after a clean close too), while every
/// other event reads as before.
#[test]
fn deleted_events_are_in_no_file_after_a_scavenge() {
    let dir = tempfile::tempdir().unwrap();
    let soft = "SOFTMARK-7f3a9c";
    let hard = "HARDMARK-2b8e41";
    let store = Store::open_with(dir.path(), opts()).unwrap();
    let event = |m: &str, i: usize| {
        EventData::new(format!("{m}-type"), format!("{m}-data-{i}").into_bytes())
            .with_metadata(format!("{m}-meta").into_bytes())
    };
    for round in 0..3 {
        filler(&store, "keep", 60);
        for m in [soft, hard] {
            store
                .append(
                    &format!("user-{m}"),
                    ExpectedVersion::Any,
                    &[event(m, round)],
                )
                .unwrap();
        }
    }
    assert!(
        store.stats().segments > 2,
        "the markers must span sealed segments"
    );
    let kept_before: Vec<RecordedEvent> = store.read_stream("keep", 0, 1000).unwrap();
    let all_before = store.read_all(0, 10_000).unwrap();
    store
        .delete_stream(&format!("user-{soft}"), ExpectedVersion::Any)
        .unwrap();
    store
        .tombstone_stream(&format!("user-{hard}"), ExpectedVersion::Any)
        .unwrap();
    for m in [soft, hard] {
        assert!(
            !files_holding(dir.path(), m.as_bytes()).is_empty(),
            "{m} must be on disk before the scavenge, or this test proves nothing"
        );
    }
    let report = store.scavenge().unwrap();
    assert_eq!(report.events_removed, 6, "{report:?}");
    assert!(
        report.segments_rewritten >= 2 && report.bytes_reclaimed > 0,
        "{report:?}"
    );
    for m in [soft, hard] {
        assert_eq!(
            files_holding(dir.path(), m.as_bytes()),
            Vec::<String>::new(),
            "{m}"
        );
    }
    // Everything else reads as before, positions and versions unchanged;
    // events read before the scavenge still read (their mapping is the
    // old file's).
    let kept = store.read_stream("keep", 0, 1000).unwrap();
    assert_eq!(kept, kept_before);
    let want: Vec<u64> = all_before
        .iter()
        .filter(|e| e.stream_id.starts_with("keep"))
        .map(|e| e.position)
        .collect();
    let got: Vec<u64> = store
        .read_all(0, 10_000)
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(got, want);
    assert!(
        all_before
            .iter()
            .any(|e| e.data.starts_with(soft.as_bytes()))
    );
    // The soft-deleted stream goes on at its next version; the tombstone
    // holds.
    let r = store
        .append(
            &format!("user-{soft}"),
            ExpectedVersion::NoStream,
            &[EventData::new("T", vec![])],
        )
        .unwrap();
    assert_eq!(r.versions, 3..4);
    store.close().unwrap();
    // The soft-deleted stream's name is back (it was appended to again);
    // the tombstoned one's is still nowhere, after the close's writes too.
    assert_eq!(
        files_holding(dir.path(), hard.as_bytes()),
        Vec::<String>::new(),
        "{hard} after close"
    );
    for reopen in 0..2 {
        let store = Store::open_with(dir.path(), opts()).unwrap();
        assert!(
            reopen == 1 || store.recovery_report().unusable_indexes.is_empty(),
            "{:?}",
            store.recovery_report().unusable_indexes
        );
        assert_eq!(store.read_stream("keep", 0, 1000).unwrap(), kept_before);
        assert!(matches!(
            store.read_stream(&format!("user-{hard}"), 0, 10),
            Err(Error::StreamDeleted { .. })
        ));
        let s = store.read_stream(&format!("user-{soft}"), 0, 10).unwrap();
        assert_eq!(s.iter().map(|e| e.version).collect::<Vec<_>>(), [3]);
        if reopen == 0 {
            drop(store);
            // Without index files the open scans the rewritten segments.
            for f in std::fs::read_dir(dir.path()).unwrap() {
                let p = f.unwrap().path();
                if p.extension().is_some_and(|e| e == "idx") || p.ends_with("catalog") {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
    }
}

/// Truncation and limits are removed too, and lifting the limits after a
/// scavenge brings nothing back (they became a truncation) and breaks no
/// read.
#[test]
fn truncated_and_limited_events_go_and_stay_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), opts()).unwrap();
    filler(&store, "t", 100);
    filler(&store, "l", 100);
    store.truncate_stream_before("t", 90).unwrap();
    store
        .set_stream_limits("l", StreamLimits::default().max_count(5))
        .unwrap();
    let before = store.reclaimable().unwrap();
    assert_eq!(before.events_removed, 185, "{before:?}");
    let report = store.scavenge().unwrap();
    assert_eq!(report.events_removed, 185, "{report:?}");
    assert_eq!(store.reclaimable().unwrap().events_removed, 0);
    store
        .set_stream_limits("l", StreamLimits::default())
        .unwrap();
    let l: Vec<u64> = store
        .read_stream("l", 0, 1000)
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(l, (95..100).collect::<Vec<_>>());
    let t: Vec<u64> = store
        .read_stream("t", 0, 1000)
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(t, (90..100).collect::<Vec<_>>());
    assert_eq!(
        store.read_stream_backward("l", u64::MAX, 3).unwrap().len(),
        3
    );
    // A second scavenge removes only the control record that lifting the
    // limits superseded; a third finds nothing and rewrites nothing.
    let again = store.scavenge().unwrap();
    assert_eq!(again.events_removed, 0, "{again:?}");
    let again = store.scavenge().unwrap();
    assert_eq!(
        (again.events_removed, again.segments_rewritten),
        (0, 0),
        "{again:?}"
    );
    drop(store);
    let store = Store::open_with(dir.path(), opts()).unwrap();
    let t: Vec<u64> = store
        .read_stream("t", 0, 1000)
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(t, (90..100).collect::<Vec<_>>());
    assert_eq!(store.stream_version("l"), Some(99));
    filler(&store, "l", 1);
    assert_eq!(store.stream_version("l"), Some(100));
}

/// Readers and an appender run through a scavenge: every event a reader
/// gets is one that was written (checked byte for byte) and none of the
/// deleted stream's; appends all land.
#[test]
fn readers_and_appends_run_through_a_scavenge() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_with(dir.path(), opts()).unwrap());
    for i in 0..300u32 {
        let s = if i % 2 == 0 { "keep" } else { "gone" };
        store
            .append(
                s,
                ExpectedVersion::Any,
                &[EventData::new("T", i.to_le_bytes().repeat(100))],
            )
            .unwrap();
    }
    store.delete_stream("gone", ExpectedVersion::Any).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) || reads < 3 {
                for e in store.read_all(0, 10_000).unwrap() {
                    assert_ne!(&*e.stream_id, "gone");
                    if &*e.stream_id == "keep" {
                        let i = u32::from_le_bytes(e.data[..4].try_into().unwrap());
                        assert_eq!(&e.data[..], &i.to_le_bytes().repeat(100)[..]);
                        assert_eq!(u64::from(i), e.position);
                    }
                }
                assert!(store.read_stream("keep", 0, 1000).unwrap().len() >= 150);
                reads += 1;
            }
        }));
    }
    let appender = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for i in 0..200u32 {
                store
                    .append(
                        "new",
                        ExpectedVersion::Any,
                        &[EventData::new("N", i.to_le_bytes().to_vec())],
                    )
                    .unwrap();
            }
        })
    };
    let report = store.scavenge().unwrap();
    assert_eq!(report.events_removed, 150);
    appender.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.read_stream("new", 0, 1000).unwrap().len(), 200);
    assert_eq!(store.read_stream("keep", 0, 1000).unwrap().len(), 150);
}

/// An age limit becomes a truncation at the first event still young
/// enough (events recorded two days ago, through the replication import,
/// under a one-day limit), so lifting the limit after the scavenge brings
/// none of them back.
#[test]
fn an_age_limit_is_scavenged_as_a_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), opts()).unwrap();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let old: Vec<RecordedEvent> = (0..50u64)
        .map(|v| RecordedEvent {
            stream_id: Arc::from("aged"),
            version: v,
            position: v,
            event_type: Arc::from("T"),
            data: annals::Bytes::from(vec![7u8; 1000]),
            metadata: annals::Bytes::new(),
            id: annals::Uuid::now_v7(),
            recorded_at: now_us - 2 * 86_400_000_000,
        })
        .collect();
    annals::replication::import(&store, &old).unwrap();
    filler(&store, "aged", 3);
    store
        .set_stream_limits(
            "aged",
            StreamLimits::default().max_age(std::time::Duration::from_secs(86_400)),
        )
        .unwrap();
    assert_eq!(store.reclaimable().unwrap().events_removed, 50);
    let report = store.scavenge().unwrap();
    assert_eq!(report.events_removed, 50, "{report:?}");
    store
        .set_stream_limits("aged", StreamLimits::default())
        .unwrap();
    let v: Vec<u64> = store
        .read_stream("aged", 0, 100)
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(v, [50, 51, 52]);
}

/// A read-only store in another place keeps reading through a scavenge
/// (its mappings are of the old files, which stay whole while mapped),
/// hides what the writer deleted once it refreshes, and a reopen of it
/// reads the rewritten files.
#[test]
fn a_read_only_follower_reads_through_a_scavenge() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), opts()).unwrap();
    filler(&store, "keep", 80);
    filler(&store, "gone", 80);
    let follower = Store::open_read_only(dir.path()).unwrap();
    let kept = follower.read_stream("keep", 0, 1000).unwrap();
    store.delete_stream("gone", ExpectedVersion::Any).unwrap();
    store.scavenge().unwrap();
    follower.refresh().unwrap();
    assert_eq!(follower.read_stream("keep", 0, 1000).unwrap(), kept);
    assert!(matches!(
        follower.read_stream("gone", 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
    drop(follower);
    let follower = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(follower.read_stream("keep", 0, 1000).unwrap(), kept);
    assert_eq!(follower.read_all(0, 10_000).unwrap().len(), 80);
}

/// A backup made before a scavenge holds the deleted events; the next
/// backup into the same place copies the rewritten segments whole (their
/// data is shorter now, so the backup's manifest no longer matches them),
/// and then the marker is in no file of the backup either.
#[test]
fn the_next_backup_after_a_scavenge_erases_there_too() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let backup = dest.path().join("copy");
    let marker = "BACKUPMARK-93e1";
    let store = Store::open_with(dir.path(), opts()).unwrap();
    for _ in 0..3 {
        filler(&store, "keep", 40);
        store
            .append(
                &format!("user-{marker}"),
                ExpectedVersion::Any,
                &[EventData::new("T", marker.as_bytes().to_vec())],
            )
            .unwrap();
    }
    store.backup(&backup).unwrap();
    assert!(!files_holding(&backup, marker.as_bytes()).is_empty());
    store
        .tombstone_stream(&format!("user-{marker}"), ExpectedVersion::Any)
        .unwrap();
    store.scavenge().unwrap();
    store.backup(&backup).unwrap();
    assert_eq!(
        files_holding(&backup, marker.as_bytes()),
        Vec::<String>::new()
    );
    let copy = Store::open_read_only(&backup).unwrap();
    assert_eq!(copy.read_stream("keep", 0, 1000).unwrap().len(), 120);
    assert!(matches!(
        copy.read_stream(&format!("user-{marker}"), 0, 10),
        Err(Error::StreamDeleted { .. })
    ));
}
