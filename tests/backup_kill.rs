//! Guards the promise that a half-written backup is never mistaken for a
//! good one: a child process (this test binary, re-run in child mode)
//! appends to a store and backs it up into one destination, again and
//! again, saying on a pipe when each run starts and what each run that
//! completed holds; the parent kills it with SIGKILL at a random moment
//! just after a run started. The destination must then either not open as
//! a store (the run was cut short under its marker) or open, verify on a
//! writable open, and hold exactly a prefix of the origin at least as long
//! as the last backup reported complete. The next child backs up into the
//! same destination, so runs that follow a cut-short one are tested too.
//!
//! `ANNALS_BACKUP_KILLS=200 cargo test --release --test backup_kill` runs a
//! long soak; `ANNALS_SEED` replays a run.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use annals::{Error, EventData, ExpectedVersion, Options, Store};
use common::{Rng, env_count, mix, seed};

const CHILD_ORIGIN: &str = "ANNALS_BACKUP_CHILD_ORIGIN";
const CHILD_DEST: &str = "ANNALS_BACKUP_CHILD_DEST";
const TEST_NAME: &str = "a_killed_backup_is_never_taken_for_a_good_one";

const SEGMENT_SIZE: u64 = 256 << 10;
/// Events a child appends between two backups: about a segment's worth, so
/// that every run copies a new segment whole and extends another.
const EVENTS_PER_ROUND: u64 = 60;
/// A child stops by itself after this many rounds; the parent kills it
/// long before.
const CHILD_ROUNDS_MAX: u64 = 1_000;

fn options() -> Options {
    Options::default().segment_size(SEGMENT_SIZE)
}

/// The child: append a round, back up, report, forever.
fn child(origin: &Path, dest: &Path) {
    let store = Store::open_with(origin, options()).unwrap();
    let mut out = std::io::stdout().lock();
    for round in 0..CHILD_ROUNDS_MAX {
        for i in 0..EVENTS_PER_ROUND {
            let data = vec![(round + i) as u8; 3_000];
            store
                .append(
                    &format!("s-{}", i % 7),
                    ExpectedVersion::Any,
                    &[EventData::new("T", data)],
                )
                .unwrap();
        }
        writeln!(out, "start").unwrap();
        out.flush().unwrap();
        let report = store.backup(dest).unwrap();
        writeln!(out, "done {}", report.events).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_killed_backup_is_never_taken_for_a_good_one() {
    if let (Ok(origin), Ok(dest)) = (std::env::var(CHILD_ORIGIN), std::env::var(CHILD_DEST)) {
        child(Path::new(&origin), Path::new(&dest));
        return;
    }
    let seed = seed("backup_kill");
    let kills = env_count("ANNALS_BACKUP_KILLS", 12);
    let mut rng = Rng::new(mix(seed, 0x4241_434b));
    let origin = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    // What the last completed backup held, as its child reported it.
    let mut good = 0u64;
    let (mut incomplete, mut whole) = (0u64, 0u64);
    for _ in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ORIGIN, origin.path())
            .env(CHILD_DEST, &dest)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill just after the start of a random run: one of the first few,
        // so that most kills land in a backup rather than in the appends.
        let target = rng.between(1, 4);
        let mut starts = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(events) = line.strip_prefix("done ") {
                good = events.parse().unwrap();
            } else if line == "start" {
                starts += 1;
                if starts == target {
                    break;
                }
            }
        }
        // The crash moment within the run: a random few milliseconds, the
        // span of one run on a quiet machine.
        std::thread::sleep(Duration::from_micros(rng.below(4_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        // A line the child wrote before it died may still be in the pipe.
        for line in lines {
            if let Some(events) = line.unwrap().strip_prefix("done ") {
                good = events.parse().unwrap();
            }
        }

        let origin_store = Store::open_with(origin.path(), options()).unwrap();
        match Store::open_read_only(&dest) {
            Err(Error::NotAStore { reason, .. }) => {
                assert!(reason.contains("BACKUP-INCOMPLETE"), "{reason}");
                incomplete += 1;
            }
            Err(e) => panic!("seed {seed}: the backup is neither good nor marked: {e}"),
            Ok(copy) => {
                whole += 1;
                let n = copy.global_position();
                assert!(
                    n >= good,
                    "seed {seed}: the backup holds {n} events, {good} were reported"
                );
                assert!(n <= origin_store.global_position());
                let mut at = 0;
                while at < n {
                    let got = copy.read_all(at, 500).unwrap();
                    assert_eq!(
                        got,
                        origin_store.read_all(at, got.len()).unwrap(),
                        "seed {seed}"
                    );
                    at += got.len() as u64;
                }
                drop(copy);
                // A writable open checks every frame it scans and refuses
                // any damage; it also changes the backup, which the next
                // run must then notice and copy again.
                let copy = Store::open_with(&dest, options()).unwrap();
                assert_eq!(copy.global_position(), n);
            }
        }
    }
    eprintln!("backup_kill: {kills} kills: {incomplete} left the marker, {whole} a good backup");
}
