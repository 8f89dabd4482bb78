//! Guards `$all` retention against a real crash: a child process (this
//! test binary, re-run in child mode) appends to one stream of a store that
//! keeps three small segments, so that nearly every seal drops the oldest
//! one, and reports each acknowledged append; the parent kills it with
//! SIGKILL at a random moment (mid-append, mid-seal, mid-drop, during the
//! open's own retention) and checks that every acknowledged event the log
//! still holds is there byte for byte, that versions and positions go on
//! from where the log starts, that no segment below that start is left
//! after a writable open, and that the versions never go back.
//!
//! `ANNALS_RETENTION_KILL_CYCLES=500` runs longer; `ANNALS_SEED` replays.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use annals::{EventData, ExpectedVersion, Options, Store};
use common::child::TestChild;
use common::{Rng, env_count, mix, seed};

const CHILD_DIR: &str = "ANNALS_RETENTION_CHILD_DIR";
const TEST_NAME: &str = "retention_survives_sigkill";
const SEGMENT_SIZE: u64 = 16 << 10;

fn options() -> Options {
    Options::default()
        .segment_size(SEGMENT_SIZE)
        .retain_bytes(3 * SEGMENT_SIZE)
}

fn data(v: u64) -> Vec<u8> {
    format!("event-{v}-")
        .repeat(1 + (v % 50) as usize)
        .into_bytes()
}

#[test]
fn retention_survives_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
        return;
    }
    let seed = seed("retention_kill");
    let cycles = env_count("ANNALS_RETENTION_KILL_CYCLES", 40);
    let mut rng = Rng::new(mix(seed, 0x5245_4b49));
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Option<u64> = None;
    let mut last_seen: Option<u64> = None;
    let mut dropped_seen = false;
    for cycle in 0..cycles {
        let child = TestChild::spawn(TEST_NAME, &[(CHILD_DIR, dir.path().display().to_string())]);
        let target = rng.between(1, 120);
        let mut acks = 0;
        while acks < target {
            match child.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(v) = line.strip_prefix("ack ") {
                        acked = Some(v.trim().parse().unwrap());
                        acks += 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("cycle {cycle}: no progress (seed {seed})")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // A random moment after the last acknowledgement seen.
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        let ended = child.kill();
        for line in &ended.lines {
            if let Some(v) = line.strip_prefix("ack ") {
                acked = Some(v.trim().parse().unwrap());
            }
        }
        assert!(
            !ended.stderr.contains("panicked") && !ended.stderr.contains("child error"),
            "cycle {cycle}: the child failed (seed {seed}):\n{}",
            ended.stderr
        );

        let store = Store::open_with(dir.path(), options()).unwrap_or_else(|e| {
            panic!("cycle {cycle}: open after SIGKILL failed (seed {seed}): {e}")
        });
        let last = store.stream_version("s");
        assert!(
            last >= acked && last >= last_seen,
            "cycle {cycle}: stream at {last:?}, acknowledged {acked:?}, seen before {last_seen:?} (seed {seed})"
        );
        last_seen = last;
        let events = store.read_stream("s", 0, 100_000).unwrap();
        if let (Some(first), Some(last)) = (events.first(), last) {
            dropped_seen |= first.version > 0;
            assert_eq!(
                events.last().unwrap().version,
                last,
                "cycle {cycle} (seed {seed})"
            );
            for (k, e) in events.iter().enumerate() {
                assert_eq!(
                    e.version,
                    first.version + k as u64,
                    "cycle {cycle} (seed {seed})"
                );
                assert_eq!(
                    &e.data[..],
                    &data(e.version)[..],
                    "cycle {cycle} (seed {seed})"
                );
            }
            let all = store.read_all(0, 100_000).unwrap();
            assert_eq!(all, events, "cycle {cycle}: read_all (seed {seed})");
        }
        let numbers: Vec<u64> = common::file_names(dir.path())
            .iter()
            .filter_map(|n| n.strip_suffix(".seg")?.parse().ok())
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1) && numbers.len() <= 6,
            "cycle {cycle}: segments {numbers:?} (seed {seed})"
        );
    }
    assert!(dropped_seen, "no cycle saw a dropped segment (seed {seed})");
}

/// The child: appends single events to `s` until killed, one line per
/// acknowledged append.
fn child(dir: &Path) {
    let store = match Store::open_with(dir, options()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("child error: open failed: {e}");
            std::process::exit(2);
        }
    };
    for _ in 0..100_000 {
        let v = store.stream_version("s").map_or(0, |v| v + 1);
        let expected = v
            .checked_sub(1)
            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match store.append("s", expected, &[EventData::new("E", data(v))]) {
            Ok(_) => {
                let mut out = std::io::stdout().lock();
                out.write_all(format!("ack {v}\n").as_bytes()).unwrap();
                out.flush().unwrap();
            }
            Err(e) => {
                eprintln!("child error: append s@{v} failed: {e:?}");
                std::process::exit(3);
            }
        }
    }
}
