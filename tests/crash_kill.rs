//! Guards the durability and atomicity promises against a real crash: a
//! child process (this test binary, re-run in child mode) appends random
//! batches to random streams from one to three threads and reports each
//! acknowledged append over a pipe; the parent kills it with SIGKILL at a
//! random moment — while appending, rotating, preparing a segment, or
//! recovering at open — then checks that every acknowledged batch is there,
//! whole, in order and byte for byte, that no partial batch is visible and
//! positions and versions are dense, and goes on from there.
//!
//! `ANNALS_CRASH_CYCLES=5000 cargo test --release --test crash_kill` runs a
//! long soak; `ANNALS_SEED` replays a run.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use annals::{Options, Store};
use common::child::TestChild;
use common::{BatchAt, Rng, Workload, env_count, mix, seed};

/// Set in the child: the data directory it appends to.
const CHILD_DIR: &str = "ANNALS_CRASH_CHILD_DIR";
const CHILD_SEED: &str = "ANNALS_CRASH_CHILD_SEED";
const CHILD_CYCLE: &str = "ANNALS_CRASH_CHILD_CYCLE";
/// The name of the test, which is both parent and child.
const TEST_NAME: &str = "acknowledged_appends_survive_sigkill";

const SEGMENT_SIZE: u64 = 64 << 10;
/// A fresh data directory every this many cycles, so that a long soak does
/// not spend its time re-reading an ever larger store.
const CYCLES_PER_DIR: u64 = 200;
/// A child stops by itself after this many appends per thread; the parent
/// kills it long before.
const CHILD_APPENDS_MAX: u64 = 2_000;

fn workload(seed: u64) -> Workload {
    Workload {
        seed,
        streams: 12,
        max_data: 8_000,
        max_batch: 6,
    }
}

fn options() -> Options {
    Options::default().segment_size(SEGMENT_SIZE)
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
        return;
    }
    let seed = seed("crash_kill");
    let cycles = env_count("ANNALS_CRASH_CYCLES", 100);
    let w = workload(seed);
    let mut rng = Rng::new(mix(seed, 0x4b49_4c4c));
    let mut dir = tempfile::tempdir().unwrap();
    // The batches acknowledged by any child on the current directory, and
    // what the last check found there.
    let mut acked: HashMap<(String, u64), (u64, u64)> = HashMap::new();
    let mut seen: Vec<BatchAt> = Vec::new();
    let (mut acks_total, mut early_kills, mut child_exits) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    for cycle in 0..cycles {
        if cycle > 0 && cycle % CYCLES_PER_DIR == 0 {
            dir = tempfile::tempdir().unwrap();
            acked.clear();
            seen.clear();
        }
        let (lines, exited) = run_child(dir.path(), seed, cycle, &mut rng, &mut early_kills);
        child_exits += u64::from(exited);
        for line in lines {
            let mut f = line.split(' ');
            let (Some("ack"), Some(stream), Some(v), Some(n), Some(p)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let key = (stream.to_owned(), v.parse().unwrap());
            acked.insert(key, (n.parse().unwrap(), p.parse().unwrap()));
            acks_total += 1;
        }
        seen = check(dir.path(), &w, &acked, &seen, cycle);
    }
    eprintln!(
        "{cycles} kill cycles in {:.1?}: {acks_total} acknowledged appends checked, \
         {early_kills} kills before the first acknowledgement, {child_exits} children \
         that finished before the kill",
        started.elapsed()
    );
    assert!(
        acks_total >= cycles,
        "the children acknowledged too little for the test to mean much"
    );
}

/// Runs one child on `dir` and kills it; returns the lines it wrote and
/// whether it ended by itself before the kill.
fn run_child(
    dir: &Path,
    seed: u64,
    cycle: u64,
    rng: &mut Rng,
    early_kills: &mut u64,
) -> (Vec<String>, bool) {
    let child = TestChild::spawn(
        TEST_NAME,
        &[
            (CHILD_DIR, dir.display().to_string()),
            (CHILD_SEED, seed.to_string()),
            (CHILD_CYCLE, cycle.to_string()),
        ],
    );
    let rx = &child.lines;

    let mut lines = Vec::new();
    let mut acks = 0u64;
    let mut exited = false;
    // Where to kill: mostly after a random number of acknowledgements and
    // a random few microseconds more (mid-write, mid-fsync, mid-rotation);
    // sometimes within the first milliseconds (start-up, recovery).
    let deadline = Instant::now() + Duration::from_secs(60);
    if rng.percent(15) {
        *early_kills += 1;
        let until = Instant::now() + Duration::from_micros(rng.below(15_000));
        while Instant::now() < until {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    exited = true;
                    break;
                }
            }
        }
    } else {
        let target = rng.between(1, 60);
        while acks < target {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    acks += u64::from(line.starts_with("ack "));
                    lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("cycle {cycle}: the child made no progress for a minute")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    exited = true;
                    break;
                }
            }
        }
        // A random moment after the last acknowledgement seen: the pause is
        // the point of the test, not a wait for something to settle.
        std::thread::sleep(Duration::from_micros(rng.below(4_000)));
    }
    let ended = child.kill();
    lines.extend(ended.lines);
    let (status, stderr) = (ended.status, ended.stderr);
    if exited {
        // A child that ended by itself must have ended well.
        assert!(
            status.success() && !stderr.contains("panicked"),
            "cycle {cycle}: the child failed ({status}):\n{stderr}"
        );
    } else {
        assert!(
            !stderr.contains("panicked") && !stderr.contains("child error"),
            "cycle {cycle}: the child reported a failure before the kill:\n{stderr}"
        );
    }
    (lines, exited)
}

