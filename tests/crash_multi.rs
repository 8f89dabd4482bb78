//! Guards the atomicity of multi-stream appends against a real crash: a
//! child process (this test binary, re-run in child mode) makes
//! `append_multi` calls of 2 to 4 streams each, from one to three threads,
//! into small segments that rotate often, and reports each acknowledged
//! call over a pipe; the parent kills it with SIGKILL at a random moment,
//! then reopens the store and checks that every call is there whole (every
//! part, every event, consecutive, in the order given) or not at all, and
//! that every acknowledged call is there.
//!
//! Each event's data says which call it belongs to and where in it, so the
//! check needs nothing but the log. `ANNALS_CRASH_CYCLES` sets the number
//! of kills; `ANNALS_SEED` replays a run.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Options, Store, StreamAppend};
use common::child::TestChild;
use common::{Rng, env_count, mix, seed};

const CHILD_DIR: &str = "ANNALS_CRASH_MULTI_DIR";
const CHILD_SEED: &str = "ANNALS_CRASH_MULTI_SEED";
const CHILD_CYCLE: &str = "ANNALS_CRASH_MULTI_CYCLE";
const TEST_NAME: &str = "multi_stream_appends_are_all_or_nothing_after_sigkill";
const SEGMENT_SIZE: u64 = 64 << 10;
const STREAMS: u64 = 10;
const CHILD_CALLS_MAX: u64 = 2_000;

fn options() -> Options {
    Options::default().segment_size(SEGMENT_SIZE)
}

/// Which call an event belongs to and where in it: read back from its data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Call {
    cycle: u64,
    thread: u64,
    seq: u64,
}

struct Tag {
    call: Call,
    total: u64,
    index: u64,
    part: u64,
}

fn tag(data: &[u8]) -> Tag {
    let text = std::str::from_utf8(data).expect("event data is the child's text");
    let f: Vec<u64> = text
        .split(' ')
        .take(6)
        .map(|n| n.parse().expect("a number"))
        .collect();
    Tag {
        call: Call {
            cycle: f[0],
            thread: f[1],
            seq: f[2],
        },
        total: f[3],
        index: f[4],
        part: f[5],
    }
}

#[test]
fn multi_stream_appends_are_all_or_nothing_after_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
        return;
    }
    let seed = seed("crash_multi");
    let cycles = env_count("ANNALS_CRASH_CYCLES", 40);
    let mut rng = Rng::new(mix(seed, 0x4d55_4c54));
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<Call, u64> = HashMap::new();
    let mut seen_calls = 0usize;
    let mut acks_total = 0u64;
    for cycle in 0..cycles {
        for line in run_child(dir.path(), seed, cycle, &mut rng) {
            let f: Vec<&str> = line.split(' ').collect();
            if let ["ack", thread, seq, position] = f[..] {
                let call = Call {
                    cycle,
                    thread: thread.parse().unwrap(),
                    seq: seq.parse().unwrap(),
                };
                acked.insert(call, position.parse().unwrap());
                acks_total += 1;
            }
        }
        seen_calls = check(dir.path(), &acked, seen_calls, cycle, seed);
    }
    eprintln!(
        "{cycles} kills: {acks_total} acknowledged multi appends, {seen_calls} calls in the log"
    );
    assert!(acks_total >= cycles, "the children acknowledged too little");
}

