//! Durable appends, annals against the `floor` (pwrite + fdatasync) and
//! `sqlite` (WAL, synchronous=FULL) baselines, in one run on one disk:
//!
//! - (a) one event to one of 1,000 streams with an exact expected version:
//!   latency, p50 and p99 timed per append;
//! - (b) batches of 100 events: MB/s of payload;
//! - (f) 8 threads each appending single events: events/s, against (a)'s
//!   single-thread rate.
//!
//! Each system gets one store, seeded with one event in each of the 1,000
//! streams, that serves all three workloads. After criterion's runs of each
//! workload a paired side measurement interleaves the three systems
//! operation by operation (see [`common::paired`]), and the run ends with
//! two tables of figures, ratios and the targets: the paired one,
//! and criterion's.

mod common;

use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};
use rusqlite::Connection;

use common::{
    EVENT_TYPE, Floor, Layout, PAYLOAD_LEN, Recorder, Rng, events, fmt_duration, fmt_rate,
    fresh_dir, paired, payload, pick, remove_dir, sqlite_append, sqlite_open, stream_names,
    verdict,
};

/// Streams the appends go to.
const STREAMS: usize = 1_000;
/// Appending threads in (f).
const THREADS: usize = 8;
/// Events per batch in (b).
const BATCH: usize = 100;
/// Size of the floor's preallocated file; it wraps when full.
const FLOOR_FILE_LEN: u64 = 64 << 20;

const A: &str = "a_append_one_event";
const B: &str = "b_append_batch_100";
const F: &str = "f_append_8_threads";
const SYSTEMS: [&str; 3] = ["annals", "floor", "sqlite"];

/// The three systems, each seeded with version 0 of every stream, and the
/// inputs of every append, built once so that no timed loop builds them.
struct Fixture {
    names: Vec<String>,
    annals: Store,
    floor: Floor,
    sqlite: Mutex<Connection>,
    one: Vec<EventData>,
    batch: Vec<EventData>,
    floor_one: Vec<u8>,
    floor_batch: Vec<u8>,
    payload: Vec<u8>,
}

impl Fixture {
    fn build() -> Fixture {
        let started = Instant::now();
        let layout = Layout::measure(&fresh_dir("append/layout"));
        let names = stream_names(STREAMS);
        let one = events(1);

        let annals = Store::open(fresh_dir("append/annals")).expect("open annals");
        // Seed from several threads so that group commit shares the syncs.
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (annals, names, one) = (&annals, &names, &one);
                s.spawn(move || {
                    for name in names.iter().skip(t).step_by(THREADS) {
                        annals
                            .append(name, ExpectedVersion::NoStream, one)
                            .expect("seed annals");
                    }
                });
            }
        });

        let floor = Floor::create(&fresh_dir("append/floor").join("log"), FLOOR_FILE_LEN);

        let mut sqlite = sqlite_open(&fresh_dir("append/sqlite").join("events.db"));
        {
            let tx = sqlite.transaction().expect("begin");
            {
                let mut insert = tx
                    .prepare(
                        "INSERT INTO events (pos, stream, version, type, data) \
                         VALUES (?1, ?2, 0, ?3, ?4)",
                    )
                    .expect("prepare");
                for (i, name) in names.iter().enumerate() {
                    insert
                        .execute(rusqlite::params![i as i64, name, EVENT_TYPE, payload()])
                        .expect("seed sqlite");
                }
            }
            tx.commit().expect("commit");
        }

        println!(
            "append fixture: {STREAMS} streams seeded in each system in {}",
            fmt_duration(started.elapsed())
        );
        Fixture {
            names,
            annals,
            floor,
            sqlite: Mutex::new(sqlite),
            one,
            batch: events(BATCH),
            floor_one: layout.commit_bytes(1),
            floor_batch: layout.commit_bytes(BATCH),
            payload: payload(),
        }
    }

    /// Appends `count` (1 or [`BATCH`]) events to stream `offset + i` on
    /// `system`, with the exact expected version `versions[i]`, and moves
    /// that version on.
    fn append(&self, system: &str, versions: &mut [u64], offset: usize, i: usize, count: usize) {
        let expected = versions[i];
        let name = &self.names[offset + i];
        match system {
            "annals" => {
                let events = if count == 1 { &self.one } else { &self.batch };
                self.annals
                    .append(name, ExpectedVersion::Exact(expected), events)
                    .expect("annals append");
            }
            "floor" => {
                // The floor keeps its stream versions in `versions`: its
                // expected-version check is the comparison that found
                // `expected` there, and costs nothing measurable.
                let bytes = if count == 1 {
                    &self.floor_one
                } else {
                    &self.floor_batch
                };
                self.floor.append(bytes);
            }
            "sqlite" => {
                let mut conn = self.sqlite.lock().expect("sqlite lock");
                assert!(
                    sqlite_append(&mut conn, name, Some(expected), count, &self.payload),
                    "sqlite expected-version check failed"
                );
            }
            _ => unreachable!("unknown system {system}"),
        }
        versions[i] = expected + count as u64;
    }
}

