//! One test per row of the recovery table in `src/log/recovery/mod.rs`: what
//! `open` does with each state a data directory can be found in after a
//! crash or after damage. The rule they guard: a torn tail of the active
//! segment is truncated, a stranger in the directory is refused with
//! `Error::NotAStore`, anything else is refused with `Error::Corruption`
//! naming the file and offset, and a refused open modifies nothing.

mod common;
mod fixture;

use std::path::{Path, PathBuf};

use annals::format::{
    self, FRAME_HEADER_LEN, FrameHeader, SEGMENT_HEADER_LEN, SegmentHeader, encode_frame_header,
    encode_segment_header, seal_record,
};
use annals::{Error, ExpectedVersion, Store, TornTail};
use common::Workload;
use fixture::*;

/// The events these tests append.
const W: Workload = Workload::FIXED;

/// Appends `batches` batches of one to three events to four streams and
/// returns what each position should hold.
fn fill(store: &Store, batches: u64) -> Vec<(String, u64)> {
    let mut expected = Vec::new();
    for b in 0..batches {
        let stream = format!("s{}", b % 4);
        let first = store.stream_version(&stream).map_or(0, |v| v + 1);
        let n = 1 + b % 3;
        let events: Vec<_> = (first..first + n).map(|i| W.event(&stream, i)).collect();
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .unwrap();
        expected.extend((first..first + n).map(|i| (stream.clone(), i)));
    }
    expected
}

/// Asserts that the store holds exactly `expected`, in order.
fn assert_holds(store: &Store, expected: &[(String, u64)]) {
    let all = store.read_all(0, usize::MAX).unwrap();
    assert_eq!(all.len(), expected.len(), "event count");
    for (e, (stream, i)) in all.iter().zip(expected) {
        W.assert_event(e, stream, *i);
    }
    assert_eq!(store.global_position(), expected.len() as u64);
}

/// Builds a store of `batches` batches in `dir` and leaves it as a crash
/// would after the last append: without the clean close's index of the
/// active segment, so that every open scans that segment.
fn build(dir: &Path, segment_size: u64, batches: u64) -> Vec<(String, u64)> {
    let store = Store::open_with(dir, small(segment_size)).unwrap();
    let expected = fill(&store, batches);
    store.close().unwrap();
    remove_clean_close_index(dir);
    expected
}

/// Opens `dir`, expecting `Corruption` in `file` at an offset in `range`,
/// and checks that nothing in the directory changed.
fn assert_refused(dir: &Path, file: &Path, range: std::ops::Range<u64>, segment_size: u64) {
    let before = snapshot(dir);
    match Store::open_with(dir, small(segment_size)) {
        Err(Error::Corruption {
            file: f, offset, ..
        }) => {
            assert_eq!(f, file, "wrong file named");
            assert!(range.contains(&offset), "offset {offset} not in {range:?}");
        }
        other => panic!("expected corruption in {}, got {other:?}", file.display()),
    }
    assert_eq!(
        snapshot(dir),
        before,
        "a refused open modified the directory"
    );
}

#[test]
fn clean_end() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path(), 64 << 10, 10);
    let before = snapshot(dir.path());
    let store = Store::open_with(dir.path(), small(64 << 10)).unwrap();
    assert_holds(&store, &expected);
    assert_eq!(snapshot(dir.path()), before, "a clean open modified files");
    // Appends continue where the log ended.
    let r = store
        .append("s0", ExpectedVersion::Any, &[W.event("s0", 99)])
        .unwrap();
    assert_eq!(r.first_position(), expected.len() as u64);
}

#[test]
fn zero_tail() {
    let dir = tempfile::tempdir().unwrap();
    Store::open_with(dir.path(), small(8192))
        .unwrap()
        .close()
        .unwrap();
    let before = snapshot(dir.path());
    let store = Store::open_with(dir.path(), small(8192)).unwrap();
    assert_eq!(store.global_position(), 0);
    assert!(store.read_all(0, 10).unwrap().is_empty());
    assert_eq!(snapshot(dir.path()), before);
}

