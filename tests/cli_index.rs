//! Guards the command line's side of the segment index files: `verify`
//! checks each one against its segment and reports a damaged, forged,
//! foreign or orphaned one by name with exit code 8 (derived data, not a
//! corrupt store), a missing one only as a note; `stats` shows their sizes;
//! `dump --index` prints one.

#![cfg(feature = "cli")]

mod cli_support;

use std::path::{Path, PathBuf};

use annals::index_format::decode_index;
use annals::{EventData, ExpectedVersion, Options, Store};
use cli_support::{annals, assert_code, path, snapshot};
use serde_json::Value;

/// The file of segment `n`'s index in `dir`.
fn index_file(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.idx"))
}

/// A store of 4 KiB segments, several of them sealed, holding 120 events
/// of the streams `order-0` to `order-4`, closed cleanly; returns the
/// number of segment files holding events.
fn store_of_small_segments(dir: &Path) -> u64 {
    let store = Store::open_with(dir, Options::default().segment_size(4096)).unwrap();
    for i in 0..120u64 {
        let stream = format!("order-{}", i % 5);
        let data = format!("{{\"line\":{i},\"note\":\"some bytes to fill a segment\"}}");
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                &[EventData::new("OrderLine", data.into_bytes())],
            )
            .unwrap();
    }
    let segments = store.stats().segments;
    store.close().unwrap();
    assert!(segments >= 3, "only {segments} segments");
    for n in 0..segments - 1 {
        assert!(
            index_file(dir, n).exists(),
            "sealed segment {n} has no index"
        );
    }
    segments
}

/// Recomputes both checksums of an index file's bytes (FORMAT.md: the body
/// CRC at 56..60 over 64.., the header CRC at 60..64 over 0..60).
fn reseal(bytes: &mut [u8]) {
    assert!(annals::index_format::reseal_index(bytes));
}

#[test]
fn verify_passes_a_fresh_store_of_many_segments_and_checks_its_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    let segments = store_of_small_segments(tmp.path());
    let run = annals(["verify", dir]);
    assert_code(&run, 0);
    assert!(
        run.stdout.starts_with(&format!(
            "ok: 120 events in {segments} segments holding events; "
        )),
        "{}",
        run.stdout
    );
    let indexes = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".idx")
        })
        .count();
    assert!(
        run.stdout
            .contains(&format!("; {indexes} index files match their segments; ")),
        "{indexes} index files: {}",
        run.stdout
    );
    assert!(!run.stdout.contains("note:"), "{}", run.stdout);
}

#[test]
fn verify_names_a_damaged_index_exits_8_and_a_writable_open_rebuilds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    store_of_small_segments(tmp.path());
    let file = index_file(tmp.path(), 0);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let before = snapshot(tmp.path());

    let run = annals(["-q", "verify", dir]);
    assert_code(&run, 8);
    let expected = format!(
        "index 0 ({}): index body fails its checksum: id table block 0 (derived data: remove it and the \
         next writable open rebuilds it)",
        file.display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains("the events check out (120 events in ")
            && run.stderr.contains(" index files does not; "),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(snapshot(tmp.path()), before, "verify modified the store");

    // What the report promises: removed, the next writable open rebuilds it.
    std::fs::remove_file(&file).unwrap();
    Store::open(tmp.path()).unwrap().close().unwrap();
    assert!(file.exists(), "the open wrote the index again");
    assert_code(&annals(["verify", dir]), 0);
}

#[test]
fn verify_finds_a_forged_stream_count_whose_checksums_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    store_of_small_segments(tmp.path());
    let file = index_file(tmp.path(), 1);
    let mut bytes = std::fs::read(&file).unwrap();
    let (entries, name, count) = {
        let view = decode_index(&bytes).unwrap();
        let h = view.header();
        let entry = view.entry(0).unwrap();
        let name = String::from_utf8(view.name(&entry).unwrap().to_vec()).unwrap();
        // Entries follow the header, the checksums, the offsets and the
        // positions.
        let blocks = (h.event_count as usize).div_ceil(1024)
            + (2 * h.stream_count as usize)
                .next_power_of_two()
                .div_ceil(512)
            + (8 * (16 * h.event_count as usize).div_ceil(64)).div_ceil(4096)
            + (h.event_count as usize).div_ceil(256);
        (
            64 + 4 * blocks + 8 * h.event_count as usize,
            name,
            entry.count,
        )
    };
    assert!(count > 1);
    let at = entries + 8;
    assert_eq!(
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
        count
    );
    bytes[at..at + 4].copy_from_slice(&(count - 1).to_le_bytes());
    reseal(&mut bytes);
    assert!(decode_index(&bytes).is_ok(), "the forged index must decode");
    std::fs::write(&file, &bytes).unwrap();

    let run = annals(["-q", "verify", dir]);
    assert_code(&run, 8);
    let expected = format!(
        "index 1 ({}): stream {name}: {} events, the segment holds {count} (derived data",
        file.display(),
        count - 1
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
}

