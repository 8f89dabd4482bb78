//! Guards scavenge against power loss: for a power cut after every single
//! file operation of a scavenge (sealing the active segment, writing each
//! rewritten segment under its temporary name, syncing it, renaming it over
//! the old one, syncing the directory, writing its index file and the
//! catalog) — keeping only what was synced, or also unsynced writes (whole,
//! torn or garbage) and directory operations — `open` succeeds, every
//! event of the kept stream reads back byte for byte at its position, the
//! deleted stream stays deleted, and a scavenge run again from there
//! leaves its marker in no file.

mod common;

use std::path::Path;
use std::sync::Arc;

use annals::{Error, EventData, ExpectedVersion, Options, Store};
use common::sim_disk::SimDisk;
use common::{Rng, mix, seed};

const SEGMENT_SIZE: u64 = 8192;
const MARKER: &[u8] = b"ERASE-ME-5c1d";
const EVENTS: u64 = 40;

fn options(disk: &Arc<SimDisk>) -> Options {
    common::sweep_options(disk, SEGMENT_SIZE)
}

fn keep_data(v: u64) -> Vec<u8> {
    format!("keep-{v}-").repeat(10).into_bytes()
}

/// The workload: two streams interleaved over several segments, the
/// second deleted, then a scavenge. Returns the operations made before the
/// scavenge started, or `None` if an operation failed before then.
fn run(dir: &Path, disk: &Arc<SimDisk>) -> Option<u64> {
    let store = Store::open_with(dir, options(disk)).ok()?;
    for v in 0..EVENTS {
        store
            .append("keep", expected(v), &[EventData::new("K", keep_data(v))])
            .ok()?;
        let mut gone = MARKER.to_vec();
        gone.extend_from_slice(&v.to_le_bytes());
        store
            .append("gone", ExpectedVersion::Any, &[EventData::new("G", gone)])
            .ok()?;
    }
    store.delete_stream("gone", ExpectedVersion::Any).ok()?;
    let before = disk.ops();
    let _ = store.scavenge();
    Some(before)
}

/// `NoStream` for the first event, then the version before.
fn expected(v: u64) -> ExpectedVersion {
    match v {
        0 => ExpectedVersion::NoStream,
        v => ExpectedVersion::Exact(v - 1),
    }
}

fn holds_marker(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(MARKER.len()).any(|w| w == MARKER) {
            found.push(path.display().to_string());
        }
    }
    found
}

fn check(dir: &Path, what: &str) {
    let real = Options::default().segment_size(SEGMENT_SIZE);
    let store = Store::open_with(dir, real.clone())
        .unwrap_or_else(|e| panic!("{what}: open after a power cut failed: {e}"));
    let keep = store.read_stream("keep", 0, 1000).unwrap();
    assert_eq!(keep.len() as u64, EVENTS, "{what}");
    for (v, e) in keep.iter().enumerate() {
        assert_eq!((e.version, e.position), (v as u64, 2 * v as u64), "{what}");
        assert_eq!(&e.data[..], &keep_data(v as u64)[..], "{what}");
    }
    assert!(
        matches!(
            store.read_stream("gone", 0, 10),
            Err(Error::StreamNotFound { .. })
        ),
        "{what}"
    );
    let all = store.read_all(0, 10_000).unwrap();
    assert_eq!(
        all.len() as u64,
        EVENTS,
        "{what}: read_all shows a removed event"
    );
    store
        .scavenge()
        .unwrap_or_else(|e| panic!("{what}: scavenge again: {e}"));
    store.close().unwrap();
    assert_eq!(holds_marker(dir), Vec::<String>::new(), "{what}");
    let store = Store::open_with(dir, real).unwrap();
    assert_eq!(store.read_stream("keep", 0, 1000).unwrap(), keep, "{what}");
}

#[test]
fn power_cut_during_a_scavenge_loses_nothing_and_erases_on_the_next() {
    let seed = seed("power_loss_scavenge");
    let mut rng = Rng::new(mix(seed, 0x5343_4156));
    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    let start = run(dry.path(), &disk).expect("the dry run completes");
    let total = disk.ops();
    assert!(
        total > start + 10,
        "the scavenge made {} operations",
        total - start
    );
    assert!(disk.surprises().is_empty(), "{:?}", disk.surprises());
    let mut cuts = 0;
    for n in start..=total {
        let run_dir = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(run_dir.path());
        disk.crash_after(n);
        run(run_dir.path(), &disk);
        let images = common::crash_images(&disk, run_dir.path(), &mut rng);
        for (i, image) in images.iter().enumerate() {
            let target = tempfile::tempdir().unwrap();
            disk.materialize(run_dir.path(), target.path(), image);
            check(
                target.path(),
                &format!("cut after op {n}, image {i} ({image:?})\n{}", disk.trace()),
            );
            cuts += 1;
        }
    }
    eprintln!(
        "power_loss_scavenge: {} operations, {cuts} images checked",
        total - start
    );
}
