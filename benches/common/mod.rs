//! What the annals benchmarks share: the data directory, the workload's
//! events, a seeded random source, the two baselines (`floor` and `sqlite`),
//! and a recorder that keeps the raw measurements so that each bench binary
//! can end with a table of figures and ratios.
//!
//! The baselines, as issue 5 defines them:
//!
//! - `floor` is the physical limit: the same bytes annals writes for an
//!   append, written with one `pwrite` and one `fdatasync` into a
//!   preallocated, zero-written file; reads copy each event's record out of
//!   a memory map into an owned buffer, with no decoding and no checksum.
//! - `sqlite` is what users pick instead: rusqlite with bundled SQLite, one
//!   file, `journal_mode=WAL`, `synchronous=FULL`, one table, prepared cached
//!   statements, and one transaction per batch with the expected-version
//!   check inside it.
//!
//! PERFORMANCE.md says how to run the benches and gives the figures of one
//! run.

// Each bench binary uses part of this module; what one leaves unused the
// other uses.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};
use rusqlite::{Connection, TransactionBehavior, params};

/// Bytes of payload per event.
pub const PAYLOAD_LEN: usize = 256;
/// The event type of every event.
pub const EVENT_TYPE: &str = "OrderPlaced";
/// The seed used when `ANNALS_BENCH_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x5EED_A77A_1500_0005;

/// The payload of every event: 256 printable bytes.
pub fn payload() -> Vec<u8> {
    (0..PAYLOAD_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// `count` events of the workload, to append as one batch.
pub fn events(count: usize) -> Vec<EventData> {
    (0..count)
        .map(|_| EventData::new(EVENT_TYPE, payload()))
        .collect()
}

/// The name of stream `i`: `order-00042`, eleven bytes like the event type.
pub fn stream_name(i: usize) -> String {
    format!("order-{i:05}")
}

/// The names of streams `0..count`, built once so that no benchmark formats
/// a name inside its timed loop.
pub fn stream_names(count: usize) -> Vec<String> {
    (0..count).map(stream_name).collect()
}

/// The root of the benchmark data: `ANNALS_BENCH_DIR`, or
/// `target/annals-bench` in the package. Never tmpfs, where `fdatasync` is
/// free and every durable figure would be a lie.
pub fn bench_root() -> PathBuf {
    match std::env::var_os("ANNALS_BENCH_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/annals-bench"),
    }
}

/// An empty directory `name` under the bench root, after checking (once per
/// call) that the file system is a real one.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = bench_root().join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove old bench data");
    }
    std::fs::create_dir_all(&dir).expect("create bench data directory");
    let mount = mount_of(&dir);
    assert!(
        !matches!(mount.fstype.as_str(), "tmpfs" | "ramfs"),
        "the bench data directory {} is on {}: fsync is free there and the durable \
         figures would mean nothing; set ANNALS_BENCH_DIR to a directory on a real disk",
        dir.display(),
        mount.fstype
    );
    dir
}

