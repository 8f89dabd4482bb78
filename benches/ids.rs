//! Exact idempotent appends (issue 11): what the event-id check costs, and
//! how fast ids are found, with the targets table at the end.
//!
//! - (a) appends of one event with a fresh client-given id, each to one of
//!   1,000 streams under an exact expected version: p50 per append;
//! - (b) appends of batches of 100 such events: MB/s of payload;
//! - (c) `find_event` of a stored id in a 10 M-event store, warm: p50; and
//!   of a fresh id (a miss);
//! - (d) a retried batch of 100 (already stored, answered deduplicated) in
//!   that store, warm: p50; and (a) again there, since a fresh id is
//!   tested against every sealed segment's filter.
//!
//! (a) and (b) run side by side with the version before ids were checked
//! when this file is built by `benches/ids_before/` (see its `run.sh`),
//! which links both versions and sets `cfg(annals_before)`; `cargo bench
//! --bench ids` alone measures this version. Either way each operation
//! is timed on its own and the systems are interleaved operation by
//! operation, rotating which goes first, so that both see the same moments
//! of the shared disk; figures are medians.
//!
//! The 10 M-event store (`ANNALS_IDS_EVENTS` sets the count) is built once
//! under `target/annals-bench/ids-store-N` (or `ANNALS_BENCH_DIR`) and
//! reused; a marker file says the build completed. The data directory must
//! not be tmpfs, where `fdatasync` is free: the bench refuses it.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store, Uuid};
use criterion::{Criterion, Throughput};

const STREAMS: usize = 1_000;
const BATCH: usize = 100;
const PAYLOAD_LEN: usize = 256;
/// Streams of the big store; batch `b` goes to stream `b % BIG_STREAMS`.
const BIG_STREAMS: u64 = 10_000;
const BUILD_THREADS: u64 = 8;

fn payload() -> Vec<u8> {
    (0..PAYLOAD_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A stable, random-looking 64-bit mix.
fn mix(mut h: u64) -> u64 {
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The id of event `n` of the big store (or of any fresh append, from a
/// different `space`).
fn id_of(space: u64, n: u64) -> Uuid {
    Uuid::from_u64_pair(mix(n ^ space << 60), n)
}

fn bench_root() -> PathBuf {
    match std::env::var_os("ANNALS_BENCH_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/annals-bench"),
    }
}

/// The file system type and device of the mount holding `path`.
fn mount_of(path: &Path) -> (String, String) {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best = (0usize, "unknown".to_owned(), "unknown".to_owned());
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        if let (Some(fs), Some(source)) = (right.next(), right.next())
            && path.starts_with(mountpoint)
            && mountpoint.len() >= best.0
        {
            best = (mountpoint.len(), fs.to_owned(), source.to_owned());
        }
    }
    (best.1, best.2)
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = bench_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let (fs, _) = mount_of(&dir);
    assert!(
        !matches!(fs.as_str(), "tmpfs" | "ramfs"),
        "{} is on {fs}: fsync is free there; set ANNALS_BENCH_DIR to a real disk",
        dir.display()
    );
    dir
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.3} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// One system under test: a store of one version of annals, with 1,000
/// streams seeded, appending with exact expected versions.
trait System {
    fn name(&self) -> &'static str;
    /// Appends `count` events with fresh ids to stream `i`.
    fn append(&mut self, i: usize, count: usize);
}

/// Implements [`System`] for the store type of crate `$krate`.
macro_rules! system {
    ($ty:ident, $krate:ident, $label:literal, $space:literal) => {
        struct $ty {
            store: $krate::Store,
            names: Vec<String>,
            versions: Vec<u64>,
            payload: Vec<u8>,
            next_id: u64,
        }

        impl $ty {
            fn new(dir: &Path) -> $ty {
                let store = $krate::Store::open(dir).expect("open");
                let names: Vec<String> = (0..STREAMS).map(|i| format!("order-{i:05}")).collect();
                let payload = payload();
                for name in &names {
                    let e = $krate::EventData::new("OrderPlaced", payload.clone());
                    store
                        .append(name, $krate::ExpectedVersion::NoStream, &[e])
                        .expect("seed");
                }
                $ty {
                    store,
                    names,
                    versions: vec![0; STREAMS],
                    payload,
                    next_id: 0,
                }
            }
        }

        impl System for $ty {
            fn name(&self) -> &'static str {
                $label
            }

            fn append(&mut self, i: usize, count: usize) {
                let events: Vec<$krate::EventData> = (0..count)
                    .map(|_| {
                        self.next_id += 1;
                        $krate::EventData::new("OrderPlaced", self.payload.clone())
                            .with_id(id_of($space, self.next_id))
                    })
                    .collect();
                let expected = $krate::ExpectedVersion::Exact(self.versions[i]);
                black_box(
                    self.store
                        .append(&self.names[i], expected, &events)
                        .expect("append"),
                );
                self.versions[i] += count as u64;
            }
        }
    };
}

system!(Now, annals, "now", 1);
#[cfg(annals_before)]
system!(Before, annals_before, "before", 2);

/// Times `op(system)` for every system in turn, `rounds` times, rotating
/// which goes first; returns each system's times. The event inputs are
/// built inside the timed call, the same work for both versions.
fn paired(
    systems: &mut [Box<dyn System>],
    rounds: usize,
    count: usize,
    seed: u64,
) -> Vec<Vec<Duration>> {
    let n = systems.len();
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        let i = (mix(seed ^ round as u64) % STREAMS as u64) as usize;
        for k in 0..n {
            let s = (round + k) % n;
            let started = Instant::now();
            systems[s].append(i, count);
            times[s].push(started.elapsed());
        }
    }
    times
}

