//! Segment index files are derived data: whatever state one is found in —
//! missing, damaged, cut short, empty, of another store or segment, stale,
//! claiming positions its segment does not hold — the open uses the
//! segment instead, says so in the recovery report, writes the index
//! again, and every read returns what was appended. Never a refused open of
//! a sound store, never wrong data.

mod common;
mod fixture;

use std::path::{Path, PathBuf};

use annals::Store;
use common::Workload;
use fixture::*;

const SEGMENT_SIZE: u64 = 4096;
const BATCHES: usize = 60;

/// Builds a store of `BATCHES` appends of the fixed workload, closed.
fn build(dir: &Path) {
    let store = Store::open_with(dir, small(SEGMENT_SIZE)).unwrap();
    for i in 0..BATCHES {
        Workload::FIXED.append_next(&store, i).unwrap();
    }
    store.close().unwrap();
}

/// The index files of `dir`, in segment order.
fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    paths.sort();
    paths
}

/// Opens `dir` and checks that it holds the whole workload, that the
/// report names `file` as unusable (or nothing, for `None`), and that the
/// index files afterwards are exactly `expected`.
///
/// A sealed segment that the catalog lets the open defer has its index
/// checked where a read first uses it, not at the open: then the report
/// names nothing, the read rebuilds the index from the segment (with a
/// warning), and the clean close writes it; the files end the same.
fn assert_rebuilt(dir: &Path, file: Option<&Path>, expected: &[(PathBuf, Vec<u8>)]) {
    let store = Store::open_with(dir, small(SEGMENT_SIZE))
        .unwrap_or_else(|e| panic!("a sound store with a bad index must open: {e}"));
    let named: Vec<&Path> = store
        .recovery_report()
        .unusable_indexes
        .iter()
        .map(|(p, _)| p.as_path())
        .collect();
    let expected_named: Vec<&Path> = file.into_iter().collect();
    assert!(
        named == expected_named || named.is_empty(),
        "unusable indexes: {named:?} where {expected_named:?} (or none, deferred) was expected"
    );
    let seen = Workload::FIXED.verify(&store);
    assert_eq!(seen.batches.len(), BATCHES, "every append reads back");
    drop(store);
    for (path, bytes) in expected {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} was not rebuilt as it was",
            path.display()
        );
    }
}

fn read_all_indexes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    index_files(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Rewrites the header checksum of an index file after a test changed its
/// fields, so that the change reaches the checks behind it. (The body's
/// parts have checksums of their own, which header fields do not enter.)
fn fix_checksums(bytes: &mut [u8]) {
    let header = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&header.to_le_bytes());
}

#[test]
fn sealed_segments_get_index_files_that_a_reopen_uses() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let segs = segments(dir.path());
    let indexes = index_files(dir.path());
    assert!(segs.len() >= 3, "the workload must rotate");
    // Every segment but the active one (and one prepared ahead) is sealed.
    assert!(
        indexes.len() + 2 >= segs.len() && !indexes.is_empty(),
        "{} index files for {} segments",
        indexes.len(),
        segs.len()
    );
    let before = read_all_indexes(dir.path());
    assert_rebuilt(dir.path(), None, &before);
}

#[test]
fn a_store_without_index_files_opens_and_gets_them() {
    // A store written before segment indexes existed has none.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    for (path, _) in &before {
        std::fs::remove_file(path).unwrap();
    }
    assert_rebuilt(dir.path(), Some(&before[0].0), &before);
}

#[test]
fn a_damaged_index_at_any_byte_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    let (path, original) = &before[0];
    for i in 0..original.len() {
        let mut damaged = original.clone();
        damaged[i] ^= 0x40;
        std::fs::write(path, &damaged).unwrap();
        // A damaged header is found by the open, which then rebuilds the
        // file. Each part of the body is checked where a read first uses
        // it (so that an open touches no index body, and a read only the
        // parts it uses): the reads rebuild the index in memory and the
        // clean close writes it again. A part no read used (a block of the
        // id filter no lookup reached) stays as it is, still refused by a
        // whole check (`annals verify`); the reads are right either way.
        let at_open = i < annals::index_format::INDEX_HEADER_LEN;
        if at_open {
            assert_rebuilt(dir.path(), Some(path.as_path()), &before);
            continue;
        }
        assert_rebuilt(dir.path(), None, &[]);
        let now = std::fs::read(path).unwrap();
        assert!(
            now == *original || annals::index_format::decode_index(&now).is_err(),
            "flip at {i}: the file is neither repaired nor still refused whole"
        );
        std::fs::write(path, original).unwrap();
    }
}

