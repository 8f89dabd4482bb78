//! Cost against history (issue 9): the same operations on a 1 M-event and a
//! 10 M-event store, side by side in one run, with the targets table
//! at the end.
//!
//! - reopen after a clean close (`Store::open`, files in the page cache);
//! - reopen after a SIGKILL: a child process (this binary again) opens the
//!   store, appends single events and is killed mid-append; the parent
//!   times the next `Store::open`;
//! - resident memory (`VmRSS`) of a child process after `Store::open` and
//!   one `read_stream`, one fresh process per measurement;
//! - `read_stream` of a whole 100-event stream whose events span the log,
//!   against SQLite (WAL, synchronous=FULL) holding the same events;
//! - `read_all` in pages of 1,000 over the whole log, against the floor's
//!   copying read of the same record bytes and against SQLite.
//!
//! The stores are built once and kept under `target/scale/` (or
//! `ANNALS_SCALE_DIR`) between runs: `annals-1m/`, `sqlite-1m.db`,
//! `floor-1m.log`, and the same for 10 M. Each is followed by a marker file
//! (`<name>.done`) written after a complete build; a store without its
//! marker is a partial build and is removed and built again.
//! `ANNALS_SCALE_SIZES` (comma-separated event counts, e.g. `1000000`)
//! chooses the sizes; the default is `1000000,10000000`.
//!
//! # The data
//!
//! The events are those of the other benches (`benches/common`): a 256-byte
//! payload, type `OrderPlaced`, 11-byte stream ids, 344-byte records, so
//! that the floor copies exactly annals' record bytes. (The demo's events,
//! with four types and 14-byte ids, would not let the floor find records
//! by arithmetic.) N events go to 10,000 `order-NNNNN` streams, appended
//! round-robin in batches of 25 from 8 threads: round r appends versions
//! 25r..25r+24 of every stream, so every stream spans the whole log. Beside
//! them, 100 `probe-NNNNN` streams of exactly 100 events are appended in
//! four batches of 25 at 0 %, 25 %, 50 % and 75 % of the build: these are
//! the 100-event streams `read_stream` reads, four frames a quarter of the
//! log apart at both sizes. A store holds N + 10,000 events, and grows by
//! a few hundred per run through the crash measurement (a `scale-crash`
//! stream).
//!
//! # How the figures are taken
//!
//! Every measurement interleaves the systems and sizes operation by
//! operation, rotating which goes first ([`common::paired`]), so that all
//! of them see the same moments of the shared disk and cores; figures are
//! medians over every operation.

mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};
use rusqlite::Connection;

use common::{
    EVENT_TYPE, FloorReader, Layout, events, fmt_duration, fmt_rate, median, mount_of, paired,
    payload, percentile, pick, sqlite_open, sqlite_read_all, sqlite_read_stream, stream_names,
    verdict,
};

/// The bulk streams of every store.
const STREAMS: usize = 10_000;
/// The 100-event streams that `read_stream` reads.
const PROBES: usize = 100;
/// Events per probe stream, and per `read_stream` call.
const PROBE_LEN: usize = 100;
/// Events per append while building, for the bulk and the probe streams.
const BATCH: usize = 25;
/// Threads appending while building, so that group commit shares syncs.
const BUILD_THREADS: usize = 8;
/// Rows per SQLite transaction while building.
const SQLITE_ROWS_PER_TX: usize = 100_000;
/// Events per `read_all` page.
const PAGE: usize = 1_000;
/// The sizes built and measured when `ANNALS_SCALE_SIZES` is not set.
const DEFAULT_SIZES: [usize; 2] = [1_000_000, 10_000_000];
/// The stream the crash child appends to.
const CRASH_STREAM: &str = "scale-crash";
/// Single events the crash child appends, at most, before it waits to be
/// killed: it reports ready after the first ten, and the parent kills it
/// a few milliseconds later, in the middle of an append.
const CRASH_APPENDS_MAX: usize = 1_000;
/// Rounds of the crash and memory measurements (each a child process).
const CHILD_ROUNDS: usize = 5;

/// The environment variable that turns this binary into a child process:
/// `crash` or `rss`, with the store directory in [`CHILD_DIR_ENV`].
const CHILD_ENV: &str = "ANNALS_SCALE_CHILD";
const CHILD_DIR_ENV: &str = "ANNALS_SCALE_CHILD_DIR";

fn probe_name(i: usize) -> String {
    format!("probe-{i:05}")
}

