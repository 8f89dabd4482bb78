//! `$all` retention (`Options::retain_bytes`, `Options::retain_age`): the
//! oldest sealed segments are dropped whole, reads start where the log now
//! starts, versions and lifecycle states survive the drop and reopens, a
//! crash at any step of a drop loses nothing that was kept, and damage to
//! what says where the log starts is refused.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use annals::{Error, EventData, ExpectedVersion, Options, RecordedEvent, Store, replication};
use common::sim_disk::SimDisk;
use common::{Rng, mix, seed};

const SEGMENT_SIZE: u64 = 8192;

fn data(stream: &str, v: u64) -> Vec<u8> {
    format!("{stream}-{v}-").repeat(100).into_bytes()
}

fn expected(v: u64) -> ExpectedVersion {
    match v {
        0 => ExpectedVersion::NoStream,
        v => ExpectedVersion::Exact(v - 1),
    }
}

fn segments(dir: &Path) -> Vec<String> {
    common::file_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .collect()
}

/// Every event `read_all` returns, page by page.
fn all_events(store: &Store) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = store.read_all(from, 100).unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        from = last.position + 1;
        out.extend(page);
    }
}

/// Checks what a store holds after retention: positions strictly
/// increasing from the first one held (gaps only where events were
/// removed or control records lie), each stream's events
/// contiguous versions up to its last, with the bytes written.
fn check_log(store: &Store, streams: &[&str], what: &str) -> Vec<RecordedEvent> {
    let all = all_events(store);
    for w in all.windows(2) {
        assert!(w[1].position > w[0].position, "{what}: positions");
    }
    if let Some(last) = all.last() {
        assert!(last.position < store.global_position(), "{what}");
    }
    for s in streams {
        let Some(last) = store.stream_version(s) else {
            continue;
        };
        let events = store.read_stream(s, 0, 100_000).unwrap();
        if let Some(first) = events.first() {
            assert_eq!(events.last().unwrap().version, last, "{what}: {s}");
            assert!(first.position >= all[0].position, "{what}: {s}");
            for (k, e) in events.iter().enumerate() {
                assert_eq!(e.version, first.version + k as u64, "{what}: {s}");
                assert_eq!(&e.data[..], &data(s, e.version)[..], "{what}: {s}");
            }
        }
    }
    all
}