/// A torn last frame whose header still passes its checksum but names
/// positions other than where the log ends claims nothing in the report:
/// those positions were never the log's, and naming them would send a
/// reader looking for events that cannot exist.
#[test]
fn a_torn_frame_whose_header_names_other_positions_claims_none() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path(), 64 << 10, 8);
    let seg = segments(dir.path()).remove(0);
    let original = std::fs::read(&seg).unwrap();
    let salt = salt_of(&original);
    let last = frames(&original).pop().unwrap();
    let kept = &expected[..last.first_position as usize];
    for (shift, claims) in [(0u64, true), (1, false), (1000, false)] {
        // The header rewritten with a valid checksum, the body cut after it.
        let mut torn = tear(&original, &last, last.start + FRAME_HEADER_LEN, false);
        let header = FrameHeader {
            frame_len: (last.end - last.start) as u32,
            first_position: last.first_position + shift,
            event_count: (expected.len() as u64 - last.first_position) as u32,
        };
        encode_frame_header(&mut torn[last.start..], salt, &header);
        std::fs::write(&seg, &torn).unwrap();
        let store = Store::open_with(dir.path(), small(64 << 10)).unwrap();
        assert_holds(&store, kept);
        let report = store.recovery_report().torn_tail.clone().unwrap();
        assert_eq!(report.offset, last.start as u64);
        let claimed = last.first_position..expected.len() as u64;
        assert_eq!(
            report.claimed_positions,
            claims.then_some(claimed),
            "header shifted by {shift}"
        );
        drop(store);
        std::fs::write(&seg, &original).unwrap();
    }
}

/// Rebuilds `bytes` as if the write of the last frame had been cut at
/// `cut`: what follows is zeros, or garbage when `garbage` is set.
fn tear(bytes: &[u8], frame: &FrameAt, cut: usize, garbage: bool) -> Vec<u8> {
    let mut torn = bytes.to_vec();
    let mut x = 0x9e37_79b9_u32 ^ cut as u32;
    for b in &mut torn[cut..frame.end] {
        *b = if garbage {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as u8) | 1
        } else {
            0
        };
    }
    torn
}

#[test]
fn torn_tail_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path(), 64 << 10, 8);
    let seg = segments(dir.path()).remove(0);
    let original = std::fs::read(&seg).unwrap();
    let last = frames(&original).pop().unwrap();
    let kept = &expected[..last.first_position as usize];
    for garbage in [false, true] {
        for cut in last.start..last.end {
            let torn = tear(&original, &last, cut, garbage);
            std::fs::write(&seg, &torn).unwrap();
            // A cut at the frame's start with zeros after it leaves no trace
            // of the write: the log simply ends there, and nothing is torn.
            let landed = torn[last.start..last.end].iter().any(|b| *b != 0);
            if torn != original && landed {
                // Asked to refuse, open names the tail and changes nothing;
                // a read-only open reports the same tail, unrepaired.
                let before = snapshot(dir.path());
                let refused =
                    Store::open_with(dir.path(), small(64 << 10).on_torn_tail(TornTail::Refuse));
                assert!(
                    matches!(&refused, Err(Error::TornTail { file, offset, .. })
                        if *file == seg && *offset == last.start as u64),
                    "cut at {cut}: {refused:?}"
                );
                assert_eq!(
                    snapshot(dir.path()),
                    before,
                    "a refused open modified files"
                );
                let reader = Store::open_read_only(dir.path()).unwrap();
                let report = reader.recovery_report().torn_tail.clone().unwrap();
                assert!(!report.zeroed);
                assert_eq!(snapshot(dir.path()), before);
            }
            let store = Store::open_with(dir.path(), small(64 << 10))
                .unwrap_or_else(|e| panic!("cut at {cut} (garbage {garbage}): {e}"));
            if torn == original {
                // The cut fell in the frame's zero padding: nothing was torn.
                assert_holds(&store, &expected);
                assert!(store.recovery_report().is_clean());
                continue;
            }
            assert_holds(&store, kept);
            if !landed {
                assert!(store.recovery_report().is_clean());
                continue;
            }
            // The report names the tail, and the positions its frame claimed
            // whenever the frame's header survived the cut.
            let report = store.recovery_report().torn_tail.clone().unwrap();
            assert_eq!(
                (&report.file, report.offset, report.zeroed),
                (&seg, last.start as u64, true)
            );
            assert!(report.bytes > 0 && report.bytes <= (last.end - last.start) as u64);
            let claimed = last.first_position..expected.len() as u64;
            if cut >= last.start + FRAME_HEADER_LEN {
                assert_eq!(report.claimed_positions, Some(claimed), "cut at {cut}");
            } else {
                assert!(report.claimed_positions.is_none_or(|c| c == claimed));
            }
            drop(store);
            let repaired = std::fs::read(&seg).unwrap();
            assert_eq!(repaired.len(), original.len(), "the file must never shrink");
            assert_eq!(&repaired[..last.start], &original[..last.start]);
            assert!(
                repaired[last.start..].iter().all(|b| *b == 0),
                "torn bytes left behind at cut {cut}"
            );
        }
    }
    // The repaired store takes appends again where the torn batch was.
    std::fs::write(&seg, tear(&original, &last, last.start + 9, true)).unwrap();
    let store = Store::open_with(dir.path(), small(64 << 10)).unwrap();
    let r = store
        .append("new", ExpectedVersion::NoStream, &[W.event("new", 0)])
        .unwrap();
    assert_eq!(r.first_position(), last.first_position);
}

