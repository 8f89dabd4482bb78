//! Guards how the command line reports damage: a flipped byte is reported
//! with its file and a byte offset inside the damaged frame and exit code
//! 5, by `verify`, `read`, `stats`, `dump` and `append` alike; a damaged
//! last frame (which a read-only open takes for a torn write) is still
//! reported by `verify`; and none of these commands changes a byte of the
//! store.

#![cfg(feature = "cli")]

mod cli_support;

use std::path::Path;

use cli_support::{
    annals, assert_code, one_event_frames, path, remove_indexes, reported_offset, snapshot,
};

const SEGMENT_0: &str = "00000000000000000000.seg";

/// A store with five one-event frames in segment 0, as a crash leaves it:
/// without the index a clean close writes for the active segment, so that
/// every open scans the segment.
fn five_frames(dir: &Path) -> Vec<(u64, u64)> {
    let frames = one_event_frames(dir, 5);
    remove_indexes(dir);
    frames
}

fn flip(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset as usize] ^= 0x20;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn a_flipped_byte_is_reported_with_file_and_offset_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    let frames = five_frames(tmp.path());
    assert_code(&annals(["verify", dir]), 0);

    // Damage the payload of the second frame; valid frames follow it, so
    // this is corruption, not a torn tail.
    let (start, len) = frames[1];
    let flipped = start + len - 12;
    flip(&tmp.path().join(SEGMENT_0), flipped);
    let before = snapshot(tmp.path());

    for args in [
        vec!["verify", dir],
        vec!["read", dir, "s"],
        vec!["read", dir, "--all"],
        vec!["stats", dir],
        vec!["dump", dir, "--segment", "0"],
        vec!["append", dir, "s", "--type", "T"],
    ] {
        let run = annals(&args);
        assert_code(&run, 5);
        assert!(run.stderr.contains(SEGMENT_0), "{args:?}: {}", run.stderr);
        let offset = reported_offset(&run.stderr)
            .unwrap_or_else(|| panic!("{args:?}: no offset in {}", run.stderr));
        assert!(
            (start..start + len).contains(&offset),
            "{args:?}: offset {offset} is outside the damaged frame {start}..{}",
            start + len
        );
        assert_eq!(snapshot(tmp.path()), before, "{args:?} changed the store");
    }

    let dump = annals(["dump", dir, "--segment", "0"]);
    assert!(
        dump.stdout
            .contains(&format!("offset {}: frame of", frames[0].0)),
        "dump shows the good frame before the bad one: {}",
        dump.stdout
    );
    assert!(dump.stderr.contains("dump stopped here"), "{}", dump.stderr);
}

#[test]
fn a_damaged_last_frame_passes_read_but_not_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    let frames = five_frames(tmp.path());
    let (start, len) = frames[4];
    flip(&tmp.path().join(SEGMENT_0), start + len - 12);
    let before = snapshot(tmp.path());

    // A read-only open ends the log before a bad last frame, as it would
    // before a write in progress: four events remain readable.
    let read = annals(["read", dir, "s", "--json"]);
    assert_code(&read, 0);
    assert_eq!(read.stdout.lines().count(), 4, "{}", read.stdout);

    let verify = annals(["verify", dir]);
    assert_code(&verify, 5);
    assert!(verify.stderr.contains(SEGMENT_0), "{}", verify.stderr);
    assert!(verify.stderr.contains("torn tail"), "{}", verify.stderr);
    let offset = reported_offset(&verify.stderr).expect("an offset");
    assert!((start..start + len).contains(&offset), "offset {offset}");

    assert_eq!(
        snapshot(tmp.path()),
        before,
        "read or verify changed the store"
    );
}

#[test]
fn after_a_clean_close_a_damaged_last_frame_is_damage_not_a_torn_tail() {
    // A clean close records the active segment's index, which proves its
    // last frame was whole: damage to it is reported by the read that
    // reaches it, with file and offset, instead of being dropped as a torn
    // write.
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    let frames = one_event_frames(tmp.path(), 5);
    let (start, len) = frames[4];
    flip(&tmp.path().join(SEGMENT_0), start + len - 12);
    let before = snapshot(tmp.path());

    let read = annals(["read", dir, "--all"]);
    assert_code(&read, 5);
    assert!(read.stderr.contains(SEGMENT_0), "{}", read.stderr);
    let offset = reported_offset(&read.stderr).expect("an offset");
    assert!((start..start + len).contains(&offset), "offset {offset}");

    let verify = annals(["verify", dir]);
    assert_code(&verify, 5);
    assert!(verify.stderr.contains(SEGMENT_0), "{}", verify.stderr);
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "read or verify changed the store"
    );
}