#[test]
fn the_oldest_segments_go_and_what_is_left_reads_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_bytes(4 * SEGMENT_SIZE);
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    // `early` lives only in the first segments; `late` goes on throughout.
    for v in 0..5 {
        store
            .append(
                "early",
                expected(v),
                &[EventData::new("E", data("early", v))],
            )
            .unwrap();
    }
    store
        .tombstone_stream("doomed", ExpectedVersion::Any)
        .unwrap();
    store
        .delete_stream("early-deleted", ExpectedVersion::Any)
        .unwrap();
    for v in 0..200 {
        store
            .append("late", expected(v), &[EventData::new("L", data("late", v))])
            .unwrap();
    }
    let held = segments(dir.path());
    assert!(
        held.len() <= 6,
        "retention of 4 segments keeps at most 6 files: {held:?}"
    );
    assert!(!held.contains(&"00000000000000000000.seg".to_owned()));
    assert!(common::file_names(dir.path()).contains(&"base".to_owned()));

    let all = check_log(&store, &["early", "late"], "live");
    assert!(
        all[0].position > 7,
        "the log starts later: {}",
        all[0].position
    );
    let global = store.global_position();
    // A stream whose events all went still exists: its version stands,
    // it reads as empty, and it goes on from there.
    assert_eq!(store.stream_version("early"), Some(4));
    assert_eq!(store.read_stream("early", 0, 10).unwrap(), vec![]);
    let late = store.read_stream("late", 0, 1000).unwrap();
    assert!(late[0].version > 0);
    assert_eq!(late.last().unwrap().version, 199);
    let backward = store.read_all_backward(u64::MAX, 10_000).unwrap();
    assert_eq!(backward.len(), all.len());
    assert_eq!(backward.last(), all.first());

    let before: Vec<_> = ["early", "late"]
        .iter()
        .map(|s| {
            (
                store.stream_version(s),
                store.read_stream(s, 0, 1000).unwrap(),
            )
        })
        .collect();
    store.close().unwrap();

    for reopen in 0..2 {
        let store = Store::open_with(dir.path(), options.clone()).unwrap();
        let what = format!("reopen {reopen}");
        assert_eq!(check_log(&store, &["early", "late"], &what), all, "{what}");
        let after: Vec<_> = ["early", "late"]
            .iter()
            .map(|s| {
                (
                    store.stream_version(s),
                    store.read_stream(s, 0, 1000).unwrap(),
                )
            })
            .collect();
        assert_eq!(after, before, "{what}");
        assert_eq!(store.global_position(), global, "{what}");
        // The tombstone and the delete were in dropped segments; both hold.
        assert!(
            matches!(
                store.append(
                    "doomed",
                    ExpectedVersion::Any,
                    &[EventData::new("X", vec![])]
                ),
                Err(Error::StreamDeleted { .. })
            ),
            "{what}"
        );
        assert_eq!(store.stream_version("early-deleted"), None, "{what}");
        drop(store);
    }
    let store = Store::open_with(dir.path(), options).unwrap();
    // Versions are never reused.
    let r = store
        .append(
            "early",
            ExpectedVersion::Exact(4),
            &[EventData::new("E", data("early", 5))],
        )
        .unwrap();
    assert_eq!(r.first_version(), 5);
    assert!(matches!(
        store.append(
            "early",
            ExpectedVersion::NoStream,
            &[EventData::new("E", vec![])]
        ),
        Err(Error::WrongExpectedVersion { .. })
    ));
    // The read-only open sees the same log.
    store.close().unwrap();
    let ro = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.read_stream("early", 0, 10).unwrap().len(), 1);
    assert_eq!(ro.read_all(0, 1).unwrap()[0], all[0]);
}

/// The events of `rounds` appends to each of `streams` in turn (in a store
/// of small segments), the first `old` of them recorded two days ago, and
/// the time now: what a replica imports to test age retention without
/// waiting for anything to age.
fn aged_events(streams: &[&str], rounds: u64, old: usize) -> (Vec<RecordedEvent>, u64) {
    let origin = tempfile::tempdir().unwrap();
    let source =
        Store::open_with(origin.path(), Options::default().segment_size(SEGMENT_SIZE)).unwrap();
    for v in 0..rounds {
        for s in streams {
            source
                .append(s, expected(v), &[EventData::new("E", data(s, v))])
                .unwrap();
        }
    }
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let mut events = source.read_all(0, 10_000).unwrap();
    for e in events.iter_mut().take(old) {
        e.recorded_at = now_us - 2 * 86_400_000_000;
    }
    (events, now_us)
}

#[test]
fn retention_by_age_drops_segments_whose_newest_event_is_older() {
    // Events recorded two days ago, then some recorded now: imported with
    // their timestamps into a store that keeps one day.
    let (events, now_us) = aged_events(&["s"], 60, 40);
    let replica = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_age(Duration::from_secs(86_400));
    let store = Store::open_with(replica.path(), options.clone()).unwrap();
    replication::import(&store, &events).unwrap();
    store.close().unwrap();
    // The open applies retention: the segments holding only old events go,
    // the first one holding a recent event stays.
    let store = Store::open_with(replica.path(), options).unwrap();
    let all = check_log(&store, &["s"], "by age");
    assert!(all[0].position > 0, "nothing was dropped");
    assert!(
        all[0].position <= 40,
        "a recent event was dropped: {}",
        all[0].position
    );
    let old = all
        .iter()
        .filter(|e| e.recorded_at < now_us - 86_400_000_000)
        .count();
    // Only the segment holding both old and recent events keeps old ones:
    // fewer than a segment's worth (the dropped segments' average).
    let first_segment: u64 = segments(replica.path())[0]
        .trim_end_matches(".seg")
        .parse()
        .unwrap();
    assert!(first_segment >= 2, "dropped {first_segment} segments");
    let per_segment = all[0].position / first_segment;
    assert!(
        (old as u64) <= per_segment + 1,
        "{old} old events kept, segments hold about {per_segment}"
    );
    assert_eq!(store.stream_version("s"), Some(59));
}

