//! An open with a stream catalog defers the sealed segments it covers: it
//! opens none of their files, and each is opened, its header checked and
//! its index loaded on first use. The risk is trusting a segment nobody
//! checked: these tests damage a deferred segment (its header, a record,
//! the whole file gone) and hold that the open still refuses what it must
//! (a gap in the numbering), and that the first read that reaches the
//! damage fails with `Error::Corruption` naming the file, never returning
//! wrong data, while reads elsewhere go on.

mod common;
mod fixture;

use std::path::{Path, PathBuf};

use annals::{Error, Store};
use common::Workload;
use fixture::*;

const SEGMENT_SIZE: u64 = 4096;
const BATCHES: usize = 200;

fn build(dir: &Path) -> Vec<annals::RecordedEvent> {
    let store = Store::open_with(dir, small(SEGMENT_SIZE)).unwrap();
    for i in 0..BATCHES {
        Workload::FIXED.append_next(&store, i).unwrap();
    }
    let all = store.read_all(0, usize::MAX).unwrap();
    store.close().unwrap();
    assert!(segments(dir).len() >= 6, "the workload must seal several");
    all
}

fn segment(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.seg"))
}

/// The positions segment `n` holds, by reading through a sound store.
fn positions_in(all: &[annals::RecordedEvent], dir: &Path, n: u64) -> Vec<u64> {
    // Its index file's header gives them: first position at 32, event
    // count at 12 (FORMAT.md).
    let idx = std::fs::read(dir.join(format!("{n:020}.idx"))).unwrap();
    let first = u64::from_le_bytes(idx[32..40].try_into().unwrap());
    let count = u64::from(u32::from_le_bytes(idx[12..16].try_into().unwrap()));
    assert!(count > 0 && first + count <= all.len() as u64);
    (first..first + count).collect()
}

fn assert_corruption_naming(result: Result<Vec<annals::RecordedEvent>, Error>, file: &Path) {
    match result {
        Err(Error::Corruption { file: named, .. }) => assert_eq!(named, file),
        other => panic!(
            "expected Corruption naming {}, got {other:?}",
            file.display()
        ),
    }
}

#[test]
fn a_damaged_header_of_a_deferred_segment_fails_the_reads_that_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path());
    let held = positions_in(&all, dir.path(), 1);
    let file = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();

    for writable in [false, true] {
        let store = if writable {
            Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap()
        } else {
            Store::open_read_only(dir.path()).unwrap()
        };
        assert_corruption_naming(store.read_all(held[0], 1), &file);
        // Every read that reaches it fails the same way, every time.
        assert_corruption_naming(store.read_all(0, usize::MAX), &file);
        assert_corruption_naming(store.read_all(held[0], 1), &file);
        // Reads of other segments are unaffected.
        let after = *held.last().unwrap() + 1;
        let rest = store.read_all(after, usize::MAX).unwrap();
        assert_eq!(rest, all[after as usize..]);
        assert_eq!(store.read_all(0, 1).unwrap(), all[..1]);
        drop(store);
    }
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "nothing was modified");
}

#[test]
fn a_damaged_record_of_a_deferred_segment_is_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path());
    let held = positions_in(&all, dir.path(), 2);
    let file = segment(dir.path(), 2);
    let mut bytes = std::fs::read(&file).unwrap();
    // Inside the first record's data: past the segment header (64), the
    // frame header (24) and the record header (64).
    bytes[64 + 24 + 64 + 20] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();

    let store = Store::open_read_only(dir.path()).unwrap();
    assert_corruption_naming(store.read_all(held[0], 1), &file);
    let stream = &all[held[0] as usize].stream_id;
    let version = all[held[0] as usize].version;
    assert_corruption_naming(store.read_stream(stream, version, 1), &file);
    assert_eq!(store.read_all(0, 1).unwrap(), all[..1]);
}

#[test]
fn a_deferred_segment_removed_while_open_or_before_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path());
    let held = positions_in(&all, dir.path(), 3);
    let file = segment(dir.path(), 3);
    let saved = std::fs::read(&file).unwrap();

    // Gone after the open: the first read that needs it names it.
    let store = Store::open_read_only(dir.path()).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_corruption_naming(store.read_all(held[0], 1), &file);
    drop(store);

    // Gone before the open: the listing shows the gap, and open refuses.
    match Store::open_with(dir.path(), small(SEGMENT_SIZE)) {
        Err(Error::Corruption { file: named, .. }) => assert_eq!(named, file),
        other => panic!("expected Corruption naming the missing segment, got {other:?}"),
    }
    std::fs::write(&file, &saved).unwrap();
    let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
    assert_eq!(store.read_all(0, usize::MAX).unwrap(), all);
}

#[test]
fn a_deferred_segment_swapped_for_another_is_refused_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path());
    let held = positions_in(&all, dir.path(), 2);
    // Segment 3's bytes under segment 2's name: its header names 3.
    std::fs::copy(segment(dir.path(), 3), segment(dir.path(), 2)).unwrap();
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_corruption_naming(store.read_all(held[0], 1), &segment(dir.path(), 2));
}