/// The root of the scale stores: `ANNALS_SCALE_DIR`, or `target/scale` in
/// the package. Never tmpfs or ramfs: the stores are too big for memory,
/// and the open and read figures must come from a real file system.
fn scale_root() -> PathBuf {
    let root = match std::env::var_os("ANNALS_SCALE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scale"),
    };
    std::fs::create_dir_all(&root).expect("create the scale directory");
    let mount = mount_of(&root);
    assert!(
        !matches!(mount.fstype.as_str(), "tmpfs" | "ramfs"),
        "the scale directory {} is on {}; set ANNALS_SCALE_DIR to a directory on a real disk",
        root.display(),
        mount.fstype
    );
    root
}

/// The sizes to measure, smallest first.
fn sizes() -> Vec<usize> {
    let mut sizes: Vec<usize> = match std::env::var("ANNALS_SCALE_SIZES") {
        Ok(text) if !text.trim().is_empty() => text
            .split(',')
            .map(|s| {
                s.trim()
                    .replace('_', "")
                    .parse()
                    .expect("ANNALS_SCALE_SIZES: comma-separated event counts")
            })
            .collect(),
        _ => DEFAULT_SIZES.to_vec(),
    };
    sizes.sort_unstable();
    sizes.dedup();
    for &n in &sizes {
        assert!(
            n >= STREAMS * BATCH * 4 && n.is_multiple_of(STREAMS * BATCH),
            "each size must be a multiple of {} and at least {}",
            STREAMS * BATCH,
            STREAMS * BATCH * 4
        );
    }
    sizes
}

/// `1 M`, `10 M`, or the plain count.
fn label(n: usize) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{} M", n / 1_000_000)
    } else {
        fmt_rate(n as f64)
    }
}

/// `1m`, `10m`, or the plain count, for file names.
fn tag(n: usize) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else {
        n.to_string()
    }
}

/// The files of one size.
struct Paths {
    annals: PathBuf,
    sqlite: PathBuf,
    floor: PathBuf,
}

impl Paths {
    fn new(root: &Path, n: usize) -> Paths {
        let t = tag(n);
        Paths {
            annals: root.join(format!("annals-{t}")),
            sqlite: root.join(format!("sqlite-{t}.db")),
            floor: root.join(format!("floor-{t}.log")),
        }
    }
}

/// The marker written after a complete build of `path`.
fn marker(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("named").to_os_string();
    name.push(".done");
    path.with_file_name(name)
}

/// Whether `path` was completely built with the description `what`; if
/// not, removes whatever is there (a partial or outdated build), with the
/// SQLite log files beside it.
fn reusable(path: &Path, what: &str) -> bool {
    if std::fs::read_to_string(marker(path)).is_ok_and(|m| m == what) && path.exists() {
        return true;
    }
    let _ = std::fs::remove_file(marker(path));
    if path.is_dir() {
        std::fs::remove_dir_all(path).expect("remove a partial build");
    } else if path.exists() {
        std::fs::remove_file(path).expect("remove a partial build");
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    false
}

/// Writes the marker of a complete build, durably.
fn mark_done(path: &Path, what: &str) {
    let mut file = File::create(marker(path)).expect("create marker");
    file.write_all(what.as_bytes()).expect("write marker");
    file.sync_all().expect("sync marker");
}

/// Which probe batch, if any, round `round` of `rounds` carries: batch j
/// at round j·rounds/4.
fn probe_batch(round: usize, rounds: usize) -> Option<usize> {
    (0..PROBE_LEN / BATCH).find(|j| j * rounds / (PROBE_LEN / BATCH) == round)
}

fn expected(batch: usize) -> ExpectedVersion {
    match batch {
        0 => ExpectedVersion::NoStream,
        b => ExpectedVersion::Exact((b * BATCH - 1) as u64),
    }
}

/// Prints the count of `done` every few seconds until `stop`.
fn progress(what: &str, total: usize, done: &AtomicU64, stop: &AtomicBool, started: Instant) {
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(100));
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
        let d = done.load(Ordering::Relaxed) as usize;
        println!(
            "  {what}: {} of {} events ({:.0} %), {}",
            fmt_rate(d as f64),
            fmt_rate(total as f64),
            100.0 * d as f64 / total as f64,
            fmt_duration(started.elapsed())
        );
    }
}

