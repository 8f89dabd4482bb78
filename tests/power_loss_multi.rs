//! Guards multi-stream atomicity against power loss (issue 16): for a power
//! cut after every single file operation of a workload of `append_multi`
//! calls that rotates through several segments — keeping only what was
//! synced, or also unsynced writes (whole, torn, or garbage) — `open`
//! succeeds and holds a prefix of the calls, each call whole or absent,
//! with every acknowledged call present.

mod common;

use std::path::Path;
use std::sync::Arc;

use annals::{Error, EventData, ExpectedVersion, Store, StreamAppend};
use common::sim_disk::{Fate, SimDisk};
use common::{Rng, mix, seed};

/// Small segments, so that the workload rotates several times.
const SEGMENT_SIZE: u64 = 4096;
/// `append_multi` calls in the workload.
const CALLS: usize = 40;
/// Streams the calls choose from.
const STREAMS: u64 = 6;

/// One call of the workload: for each part its stream and event count.
type Call = Vec<(String, usize)>;

/// The calls of a workload, from `seed`: each 2 or 3 distinct streams with
/// 1 to 3 events each.
fn plan(seed: u64) -> Vec<Call> {
    let mut rng = Rng::new(seed);
    (0..CALLS)
        .map(|_| {
            let parts = rng.between(2, 3) as usize;
            let first = rng.below(STREAMS);
            (0..parts as u64)
                .map(|k| {
                    let stream = format!("s{}", (first + k) % STREAMS);
                    (stream, rng.between(1, 3) as usize)
                })
                .collect()
        })
        .collect()
}

/// The bytes of event `event` of part `part` of call `call`: what lets a
/// check tell which call each recovered event belongs to.
fn data(call: usize, part: usize, event: usize) -> Vec<u8> {
    let mut d = format!("{call}/{part}/{event}/").into_bytes();
    d.resize(d.len() + 100 + (call * 37 + part * 11) % 150, b'x');
    d
}

fn parts(i: usize, call: &Call) -> Vec<StreamAppend> {
    call.iter()
        .enumerate()
        .map(|(p, (stream, n))| {
            let events = (0..*n)
                .map(|e| EventData::new("T", data(i, p, e)))
                .collect();
            StreamAppend::new(stream, ExpectedVersion::Any, events)
        })
        .collect()
}

/// Runs the calls until they end or one fails; returns how many were
/// acknowledged.
fn run(dir: &Path, disk: &Arc<SimDisk>, calls: &[Call]) -> usize {
    let Ok(store) = Store::open_with(dir, common::sweep_options(disk, SEGMENT_SIZE)) else {
        return 0;
    };
    for (i, call) in calls.iter().enumerate() {
        if let Err(e) = store.append_multi(&parts(i, call)) {
            assert!(
                matches!(e, Error::Io { .. } | Error::Poisoned),
                "a failed disk must give an I/O error, not {e:?}"
            );
            return i;
        }
    }
    calls.len()
}

/// Opens `dir` with real I/O and checks that its log is exactly the first
/// `held` calls, whole, in order, for some `held` in `lo..=hi`.
fn check_recovered(dir: &Path, calls: &[Call], lo: usize, hi: usize) -> usize {
    let store = Store::open_with(dir, annals::Options::default().segment_size(SEGMENT_SIZE))
        .unwrap_or_else(|e| panic!("open after a power cut failed: {e}"));
    let all = store.read_all(0, 10_000).unwrap();
    let mut expected = Vec::new();
    let mut held = 0;
    let mut at = 0;
    for (i, call) in calls.iter().enumerate() {
        let len: usize = call.iter().map(|(_, n)| n).sum();
        if at + len > all.len() {
            break;
        }
        for (p, (stream, n)) in call.iter().enumerate() {
            for e in 0..*n {
                expected.push((stream.clone(), data(i, p, e)));
            }
        }
        at += len;
        held = i + 1;
    }
    let got: Vec<(String, Vec<u8>)> = all
        .iter()
        .map(|e| (e.stream_id.to_string(), e.data.to_vec()))
        .collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "the log ends inside a call: {} events, whole calls cover {}",
        got.len(),
        expected.len()
    );
    assert_eq!(
        got, expected,
        "recovered events are not a prefix of whole calls"
    );
    assert!(
        (lo..=hi).contains(&held),
        "recovered {held} calls; between {lo} and {hi} expected"
    );
    // Versions follow on in every stream.
    for s in 0..STREAMS {
        let stream = format!("s{s}");
        if let Ok(events) = store.read_stream(&stream, 0, 10_000) {
            for (v, e) in events.iter().enumerate() {
                assert_eq!(e.version, v as u64, "{stream}");
            }
        }
    }
    held
}

#[test]
fn power_cut_after_every_operation_keeps_whole_multi_stream_calls() {
    let seed = seed("power_loss_multi");
    let calls = plan(seed);

    let dry = tempfile::tempdir().unwrap();
    let disk = SimDisk::attach(dry.path());
    assert_eq!(run(dry.path(), &disk, &calls), CALLS);
    let total = disk.ops();
    let segments = common::file_names(dry.path())
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .count();
    assert!(
        segments >= 4,
        "the workload must rotate: {segments} segments"
    );
    eprintln!("sweeping {total} operations over {segments} segments");

    let mut rng = Rng::new(mix(seed, 1));
    let mut images_checked = 0;
    for n in 0..=total {
        let live = tempfile::tempdir().unwrap();
        let disk = SimDisk::attach(live.path());
        disk.crash_after(n);
        let acked = run(live.path(), &disk, &calls);
        assert!(disk.surprises().is_empty(), "{:?}", disk.surprises());
        let images = common::crash_images(&disk, live.path(), &mut rng);
        for image in images {
            let target = tempfile::tempdir().unwrap();
            disk.materialize(live.path(), target.path(), &image);
            let hi = if image.writes == Fate::DurableOnly {
                acked
            } else {
                acked + 1
            };
            let result = std::panic::catch_unwind(|| {
                check_recovered(target.path(), &calls, acked, hi.min(CALLS))
            });
            if let Err(panic) = result {
                eprintln!(
                    "crash after op {n} of {total}, image {image:?}, {acked} acknowledged; \
                     operations:\n{}",
                    disk.trace()
                );
                std::panic::resume_unwind(panic);
            }
            images_checked += 1;
        }
    }
    eprintln!(
        "{} crash points, {images_checked} images checked",
        total + 1
    );
}