#[test]
fn bad_retention_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        Options::default().retain_bytes(0),
        Options::default().retain_age(Duration::from_millis(10)),
    ] {
        assert!(matches!(
            Store::open_with(dir.path(), options),
            Err(Error::InvalidOptions { .. })
        ));
    }
    assert!(common::file_names(dir.path()).is_empty());
}

/// A store whose first segments were dropped, and a copy of one of them.
fn retained_store() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with(dir.path(), Options::default().segment_size(SEGMENT_SIZE)).unwrap();
    for v in 0..100 {
        store
            .append("s", expected(v), &[EventData::new("E", data("s", v))])
            .unwrap();
    }
    let first = std::fs::read(dir.path().join("00000000000000000000.seg")).unwrap();
    drop(store);
    let store = Store::open_with(
        dir.path(),
        Options::default().retain_bytes(3 * SEGMENT_SIZE),
    )
    .unwrap();
    drop(store);
    assert!(!dir.path().join("00000000000000000000.seg").exists());
    (dir, first)
}

#[test]
fn a_crash_between_the_base_and_the_removal_finishes_the_drop() {
    let (dir, first) = retained_store();
    let path = dir.path().join("00000000000000000000.seg");
    std::fs::write(&path, &first).unwrap();
    // A read-only open leaves the file alone and reads from the base on.
    let ro = Store::open_read_only(dir.path()).unwrap();
    let from = ro.read_all(0, 1).unwrap()[0].position;
    assert!(from > 0);
    drop(ro);
    assert!(path.exists());
    // A writable open removes it.
    let store = Store::open(dir.path()).unwrap();
    assert!(!path.exists());
    assert_eq!(store.read_all(0, 1).unwrap()[0].position, from);
    check_log(&store, &["s"], "after the finished drop");
}

#[test]
fn damage_to_where_the_log_starts_is_refused() {
    let (dir, _) = retained_store();
    let base = dir.path().join("base");
    let good = std::fs::read(&base).unwrap();
    let names = segments(dir.path());
    // A flipped byte anywhere in the base.
    for at in [0, 9, 30, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&base, &bad).unwrap();
        match Store::open(dir.path()) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, base, "flip at {at}"),
            other => panic!("flip at {at}: {:?}", other.map(|_| ())),
        }
    }
    std::fs::write(&base, &good).unwrap();
    // A missing segment after the base's first is still damage.
    let second = dir.path().join(&names[1]);
    let saved = std::fs::read(&second).unwrap();
    std::fs::remove_file(&second).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(Error::Corruption { file, .. }) if file == second
    ));
    std::fs::write(&second, &saved).unwrap();
    // The base's own first segment missing, too.
    let firstseg = dir.path().join(&names[0]);
    let saved = std::fs::read(&firstseg).unwrap();
    std::fs::remove_file(&firstseg).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(Error::Corruption { .. })
    ));
    std::fs::write(&firstseg, &saved).unwrap();
    // Without the base, the missing segment 0 is damage as it always was.
    std::fs::remove_file(&base).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(Error::Corruption { .. })
    ));
    std::fs::write(&base, &good).unwrap();
    let store = Store::open(dir.path()).unwrap();
    check_log(&store, &["s"], "restored");
}

#[test]
fn erasure_reaches_a_stream_that_retention_cut() {
    const MARKER: &str = "ERASE-RETAINED-77f1";
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_bytes(4 * SEGMENT_SIZE);
    let store = Store::open_with(dir.path(), options).unwrap();
    let stream = format!("user-{MARKER}");
    for v in 0..150 {
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                &[EventData::new("U", data(MARKER, v))],
            )
            .unwrap();
        store
            .append(
                "other",
                ExpectedVersion::Any,
                &[EventData::new("O", data("other", v))],
            )
            .unwrap();
    }
    // The base names the stream, which lost versions to retention.
    let base = std::fs::read(dir.path().join("base")).unwrap();
    assert!(base.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
    store.delete_stream(&stream, ExpectedVersion::Any).unwrap();
    store.scavenge().unwrap();
    store.close().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} holds the marker",
            path.display()
        );
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.read_stream(&stream, 0, 10),
        Err(Error::StreamNotFound { .. })
    ));
    assert_eq!(store.stream_version("other"), Some(149));
}