/// Runs a child on `dir`, kills it at a random moment, returns its lines.
fn run_child(dir: &Path, seed: u64, cycle: u64, rng: &mut Rng) -> Vec<String> {
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
    let target = rng.between(1, 40);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acks = 0;
    while acks < target {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                acks += u64::from(line.starts_with("ack "));
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("cycle {cycle}: the child made no progress")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // A random moment after the last acknowledgement: mid-write, mid-sync,
    // mid-rotation. The pause is the point, not a wait for anything.
    std::thread::sleep(Duration::from_micros(rng.below(3_000)));
    let ended = child.kill();
    lines.extend(ended.lines);
    let stderr = ended.stderr;
    assert!(
        !stderr.contains("panicked") && !stderr.contains("child error"),
        "cycle {cycle}: the child failed before the kill:\n{stderr}"
    );
    lines
}

/// Reopens the store (read-only on odd cycles) and checks every call is
/// whole or absent, every acknowledged one present at its position, and no
/// call seen before lost. Returns how many calls the log holds.
fn check(
    dir: &Path,
    acked: &HashMap<Call, u64>,
    seen_before: usize,
    cycle: u64,
    seed: u64,
) -> usize {
    let store = if cycle % 2 == 1 {
        Store::open_read_only(dir)
    } else {
        Store::open_with(dir, options())
    }
    .unwrap_or_else(|e| panic!("cycle {cycle}: open after SIGKILL failed (seed {seed}): {e}"));
    let events = store.read_all(0, usize::MAX).unwrap();
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut calls: HashMap<Call, u64> = HashMap::new();
    let mut i = 0;
    while i < events.len() {
        let first = tag(&events[i].data);
        assert_eq!(
            first.index, 0,
            "cycle {cycle}: a call starts mid-way at position {} (seed {seed})",
            events[i].position
        );
        let end = i + first.total as usize;
        assert!(
            end <= events.len(),
            "cycle {cycle}: call {:?} is cut short at the end of the log (seed {seed})",
            first.call
        );
        let mut streams: HashSet<&str> = HashSet::new();
        let mut part = u64::MAX;
        for (k, e) in events[i..end].iter().enumerate() {
            let t = tag(&e.data);
            assert_eq!(
                (t.call.clone(), t.index, t.total),
                (first.call.clone(), k as u64, first.total),
                "cycle {cycle}: position {} (seed {seed})",
                e.position
            );
            if t.part != part {
                assert!(
                    streams.insert(&e.stream_id),
                    "cycle {cycle}: a stream's events split in a call (seed {seed})"
                );
                part = t.part;
            }
            let v = versions.entry(e.stream_id.to_string()).or_insert(0);
            assert_eq!(
                e.version, *v,
                "cycle {cycle}: versions not dense (seed {seed})"
            );
            *v += 1;
        }
        assert!(streams.len() >= 2);
        calls.insert(first.call, events[i].position);
        i = end;
    }
    for (call, position) in acked {
        assert_eq!(
            calls.get(call),
            Some(position),
            "cycle {cycle}: acknowledged call {call:?} lost or moved (seed {seed})"
        );
    }
    assert!(
        calls.len() >= seen_before,
        "cycle {cycle}: calls seen before are gone (seed {seed})"
    );
    calls.len()
}

/// The child: multi appends until killed, one line per acknowledged call.
fn child(dir: &Path) {
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let cycle: u64 = std::env::var(CHILD_CYCLE).unwrap().parse().unwrap();
    let mut rng = Rng::new(mix(mix(seed, cycle), 0x4348_494c));
    let store = match Store::open_with(dir, options()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("child error: open failed: {e}");
            std::process::exit(2);
        }
    };
    let threads = rng.between(1, 3);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = &store;
            let mut rng = Rng::new(mix(rng.next_u64(), t));
            scope.spawn(move || {
                for seq in 0..CHILD_CALLS_MAX {
                    let n = rng.between(2, 4);
                    let mut streams: Vec<u64> = Vec::new();
                    while (streams.len() as u64) < n {
                        let s = rng.below(STREAMS);
                        if !streams.contains(&s) {
                            streams.push(s);
                        }
                    }
                    let counts: Vec<u64> = streams.iter().map(|_| rng.between(1, 3)).collect();
                    let total: u64 = counts.iter().sum();
                    let mut index = 0;
                    let parts: Vec<StreamAppend> = streams
                        .iter()
                        .zip(&counts)
                        .enumerate()
                        .map(|(p, (s, count))| {
                            let events = (0..*count)
                                .map(|_| {
                                    let mut data =
                                        format!("{cycle} {t} {seq} {total} {index} {p} ")
                                            .into_bytes();
                                    data.resize(data.len() + rng.below(3_000) as usize, b'.');
                                    index += 1;
                                    EventData::new("M", data)
                                })
                                .collect();
                            StreamAppend::new(format!("s-{s}"), ExpectedVersion::Any, events)
                        })
                        .collect();
                    match store.append_multi(&parts) {
                        Ok(results) => {
                            let line = format!("ack {t} {seq} {}\n", results[0].first_position());
                            let mut out = std::io::stdout().lock();
                            out.write_all(line.as_bytes()).unwrap();
                            out.flush().unwrap();
                        }
                        Err(e) => {
                            eprintln!("child error: append_multi failed: {e}");
                            std::process::exit(3);
                        }
                    }
                }
            });
        }
    });
}