fn build_annals(dir: &Path, n: usize) {
    let names = stream_names(STREAMS);
    let probes: Vec<String> = (0..PROBES).map(probe_name).collect();
    let rounds = n / STREAMS / BATCH;
    let total = n + PROBES * PROBE_LEN;
    let batch = events(BATCH);
    let store = Store::open(dir).expect("create the annals store");
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..BUILD_THREADS {
            let (store, names, probes, batch, done) = (&store, &names, &probes, &batch, &done);
            workers.push(s.spawn(move || {
                for round in 0..rounds {
                    if let Some(j) = probe_batch(round, rounds) {
                        for p in probes.iter().skip(t).step_by(BUILD_THREADS) {
                            store.append(p, expected(j), batch).expect("build annals");
                            done.fetch_add(BATCH as u64, Ordering::Relaxed);
                        }
                    }
                    for name in names.iter().skip(t).step_by(BUILD_THREADS) {
                        store
                            .append(name, expected(round), batch)
                            .expect("build annals");
                        done.fetch_add(BATCH as u64, Ordering::Relaxed);
                    }
                }
            }));
        }
        s.spawn(|| progress("annals", total, &done, &stop, started));
        for w in workers {
            w.join().expect("build thread");
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(store.global_position(), total as u64);
    let stats = store.stats();
    store.close().expect("close the annals store");
    println!(
        "  annals: {} events in {} ({} segments, {} MB)",
        fmt_rate(total as f64),
        fmt_duration(started.elapsed()),
        stats.segments,
        stats.bytes_used / 1_000_000
    );
}

fn build_sqlite(path: &Path, n: usize) {
    let names = stream_names(STREAMS);
    let rounds = n / STREAMS / BATCH;
    let total = n + PROBES * PROBE_LEN;
    let data = payload();
    let started = Instant::now();
    let mut conn = sqlite_open(path);
    // A large cache only for the build: the (stream, version) index is
    // filled in round-robin order and would otherwise thrash.
    conn.pragma_update(None, "cache_size", -1_048_576i64)
        .expect("cache_size");
    let mut pos = 0i64;
    let mut tx = conn.transaction().expect("begin");
    let mut in_tx = 0;
    let mut next_report = total / 10;
    for round in 0..rounds {
        let probes = probe_batch(round, rounds)
            .map(|j| (0..PROBES).map(move |p| (probe_name(p), j)))
            .into_iter()
            .flatten();
        let bulk = names.iter().map(|name| (name.clone(), round));
        for (stream, b) in probes.chain(bulk) {
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO events (pos, stream, version, type, data) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .expect("prepare");
                for v in 0..BATCH {
                    let version = (b * BATCH + v) as i64;
                    insert
                        .execute(rusqlite::params![pos, stream, version, EVENT_TYPE, data])
                        .expect("build sqlite");
                    pos += 1;
                }
            }
            in_tx += BATCH;
            if in_tx >= SQLITE_ROWS_PER_TX {
                tx.commit().expect("commit");
                tx = conn.transaction().expect("begin");
                in_tx = 0;
            }
            if pos as usize >= next_report {
                println!(
                    "  sqlite: {} of {} events, {}",
                    fmt_rate(pos as f64),
                    fmt_rate(total as f64),
                    fmt_duration(started.elapsed())
                );
                next_report += total / 10;
            }
        }
    }
    tx.commit().expect("commit");
    assert_eq!(pos as usize, total);
    // At rest, as annals is: everything in the main file, an empty log.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    drop(conn);
    println!(
        "  sqlite: {} events in {} (transactions of {SQLITE_ROWS_PER_TX} rows)",
        fmt_rate(total as f64),
        fmt_duration(started.elapsed())
    );
}

/// Builds what is missing of size `n`.
fn build(paths: &Paths, n: usize, layout: Layout) {
    let what = format!("events={n} streams={STREAMS} probes={PROBES}x{PROBE_LEN} batch={BATCH}\n");
    if !reusable(&paths.annals, &what) {
        println!("building {} (annals)", paths.annals.display());
        build_annals(&paths.annals, n);
        mark_done(&paths.annals, &what);
    }
    if !reusable(&paths.sqlite, &what) {
        println!("building {} (sqlite)", paths.sqlite.display());
        build_sqlite(&paths.sqlite, n);
        mark_done(&paths.sqlite, &what);
    }
    // The floor's file depends on annals' record size, which the format
    // may change; its marker records it.
    let floor_what = format!(
        "{what}record_len={} commit_overhead={}\n",
        layout.record_len, layout.commit_overhead
    );
    if !reusable(&paths.floor, &floor_what) {
        println!("building {} (floor)", paths.floor.display());
        let started = Instant::now();
        FloorReader::create(&paths.floor, layout, STREAMS, n / STREAMS);
        mark_done(&paths.floor, &floor_what);
        println!(
            "  floor: {} records in {}",
            fmt_rate(n as f64),
            fmt_duration(started.elapsed())
        );
    }
}