#[test]
fn verify_refuses_an_index_of_another_store_or_of_no_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    let segments = store_of_small_segments(tmp.path());
    let other = tempfile::tempdir().unwrap();
    store_of_small_segments(other.path());
    std::fs::copy(index_file(other.path(), 0), index_file(tmp.path(), 0)).unwrap();
    let orphan = index_file(tmp.path(), segments + 5);
    std::fs::copy(index_file(tmp.path(), 1), &orphan).unwrap();

    let run = annals(["-q", "verify", dir]);
    assert_code(&run, 8);
    assert!(
        run.stderr.contains(&format!(
            "index 0 ({}): it belongs to store",
            index_file(tmp.path(), 0).display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "index {} ({}): there is no segment {}",
            segments + 5,
            orphan.display(),
            segments + 5
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_index_is_a_note_not_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    store_of_small_segments(tmp.path());
    std::fs::remove_file(index_file(tmp.path(), 1)).unwrap();
    let run = annals(["verify", dir]);
    assert_code(&run, 0);
    assert!(
        run.stdout
            .contains("note: 1 sealed segment without an index file (1)"),
        "{}",
        run.stdout
    );
}

#[test]
fn stats_shows_index_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    store_of_small_segments(tmp.path());
    let run = annals(["stats", dir, "--json"]);
    assert_code(&run, 0);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let size = |n: u64| std::fs::metadata(index_file(tmp.path(), n)).map_or(0, |m| m.len());
    let segments = v["segments"].as_u64().unwrap();
    // The sealed segments' index files are mapped; the active segment's,
    // written at the clean close, may be too.
    let sealed: u64 = (0..segments - 1).map(size).sum();
    let all = sealed + size(segments - 1);
    assert!(sealed > 0);
    let on_disk = v["index_file_bytes"].as_u64().unwrap();
    assert!(sealed <= on_disk && on_disk <= all, "{sealed} {all}: {v}");
    assert!(v["active_index_bytes"].is_u64(), "{v}");

    let table = annals(["stats", dir]);
    assert_code(&table, 0);
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("index files"))
        .unwrap_or_else(|| panic!("no index row in {}", table.stdout));
    assert!(
        row.contains(&format!("{on_disk} bytes")) || row.contains(&count(on_disk)),
        "{row}"
    );
    assert!(table.stdout.contains("active index"), "{}", table.stdout);
}

/// `n` with thousands separators, as the tool prints counts.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn dump_prints_an_index_with_its_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    store_of_small_segments(tmp.path());
    let run = annals(["dump", dir, "--index", "0"]);
    assert_code(&run, 0);
    assert!(
        run.stdout.contains("segment number 0, sealed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("stream order-3: first version 0, "),
        "{}",
        run.stdout
    );
    // Segment 0 starts at position 0, and order-3's first event is the
    // fourth appended.
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("stream order-3:"))
        .unwrap();
    assert!(line.contains("positions 3 8 13"), "{line}");

    let limited = annals(["dump", dir, "--index", "0", "--limit", "2", "--data"]);
    assert_code(&limited, 0);
    assert!(
        limited.stdout.contains("position 0: record at offset 88"),
        "{}",
        limited.stdout
    );
    assert!(
        limited
            .stdout
            .contains(" more positions (--limit 0 shows all)")
            && limited.stdout.contains("positions 3 8 and 3 more"),
        "{}",
        limited.stdout
    );

    let missing = annals(["dump", dir, "--index", "99"]);
    assert_code(&missing, 3);
    assert!(
        missing.stderr.contains("00000000000000000099.idx"),
        "{}",
        missing.stderr
    );

    let file = index_file(tmp.path(), 0);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[70] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let bad = annals(["dump", dir, "--index", "0"]);
    assert_code(&bad, 5);
    assert!(
        bad.stderr.contains(&file.display().to_string())
            && bad.stderr.contains("index body fails its checksum"),
        "{}",
        bad.stderr
    );
}