#[test]
fn a_backup_of_a_cut_log_opens_as_the_store() {
    let (dir, _) = retained_store();
    let store = Store::open(dir.path()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let copy = dest.path().join("copy");
    store.backup(&copy).unwrap();
    let restored = Store::open(&copy).unwrap();
    assert_eq!(all_events(&restored), all_events(&store));
    assert_eq!(restored.stream_version("s"), store.stream_version("s"));
}

const SWEEP_EVENTS: u64 = 45;

/// The sweep's workload: a tombstone, then one stream over enough
/// segments that retention drops several times. Returns the appends
/// acknowledged.
fn sweep_run(dir: &Path, disk: &Arc<SimDisk>) -> u64 {
    let options = common::sweep_options(disk, SEGMENT_SIZE).retain_bytes(3 * SEGMENT_SIZE);
    let Ok(store) = Store::open_with(dir, options) else {
        return 0;
    };
    if store
        .tombstone_stream("doomed", ExpectedVersion::Any)
        .is_err()
    {
        return 0;
    }
    let mut acked = 0;
    for v in 0..SWEEP_EVENTS {
        if store
            .append("s", expected(v), &[EventData::new("E", data("s", v))])
            .is_err()
        {
            break;
        }
        acked += 1;
    }
    acked
}

#[test]
fn power_cut_during_retention_loses_nothing_kept() {
    let seed = seed("retention_power_loss");
    let mut rng = Rng::new(mix(seed, 0x5245_5441));
    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    assert_eq!(sweep_run(dry.path(), &disk), SWEEP_EVENTS);
    assert!(
        dry.path().join("base").exists(),
        "the dry run dropped nothing"
    );
    let total = disk.ops();
    let mut images_checked = 0;
    for n in 0..=total {
        let run_dir = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(run_dir.path());
        disk.crash_after(n);
        let acked = sweep_run(run_dir.path(), &disk);
        for (i, image) in common::crash_images(&disk, run_dir.path(), &mut rng)
            .iter()
            .enumerate()
        {
            let target = tempfile::tempdir().unwrap();
            disk.materialize(run_dir.path(), target.path(), image);
            let what = format!("cut after op {n}, image {i} ({image:?}), {acked} acked");
            let store =
                Store::open_with(target.path(), Options::default().segment_size(SEGMENT_SIZE))
                    .unwrap_or_else(|e| panic!("{what}: open failed: {e}\n{}", disk.trace()));
            let last = store.stream_version("s");
            assert!(
                last.map_or(0, |v| v + 1) >= acked,
                "{what}: an acknowledged append is lost ({last:?})"
            );
            check_log(&store, &["s"], &what);
            if acked > 0 {
                assert!(
                    matches!(
                        store.append(
                            "doomed",
                            ExpectedVersion::Any,
                            &[EventData::new("X", vec![])]
                        ),
                        Err(Error::StreamDeleted { .. })
                    ),
                    "{what}: the tombstone is lost"
                );
            }
            // Nothing below the log's start is left after a writable open.
            let names = segments(target.path());
            let numbers: Vec<u64> = names
                .iter()
                .map(|n| n.trim_end_matches(".seg").parse().unwrap())
                .collect();
            for w in numbers.windows(2) {
                assert_eq!(w[1], w[0] + 1, "{what}: {names:?}");
            }
            // And it goes on: the next append takes the next version.
            let next = last.map_or(0, |v| v + 1);
            store
                .append("s", expected(next), &[EventData::new("E", data("s", next))])
                .unwrap_or_else(|e| panic!("{what}: append after: {e}"));
            images_checked += 1;
        }
    }
    eprintln!("retention power loss: {total} operations, {images_checked} images checked");
}

/// Appends `n` more events to `stream`, each with [`data`] of its version.
fn fill(store: &Store, stream: &str, n: u64) {
    for _ in 0..n {
        let v = store.stream_version(stream).map_or(0, |v| v + 1);
        store
            .append(stream, expected(v), &[EventData::new("E", data(stream, v))])
            .unwrap();
    }
}

#[test]
fn a_read_only_store_follows_a_writer_whose_retention_drops_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_bytes(3 * SEGMENT_SIZE);
    let store = Store::open_with(dir.path(), options).unwrap();
    fill(&store, "s", 5);
    let ro = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.global_position(), 5);
    // The writer drops segments the follower never reached, then more.
    for round in 0..40 {
        fill(&store, "s", 3 + round % 7);
        ro.refresh().unwrap();
        assert_eq!(
            ro.global_position(),
            store.global_position(),
            "round {round}"
        );
        assert_eq!(
            ro.read_all(0, 1).unwrap(),
            store.read_all(0, 1).unwrap(),
            "round {round}: both start where the log starts"
        );
    }
    assert!(store.stats().first_segment > 5);
    check_log(&ro, &["s"], "follower");
    // Its maps of the dropped files are gone: their blocks are freed.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    // (Only this test's store: the other tests run in this process too.)
    let mine = dir.path().display().to_string();
    let deleted = maps
        .lines()
        .filter(|l| l.contains(&mine) && l.contains(".seg (deleted)"))
        .count();
    assert!(deleted <= 2, "{deleted} removed segments still mapped");
}