/// Removes a bench data directory, unless `ANNALS_BENCH_KEEP` is set.
pub fn remove_dir(dir: &Path) {
    if std::env::var_os("ANNALS_BENCH_KEEP").is_none() {
        // Leftover data is harmless: the next run removes it first.
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The mount a path lives on, from `/proc/self/mountinfo`.
pub struct Mount {
    pub mountpoint: String,
    pub fstype: String,
    pub source: String,
}

/// Finds the mount holding `path`: the longest mount point that is a prefix
/// of its canonical form.
pub fn mount_of(path: &Path) -> Mount {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best = Mount {
        mountpoint: String::new(),
        fstype: "unknown".into(),
        source: "unknown".into(),
    };
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        let mountpoint = mountpoint.replace("\\040", " ");
        let mut right = right.split(' ');
        let (Some(fstype), Some(source)) = (right.next(), right.next()) else {
            continue;
        };
        if path.starts_with(&mountpoint) && mountpoint.len() >= best.mountpoint.len() {
            best = Mount {
                mountpoint,
                fstype: fstype.into(),
                source: source.into(),
            };
        }
    }
    best
}

/// Prints where the data goes and the seed, so that a run's output says
/// what it measured.
pub fn print_setup(seed: u64) {
    let root = bench_root();
    std::fs::create_dir_all(&root).expect("create bench root");
    let mount = mount_of(&root);
    println!(
        "annals bench: data in {} ({} on {}, mounted at {}); seed {seed:#x} \
         (set ANNALS_BENCH_SEED to replay another)",
        root.display(),
        mount.fstype,
        mount.source,
        mount.mountpoint
    );
}

/// The seed for every random choice: `ANNALS_BENCH_SEED` (decimal or 0x-hex),
/// or [`DEFAULT_SEED`].
pub fn seed() -> u64 {
    let Ok(text) = std::env::var("ANNALS_BENCH_SEED") else {
        return DEFAULT_SEED;
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.expect("ANNALS_BENCH_SEED must be a u64, decimal or 0x-hex")
}

/// xorshift64*: small, fast and good enough to pick streams.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is xorshift's one fixed point.
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// How many bytes annals writes for the workload's appends, measured on a
/// scratch store through the public API, so that `floor` writes exactly as
/// many bytes as annals does.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// One event's record, padding included.
    pub record_len: usize,
    /// What one commit adds besides its records (the frame header).
    pub commit_overhead: usize,
}

impl Layout {
    /// Bytes of one commit of `events` events.
    pub fn commit_len(&self, events: usize) -> usize {
        self.commit_overhead + events * self.record_len
    }

    /// Appends one event, then a batch of 100, to a scratch store in `dir`
    /// and reads the record and commit sizes off the byte counts.
    pub fn measure(dir: &Path) -> Layout {
        let store = Store::open(dir).expect("open scratch store");
        let used = |s: &Store| s.stats().bytes_used as usize;
        let before = used(&store);
        store
            .append(&stream_name(0), ExpectedVersion::NoStream, &events(1))
            .expect("append one event");
        let one = used(&store) - before;
        store
            .append(&stream_name(1), ExpectedVersion::NoStream, &events(100))
            .expect("append a batch");
        let hundred = used(&store) - before - one;
        drop(store);
        let record_len = (hundred - one) / 99;
        let layout = Layout {
            record_len,
            commit_overhead: one - record_len,
        };
        println!(
            "annals writes {} B per event record and {} B per commit: \
             {} B for one event, {} B for a batch of 100",
            layout.record_len,
            layout.commit_overhead,
            layout.commit_len(1),
            layout.commit_len(100)
        );
        layout
    }

    /// The bytes `floor` writes for a commit of `events` events: a zeroed
    /// commit header, then records holding stream, type and payload.
    pub fn commit_bytes(&self, events: usize) -> Vec<u8> {
        let mut record = vec![0u8; self.record_len];
        let tail = stream_name(0).into_bytes();
        let body = [tail.as_slice(), EVENT_TYPE.as_bytes(), &payload()].concat();
        let start = self.record_len.saturating_sub(body.len());
        record[start..].copy_from_slice(&body[..self.record_len - start]);
        let mut bytes = vec![0u8; self.commit_overhead];
        for _ in 0..events {
            bytes.extend_from_slice(&record);
        }
        bytes
    }
}

/// The `floor` log: positioned writes and `fdatasync` into a preallocated,
/// zero-written file, wrapping to the start when it is full (the blocks are
/// allocated and written either way, so only data reaches the disk).
pub struct Floor {
    file: File,
    size: u64,
    next: Mutex<u64>,
}

impl Floor {
    /// Creates the file at `path`, `size` bytes of written zeros, synced.
    pub fn create(path: &Path, size: u64) -> Floor {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .expect("create floor file");
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < size {
            let n = (size - at).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], at).expect("zero-fill floor");
            at += n as u64;
        }
        file.sync_all().expect("sync floor file");
        if let Some(parent) = path.parent() {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .expect("sync floor directory");
        }
        Floor {
            file,
            size,
            next: Mutex::new(0),
        }
    }

    /// Appends `bytes` durably: one `pwrite`, one `fdatasync`. Concurrent
    /// callers reserve their own range and sync independently.
    pub fn append(&self, bytes: &[u8]) {
        let len = bytes.len() as u64;
        let at = {
            let mut next = self.next.lock().expect("floor offset lock");
            if *next + len > self.size {
                *next = 0;
            }
            let at = *next;
            *next += len;
            at
        };
        self.file.write_all_at(bytes, at).expect("floor pwrite");
        self.file.sync_data().expect("floor fdatasync");
    }
}