impl Fixture {
    /// `threads` threads, each appending `per_thread` single events to its
    /// own share of the streams on `system`; returns the wall time from the
    /// moment all are released until the last one is done.
    fn threads(
        &self,
        system: &str,
        versions: &mut [u64],
        threads: usize,
        per_thread: u64,
        seed: u64,
    ) -> Duration {
        let barrier = Barrier::new(threads + 1);
        let share = STREAMS / threads;
        std::thread::scope(|scope| {
            for (t, chunk) in versions.chunks_mut(share).enumerate() {
                let barrier = &barrier;
                let mut rng = Rng::new(seed ^ (t as u64) << 32);
                scope.spawn(move || {
                    barrier.wait();
                    for _ in 0..per_thread {
                        let i = rng.below(chunk.len());
                        self.append(system, chunk, t * share, i, 1);
                    }
                });
            }
            barrier.wait();
            // The scope joins every thread before it returns.
            Instant::now()
        })
        .elapsed()
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, measure_s: u64) {
    group
        .sample_size(samples)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measure_s));
}

/// (a): one event per append, each append timed on its own.
fn bench_a(c: &mut Criterion, fx: &Fixture, versions: &mut [Vec<u64>; 3], rec: &Recorder) {
    let samples = 20;
    let mut group = c.benchmark_group(A);
    configure(&mut group, samples, 6);
    group.throughput(Throughput::Elements(1));
    for (s, system) in SYSTEMS.iter().enumerate() {
        let key = format!("{A}/{system}");
        rec.expect(&key, samples);
        let mut rng = Rng::new(common::seed());
        let versions = &mut versions[s];
        group.bench_function(*system, |b| {
            b.iter_custom(|iters| {
                let mut ops = Vec::with_capacity(iters as usize);
                for _ in 0..iters {
                    let i = rng.below(STREAMS);
                    let t = Instant::now();
                    fx.append(system, versions, 0, i, 1);
                    ops.push(t.elapsed());
                }
                rec.record_ops(&key, ops)
            })
        });
    }
    group.finish();

    if !rec.should_pair(A, &SYSTEMS) {
        return;
    }

    let seed = common::seed() ^ 0xA;
    let times = paired(3, Duration::from_secs(10), 200, 5_000, |round, s| {
        let i = pick(seed, round, STREAMS);
        let t = Instant::now();
        fx.append(SYSTEMS[s], &mut versions[s], 0, i, 1);
        t.elapsed()
    });
    for (s, times) in times.into_iter().enumerate() {
        rec.record_paired(&format!("{A}/{}", SYSTEMS[s]), times);
    }
}

/// (b): batches of 100 events.
fn bench_b(c: &mut Criterion, fx: &Fixture, versions: &mut [Vec<u64>; 3], rec: &Recorder) {
    let samples = 15;
    let mut group = c.benchmark_group(B);
    configure(&mut group, samples, 4);
    group.throughput(Throughput::BytesDecimal((BATCH * PAYLOAD_LEN) as u64));
    for (s, system) in SYSTEMS.iter().enumerate() {
        let key = format!("{B}/{system}");
        rec.expect(&key, samples);
        let mut rng = Rng::new(common::seed() ^ 0xB);
        let versions = &mut versions[s];
        group.bench_function(*system, |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let i = rng.below(STREAMS);
                    fx.append(system, versions, 0, i, BATCH);
                }
                let elapsed = t.elapsed();
                rec.record(&key, iters, elapsed);
                elapsed
            })
        });
    }
    group.finish();

    if !rec.should_pair(B, &SYSTEMS) {
        return;
    }

    let seed = common::seed() ^ 0xB0;
    let times = paired(3, Duration::from_secs(4), 100, 2_000, |round, s| {
        let i = pick(seed, round, STREAMS);
        let t = Instant::now();
        fx.append(SYSTEMS[s], &mut versions[s], 0, i, BATCH);
        t.elapsed()
    });
    for (s, times) in times.into_iter().enumerate() {
        rec.record_paired(&format!("{B}/{}", SYSTEMS[s]), times);
    }
}

