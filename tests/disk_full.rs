//! Guards what happens when the disk fills up for real: a child process
//! under a file-size limit (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored so the
//! kernel answers `EFBIG` instead of killing it) runs out of room — in the
//! middle of a frame, while creating a segment at rotation, or while
//! creating the first segment — and must get a clear I/O error, never a
//! panic, with no partial batch visible; a reopen without the limit is
//! clean and holds exactly the acknowledged appends.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use annals::{Error, Options, Store};
use common::{Workload, seed};

/// Set in the child: the data directory.
const CHILD_DIR: &str = "ANNALS_DISK_FULL_CHILD_DIR";
const CHILD_SEED: &str = "ANNALS_DISK_FULL_CHILD_SEED";

const SEGMENT_SIZE: u64 = 64 << 10;
/// Below the segment size: a segment cannot be created in full, and frames
/// past this offset cannot be written.
const LIMIT: u64 = 40 << 10;

fn workload(seed: u64) -> Workload {
    Workload {
        seed,
        streams: 3,
        max_data: 3_000,
        max_batch: 4,
    }
}

/// Small single-event batches, to fill a segment to a known level without
/// crossing into the next.
fn small_workload(seed: u64) -> Workload {
    Workload {
        seed,
        streams: 3,
        max_data: 800,
        max_batch: 1,
    }
}

fn options(prepare_ahead: bool) -> Options {
    Options::default()
        .segment_size(SEGMENT_SIZE)
        .prepare_segments_ahead(prepare_ahead)
}

/// Held by each test's parent side, so that the tests of this file run one
/// at a time. They spawn children, and a child briefly holds a copy of
/// every descriptor of this process between its fork and its exec,
/// including another test's directory lock: a reopen in that instant would
/// see the lock held (a property of `flock` and `fork`, not of annals).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the test `name` again as a child on `dir`, and returns its stdout.
fn run_child(name: &str, dir: &Path, seed: u64) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_DIR, dir)
        .env(CHILD_SEED, seed.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("child done"),
        "the child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("the child said:\n{stdout}");
    stdout
}

/// In the child: limits every file this process writes to `LIMIT` bytes
/// and turns the signal for going past it into an `EFBIG` error.
fn limit_file_size() {
    // SAFETY: plain libc calls on a struct we own, before any thread that
    // could race on the process's signal disposition or limits is started.
    unsafe {
        assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = LIMIT;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// Asserts that `e` is the I/O error of a full disk, and that its message
/// says what annals was doing and on which file.
fn assert_file_too_large(e: &Error, op: &str) {
    match e {
        Error::Io { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::EFBIG), "{e}");
            let message = e.to_string();
            assert!(
                message.contains(op) && message.contains(".seg"),
                "the message should name the operation ({op}) and the file: {message}"
            );
        }
        other => panic!("a full disk must give Error::Io, not {other:?}"),
    }
}

/// In the child: appends until the limit stops an append; checks the
/// error, that the store refuses further appends and that reads show
/// exactly what was acknowledged. Prints the count for the parent.
fn append_until_full(store: &Store, w: &Workload, op: &str, first: usize) -> usize {
    let mut acked = first;
    let mut next = vec![0u64; w.streams];
    for (s, n) in next.iter_mut().enumerate() {
        *n = store.stream_version(&w.stream_name(s)).map_or(0, |v| v + 1);
    }
    for i in 0.. {
        assert!(i < 10_000, "the limit never stopped an append");
        let s = i % w.streams;
        let stream = w.stream_name(s);
        let v = next[s];
        let batch = w.batch(&stream, v);
        match store.append(&stream, Workload::expected(v), &batch) {
            Ok(_) => {
                acked += 1;
                next[s] += batch.len() as u64;
            }
            Err(e) => {
                assert_file_too_large(&e, op);
                println!("error: {e}");
                break;
            }
        }
    }
    let after = store.append("late", annals::ExpectedVersion::Any, &w.batch("late", 0));
    assert!(
        matches!(after, Err(Error::Poisoned)),
        "a store that failed to write must refuse appends: {after:?}"
    );
    assert_eq!(
        w.verify(store).batches.len(),
        acked,
        "reads after the error"
    );
    println!("acked {acked}");
    acked
}

fn reported_acks(stdout: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("acked "))
        .expect("the child reports its count")
        .parse()
        .unwrap()
}

