//! Index format 3 gives every part of a segment index its own checksum (a
//! block of offsets, of hash slots, of the id filter or of the id table; a
//! stream's entry with its name and positions), checked where a read first
//! uses it, so that a read never checksums more than it reads. The danger
//! of checking less at a time is trusting a part nobody checked: this test
//! damages one byte of each kind of part, in turn, and holds that the read
//! that uses it still returns exactly what the store holds (the index
//! rebuilt from its segment), on a read-only open that repairs nothing and
//! on a writable one, whose clean close writes the index whole again. An
//! index file of an older format version is rebuilt the same way, never
//! read as if it were the current one.

mod common;
mod fixture;

use std::path::Path;

use annals::{RecordedEvent, Store};
use common::Workload;
use fixture::*;

const SEGMENT_SIZE: u64 = 4096;
const BATCHES: usize = 60;

fn build(dir: &Path) {
    let store = Store::open_with(dir, small(SEGMENT_SIZE)).unwrap();
    for i in 0..BATCHES {
        Workload::FIXED.append_next(&store, i).unwrap();
    }
    store.close().unwrap();
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

/// One byte inside each part of the index file `bytes`, by FORMAT.md's
/// layout of version 3.
fn parts(bytes: &[u8]) -> Vec<(&'static str, usize)> {
    let events = u32_at(bytes, 12);
    let streams = u32_at(bytes, 48);
    let names_len = u32_at(bytes, 52);
    let slot_count = (2 * streams).max(2).next_power_of_two();
    let filter_len = 8 * (16 * events).div_ceil(64).max(1);
    let blocks = events.div_ceil(1024)
        + slot_count.div_ceil(512)
        + filter_len.div_ceil(4096)
        + events.div_ceil(256);
    let checksums = 64;
    let offsets = checksums + 4 * blocks;
    let positions = offsets + 4 * events;
    let entries = positions + 4 * events;
    let slots = entries + 28 * streams;
    let names = slots + 8 * slot_count;
    let filter = names + names_len;
    let ids = filter + filter_len;
    assert_eq!(ids + 20 * events, bytes.len(), "the layout of version 3");
    assert!(events >= 2 && streams >= 2, "a segment of several streams");
    vec![
        ("checksums", checksums + 1),
        ("offsets", offsets + 4 * (events - 1)),
        ("positions", positions + 1),
        ("entry", entries + 8),
        ("entry checksum", entries + 25),
        ("slots", slots),
        ("names", names),
        ("id filter", filter + filter_len / 2),
        ("ids", ids + 3),
    ]
}

/// Every event, every stream's events, and every event found by its id:
/// the reads that use each part of an index.
fn read_everything(store: &Store) -> (Vec<RecordedEvent>, Vec<Vec<RecordedEvent>>, usize) {
    let all = store.read_all(0, usize::MAX).unwrap();
    let streams = (0..Workload::FIXED.streams)
        .map(|s| {
            let name = Workload::FIXED.stream_name(s);
            store.read_stream(&name, 0, usize::MAX).unwrap()
        })
        .collect();
    let mut found = 0;
    for e in &all {
        let hit = store.find_event(e.id).unwrap();
        assert_eq!(hit.as_ref().map(|h| h.position), Some(e.position));
        found += 1;
    }
    (all, streams, found)
}

#[test]
fn a_damaged_part_of_each_kind_is_found_by_the_read_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let expected = {
        let store = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(Workload::FIXED.verify(&store).batches.len(), BATCHES);
        read_everything(&store)
    };
    let path = dir.path().join(format!("{:020}.idx", 0));
    let original = std::fs::read(&path).unwrap();
    for (part, at) in parts(&original) {
        let mut damaged = original.clone();
        damaged[at] ^= 0x24;
        std::fs::write(&path, &damaged).unwrap();
        assert!(
            annals::index_format::decode_index(&damaged).is_err(),
            "{part}: a whole check finds the flip at {at}"
        );

        // Read-only: nothing repaired, every read right.
        let store = Store::open_read_only(dir.path()).unwrap();
        assert!(store.recovery_report().unusable_indexes.is_empty());
        assert_eq!(read_everything(&store), expected, "{part}: read-only reads");
        drop(store);
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "{part}: read-only");

        // Writable: the same reads, and the clean close writes the index
        // rebuilt from its segment in place of the damaged one.
        let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
        assert_eq!(read_everything(&store), expected, "{part}: writable reads");
        store.close().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "{part}: the close repaired the index"
        );
    }
}

#[test]
fn an_index_file_of_an_older_version_is_rebuilt_not_read() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let path = dir.path().join(format!("{:020}.idx", 1));
    let original = std::fs::read(&path).unwrap();
    for version in [1u16, 2, 4, 0xffff] {
        let mut old = original.clone();
        old[8..10].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&old[..60]);
        old[60..64].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &old).unwrap();

        let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
        let report = &store.recovery_report().unusable_indexes;
        assert_eq!(report.len(), 1, "version {version}: {report:?}");
        assert_eq!(report[0].0, path);
        assert!(
            report[0].1.contains(&format!(
                "index format version {version}, where this build reads 3"
            )),
            "{}",
            report[0].1
        );
        let seen = Workload::FIXED.verify(&store);
        assert_eq!(
            seen.batches.len(),
            BATCHES,
            "version {version}: every append reads back"
        );
        store.close().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "rewritten in version 3"
        );
    }
}