/// (f): 8 threads, each appending single events to its own eighth of the
/// streams. One iteration is one append by each thread: 8 events.
fn bench_f(c: &mut Criterion, fx: &Fixture, versions: &mut [Vec<u64>; 3], rec: &Recorder) {
    let samples = 10;
    let mut group = c.benchmark_group(F);
    configure(&mut group, samples, 5);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(THREADS as u64));
    for (s, system) in SYSTEMS.iter().enumerate() {
        let key = format!("{F}/{system}");
        rec.expect(&key, samples);
        let versions = &mut versions[s];
        let mut round = 0u64;
        group.bench_function(*system, |b| {
            b.iter_custom(|iters| {
                round += 1;
                let elapsed = fx.threads(system, versions, THREADS, iters, common::seed() ^ round);
                rec.record(&key, iters, elapsed);
                elapsed
            })
        });
    }
    group.finish();

    if !rec.should_pair(F, &SYSTEMS) {
        return;
    }

    // Blocks of PAIRED_F_APPENDS appends per thread, interleaved: each
    // system with 8 threads and with 1, so that the speed-up compares rates
    // measured in the same moments.
    let seed = common::seed() ^ 0xF0;
    let times = paired(6, Duration::from_secs(8), 10, 1_000, |round, arm| {
        let (s, threads) = (arm / 2, if arm % 2 == 0 { THREADS } else { 1 });
        let seed = seed ^ (round as u64) << 8;
        fx.threads(
            SYSTEMS[s],
            &mut versions[s],
            threads,
            PAIRED_F_APPENDS,
            seed,
        )
    });
    for (arm, times) in times.into_iter().enumerate() {
        let suffix = if arm % 2 == 0 { "" } else { "/1-thread" };
        rec.record_paired(&format!("{F}/{}{suffix}", SYSTEMS[arm / 2]), times);
    }
}

/// Appends per thread in one block of (f)'s paired measurement.
const PAIRED_F_APPENDS: u64 = 16;

/// One row of the summary: a figure for each system, the ratios against
/// the floor, and the target's verdict.
fn row(label: &str, figures: [String; 3], ratios: [String; 2], target: &str) {
    let [a, f, s] = figures;
    let [af, sf] = ratios;
    println!("| {label} | {a} | {f} | {s} | {af} | {sf} | {target} |");
}