/// The big store: built once, reused.
fn big_store(events: u64) -> PathBuf {
    let dir = bench_root().join(format!("ids-store-{events}"));
    let marker = dir.with_extension("done");
    let what = format!("events={events} streams={BIG_STREAMS} batch={BATCH} ids=v1\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == what) && dir.exists() {
        return dir;
    }
    let _ = std::fs::remove_file(&marker);
    let dir = fresh_dir(dir.file_name().and_then(|n| n.to_str()).expect("name"));
    let started = Instant::now();
    let store = Store::open(&dir).expect("open big store");
    let batches = events / BATCH as u64;
    let payload = payload();
    std::thread::scope(|s| {
        for t in 0..BUILD_THREADS {
            let (store, payload) = (&store, &payload);
            s.spawn(move || {
                for b in (t..batches).step_by(BUILD_THREADS as usize) {
                    let evs = big_batch(b, payload);
                    store
                        .append(
                            &format!("big-{:05}", b % BIG_STREAMS),
                            ExpectedVersion::Any,
                            &evs,
                        )
                        .expect("build append");
                }
            });
        }
    });
    store.close().expect("close big store");
    std::fs::write(&marker, what).expect("write marker");
    println!(
        "built the {events}-event store in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    dir
}

/// Batch `b` of the big store: events `b * BATCH ..`, with their ids.
fn big_batch(b: u64, payload: &[u8]) -> Vec<EventData> {
    (0..BATCH as u64)
        .map(|i| {
            EventData::new("OrderPlaced", payload.to_vec()).with_id(id_of(0, b * BATCH as u64 + i))
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let measuring = !std::env::args().any(|a| matches!(a.as_str(), "--test" | "--list"));
    let root = bench_root();
    std::fs::create_dir_all(&root).expect("bench root");
    let (fs, device) = mount_of(&root);
    println!("ids bench: data in {} ({fs} on {device})", root.display());

    // (a) and (b): before and now side by side, on fresh stores.
    let mut systems: Vec<Box<dyn System>> = vec![Box::new(Now::new(&fresh_dir("ids/now")))];
    #[cfg(annals_before)]
    systems.push(Box::new(Before::new(&fresh_dir("ids/before"))));
    {
        let mut group = c.benchmark_group("a_append_one_event");
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(4));
        for s in systems.iter_mut() {
            let mut i = 0usize;
            group.bench_function(s.name(), |bench| {
                bench.iter(|| {
                    i = (i + 1) % STREAMS;
                    s.append(i, 1);
                })
            });
        }
        group.finish();
        let mut group = c.benchmark_group("b_append_batch_100");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5))
            .throughput(Throughput::Bytes((BATCH * PAYLOAD_LEN) as u64));
        for s in systems.iter_mut() {
            let mut i = 0usize;
            group.bench_function(s.name(), |bench| {
                bench.iter(|| {
                    i = (i + 1) % STREAMS;
                    s.append(i, BATCH);
                })
            });
        }
        group.finish();
    }
    let rounds = if measuring { 1_500 } else { 3 };
    let one = paired(&mut systems, rounds, 1, 0xa);
    let batch = paired(&mut systems, rounds / 3, BATCH, 0xb);

    // (c) and (d): the big store, warm.
    let events: u64 = std::env::var("ANNALS_IDS_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 10_000_000 } else { 10_000 });
    let dir = big_store(events);
    let store = Store::open(&dir).expect("open big store");
    let n = store.global_position();
    let batches = events / BATCH as u64;
    let payload = payload();
    // The first lookup checks every segment index body (once per open).
    let started = Instant::now();
    black_box(store.find_event(id_of(0, 1)).expect("find"));
    let first_lookup = started.elapsed();
    let samples = if measuring { 20_000 } else { 10 };
    // Warm the pages: one pass over the sampled ids first.
    let picks: Vec<u64> = (0..samples)
        .map(|k| mix(k ^ 0xc) % (batches * BATCH as u64))
        .collect();
    for p in &picks {
        black_box(store.find_event(id_of(0, *p)).expect("find"));
    }
    let mut hit = Vec::with_capacity(picks.len());
    for p in &picks {
        let started = Instant::now();
        let e = store.find_event(id_of(0, *p)).expect("find");
        hit.push(started.elapsed());
        assert_eq!(e.map(|e| e.id), Some(id_of(0, *p)));
    }
    let mut miss = Vec::with_capacity(picks.len());
    for k in 0..samples {
        let started = Instant::now();
        let e = store.find_event(id_of(3, k)).expect("find");
        miss.push(started.elapsed());
        assert!(e.is_none());
    }
    let retry_samples = if measuring { 2_000 } else { 5 };
    let retries: Vec<(String, Vec<EventData>)> = (0..retry_samples)
        .map(|k| {
            let b = mix(k ^ 0xd) % batches;
            (
                format!("big-{:05}", b % BIG_STREAMS),
                big_batch(b, &payload),
            )
        })
        .collect();
    for (stream, evs) in &retries {
        black_box(
            store
                .append(stream, ExpectedVersion::Any, evs)
                .expect("retry"),
        );
    }
    let mut retry = Vec::with_capacity(retries.len());
    for (stream, evs) in &retries {
        let started = Instant::now();
        let r = store
            .append(stream, ExpectedVersion::Any, evs)
            .expect("retry");
        retry.push(started.elapsed());
        assert!(r.deduplicated);
    }
    assert_eq!(store.global_position(), n, "a retry wrote");
    {
        let mut group = c.benchmark_group("c_find_event_10m");
        group.sample_size(50);
        let mut k = 0u64;
        group.bench_function("stored", |bench| {
            bench.iter(|| {
                k += 1;
                store.find_event(id_of(0, mix(k) % n)).expect("find")
            })
        });
        group.bench_function("fresh", |bench| {
            bench.iter(|| {
                k += 1;
                store.find_event(id_of(4, k)).expect("find")
            })
        });
        group.finish();
        let mut group = c.benchmark_group("d_retry_batch_100_10m");
        group.sample_size(20);
        let mut j = 0usize;
        group.bench_function("now", |bench| {
            bench.iter(|| {
                j = (j + 1) % retries.len();
                let (stream, evs) = &retries[j];
                store
                    .append(stream, ExpectedVersion::Any, evs)
                    .expect("retry")
            })
        });
        group.finish();
    }
    // Fresh single appends in the big store: every sealed segment's filter
    // is tested. The store is reused from run to run, so the ids go on
    // from its size at open: the same ids again would be retries, answered
    // without a write.
    let mut fresh_big = Vec::new();
    for k in 0..(if measuring { 500 } else { 3 }) {
        let e = EventData::new("OrderPlaced", payload.clone()).with_id(id_of(5, n + k));
        let started = Instant::now();
        let r = store
            .append(&format!("fresh-{}", k % 100), ExpectedVersion::Any, &[e])
            .expect("append");
        fresh_big.push(started.elapsed());
        assert!(!r.deduplicated, "a fresh append was answered as a retry");
    }
    let segments = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "seg"))
            })
            .count()
        })
        .unwrap_or(0);
    drop(store);
    c.final_summary();

    println!();
    println!(
        "== ids: paired medians ({rounds} rounds of one event, {} of batches of {BATCH}) ==",
        rounds / 3
    );
    let mb_s = |d: Duration| (BATCH * PAYLOAD_LEN) as f64 / d.as_secs_f64() / 1e6;
    let now_one = median(one[0].clone());
    let now_batch = median(batch[0].clone());
    println!("(a) 1-event append p50: now {}", fmt(now_one));
    println!(
        "(b) batch of 100: now {} = {:.1} MB/s",
        fmt(now_batch),
        mb_s(now_batch)
    );
    if systems.len() > 1 {
        let before_one = median(one[1].clone());
        let before_batch = median(batch[1].clone());
        let r1 = now_one.as_secs_f64() / before_one.as_secs_f64();
        let rb = mb_s(now_batch) / mb_s(before_batch);
        println!(
            "(a) before {} -> now/before {r1:.3} (target <= 1.05: {})",
            fmt(before_one),
            if r1 <= 1.05 { "met" } else { "MISSED" }
        );
        println!(
            "(b) before {:.1} MB/s -> now/before {rb:.3} of the MB/s (target >= 0.95: {})",
            mb_s(before_batch),
            if rb >= 0.95 { "met" } else { "MISSED" }
        );
    }
    let (hit50, miss50, retry50) = (median(hit), median(miss), median(retry));
    println!(
        "store of {n} events in {segments} segments; first lookup after open {}",
        fmt(first_lookup)
    );
    println!(
        "(c) find_event p50: stored {} (target <= 20 µs: {}), fresh {}",
        fmt(hit50),
        if hit50 <= Duration::from_micros(20) {
            "met"
        } else {
            "MISSED"
        },
        fmt(miss50)
    );
    println!(
        "(d) retried batch of 100 p50: {} (target <= 1 ms: {})",
        fmt(retry50),
        if retry50 <= Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "(d) fresh 1-event append in that store p50: {}",
        fmt(median(fresh_big))
    );
}