/// Reopens without the limit: exactly `acked` appends, and the store takes
/// more, across a rotation, and keeps them.
fn check_clean_reopen(dir: &Path, w: &Workload, acked: usize) {
    let store = Store::open_with(dir, options(true))
        .unwrap_or_else(|e| panic!("reopen without the limit failed: {e}"));
    assert_eq!(w.verify(&store).batches.len(), acked);
    let before = store.stats().segments;
    let mut i = 0;
    while store.stats().segments < before + 2 {
        w.append_next(&store, i).unwrap();
        i += 1;
    }
    drop(store);
    let store = Store::open_with(dir, options(true)).unwrap();
    assert_eq!(w.verify(&store).batches.len(), acked + i);
    let leftovers: Vec<String> = common::file_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-made segments left: {leftovers:?}"
    );
}

#[test]
fn a_frame_that_runs_past_the_limit_fails_cleanly() {
    const NAME: &str = "a_frame_that_runs_past_the_limit_fails_cleanly";
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let w = workload(std::env::var(CHILD_SEED).unwrap().parse().unwrap());
        limit_file_size();
        // Segments are prepared ahead (the default): that preparation runs
        // out of room in the background first, which must cost nothing.
        let store = Store::open_with(&dir, options(true)).unwrap();
        append_until_full(&store, &w, "write frame", 0);
        drop(store);
        println!("child done");
        return;
    }
    let _serial = serial();
    let seed = seed("disk_full_frame");
    let w = workload(seed);
    let dir = tempfile::tempdir().unwrap();
    // The store (one full-size segment) is made without the limit.
    drop(Store::open_with(dir.path(), options(true)).unwrap());
    let stdout = run_child(NAME, dir.path(), seed);
    check_clean_reopen(dir.path(), &w, reported_acks(&stdout));
}

#[test]
fn a_segment_that_cannot_be_created_at_rotation_fails_cleanly() {
    const NAME: &str = "a_segment_that_cannot_be_created_at_rotation_fails_cleanly";
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let w = small_workload(std::env::var(CHILD_SEED).unwrap().parse().unwrap());
        limit_file_size();
        let store = Store::open_with(&dir, options(false)).unwrap();
        let first = w.verify(&store).batches.len();
        // The active segment is full past the limit: the next append must
        // rotate, and zero-filling the new segment runs out of room.
        let big = store.append(
            "big",
            annals::ExpectedVersion::Any,
            &[annals::EventData::new("Big", vec![7u8; 8 << 10])],
        );
        let e = big.expect_err("a new segment cannot be made under the limit");
        assert_file_too_large(&e, "segment");
        println!("error: {e}");
        assert!(matches!(
            store.append("late", annals::ExpectedVersion::Any, &w.batch("late", 0)),
            Err(Error::Poisoned)
        ));
        assert_eq!(w.verify(&store).batches.len(), first);
        println!("acked {first}");
        drop(store);
        println!("child done");
        return;
    }
    let _serial = serial();
    let seed = seed("disk_full_rotation");
    let w = small_workload(seed);
    let dir = tempfile::tempdir().unwrap();
    // Without the limit, fill segment 0 to within 8 KiB of its end.
    let store = Store::open_with(dir.path(), options(false)).unwrap();
    let mut acked = 0;
    while store.stats().bytes_used < SEGMENT_SIZE - (8 << 10) {
        w.append_next(&store, acked).unwrap();
        acked += 1;
    }
    assert_eq!(store.stats().segments, 1, "segment 0 is still the only one");
    drop(store);
    let stdout = run_child(NAME, dir.path(), seed);
    assert_eq!(reported_acks(&stdout), acked);
    check_clean_reopen(dir.path(), &w, acked);
}

#[test]
fn a_store_that_cannot_be_created_fails_cleanly() {
    const NAME: &str = "a_store_that_cannot_be_created_fails_cleanly";
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        limit_file_size();
        let e = Store::open_with(&dir, options(true)).expect_err("no room for segment 0");
        assert_file_too_large(&e, "segment");
        println!("error: {e}");
        println!("acked 0");
        println!("child done");
        return;
    }
    let _serial = serial();
    let seed = seed("disk_full_create");
    let w = workload(seed);
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_child(NAME, dir.path(), seed);
    assert!(stdout.contains("File too large"), "{stdout}");
    check_clean_reopen(dir.path(), &w, 0);
}