#[test]
fn a_log_whose_every_sealed_segment_went_backs_up_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_bytes(1);
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    fill(&store, "s", 60);
    // The scavenge seals the active segment; retention then drops every
    // sealed one: the log's first segment is the new, empty active one.
    store.scavenge().unwrap();
    let stats = store.stats();
    assert_eq!(stats.first_position, store.global_position());
    let dest = tempfile::tempdir().unwrap();
    let copy = dest.path().join("copy");
    store.backup(&copy).unwrap();
    let restored = Store::open(&copy).unwrap();
    assert_eq!(restored.global_position(), store.global_position());
    assert_eq!(restored.stream_version("s"), Some(59));
    drop(store);
    // Reopens find the catalog right (or none), never stale.
    for round in 0..2 {
        let store = Store::open_with(dir.path(), options.clone()).unwrap();
        assert_eq!(
            store.recovery_report().unusable_indexes,
            vec![],
            "round {round}"
        );
        assert_eq!(store.stream_version("s"), Some(59), "round {round}");
        fill(&store, "t", 20);
    }
}

#[test]
fn age_retention_goes_on_past_a_segment_a_scavenge_left_ending_in_gaps() {
    // Two streams interleaved, the second deleted and scavenged away: the
    // first segments end in gap records.
    let (events, now_us) = aged_events(&["keep", "tmp"], 30, usize::MAX);
    let replica = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        replica.path(),
        Options::default().segment_size(SEGMENT_SIZE),
    )
    .unwrap();
    replication::import(&store, &events).unwrap();
    store.delete_stream("tmp", ExpectedVersion::Any).unwrap();
    store.scavenge().unwrap();
    drop(store);
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_age(Duration::from_secs(86_400));
    let store = Store::open_with(replica.path(), options).unwrap();
    fill(&store, "recent", 30);
    // Every old segment ends in a gap record; all but the one the delete
    // (recorded now) went into are dropped.
    let stats = store.stats();
    let old_kept = store
        .read_all(0, 1000)
        .unwrap()
        .iter()
        .filter(|e| e.recorded_at < now_us - 86_400_000_000)
        .count() as u64;
    let per_segment = stats.first_position / stats.first_segment.max(1);
    assert!(
        stats.first_segment >= 2 && old_kept <= per_segment,
        "old segments kept: the log starts at {} (segment {}), {old_kept} old events",
        stats.first_position,
        stats.first_segment
    );
    assert_eq!(store.stream_version("keep"), Some(29));
    check_log(&store, &["recent"], "after age retention");
}