/// The `floor` reader: a file of `streams` commits of `per_stream` records
/// each, read by copying records out of a read-only map.
pub struct FloorReader {
    map: memmap2::Mmap,
    layout: Layout,
    per_stream: usize,
    streams: usize,
}

impl FloorReader {
    /// Writes the file at `path` (big sequential writes, one sync) and maps
    /// it.
    pub fn create(path: &Path, layout: Layout, streams: usize, per_stream: usize) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .expect("create floor read file");
        let commit = layout.commit_bytes(per_stream);
        let per_chunk = 64;
        let chunk = commit.repeat(per_chunk);
        let mut at = 0u64;
        let mut written = 0;
        while written < streams {
            let n = per_chunk.min(streams - written);
            let bytes = &chunk[..n * commit.len()];
            file.write_all_at(bytes, at).expect("write floor read file");
            at += bytes.len() as u64;
            written += n;
        }
        file.sync_all().expect("sync floor read file");
    }

    /// Opens and maps the file at `path`.
    pub fn open(path: &Path, layout: Layout, streams: usize, per_stream: usize) -> FloorReader {
        let file = File::open(path).expect("open floor read file");
        // SAFETY: the bench wrote and synced the file before mapping it, and
        // nothing writes to or truncates it while the map lives.
        let map = unsafe { memmap2::Mmap::map(&file) }.expect("map floor read file");
        assert_eq!(map.len(), streams * layout.commit_len(per_stream));
        FloorReader {
            map,
            layout,
            per_stream,
            streams,
        }
    }

    /// The byte offset of event `version` of stream `stream`.
    fn offset(&self, stream: usize, version: usize) -> usize {
        stream * self.layout.commit_len(self.per_stream)
            + self.layout.commit_overhead
            + version * self.layout.record_len
    }

    /// A copy of the record at `offset`.
    fn copy(&self, offset: usize) -> Vec<u8> {
        self.map[offset..offset + self.layout.record_len].to_vec()
    }

    /// Copies every record of `stream` out of the map.
    pub fn read_stream(&self, stream: usize) -> Vec<Vec<u8>> {
        (0..self.per_stream)
            .map(|v| self.copy(self.offset(stream, v)))
            .collect()
    }

    /// Copies up to `count` records from global position `from` on.
    pub fn read_all(&self, from: usize, count: usize) -> Vec<Vec<u8>> {
        let end = (from + count).min(self.streams * self.per_stream);
        (from..end)
            .map(|p| self.copy(self.offset(p / self.per_stream, p % self.per_stream)))
            .collect()
    }
}

/// An event as the `sqlite` baseline returns it: everything owned.
#[derive(Debug)]
pub struct SqlEvent {
    pub position: i64,
    pub stream: String,
    pub version: i64,
    pub event_type: String,
    pub data: Vec<u8>,
}

/// Opens (or creates) the `sqlite` baseline at `path`: WAL, synchronous
/// FULL, the events table.
pub fn sqlite_open(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open sqlite");
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .expect("journal_mode=WAL");
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous=FULL");
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .expect("read synchronous");
    assert_eq!(sync, 2, "synchronous must be FULL");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events(
             pos INTEGER PRIMARY KEY,
             stream TEXT NOT NULL,
             version INTEGER NOT NULL,
             type TEXT NOT NULL,
             data BLOB NOT NULL,
             UNIQUE(stream, version))",
    )
    .expect("create events table");
    conn
}

const SQL_LAST_VERSION: &str = "SELECT MAX(version) FROM events WHERE stream = ?1";
const SQL_NEXT_POSITION: &str = "SELECT COALESCE(MAX(pos) + 1, 0) FROM events";
const SQL_INSERT: &str =
    "INSERT INTO events (pos, stream, version, type, data) VALUES (?1, ?2, ?3, ?4, ?5)";
const SQL_READ_STREAM: &str = "SELECT pos, stream, version, type, data FROM events \
     WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3";
const SQL_READ_ALL: &str =
    "SELECT pos, stream, version, type, data FROM events WHERE pos >= ?1 ORDER BY pos LIMIT ?2";