/// The summary table of one kind of measurement: `paired` (interleaved,
/// the one to judge by) or criterion's medians.
fn table(rec: &Recorder, paired: bool) {
    let key = |w: &str, s: &str| format!("{w}/{s}");
    let pct = |w: &str, s: &str, p: f64| {
        if paired {
            rec.paired_percentile(&key(w, s), p)
        } else {
            rec.percentile(&key(w, s), p)
        }
    };
    let med = |w: &str, s: &str| {
        if paired {
            rec.paired_median(&key(w, s))
        } else {
            rec.median(&key(w, s))
        }
    };
    let all = |f: &dyn Fn(&str) -> Option<f64>| -> Option<[f64; 3]> {
        Some([f(SYSTEMS[0])?, f(SYSTEMS[1])?, f(SYSTEMS[2])?])
    };
    let x = |v: f64| format!("{v:.2}×");
    let secs = |d: Duration| d.as_secs_f64();
    let dur = |v: f64| fmt_duration(Duration::from_secs_f64(v));

    println!("| workload | annals | floor | sqlite | annals / floor | sqlite / floor | target |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for (p, target) in [(50.0, "≤ 1.15× floor"), (99.0, "—")] {
        if let Some([a, f, s]) = all(&|sys| pct(A, sys, p).map(|(d, _)| secs(d))) {
            let n = pct(A, "annals", p).map_or(0, |(_, n)| n);
            let verdict = if p == 50.0 {
                format!("{target}: **{}**", verdict(a / f <= 1.15))
            } else {
                target.to_owned()
            };
            row(
                &format!("(a) append 1 event, p{p:.0} latency ({n} appends each)"),
                [dur(a), dur(f), dur(s)],
                [x(a / f), x(s / f)],
                &verdict,
            );
        }
    }
    let single = all(&|sys| med(A, sys).map(|d| 1.0 / secs(d)));
    if let Some([a, f, s]) = single {
        row(
            "(a) append 1 event, events/s (1 / median)",
            [fmt_rate(a), fmt_rate(f), fmt_rate(s)],
            [x(a / f), x(s / f)],
            "—",
        );
    }
    let mbps = |d: Duration| (BATCH * PAYLOAD_LEN) as f64 / secs(d) / 1e6;
    if let Some([a, f, s]) = all(&|sys| med(B, sys).map(mbps)) {
        row(
            "(b) append batches of 100, MB/s of payload",
            [format!("{a:.1}"), format!("{f:.1}"), format!("{s:.1}")],
            [
                format!("{:.0} %", 100.0 * a / f),
                format!("{:.0} %", 100.0 * s / f),
            ],
            &format!("≥ 70 % of floor: **{}**", verdict(a / f >= 0.70)),
        );
    }
    // Events in one measured block of (f), and the single-thread rates to
    // compare with: the paired measurement's own single-thread blocks, or
    // criterion's (a).
    let (per_block, single) = if paired {
        let per_block = THREADS as f64 * PAIRED_F_APPENDS as f64;
        let one = all(&|sys| {
            rec.paired_median(&format!("{F}/{sys}/1-thread"))
                .map(|d| PAIRED_F_APPENDS as f64 / secs(d))
        });
        (per_block, one)
    } else {
        (THREADS as f64, single)
    };
    let multi = all(&|sys| med(F, sys).map(|d| per_block / secs(d)));
    if let Some([a, f, s]) = multi {
        row(
            "(f) 8 threads × 1 event, events/s",
            [fmt_rate(a), fmt_rate(f), fmt_rate(s)],
            [x(a / f), x(s / f)],
            "—",
        );
        if let Some([a1, f1, s1]) = single {
            let what = if paired {
                "(f) 8-thread rate / 1-thread rate, same moments"
            } else {
                "(f) 8-thread rate / (a) single-thread rate"
            };
            row(
                what,
                [x(a / a1), x(f / f1), x(s / s1)],
                ["—".into(), "—".into()],
                &format!("annals ≥ 5×: **{}**", verdict(a / a1 >= 5.0)),
            );
        }
    }
    println!();
}

fn summary(rec: &Recorder) {
    if !common::measuring() {
        return;
    }
    println!();
    println!("== annals append benchmarks: summary");
    println!();
    println!(
        "Paired side measurement: the three systems interleaved operation by operation \
         ((f): block by block, {PAIRED_F_APPENDS} appends per thread), medians and percentiles \
         of every operation. Judge the targets by this table."
    );
    println!();
    table(rec, true);
    println!(
        "Criterion's runs: each system in its own time window; medians of criterion's \
         samples ((a) percentiles over every append of the measured samples)."
    );
    println!();
    table(rec, false);
}

fn main() {
    let seed = common::seed();
    common::print_setup(seed);
    let mut c = Criterion::default().configure_from_args();
    let rec = Recorder::default();
    let fixture = Fixture::build();
    // The last version of each stream, per system, as the appends leave it.
    let mut versions = [vec![0u64; STREAMS], vec![0; STREAMS], vec![0; STREAMS]];
    bench_a(&mut c, &fixture, &mut versions, &rec);
    bench_b(&mut c, &fixture, &mut versions, &rec);
    bench_f(&mut c, &fixture, &mut versions, &rec);
    c.final_summary();
    summary(&rec);
    let stats = fixture.annals.stats();
    println!(
        "annals store after the run: {} events in {} segments",
        stats.events, stats.segments
    );
    drop(fixture);
    remove_dir(&common::bench_root().join("append"));
}