/// Reads every file under `path` once, so that the measurements start with
/// the page cache warm however long ago the stores were built.
fn warm(path: &Path) -> u64 {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).expect("read dir");
        return entries.map(|e| warm(&e.expect("dir entry").path())).sum();
    }
    let mut file = File::open(path).expect("open for warming");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = file.read(&mut buf).expect("read for warming");
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

/// A child process: `crash` opens the store, appends single events, says
/// `ready` after ten and waits to be killed; `rss` opens the store, reads
/// one probe stream and prints its resident memory.
fn child(kind: &str) {
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR_ENV).expect("child directory"));
    let rss_before = rss_kb();
    let store = Store::open(&dir).expect("child: open");
    match kind {
        "crash" => {
            let event = [EventData::new(EVENT_TYPE, payload())];
            let mut out = std::io::stdout();
            for i in 0..CRASH_APPENDS_MAX {
                store
                    .append(CRASH_STREAM, ExpectedVersion::Any, &event)
                    .expect("child: append");
                if i == 9 {
                    writeln!(out, "ready").expect("child: stdout");
                    out.flush().expect("child: stdout");
                }
            }
            // Wait for the SIGKILL, holding the store open.
            std::thread::sleep(Duration::from_secs(600));
            unreachable!("the crash child was not killed");
        }
        "rss" => {
            let read = store
                .read_stream(&probe_name(PROBES / 2), 0, PROBE_LEN)
                .expect("child: read_stream");
            assert_eq!(read.len(), PROBE_LEN);
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            let field = |name: &str| -> u64 {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            println!(
                "{rss_before} {} {} {}",
                field("VmRSS:"),
                field("RssAnon:"),
                field("RssFile:")
            );
            drop(read);
            drop(store);
        }
        other => panic!("unknown child kind {other}"),
    }
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn spawn_child(kind: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_ENV, kind)
        .env(CHILD_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// Leaves the store at `dir` as a SIGKILL mid-append leaves it.
fn crash(dir: &Path) {
    let mut child = spawn_child("crash", dir);
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut line)
        .expect("read child");
    assert_eq!(line.trim(), "ready", "the crash child failed");
    std::thread::sleep(Duration::from_millis(3));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid we spawned and have not reaped yet, so it
    // names our child and no other process.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill the crash child");
    let status = child.wait().expect("reap the crash child");
    assert!(!status.success(), "the crash child exited on its own");
}

/// Resident memory of a child after open and one read, in KiB: before
/// open, after the read, and the read's anonymous and file-backed parts.
fn rss(dir: &Path) -> [u64; 4] {
    let out = spawn_child("rss", dir)
        .wait_with_output()
        .expect("run the rss child");
    assert!(out.status.success(), "the rss child failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().expect("rss figure"))
        .collect();
    [v[0], v[1], v[2], v[3]]
}

/// What one size measured.
#[derive(Default)]
struct Figures {
    reopen: Option<Duration>,
    reopen_p90: Option<Duration>,
    close: Option<Duration>,
    crash_reopen: Option<Duration>,
    crash_torn: usize,
    crash_rounds: usize,
    rss_kb: Option<u64>,
    rss_parts: [u64; 3],
    read_stream: Option<Duration>,
    read_stream_sqlite: Option<Duration>,
    read_all: Option<Duration>,
    read_all_floor: Option<Duration>,
    read_all_sqlite: Option<Duration>,
    events: u64,
}

fn med(v: &[Duration]) -> Option<Duration> {
    median(v.to_vec())
}

fn median_u64(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn main() {
    if let Ok(kind) = std::env::var(CHILD_ENV) {
        child(&kind);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("scale: benchmark");
        return;
    }
    if args.iter().any(|a| a == "--test") {
        println!("scale: skipped in test mode (it builds multi-gigabyte stores)");
        return;
    }

    let root = scale_root();
    let sizes = sizes();
    print_disk(&root);
    println!(
        "sizes: {} (set ANNALS_SCALE_SIZES to choose); {STREAMS} streams in batches of {BATCH}, \
         {PROBES} probe streams of {PROBE_LEN} events; seed {:#x}",
        sizes
            .iter()
            .map(|&n| label(n))
            .collect::<Vec<_>>()
            .join(", "),
        common::seed()
    );

    let layout = {
        let dir = root.join("layout");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove layout scratch");
        }
        let layout = Layout::measure(&dir);
        std::fs::remove_dir_all(&dir).expect("remove layout scratch");
        layout
    };
    let paths: Vec<Paths> = sizes.iter().map(|&n| Paths::new(&root, n)).collect();
    for (p, &n) in paths.iter().zip(&sizes) {
        build(p, n, layout);
    }
    let started = Instant::now();
    let warmed: u64 = paths
        .iter()
        .map(|p| warm(&p.annals) + warm(&p.sqlite) + warm(&p.floor))
        .sum();
    println!(
        "page cache warmed: {} MB read in {}",
        warmed / 1_000_000,
        fmt_duration(started.elapsed())
    );

    let k = sizes.len();
    let mut figs: Vec<Figures> = (0..k).map(|_| Figures::default()).collect();
    let seed = common::seed();

    // (1) Reopen after a clean close. The first open of each store ends
    // whatever a previous run left (its drop is a clean close).
    println!("measuring: reopen after a clean close");
    for p in &paths {
        drop(Store::open(&p.annals).expect("open"));
    }
    let mut closes = vec![Vec::new(); k];
    let times = paired(k, Duration::from_secs(20), 5, 50, |_, s| {
        let t = Instant::now();
        let store = Store::open(&paths[s].annals).expect("reopen");
        let opened = t.elapsed();
        black_box(store.global_position());
        let t = Instant::now();
        drop(store);
        closes[s].push(t.elapsed());
        opened
    });
    for s in 0..k {
        figs[s].reopen = med(&times[s]);
        figs[s].reopen_p90 = percentile(times[s].clone(), 90.0);
        figs[s].close = med(&closes[s]);
    }

    // (2) Reopen after a SIGKILL in the middle of appends.
    println!("measuring: reopen after a SIGKILL ({CHILD_ROUNDS} crashes per size)");
    let mut torn = vec![0; k];
    let times = paired(k, Duration::ZERO, CHILD_ROUNDS, CHILD_ROUNDS, |_, s| {
        crash(&paths[s].annals);
        let t = Instant::now();
        let store = Store::open(&paths[s].annals).expect("reopen after a crash");
        let opened = t.elapsed();
        if !store.recovery_report().is_clean() {
            torn[s] += 1;
        }
        drop(store);
        opened
    });
    for s in 0..k {
        figs[s].crash_reopen = med(&times[s]);
        figs[s].crash_torn = torn[s];
        figs[s].crash_rounds = times[s].len();
    }

    // (3) Resident memory after open and one read, one child per figure.
    println!("measuring: resident memory ({CHILD_ROUNDS} children per size)");
    let mut rss_all = vec![Vec::new(); k];
    for round in 0..CHILD_ROUNDS {
        for j in 0..k {
            let s = (round + j) % k;
            rss_all[s].push(rss(&paths[s].annals));
        }
    }
    for s in 0..k {
        let pick_median = |i: usize| median_u64(rss_all[s].iter().map(|r| r[i]).collect());
        figs[s].rss_kb = pick_median(1);
        figs[s].rss_parts = [
            pick_median(0).unwrap_or(0),
            pick_median(2).unwrap_or(0),
            pick_median(3).unwrap_or(0),
        ];
    }

    // (4) and (5): reads, with every store open.
    let stores: Vec<Store> = paths
        .iter()
        .map(|p| Store::open(&p.annals).expect("open for reads"))
        .collect();
    let sqlites: Vec<Connection> = paths.iter().map(|p| sqlite_open(&p.sqlite)).collect();
    let floors: Vec<FloorReader> = paths
        .iter()
        .zip(&sizes)
        .map(|(p, &n)| FloorReader::open(&p.floor, layout, STREAMS, n / STREAMS))
        .collect();
    for s in 0..k {
        figs[s].events = stores[s].global_position();
    }
    let probes: Vec<String> = (0..PROBES).map(probe_name).collect();

    println!("measuring: read_stream of a 100-event stream");
    // Systems 2s and 2s+1: annals and sqlite at size s.
    let times = paired(
        2 * k,
        Duration::from_secs(8),
        1_000,
        200_000,
        |round, sys| {
            let (s, sqlite) = (sys / 2, sys % 2 == 1);
            let name = &probes[pick(seed, round, PROBES)];
            let t = Instant::now();
            let n = if sqlite {
                black_box(sqlite_read_stream(&sqlites[s], name, 0, PROBE_LEN)).len()
            } else {
                black_box(
                    stores[s]
                        .read_stream(name, 0, PROBE_LEN)
                        .expect("read_stream"),
                )
                .len()
            };
            let elapsed = t.elapsed();
            assert_eq!(n, PROBE_LEN);
            elapsed
        },
    );
    for s in 0..k {
        figs[s].read_stream = med(&times[2 * s]);
        figs[s].read_stream_sqlite = med(&times[2 * s + 1]);
    }

    // Every size walks its whole log; the smaller ones wrap and walk again
    // while the largest finishes.
    let pages_max = sizes.iter().max().expect("a size") / PAGE;
    println!("measuring: read_all in pages of {PAGE} ({pages_max} pages)");
    // Systems 3s, 3s+1, 3s+2: annals, floor and sqlite at size s.
    let times = paired(3 * k, Duration::ZERO, pages_max, pages_max, |round, sys| {
        let (s, system) = (sys / 3, sys % 3);
        let from = (round % (sizes[s] / PAGE)) * PAGE;
        let t = Instant::now();
        let n = match system {
            0 => black_box(stores[s].read_all(from as u64, PAGE).expect("read_all")).len(),
            1 => black_box(floors[s].read_all(from, PAGE)).len(),
            _ => black_box(sqlite_read_all(&sqlites[s], from as u64, PAGE)).len(),
        };
        let elapsed = t.elapsed();
        assert_eq!(n, PAGE);
        elapsed
    });
    for s in 0..k {
        figs[s].read_all = med(&times[3 * s]);
        figs[s].read_all_floor = med(&times[3 * s + 1]);
        figs[s].read_all_sqlite = med(&times[3 * s + 2]);
    }
    drop(stores);

    report(&sizes, &figs);
    print_disk(&root);
}

/// The disk and file system of the stores, from `findmnt -T` and `df`.
fn print_disk(root: &Path) {
    let mount = mount_of(root);
    println!(
        "data in {} ({} on {}, mounted at {})",
        root.display(),
        mount.fstype,
        mount.source,
        mount.mountpoint
    );
    for cmd in [
        vec!["findmnt", "-T"],
        vec!["df", "-h"],
        vec!["lsblk", "-d", "-o", "NAME,SIZE,ROTA,MODEL"],
    ] {
        let mut c = Command::new(cmd[0]);
        c.args(&cmd[1..]);
        if cmd[0] != "lsblk" {
            c.arg(root);
        }
        let shown = match cmd[0] {
            "lsblk" => cmd.join(" "),
            _ => format!("{} {}", cmd.join(" "), root.display()),
        };
        if let Ok(out) = c.output() {
            print!("$ {shown}\n{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

fn opt(d: Option<Duration>) -> String {
    d.map_or("—".into(), fmt_duration)
}

fn mib(kb: Option<u64>) -> String {
    kb.map_or("—".into(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0))
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b)
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

/// The targets with this run's figures, then the details per size.
fn report(sizes: &[usize], figs: &[Figures]) {
    let last = sizes.len() - 1;
    let (small, big) = (&figs[0], &figs[last]);
    let (ls, lb) = (label(sizes[0]), label(sizes[last]));
    // With one size there is nothing to grow from: its column stays empty.
    let one = Figures::default();
    let (small, ls, column) = if last == 0 {
        (
            &one,
            "smaller size".to_owned(),
            "smaller size (not run)".to_owned(),
        )
    } else {
        (small, ls.clone(), ls)
    };
    // Growth from the smallest to the largest size, when both were run.
    let growth = |f: &dyn Fn(&Figures) -> Option<f64>| -> Option<f64> {
        if last == 0 {
            return None;
        }
        Some(f(big)? / f(small)?)
    };
    let show = |g: Option<f64>| g.map_or("— (one size)".into(), |g| format!("{g:.2}×"));
    let judge = |ok: Option<bool>| ok.map_or("not judged (one size)", verdict);

    println!();
    println!("== annals scale benchmark: issue 9's targets");
    println!();
    println!(
        "Medians; every figure paired (sizes and systems interleaved operation by operation). \
         \"growth\" is the {lb} figure divided by the {ls} one."
    );
    println!();
    println!("| what | target | {column} | {lb} | growth | vs baseline at {lb} | verdict |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | --- |");

    let g = growth(&|f| secs(f.reopen));
    let under = secs(big.reopen).is_some_and(|s| s <= 0.002);
    println!(
        "| warm reopen after clean close | ≤ 2 ms at {lb}; ≤ 1.5× {ls} | {} | {} | {} | — | ≤ 2 ms: **{}**; growth: **{}** |",
        opt(small.reopen),
        opt(big.reopen),
        show(g),
        verdict(under),
        judge(g.map(|g| g <= 1.5))
    );
    let g = growth(&|f| secs(f.crash_reopen));
    println!(
        "| reopen after a SIGKILL | ≤ 1.5× {ls} | {} | {} | {} | — | **{}** |",
        opt(small.crash_reopen),
        opt(big.crash_reopen),
        show(g),
        judge(g.map(|g| g <= 1.5))
    );
    let g = growth(&|f| f.rss_kb.map(|k| k as f64));
    println!(
        "| resident memory after open + one stream read | ≤ 1.25× {ls} | {} | {} | {} | — | **{}** |",
        mib(small.rss_kb),
        mib(big.rss_kb),
        show(g),
        judge(g.map(|g| g <= 1.25))
    );
    let g = growth(&|f| secs(f.read_stream));
    let vs = secs(big.read_stream_sqlite).zip(secs(big.read_stream));
    println!(
        "| read_stream of a 100-event stream | ≤ 1.5× {ls}; ≥ 10× sqlite | {} | {} | {} | sqlite {} → {} | growth: **{}**; ≥ 10× sqlite: **{}** |",
        opt(small.read_stream),
        opt(big.read_stream),
        show(g),
        opt(big.read_stream_sqlite),
        vs.map_or("—".into(), |(q, a)| ratio(q, a)),
        judge(g.map(|g| g <= 1.5)),
        verdict(vs.is_some_and(|(q, a)| q / a >= 10.0))
    );
    let vf = secs(big.read_all_floor).zip(secs(big.read_all));
    let vq = secs(big.read_all_sqlite).zip(secs(big.read_all));
    println!(
        "| read_all, pages of 1,000 (per page) | faster than floor; ≥ 8× sqlite | {} | {} | {} | floor {} → {}; sqlite {} → {} | faster than floor: **{}**; ≥ 8× sqlite: **{}** |",
        opt(small.read_all),
        opt(big.read_all),
        show(growth(&|f| secs(f.read_all))),
        opt(big.read_all_floor),
        vf.map_or("—".into(), |(f, a)| ratio(f, a)),
        opt(big.read_all_sqlite),
        vq.map_or("—".into(), |(q, a)| ratio(q, a)),
        verdict(vf.is_some_and(|(f, a)| f > a)),
        verdict(vq.is_some_and(|(q, a)| q / a >= 8.0))
    );
    println!();
    println!(
        "\"vs baseline\" is the baseline's time → annals' speed against it (baseline time ÷ annals time)."
    );

    println!();
    println!("Details per size:");
    println!();
    println!(
        "| size | events now | clean reopen p50 / p90 | drop (clean close) | SIGKILL reopen (torn tails found) | RSS before open → after read (anon + file) | read_stream annals / sqlite | read_all per page annals / floor / sqlite | read_all events/s annals |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, f) in sizes.iter().zip(figs) {
        println!(
            "| {} | {} | {} / {} | {} | {} ({} of {}) | {} → {} ({} + {}) | {} / {} | {} / {} / {} | {} |",
            label(*n),
            fmt_rate(f.events as f64),
            opt(f.reopen),
            opt(f.reopen_p90),
            opt(f.close),
            opt(f.crash_reopen),
            f.crash_torn,
            f.crash_rounds,
            mib(Some(f.rss_parts[0])),
            mib(f.rss_kb),
            mib(Some(f.rss_parts[1])),
            mib(Some(f.rss_parts[2])),
            opt(f.read_stream),
            opt(f.read_stream_sqlite),
            opt(f.read_all),
            opt(f.read_all_floor),
            opt(f.read_all_sqlite),
            secs(f.read_all).map_or("—".into(), |s| fmt_rate(PAGE as f64 / s)),
        );
    }
    println!();
}
