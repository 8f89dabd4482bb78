//! Bugs found in review, each kept as the test that showed it. The story of
//! each is in its comment; every one of them broke a promise of DESIGN.md.

mod common;
mod fixture;

use annals::format::{
    FrameHeader, RecordFields, SEGMENT_HEADER_LEN, Salt, encode_frame_header, encode_record,
    seal_record,
};
use annals::{Error, EventData, ExpectedVersion, Store};
use common::Workload;
use common::sim_disk::{CrashImage, OpKind, SimDisk};
use fixture::*;

/// The events these tests append.
const W: Workload = Workload::FIXED;

fn kb_event(i: u64) -> EventData {
    EventData::new("E", vec![b'a' + (i % 26) as u8; 1000])
}

/// A rotation's directory sync failed, so the new segment's name was only in
/// the page cache. Reopening (as the poisoned store asks) found the segment,
/// took it as one prepared ahead, and the next append was acknowledged into
/// it without the name ever being made durable: a power cut then lost an
/// acknowledged event. A writable open now syncs the directory.
#[test]
fn an_acknowledged_append_survives_a_segment_name_that_was_never_synced() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dir.path());
    let options = || {
        small(4096)
            .prepare_segments_ahead(false)
            .file_io(disk.clone())
    };
    let store = Store::open_with(dir.path(), options()).unwrap();
    for i in 0..3 {
        store
            .append("s", ExpectedVersion::Any, &[kb_event(i)])
            .unwrap();
    }
    // The fourth append rotates: create, zero-fill, header, sync, rename,
    // directory sync. Fail the directory sync.
    disk.fail_at(disk.ops() + 6, 0);
    let err = store
        .append("s", ExpectedVersion::Any, &[kb_event(3)])
        .unwrap_err();
    assert_eq!(disk.failed().map(|f| f.1), Some(OpKind::SyncDir), "{err}");
    drop(store);

    let store = Store::open_with(dir.path(), options()).unwrap();
    assert_eq!(store.global_position(), 3);
    store
        .append("s", ExpectedVersion::Exact(2), &[kb_event(3)])
        .unwrap();
    drop(store);

    disk.crash_now();
    let after = tempfile::tempdir().unwrap();
    disk.materialize(dir.path(), after.path(), &CrashImage::DURABLE);
    let store = Store::open_with(after.path(), small(4096)).unwrap();
    assert_eq!(
        store.global_position(),
        4,
        "an acknowledged append was lost"
    );
}

/// Damage to the only frame of a segment that a prepared segment follows
/// was taken for a torn write and truncated, dropping an acknowledged
/// event; the next open then refused the store. A segment is prepared only
/// after a frame of the one before it is durable, so this is damage.
#[test]
fn damage_to_the_first_frame_of_a_segment_before_a_prepared_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small(4096)).unwrap();
    for i in 0..4 {
        store
            .append("s", ExpectedVersion::Any, &[kb_event(i)])
            .unwrap();
    }
    store.close().unwrap();
    // As a crash leaves it: the active segment is scanned.
    remove_clean_close_index(dir.path());
    let segs = segments(dir.path());
    assert_eq!(
        segs.len(),
        3,
        "segment 1 holds one frame, segment 2 is prepared"
    );
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    bytes[SEGMENT_HEADER_LEN + 24 + 200] ^= 0x10;
    std::fs::write(&segs[1], &bytes).unwrap();
    let before = snapshot(dir.path());
    let err = Store::open_with(dir.path(), small(4096)).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, .. } if *file == segs[1]),
        "{err:?}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

/// An empty batch, appended when the active segment had less room left than
/// a frame header, rotated: it created a segment and could fail (and poison
/// the store) doing so. An empty batch checks and writes nothing.
#[test]
fn an_empty_batch_never_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let options = small(4096).prepare_segments_ahead(false);
    let store = Store::open_with(dir.path(), options).unwrap();
    // One record of exactly 4,008 bytes fills the segment to its last byte.
    let fill = EventData::new("T", vec![0u8; 4008 - 64 - 2]);
    store
        .append("s", ExpectedVersion::NoStream, &[fill])
        .unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
    let before = snapshot(dir.path());
    let r = store.append("s", ExpectedVersion::Exact(0), &[]).unwrap();
    assert!(r.is_empty());
    assert_eq!(snapshot(dir.path()), before);
}

/// Builds a frame holding the given (stream, type, version) records from
/// position `first`, with valid checksums under `salt`. An event type of
/// "?" is written as bytes that are not UTF-8, under a valid checksum.
fn frame_bytes(salt: Salt, first: u64, records: &[(&str, &str, u64)]) -> Vec<u8> {
    let mut frame = vec![0u8; 24];
    for (i, (stream, event_type, version)) in records.iter().enumerate() {
        let start = frame.len();
        encode_record(
            &mut frame,
            &RecordFields {
                stream,
                event_type,
                metadata: b"",
                data: b"x",
                id: [1; 16],
                recorded_at_us: 0,
            },
        );
        if *event_type == "?" {
            frame[start + 64 + stream.len()] = 0xff;
        }
        seal_record(&mut frame[start..], salt, first + i as u64, *version);
    }
    let header = FrameHeader {
        frame_len: frame.len() as u32,
        first_position: first,
        event_count: records.len() as u32,
    };
    encode_frame_header(&mut frame, salt, &header);
    frame
}