#[test]
fn bad_record_followed_by_valid_data() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 64 << 10, 6);
    let seg = segments(dir.path()).remove(0);
    let original = std::fs::read(&seg).unwrap();
    let all = frames(&original);
    // Every byte of every frame that has a valid frame after it.
    for frame in &all[..all.len() - 1] {
        for i in frame.start..frame.end {
            let mut damaged = original.clone();
            damaged[i] ^= 0x20;
            std::fs::write(&seg, &damaged).unwrap();
            assert_refused(
                dir.path(),
                &seg,
                frame.start as u64..frame.end as u64,
                64 << 10,
            );
        }
    }
}

#[test]
fn damage_in_sealed_segment() {
    // Without its index file, a sealed segment is scanned at open, and
    // damage to any byte of it (header, frames and the zero tail) is
    // refused there.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 4096, 60);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "the workload must rotate");
    let sealed = &segs[0];
    let index_file = sealed.with_extension("idx");
    assert!(index_file.exists(), "a sealed segment has an index file");
    let index = std::fs::read(&index_file).unwrap();
    std::fs::remove_file(&index_file).unwrap();
    let original = std::fs::read(sealed).unwrap();
    for i in 0..original.len() {
        let mut damaged = original.clone();
        damaged[i] ^= 0x01;
        std::fs::write(sealed, &damaged).unwrap();
        assert_refused(dir.path(), sealed, 0..original.len() as u64, 4096);
    }
    std::fs::write(sealed, &original).unwrap();
    std::fs::write(&index_file, &index).unwrap();
    Store::open_with(dir.path(), small(4096)).unwrap();
}

#[test]
fn damage_in_sealed_segment_with_its_index() {
    // With its index file, a sealed segment is not read at open: its
    // header and the end of its last frame are checked there, and every
    // record is checked when it is read. So damage anywhere in the frames
    // is refused by the open or by the read that reaches it, naming the
    // file, and never returns wrong data. Damage to a frame header (which
    // reads do not need) or past the frames, where no read looks, is found
    // by `annals verify`. With a stream catalog the open defers the sealed
    // segment whole: its index is loaded, with the same checks, where the
    // first read needs it, and damage the index's checks find (bytes after
    // the last frame) makes that read rebuild the index from the segment,
    // whose walk refuses it: the read fails, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path(), 4096, 60);
    let sealed = segments(dir.path()).remove(0);
    let original = std::fs::read(&sealed).unwrap();
    let all = frames(&original);
    let in_records = |i: usize| {
        all.iter()
            .any(|f| (f.start + FRAME_HEADER_LEN..f.end).contains(&i))
    };
    let mut refused_at_open = 0;
    for i in 0..original.len() {
        let mut damaged = original.clone();
        damaged[i] ^= 0x01;
        std::fs::write(&sealed, &damaged).unwrap();
        let store = match Store::open_with(dir.path(), small(4096)) {
            Err(Error::Corruption { file, .. }) => {
                assert_eq!(file, sealed, "flip at {i}: wrong file named");
                refused_at_open += 1;
                continue;
            }
            Err(e) => panic!("flip at {i}: {e:?}"),
            Ok(store) => store,
        };
        match store.read_all(0, usize::MAX) {
            Err(Error::Corruption { file, .. }) => {
                assert_eq!(file, sealed, "flip at {i}: wrong file named");
            }
            Err(e) => panic!("flip at {i}: {e:?}"),
            Ok(_) => {
                assert!(!in_records(i), "flip at {i} in a record went unseen");
                assert_holds(&store, &expected);
            }
        }
    }
    assert!(refused_at_open >= SEGMENT_HEADER_LEN, "header flips open");
    std::fs::write(&sealed, &original).unwrap();
    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    assert_holds(&store, &expected);
}