#[test]
fn a_cut_or_empty_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    let (path, original) = &before[1];
    for len in (0..original.len())
        .step_by(7)
        .chain([0, 63, 64, original.len() - 1])
    {
        std::fs::write(path, &original[..len]).unwrap();
        assert_rebuilt(dir.path(), Some(path), &before);
    }
}

#[test]
fn an_index_of_another_segment_or_store_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    // Segment 1's index under segment 0's name.
    std::fs::write(&before[0].0, &before[1].1).unwrap();
    assert_rebuilt(dir.path(), Some(&before[0].0), &before);

    // Another store with the same workload: the same events, another id.
    let other = tempfile::tempdir().unwrap();
    build(other.path());
    let foreign = read_all_indexes(other.path());
    assert_ne!(foreign[0].1, before[0].1, "store ids differ");
    std::fs::write(&before[0].0, &foreign[0].1).unwrap();
    assert_rebuilt(dir.path(), Some(&before[0].0), &before);
}

#[test]
fn an_index_claiming_what_its_segment_does_not_hold_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    let (path, original) = &before[0];
    // Header fields, each changed with its checksums made right again:
    // first position (32), event count (12), end of data (40), last frame
    // (44).
    for (at, len, delta) in [
        (32, 8, 1u64),
        (12, 4, 1),
        (12, 4, u64::MAX),
        (40, 4, 8),
        (44, 4, 8),
    ] {
        let mut claim = original.clone();
        let field = &mut claim[at..at + len];
        let mut value = [0u8; 8];
        value[..len].copy_from_slice(field);
        let changed = u64::from_le_bytes(value).wrapping_add(delta).to_le_bytes();
        field.copy_from_slice(&changed[..len]);
        fix_checksums(&mut claim);
        std::fs::write(path, &claim).unwrap();
        assert_rebuilt(dir.path(), Some(path), &before);
    }
}

#[test]
fn an_index_older_than_its_segment_is_rebuilt() {
    // An index that ends a frame early, as one written before its segment
    // went on would (a crash after a rotation, before the next segment's
    // first frame; the next open appended to the old segment again).
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    let (path, full) = &before[0];
    let seg0 = std::fs::read(&segments(dir.path())[0]).unwrap();
    let frames0 = frames(&seg0);
    assert!(frames0.len() >= 2);
    let last = &frames0[frames0.len() - 2];
    let mut short = full.clone();
    short[40..44].copy_from_slice(&(last.end as u32).to_le_bytes());
    short[44..48].copy_from_slice(&(last.start as u32).to_le_bytes());
    fix_checksums(&mut short);
    std::fs::write(path, &short).unwrap();
    assert_rebuilt(dir.path(), Some(path), &before);
}

#[test]
fn a_read_only_open_uses_but_never_writes_index_files() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    std::fs::remove_file(&before[0].0).unwrap();
    let snapshot_before = snapshot(dir.path());
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.recovery_report().unusable_indexes.len(), 1);
    assert_eq!(Workload::FIXED.verify(&store).batches.len(), BATCHES);
    drop(store);
    assert_eq!(
        snapshot(dir.path()),
        snapshot_before,
        "a read-only open wrote"
    );
}

#[test]
fn a_half_written_index_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    let temp = before[0].0.with_extension("idx.tmp");
    std::fs::write(&temp, &before[0].1[..100]).unwrap();
    assert_rebuilt(dir.path(), None, &before);
    assert!(!temp.exists(), "the half-written index was left");
}

/// The stream catalog a clean close writes beside the index files.
fn catalog(dir: &Path) -> PathBuf {
    dir.join("catalog")
}

/// Rewrites the checksums of a catalog after a test changed its fields.
fn fix_catalog_checksums(bytes: &mut [u8]) {
    let body = crc32fast::hash(&bytes[48..]);
    bytes[40..44].copy_from_slice(&body.to_le_bytes());
    let header = crc32fast::hash(&bytes[..44]);
    bytes[44..48].copy_from_slice(&header.to_le_bytes());
}