/// Writes `bytes` at `offset` of segment 0 of `dir`, in place (a follower
/// may have the file mapped: it is never truncated).
fn write_in_place(dir: &std::path::Path, offset: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let seg = &segments(dir)[0];
    let file = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
    file.write_all_at(bytes, offset as u64).unwrap();
}

/// Builds a frame at `offset` of segment 0 of `dir` (see [`frame_bytes`])
/// and writes it into the file.
fn write_frame(dir: &std::path::Path, offset: usize, first: u64, records: &[(&str, &str, u64)]) {
    let salt = salt_of(&std::fs::read(&segments(dir)[0]).unwrap());
    write_in_place(dir, offset, &frame_bytes(salt, first, records));
}

/// A store holding event "a"@0, the offset where its log ends, and a
/// read-only follower of it.
fn one_event_and_a_follower() -> (tempfile::TempDir, usize, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small(64 << 10)).unwrap();
    store
        .append("a", ExpectedVersion::NoStream, &[W.event("a", 0)])
        .unwrap();
    store.close().unwrap();
    let end = frames(&std::fs::read(&segments(dir.path())[0]).unwrap())
        .last()
        .unwrap()
        .end;
    let reader = Store::open_read_only(dir.path()).unwrap();
    (dir, end, reader)
}

/// A frame that a follower refused halfway stayed half in its index: part
/// of a batch visible, and reads wedged. A refused frame now leaves nothing.
#[test]
fn refresh_refuses_a_bad_frame_whole() {
    for bad in [
        [("b", "T", 0), ("b", "T", 7)], // a version gap inside the frame
        [("c", "?", 0), ("c", "T", 1)], // a type that is not UTF-8
    ] {
        let (dir, end, reader) = one_event_and_a_follower();
        write_frame(dir.path(), end, 1, &bad);
        let err = reader.refresh().unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
        assert_eq!(reader.global_position(), 1);
        assert_eq!(reader.stream_version(bad[0].0), None);
        assert!(matches!(
            reader.read_stream(bad[0].0, 0, 10),
            Err(Error::StreamNotFound { .. })
        ));
        W.assert_event(&reader.read_all(0, 10).unwrap()[0], "a", 0);
        assert_eq!(reader.stats().streams, 1);
    }
}

#[test]
fn the_frame_writer_of_these_tests_writes_valid_frames() {
    // The check that `write_frame` is not what the tests above refuse.
    let (dir, end, reader) = one_event_and_a_follower();
    write_frame(dir.path(), end, 1, &[("b", "T", 0), ("b", "T", 1)]);
    assert_eq!(reader.refresh().unwrap(), 2);
    assert_eq!(reader.stream_version("b"), Some(1));
}

/// The follower read a frame header from one copy of the tail, then copied
/// and checked that many bytes, but moved its tail by the length from the
/// first copy. When the tail changed between the two copies (a writer
/// killed after its long frame's header landed; the next writer's recovery
/// zeroing it and writing shorter frames in its place), the follower took
/// the first short frame and skipped past the next one unseen: its reads
/// lost events, and after the next rotation every refresh failed. It now
/// moves only by what the check of its copy returned.
#[test]
fn a_follower_racing_a_rewritten_tail_takes_only_what_it_checked() {
    for trial in 0..40 {
        let (dir, end, reader) = one_event_and_a_follower();
        let salt = salt_of(&std::fs::read(&segments(dir.path())[0]).unwrap());
        // The torn write: a valid header of a long frame, its records never
        // written.
        let long: Vec<(&str, &str, u64)> = (0..6).map(|v| ("b", "T", v)).collect();
        let mut torn = frame_bytes(salt, 1, &long);
        torn[24..].fill(0xaa);
        // What the next writer wrote in its place: two short frames inside
        // the long one's span.
        let mut rewritten = frame_bytes(salt, 1, &[("b", "T", 0)]);
        rewritten.extend(frame_bytes(salt, 2, &[("b", "T", 1)]));
        assert!(rewritten.len() < torn.len());
        rewritten.resize(torn.len(), 0);

        let done = std::sync::atomic::AtomicBool::new(false);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segments(dir.path())[0])
            .unwrap();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                use std::os::unix::fs::FileExt;
                for _ in 0..2_000 {
                    file.write_all_at(&torn, end as u64).unwrap();
                    file.write_all_at(&rewritten, end as u64).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                if let Err(e) = reader.refresh() {
                    panic!("trial {trial}: refresh failed on a sound store: {e}");
                }
                if finished {
                    break;
                }
            }
        });
        let fresh = Store::open_read_only(dir.path()).unwrap();
        let positions = |s: &Store| -> Vec<(u64, String, u64)> {
            s.read_all(0, 100)
                .unwrap()
                .iter()
                .map(|e| (e.position, e.stream_id.to_string(), e.version))
                .collect()
        };
        assert_eq!(fresh.global_position(), 3);
        assert_eq!(positions(&reader), positions(&fresh), "trial {trial}");
    }
}