#[test]
fn inconsistent_positions() {
    // A frame whose checksums pass but whose positions skip one: not a torn
    // write but a broken log, refused wherever it lies.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 64 << 10, 4);
    let seg = segments(dir.path()).remove(0);
    let original = std::fs::read(&seg).unwrap();
    let salt = salt_of(&original);
    let all = frames(&original);
    for target in [1, all.len() - 1] {
        let frame = &all[target];
        let mut bytes = original.clone();
        for (k, &r) in frame.records.iter().enumerate() {
            let view = format::decode_record(&original[r..], salt).unwrap();
            let position = frame.first_position + 1 + k as u64;
            seal_record(&mut bytes[r..], salt, position, view.version);
        }
        let header = FrameHeader {
            frame_len: (frame.end - frame.start) as u32,
            first_position: frame.first_position + 1,
            event_count: frame.records.len() as u32,
        };
        encode_frame_header(&mut bytes[frame.start..], salt, &header);
        std::fs::write(&seg, &bytes).unwrap();
        assert_refused(
            dir.path(),
            &seg,
            frame.start as u64..frame.end as u64,
            64 << 10,
        );
    }
}

fn header_of(path: &Path) -> SegmentHeader {
    format::decode_segment_header(&std::fs::read(path).unwrap()).unwrap()
}

/// Writes an empty segment (valid header, zero body) at `path`.
fn write_empty_segment(path: &Path, header: SegmentHeader) {
    let mut bytes = vec![0u8; header.segment_size as usize];
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&encode_segment_header(&header));
    std::fs::write(path, bytes).unwrap();
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.seg"))
}

#[test]
fn bad_or_foreign_header() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 4096, 40);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    let saved = snapshot(dir.path());

    // A segment from another store, under a valid name.
    let other = tempfile::tempdir().unwrap();
    build(other.path(), 4096, 40);
    std::fs::copy(&segments(other.path())[1], &segs[1]).unwrap();
    assert_refused(dir.path(), &segs[1], 0..64, 4096);
    restore(&saved);

    // A segment whose header names another number.
    std::fs::copy(&segs[1], &segs[2]).unwrap();
    assert_refused(dir.path(), &segs[2], 0..64, 4096);
    restore(&saved);

    // A file longer than its header says.
    let mut longer = saved[&segs[1]].bytes.clone();
    longer.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&segs[1], longer).unwrap();
    assert_refused(dir.path(), &segs[1], 0..u64::MAX, 4096);
    restore(&saved);

    // A format version this build does not read, with a valid checksum.
    let mut bytes = saved[&segs[0]].bytes.clone();
    bytes[8..12].copy_from_slice(&(annals::format::FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segs[0], bytes).unwrap();
    assert_refused(dir.path(), &segs[0], 0..64, 4096);
    restore(&saved);

    // A segment file too short to hold a header.
    std::fs::write(&segs[2], [0u8; 10]).unwrap();
    assert_refused(dir.path(), &segs[2], 0..64, 4096);
    restore(&saved);

    Store::open_with(dir.path(), small(4096)).unwrap();
}

#[test]
fn missing_segment() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 4096, 40);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    let saved = snapshot(dir.path());
    for missing in [1, 0] {
        std::fs::remove_file(&segs[missing]).unwrap();
        assert_refused(dir.path(), &segs[missing], 0..1, 4096);
        restore(&saved);
    }
}