/// Opens `dir` with the catalog replaced by `bytes`: the open must name the
/// catalog as unusable, read every append back, and leave a good catalog
/// at its close.
fn assert_catalog_refused(dir: &Path, bytes: &[u8], good: &[u8]) {
    std::fs::write(catalog(dir), bytes).unwrap();
    let indexes = read_all_indexes(dir);
    assert_rebuilt(dir, Some(&catalog(dir)), &indexes);
    assert_eq!(
        std::fs::read(catalog(dir)).unwrap(),
        good,
        "the clean close did not write the catalog again"
    );
}

#[test]
fn a_clean_close_writes_a_catalog_and_any_damage_to_it_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let good = std::fs::read(catalog(dir.path())).expect("a clean close writes a catalog");
    // A sound catalog is used, and reported as nothing.
    let indexes = read_all_indexes(dir.path());
    assert_rebuilt(dir.path(), None, &indexes);
    for at in 0..good.len() {
        let mut damaged = good.clone();
        damaged[at] ^= 0x10;
        assert_catalog_refused(dir.path(), &damaged, &good);
    }
    for len in [0, 47, 48, good.len() - 1] {
        assert_catalog_refused(dir.path(), &good[..len], &good);
    }
}

#[test]
fn a_catalog_that_does_not_describe_the_log_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let good = std::fs::read(catalog(dir.path())).unwrap();

    // A stream one event longer, with checksums made right again: the
    // streams no longer add up to the log.
    let mut longer = good.clone();
    let v = u64::from_le_bytes(longer[48..56].try_into().unwrap()) + 1;
    longer[48..56].copy_from_slice(&v.to_le_bytes());
    fix_catalog_checksums(&mut longer);
    assert_catalog_refused(dir.path(), &longer, &good);

    // Another store's catalog of the same workload.
    let other = tempfile::tempdir().unwrap();
    build(other.path());
    let foreign = std::fs::read(catalog(other.path())).unwrap();
    assert_ne!(foreign, good, "store ids differ");
    assert_catalog_refused(dir.path(), &foreign, &good);

    // A catalog naming an index the log does not reach (the checksum of
    // no index file here): stale, named, and the streams come from the
    // index files.
    let mut elsewhere = good.clone();
    elsewhere[32..36].copy_from_slice(&0x5eed_u32.to_le_bytes());
    fix_catalog_checksums(&mut elsewhere);
    assert_catalog_refused(dir.path(), &elsewhere, &good);
}

/// A catalog names the index of a sealed segment, which nothing changes
/// afterwards: one from before later appends and seals, put back after
/// them (as a restore of an old copy of the file would), still describes
/// the log up to that index, so it is used, and the index files after it
/// give the rest.
#[test]
fn an_older_catalog_still_describes_the_log_up_to_its_index() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let old = std::fs::read(catalog(dir.path())).unwrap();
    let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
    let rotations = store.stats().segments;
    let mut i = BATCHES;
    while store.stats().segments < rotations + 2 {
        Workload::FIXED.append_next(&store, i).unwrap();
        i += 1;
    }
    store.close().unwrap();
    let newer = std::fs::read(catalog(dir.path())).unwrap();
    assert_ne!(newer, old, "later seals wrote newer catalogs");
    std::fs::write(catalog(dir.path()), &old).unwrap();
    let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
    assert!(
        store.recovery_report().is_clean(),
        "{:?}",
        store.recovery_report()
    );
    assert_eq!(Workload::FIXED.verify(&store).batches.len(), i);
    store.close().unwrap();
    assert_eq!(std::fs::read(catalog(dir.path())).unwrap(), newer);
}

#[test]
fn an_index_that_passes_its_checks_but_misplaces_records_is_rebuilt_on_read() {
    // An index file with good checksums and a sound header whose offsets
    // or stream positions are swapped (a faulty build, or a forgery) sends
    // reads to the wrong records. The records' own checks catch it, and
    // the segment, not the index, decides what the read returns.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = read_all_indexes(dir.path());
    let (path, original) = &before[0];
    let count = u32::from_le_bytes(original[12..16].try_into().unwrap()) as usize;
    assert!(count >= 3, "segment 0 holds {count} events");
    let offsets = 64;
    let positions = offsets + 4 * count;
    for (part, what) in [(offsets, "offsets"), (positions, "positions")] {
        let mut forged = original.clone();
        let (a, b) = (part, part + 4 * (count - 1));
        let first: [u8; 4] = forged[a..a + 4].try_into().unwrap();
        let last: [u8; 4] = forged[b..b + 4].try_into().unwrap();
        assert_ne!(first, last, "{what}: nothing to swap");
        forged[a..a + 4].copy_from_slice(&last);
        forged[b..b + 4].copy_from_slice(&first);
        fix_checksums(&mut forged);
        std::fs::write(path, &forged).unwrap();
        for open in [Store::open_read_only, |d: &Path| Store::open(d)] {
            let store = open(dir.path()).unwrap();
            assert!(
                store.recovery_report().unusable_indexes.is_empty(),
                "{what}: the forged index passes the open's checks"
            );
            assert_eq!(
                Workload::FIXED.verify(&store).batches.len(),
                BATCHES,
                "{what}"
            );
        }
    }
}

