//! Guards `Store::backup`: a backup taken while another thread appends is a
//! store whose log is exactly a prefix of the origin's, whole batches
//! only; a second backup into the same place copies only what changed; a
//! backup of a read-only open holds what the writer acknowledged; a
//! backup that was opened and written to is copied again, not trusted; and
//! every bad destination is refused with a typed error, changing nothing.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use annals::{Error, EventData, ExpectedVersion, Options, Store};

const SEGMENT_SIZE: u64 = 256 << 10;

fn options() -> Options {
    Options::default().segment_size(SEGMENT_SIZE)
}

/// Batches of one to four events of a few hundred bytes, over five
/// streams: batch `i` is told apart by its stream and its data.
fn batch(i: u64) -> (String, Vec<EventData>) {
    let stream = format!("s-{}", i % 5);
    let events = (0..=(i % 4))
        .map(|j| {
            EventData::new(
                "Tick",
                format!("{i}/{j}/{}", "x".repeat((i % 300) as usize)).into_bytes(),
            )
        })
        .collect();
    (stream, events)
}

/// Every event of `store`, in position order.
fn all(store: &Store) -> Vec<annals::RecordedEvent> {
    let mut out = Vec::new();
    loop {
        let page = store.read_all(out.len() as u64, 10_000).unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Opens the backup at `dest` and checks that it is the first
/// `report.events` events of `origin`, event by event.
fn assert_prefix(origin: &Store, dest: &Path, report: &annals::BackupReport) {
    let copy = Store::open_read_only(dest).unwrap();
    assert_eq!(copy.global_position(), report.events);
    let got = all(&copy);
    let want = origin.read_all(0, got.len()).unwrap();
    assert_eq!(got.len() as u64, report.events);
    assert_eq!(got, want);
    // Whole batches only: the last event is the last of its batch (the
    // data of event `j` of batch `i` starts with `i/j/`).
    if let Some(last) = got.last().filter(|e| &*e.event_type == "Tick") {
        let text = std::str::from_utf8(&last.data).unwrap();
        let mut parts = text.split('/');
        let i: u64 = parts.next().unwrap().parse().unwrap();
        let j: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(j + 1, batch(i).1.len(), "the backup ends inside a batch");
    }
}

#[test]
fn backups_during_appends_are_prefixes_and_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    let origin = Arc::new(Store::open_with(dir.path(), options()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (origin, stop) = (Arc::clone(&origin), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let (stream, events) = batch(i);
                origin
                    .append(&stream, ExpectedVersion::Any, &events)
                    .unwrap();
                i += 1;
            }
            i
        })
    };
    let mut reports = Vec::new();
    for round in 1..=6u64 {
        // Let the writer move on by a few segments' worth between rounds.
        while origin.global_position() < round * 1_500 {
            std::thread::yield_now();
        }
        let report = origin.backup(&dest).unwrap();
        assert_prefix(&origin, &dest, &report);
        reports.push(report);
    }
    stop.store(true, Ordering::Release);
    let batches = writer.join().unwrap();
    assert!(batches > 0);
    // The later rounds found earlier segments there, unchanged.
    let last = reports.last().unwrap();
    assert!(last.segments > 3, "{last:?}");
    assert!(
        last.segments_unchanged >= reports[0].segments - 1,
        "{reports:?}"
    );
    let total: u64 = last.segments * SEGMENT_SIZE;
    assert!(last.bytes_copied < total / 2, "{reports:?}");

    // Once appends stop, a backup is the whole store, and the next one
    // copies nothing.
    let full = origin.backup(&dest).unwrap();
    assert_eq!(full.events, origin.global_position());
    assert_prefix(&origin, &dest, &full);
    let again = origin.backup(&dest).unwrap();
    assert_eq!(again.bytes_copied, 0, "{again:?}");
    assert_eq!(again.index_bytes, 0, "{again:?}");
    assert_eq!(again.segments_unchanged, again.segments);

    // The backup opens for writing and takes appends, as a store.
    let copy = Store::open_with(&dest, options()).unwrap();
    assert_eq!(copy.global_position(), full.events);
    assert!(
        copy.recovery_report().unusable_indexes.is_empty(),
        "{:?}",
        copy.recovery_report()
    );
    copy.append(
        "after",
        ExpectedVersion::NoStream,
        &[EventData::new("T", vec![1])],
    )
    .unwrap();
    drop(copy);
    // It was written to: the next backup copies what changed again, and
    // the backup is the origin once more.
    let repaired = origin.backup(&dest).unwrap();
    assert!(repaired.bytes_copied > 0, "{repaired:?}");
    assert_prefix(&origin, &dest, &repaired);
    assert_eq!(repaired.events, origin.global_position());
}

#[test]
fn an_extended_active_segment_copies_only_the_new_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    let origin = Store::open_with(dir.path(), options()).unwrap();
    for i in 0..10 {
        let (s, e) = batch(i);
        origin.append(&s, ExpectedVersion::Any, &e).unwrap();
    }
    let first = origin.backup(&dest).unwrap();
    assert_eq!(first.segments, 1);
    let before = origin.stats().bytes_used;
    origin
        .append(
            "one-more",
            ExpectedVersion::NoStream,
            &[EventData::new("T", vec![7; 100])],
        )
        .unwrap();
    let grown = origin.stats().bytes_used - before;
    let second = origin.backup(&dest).unwrap();
    assert_eq!((second.segments_extended, second.bytes_copied), (1, grown));
    assert_prefix(&origin, &dest, &second);
}