/// Opens the store (read-only on odd cycles, so that the next child does
/// the repair and may be killed in the middle of it) and checks it against
/// the acknowledgements and the previous check.
fn check(
    dir: &Path,
    w: &Workload,
    acked: &HashMap<(String, u64), (u64, u64)>,
    seen_before: &[BatchAt],
    cycle: u64,
) -> Vec<BatchAt> {
    let seed = w.seed;
    let store = if cycle % 2 == 1 {
        Store::open_read_only(dir)
    } else {
        Store::open_with(dir, options())
    };
    let store = match store {
        Ok(store) => store,
        // A child killed before it created the store leaves an empty
        // directory, which only a writable open accepts.
        Err(_) if acked.is_empty() && cycle % 2 == 1 => return Vec::new(),
        Err(e) => panic!("cycle {cycle}: open after SIGKILL failed (seed {seed}): {e}"),
    };
    let found = w.verify(&store);
    let by_start: HashMap<(&str, u64), &BatchAt> = found
        .batches
        .iter()
        .map(|b| ((b.stream.as_str(), b.first_version), b))
        .collect();
    for ((stream, v), (n, p)) in acked {
        let b = by_start.get(&(stream.as_str(), *v)).unwrap_or_else(|| {
            panic!("cycle {cycle}: acknowledged batch {stream}@{v} is lost (seed {seed})")
        });
        assert_eq!(
            (b.len, b.first_position),
            (*n, *p),
            "cycle {cycle}: acknowledged batch {stream}@{v} changed (seed {seed})"
        );
    }
    // What one check saw, the next sees too: a kill loses no page cache,
    // so a whole frame once visible stays.
    assert!(
        found.batches.len() >= seen_before.len()
            && found.batches[..seen_before.len()] == *seen_before,
        "cycle {cycle}: batches seen by the last check changed (seed {seed})"
    );
    found.batches
}

/// The child: appends until killed, one line per acknowledged append.
fn child(dir: &Path) {
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let cycle: u64 = std::env::var(CHILD_CYCLE).unwrap().parse().unwrap();
    let w = workload(seed);
    let mut rng = Rng::new(mix(mix(seed, cycle), 0x4348_494c));
    let store = match Store::open_with(dir, options()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("child error: open failed: {e}");
            std::process::exit(2);
        }
    };
    let threads = rng.between(1, 3) as usize;
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (store, failed) = (&store, &failed);
            let mut rng = Rng::new(mix(rng.next_u64(), t as u64));
            scope.spawn(move || {
                // Each thread owns the streams s with s % threads == t, so
                // it knows their versions and appends with Exact.
                let own: Vec<String> = (0..w.streams)
                    .filter(|s| s % threads == t)
                    .map(|s| w.stream_name(s))
                    .collect();
                for _ in 0..CHILD_APPENDS_MAX {
                    let stream = &own[rng.below(own.len() as u64) as usize];
                    let v = store.stream_version(stream).map_or(0, |v| v + 1);
                    let batch = w.batch(stream, v);
                    match store.append(stream, Workload::expected(v), &batch) {
                        Ok(r) => {
                            let line = format!(
                                "ack {stream} {v} {} {}\n",
                                batch.len(),
                                r.first_position()
                            );
                            let mut out = std::io::stdout().lock();
                            out.write_all(line.as_bytes()).unwrap();
                            out.flush().unwrap();
                        }
                        Err(e) => {
                            // Every thread's error is printed whole before
                            // the child exits: the first failure is the one
                            // that says why (the others are `Poisoned`).
                            eprintln!("child error: append {stream}@{v} failed: {e:?}");
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
    });
    if failed.load(std::sync::atomic::Ordering::Relaxed) {
        std::process::exit(3);
    }
}
