//! Guards exact idempotency across a crash: a client whose process dies
//! between the write and the acknowledgement does not know whether its
//! batch landed, and retries it after recovery. A child process (this test
//! binary, re-run in child mode) appends batches with fixed ids, saying on
//! a pipe "sent b" before each append and "ack b" after; the parent kills
//! it with SIGKILL at a random moment, reopens the store and retries every
//! batch the child sent, under the same expected version. Every batch must
//! then be stored exactly once: the one in flight either landed (the retry
//! is deduplicated) or did not (the retry writes it), and nothing
//! acknowledged is lost.
//!
//! `ANNALS_IDEMPOTENCY_CRASH_CYCLES=500` runs a longer soak; `ANNALS_SEED`
//! replays a run.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Options, Store, Uuid};
use common::child::TestChild;
use common::{Rng, env_count, mix, seed};

const CHILD_DIR: &str = "ANNALS_IDEM_CHILD_DIR";
const CHILD_SEED: &str = "ANNALS_IDEM_CHILD_SEED";
const CHILD_START: &str = "ANNALS_IDEM_CHILD_START";
const TEST_NAME: &str = "a_batch_in_flight_at_sigkill_is_stored_once_after_its_retry";
const STREAMS: u64 = 4;
/// A child stops by itself after this many batches; the parent kills it
/// long before.
const CHILD_BATCHES_MAX: u64 = 5_000;

fn options() -> Options {
    // Small segments, so that kills land in rotations too.
    Options::default().segment_size(64 << 10)
}

/// Batch `b`: its stream, its events' ids, and the expected version it is
/// appended under, given that every batch before it is stored once.
fn plan(seed: u64, b: u64) -> (String, Vec<Uuid>, ExpectedVersion) {
    let stream = format!("s{}", b % STREAMS);
    let len = |b: u64| 1 + mix(seed, b) % 5;
    let ids = (0..len(b))
        .map(|i| Uuid::from_u64_pair(mix(seed, b), i))
        .collect();
    // The events of the stream's earlier batches.
    let before: u64 = (b % STREAMS..b).step_by(STREAMS as usize).map(len).sum();
    let expected = match before {
        0 => ExpectedVersion::NoStream,
        n => ExpectedVersion::Exact(n - 1),
    };
    (stream, ids, expected)
}

fn events(ids: &[Uuid]) -> Vec<EventData> {
    ids.iter()
        .map(|id| EventData::new("Paid", vec![0xab; 700]).with_id(*id))
        .collect()
}

#[test]
fn a_batch_in_flight_at_sigkill_is_stored_once_after_its_retry() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
        return;
    }
    let seed = seed("idempotency_crash");
    let cycles = env_count("ANNALS_IDEMPOTENCY_CRASH_CYCLES", 25);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let (mut next, mut in_flight_landed, mut in_flight_retried) = (0u64, 0u64, 0u64);
    for cycle in 0..cycles {
        let (sent, acked) = run_child(dir.path(), seed, next, &mut rng);
        // Reopen after the kill and retry every batch the child sent.
        let store = Store::open_with(dir.path(), options())
            .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): open failed: {e}"));
        for b in next..sent {
            let (stream, ids, expected) = plan(seed, b);
            let r = store
                .append(&stream, expected, &events(&ids))
                .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): retry of {b}: {e}"));
            if b < acked {
                assert!(
                    r.deduplicated,
                    "cycle {cycle} (seed {seed}): acked batch {b} was lost"
                );
            } else if r.deduplicated {
                in_flight_landed += 1;
            } else {
                in_flight_retried += 1;
            }
        }
        next = next.max(sent);
        check(&store, seed, next, cycle);
    }
    eprintln!(
        "{cycles} kill cycles (seed {seed}): {next} batches; of those in flight at a kill, \
         {in_flight_landed} had landed (retry deduplicated), {in_flight_retried} had not (retry wrote)"
    );
}

/// Every batch `0..batches` is stored once, whole, in order, where its plan
/// says; nothing else is.
fn check(store: &Store, seed: u64, batches: u64, cycle: u64) {
    let all = store.read_all(0, usize::MAX).unwrap();
    let mut at = 0usize;
    let mut by_stream = std::collections::HashMap::<String, u64>::new();
    for b in 0..batches {
        let (stream, ids, _) = plan(seed, b);
        let version = by_stream.entry(stream.clone()).or_default();
        for id in &ids {
            let e = all
                .get(at)
                .unwrap_or_else(|| panic!("cycle {cycle} (seed {seed}): batch {b} missing"));
            assert_eq!(
                (&*e.stream_id, e.version, e.id),
                (stream.as_str(), *version, *id),
                "cycle {cycle} (seed {seed}): batch {b} at position {at}"
            );
            at += 1;
            *version += 1;
        }
    }
    assert_eq!(
        at,
        all.len(),
        "cycle {cycle} (seed {seed}): events past the last batch"
    );
}

/// Runs a child that appends from batch `start` on, kills it at a random
/// moment, and returns how far it got: the batches it said it sent (all
/// before that number, the last possibly in flight) and acknowledged.
fn run_child(dir: &Path, seed: u64, start: u64, rng: &mut Rng) -> (u64, u64) {
    let child = TestChild::spawn(
        TEST_NAME,
        &[
            (CHILD_DIR, dir.display().to_string()),
            (CHILD_SEED, seed.to_string()),
            (CHILD_START, start.to_string()),
        ],
    );
    let rx = &child.lines;
    let (mut sent, mut acked) = (start, start);
    let note = |line: &str, sent: &mut u64, acked: &mut u64| {
        if let Some(b) = line.strip_prefix("sent ") {
            *sent = b.parse::<u64>().unwrap() + 1;
        } else if let Some(b) = line.strip_prefix("ack ") {
            *acked = b.parse::<u64>().unwrap() + 1;
        }
    };
    let target = start + rng.between(1, 40);
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked < target {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => note(&line, &mut sent, &mut acked),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the child made no progress"),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // A random moment after the last acknowledgement seen: the pause is
    // the point of the test (mid-write, mid-sync, before the ack).
    std::thread::sleep(Duration::from_micros(rng.below(3_000)));
    for line in child.kill().lines {
        note(&line, &mut sent, &mut acked);
    }
    (sent, acked)
}

/// The child: appends batch after batch from `start`, announcing each.
fn child(dir: &Path) {
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let start: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let store = Store::open_with(dir, options()).unwrap();
    let mut out = std::io::stdout().lock();
    for b in start..start + CHILD_BATCHES_MAX {
        let (stream, ids, expected) = plan(seed, b);
        let evs = events(&ids);
        writeln!(out, "sent {b}").unwrap();
        out.flush().unwrap();
        store.append(&stream, expected, &evs).unwrap();
        writeln!(out, "ack {b}").unwrap();
        out.flush().unwrap();
    }
}
