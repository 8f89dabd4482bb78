//! Guards the lifecycle calls' durability against a real crash: a child
//! process (this test binary, re-run in child mode) fills fresh streams and
//! deletes, tombstones or truncates each, printing a line after every call
//! that returned Ok; the parent kills it with SIGKILL after a random number
//! of lines (and a random few microseconds more), reopens the store, and
//! checks that every acknowledged call holds: a deleted stream reads as
//! missing, a tombstoned one refuses, a truncated one starts at its bound,
//! and no read of `$all` shows a removed event. An unacknowledged call may
//! or may not be there, but whole. The child scavenges now and then, so
//! kills land inside scavenges too (mid-rewrite, mid-rename, mid-index).
//!
//! `ANNALS_LIFECYCLE_CRASH_CYCLES=500` runs longer; `ANNALS_SEED` replays.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use annals::{Error, EventData, ExpectedVersion, Options, Store};
use common::child::TestChild;
use common::{Rng, env_count, mix, seed};

const CHILD_DIR: &str = "ANNALS_LIFECYCLE_CHILD_DIR";
const CHILD_SEED: &str = "ANNALS_LIFECYCLE_CHILD_SEED";
const TEST_NAME: &str = "acknowledged_lifecycle_calls_survive_sigkill";
/// Events each stream gets before its lifecycle call.
const EVENTS: u64 = 4;
/// A truncated stream keeps the versions from this one on.
const TRUNCATE_AT: u64 = 2;

fn options() -> Options {
    // Small segments, so that calls land around rotations too.
    Options::default().segment_size(64 << 10)
}

#[test]
fn acknowledged_lifecycle_calls_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
        return;
    }
    let seed = seed("lifecycle_crash");
    let cycles = env_count("ANNALS_LIFECYCLE_CRASH_CYCLES", 30);
    let mut rng = Rng::new(mix(seed, 0x4c49_4645));
    let dir = tempfile::tempdir().unwrap();
    // What each acknowledged call did, by stream.
    let mut acked: HashMap<String, char> = HashMap::new();
    for cycle in 0..cycles {
        let kill_after = rng.below(40);
        let lines = run_child(dir.path(), mix(seed, cycle), kill_after, &mut rng);
        for line in lines {
            let mut f = line.split(' ');
            // Only the child's own lines: the test harness prints too.
            if let (Some(op @ ("d" | "t" | "r")), Some(stream)) = (f.next(), f.next())
                && stream.starts_with("s-")
            {
                let op = op.chars().next().unwrap_or('?');
                acked.insert(stream.to_owned(), op);
            }
        }
        check(dir.path(), &acked);
    }
    eprintln!(
        "lifecycle_crash: {cycles} kills, {} acknowledged calls checked",
        acked.len()
    );
}

fn check(dir: &Path, acked: &HashMap<String, char>) {
    let store = Store::open_with(dir, options()).unwrap();
    for (stream, op) in acked {
        match op {
            'd' => {
                assert!(
                    matches!(
                        store.read_stream(stream, 0, 10),
                        Err(Error::StreamNotFound { .. })
                    ),
                    "acknowledged delete of {stream} lost"
                );
                assert_eq!(store.stream_version(stream), None);
            }
            't' => assert!(
                matches!(
                    store.read_stream(stream, 0, 10),
                    Err(Error::StreamDeleted { .. })
                ),
                "acknowledged tombstone of {stream} lost"
            ),
            'r' => {
                let v: Vec<u64> = store
                    .read_stream(stream, 0, 10)
                    .unwrap()
                    .iter()
                    .map(|e| e.version)
                    .collect();
                assert_eq!(v, (TRUNCATE_AT..EVENTS).collect::<Vec<_>>(), "{stream}");
            }
            _ => unreachable!(),
        }
    }
    let all = store.read_all(0, usize::MAX).unwrap();
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    for e in &all {
        match acked.get(&*e.stream_id) {
            Some('d' | 't') => panic!("read_all shows {} of a deleted stream", e.stream_id),
            Some('r') => assert!(e.version >= TRUNCATE_AT),
            _ => {}
        }
    }
    store.close().unwrap();
}

/// Runs the child until it has printed `kill_after` lines (or ended), then
/// kills it a few microseconds later; returns the whole lines it printed.
fn run_child(dir: &Path, seed: u64, kill_after: u64, rng: &mut Rng) -> Vec<String> {
    let child = TestChild::spawn(
        TEST_NAME,
        &[
            (CHILD_DIR, dir.display().to_string()),
            (CHILD_SEED, seed.to_string()),
        ],
    );
    let rx = &child.lines;
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (lines.len() as u64) < kill_after && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    // A few microseconds more: the kill lands mid-write or mid-sync.
    let until = Instant::now() + Duration::from_micros(rng.below(2_000));
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    // Lines sent before the kill that the loop above did not take.
    lines.extend(child.kill().lines);
    lines
}

/// The child: fresh streams, each filled and then deleted, tombstoned or
/// truncated; a line after each call that returned Ok.
fn child(dir: &Path) {
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let mut rng = Rng::new(seed);
    let store = Store::open_with(dir, options()).unwrap();
    for i in 0..10_000u64 {
        let stream = format!("s-{seed:x}-{i}");
        let events: Vec<EventData> = (0..EVENTS)
            .map(|v| EventData::new("T", vec![v as u8; rng.below(3000) as usize]))
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, &events)
            .unwrap();
        println!("a {stream}");
        let op = match rng.below(3) {
            0 => {
                store
                    .delete_stream(&stream, ExpectedVersion::Exact(EVENTS - 1))
                    .unwrap();
                'd'
            }
            1 => {
                store
                    .tombstone_stream(&stream, ExpectedVersion::Any)
                    .unwrap();
                't'
            }
            _ => {
                store.truncate_stream_before(&stream, TRUNCATE_AT).unwrap();
                'r'
            }
        };
        println!("{op} {stream}");
        if rng.below(8) == 0 {
            store.scavenge().unwrap();
            println!("scavenged");
        }
    }
}