/// Writes the files of `image` (a snapshot of another directory) into
/// `dir`, by name: a copy of the store as a crash would have left it.
fn write_image(image: &Snapshot, dir: &Path) {
    for (path, entry) in image {
        if entry.kind == "file" {
            std::fs::write(dir.join(path.file_name().unwrap()), &entry.bytes).unwrap();
        }
    }
}

/// Each seal writes a catalog of the streams as they stood at its end, tied
/// to the sealed segment's index: an open after a crash takes the streams
/// from it and reads no body of the index files before it. Shown by damage
/// to the first index file's stream table (a stream's name), which that
/// open does not read (and the first read repairs), where an open without
/// the catalog merges that table, finds the damage and names the file.
#[test]
fn an_open_after_a_crash_takes_the_streams_from_the_last_seals_catalog() {
    let live = tempfile::tempdir().unwrap();
    // Index files and catalogs written on the appending thread, so that the
    // image below holds those of every seal.
    let store = Store::open_with(
        live.path(),
        small(SEGMENT_SIZE).prepare_segments_ahead(false),
    )
    .unwrap();
    for i in 0..BATCHES {
        Workload::FIXED.append_next(&store, i).unwrap();
    }
    let image = snapshot(live.path());
    let end = store.global_position();
    drop(store);

    let catalog_bytes = &image[&catalog(live.path())].bytes;
    let covered = u64::from_le_bytes(catalog_bytes[24..32].try_into().unwrap());
    assert!(
        covered > 0 && covered < end,
        "the last seal's catalog covers {covered} of {end} events"
    );
    let first_index = index_files(live.path())[0].clone();
    for with_catalog in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        write_image(&image, dir.path());
        remove_clean_close_index(dir.path());
        let damaged = dir.path().join(first_index.file_name().unwrap());
        let mut bytes = std::fs::read(&damaged).unwrap();
        // A stream's name: in the names part, the only place it is.
        let name = Workload::FIXED.stream_name(0);
        let at = bytes
            .windows(name.len())
            .position(|w| w == name.as_bytes())
            .expect("the first index names stream 0");
        bytes[at] ^= 0x40;
        std::fs::write(&damaged, &bytes).unwrap();
        if !with_catalog {
            std::fs::remove_file(catalog(dir.path())).unwrap();
        }
        let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
        let named: Vec<&PathBuf> = store
            .recovery_report()
            .unusable_indexes
            .iter()
            .map(|(p, _)| p)
            .collect();
        if with_catalog {
            assert!(named.is_empty(), "with the catalog, {named:?} was read");
        } else {
            assert_eq!(named, [&damaged], "without the catalog");
        }
        assert_eq!(store.global_position(), end);
        assert_eq!(Workload::FIXED.verify(&store).batches.len(), BATCHES);
    }
}

/// A clean close after a reopen writes the catalog of the last seal from the
/// state now less what the active segment added, both from the index it was
/// reopened with and from the appends since: the next open uses it (reported
/// as nothing) and reads every append back.
#[test]
fn a_close_after_appends_into_a_reopened_segment_writes_a_usable_catalog() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
    let segments_before = store.stats().segments;
    Workload::FIXED.append_next(&store, BATCHES).unwrap();
    assert_eq!(store.stats().segments, segments_before, "no rotation");
    store.close().unwrap();
    let store = Store::open_with(dir.path(), small(SEGMENT_SIZE)).unwrap();
    assert!(
        store.recovery_report().is_clean(),
        "{:?}",
        store.recovery_report()
    );
    assert_eq!(Workload::FIXED.verify(&store).batches.len(), BATCHES + 1);
}