#[test]
fn stray_file() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 4096, 10);
    // A stranger makes the directory not a store, which is not damage.
    let stray = dir.path().join("notes.txt");
    std::fs::write(&stray, b"hello").unwrap();
    assert_not_a_store(dir.path(), "notes.txt");
    std::fs::remove_file(&stray).unwrap();

    let short_name = dir.path().join("1.seg");
    std::fs::write(&short_name, b"").unwrap();
    assert_not_a_store(dir.path(), "1.seg");
    std::fs::remove_file(&short_name).unwrap();

    // A segment of the wrong kind is damage to the store.

    let next = seg_path(dir.path(), segments(dir.path()).len() as u64);
    std::fs::create_dir(&next).unwrap();
    assert_refused(dir.path(), &next, 0..1, 4096);
    std::fs::remove_dir(&next).unwrap();

    Store::open_with(dir.path(), small(4096)).unwrap();
}

/// Opens `dir`, expecting `NotAStore` for `dir` naming the entry `name`,
/// and checks that nothing in the directory changed.
fn assert_not_a_store(dir: &Path, name: &str) {
    let before = snapshot(dir);
    match Store::open_with(dir, small(4096)) {
        Err(Error::NotAStore { path, reason }) => {
            assert_eq!(path, dir, "wrong directory named");
            assert!(reason.contains(name), "the entry is not named: {reason}");
        }
        other => panic!("expected NotAStore naming {name}, got {other:?}"),
    }
    assert_eq!(
        snapshot(dir),
        before,
        "a refused open modified the directory"
    );
}

#[test]
fn interrupted_preparation() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path(), 4096, 10);
    let n = segments(dir.path()).len() as u64;
    let temp = dir.path().join(format!("{n:020}.seg.tmp"));
    std::fs::write(&temp, vec![0xAB; 100]).unwrap();
    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    assert_holds(&store, &expected);
    assert!(
        !temp.exists(),
        "the interrupted preparation was not removed"
    );
    let report = store.recovery_report();
    assert_eq!(report.removed_preparations, vec![temp]);
    assert!(report.torn_tail.is_none() && !report.is_clean());
}

#[test]
fn extra_empty_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Enough to pass half of segment 0, when the writer prepares segment 1.
    let expected = build(dir.path(), 4096, 10);
    let header = header_of(&segments(dir.path())[0]);
    let prepared = |n: u64| SegmentHeader {
        segment_number: n,
        ..header
    };

    // One empty segment after the active one is a segment prepared ahead
    // (the writer made one in the background once segment 0 was half full).
    assert_eq!(segments(dir.path()).len(), 2);
    let seg1 = std::fs::read(seg_path(dir.path(), 1)).unwrap();
    assert_eq!(format::decode_segment_header(&seg1).unwrap(), prepared(1));
    assert!(seg1[SEGMENT_HEADER_LEN..].iter().all(|b| *b == 0));
    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    assert_holds(&store, &expected);
    drop(store);

    // Two are not something annals leaves behind.
    write_empty_segment(&seg_path(dir.path(), 2), prepared(2));
    assert_refused(dir.path(), &seg_path(dir.path(), 2), 0..1, 4096);

    // Nor is an empty segment followed by one holding data.
    let other = tempfile::tempdir().unwrap();
    build(other.path(), 4096, 3);
    let mut data = std::fs::read(&segments(other.path())[0]).unwrap();
    data[..SEGMENT_HEADER_LEN].copy_from_slice(&encode_segment_header(&prepared(2)));
    std::fs::write(seg_path(dir.path(), 2), data).unwrap();
    assert_refused(
        dir.path(),
        &seg_path(dir.path(), 2),
        SEGMENT_HEADER_LEN as u64..4096,
        4096,
    );
}

#[test]
fn prepared_segment_is_used_when_the_active_one_fills() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = build(dir.path(), 4096, 3);
    let header = header_of(&segments(dir.path())[0]);
    write_empty_segment(
        &seg_path(dir.path(), 1),
        SegmentHeader {
            segment_number: 1,
            ..header
        },
    );
    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    for i in 0..40 {
        store
            .append("p", ExpectedVersion::Any, &[W.event("p", i)])
            .unwrap();
        expected.push(("p".to_owned(), i));
    }
    assert_holds(&store, &expected);
    drop(store);
    assert!(segments(dir.path()).len() >= 2);
    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    assert_holds(&store, &expected);
}