#[test]
fn a_base_claiming_more_versions_than_the_log_holds_is_refused() {
    let (dir, _) = retained_store();
    let base_path = dir.path().join("base");
    let good = std::fs::read(&base_path).unwrap();
    // A base whose checksums pass, naming a stream at version u64::MAX.
    let name = b"victim";
    let mut body = Vec::new();
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    body.extend_from_slice(&1u64.to_le_bytes());
    body.extend_from_slice(&(name.len() as u32).to_le_bytes());
    body.extend_from_slice(name);
    let mut forged = good[..64].to_vec();
    forged[12..16].copy_from_slice(&1u32.to_le_bytes());
    forged[40..44].copy_from_slice(&0u32.to_le_bytes());
    forged[44..48].copy_from_slice(&(body.len() as u32).to_le_bytes());
    forged[48..52].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
    let crc = crc32fast::hash(&forged[..60]);
    forged[60..64].copy_from_slice(&crc.to_le_bytes());
    forged.extend_from_slice(&body);
    std::fs::write(&base_path, &forged).unwrap();
    match Store::open(dir.path()) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, base_path, "{reason}");
        }
        other => panic!("a forged base was taken: {:?}", other.map(|_| ())),
    }
    std::fs::write(&base_path, &good).unwrap();
    Store::open(dir.path()).unwrap();
}

#[test]
fn a_replica_of_a_log_that_retention_cut_reads_as_its_origin() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_bytes(3 * SEGMENT_SIZE);
    let origin = Store::open_with(a.path(), options).unwrap();
    for v in 0..60 {
        for s in ["s", "t"] {
            origin
                .append(s, expected(v), &[EventData::new("E", data(s, v))])
                .unwrap();
        }
    }
    assert!(origin.stats().first_position > 0, "nothing was dropped");
    // Copied from where the origin now starts: the replica never held the
    // streams' earlier versions.
    let replica = Store::open(b.path()).unwrap();
    let page = replication::read_log(&origin, 0, 10_000).unwrap();
    replication::import_log(&replica, None, &page.records, page.next_position).unwrap();
    let same = |replica: &Store, what: &str| {
        for s in ["s", "t"] {
            assert_eq!(
                replica.read_stream(s, 0, 1000).unwrap(),
                origin.read_stream(s, 0, 1000).unwrap(),
                "{what}: {s}"
            );
            assert_eq!(
                replica.read_stream_backward(s, u64::MAX, 1000).unwrap(),
                origin.read_stream_backward(s, u64::MAX, 1000).unwrap(),
                "{what}: {s} backward"
            );
            assert_eq!(
                replica.stream_version(s),
                origin.stream_version(s),
                "{what}"
            );
        }
        assert_eq!(all_events(replica), all_events(&origin), "{what}");
    };
    same(&replica, "live");
    // And after a reopen, which takes the streams from the catalog or the
    // index files.
    replica.close().unwrap();
    same(&Store::open(b.path()).unwrap(), "reopened");
}

/// A failed file operation at any point of the sweep's workload (a
/// segment's write or sync, the base's write, sync or rename, a removal,
/// a directory sync) never panics and loses no acknowledged append: a
/// failure in the log poisons the store (the workload stops at its
/// error), one in a drop is a warning and the drop is tried again at the
/// next seal; a reopen with real I/O finds every acknowledged event.
#[test]
fn a_failed_operation_during_retention_loses_nothing_acknowledged() {
    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    assert_eq!(sweep_run(dry.path(), &disk), SWEEP_EVENTS);
    let total = disk.ops();
    let mut failures_survived = 0;
    for n in 0..total {
        let dir = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(dir.path());
        disk.fail_at(n, 0);
        let acked = sweep_run(dir.path(), &disk);
        let what = format!("failure at op {n} ({:?}), {acked} acked", disk.failed());
        if disk.failed().is_some() && acked == SWEEP_EVENTS {
            failures_survived += 1;
        }
        let store = Store::open_with(dir.path(), Options::default().segment_size(SEGMENT_SIZE))
            .unwrap_or_else(|e| panic!("{what}: reopen failed: {e}\n{}", disk.trace()));
        let last = store.stream_version("s");
        assert!(
            last.map_or(0, |v| v + 1) >= acked,
            "{what}: an acknowledged append is lost ({last:?})"
        );
        check_log(&store, &["s"], &what);
    }
    // Failures in a drop's own files leave the store appending.
    assert!(failures_survived > 0, "no failure was survived");
}