#[test]
fn a_read_only_open_backs_up_what_the_writer_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    let writer = Store::open_with(dir.path(), options()).unwrap();
    for i in 0..2_000 {
        let (s, e) = batch(i);
        writer.append(&s, ExpectedVersion::Any, &e).unwrap();
    }
    let reader = Store::open_read_only(dir.path()).unwrap();
    // Appended after the read-only open: the backup refreshes first.
    for i in 2_000..2_100 {
        let (s, e) = batch(i);
        writer.append(&s, ExpectedVersion::Any, &e).unwrap();
    }
    let report = reader.backup(&dest).unwrap();
    assert_eq!(report.events, writer.global_position());
    assert!(report.segments > 1);
    assert_prefix(&writer, &dest, &report);
    // A read-only open of a backup backs up too, into a directory whose
    // parents are missing as well.
    let copy = Store::open_read_only(&dest).unwrap();
    let second = copy.backup(backups.path().join("c/d/e")).unwrap();
    assert_eq!(second.events, report.events);
}

#[test]
fn bad_destinations_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options()).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[EventData::new("T", vec![1])])
        .unwrap();
    let listing = |p: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let refused = |dest: &Path| match store.backup(dest) {
        Err(Error::BackupDestination { path, reason }) => {
            assert_eq!(path, dest);
            reason
        }
        other => panic!("{dest:?}: {other:?}"),
    };

    // A file.
    let file = other.path().join("file");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(refused(&file).contains("file"));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    // A directory holding something else.
    let busy = other.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    assert!(refused(&busy).contains("notes.txt"));
    assert_eq!(listing(&busy), ["notes.txt"]);

    // Another store, which is not a backup.
    let another = other.path().join("another");
    drop(Store::open_with(&another, options()).unwrap());
    let before = listing(&another);
    assert!(refused(&another).contains("not a backup"));
    assert_eq!(listing(&another), before);

    // A backup of another store.
    let theirs = other.path().join("theirs");
    let another_store = Store::open_with(other.path().join("s2"), options()).unwrap();
    another_store.backup(&theirs).unwrap();
    let before = listing(&theirs);
    assert!(refused(&theirs).contains("another store"));
    assert_eq!(listing(&theirs), before);

    // The store itself, a place inside it, a directory holding it.
    let store_files = listing(dir.path());
    assert!(refused(dir.path()).contains("itself"));
    assert!(refused(&dir.path().join("sub")).contains("inside"));
    assert!(refused(dir.path().parent().unwrap()).contains("holds the store"));
    assert_eq!(listing(dir.path()), store_files);

    // And it still backs up into a good place.
    let good = other.path().join("good");
    assert_eq!(store.backup(&good).unwrap().events, 1);
    // A destination that another process has open for writing is locked.
    let open = Store::open(&good).unwrap();
    assert!(matches!(store.backup(&good), Err(Error::Locked { .. })));
    drop(open);
}

#[test]
fn a_diverged_copy_of_the_store_is_not_taken_for_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    let restored = backups.path().join("restored");
    let event = |byte: u8| [EventData::new("T", vec![byte; 200])];
    let origin = Store::open_with(dir.path(), options()).unwrap();
    origin.append("s", ExpectedVersion::Any, &event(1)).unwrap();
    // A restore of this backup is another log with the same store id.
    origin.backup(&restored).unwrap();
    origin.append("s", ExpectedVersion::Any, &event(2)).unwrap();
    origin.backup(&dest).unwrap();
    let other = Store::open_with(&restored, options()).unwrap();
    other.append("s", ExpectedVersion::Any, &event(3)).unwrap();
    // Same store id, same lengths, different last event.
    let report = other.backup(&dest).unwrap();
    assert_eq!(report.segments_unchanged, 0, "{report:?}");
    assert_prefix(&other, &dest, &report);
    let copy = Store::open_read_only(&dest).unwrap();
    assert_eq!(&copy.read_all(1, 1).unwrap()[0].data[..], &[3; 200][..]);
}

/// A backup can be taken between a seal and the first frame of the next
/// segment (the writer seals, then writes): its last segment is then one
/// the origin has sealed. Recovery refuses a sealed index file for the last
/// segment (with a warning; it scans the segment instead), so the backup
/// leaves that index, and the catalog that names it, out. The state is
/// built here from a backup of three segments by removing the last one:
/// with the now-last segment's index and the catalog still there the open
/// warns, and without them, as the backup writes such a state, it does
/// not; either way the store opens and takes appends.
#[test]
fn a_backup_ending_with_a_sealed_segment_opens_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let origin = Store::open_with(dir.path(), options()).unwrap();
    let mut i = 0;
    while origin.stats().segments < 3 {
        let (s, e) = batch(i);
        origin.append(&s, ExpectedVersion::Any, &e).unwrap();
        i += 1;
    }
    for (k, leave_index) in [(0, true), (1, false)] {
        let dest = backups.path().join(format!("b{k}"));
        origin.backup(&dest).unwrap();
        std::fs::remove_file(dest.join("00000000000000000002.seg")).unwrap();
        std::fs::remove_file(dest.join(annals::backup::MANIFEST)).unwrap();
        if !leave_index {
            std::fs::remove_file(dest.join("00000000000000000001.idx")).unwrap();
            // The catalog is there once the seal's index is on disk (its
            // background write may not have finished).
            let _ = std::fs::remove_file(dest.join("catalog"));
        }
        let copy = Store::open_with(&dest, options()).unwrap();
        let warned = !copy.recovery_report().unusable_indexes.is_empty();
        assert_eq!(warned, leave_index, "{:?}", copy.recovery_report());
        let n = copy.global_position();
        copy.append(
            "after",
            ExpectedVersion::NoStream,
            &[EventData::new("T", vec![1])],
        )
        .unwrap();
        drop(copy);
        let again = Store::open_with(&dest, options()).unwrap();
        assert_eq!(again.global_position(), n + 1);
    }
}