/// Appends `count` events to `stream` in one transaction, after checking
/// inside it that the stream's last version is `expected` (`None`: no
/// stream). Returns false, writing nothing, when the check fails.
pub fn sqlite_append(
    conn: &mut Connection,
    stream: &str,
    expected: Option<u64>,
    count: usize,
    payload: &[u8],
) -> bool {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    let actual: Option<i64> = tx
        .prepare_cached(SQL_LAST_VERSION)
        .expect("prepare")
        .query_row([stream], |r| r.get(0))
        .expect("read last version");
    if actual.map(|v| v as u64) != expected {
        return false;
    }
    let position: i64 = tx
        .prepare_cached(SQL_NEXT_POSITION)
        .expect("prepare")
        .query_row([], |r| r.get(0))
        .expect("read next position");
    let first_version = actual.map_or(0, |v| v + 1);
    {
        let mut insert = tx.prepare_cached(SQL_INSERT).expect("prepare");
        for i in 0..count as i64 {
            insert
                .execute(params![
                    position + i,
                    stream,
                    first_version + i,
                    EVENT_TYPE,
                    payload
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    true
}

fn sql_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<SqlEvent> {
    Ok(SqlEvent {
        position: r.get(0)?,
        stream: r.get(1)?,
        version: r.get(2)?,
        event_type: r.get(3)?,
        data: r.get(4)?,
    })
}

/// Reads up to `count` events of `stream` from `from_version` on.
pub fn sqlite_read_stream(
    conn: &Connection,
    stream: &str,
    from_version: u64,
    count: usize,
) -> Vec<SqlEvent> {
    conn.prepare_cached(SQL_READ_STREAM)
        .expect("prepare")
        .query_map(
            params![stream, from_version as i64, count as i64],
            sql_event,
        )
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read stream")
}

/// Reads up to `count` events of the log from `from_position` on.
pub fn sqlite_read_all(conn: &Connection, from_position: u64, count: usize) -> Vec<SqlEvent> {
    conn.prepare_cached(SQL_READ_ALL)
        .expect("prepare")
        .query_map(params![from_position as i64, count as i64], sql_event)
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read all")
}

/// One criterion sample as the routine saw it.
#[derive(Clone, Debug)]
struct Sample {
    iters: u64,
    elapsed: Duration,
    /// Per-operation latencies, when the routine timed each one.
    ops: Vec<Duration>,
}

/// Keeps every sample each benchmark's routine returned to criterion, and
/// the results of the paired side measurements.
///
/// Criterion calls the routine once per warm-up round and then once per
/// sample, so the last `sample_size` entries of a benchmark are its
/// measured samples; the summary uses only those, as criterion does.
#[derive(Default)]
pub struct Recorder {
    entries: Mutex<HashMap<String, (usize, Vec<Sample>)>>,
    paired: Mutex<HashMap<String, Vec<Duration>>>,
}

impl Recorder {
    /// Notes that benchmark `key` takes `sample_size` samples.
    pub fn expect(&self, key: &str, sample_size: usize) {
        let mut entries = self.entries.lock().expect("recorder lock");
        entries.entry(key.to_owned()).or_default().0 = sample_size;
    }

    /// Records one sample of `iters` iterations that took `elapsed`.
    pub fn record(&self, key: &str, iters: u64, elapsed: Duration) {
        self.push(
            key,
            Sample {
                iters,
                elapsed,
                ops: Vec::new(),
            },
        );
    }

    /// Records one sample whose iterations were timed one by one; returns
    /// their sum for criterion.
    pub fn record_ops(&self, key: &str, ops: Vec<Duration>) -> Duration {
        let elapsed = ops.iter().sum();
        self.push(
            key,
            Sample {
                iters: ops.len() as u64,
                elapsed,
                ops,
            },
        );
        elapsed
    }

    fn push(&self, key: &str, sample: Sample) {
        let mut entries = self.entries.lock().expect("recorder lock");
        entries.entry(key.to_owned()).or_default().1.push(sample);
    }

    fn measured(&self, key: &str) -> Vec<Sample> {
        let entries = self.entries.lock().expect("recorder lock");
        match entries.get(key) {
            Some((size, samples)) => {
                let keep = (*size).clamp(1, samples.len().max(1));
                samples[samples.len().saturating_sub(keep)..].to_vec()
            }
            None => Vec::new(),
        }
    }

    /// The median over criterion's measured samples of the time per
    /// iteration, which is what criterion reports as the median.
    pub fn median(&self, key: &str) -> Option<Duration> {
        let per_iter: Vec<Duration> = self
            .measured(key)
            .iter()
            .filter(|s| s.iters > 0)
            .map(|s| s.elapsed.div_f64(s.iters as f64))
            .collect();
        median(per_iter)
    }

    /// The `p`-th percentile of the operations criterion's routine timed
    /// one by one in the measured samples, with their count.
    pub fn percentile(&self, key: &str, p: f64) -> Option<(Duration, usize)> {
        let ops: Vec<Duration> = self.measured(key).into_iter().flat_map(|s| s.ops).collect();
        let n = ops.len();
        percentile(ops, p).map(|d| (d, n))
    }

    /// Whether criterion ran the routine of `key` at all (a filter may have
    /// skipped it).
    pub fn ran(&self, key: &str) -> bool {
        let entries = self.entries.lock().expect("recorder lock");
        entries
            .get(key)
            .is_some_and(|(_, samples)| !samples.is_empty())
    }

    /// Whether the paired side measurement of `workload` should run: this
    /// is a measuring run (not `--test`, `--list` or `--profile-time`), and
    /// criterion measured every one of `systems` in it.
    pub fn should_pair(&self, workload: &str, systems: &[&str]) -> bool {
        let measuring =
            !std::env::args().any(|a| matches!(a.as_str(), "--test" | "--list" | "--profile-time"));
        measuring && systems.iter().all(|s| self.ran(&format!("{workload}/{s}")))
    }

    /// Keeps the operation times of a paired side measurement.
    pub fn record_paired(&self, key: &str, ops: Vec<Duration>) {
        let mut paired = self.paired.lock().expect("recorder lock");
        paired.insert(key.to_owned(), ops);
    }

    /// The `p`-th percentile of a paired side measurement, with its count.
    pub fn paired_percentile(&self, key: &str, p: f64) -> Option<(Duration, usize)> {
        let paired = self.paired.lock().expect("recorder lock");
        let ops = paired.get(key)?.clone();
        let n = ops.len();
        percentile(ops, p).map(|d| (d, n))
    }

    /// The median of a paired side measurement.
    pub fn paired_median(&self, key: &str) -> Option<Duration> {
        self.paired_percentile(key, 50.0).map(|(d, _)| d)
    }
}

/// Whether this is a measuring run, not `--test`, `--list` or
/// `--profile-time`.
pub fn measuring() -> bool {
    !std::env::args().any(|a| matches!(a.as_str(), "--test" | "--list" | "--profile-time"))
}

/// The median of `values`, the mean of the middle two for an even count.
pub fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}

/// The `p`-th percentile (0 to 100, nearest rank) of `values`.
pub fn percentile(mut values: Vec<Duration>, p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    if p == 50.0 {
        return median(values);
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// The paired side measurement: runs `op(round, system)` for every system
/// in turn, round after round, rotating which system goes first, until
/// `budget` is spent (and at least `min_rounds` are done) or `max_rounds`
/// are done. Returns each system's operation times.
///
/// The machine's disk and cores are shared, and their speed drifts by an
/// order of magnitude over seconds; criterion measures one system after
/// another, so drift lands on whichever system ran at the wrong moment.
/// Interleaving puts the three systems in the same moments, which makes
/// their ratios trustworthy even when the absolute figures are not.
pub fn paired(
    systems: usize,
    budget: Duration,
    min_rounds: usize,
    max_rounds: usize,
    mut op: impl FnMut(usize, usize) -> Duration,
) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::new(); systems];
    let started = Instant::now();
    let mut round = 0;
    while round < max_rounds && (round < min_rounds || started.elapsed() < budget) {
        for k in 0..systems {
            let s = (round + k) % systems;
            times[s].push(op(round, s));
        }
        round += 1;
    }
    times
}

/// A stream index in `0..streams` for round `round`, the same for every
/// system in the round.
pub fn pick(seed: u64, round: usize, streams: usize) -> usize {
    Rng::new(seed ^ (round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).below(streams)
}

/// Formats a duration with a unit that suits it.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Formats a rate with thousands separators.
pub fn fmt_rate(per_second: f64) -> String {
    let whole = per_second.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints a "met"/"MISSED" verdict.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
